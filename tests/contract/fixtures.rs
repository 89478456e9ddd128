//! Fixtures of the store contract checks: the [`Store`] bound, deterministic ids, explicit
//! instants, and builders of users, sessions, tenants, memberships and audit events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use domain::model::{
    ActionPurpose, ActionToken, AuditAction, AuditEvent, AuditEventId, AuditTarget, Email, Journal,
    MailKind, Membership, NewSession, NewUser, PasswordHash, PersonName, Role, SealedMail, Session,
    SessionId, Tenant, TenantId, TenantRole, TenantSlug, TokenHash, User, UserId, Username,
};
use domain::ports::{
    Assumed, AuditFilter, AuditLog, ClaimedMail, Outbox, PageRequest, SessionStore, TenantAdmin,
    TenantStore, UserStore,
};
use uuid::Uuid;

/// What every store check runs against: the four storage ports and the outbox the journals
/// write into, on one store, cloneable so that concurrent calls can share it.
pub trait Store:
    UserStore + SessionStore + TenantStore + AuditLog + Outbox + Clone + 'static
{
}

impl<S> Store for S where
    S: UserStore + SessionStore + TenantStore + AuditLog + Outbox + Clone + 'static
{
}

/// The instant every check's timeline starts from (2027-01-15T08:00:00Z).
pub const BASE: i64 = 1_800_000_000;

/// `secs` seconds after [`BASE`].
#[must_use]
pub fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(BASE + secs, 0).expect("in range")
}

/// User `n`.
#[must_use]
pub fn user_id(n: u128) -> UserId {
    UserId::from_uuid(Uuid::from_u128(n))
}

/// Session `n`.
#[must_use]
pub fn session_id(n: u128) -> SessionId {
    SessionId::from_uuid(Uuid::from_u128(0x5e55_0000_0000 + n))
}

/// Tenant `n`.
#[must_use]
pub fn tenant_id(n: u128) -> TenantId {
    TenantId::from_uuid(Uuid::from_u128(0x7e4a_0000_0000 + n))
}

/// Outbox message `n`.
#[must_use]
pub fn mail_id(n: u128) -> Uuid {
    Uuid::from_u128(0x3a11_0000_0000 + n)
}

/// Audit event `n`.
#[must_use]
pub fn event_id(n: u128) -> AuditEventId {
    AuditEventId::from_uuid(Uuid::from_u128(0xa0d1_0000_0000 + n))
}

/// The digest of token `n`.
#[must_use]
pub fn token(n: u128) -> TokenHash {
    TokenHash::new(format!("{n:064x}"))
}

/// A valid e-mail address.
#[must_use]
pub fn email(raw: &str) -> Email {
    Email::parse(raw).expect("valid e-mail")
}

/// A valid username.
#[must_use]
pub fn username(raw: &str) -> Username {
    Username::parse(raw).expect("valid username")
}

/// A valid person name.
#[must_use]
pub fn name(raw: &str) -> PersonName {
    PersonName::parse(raw).expect("valid name")
}

/// A valid tenant slug.
#[must_use]
pub fn slug(raw: &str) -> TenantSlug {
    TenantSlug::parse(raw).expect("valid slug")
}

/// A recognisable password hash.
#[must_use]
pub fn password_hash(label: &str) -> PasswordHash {
    PasswordHash::new(format!("$2b$04$contract.{label}"))
}

/// Page `page` of `per_page` items.
#[must_use]
pub fn page(page: u32, per_page: u32) -> PageRequest {
    PageRequest { page, per_page }
}

/// Every item on one page.
pub const ALL: PageRequest = PageRequest {
    page: 1,
    per_page: 1000,
};

/// An active, unverified ordinary user created at `at(0)`.
#[must_use]
pub fn new_user(n: u128, address: &str, login: &str) -> NewUser {
    NewUser {
        id: user_id(n),
        email: email(address),
        username: username(login),
        first_name: name("Ada"),
        last_name: name("Lovelace"),
        role: Role::User,
        is_active: true,
        email_verified: false,
        password_hash: password_hash(&format!("user-{n}")),
        created_at: at(0),
    }
}

/// User `n` (`user{n}@example.com`, `user{n}`) with this role and activity.
#[must_use]
pub fn user_n(n: u128, role: Role, is_active: bool) -> NewUser {
    NewUser {
        role,
        is_active,
        ..new_user(n, &format!("user{n}@example.com"), &format!("user{n}"))
    }
}

