//! Project automation, run as `cargo xtask <task>` (see `.cargo/config.toml`):
//!
//! - `test`: every test suite of the workspace, then a summary of what ran and what was skipped.
//!   PostgreSQL and Redis come from `TEST_DATABASE_URL` / `TEST_REDIS_URL`, or are started as
//!   throwaway servers when their binaries are installed; under `CI=true` a skip is a failure;
//! - `tidy`: `cargo fmt --check` and `cargo clippy --all-targets -D warnings`;
//! - `openapi`: writes the OpenAPI document to `docs/openapi.json`;
//! - `seed --users N [--database URL]`: bulk-loads N synthetic users into the database
//!   `DATABASE_URL` (or `--database`) names, with multi-row inserts, for benchmarks.
//!
//! Dependency-free on purpose: it only runs cargo.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

mod servers;

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "test" => test(),
        "tidy" => tidy(),
        "openapi" => openapi(),
        "seed" => seed(&std::env::args().skip(2).collect::<Vec<_>>()),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n\
                 tasks:\n  test     run every test suite and summarise\n  \
                 tidy     cargo fmt --check and clippy -D warnings\n  \
                 openapi  write docs/openapi.json\n  \
                 seed     --users N [--database URL]: bulk-load N synthetic users"
            );
            Err("unknown task".to_owned())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), PathBuf::from)
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.current_dir(root());
    command
}

fn run(mut command: Command, what: &str) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

#[derive(Default)]
struct Tally {
    binaries: u32,
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Tally {
    /// Reads a libtest line such as `test result: ok. 12 passed; 0 failed; 1 ignored; ...`.
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        self.binaries += 1;
        for part in rest.split(['.', ';']) {
            let mut words = part.split_whitespace();
            if let (Some(n), Some(word)) = (words.next(), words.next()) {
                let n: u64 = n.parse().unwrap_or(0);
                match word {
                    "passed" => self.passed += n,
                    "failed" => self.failed += n,
                    "ignored" => self.ignored += n,
                    _ => {}
                }
            }
        }
    }
}

/// Runs `cargo test` with extra environment, echoing its output and tallying libtest's lines.
fn cargo_test(args: &[&str], env: &[(String, String)], tally: &mut Tally) -> Result<bool, String> {
    let mut command = cargo();
    command.arg("test").args(args).stdout(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start cargo test: {e}"))?;
    if let Some(stdout) = child.stdout.take() {
        let mut out = std::io::stdout().lock();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            tally.add_line(&line);
            let _ = writeln!(out, "{line}");
        }
    }
    let status = child.wait().map_err(|e| format!("cargo test: {e}"))?;
    Ok(status.success())
}

fn test() -> Result<(), String> {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    let postgres = servers::postgres();
    let redis = servers::redis();
    let mut env = Vec::new();
    let mut skipped = Vec::new();
    match &postgres {
        Ok(server) => {
            println!("xtask: PostgreSQL: {}", server.describe());
            env.push(("TEST_DATABASE_URL".to_owned(), server.url.clone()));
        }
        Err(why) => skipped.push(format!("PostgreSQL suites: {why}")),
    }
    match &redis {
        Ok(server) => {
            println!("xtask: Redis: {}", server.describe());
            env.push(("TEST_REDIS_URL".to_owned(), server.url.clone()));
        }
        Err(why) => skipped.push(format!("Redis suites: {why}")),
    }
    if ci && !skipped.is_empty() {
        return Err(format!(
            "under CI every suite must run, but: {}",
            skipped.join("; ")
        ));
    }

    let mut tally = Tally::default();
    println!(
        "xtask: running every suite: cargo test --workspace (unit, contract, black-box on the embedded default, doc tests)"
    );
    let mut ok = cargo_test(
        &["--workspace", "--all-features", "--no-fail-fast"],
        &env,
        &mut tally,
    )?;
    let production = postgres.is_ok() && redis.is_ok();
    if production {
        println!("xtask: running the black-box API suite again on PostgreSQL + Redis");
        let mut production_env = env.clone();
        production_env.push(("UMS_TEST_STACK".to_owned(), "production".to_owned()));
        ok &= cargo_test(
            &["-p", "ums-tests", "--test", "api"],
            &production_env,
            &mut tally,
        )?;
    } else {
        skipped.push("black-box API suite on PostgreSQL + Redis: needs both servers".to_owned());
    }
    drop(postgres);
    drop(redis);

    println!();
    println!("xtask: suites run:");
    println!("  - domain: value objects, policies, use cases against mockall mocks");
    println!(
        "  - adapters: crypto, mail; the port contract suite (tests/contract) against SQLite and memory"
    );
    if env.iter().any(|(n, _)| n == "TEST_DATABASE_URL") {
        println!("    and against PostgreSQL (a fresh database per test)");
    }
    if env.iter().any(|(n, _)| n == "TEST_REDIS_URL") {
        println!("    and against Redis (a fresh key prefix per test)");
    }
    println!("  - api: black-box HTTP tests on SQLite + in-process revocation and cache");
    if production {
        println!("  - api: the same black-box HTTP tests on PostgreSQL + Redis");
    }
    if skipped.is_empty() {
        println!("xtask: nothing skipped");
    } else {
        println!("xtask: suites skipped:");
        for why in &skipped {
            println!("  - {why}");
        }
    }
    println!(
        "xtask: {} test binaries, {} ignored tests",
        tally.binaries, tally.ignored
    );
    println!("summary: {} passed, {} failed", tally.passed, tally.failed);
    if !ok || tally.failed > 0 {
        return Err("tests failed".to_owned());
    }
    if tally.passed == 0 {
        return Err("no test ran".to_owned());
    }
    Ok(())
}

fn tidy() -> Result<(), String> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run(fmt, "cargo fmt --check")?;
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]);
    run(clippy, "cargo clippy")?;
    println!("xtask: formatting and clippy are clean");
    Ok(())
}

fn openapi() -> Result<(), String> {
    let output = cargo()
        .args([
            "run",
            "--quiet",
            "--package",
            "api-actix",
            "--bin",
            "ums",
            "--",
            "openapi",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start cargo run: {e}"))?;
    if !output.status.success() {
        return Err("ums openapi failed".to_owned());
    }
    let target = root().join("docs").join("openapi.json");
    std::fs::write(&target, &output.stdout).map_err(|e| format!("{}: {e}", target.display()))?;
    println!("xtask: wrote {}", target.display());
    Ok(())
}

/// `cargo xtask seed --users N [--database URL]`: runs the release `ums seed-users`, which
/// inserts many rows per statement and per transaction straight into the store.
fn seed(args: &[String]) -> Result<(), String> {
    let mut users = None;
    let mut database = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--users" => users = args.next().cloned(),
            "--database" => database = args.next().cloned(),
            other => return Err(format!("seed: unknown argument {other:?}")),
        }
    }
    let users = users
        .and_then(|n| n.replace('_', "").parse::<u64>().ok())
        .filter(|n| *n > 0)
        .ok_or("seed: --users N (a positive number) is required")?;
    let mut command = cargo();
    command.args([
        "run",
        "--release",
        "--quiet",
        "--package",
        "api-actix",
        "--bin",
        "ums",
        "--",
        "seed-users",
        "--count",
        &users.to_string(),
    ]);
    if let Some(url) = database {
        command.env("DATABASE_URL", url);
    }
    run(command, "ums seed-users")
}
