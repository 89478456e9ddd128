//! Project automation, run as `cargo xtask <task>` (see `.cargo/config.toml`):
//!
//! - `test`: every test suite of the workspace, then a summary of what ran and what was skipped;
//! - `tidy`: `cargo fmt --check` and `cargo clippy --all-targets -D warnings`;
//! - `openapi`: writes the OpenAPI document to `docs/openapi.json`.
//!
//! Dependency-free on purpose: it only runs cargo.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "test" => test(),
        "tidy" => tidy(),
        "openapi" => openapi(),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n\
                 tasks:\n  test     run every test suite and summarise\n  \
                 tidy     cargo fmt --check and clippy -D warnings\n  \
                 openapi  write docs/openapi.json"
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

fn test() -> Result<(), String> {
    println!(
        "xtask: running every suite: `cargo test --workspace` (unit, contract, black-box, doc tests)"
    );
    let mut child = cargo()
        .args(["test", "--workspace", "--all-features", "--no-fail-fast"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start cargo test: {e}"))?;
    let mut tally = Tally::default();
    if let Some(stdout) = child.stdout.take() {
        let mut out = std::io::stdout().lock();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            tally.add_line(&line);
            let _ = writeln!(out, "{line}");
        }
    }
    let status = child.wait().map_err(|e| format!("cargo test: {e}"))?;

    println!();
    println!("xtask: suites run:");
    println!("  - domain: value objects, policies, use cases against mockall mocks");
    println!("  - adapters: crypto (bcrypt, JWT, random, zxcvbn), mail (file), memory and SQLite,");
    println!("    the last two through the shared port contract suite (tests/contract)");
    println!(
        "  - api: black-box HTTP tests on the embedded default (SQLite + in-process revocation)"
    );
    println!("xtask: suites skipped:");
    println!(
        "  - PostgreSQL and Redis adapters: not built yet, so there is nothing to run against them"
    );
    println!(
        "xtask: {} test binaries, {} ignored tests",
        tally.binaries, tally.ignored
    );
    println!("summary: {} passed, {} failed", tally.passed, tally.failed);
    if !status.success() || tally.failed > 0 {
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
