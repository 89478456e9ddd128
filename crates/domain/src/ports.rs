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
    AuditAction, AuditEvent, Credentials, Email, Journal, Membership, NewSession, NewUser,
    Password, PasswordHash, ProfileChanges, RefreshRotation, Role, Session, SessionId,
    StoredRefreshToken, Tenant, TenantId, TenantRef, TenantRole, TenantSlug, TenantVersion,
    TokenHash, User, UserId, UserVersion, Username,
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
    /// A tenant's slug.
    Slug,
    /// The (tenant, user) pair of a membership: the user is a member already.
    Membership,
    /// A service account's name (compared case-insensitively).
    ServiceAccountName,
}

/// Whose last administrator a change would remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastAdmin {
    /// The last active system administrator.
    System,
    /// The last active administrator of this tenant.
    Tenant(TenantId),
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
    /// The change would leave no active administrator (nothing is written).
    #[error("the change would remove the last administrator ({0:?})")]
    LastAdmin(LastAdmin),
    /// What the decision to make the change assumed (an [`Assumed`] role) no longer holds:
    /// it changed meanwhile, so nothing is written. The caller may read again, decide again
    /// and retry.
    #[error("what the decision assumed changed meanwhile")]
    Changed,
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

pub use crate::model::{ActionPurpose, ActionToken, OutgoingMail};

/// A one-time token as stored, with whether it was spent.
#[derive(Debug, Clone)]
pub struct StoredActionToken {
    /// The token.
    pub token: ActionToken,
    /// When it was spent, if it was.
    pub used_at: Option<DateTime<Utc>>,
}

/// What [`UserStore::issue_action_token`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueOutcome {
    /// The token is stored and its journal (the message carrying it) written.
    Issued,
    /// Nothing written: a token of the same user and purpose was issued within the cooldown.
    Cooldown,
    /// Nothing written: the message is no longer the account's to receive. The user's address
    /// is not (any more) the one the message goes to, or the user is inactive; a change of
    /// address or a deactivation came in between the caller's read and the issue.
    Stale,
}

/// Which page of a list: 1-based `page` of `per_page` items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// 1-based page number.
    pub page: u32,
    /// Items per page, at least 1.
    pub per_page: u32,
}

impl PageRequest {
    /// The number of items before this page.
    #[must_use]
    pub fn offset(self) -> u64 {
        u64::from(self.page.max(1) - 1) * u64::from(self.per_page)
    }
}

/// One page of a list and the number of items on all pages.
#[derive(Debug, Clone, PartialEq)]
pub struct Paged<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// Items on all pages.
    pub total: u64,
}

/// Changes to a user. The profile fields are the owner's; `email`, `role` and `is_active`
/// only a system administrator's (the use case decides who may send what).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserChanges {
    /// Names, username, preferences.
    pub profile: ProfileChanges,
    /// New e-mail address (marks it unverified).
    pub email: Option<Email>,
    /// New system role.
    pub role: Option<Role>,
    /// Activate or deactivate.
    pub is_active: Option<bool>,
}

