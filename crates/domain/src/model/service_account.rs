//! Service accounts: other services (resource servers) that call UMS on their own behalf, to
//! introspect the access tokens their clients present. Each has a public client id and a
//! secret of which only the digest is stored.

use std::fmt;

use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq as _;

use super::{ServiceAccountId, TokenHash};

/// What every client id starts with, so that one is recognisable in configuration files and
/// by secret scanners.
pub const CLIENT_ID_PREFIX: &str = "ums_sa_";

/// Random characters of a generated client id after [`CLIENT_ID_PREFIX`]: 22 URL-safe base64
/// characters, 132 bits.
const CLIENT_ID_RANDOM_CHARS: usize = 22;

/// Why a service account name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceAccountNameError {
    /// Fewer than 3 or more than 64 characters.
    #[error("must be 3 to 64 characters long")]
    Length,
    /// A character outside `[a-zA-Z0-9_.-]`, or a first character that is not a letter or
    /// a digit.
    #[error(
        "may contain only letters, digits, '_', '.' and '-', and must start with a letter or digit"
    )]
    Characters,
}

/// A service account's name: 3 to 64 characters of `[a-zA-Z0-9_.-]`, starting with a letter or
/// a digit (so it is one word on a command line). Case is kept for display; uniqueness ignores
/// it, as for usernames.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceAccountName(String);

