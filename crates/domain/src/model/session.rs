//! Login sessions: each is a family of rotating refresh tokens.

use chrono::{DateTime, Utc};

use super::{PasswordHash, SessionId, TenantId, UserId};

/// The SHA-256 digest of an opaque token, hex-encoded. Only digests are ever stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    /// Wraps a digest produced by [`SecureRandom`](crate::ports::SecureRandom) or read back.
    #[must_use]
    pub fn new(hex: String) -> Self {
        Self(hex)
    }

    /// The hex digest.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A login session. Its refresh tokens rotate; the session's own lifetime is fixed at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Identifier, carried in access tokens as `sid`.
    pub id: SessionId,
    /// Whose session it is.
    pub user_id: UserId,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Last login or refresh.
    pub last_used_at: DateTime<Utc>,
    /// After this instant no refresh token of the session is honoured.
    pub expires_at: DateTime<Utc>,
    /// Set when the session was logged out or revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The client's `User-Agent` at login, truncated.
    pub user_agent: Option<String>,
    /// The client's address at login.
    pub ip: Option<String>,
    /// The tenant the session's access tokens are scoped to (chosen at login).
    pub tenant: Option<TenantId>,
}

impl Session {
    /// Whether the session can still be used at `now`.
    #[must_use]
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// A session to be created together with its first refresh token.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The session itself.
    pub session: Session,
    /// Digest of its first refresh token.
    pub refresh_token: TokenHash,
    /// The password hash the login checked the password against: the store creates the
    /// session only if it is still the user's (and the user still active), so a login that
    /// checked a password just changed or reset opens no session.
    pub verified_password: PasswordHash,
}

/// A refresh token as stored, found by its digest without changing anything: its session and
/// whether (when) it was spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRefreshToken {
    /// The session the token belongs to, as stored now.
    pub session: Session,
    /// When the token was spent by a rotation; `None` while it is unspent.
    pub used_at: Option<DateTime<Utc>>,
}

/// What happened when a refresh token was presented for rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshRotation {
    /// The token was live and unused: it is now spent and the new token replaces it.
    Rotated(Session),
    /// The token had been spent before: someone is replaying it. Nothing was changed.
    Reused(Session),
    /// The token belongs to a revoked or expired session. Nothing was changed.
    Dead(Session),
    /// No such token.
    Unknown,
}