impl UserChanges {
    /// The names of the fields that would change, for audit details.
    #[must_use]
    pub fn field_names(&self) -> Vec<&'static str> {
        let p = &self.profile;
        [
            ("first_name", p.first_name.is_some()),
            ("last_name", p.last_name.is_some()),
            ("username", p.username.is_some()),
            ("preferences", p.preferences.is_some()),
            ("email", self.email.is_some()),
            ("role", self.role.is_some()),
            ("is_active", self.is_active.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// The result of [`UserStore::update`].
#[derive(Debug, Clone, PartialEq)]
pub struct UserUpdate {
    /// The user as stored now.
    pub user: User,
    /// Sessions the change revoked (on deactivation).
    pub revoked: Vec<SessionId>,
}

/// Which users [`UserStore::list`] returns; every given filter must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Case-insensitive substring of the e-mail, username, first or last name.
    pub q: Option<String>,
    /// System role.
    pub role: Option<Role>,
    /// Active or not.
    pub is_active: Option<bool>,
    /// Members of this tenant.
    pub tenant: Option<TenantId>,
}

/// The order of [`UserStore::list`]; ties are broken by id, descending for newest first (so
/// it is exactly the reverse of oldest first), ascending otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserSort {
    /// Oldest first.
    CreatedAt,
    /// Newest first (the later of two time-ordered ids first on a tie).
    #[default]
    CreatedAtDesc,
    /// By e-mail address.
    Email,
    /// By username, ignoring case.
    Username,
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
    /// `Unavailable` when the store cannot be reached. On any error nothing is written, the
    /// journal included; on success the journal is written in the same transaction.
    async fn insert(&self, user: NewUser, journal: Journal) -> Result<User, StoreError>;

    /// Creates many users at once, all or none, writing `journal` in the same transaction:
    /// bulk loading (`ums seed-users`) and, later, imports. Returns how many it created.
    ///
    /// # Errors
    /// `Duplicate(Email)` or `Duplicate(Username)` when any address or username is taken, by
    /// a stored user or another of `users` (which one is reported when several are is
    /// unspecified); nothing is written then.
    async fn insert_many(&self, users: Vec<NewUser>, journal: Journal) -> Result<u64, StoreError>;

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

    /// Applies `changes`, bumps the version and sets `updated_at` to `at`, writing `journal` in
    /// the same transaction. With `expected_version`, the change applies only if the stored
    /// version equals it. When `changes.is_active` is `Some(false)`, every live session of
    /// the user is revoked (`revoked_at = at`) in the same transaction, and their ids are
    /// returned.
    ///
    /// When `changes.email` is `Some` and differs from the stored address (a change of
    /// address; the same address is no change and keeps `email_verified`), the address is
    /// marked unverified and every unspent one-time token of the user, of every purpose
    /// (verification and password reset), MUST be spent (`used_at = at`) in the same
    /// transaction, *before* `journal` is written: a link mailed to the old, possibly
    /// compromised, mailbox stops working with the change, while a token the journal carries
    /// (the new address's verification) stays spendable. Tokens spent earlier keep their
    /// `used_at`. The spending MUST be serialised with `reset_password` and `verify_email`
    /// of the user: a reset or verification either comes first (and the change then
    /// unverifies the address) or is refused as with a spent token.
    ///
    /// # Errors
    /// MUST return `NotFound` for an unknown id, `StaleVersion` when `expected_version` is given
    /// and differs, `Duplicate(Email)` / `Duplicate(Username)` when the new address or
    /// username is taken by another user, `LastAdmin(System)` when the change would demote or
    /// deactivate the last active system administrator, and `LastAdmin(Tenant(t))` when it
    /// would deactivate the last active administrator of tenant `t`. On any error nothing is
    /// written. Concurrent changes MUST NOT together remove the last administrator.
    async fn update(
        &self,
        id: UserId,
        changes: UserChanges,
        expected_version: Option<UserVersion>,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<UserUpdate, StoreError>;

    /// Deletes the user with their sessions, tokens and memberships (their audit events stay),
    /// writing `journal` in the same transaction.
    ///
    /// With `expected_password` (a self-service deletion, which confirmed the password against
    /// that hash before), the user MUST be deleted only if their stored password hash is still
    /// `expected_password` and they are still active, as read inside the transaction that
    /// deletes them, serialised with every change of the user's password hash or activity
    /// (`change_password`, `reset_password`, a deactivating `update`): a deletion confirmed
    /// against a password that a reset replaced meanwhile (one that revoked the sessions of
    /// whoever held the old password) must not delete the account. `None` (an administrator's
    /// deletion) checks neither.
    ///
    /// # Errors
    /// `NotFound` for an unknown id; `Changed` when `expected_password` is given and differs
    /// from the stored hash, or the user is inactive (checked before the administrator
    /// guards); `LastAdmin(System)` for the last active system administrator;
    /// `LastAdmin(Tenant(t))` for the last active administrator of tenant `t`. On any error
    /// nothing is written.
    async fn delete(
        &self,
        id: UserId,
        expected_password: Option<PasswordHash>,
        journal: Journal,
    ) -> Result<(), StoreError>;

    /// One page of users matching `filter`, in `sort` order (ties broken by id: descending for
    /// [`UserSort::CreatedAtDesc`], ascending otherwise), with the
    /// number of all matching users.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn list(
        &self,
        filter: UserFilter,
        sort: UserSort,
        page: PageRequest,
    ) -> Result<Paged<User>, StoreError>;

    /// Replaces the password hash and, in the same transaction, revokes (sets `revoked_at` to
    /// `at` on) every live session of the user except `keep`, returning the ids it revoked.
    ///
    /// It MUST also spend (`used_at = at`) every unspent password-reset token of the user in
    /// the same transaction: a reset link mailed before the change would otherwise set a
    /// password over the one the owner just chose. Verification tokens are left alone (the
    /// address is what they prove, and it did not change); tokens spent earlier keep their
    /// `used_at`.
    ///
    /// `expected` is the hash the caller confirmed the current password against. The change
    /// MUST be made only if, as read inside its transaction, the stored hash is still
    /// `expected`, the user is still active, and `keep` (when `Some`) is still an unrevoked
    /// session of this user (expired or not). The check and the change MUST be serialised
    /// with every other change of the user's password hash or activity (`change_password`,
    /// `reset_password`, a deactivating `update`): a change confirmed against a password that
    /// a reset replaced meanwhile (revoking the session it came with) must never commit after
    /// that reset and take the account back.
    ///
    /// # Errors
    /// MUST return `NotFound` for an unknown id, and `Changed` when the stored hash differs
    /// from `expected`, the user is inactive, or `keep` is `Some` and that session is revoked,
    /// missing or another user's. On any error nothing is written (the journal included); on
    /// success the journal is written in the same transaction.
    async fn change_password(
        &self,
        id: UserId,
        expected: PasswordHash,
        hash: PasswordHash,
        keep: Option<SessionId>,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<Vec<SessionId>, StoreError>;

    /// Issues a one-time token: stores `token` (its digest) and writes `journal` (the message
    /// carrying it, addressed to `to`), in one transaction, and returns
    /// [`IssueOutcome::Issued`]. It writes nothing:
    ///
    /// - and returns [`IssueOutcome::Stale`] when the user's current address is not `to`, or
    ///   the user is inactive. Both MUST be checked inside the transaction that stores the
    ///   token, under the lock that serialises it with `update` (the user's row): the caller
    ///   read the user and sealed the message before, and a change of address in between (which
    ///   spends the old address's tokens) must not be followed by a fresh token mailed to the
    ///   old address, nor a deactivation by a token for an account that can no longer use it.
    ///   This check comes before the cooldown's.
    /// - and returns [`IssueOutcome::Cooldown`] when the user was sent a token of the same
    ///   purpose at or after `quiet_since` (a resend cooldown). Concurrent calls with the same
    ///   `quiet_since` issue at most one. The cooldown counts every stored token of the user
    ///   and purpose, spent or not; with `quiet_since` `None` there is none.
    ///
    /// # Errors
    /// `NotFound` when the user does not exist; `Unavailable` or `Unexpected`. On any error
    /// nothing is written.
    async fn issue_action_token(
        &self,
        token: ActionToken,
        to: &Email,
        quiet_since: Option<DateTime<Utc>>,
        journal: Journal,
    ) -> Result<IssueOutcome, StoreError>;

    /// Spends the password-reset token `token` of user `user`, replaces the password hash, marks
    /// the address verified (the reset proved the mailbox), and revokes every live session of
    /// the user (`revoked_at = at`), writing `journal`, in one transaction. A token is spent at
    /// most once, even under concurrent calls.
    ///
    /// It MUST spend (`used_at = at`), in the same transaction, every other unspent
    /// password-reset token of the user too, not only `token`: several can be outstanding (one
    /// a cooldown within their lifetime), and none may reset the password again over the one
    /// just set. Verification tokens are left alone; tokens spent earlier keep their `used_at`.
    /// A refused reset (`None`) spends nothing.
    ///
    /// Returns the ids of the sessions it revoked, or `None`, writing nothing, when the token
    /// is unknown, spent, expired at `at`, for another purpose, or another user's.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn reset_password(
        &self,
        token: &TokenHash,
        user: UserId,
        hash: PasswordHash,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<Option<Vec<SessionId>>, StoreError>;

    /// Deletes at most `limit` one-time tokens that were spent or expired before `before`
    /// (`used_at < before` or `expires_at < before`), returning how many (call again until it
    /// returns less than `limit`).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn purge_action_tokens(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// The stored one-time token with this digest, spent or not.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn find_action_token(
        &self,
        token: &TokenHash,
    ) -> Result<Option<StoredActionToken>, StoreError>;

    /// Spends the e-mail verification token `token` of user `user` and marks that user's
    /// address verified (bumping the version), writing `journal`, in one transaction. A token
    /// is spent at most once, even under concurrent calls.
    ///
    /// Returns `true` when it spent the token; `false`, writing nothing (not even the
    /// journal), when the token is unknown, spent, expired at `at`, for another purpose, or
    /// another user's.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn verify_email(
        &self,
        token: &TokenHash,
        user: UserId,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<bool, StoreError>;
}

/// Persistent login sessions and their rotating refresh tokens.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    /// Creates a session with its first refresh token and sets the user's `last_login_at` to
    /// the session's `created_at`, in one transaction, provided the user's password hash is
    /// still `new.verified_password` (the one the login checked) and the user is still
    /// active, as read inside that transaction.
    ///
    /// The check and the insert MUST be serialised with every change of the user's password
    /// hash or activity that revokes sessions (`UserStore::change_password`,
    /// `reset_password`, a deactivating `update`): either the session is created first and
    /// the change then revokes it, or the change comes first and the session is refused. A
    /// login that checked a password a concurrent change or reset then replaced thus never
    /// leaves a live session behind.
    ///
    /// # Errors
    /// `NotFound` if the user does not exist; `Changed` if the stored password hash differs
    /// from `new.verified_password` or the user is inactive (nothing is written); `Unavailable`
    /// or `Unexpected`. The journal is written in the same transaction, and not at all on
    /// error.
    async fn create(&self, new: NewSession, journal: Journal) -> Result<(), StoreError>;