impl ServiceAccountName {
    /// Validates a name (surrounding white space is trimmed).
    ///
    /// # Errors
    /// [`ServiceAccountNameError`] says what is wrong.
    pub fn parse(raw: &str) -> Result<Self, ServiceAccountNameError> {
        let name = raw.trim();
        let allowed = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        let first_ok = name
            .chars()
            .next()
            .is_none_or(|c| c.is_ascii_alphanumeric());
        if !allowed || !first_ok {
            return Err(ServiceAccountNameError::Characters);
        }
        if !(3..=64).contains(&name.len()) {
            return Err(ServiceAccountNameError::Length);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as given.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceAccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a client id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a UMS client id (ums_sa_ and 1 to 64 URL-safe characters)")]
pub struct ClientIdError;

/// A service account's public identifier: `ums_sa_` and URL-safe characters
/// (`[A-Za-z0-9_-]`). Not a secret: it names the account, as a username does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    /// Validates a client id as presented (exactly; no trimming).
    ///
    /// # Errors
    /// [`ClientIdError`] for anything that is not `ums_sa_` and 1 to 64 URL-safe characters.
    pub fn parse(raw: &str) -> Result<Self, ClientIdError> {
        let rest = raw.strip_prefix(CLIENT_ID_PREFIX).ok_or(ClientIdError)?;
        let url_safe = rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        if !url_safe || !(1..=64).contains(&rest.len()) {
            return Err(ClientIdError);
        }
        Ok(Self(raw.to_owned()))
    }

    /// A new client id from `random`, URL-safe random characters (a plaintext of
    /// [`SecureRandom::new_token`](crate::ports::SecureRandom::new_token)), of which the first
    /// 22 are used.
    ///
    /// # Errors
    /// [`ClientIdError`] when `random` has characters that are not URL-safe or is empty.
    pub fn from_random(random: &str) -> Result<Self, ClientIdError> {
        let chars: String = random.chars().take(CLIENT_ID_RANDOM_CHARS).collect();
        Self::parse(&format!("{CLIENT_ID_PREFIX}{chars}"))
    }

    /// The client id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A service account, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    /// Identifier (UUID v7).
    pub id: ServiceAccountId,
    /// Unique name, regardless of case.
    pub name: ServiceAccountName,
    /// What the account is for; possibly empty.
    pub description: String,
    /// Public identifier for HTTP Basic authentication; unique.
    pub client_id: ClientId,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated, roughly (updated at most about once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A service account with the digest of its secret: what is stored, and what authentication
/// reads back. The secret itself is never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceAccountCredentials {
    /// The account.
    pub account: ServiceAccount,
    /// The digest of its secret ([`SecureRandom::digest`](crate::ports::SecureRandom::digest)).
    pub secret_hash: TokenHash,
}

impl ServiceAccountCredentials {
    /// Whether `presented` (the digest of a presented secret) is this account's, compared in
    /// time independent of where the digests differ.
    #[must_use]
    pub fn secret_matches(&self, presented: &TokenHash) -> bool {
        digests_match(&self.secret_hash, presented)
    }
}

impl fmt::Debug for ServiceAccountCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountCredentials")
            .field("account", &self.account)
            .field("secret_hash", &"[REDACTED]")
            .finish()
    }
}

/// Whether two digests are equal, in time independent of where they differ (their lengths,
/// which are public, aside).
#[must_use]
pub fn digests_match(a: &TokenHash, b: &TokenHash) -> bool {
    bool::from(a.as_str().as_bytes().ct_eq(b.as_str().as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn names_are_bounded_words() {
        for good in [
            "billing",
            "Billing-API",
            "a.b_c",
            "x12",
            "n".repeat(64).as_str(),
        ] {
            assert_eq!(ServiceAccountName::parse(good).unwrap().as_str(), good);
        }
        assert_eq!(
            ServiceAccountName::parse("  billing  ").unwrap().as_str(),
            "billing"
        );
        for (bad, error) in [
            ("ab", ServiceAccountNameError::Length),
            ("", ServiceAccountNameError::Length),
            ("n".repeat(65).as_str(), ServiceAccountNameError::Length),
            ("two words", ServiceAccountNameError::Characters),
            ("-leading", ServiceAccountNameError::Characters),
            (".hidden", ServiceAccountNameError::Characters),
            ("naïve", ServiceAccountNameError::Characters),
            ("nul\0byte", ServiceAccountNameError::Characters),
        ] {
            assert_eq!(ServiceAccountName::parse(bad), Err(error), "{bad:?}");
        }
    }

    #[test]
    fn client_ids_have_the_prefix_and_url_safe_characters() {
        let id = ClientId::from_random("AbC-_0123456789abcdefghijklmnop").unwrap();
        assert_eq!(id.as_str(), "ums_sa_AbC-_0123456789abcdefg");
        assert_eq!(ClientId::parse(id.as_str()), Ok(id));
        for bad in [
            "",
            "ums_sa_",
            "sa_abc",
            "UMS_SA_abc",
            "ums_sa_a:b",
            "ums_sa_a b",
            " ums_sa_abc",
            format!("ums_sa_{}", "a".repeat(65)).as_str(),
        ] {
            assert_eq!(ClientId::parse(bad), Err(ClientIdError), "{bad:?}");
        }
        assert!(ClientId::from_random("").is_err());
        assert!(ClientId::from_random("not/url+safe").is_err());
    }

    #[test]
    fn digests_match_only_when_equal() {
        let a = TokenHash::new("ab".repeat(32));
        assert!(digests_match(&a, &TokenHash::new("ab".repeat(32))));
        assert!(!digests_match(&a, &TokenHash::new("ac".repeat(32))));
        assert!(!digests_match(&a, &TokenHash::new("ab".repeat(31))));
        assert!(!digests_match(&a, &TokenHash::new(String::new())));
    }

    #[test]
    fn credentials_never_show_the_digest() {
        let credentials = ServiceAccountCredentials {
            account: ServiceAccount {
                id: ServiceAccountId::from_uuid(uuid::Uuid::from_u128(1)),
                name: ServiceAccountName::parse("billing").unwrap(),
                description: String::new(),
                client_id: ClientId::parse("ums_sa_abc").unwrap(),
                created_at: DateTime::from_timestamp(0, 0).unwrap(),
                last_used_at: None,
            },
            secret_hash: TokenHash::new("f00d".repeat(16)),
        };
        let shown = format!("{credentials:?}");
        assert!(!shown.contains("f00d"), "{shown}");
        assert!(credentials.secret_matches(&TokenHash::new("f00d".repeat(16))));
    }
}
