//! The connection string: a libpq URI (`postgres://user:password@host:port/db?param=value`) or
//! key/value string (`host=... password=...`), the password-free form shown in errors and
//! logs, and the scrubbing of any password that libpq echoes back in an error message.

use std::fmt;
use std::time::Duration;

/// What [`PostgresStore::open`](crate::PostgresStore::open) needs to know about the URL.
pub(crate) struct ConnInfo {
    /// What libpq connects with: the URL as given, plus `connect_timeout` when it has none.
    pub(crate) url: String,
    /// The URL with every password replaced by `***`: safe for errors and logs.
    pub(crate) shown: String,
    /// Removes the password from text that might quote it.
    pub(crate) redactor: Redactor,
}

impl ConnInfo {
    /// Parses `url` just enough to redact it, and bounds each connection attempt by
    /// `connect_timeout` (rounded up to whole seconds; libpq waits at least 2) unless the URL
    /// sets its own.
    pub(crate) fn new(url: &str, connect_timeout: Duration) -> Self {
        let url = url.trim();
        let (shown, secrets) = if is_uri(url) {
            redact_uri(url)
        } else {
            redact_key_values(url)
        };
        let seconds = connect_timeout.as_secs() + u64::from(connect_timeout.subsec_nanos() > 0);
        let url = if url.contains("connect_timeout") {
            url.to_owned()
        } else if is_uri(url) {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}connect_timeout={seconds}")
        } else {
            format!("{url} connect_timeout={seconds}")
        };
        Self {
            url,
            shown,
            redactor: Redactor { secrets },
        }
    }
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnInfo")
            .field("shown", &self.shown)
            .finish_non_exhaustive()
    }
}

/// Replaces the password of a connection string wherever it appears in a text.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    /// The password as written in the URL and, when different, percent-decoded.
    secrets: Vec<String>,
}

impl Redactor {
    /// `text` with every occurrence of the password replaced by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_owned(), |text, secret| text.replace(secret, "***"))
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redactor([REDACTED])")
    }
}

fn is_uri(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The URI with the password of its user info and any `password=` parameter replaced, and the
/// passwords found.
fn redact_uri(url: &str) -> (String, Vec<String>) {
    let mut secrets = Vec::new();
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), secrets);
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // libpq splits the user info at the first '@'; taking the last one redacts at least as
    // much when a password holds an unencoded '@'.
    let authority = match authority.rsplit_once('@') {
        Some((user_info, hosts)) => match user_info.split_once(':') {
            Some((user, password)) => {
                remember(&mut secrets, password);
                format!("{user}:***@{hosts}")
            }
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some(("password", value)) => {
                        remember(&mut secrets, value);
                        "password=***".to_owned()
                    }
                    _ => pair.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("&");
            format!("{path}?{query}")
        }
        None => tail.to_owned(),
    };
    (format!("{scheme}://{authority}{tail}"), secrets)
}

/// The key/value string with the value of `password` replaced (quoted or not), and the
/// password found.
fn redact_key_values(conninfo: &str) -> (String, Vec<String>) {
    let mut secrets = Vec::new();
    let mut shown = String::with_capacity(conninfo.len());
    let mut rest = conninfo;
    while let Some(at) = rest.find("password") {
        let (before, from) = rest.split_at(at);
        shown.push_str(before);
        let after_key = from["password".len()..].trim_start();
        let Some(value) = after_key.strip_prefix('=') else {
            shown.push_str("password");
            rest = &from["password".len()..];
            continue;
        };
        let value = value.trim_start();
        let end = if let Some(quoted) = value.strip_prefix('\'') {
            // A quoted value runs to the next quote not escaped by a backslash.
            let mut escaped = false;
            let close = quoted.char_indices().find_map(|(i, c)| match c {
                _ if escaped => {
                    escaped = false;
                    None
                }
                '\\' => {
                    escaped = true;
                    None
                }
                '\'' => Some(i),
                _ => None,
            });
            close.map_or(value.len(), |i| i + 2)
        } else {
            value.find(char::is_whitespace).unwrap_or(value.len())
        };
        let secret = value[..end].trim_matches('\'');
        remember(&mut secrets, secret);
        // libpq unescapes `\'` and `\\` inside quotes.
        remember(
            &mut secrets,
            &secret.replace("\\'", "'").replace("\\\\", "\\"),
        );
        shown.push_str("password=***");
        rest = &value[end..];
    }
    shown.push_str(rest);
    (shown, secrets)
}