    /// The session with this id, revoked or not.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError>;

    /// The refresh token whose digest is `token`, with its session as stored now, spent or
    /// not; writes nothing. What a refresh reads (with the session's user, tenant scope and
    /// revocation) *before* it spends the token, so that a failure of any of those reads
    /// leaves the token unspent and the client's retry is not taken for a reuse.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected` only; a digest never stored is `Ok(None)`.
    async fn find_refresh_token(
        &self,
        token: &TokenHash,
    ) -> Result<Option<StoredRefreshToken>, StoreError>;

    /// Spends the refresh token whose digest is `presented` and adds `replacement` to the same
    /// session, setting its `last_used_at` to `at`, in one transaction. It re-checks, in that
    /// transaction, everything [`find_refresh_token`](Self::find_refresh_token) told the
    /// caller (a concurrent rotation or revocation may have come in between).
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

    /// One page of the user's sessions that are live at `at` (not revoked, not expired),
    /// newest `created_at` first (equal times by id, greatest first), with their number: the
    /// user's device list.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn list_live(
        &self,
        user: UserId,
        at: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Paged<Session>, StoreError>;

    /// The ids of the user's live sessions: those not revoked, whether or not they have
    /// expired (an access token issued just before a session expired can outlive it), in no
    /// particular order. What logout-all, a password change and a deletion put on the
    /// revocation fast path; an adapter SHOULD answer it from an index of the unrevoked
    /// sessions, so that it does not read every session the user ever had.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn live_for_user(&self, user: UserId) -> Result<Vec<SessionId>, StoreError>;

