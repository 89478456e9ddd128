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
    /// Redacts `url` (with the workspace's one redactor, [`redact::Redacted`]), and bounds
    /// each connection attempt by `connect_timeout` (rounded up to whole seconds; libpq waits
    /// at least 2) unless the URL sets its own.
    pub(crate) fn new(url: &str, connect_timeout: Duration) -> Self {
        let url = url.trim();
        let redactor = redact::Redacted::new(url);
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
            shown: redactor.shown().to_owned(),
            redactor: Redactor(redactor),
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
pub(crate) struct Redactor(redact::Redacted);

impl Redactor {
    /// `text` with every occurrence of the password (as written or percent-decoded) replaced
    /// by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        self.0.scrub(text)
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
    fn unencoded_special_characters_in_a_password_are_redacted_too() {
        for url in [
            "postgres://ada:p@ss@localhost/ums",
            "postgres://ada:p?ss@localhost/ums",
            "postgres://ada:p/ss@localhost/ums",
            "postgres://ada:p#ss@localhost/ums",
        ] {
            let info = ConnInfo::new(url, TIMEOUT);
            assert_eq!(info.shown, "postgres://ada:***@localhost/ums", "{url}");
            assert_eq!(info.redactor.scrub(url), info.shown, "{url}");
        }
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
