//! `Username`: 3 to 32 characters of `[a-zA-Z0-9_.-]`.

use std::fmt;

use serde::{Serialize, Serializer};

/// Why a username was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// Fewer than 3 or more than 32 characters.
    #[error("must be 3 to 32 characters long")]
    Length,
    /// A character outside `[a-zA-Z0-9_.-]`.
    #[error("may contain only letters, digits, '_', '.' and '-'")]
    Characters,
}

/// A validated username. Case is kept for display; uniqueness and login ignore it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// Validates a username (surrounding white space is trimmed).
    ///
    /// # Errors
    /// [`UsernameError`] says what is wrong.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        let name = raw.trim();
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(UsernameError::Characters);
        }
        if !(3..=32).contains(&name.len()) {
            return Err(UsernameError::Length);
        }
        Ok(Self(name.to_owned()))
    }

    /// The username as given.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Username {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet() {
        assert!(Username::parse("Ada_L.ove-1").is_ok());
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn refuses_bad_lengths_and_characters() {
        assert_eq!(Username::parse("ab"), Err(UsernameError::Length));
        assert_eq!(Username::parse(&"a".repeat(33)), Err(UsernameError::Length));
        assert_eq!(
            Username::parse("ada lovelace"),
            Err(UsernameError::Characters)
        );
        assert_eq!(Username::parse("ada@home"), Err(UsernameError::Characters));
        assert_eq!(Username::parse("ädä"), Err(UsernameError::Characters));
    }
}