    /// Revokes one session of one user. Returns `true` if it was live and is now revoked,
    /// `false` if it was already revoked, or is not that user's. The journal is written in
    /// the same transaction when it returns `true`, and not at all otherwise.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn revoke(
        &self,
        user: UserId,
        id: SessionId,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<bool, StoreError>;

    /// Revokes every live session of the user, returning the ids it revoked. The journal is
    /// written in the same transaction whenever it succeeds (even with nothing to revoke:
    /// the request to end every session is itself the event).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn revoke_all(
        &self,
        user: UserId,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<Vec<SessionId>, StoreError>;

    /// Deletes at most `limit` sessions (with their refresh tokens) that expired or were
    /// revoked before `before` (`expires_at < before` or `revoked_at < before`), returning how
    /// many (call again until it returns less than `limit`).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn purge_ended(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError>;

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

/// Who becomes the first administrator of a new tenant.
#[derive(Debug, Clone)]
pub enum TenantAdmin {
    /// A user created with the tenant.
    New(NewUser),
    /// An existing user.
    Existing(UserId),
}

/// Changes to a tenant's fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantChanges {
    /// New display name.
    pub name: Option<String>,
    /// New slug.
    pub slug: Option<TenantSlug>,
    /// New description.
    pub description: Option<String>,
    /// New domain.
    pub domain: Option<String>,
    /// New settings, replacing the old ones whole.
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
    /// Activate or deactivate.
    pub is_active: Option<bool>,
}

