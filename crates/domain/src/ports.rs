//! Ports: the traits through which the domain reaches the outside world.
//!
//! Each trait's rustdoc says what an adapter MUST do; the shared contract suite checks it
//! against every adapter of the port. With the `mocks` feature, mockall mocks of every port
//! (`MockUserStore`, `MockClock`, ...) are exported for other crates' tests.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use crate::BoxError;
use crate::model::{
    Credentials, Email, NewSession, NewUser, Password, PasswordHash, ProfileChanges,
    RefreshRotation, Role, Session, SessionId, TokenHash, User, UserId, UserVersion, Username,
};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// A unique field whose value was already taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueField {
    /// The e-mail address (compared lower-cased).
    Email,
    /// The username (compared case-insensitively).
    Username,
}

/// Failure of a storage port.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint refused the write.
    #[error("{0:?} is already taken")]
    Duplicate(UniqueField),
    /// The row to change does not exist.
    #[error("not found")]
    NotFound,
    /// The row exists but its version is not the one the caller expected.
    #[error("the stored version differs from the expected one")]
    StaleVersion,
    /// The store cannot be reached in time (pool exhausted, server down). Worth retrying.
    #[error("storage is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("storage failure")]
    Unexpected(#[source] BoxError),
}

/// How a user names themselves at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// By e-mail address.
    Email(Email),
    /// By username, matched regardless of case.
    Username(Username),
}

/// What a one-time e-mailed token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone)]
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

/// Persistent user accounts, with their credentials and one-time tokens.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait::async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user.
    ///
    /// # Errors
    /// MUST return `StoreError::Duplicate(UniqueField::Email)` when the e-mail is taken and
    /// `Duplicate(UniqueField::Username)` when the username is taken regardless of case;
    /// `Unavailable` when the store cannot be reached.
    async fn insert(&self, user: NewUser) -> Result<User, StoreError>;

    /// The user with this id, if any.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected` only; a missing user is `Ok(None)`.
    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// The user and password hash for a login name (e-mail exactly as normalised, or
    /// username regardless of case).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected` only; no match is `Ok(None)`.
    async fn find_credentials(&self, login: &Login) -> Result<Option<Credentials>, StoreError>;

    /// The user and password hash by id.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected` only; no match is `Ok(None)`.
    async fn find_credentials_by_id(&self, id: UserId) -> Result<Option<Credentials>, StoreError>;

    /// Applies profile changes, bumps the version and sets `updated_at` to `at`. With
    /// `expected_version`, the change applies only if the stored version equals it.
    ///
    /// # Errors
    /// MUST return `NotFound` for an unknown id, `StaleVersion` when `expected_version` is given
    /// and differs (nothing is written), `Duplicate(UniqueField::Username)` when the new
    /// username is taken by another user.
    async fn update_profile(
        &self,
        id: UserId,
        changes: ProfileChanges,
        expected_version: Option<UserVersion>,
        at: DateTime<Utc>,
    ) -> Result<User, StoreError>;

    /// Replaces the password hash and, in the same transaction, revokes (sets `revoked_at` to
    /// `at` on) every live session of the user except `keep`, returning the ids it revoked.
    ///
    /// # Errors
    /// MUST return `NotFound` for an unknown id; on any error nothing is written.
    async fn change_password(
        &self,
        id: UserId,
        hash: PasswordHash,
        keep: Option<SessionId>,
        at: DateTime<Utc>,
    ) -> Result<Vec<SessionId>, StoreError>;

    /// Stores the digest of a one-time token.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn insert_action_token(&self, token: ActionToken) -> Result<(), StoreError>;

    /// Spends an e-mail verification token and marks its user's address verified, in one
    /// transaction. A token is spent at most once, even under concurrent calls.
    ///
    /// Returns the user whose address it verified; `None` when the token is unknown, spent,
    /// expired at `at`, or for another purpose (nothing is written then).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn verify_email(
        &self,
        token: &TokenHash,
        at: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError>;
}

