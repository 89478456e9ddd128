//! Connection strings fit for logs and error messages: the one redactor of the workspace, for
//! `DATABASE_URL`, `REDIS_URL` and the like, used by the PostgreSQL and Redis adapters and by
//! the composition root alike.
//!
//! [`Redacted::new`] reads a URL (`scheme://user:password@host:port/path?query#fragment`) or
//! a libpq key/value string (`host=db password='...'`) and replaces every secret in it by
//! [`MASK`]: the password of the user info, and the value of every query parameter or key
//! whose name speaks of a secret (`password`, `pass`, `sslpassword`, `pwd`, `secret`,
//! `token`, in any case). It also remembers the secrets, as written and percent-decoded, so
//! that [`Redacted::scrub`] can remove them from text a driver wrote (an error message may
//! quote the URL, or the password it decoded from it).
//!
//! # Malformed URLs
//!
//! A password with unencoded `@`, `:`, `/`, `?`, `#` or `%` makes a URL ambiguous
//! (`postgres://u:p?ss@db/x`: a password `p?ss`, or a host `u` with a query?). Drivers differ
//! (libpq splits the user info at the first `@`), so the redactor takes the side that hides
//! more: the user info ends at the **last** `@`, and the password runs from the first `:` of
//! the user info to there. Whatever a password holds, it is then masked whole. The price is
//! paid by URLs whose path or query holds an `@` after a password: everything up to that `@`
//! is masked, and the host shown is what follows it. A URL whose user info has no password
//! (`postgres://ada@db/x?password=...`), or whose last `@` follows a secret query parameter
//! (`postgres://db:5432/x?password=p@ss`: the `@` is in its value), is read as host and
//! tail, and its query masked.
//!
//! Text that is neither a URL nor a key/value string nor `user:password@host` is shown as
//! [`UNPARSABLE`]: it might be a bare secret.

use std::fmt;

/// What a secret is replaced by.
pub const MASK: &str = "***";

/// What is shown for text that cannot be read as a connection string.
pub const UNPARSABLE: &str = "[unparsable URL]";

/// The names of query parameters and keys whose values are masked, as substrings of the
/// lower-cased, percent-decoded name.
const SECRET_NAMES: [&str; 4] = ["pass", "pwd", "secret", "token"];

/// A connection string with its secrets masked, and the secrets it held (to scrub text).
#[derive(Clone, Default)]
pub struct Redacted {
    shown: String,
    /// Every secret, as written and percent-decoded, longest first.
    secrets: Vec<String>,
}

impl Redacted {
    /// Reads `connection` (a URL or a libpq key/value string) and masks its secrets.
    #[must_use]
    pub fn new(connection: &str) -> Self {
        let text = connection.trim();
        let mut secrets = Secrets::default();
        let shown = match split_scheme(text) {
            Some((scheme, rest)) => {
                format!("{scheme}://{}", redact_after_scheme(rest, &mut secrets))
            }
            None if text.is_empty() => String::new(),
            None if text.contains('=') => redact_key_values(text, &mut secrets),
            None if text.contains('@') => redact_after_scheme(text, &mut secrets),
            None => UNPARSABLE.to_owned(),
        };
        Self {
            shown,
            secrets: secrets.0,
        }
    }

    /// The connection string with every secret replaced by [`MASK`].
    #[must_use]
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// `text` with every occurrence of a secret of the connection string (as written or
    /// percent-decoded) replaced by [`MASK`].
    #[must_use]
    pub fn scrub(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_owned(), |text, secret| text.replace(secret, MASK))
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redacted")
            .field("shown", &self.shown)
            .finish_non_exhaustive()
    }
}

/// `url` with its secrets masked: [`Redacted::new`]`(url).shown()`.
#[must_use]
pub fn redact_url(url: &str) -> String {
    Redacted::new(url).shown
}

/// The secrets found so far.
#[derive(Default)]
struct Secrets(Vec<String>);

