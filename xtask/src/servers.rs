//! Throwaway PostgreSQL and Redis servers for `cargo xtask test`, or the ones the environment
//! names (`TEST_DATABASE_URL`, `TEST_REDIS_URL`). A started server is stopped and its files
//! removed when its guard is dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server the tests can use.
pub struct Server {
    /// Its URL.
    pub url: String,
    kind: Kind,
}

enum Kind {
    Given,
    Postgres {
        bin: PathBuf,
        data: PathBuf,
        as_user: Option<String>,
    },
    Redis(Child),
}

impl Server {
    /// What it is, for the summary.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Given => "from the environment".to_owned(),
            Kind::Postgres { data, .. } => format!(
                "throwaway server on {} (data in {})",
                self.url,
                data.display()
            ),
            Kind::Redis(_) => format!("throwaway server on {}", self.url),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        match &mut self.kind {
            Kind::Given => {}
            Kind::Postgres { bin, data, as_user } => {
                let _ = run_as(
                    as_user.as_deref(),
                    &bin.join("pg_ctl"),
                    &[
                        "-D",
                        &data.to_string_lossy(),
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                    ],
                )
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
                let _ = std::fs::remove_dir_all(&*data);
            }
            Kind::Redis(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn given(name: &str) -> Option<Server> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(|url| Server {
            url,
            kind: Kind::Given,
        })
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn wait_for_port(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn on_path(binary: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(binary))
            .find(|candidate| candidate.is_file())
    })
}

/// `TEST_REDIS_URL`, or a `redis-server` started on a free port.
pub fn redis() -> Result<Server, String> {
    if let Some(server) = given("TEST_REDIS_URL") {
        return Ok(server);
    }
    let binary = on_path("redis-server")
        .ok_or("TEST_REDIS_URL is unset and redis-server is not installed")?;
    let port = free_port()?;
    let child = Command::new(binary)
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start redis-server: {e}"))?;
    let server = Server {
        url: format!("redis://127.0.0.1:{port}"),
        kind: Kind::Redis(child),
    };
    if wait_for_port(port) {
        Ok(server)
    } else {
        Err("redis-server did not start".to_owned())
    }
}

/// The directory holding `initdb` and `pg_ctl`.
fn postgres_bin() -> Option<PathBuf> {
    if let Some(initdb) = on_path("initdb") {
        return initdb.parent().map(Path::to_path_buf);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run_as(user: Option<&str>, program: &Path, args: &[&str]) -> Command {
    match user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program).args(args);
            command
        }
        None => {
            let mut command = Command::new(program);
            command.args(args);
            command
        }
    }
}

/// `TEST_DATABASE_URL`, or a PostgreSQL cluster made with `initdb` in a temporary folder and
/// started on a free port (as the `postgres` user when running as root, which initdb refuses).
pub fn postgres() -> Result<Server, String> {
    if let Some(server) = given("TEST_DATABASE_URL") {
        return Ok(server);
    }
    let bin = postgres_bin()
        .ok_or("TEST_DATABASE_URL is unset and PostgreSQL (initdb) is not installed")?;
    let as_user = is_root().then(|| "postgres".to_owned());
    let data = std::env::temp_dir().join(format!("ums-xtask-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    if let Some(user) = &as_user {
        let owned = Command::new("chown")
            .args([&format!("{user}:"), &*data.to_string_lossy()])
            .status()
            .is_ok_and(|s| s.success());
        if !owned {
            return Err(format!("cannot give {} to the {user} user", data.display()));
        }
    }
    let port = free_port()?;
    let server = Server {
        url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        kind: Kind::Postgres {
            bin: bin.clone(),
            data: data.clone(),
            as_user: as_user.clone(),
        },
    };
    let data_arg = data.to_string_lossy().into_owned();
    let initdb = run_as(
        as_user.as_deref(),
        &bin.join("initdb"),
        &[
            "-D",
            &data_arg,
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .output()
    .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !initdb.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr).trim()
        ));
    }
    let options = format!(
        "-p {port} -k {data_arg} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
    );
    let log = data.join("server.log");
    let started = run_as(
        as_user.as_deref(),
        &bin.join("pg_ctl"),
        &[
            "-D",
            &data_arg,
            "-o",
            &options,
            "-l",
            &log.to_string_lossy(),
            "-w",
            "start",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .output()
    .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
    if !started.status.success() || !wait_for_port(port) {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        return Err(format!("PostgreSQL did not start: {}", log.trim()));
    }
    Ok(server)
}