/// Remembers a password and, if it differs, its percent-decoded form.
fn remember(secrets: &mut Vec<String>, password: &str) {
    if password.is_empty() {
        return;
    }
    let decoded = percent_decode(password);
    // Longest first, so that a password containing the other is replaced whole.
    for secret in [password.to_owned(), decoded] {
        if !secret.is_empty() && !secrets.contains(&secret) {
            secrets.push(secret);
        }
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Decodes `%XX` escapes; malformed escapes are kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(4500);

    #[test]
    fn uri_passwords_are_redacted_and_remembered() {
        let info = ConnInfo::new("postgres://ada:s3cr%40t@db.example:5432/ums", TIMEOUT);
        assert_eq!(info.shown, "postgres://ada:***@db.example:5432/ums");
        assert_eq!(
            info.url,
            "postgres://ada:s3cr%40t@db.example:5432/ums?connect_timeout=5"
        );
        assert_eq!(
            info.redactor
                .scrub("bad token \"s3cr%40t\"; user s3cr@t; host db.example"),
            "bad token \"***\"; user ***; host db.example"
        );

        let info = ConnInfo::new(
            "postgresql://ada@h1,h2/ums?sslmode=require&password=pw-1&connect_timeout=3",
            TIMEOUT,
        );
        assert_eq!(
            info.shown,
            "postgresql://ada@h1,h2/ums?sslmode=require&password=***&connect_timeout=3"
        );
        assert!(
            info.url.ends_with("connect_timeout=3"),
            "kept: {}",
            info.url
        );
        assert_eq!(info.redactor.scrub("x pw-1 y"), "x *** y");
    }

    #[test]
    fn an_unencoded_at_sign_is_redacted_too() {
        let info = ConnInfo::new("postgres://ada:p@ss@localhost/ums", TIMEOUT);
        assert_eq!(info.shown, "postgres://ada:***@localhost/ums");
        assert!(!info.shown.contains("ss@"));
    }

    #[test]
    fn urls_without_passwords_are_unchanged() {
        for url in [
            "postgres://localhost/ums",
            "postgres://ada@localhost",
            "postgres://[::1]:5433/ums?application_name=ums",
        ] {
            let info = ConnInfo::new(url, TIMEOUT);
            assert_eq!(info.shown, url);
            assert_eq!(info.redactor.scrub("unchanged"), "unchanged");
        }
        assert_eq!(
            ConnInfo::new("postgres://localhost", Duration::from_secs(2)).url,
            "postgres://localhost?connect_timeout=2"
        );
    }

    #[test]
    fn key_value_passwords_are_redacted_quoted_or_not() {
        let info = ConnInfo::new("host=db user=ada password=plain dbname=ums", TIMEOUT);
        assert_eq!(info.shown, "host=db user=ada password=*** dbname=ums");
        assert_eq!(
            info.url,
            "host=db user=ada password=plain dbname=ums connect_timeout=5"
        );

        let info = ConnInfo::new(r"host=db password = 'with space \' q' dbname=ums", TIMEOUT);
        assert_eq!(info.shown, "host=db password=*** dbname=ums");
        assert_eq!(info.redactor.scrub(r"with space \' q"), "***");
    }

    #[test]
    fn debug_shows_no_password() {
        let info = ConnInfo::new("postgres://ada:hunter2@localhost/ums", TIMEOUT);
        let debug = format!("{info:?} {:?}", info.redactor);
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
