//! Redis for tests: a fresh key prefix per test and a guard that deletes its keys afterwards
//! ([`TestRedis`]), a throwaway `redis-server` to stop and restart ([`RedisServer`]), a port
//! that accepts connections and never answers ([`SilentServer`]), and a tiny blocking RESP
//! client ([`SyncRedis`], std only) to look at keys from outside the adapter.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::env::test_redis_url;

/// How long the helpers wait for a socket operation.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// A fresh key prefix, unique to this call: `ums-test:{uuid}:`.
#[must_use]
pub fn unique_prefix() -> String {
    format!("ums-test:{}:", Uuid::now_v7().simple())
}

/// A reply in the RESP2 protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Status(String),
    /// `-ERR ...`.
    Error(String),
    /// `:42`.
    Int(i64),
    /// `$3 abc`, or `$-1` (nil).
    Bulk(Option<Vec<u8>>),
    /// `*2 ...`, or `*-1` (nil).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The integer, if this is one.
    #[must_use]
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The bulk string as UTF-8 (lossily), if this is a non-nil bulk string.
    #[must_use]
    pub fn as_text(&self) -> Option<String> {
        match self {
            Self::Bulk(Some(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
            Self::Status(text) => Some(text.clone()),
            _ => None,
        }
    }
}

/// A blocking connection to Redis, speaking just enough RESP2 for tests.
#[derive(Debug)]
pub struct SyncRedis {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// Where and as whom to connect, from a `redis://` URL.
struct Target {
    addr: String,
    username: Option<String>,
    password: Option<String>,
    db: Option<String>,
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.into())
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `redis://[user][:password@]host[:port][/db]` (no TLS, no Unix socket).
fn parse_url(url: &str) -> io::Result<Target> {
    let rest = url
        .strip_prefix("redis://")
        .ok_or_else(|| invalid("only redis:// URLs are supported by the test helpers"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        Some(info) => match info.split_once(':') {
            Some((user, pass)) => (
                Some(percent_decode(user)).filter(|u| !u.is_empty()),
                Some(percent_decode(pass)),
            ),
            None => (Some(percent_decode(info)).filter(|u| !u.is_empty()), None),
        },
        None => (None, None),
    };
    let addr = if hostport.starts_with('[') {
        if hostport.contains("]:") {
            hostport.to_owned()
        } else {
            format!("{hostport}:6379")
        }
    } else if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:6379")
    };
    let db = path.split(['?', '#']).next().filter(|d| !d.is_empty());
    Ok(Target {
        addr,
        username,
        password,
        db: db.map(str::to_owned),
    })
}

impl SyncRedis {
    /// Connects (and authenticates and selects the database) as `url` says.
    ///
    /// # Errors
    /// When the URL is not a plain `redis://` URL, or the server cannot be reached or refuses.
    pub fn open(url: &str) -> io::Result<Self> {
        let target = parse_url(url)?;
        let addr: SocketAddr = target
            .addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| invalid("the host resolves to no address"))?;
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut redis = Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        if let Some(password) = &target.password {
            let reply = match &target.username {
                Some(user) => redis.cmd(&["AUTH", user, password])?,
                None => redis.cmd(&["AUTH", password])?,
            };
            if let Reply::Error(e) = reply {
                return Err(io::Error::other(format!("AUTH refused: {e}")));
            }
        }
        if let Some(db) = &target.db
            && let Reply::Error(e) = redis.cmd(&["SELECT", db])?
        {
            return Err(io::Error::other(format!("SELECT refused: {e}")));
        }
        Ok(redis)
    }

    /// Sends one command and reads its reply (an error reply is `Ok(Reply::Error(..))`).
    ///
    /// # Errors
    /// On I/O failure or a reply that is not RESP2.
    pub fn command(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg);
            request.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&request)?;
        self.read_reply()
    }

    /// [`command`](Self::command) with text arguments.
    ///
    /// # Errors
    /// As [`command`](Self::command).
    pub fn cmd(&mut self, args: &[&str]) -> io::Result<Reply> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.command(&args)
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let line = self.read_line()?;
        let (kind, rest) = line
            .split_at_checked(1)
            .ok_or_else(|| invalid("empty reply"))?;
        let number = || {
            rest.parse::<i64>()
                .map_err(|_| invalid(format!("bad length {rest:?}")))
        };
        Ok(match kind {
            "+" => Reply::Status(rest.to_owned()),
            "-" => Reply::Error(rest.to_owned()),
            ":" => Reply::Int(number()?),
            "$" => match usize::try_from(number()?) {
                Err(_) => Reply::Bulk(None),
                Ok(len) => {
                    let mut bytes = vec![0; len + 2];
                    self.reader.read_exact(&mut bytes)?;
                    bytes.truncate(len);
                    Reply::Bulk(Some(bytes))
                }
            },
            "*" => match usize::try_from(number()?) {
                Err(_) => Reply::Array(None),
                Ok(len) => {
                    let mut items = Vec::with_capacity(len);
                    for _ in 0..len {
                        items.push(self.read_reply()?);
                    }
                    Reply::Array(Some(items))
                }
            },
            other => return Err(invalid(format!("unknown reply type {other:?}"))),
        })
    }
}