impl TenantChanges {
    /// The names of the fields that would change, for audit details.
    #[must_use]
    pub fn field_names(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("slug", self.slug.is_some()),
            ("description", self.description.is_some()),
            ("domain", self.domain.is_some()),
            ("settings", self.settings.is_some()),
            ("is_active", self.is_active.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// A member of a tenant with their account.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The membership.
    pub membership: Membership,
    /// The member.
    pub user: User,
}

/// One of a user's tenants with the membership.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantMembership {
    /// The membership.
    pub membership: Membership,
    /// The tenant.
    pub tenant: Tenant,
}

/// What an authorization decision about a membership change rested on, for the store to
/// confirm under the lock it takes for the change: the policy decided on roles read before
/// that lock, and a concurrent change of either must not let the decision apply to roles it
/// was not made for. `None` assumes nothing about that party.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Assumed {
    /// The role the member holds ([`TenantStore::change_role`], [`TenantStore::remove_member`]:
    /// the `from` of the change, and what its journal records). Nothing is assumed for
    /// [`TenantStore::add_member`], where a member already is `Duplicate(Membership)`; an
    /// adapter ignores the field there.
    pub member: Option<TenantRole>,
    /// The acting user and the role they hold in the tenant; `None` when the decision did not
    /// rest on a membership (a system administrator, the operator).
    pub actor: Option<(UserId, TenantRole)>,
}

/// Persistent tenants and memberships.
///
/// "Active administrator of a tenant" means a membership with role `admin` whose user is
/// active. Every method that could remove one refuses with `LastAdmin(Tenant(_))` when it
/// would remove a tenant's last, and concurrent calls MUST NOT together remove it.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait::async_trait]
pub trait TenantStore: Send + Sync {
    /// Creates a tenant and, with `admin`, makes that user (created here for
    /// `TenantAdmin::New`) its admin, writing `journal`, all in one transaction.
    ///
    /// # Errors
    /// `Duplicate(Slug)`; for a new admin `Duplicate(Email)` / `Duplicate(Username)` (e-mail
    /// first); `NotFound` for an unknown existing admin. On any error nothing is written.
    async fn create(
        &self,
        tenant: Tenant,
        admin: Option<TenantAdmin>,
        journal: Journal,
    ) -> Result<Tenant, StoreError>;

    /// The tenant with this id or slug.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn find(&self, tenant: &TenantRef) -> Result<Option<Tenant>, StoreError>;

    /// One page of tenants, oldest first (ties by id): all of them, or `member`'s only.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn list(
        &self,
        member: Option<UserId>,
        page: PageRequest,
    ) -> Result<Paged<Tenant>, StoreError>;

    /// Applies `changes`, bumps the version and sets `updated_at`, writing `journal`, in one
    /// transaction; with `expected_version`, only if the stored version equals it.
    ///
    /// # Errors
    /// `NotFound`, `StaleVersion`, `Duplicate(Slug)`. On any error nothing is written.
    async fn update(
        &self,
        id: TenantId,
        changes: TenantChanges,
        expected_version: Option<TenantVersion>,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<Tenant, StoreError>;

    /// Deletes the tenant and its memberships (users stay), writing `journal`.
    ///
    /// # Errors
    /// `NotFound`. On any error nothing is written.
    async fn delete(&self, id: TenantId, journal: Journal) -> Result<(), StoreError>;

    /// `user`'s role in `tenant`, if they are a member.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn role_of(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<TenantRole>, StoreError>;

    /// The roles `viewer` holds in the tenants that `target` is a member of.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn shared_roles(
        &self,
        viewer: UserId,
        target: UserId,
    ) -> Result<Vec<TenantRole>, StoreError>;

    /// One page of a tenant's members, oldest membership first (ties by user id).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn members(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Paged<Member>, StoreError>;

    /// Every tenant `user` belongs to, oldest membership first.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn tenants_of(&self, user: UserId) -> Result<Vec<TenantMembership>, StoreError>;

    /// Adds a membership, writing `journal`, in one transaction, if the acting member still
    /// holds the role `assumed.actor` names (`assumed.member` is ignored), read under the lock
    /// of the change.
    ///
    /// # Errors
    /// In this order: `NotFound` when the tenant or the user does not exist; `Changed` when
    /// `assumed.actor` is `Some((actor, role))` and `actor` is no longer a member of the
    /// tenant or holds another role; `Duplicate(Membership)` when the user is a member
    /// already. On any error nothing is written.
    async fn add_member(
        &self,
        membership: Membership,
        assumed: Assumed,
        journal: Journal,
    ) -> Result<(), StoreError>;

    /// Changes a member's role, writing `journal`, in one transaction, if the member and the
    /// acting member still hold the roles `assumed` names, read under the lock of the change.
    ///
    /// # Errors
    /// In this order: `NotFound` when the tenant does not exist; `Changed` when `assumed.actor`
    /// is `Some((actor, role))` and `actor` is no longer a member or holds another role, or
    /// `assumed.member` is `Some(role)` and the user is no longer a member or holds another
    /// role; `NotFound` when the user is not a member (with nothing assumed about them);
    /// `LastAdmin(Tenant(_))` when it would demote the tenant's last active admin. On any
    /// error nothing is written.
    async fn change_role(
        &self,
        tenant: TenantId,
        user: UserId,
        role: TenantRole,
        assumed: Assumed,
        journal: Journal,
    ) -> Result<Membership, StoreError>;

    /// Removes a membership, writing `journal`, in one transaction, if the member and the
    /// acting member still hold the roles `assumed` names, read under the lock of the change.
    ///
    /// # Errors
    /// As [`change_role`](Self::change_role), in the same order: `NotFound` (tenant),
    /// `Changed`, `NotFound` (not a member), `LastAdmin(Tenant(_))` when it would remove the
    /// tenant's last active admin. On any error nothing is written.
    async fn remove_member(
        &self,
        tenant: TenantId,
        user: UserId,
        assumed: Assumed,
        journal: Journal,
    ) -> Result<(), StoreError>;
}