/// Persistent login sessions and their rotating refresh tokens.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    /// Creates a session with its first refresh token and sets the user's `last_login_at` to
    /// the session's `created_at`, in one transaction.
    ///
    /// # Errors
    /// `NotFound` if the user does not exist; `Unavailable` or `Unexpected`.
    async fn create(&self, new: NewSession) -> Result<(), StoreError>;

    /// The session with this id, revoked or not.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError>;

    /// Spends the refresh token whose digest is `presented` and adds `replacement` to the same
    /// session, setting its `last_used_at` to `at`, in one transaction.
    ///
    /// MUST be atomic: of any number of concurrent calls with the same unspent token, exactly
    /// one returns `Rotated`; the others see `Reused`. Returns `Reused` (writing nothing) for a
    /// token spent before, `Dead` (writing nothing) when the session is revoked or expired at
    /// `at`, and `Unknown` for a digest never stored.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn rotate_refresh_token(
        &self,
        presented: &TokenHash,
        replacement: &TokenHash,
        at: DateTime<Utc>,
    ) -> Result<RefreshRotation, StoreError>;

    /// Every session of the user, revoked and expired ones included, newest (`created_at`)
    /// first.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn list_for_user(&self, user: UserId) -> Result<Vec<Session>, StoreError>;

    /// Revokes one session of one user. Returns `true` if it was live and is now revoked,
    /// `false` if it was already revoked, or is not that user's.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn revoke(
        &self,
        user: UserId,
        id: SessionId,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Revokes every live session of the user, returning the ids it revoked.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn revoke_all(
        &self,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<Vec<SessionId>, StoreError>;

    /// Sessions revoked at or after `since`, with their revocation time, so that an in-process
    /// revocation list can be rebuilt after a restart.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn revoked_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(SessionId, DateTime<Utc>)>, StoreError>;
}

/// Failure of the password hasher.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError(#[source] pub BoxError);

/// Slow, salted password hashing.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait::async_trait]
pub trait PasswordHasher: Send + Sync {
    /// Hashes a new password. MUST NOT block the async runtime.
    ///
    /// # Errors
    /// [`HashError`] when the underlying library fails.
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError>;

    /// Whether `candidate` matches `hash`, in time independent of where they differ. MUST
    /// return `Ok(false)` (never a truncated match) for a candidate over 72 bytes.
    ///
    /// # Errors
    /// [`HashError`] when the hash is malformed or the library fails.
    async fn verify(
        &self,
        candidate: &SecretString,
        hash: &PasswordHash,
    ) -> Result<bool, HashError>;

    /// Spends the same time as [`verify`](Self::verify) against a real hash and matches
    /// nothing, so an unknown login costs as much as a wrong password.
    ///
    /// # Errors
    /// [`HashError`] when the library fails.
    async fn verify_dummy(&self, candidate: &SecretString) -> Result<(), HashError>;
}

/// A password strength estimate on zxcvbn's 0-4 scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrengthVerdict {
    /// 0 (guessable in a few tries) to 4 (very unguessable).
    pub score: u8,
    /// Why the score is low, and what to do instead, when it is.
    pub feedback: Option<String>,
}

/// Estimates how guessable a password is.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait::async_trait]
pub trait PasswordStrength: Send + Sync {
    /// Scores `password`, counting `user_inputs` (e-mail, username, names) as known to an
    /// attacker. MUST NOT block the async runtime for long.
    async fn estimate(&self, password: &Password, user_inputs: &[String]) -> StrengthVerdict;
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    /// The user (`sub`).
    pub user_id: UserId,
    /// The session (`sid`).
    pub session_id: SessionId,
    /// Unique token id (`jti`).
    pub token_id: Uuid,
    /// The user's system role when the token was issued.
    pub role: Role,
    /// `iat` and `nbf`.
    pub issued_at: DateTime<Utc>,
    /// `exp`.
    pub expires_at: DateTime<Utc>,
}

/// Why an access token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Expired, not yet valid, wrongly signed, of another algorithm, issuer or audience,
    /// missing a claim, or not a JWT at all.
    #[error("invalid access token: {0}")]
    Invalid(String),
    /// The codec itself failed (e.g. the key is unusable).
    #[error("token codec failure")]
    Unexpected(#[source] BoxError),
}

/// Signs and verifies access tokens.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait TokenCodec: Send + Sync {
    /// Encodes and signs the claims.
    ///
    /// # Errors
    /// [`TokenError::Unexpected`] when signing fails.
    fn issue(&self, claims: &AccessClaims) -> Result<String, TokenError>;

    /// Verifies signature (with the pinned algorithm), `exp`, `nbf`, `iss` and `aud`, and
    /// decodes the claims.
    ///
    /// # Errors
    /// [`TokenError::Invalid`] for any token that is not valid now.
    fn verify(&self, token: &str) -> Result<AccessClaims, TokenError>;
}