impl Secrets {
    /// Remembers a secret and, if it differs, its percent-decoded form.
    fn remember(&mut self, secret: &str) {
        for form in [secret.to_owned(), percent_decode(secret)] {
            if !form.is_empty() && !self.0.contains(&form) {
                self.0.push(form);
            }
        }
        // Longest first, so that a secret containing another is replaced whole.
        self.0.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// The scheme and what follows `://`, if `text` starts with a scheme (RFC 3986: a letter,
/// then letters, digits, `+`, `-`, `.`).
fn split_scheme(text: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// What follows `scheme://`: `[user[:password]@]host[:port][/path][?query][#fragment]`.
fn redact_after_scheme(rest: &str, secrets: &mut Secrets) -> String {
    match user_info(rest) {
        Some((user, password, after)) => {
            secrets.remember(password);
            format!("{user}:{MASK}@{}", host_and_tail(after, secrets))
        }
        None => host_and_tail(rest, secrets),
    }
}

/// The user, the password and what follows the user info, when `rest` (what follows
/// `scheme://`) has a password in its user info: up to the last `@`, split at the first `:`.
fn user_info(rest: &str) -> Option<(&str, &str, &str)> {
    // An authority-less URL (`redis+unix:///run/redis.sock?pass=...`) has no user info.
    if rest.starts_with('/') {
        return None;
    }
    let (info, after) = rest.rsplit_once('@')?;
    let (user, password) = info.split_once(':')?;
    // A `/`, `?` or `#` before the first `:` means that `:` is not the user info's, and a
    // secret parameter before the `@` (`db:5432/x?password=p@ss`) that the `@` is in its
    // value: either way the `@` is in a path or query, and there is no user info password.
    if user.contains(['/', '?', '#']) || names_a_secret_parameter(info) {
        return None;
    }
    Some((user, password, after))
}

/// Whether `text` has a query naming a secret parameter.
fn names_a_secret_parameter(text: &str) -> bool {
    text.split_once('?').is_some_and(|(_, query)| {
        query.split('&').any(|pair| {
            pair.split_once('=')
                .is_some_and(|(key, _)| is_secret_name(key))
        })
    })
}

/// `host[:port]` as written, then the path, query and fragment with the query's secrets
/// masked.
fn host_and_tail(text: &str, secrets: &mut Secrets) -> String {
    let host_end = text.find(['/', '?', '#']).unwrap_or(text.len());
    let (host, tail) = text.split_at(host_end);
    let Some((path, after)) = tail.split_once('?') else {
        return text.to_owned();
    };
    let (query, fragment) = match after.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (after, None),
    };
    let query = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if is_secret_name(key) => {
                secrets.remember(value);
                format!("{key}={MASK}")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    match fragment {
        Some(fragment) => format!("{host}{path}?{query}#{fragment}"),
        None => format!("{host}{path}?{query}"),
    }
}

/// Whether a parameter or key of this name holds a secret.
fn is_secret_name(name: &str) -> bool {
    let name = percent_decode(name).to_ascii_lowercase();
    SECRET_NAMES.iter().any(|secret| name.contains(secret))
}

/// A libpq key/value string (`key=value` pairs separated by whitespace, values optionally
/// single-quoted with `\'` and `\\` escapes) with the values of secret keys masked.
fn redact_key_values(text: &str, secrets: &mut Secrets) -> String {
    let mut shown = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        shown.push_str(&rest[..rest.len() - trimmed.len()]);
        rest = trimmed;
        if rest.is_empty() {
            return shown;
        }
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        let Some(after_equals) = rest[key_end..].trim_start().strip_prefix('=') else {
            // Not a pair: shown as written (`key` is not empty, so this makes progress).
            shown.push_str(key);
            rest = &rest[key_end..];
            continue;
        };
        let value_text = after_equals.trim_start();
        let value_at = rest.len() - value_text.len();
        let (value, consumed) = match value_text.strip_prefix('\'') {
            Some(quoted) => match closing_quote(quoted) {
                Some(close) => (&quoted[..close], close + 2),
                None => (quoted, value_text.len()),
            },
            None => {
                let end = value_text
                    .find(char::is_whitespace)
                    .unwrap_or(value_text.len());
                (&value_text[..end], end)
            }
        };
        let pair_end = value_at + consumed;
        if is_secret_name(key) {
            secrets.remember(value);
            // libpq unescapes `\'` and `\\` inside quotes.
            secrets.remember(&value.replace("\\'", "'").replace("\\\\", "\\"));
            shown.push_str(key);
            shown.push('=');
            shown.push_str(MASK);
        } else {
            shown.push_str(&rest[..pair_end]);
        }
        rest = &rest[pair_end..];
    }
}

/// The byte index of the first `'` of `quoted` not escaped by a backslash.
fn closing_quote(quoted: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in quoted.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '\'' => return Some(i),
            _ => {}
        }
    }
    None
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
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn user_info_passwords_are_masked_and_the_rest_kept() {
        for (url, shown) in [
            (
                "postgres://ada:s3cr%40t@db.example:5432/ums",
                "postgres://ada:***@db.example:5432/ums",
            ),
            ("redis://:s3cret@cache:6379/2", "redis://:***@cache:6379/2"),
            (
                "redis://ums:s3cret@cache/0?protocol=resp3",
                "redis://ums:***@cache/0?protocol=resp3",
            ),
            (
                "postgres://u:pw@db/x?sslmode=require#frag",
                "postgres://u:***@db/x?sslmode=require#frag",
            ),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn urls_without_secrets_are_unchanged() {
        for url in [
            "postgres://localhost/ums",
            "postgres://ada@localhost",
            "postgres://[::1]:5433/ums?application_name=ums",
            "redis://127.0.0.1:6379",
            "redis://cache",
            "postgres://db/x?application_name=a@b",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[test]
    fn secret_query_parameters_are_masked() {
        assert_eq!(
            redact_url(
                "postgresql://ada@h1,h2/ums?sslmode=require&password=pw-1&connect_timeout=3"
            ),
            "postgresql://ada@h1,h2/ums?sslmode=require&password=***&connect_timeout=3"
        );
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock?db=1&pass=s3cret"),
            "redis+unix:///run/redis.sock?db=1&pass=***"
        );
        assert_eq!(
            redact_url("redis+unix:///p?db=1&pass=x:y@z"),
            "redis+unix:///p?db=1&pass=***"
        );
        assert_eq!(
            redact_url("postgres://ada@db/x?SSLPassword=k&Password=p@w"),
            "postgres://ada@db/x?SSLPassword=***&Password=***"
        );
        // The `:` of a query is not the user info's, nor is an `@` in a password parameter.
        assert_eq!(
            redact_url("postgres://db/x?password=p:w@b"),
            "postgres://db/x?password=***"
        );
        assert_eq!(
            redact_url("postgres://db:5432/x?password=p@ss"),
            "postgres://db:5432/x?password=***"
        );
    }

    #[test]
    fn unencoded_special_characters_in_a_password_hide_all_of_it() {
        for url in [
            "postgres://u:p?ss@db/x",
            "postgres://u:p#ss@db/x",
            "postgres://u:p/ss@db/x",
            "postgres://u:p@ss@db/x",
            "postgres://u:p:ss@db/x",
            "postgres://u:p%ss@db/x",
        ] {
            let shown = redact_url(url);
            assert_eq!(shown, "postgres://u:***@db/x", "{url}");
        }
        assert_eq!(redact_url("redis://:pa/ss@host"), "redis://:***@host");
        assert_eq!(
            redact_url("postgres://u:p@ss@db/x?sslmode=require"),
            "postgres://u:***@db/x?sslmode=require"
        );
    }

    #[test]
    fn key_value_strings_mask_passwords_quoted_or_not() {
        let plain = Redacted::new("host=db user=ada password=plain dbname=ums");
        assert_eq!(plain.shown(), "host=db user=ada password=*** dbname=ums");
        assert_eq!(plain.scrub("x plain y"), "x *** y");

        let quoted = Redacted::new(r"host=db password = 'with space \' q' dbname=ums");
        assert_eq!(quoted.shown(), "host=db password=*** dbname=ums");
        assert_eq!(quoted.scrub(r"with space \' q"), "***");
        assert_eq!(quoted.scrub("with space ' q"), "***");

        let unterminated = Redacted::new("host=db sslpassword='open ended");
        assert_eq!(unterminated.shown(), "host=db sslpassword=***");
        assert_eq!(
            Redacted::new("host=db stray password=pw").shown(),
            "host=db stray password=***"
        );
    }

    #[test]
    fn other_text_is_hidden_or_read_as_user_info() {
        assert_eq!(redact_url("a:b@c"), "a:***@c");
        assert_eq!(redact_url("garbage"), UNPARSABLE);
        assert_eq!(redact_url("   "), "");
        // Not a scheme: read as a key/value string.
        assert_eq!(redact_url("x y://z password=p"), "x y://z password=***");
    }

    #[test]
    fn scrub_removes_the_password_as_written_and_decoded() {
        let redacted = Redacted::new("postgres://ada:s3cr%40t@db.example:5432/ums");
        assert_eq!(
            redacted.scrub("bad token \"s3cr%40t\"; user s3cr@t; host db.example"),
            "bad token \"***\"; user ***; host db.example"
        );
        assert_eq!(
            Redacted::new("redis://cache").scrub("unchanged"),
            "unchanged"
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let redacted = Redacted::new("postgres://ada:hunter2@localhost/ums?password=swordfish");
        let debug = format!("{redacted:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("swordfish"), "{debug}");
    }

    /// A scheme, as the URLs of the service's dependencies have them.
    fn scheme() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9]{1,9}(\\+[a-z]{2,5})?"
    }

    /// A user name: unreserved characters only (a `:` or `@` in one is always encoded).
    fn user() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._~-]{0,12}"
    }

    /// Any printable ASCII (the URL-special `@ : / ? # %` included) and some non-ASCII.
    fn password() -> impl Strategy<Value = String> {
        "[ -~é€ß]{3,24}"
    }

    /// A host name or IPv4/IPv6 address, with an optional port.
    fn host() -> impl Strategy<Value = String> {
        (
            prop_oneof![
                "[a-z][a-z0-9-]{0,15}(\\.[a-z]{2,6}){0,2}",
                "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
                Just("[::1]".to_owned()),
            ],
            proptest::option::of(1u16..),
        )
            .prop_map(|(host, port)| match port {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
    }

    /// A path and query without secrets (and without `@`, see the crate's documentation).
    fn tail() -> impl Strategy<Value = String> {
        (
            "(/[A-Za-z0-9._~-]{0,10}){0,3}",
            proptest::option::of("(sslmode|db|application_name|protocol)=[A-Za-z0-9._-]{0,8}"),
        )
            .prop_map(|(path, query)| match query {
                Some(query) => format!("{path}?{query}"),
                None => path,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Whatever a password holds, the shown URL never contains it, and keeps the scheme,
        /// the user, the host and the rest exactly.
        #[test]
        fn the_password_never_shows_and_the_rest_is_kept(
            scheme in scheme(),
            user in user(),
            password in password(),
            host in host(),
            tail in tail(),
        ) {
            let expected = format!("{scheme}://{user}:{MASK}@{host}{tail}");
            prop_assume!(!expected.contains(&password));
            let url = format!("{scheme}://{user}:{password}@{host}{tail}");

            let redacted = Redacted::new(&url);

            prop_assert!(!redacted.shown().contains(&password), "{url} -> {}", redacted.shown());
            prop_assert_eq!(redacted.shown(), expected.as_str());
            // (A password with `*` could be re-formed by a mask next to its remains.)
            if !password.contains('*') {
                let quoted = format!("could not connect with {password} to {url}");
                prop_assert!(!redacted.scrub(&quoted).contains(&password));
            }
        }

        /// A secret query parameter never shows either, whatever its value holds (short of
        /// a `&` or `#`, which end it).
        #[test]
        fn a_password_parameter_never_shows(
            scheme in scheme(),
            host in host(),
            password in "[ -\"$-%'-~]{3,24}",
        ) {
            let expected = format!("{scheme}://{host}/db?sslmode=require&password={MASK}");
            prop_assume!(!expected.contains(&password));
            let url = format!("{scheme}://{host}/db?sslmode=require&password={password}");

            let shown = redact_url(&url);

            prop_assert!(!shown.contains(&password), "{url} -> {shown}");
            prop_assert_eq!(shown, expected);
        }

        /// In a key/value string, a password (quoted when it holds spaces or quotes) never
        /// shows, and the other pairs are kept.
        #[test]
        fn a_key_value_password_never_shows(
            host in "[a-z][a-z0-9.-]{0,15}",
            password in "[!-~ ]{3,24}",
        ) {
            let quoted = format!("'{}'", password.replace('\\', "\\\\").replace('\'', "\\'"));
            let conninfo = format!("host={host} password={quoted} dbname=ums");
            let expected = format!("host={host} password={MASK} dbname=ums");
            prop_assume!(!expected.contains(&password));

            let redacted = Redacted::new(&conninfo);

            prop_assert_eq!(redacted.shown(), expected.as_str());
            if !password.contains('*') {
                let text = format!("bad {password}");
                prop_assert!(!redacted.scrub(&text).contains(&password));
            }
        }
    }
}