/// Session `n` of `user`, created at `at(created)`, expiring at `at(expires)`, with first
/// refresh token `token(n)`, scoped to no tenant, for a login that checked the password hash
/// [`new_user`] gives user `n` (`user_id(n)`).
#[must_use]
pub fn new_session(n: u128, user: UserId, created: i64, expires: i64) -> NewSession {
    NewSession {
        session: Session {
            id: session_id(n),
            user_id: user,
            created_at: at(created),
            last_used_at: at(created),
            expires_at: at(expires),
            revoked_at: None,
            user_agent: Some(format!("contract-agent/{n}")),
            ip: Some("203.0.113.7".to_owned()),
            tenant: None,
        },
        refresh_token: token(n),
        verified_password: password_hash(&format!("user-{}", user.as_uuid().as_u128())),
    }
}

/// Tenant `n` with this slug, active, created at `at(created)`, version 1.
#[must_use]
pub fn new_tenant(n: u128, raw_slug: &str, created: i64) -> Tenant {
    Tenant {
        id: tenant_id(n),
        name: format!("Tenant {n}"),
        slug: slug(raw_slug),
        description: String::new(),
        domain: String::new(),
        settings: serde_json::Map::new(),
        is_active: true,
        created_at: at(created),
        updated_at: at(created),
        version: 1,
    }
}

/// A membership of `user` in `tenant` since `at(created)`.
#[must_use]
pub fn membership(tenant: TenantId, user: UserId, role: TenantRole, created: i64) -> Membership {
    Membership {
        tenant_id: tenant,
        user_id: user,
        role,
        created_at: at(created),
    }
}

/// Audit event `n` at `at(n)`, with no actor, tenant, target, address, request or details.
#[must_use]
pub fn event(n: u128, action: AuditAction) -> AuditEvent {
    AuditEvent {
        id: event_id(n),
        at: at(i64::try_from(n).expect("small")),
        actor: None,
        tenant: None,
        action,
        target: AuditTarget::None,
        ip: None,
        request_id: None,
        details: serde_json::Map::new(),
    }
}

/// A journal of [`event`] `n`.
#[must_use]
pub fn journal(n: u128, action: AuditAction) -> Journal {
    Journal::of(event(n, action))
}

/// Inserts a user, with no journal.
pub async fn insert<S: UserStore>(store: &S, user: NewUser) -> User {
    store
        .insert(user, Journal::default())
        .await
        .expect("insert a user")
}

/// Creates a session, with no journal.
pub async fn create<S: SessionStore>(store: &S, new: NewSession) -> Session {
    let session = new.session.clone();
    store
        .create(new, Journal::default())
        .await
        .expect("create a session");
    session
}

/// Creates a tenant, with no journal.
pub async fn create_tenant<S: TenantStore>(
    store: &S,
    tenant: Tenant,
    admin: Option<TenantAdmin>,
) -> Tenant {
    store
        .create(tenant, admin, Journal::default())
        .await
        .expect("create a tenant")
}

/// Adds a membership, with no journal.
pub async fn add_member<S: TenantStore>(
    store: &S,
    tenant: TenantId,
    user: UserId,
    role: TenantRole,
    created: i64,
) {
    store
        .add_member(
            membership(tenant, user, role, created),
            Assumed::default(),
            Journal::default(),
        )
        .await
        .expect("add a member");
}

/// The user, who must exist.
pub async fn find_user<S: UserStore>(store: &S, id: UserId) -> User {
    store
        .find_by_id(id)
        .await
        .expect("find_by_id")
        .expect("the user exists")
}

/// The session, which must exist.
pub async fn find_session<S: SessionStore>(store: &S, id: SessionId) -> Session {
    store
        .find(id)
        .await
        .expect("find a session")
        .expect("the session exists")
}

/// The tenant, which must exist.
pub async fn find_tenant<S: TenantStore>(store: &S, id: TenantId) -> Tenant {
    store
        .find(&domain::model::TenantRef::Id(id))
        .await
        .expect("find a tenant")
        .expect("the tenant exists")
}

/// Every stored audit event, newest first.
pub async fn events<S: AuditLog>(store: &S) -> Vec<AuditEvent> {
    let listed = store
        .list(AuditFilter::default(), ALL)
        .await
        .expect("list audit events");
    assert_eq!(
        listed.total,
        listed.items.len() as u64,
        "the total counts every event"
    );
    listed.items
}