/// Failure of the revocation list.
#[derive(Debug, thiserror::Error)]
#[error("revocation list unavailable")]
pub struct RevocationError(#[source] pub BoxError);

/// The fast-path list of revoked sessions, checked on every authenticated request.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait::async_trait]
pub trait TokenRevocation: Send + Sync {
    /// Marks a session revoked until `until` (the last instant an access token issued for it
    /// could still be valid), inclusive.
    ///
    /// A later call MUST NOT shorten a revocation: when an earlier call gave a later `until`,
    /// that one stays in force (a call whose `until` has already passed changes nothing, and
    /// in particular removes nothing), so of any calls, concurrent ones included, the latest
    /// `until` wins. Once the latest `until` has passed, the session MUST NOT be reported
    /// revoked (no access token of it can be valid any more), and the entry MAY be forgotten.
    ///
    /// # Errors
    /// [`RevocationError`] when the list cannot be written.
    async fn revoke(&self, session: SessionId, until: DateTime<Utc>)
    -> Result<(), RevocationError>;

    /// Whether the session is revoked.
    ///
    /// # Errors
    /// [`RevocationError`] when the list cannot be read: the caller MUST then refuse the
    /// request (fail closed).
    async fn is_revoked(&self, session: SessionId) -> Result<bool, RevocationError>;

    /// Whether the list still holds what the service restored into it at start-up. A list on
    /// a shared server MUST answer `false` once that server lost its data (a restart without
    /// persistence, a failover to an empty replica), so the service restores it again from
    /// the store; an in-process list, which cannot lose state behind the service's back,
    /// keeps this default.
    ///
    /// # Errors
    /// [`RevocationError`] when the list cannot be read.
    async fn is_restored(&self) -> Result<bool, RevocationError> {
        Ok(true)
    }

    /// Records that the list has just been restored from the store.
    ///
    /// # Errors
    /// [`RevocationError`] when the list cannot be written.
    async fn mark_restored(&self) -> Result<(), RevocationError> {
        Ok(())
    }
}

/// Failure of the login throttle.
#[derive(Debug, thiserror::Error)]
#[error("login throttle unavailable")]
pub struct ThrottleError(#[source] pub BoxError);

/// The failure count of one throttle key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttemptWindow {
    /// Attempts counted in the current window, this one included (0 when there is none).
    pub failures: u32,
    /// When the current window ends and the count resets; `None` when there is no window.
    pub resets_at: Option<DateTime<Utc>>,
}

/// Counts login attempts per login name in fixed windows, shared by every instance when backed
/// by a shared server. An attempt is counted before its password is checked (so concurrent
/// attempts cannot slip past the limit together) and the count is cleared by a success.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait::async_trait]
pub trait LoginThrottle: Send + Sync {
    /// The current window of `key`; a window whose end has passed MUST read as
    /// `AttemptWindow::default()`.
    ///
    /// # Errors
    /// [`ThrottleError`] when the counter cannot be read.
    async fn check(&self, key: &str) -> Result<AttemptWindow, ThrottleError>;

    /// Counts one attempt for `key`. The first attempt of a window opens it for `window`; later
    /// attempts in the same window MUST NOT extend it. Returns the window after counting. MUST
    /// be atomic: N concurrent calls on a fresh key count N, and each sees a distinct count.
    ///
    /// # Errors
    /// [`ThrottleError`] when the counter cannot be written.
    async fn count_attempt(
        &self,
        key: &str,
        window: chrono::TimeDelta,
    ) -> Result<AttemptWindow, ThrottleError>;

    /// Forgets `key`'s window (after a successful login); clearing an absent key is not an
    /// error.
    ///
    /// # Errors
    /// [`ThrottleError`] when the counter cannot be written.
    async fn clear(&self, key: &str) -> Result<(), ThrottleError>;
}

/// Failure of the user cache.
#[derive(Debug, thiserror::Error)]
#[error("user cache unavailable")]
pub struct CacheError(#[source] pub BoxError);

/// A user's invalidation generation as a [`UserCache::get`] saw it, to be handed back to
/// [`UserCache::put`] so that a user read before an invalidation cannot be cached after it.
///
/// Opaque to callers: an adapter mints it and compares it with the user's current
/// generation; a caller only keeps the one from a miss and passes it on. An invalidation
/// always changes a user's generation; nothing else need (but an adapter MAY change it
/// otherwise too, at the cost of refusing puts it could have stored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CacheGeneration(u64);

impl CacheGeneration {
    /// The generation an adapter represents as `value`.
    #[must_use]
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The adapter's representation.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// What [`UserCache::get`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheLookup {
    /// The cached user.
    Hit(User),
    /// Not cached (or expired); the user's generation as of this read, for
    /// [`UserCache::put`].
    Miss(CacheGeneration),
}

/// A read-through cache of users by id, for the hot path of authenticated requests.
///
/// Shared by every instance when it is backed by a shared server, so an invalidation is seen
/// by all of them at once. A cache is an optimisation: callers fall back to the store when it
/// fails.
///
/// Filling the cache is a compare-and-set against a per-user generation, which every
/// [`invalidate`](Self::invalidate) advances: a reader takes the generation from its miss,
/// reads the store, and puts what it read with that generation. If a writer changed the user
/// and invalidated it in between, the put is refused, so a user read before a change (say,
/// before a deactivation or a demotion) is never cached after that change's invalidation.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait::async_trait]
pub trait UserCache: Send + Sync {
    /// The cached user, if present and not expired; otherwise a miss carrying the user's
    /// current generation, to be given to [`put`](Self::put) after reading the store.
    ///
    /// # Errors
    /// [`CacheError`] when the cache cannot be read.
    async fn get(&self, id: UserId) -> Result<CacheLookup, CacheError>;

    /// Caches `user` for at most `ttl`, but only if `user`'s generation is still `seen`, i.e.
    /// no [`invalidate`](Self::invalidate) of that user has happened since the
    /// [`get`](Self::get) that returned `seen`. Returns whether it stored the user.
    ///
    /// MUST store nothing and return `false` when an `invalidate` of the user completed after
    /// that `get`, and MUST check the generation and store in one atomic step (no
    /// `invalidate`, from this instance or another, falls between the two), so a user read
    /// before an invalidation can never be served after it. Otherwise it stores and returns
    /// `true`; an adapter MAY instead refuse when it cannot tell (for example having forgotten
    /// old generations to bound its memory): a refused put costs only a later miss. The
    /// latest successful put wins, replacing any entry of the user, even a longer-lived one.
    /// A `ttl` of zero or less stores nothing and removes any entry of the user (whatever
    /// `seen`), returning `false`. Every field of [`User`] MUST round-trip exactly.
    ///
    /// # Errors
    /// [`CacheError`] when the cache cannot be written.
    async fn put(
        &self,
        user: &User,
        ttl: chrono::TimeDelta,
        seen: CacheGeneration,
    ) -> Result<bool, CacheError>;

    /// Removes the user from the cache AND advances the user's generation, in one atomic
    /// step, so that every put with a generation seen before this call is refused. Removing
    /// an absent user is not an error (the generation advances all the same).
    ///
    /// # Errors
    /// [`CacheError`] when the cache cannot be written.
    async fn invalidate(&self, id: UserId) -> Result<(), CacheError>;
}

/// A dependency whose health the readiness probe reports.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait::async_trait]
pub trait Readiness: Send + Sync {
    /// Answers when the dependency can serve requests now.
    ///
    /// # Errors
    /// The reason it cannot.
    async fn ready(&self) -> Result<(), BoxError>;
}

/// An e-mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Recipient.
    pub to: Email,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
}

/// Failure to hand a message over for delivery.
#[derive(Debug, thiserror::Error)]
#[error("mail could not be sent")]
pub struct MailError(#[source] pub BoxError);

/// Sends e-mail.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    /// Hands one message over for delivery.
    ///
    /// # Errors
    /// [`MailError`] when it could not be handed over.
    async fn send(&self, mail: OutgoingMail) -> Result<(), MailError>;
}

/// The current time.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// New identifiers.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait IdGenerator: Send + Sync {
    /// A new unique id; time-ordered (UUID v7) in production.
    fn new_id(&self) -> Uuid;
}

/// An opaque token as handed to a client, and the digest that is stored.
#[derive(Clone)]
pub struct OpaqueToken {
    /// What the client receives; never stored or logged.
    pub plaintext: SecretString,
    /// What is stored.
    pub hash: TokenHash,
}

impl std::fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpaqueToken")
            .field("plaintext", &"[REDACTED]")
            .field("hash", &self.hash)
            .finish()
    }
}

/// Cryptographically secure random tokens and their digests.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait SecureRandom: Send + Sync {
    /// A new token of at least 256 random bits, URL-safe, with its digest.
    fn new_token(&self) -> OpaqueToken;

    /// The digest of a token a client presented, comparable with stored digests.
    fn digest(&self, token: &str) -> TokenHash;
}