/// Which events [`AuditLog::list`] returns; every given filter must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Done by this user.
    pub actor: Option<UserId>,
    /// Of this action.
    pub action: Option<AuditAction>,
    /// In this tenant.
    pub tenant: Option<TenantId>,
    /// About this target id (of any type).
    pub target: Option<Uuid>,
    /// At or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Before this instant.
    pub until: Option<DateTime<Utc>>,
}

/// The append-only audit trail. Events that go with a change are written by the store method
/// making the change (its `journal`); this port appends events with no change of their own
/// (failed logins, lockouts, refused requests) and reads them back.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait::async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends the journal's events (and stores its tokens and mail, if it has any), all or
    /// none.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn append(&self, journal: Journal) -> Result<(), StoreError>;

    /// One page of matching events, newest first (`at` descending, then id descending), with
    /// the number of all matching events. Every field MUST round-trip exactly.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn list(
        &self,
        filter: AuditFilter,
        page: PageRequest,
    ) -> Result<Paged<AuditEvent>, StoreError>;

    /// Deletes at most `limit` of the oldest events before `before`, returning how many it
    /// deleted (call again until it returns less than `limit`).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn purge_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError>;
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
    /// The tenant the token is scoped to (`tenant`), with the role held there when it was
    /// issued (`tenant_role`); authorization reads the live membership, not this.
    pub tenant: Option<(TenantId, TenantRole)>,
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

/// Counts password attempts per key in fixed windows, shared by every instance when backed
/// by a shared server. The keys are opaque to adapters; the use cases count a login per
/// login name (`login:<name>`) and per account (`account:<user id>`), and a password change's
/// confirmation of the current password per account (`password:<user id>`). An attempt is
/// counted before its password is checked (so concurrent attempts cannot slip past the limit
/// together) and the count is cleared by a success.
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

/// Failure to hand a message over for delivery.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Worth trying again later: the server is down, slow, or answered 4xx.
    #[error("mail could not be sent now")]
    Transient(#[source] BoxError),
    /// Trying again would fail again: the server refused the message or its recipient (5xx).
    #[error("mail was refused")]
    Permanent(#[source] BoxError),
}

/// Sends e-mail.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    /// Hands one message over for delivery. `id` is unique to the message and stays the same
    /// on every attempt to deliver it (the `Message-ID`, so receivers can drop duplicates).
    ///
    /// # Errors
    /// [`MailError`] when it could not be handed over.
    async fn send(&self, id: Uuid, mail: OutgoingMail) -> Result<(), MailError>;
}

/// Failure to seal or open a message.
#[derive(Debug, thiserror::Error)]
#[error("mail could not be sealed or opened")]
pub struct SealError(#[source] pub BoxError);

/// Encrypts and authenticates messages for the outbox, which holds live one-time tokens until
/// delivery: what is stored is unreadable and tamper-evident without the service's key.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait MailSeal: Send + Sync {
    /// The sealed form of `mail`, bound to `id` (a sealed message moved to another row does
    /// not open).
    ///
    /// # Errors
    /// [`SealError`] when encryption fails.
    fn seal(&self, id: Uuid, mail: &OutgoingMail) -> Result<Vec<u8>, SealError>;

    /// The message `sealed` holds, if it was sealed for `id` with this key and not altered.
    ///
    /// # Errors
    /// [`SealError`] for anything else (another key, another id, altered bytes).
    fn open(&self, id: Uuid, sealed: &[u8]) -> Result<OutgoingMail, SealError>;
}

