//! `Password`: a new password that satisfies the length rules, and `PasswordHash`, its stored form.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// bcrypt reads at most 72 bytes of a password and silently ignores the rest; UMS refuses
/// longer passwords instead of truncating them.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// The configurable rules a new password must meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordRules {
    /// Fewest characters (Unicode scalar values) allowed. Default 10.
    pub min_length: usize,
    /// Lowest strength score (0-4, zxcvbn's scale) allowed. Default 3.
    pub min_score: u8,
}

impl Default for PasswordRules {
    fn default() -> Self {
        Self {
            min_length: 10,
            min_score: 3,
        }
    }
}

/// Why a new password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Shorter than [`PasswordRules::min_length`].
    #[error("must be at least {min} characters long")]
    TooShort {
        /// The configured minimum.
        min: usize,
    },
    /// Longer than [`MAX_PASSWORD_BYTES`] bytes in UTF-8.
    #[error("must be at most {MAX_PASSWORD_BYTES} bytes long (UTF-8)")]
    TooLong,
    /// Guessable, by the strength estimator's judgement.
    #[error("is too easy to guess: {0}")]
    Weak(String),
}

/// A new password that meets the length rules. Its strength is checked by the use case, which
/// knows the user's other inputs (e-mail, username) that must not make it guessable.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    /// Checks the length rules.
    ///
    /// # Errors
    /// [`PasswordError::TooShort`] or [`PasswordError::TooLong`].
    pub fn new(raw: SecretString, rules: &PasswordRules) -> Result<Self, PasswordError> {
        let text = raw.expose_secret();
        if text.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        if text.chars().count() < rules.min_length {
            return Err(PasswordError::TooShort {
                min: rules.min_length,
            });
        }
        Ok(Self(raw))
    }

    /// The secret itself, for the hasher and the strength estimator.
    #[must_use]
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

/// A password hash in the hasher's self-describing format (for bcrypt, `$2b$12$...`).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a hash read from storage or produced by a hasher.
    #[must_use]
    pub fn new(hash: String) -> Self {
        Self(hash)
    }

    /// The encoded hash, for storage.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn length_is_counted_in_characters_and_capped_in_bytes() {
        let rules = PasswordRules::default();
        assert!(Password::new(secret("correct horse"), &rules).is_ok());
        assert_eq!(
            Password::new(secret("short"), &rules).err(),
            Some(PasswordError::TooShort { min: 10 })
        );
        assert!(Password::new(secret(&"a".repeat(72)), &rules).is_ok());
        assert_eq!(
            Password::new(secret(&"a".repeat(73)), &rules).err(),
            Some(PasswordError::TooLong)
        );
        // 25 three-byte characters are 75 bytes: refused though only 25 characters.
        assert_eq!(
            Password::new(secret(&"€".repeat(25)), &rules).err(),
            Some(PasswordError::TooLong)
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let rules = PasswordRules::default();
        let password = Password::new(secret("hunter2hunter2"), &rules).map(|p| format!("{p:?}"));
        assert_eq!(password.as_deref(), Ok("Password([REDACTED])"));
        assert!(!format!("{:?}", PasswordHash::new("$2b$04$abc".into())).contains("abc"));
    }
}