/// `prefix` with the glob characters of `SCAN MATCH` escaped, then `*`.
fn match_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

/// A key prefix of its own on a shared test server; deletes every key under it when dropped
/// (best effort: a failure is reported on stderr, never a panic).
#[derive(Debug)]
pub struct TestRedis {
    /// The server's URL.
    pub url: String,
    /// This test's key prefix, from [`unique_prefix`] (ends with `:`).
    pub prefix: String,
}

impl TestRedis {
    /// A fresh prefix on the server of `TEST_REDIS_URL`; `None` (the test should return)
    /// when it is unset, as [`test_redis_url`] documents.
    ///
    /// # Panics
    /// When it is unset and `CI=true`.
    #[must_use]
    pub fn from_env() -> Option<Self> {
        test_redis_url().map(Self::new)
    }

    /// A fresh prefix on the server at `url`.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: unique_prefix(),
        }
    }

    /// A new blocking connection to the server.
    ///
    /// # Errors
    /// As [`SyncRedis::open`].
    pub fn connection(&self) -> io::Result<SyncRedis> {
        SyncRedis::open(&self.url)
    }

    /// Every key under this prefix, by `SCAN` (sorted).
    ///
    /// # Errors
    /// When the server cannot be reached or answers oddly.
    pub fn keys(&self) -> io::Result<Vec<String>> {
        let mut redis = self.connection()?;
        let pattern = match_pattern(&self.prefix);
        let mut cursor = "0".to_owned();
        let mut keys = Vec::new();
        loop {
            let reply = redis.cmd(&["SCAN", &cursor, "MATCH", &pattern, "COUNT", "1000"])?;
            let Reply::Array(Some(parts)) = reply else {
                return Err(io::Error::other(format!("SCAN answered {reply:?}")));
            };
            let [next, Reply::Array(Some(found))] = parts.as_slice() else {
                return Err(io::Error::other(format!("SCAN answered {parts:?}")));
            };
            keys.extend(found.iter().filter_map(Reply::as_text));
            cursor = next
                .as_text()
                .ok_or_else(|| io::Error::other("SCAN cursor missing"))?;
            if cursor == "0" {
                break;
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// Deletes every key under this prefix, returning how many there were.
    ///
    /// # Errors
    /// When the server cannot be reached.
    pub fn delete_keys(&self) -> io::Result<usize> {
        let keys = self.keys()?;
        let mut redis = self.connection()?;
        for batch in keys.chunks(500) {
            let mut args = vec!["DEL"];
            args.extend(batch.iter().map(String::as_str));
            if let Reply::Error(e) = redis.cmd(&args)? {
                return Err(io::Error::other(e));
            }
        }
        Ok(keys.len())
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Err(error) = self.delete_keys() {
            eprintln!(
                "warning: keys under {} not cleaned up: {error}",
                self.prefix
            );
        }
    }
}

/// Finds `redis-server` on `PATH`.
fn redis_server_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
}

/// A port on 127.0.0.1 free at the time of the call.
///
/// # Panics
/// When no port can be bound.
#[must_use]
pub fn free_port() -> u16 {
    match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(error) => panic!("no free port on 127.0.0.1: {error}"),
    }
}

