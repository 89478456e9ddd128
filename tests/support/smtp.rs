//! `SmtpSink`: a real SMTP server for tests, on a free port of 127.0.0.1, that keeps what it
//! receives. It speaks enough of RFC 5321 for a client like lettre (EHLO/HELO, AUTH PLAIN,
//! MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT), and can be told to refuse (a 4xx
//! or 5xx reply) or to stall (accept connections and never answer), so tests can drive the
//! outbox's retries, give-ups and timeouts against a real socket.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One message as the sink received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The message as transmitted, dot-unstuffed, CRLF line endings.
    pub data: Vec<u8>,
    /// `user:password` if the client authenticated.
    pub auth: Option<String>,
}

impl Received {
    /// The message as text (lossy).
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// How the sink answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Accepts every message.
    Accept,
    /// Answers `451` to `MAIL FROM`: try again later.
    RefuseTransient,
    /// Answers `550` to `RCPT TO`: the mailbox does not exist.
    RefusePermanent,
    /// Accepts connections and never says a word.
    Stall,
}

#[derive(Debug)]
struct Shared {
    received: Mutex<Vec<Received>>,
    /// `MAIL FROM` commands seen, accepted or not: attempts to send.
    attempts: std::sync::atomic::AtomicUsize,
    mode: Mutex<Mode>,
}

/// A running sink; it stops when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// Starts a sink on a free port of 127.0.0.1.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start() -> Self {
        let addr = "127.0.0.1:0";
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("cannot bind the SMTP sink to {addr}: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the SMTP sink has no address: {e}"));
        let shared = Arc::new(Shared {
            received: Mutex::new(Vec::new()),
            attempts: std::sync::atomic::AtomicUsize::new(0),
            mode: Mutex::new(Mode::Accept),
        });
        let serving = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&serving);
                tokio::spawn(async move {
                    // A client that hangs up mid-session is not the sink's problem.
                    let _ = session(stream, &shared).await;
                });
            }
        });
        Self { addr, shared, task }
    }

    /// The sink's address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `smtp://127.0.0.1:<port>`: plain SMTP, no TLS.
    #[must_use]
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Changes how the sink answers from the next command on.
    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.shared.mode) = mode;
    }

    /// Everything received so far.
    #[must_use]
    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.received).clone()
    }

    /// How many times a client began sending a message (`MAIL FROM`), refused or not.
    #[must_use]
    pub fn attempts(&self) -> usize {
        self.shared
            .attempts
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The value behind `mutex`, even if a session panicked while holding it (what it guards
/// stays consistent: every write is one push or one assignment).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The address inside `MAIL FROM:<...>` / `RCPT TO:<...>`.
fn path_of(argument: &str) -> String {
    let start = argument.find('<').map_or(0, |i| i + 1);
    let end = argument[start..]
        .find('>')
        .map_or(argument.len(), |i| start + i);
    argument[start..end].to_owned()
}

async fn session(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mode = || *lock(&shared.mode);
    if mode() == Mode::Stall {
        // Hold the connection open, silent, until the client gives up.
        let mut reader = BufReader::new(stream);
        let mut sink = String::new();
        while reader.read_line(&mut sink).await? > 0 {}
        return Ok(());
    }
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut auth = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink.test\r\n250-8BITMIME\r\n250-AUTH PLAIN\r\n250 SMTPUTF8\r\n",
            "HELO" => b"250 sink.test\r\n",
            "AUTH" => {
                let mut parts = command.split_whitespace().skip(1);
                let mechanism = parts.next().unwrap_or_default().to_ascii_uppercase();
                let initial = parts.next().map(str::to_owned);
                let encoded = match initial {
                    Some(initial) => initial,
                    None => {
                        write.write_all(b"334 \r\n").await?;
                        let mut response = String::new();
                        reader.read_line(&mut response).await?;
                        response.trim_end().to_owned()
                    }
                };
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.as_bytes())
                    .ok()
                    .filter(|_| mechanism == "PLAIN");
                match decoded {
                    Some(decoded) => {
                        // authzid \0 authcid \0 password
                        let fields: Vec<String> = decoded
                            .split(|b| *b == 0)
                            .map(|f| String::from_utf8_lossy(f).into_owned())
                            .collect();
                        if fields.len() == 3 {
                            auth = Some(format!("{}:{}", fields[1], fields[2]));
                            b"235 2.7.0 authenticated\r\n"
                        } else {
                            b"535 5.7.8 malformed credentials\r\n"
                        }
                    }
                    None => b"504 5.5.4 unsupported mechanism\r\n",
                }
            }
            "MAIL" => {
                shared
                    .attempts
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if mode() == Mode::RefuseTransient {
                    b"451 4.3.0 try again later\r\n"
                } else {
                    from = path_of(&command);
                    to.clear();
                    b"250 2.1.0 ok\r\n"
                }
            }
            "RCPT" => {
                if mode() == Mode::RefusePermanent {
                    b"550 5.1.1 no such mailbox\r\n"
                } else {
                    to.push(path_of(&command));
                    b"250 2.1.5 ok\r\n"
                }
            }
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = Vec::new();
                let mut body_line = String::new();
                loop {
                    body_line.clear();
                    if reader.read_line(&mut body_line).await? == 0 {
                        return Ok(());
                    }
                    if body_line == ".\r\n" || body_line == ".\n" {
                        break;
                    }
                    let unstuffed = body_line.strip_prefix('.').unwrap_or(&body_line);
                    data.extend_from_slice(unstuffed.as_bytes());
                }
                lock(&shared.received).push(Received {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                    auth: auth.clone(),
                });
                b"250 2.0.0 queued\r\n"
            }
            "RSET" => {
                from.clear();
                to.clear();
                b"250 2.0.0 ok\r\n"
            }
            "NOOP" => b"250 2.0.0 ok\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}