/// A message claimed for delivery from the [`Outbox`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedMail {
    /// The message.
    pub mail: crate::model::SealedMail,
    /// Delivery attempts before this one.
    pub attempts: u32,
}

/// What the outbox holds, for readiness and operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStatus {
    /// Messages not yet delivered that will still be tried: leased or not, due or not.
    pub pending: u64,
    /// Of those, the ones whose last attempt failed.
    pub retrying: u64,
    /// Messages given up on (failed permanently or too often) at or after the `since` asked.
    pub dead: u64,
}

/// The durable outbox: messages written by the stores' journals, in the transaction of the
/// change that caused them, and delivered by a worker.
///
/// A message is claimed for a lease before it is sent; while the lease runs, no other claim
/// (from this instance or another) returns it. It is delivered at least once: only a crash,
/// or a store that fails to record it, between the mail server's acceptance and
/// [`mark_sent`](Self::mark_sent) sends it again, after the lease (the worker claims one
/// message at a time, and refuses a lease shorter than a delivery can take). A message the adapter cannot read the kind of is given up by the claim
/// that meets it, never delivered as something else and never in the way of the others
/// (see [`claim`](Self::claim)).
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait::async_trait]
pub trait Outbox: Send + Sync {
    /// Claims at most `limit` messages due at `now` (not delivered, not given up, next attempt
    /// at or before `now`, no unexpired lease), oldest first, leasing them until `lease_until`.
    /// MUST be atomic across instances: concurrent claims never return the same message
    /// (PostgreSQL: `FOR UPDATE SKIP LOCKED`). A message is first due at its `created_at`; a
    /// lease that ends at `now` has ended. Oldest is by `created_at`, ties by id.
    ///
    /// A due message of a stored kind the adapter does not know (written by a newer version,
    /// or by hand) MUST NOT fail the claim, which would stop all delivery: it is given up in
    /// the claim's transaction (dead from `now`, `last_error` `unknown kind <kind>`, logged at
    /// error level with its id) and not returned; the others are. It counts towards `limit`,
    /// so such a claim may return fewer messages than are due.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`; on error the claim leases and gives up nothing.
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ClaimedMail>, StoreError>;