/// A throwaway `redis-server` child process on a free port of 127.0.0.1, without
/// persistence, that a test can stop and start again on the same port. Killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one and waits until it answers `PING`. `None` (the test should return) when no
    /// `redis-server` is on `PATH`, said on stderr.
    ///
    /// # Panics
    /// When it cannot be started, or when there is no binary and `CI=true`.
    #[must_use]
    pub fn start() -> Option<Self> {
        let Some(binary) = redis_server_binary() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "redis-server is not on PATH, and under CI a skipped test is a failure"
            );
            eprintln!("skipped: redis-server is not on PATH");
            return None;
        };
        let mut server = Self {
            binary,
            port: free_port(),
            child: None,
        };
        server.restart();
        Some(server)
    }

    /// `redis://127.0.0.1:{port}`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (as a crash would: connections drop, nothing is saved) and waits for
    /// it to exit. Stopping a stopped server does nothing.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL works on a paused process too.
            if let Err(error) = child.kill() {
                eprintln!("warning: could not kill redis-server: {error}");
            }
            if let Err(error) = child.wait() {
                eprintln!("warning: could not reap redis-server: {error}");
            }
        }
    }

    /// Freezes the server (`SIGSTOP`): it keeps its port and connections, and the kernel
    /// still completes new TCP handshakes, but it answers nothing: a hung server.
    ///
    /// # Panics
    /// When it is not running or cannot be signalled.
    pub fn pause(&mut self) {
        self.signal("-STOP");
    }

    /// Lets a [`pause`](Self::pause)d server go on (`SIGCONT`).
    ///
    /// # Panics
    /// When it is not running or cannot be signalled.
    pub fn resume(&mut self) {
        self.signal("-CONT");
    }

    fn signal(&mut self, signal: &str) {
        let Some(child) = self.child.as_ref() else {
            panic!("redis-server is not running");
        };
        let pid = child.id().to_string();
        match Command::new("kill").args([signal, &pid]).status() {
            Ok(status) if status.success() => {}
            other => panic!("kill {signal} {pid} failed: {other:?}"),
        }
    }

    /// (Re)starts the server on the same port and waits, up to 10 s, until it answers.
    ///
    /// # Panics
    /// When it does not come up.
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port.to_string();
        let dir = std::env::temp_dir();
        let child = Command::new(&self.binary)
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--daemonize", "no"])
            .args(["--loglevel", "warning"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(error) => panic!("could not start {}: {error}", self.binary.display()),
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut redis) = SyncRedis::open(&self.url())
                && let Ok(Reply::Status(pong)) = redis.cmd(&["PING"])
                && pong == "PONG"
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                panic!("redis-server on port {port} exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} did not answer within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port that completes TCP handshakes (the kernel does, into the listen backlog) but never
/// reads or answers: a hung server.
#[derive(Debug)]
pub struct SilentServer {
    listener: TcpListener,
}

impl SilentServer {
    /// Binds a free port on 127.0.0.1.
    ///
    /// # Panics
    /// When no port can be bound.
    #[must_use]
    pub fn start() -> Self {
        match TcpListener::bind("127.0.0.1:0") {
            Ok(listener) => Self { listener },
            Err(error) => panic!("no free port on 127.0.0.1: {error}"),
        }
    }

    /// `redis://127.0.0.1:{port}`.
    ///
    /// # Panics
    /// When the listener has no local address (it always has).
    #[must_use]
    pub fn url(&self) -> String {
        match self.listener.local_addr() {
            Ok(addr) => format!("redis://{addr}"),
            Err(error) => panic!("listener without address: {error}"),
        }
    }
}

/// A server that speaks just enough RESP to say it is an old Redis: `INFO` answers
/// `redis_version:{version}`, `HELLO` is an unknown command (as before Redis 6), anything else
/// `+OK`. For the start-up check that refuses servers too old for the adapters.
#[derive(Debug)]
pub struct AgedServer {
    addr: SocketAddr,
}

impl AgedServer {
    /// Serves on a free port of 127.0.0.1 from a background thread, for the life of the
    /// process.
    ///
    /// # Panics
    /// When no port can be bound.
    #[must_use]
    pub fn start(version: &str) -> Self {
        let listener = match TcpListener::bind("127.0.0.1:0") {
            Ok(listener) => listener,
            Err(error) => panic!("no free port on 127.0.0.1: {error}"),
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(error) => panic!("listener without address: {error}"),
        };
        let version = version.to_owned();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let version = version.clone();
                std::thread::spawn(move || {
                    // A client that hangs up is not the server's problem.
                    let _ = answer_as_aged(stream, &version);
                });
            }
        });
        Self { addr }
    }

    /// `redis://127.0.0.1:{port}`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }
}

/// Reads RESP commands (arrays of bulk strings) and answers each as an old server would.
fn answer_as_aged(stream: TcpStream, version: &str) -> std::io::Result<()> {
    use std::io::{BufRead as _, Read as _, Write as _};
    let mut writer = stream.try_clone()?;
    let mut reader = std::io::BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let count: usize = line.trim().trim_start_matches('*').parse().unwrap_or(0);
        let mut words = Vec::with_capacity(count);
        for _ in 0..count {
            line.clear();
            reader.read_line(&mut line)?;
            let len: usize = line.trim().trim_start_matches('$').parse().unwrap_or(0);
            let mut word = vec![0; len + 2];
            reader.read_exact(&mut word)?;
            word.truncate(len);
            words.push(String::from_utf8_lossy(&word).to_ascii_uppercase());
        }
        let reply = match words.first().map(String::as_str) {
            Some("INFO") => {
                let info = format!("# Server\r\nredis_version:{version}\r\n");
                format!("${}\r\n{info}\r\n", info.len())
            }
            Some("HELLO") => "-ERR unknown command 'HELLO'\r\n".to_owned(),
            Some("PING") => "+PONG\r\n".to_owned(),
            _ => "+OK\r\n".to_owned(),
        };
        writer.write_all(reply.as_bytes())?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn urls_are_parsed_with_credentials_and_database() {
        let t = parse_url("redis://u%40x:p%3Aw@cache.local:6380/3").unwrap();
        assert_eq!(t.addr, "cache.local:6380");
        assert_eq!(t.username.as_deref(), Some("u@x"));
        assert_eq!(t.password.as_deref(), Some("p:w"));
        assert_eq!(t.db.as_deref(), Some("3"));
        let t = parse_url("redis://:pw@127.0.0.1").unwrap();
        assert_eq!(t.addr, "127.0.0.1:6379");
        assert_eq!(t.username, None);
        assert_eq!(t.password.as_deref(), Some("pw"));
        assert_eq!(t.db, None);
        assert!(parse_url("rediss://x").is_err());
    }

    #[test]
    fn prefixes_are_unique_and_scan_patterns_escaped() {
        assert_ne!(unique_prefix(), unique_prefix());
        assert_eq!(match_pattern("a*b?[c]\\:"), "a\\*b\\?\\[c\\]\\\\:*");
    }
}