/// Panics unless no audit event is stored: `why` names the rule.
pub async fn assert_no_events<S: AuditLog>(store: &S, why: &str) {
    let stored = events(store).await;
    assert!(stored.is_empty(), "{why}: {stored:?}");
}

/// The ids, sorted.
#[must_use]
pub fn sorted(mut ids: Vec<SessionId>) -> Vec<SessionId> {
    ids.sort();
    ids
}

/// The store as a `UserStore` only, to call a method whose name another port shares
/// (`update`, `delete`, `list`).
pub fn as_users<S: UserStore>(store: &S) -> &impl UserStore {
    store
}

/// The store as a `SessionStore` only (`create`, `find`).
pub fn as_sessions<S: SessionStore>(store: &S) -> &impl SessionStore {
    store
}

/// The store as a `TenantStore` only (`create`, `find`, `update`, `delete`, `list`).
pub fn as_tenants<S: TenantStore>(store: &S) -> &impl TenantStore {
    store
}

/// The store as an `AuditLog` only (`list`).
pub fn as_audit<S: AuditLog>(store: &S) -> &impl AuditLog {
    store
}

/// One-time token `n` (digest [`token`] `n`) of `user` for `purpose`, created at
/// `at(created)`, expiring at `at(expires)`.
#[must_use]
pub fn action_token(
    n: u128,
    user: UserId,
    purpose: ActionPurpose,
    created: i64,
    expires: i64,
) -> ActionToken {
    ActionToken {
        hash: token(n),
        user_id: user,
        purpose,
        created_at: at(created),
        expires_at: at(expires),
    }
}

/// Issues a one-time token with no cooldown and no journal, for the user's current address
/// (the user must exist and be active).
pub async fn issue<S: UserStore>(store: &S, token: ActionToken) {
    let to = store
        .find_by_id(token.user_id)
        .await
        .expect("find_by_id")
        .expect("the token's user exists")
        .email;
    let issued = store
        .issue_action_token(token, &to, None, Journal::default())
        .await
        .expect("issue_action_token");
    assert_eq!(
        issued,
        domain::ports::IssueOutcome::Issued,
        "with no cooldown a token for the current address is always issued"
    );
}

/// Message `n` of `kind`, queued at `at(created)`. Its sealed bytes are arbitrary (the store
/// never opens them), distinct per message and include every byte value, so that a store that
/// does not keep them as bytes is caught.
#[must_use]
pub fn mail(n: u128, kind: MailKind, created: i64) -> SealedMail {
    let mut sealed = n.to_be_bytes().to_vec();
    sealed.extend(0..=255u8);
    SealedMail {
        id: mail_id(n),
        kind,
        created_at: at(created),
        sealed,
    }
}

/// Queues `mail` as a change would: in the journal of a new user `n` (created with its own
/// registration, so no other check's user collides with it).
pub async fn queue<S: UserStore>(store: &S, n: u128, mail: Vec<SealedMail>) {
    let user = new_user(
        0xfeed_0000 + n,
        &format!("queue{n}@example.com"),
        &format!("queue{n}"),
    );
    store
        .insert(
            user,
            Journal {
                mail,
                ..Journal::default()
            },
        )
        .await
        .expect("insert a user with mail");
}

/// Every message claimable at `at(now)` (leasing them until `at(now + 1)`), oldest first.
pub async fn claim_at<S: Outbox>(store: &S, now: i64) -> Vec<ClaimedMail> {
    store
        .claim(at(now), at(now + 1), 1000)
        .await
        .expect("claim")
}

/// The ids of what [`claim_at`] claims.
pub async fn claimed_ids<S: Outbox>(store: &S, now: i64) -> Vec<Uuid> {
    claim_at(store, now)
        .await
        .into_iter()
        .map(|c| c.mail.id)
        .collect()
}

/// Far enough after [`BASE`] for every message of a check to be due.
pub const LATER: i64 = 1_000_000_000;

/// Panics unless the outbox holds no message, pending or given up: nothing is pending, nothing
/// died since the epoch, and nothing is claimable even [`LATER`]. `why` names the rule.
pub async fn assert_no_mail<S: Outbox>(store: &S, why: &str) {
    let status = store
        .status(DateTime::UNIX_EPOCH)
        .await
        .expect("outbox status");
    assert_eq!(status, domain::ports::OutboxStatus::default(), "{why}");
    let claimed = claim_at(store, LATER).await;
    assert!(claimed.is_empty(), "{why}: {claimed:?}");
}
