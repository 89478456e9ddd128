//! Outgoing mail and the one-time tokens it carries: what a use case puts into a [`Journal`]
//! so that a change, the token it issues and the message announcing it commit together.
//!
//! A message is sealed (encrypted and authenticated by the [`MailSeal`] port) before it is
//! stored: the outbox holds live one-time tokens until delivery, and a copy of the database
//! must not hand them out.
//!
//! [`Journal`]: super::Journal
//! [`MailSeal`]: crate::ports::MailSeal

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Email, TokenHash, UserId};

/// What a one-time e-mailed token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionPurpose {
    /// Proves the account's e-mail address.
    VerifyEmail,
    /// Allows setting a new password without the old one.
    ResetPassword,
}

impl ActionPurpose {
    /// The purpose's storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// A one-time token to be stored (only its digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionToken {
    /// Digest of the token that was e-mailed.
    pub hash: TokenHash,
    /// Whose token it is.
    pub user_id: UserId,
    /// What it allows.
    pub purpose: ActionPurpose,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// After this instant it is refused.
    pub expires_at: DateTime<Utc>,
}

/// Which message a mail is, for the outbox's records and the log (never its content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// "Confirm your e-mail address", with a verification token.
    Verification,
    /// "Reset your password", with a reset token.
    PasswordReset,
    /// "Your password was changed".
    PasswordChanged,
    /// "Your e-mail address was changed", to the old address.
    EmailChanged,
}

impl MailKind {
    /// Every kind.
    pub const ALL: &'static [Self] = &[
        Self::Verification,
        Self::PasswordReset,
        Self::PasswordChanged,
        Self::EmailChanged,
    ];

    /// The storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Verification => "verification",
            Self::PasswordReset => "password_reset",
            Self::PasswordChanged => "password_changed",
            Self::EmailChanged => "email_changed",
        }
    }

    /// The kind stored as `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for MailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An e-mail to send: one plain-text and one HTML rendering of the same message.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Recipient.
    pub to: Email,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

impl fmt::Debug for OutgoingMail {
    // The bodies may hold a live token: never in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingMail")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// A message in the durable outbox: sealed, so only the delivery worker can read it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedMail {
    /// Identifier (UUID v7); also the message's `Message-ID`, so a receiver can drop a
    /// duplicate delivery.
    pub id: Uuid,
    /// Which message it is.
    pub kind: MailKind,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// The [`OutgoingMail`], as [`MailSeal::seal`](crate::ports::MailSeal::seal) made it.
    pub sealed: Vec<u8>,
}

impl fmt::Debug for SealedMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedMail")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for kind in MailKind::ALL {
            assert_eq!(MailKind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(MailKind::parse("spam"), None);
    }

    #[test]
    fn debug_output_hides_the_bodies() {
        let mail = OutgoingMail {
            to: Email::parse("a@example.com").expect("valid"),
            subject: "Reset".to_owned(),
            text: "token: s3cr3t".to_owned(),
            html: "<p>s3cr3t</p>".to_owned(),
        };
        let shown = format!("{mail:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains("a@example.com"), "{shown}");
    }
}