    /// Records that the message was delivered at `at`, and forgets its sealed content. A
    /// second report of a delivery keeps the first one's time; a message given up and then
    /// reported delivered (by an attempt whose lease had lapsed) counts as delivered, not dead.
    ///
    /// # Errors
    /// `NotFound` for an unknown id; `Unavailable` or `Unexpected`.
    async fn mark_sent(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Records a failed attempt at `at` with a short reason (no secrets: an SMTP reply or an
    /// error message), releasing the lease: the message is tried again at `retry_at`, or, with
    /// `None`, given up (it counts as dead from `at` and keeps its reason). A delivered
    /// message stays delivered: a failure reported after [`mark_sent`](Self::mark_sent)
    /// changes nothing.
    ///
    /// # Errors
    /// `NotFound` for an unknown id; `Unavailable` or `Unexpected`.
    async fn mark_failed(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        reason: String,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;

    /// How many messages are pending, retrying, and dead since `dead_since`.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn status(&self, dead_since: DateTime<Utc>) -> Result<OutboxStatus, StoreError>;

    /// Deletes at most `limit` messages delivered or given up before `before` (`sent_at` or
    /// the instant it was given up earlier than `before`), returning how many (call again
    /// until it returns less than `limit`). Pending messages are never deleted.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn purge_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError>;
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

/// A rate: at most `burst` requests at once, refilled evenly over `period` (GCRA).
///
/// One request is earned back every `period / burst`; a key left alone for `period` has its
/// whole `burst` again. Adapters take a `burst` of 0 as 1 and a `period` under a millisecond
/// as one millisecond, so every limit allows something and refills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed at once by a key that has been idle for `period`.
    pub burst: u32,
    /// How long a fully spent `burst` takes to refill.
    pub period: chrono::TimeDelta,
}

/// What a [`RateLimiter`] decided about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Within the limit; the request was counted.
    Allowed,
    /// Over the limit; the request was not counted.
    Limited {
        /// How long until one request of the key would be allowed (positive).
        retry_after: chrono::TimeDelta,
    },
}

/// One budget a request draws on: a key and the limit it is counted under (see
/// [`RateLimiter::acquire_all`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateBudget {
    /// The key (a client address, a network block, an e-mail address).
    pub key: String,
    /// Its limit.
    pub limit: RateLimit,
}

impl RateBudget {
    /// `key` under `limit`.
    #[must_use]
    pub fn new(key: impl Into<String>, limit: RateLimit) -> Self {
        Self {
            key: key.into(),
            limit,
        }
    }
}

/// Failure of the rate limiter's backend.
#[derive(Debug, thiserror::Error)]
#[error("rate limiter unavailable")]
pub struct RateLimitError(#[source] pub BoxError);

/// Limits how often a key (a client address, an e-mail address) may do something, shared by
/// every instance when backed by a shared server.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one request for `key` under `limit`; atomic across instances sharing the backend.
    ///
    /// A key never seen (or idle for `limit.period`) allows `limit.burst` requests at once,
    /// then one more every `limit.period / limit.burst`. A refused request MUST NOT be
    /// counted, so a client that keeps retrying is allowed again after `retry_after`. MUST be
    /// atomic: N concurrent calls on a fresh key with a burst of B allow exactly min(N, B).
    ///
    /// # Errors
    /// [`RateLimitError`] when the backend cannot be reached; the caller decides whether to
    /// fail closed or fall back to a stricter limit of its own.
    async fn acquire(&self, key: &str, limit: RateLimit) -> Result<RateDecision, RateLimitError>;

    /// Counts one request against every budget of `budgets`, or against none: allowed only
    /// when each of them allows it (then it is counted in each), refused when any is spent
    /// (then it is counted in none, and `retry_after` is the longest wait among the spent
    /// ones). A budget named twice is counted twice, as if one after the other. No budgets
    /// allow the request. A key is one key whichever method counts it: `acquire(k, l)` is
    /// `acquire_all(&[RateBudget::new(k, l)])`. MUST be atomic as a whole: N concurrent calls
    /// that share a budget of burst B allow at most B, and a call refused by one budget
    /// leaves every other budget as it was.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire); on an error nothing is counted.
    async fn acquire_all(&self, budgets: &[RateBudget]) -> Result<RateDecision, RateLimitError>;

    /// What [`acquire_all`](Self::acquire_all) would decide now, counting nothing: for a
    /// caller that counts only some requests (failed authentications) but must refuse every
    /// request while the budget is spent, before it does the work being limited.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    async fn check_all(&self, budgets: &[RateBudget]) -> Result<RateDecision, RateLimitError>;
}

/// Persistent service accounts: the credentials other services authenticate with (HTTP Basic
/// `client_id:secret`) to introspect access tokens. Only the digest of a secret is stored.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait::async_trait]
pub trait ServiceAccountStore: Send + Sync {
    /// Creates a service account with the digest of its secret, writing `journal` in the same
    /// transaction. Returns the account as stored (without the digest).
    ///
    /// # Errors
    /// MUST return `Duplicate(UniqueField::ServiceAccountName)` when another account has the
    /// name regardless of case; `Unavailable` or `Unexpected`. On any error nothing is
    /// written, the journal included.
    async fn create(
        &self,
        account: crate::model::ServiceAccountCredentials,
        journal: Journal,
    ) -> Result<crate::model::ServiceAccount, StoreError>;

    /// The account with this client id (matched exactly), with the digest of its secret.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected` only; no match is `Ok(None)`.
    async fn find_by_client_id(
        &self,
        client_id: &crate::model::ClientId,
    ) -> Result<Option<crate::model::ServiceAccountCredentials>, StoreError>;

    /// Sets the account's `last_used_at` to `at`, unless it is later already (a call never
    /// moves it back). Best effort for the caller: nothing else depends on it.
    ///
    /// # Errors
    /// `NotFound` for an unknown id; `Unavailable` or `Unexpected`.
    async fn touch(
        &self,
        id: crate::model::ServiceAccountId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// One page of accounts, oldest first (ties by id), without their digests, with the
    /// number of all accounts.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    async fn list(
        &self,
        page: PageRequest,
    ) -> Result<Paged<crate::model::ServiceAccount>, StoreError>;

    /// Deletes the account (its secret stops working at once), writing `journal` in the same
    /// transaction.
    ///
    /// # Errors
    /// `NotFound` for an unknown id. On any error nothing is written.
    async fn delete(
        &self,
        id: crate::model::ServiceAccountId,
        journal: Journal,
    ) -> Result<(), StoreError>;
}
