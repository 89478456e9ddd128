//! The test fixture: mocks of every port with deterministic defaults, and sample values.
//!
//! The clock, the id generator and the random-token source are always faked the same way:
//! the clock says [`now()`], the n-th id is [`generated_id(n)`](generated_id), the n-th random
//! token is [`token(n)`](token) and every digest is [`digest`] of its plaintext. The audit log
//! accepts every append and records it ([`Fixture::appended`]), so a test asserts on the events
//! it expects, and that there are no others. Every other port is a strict mock: a call the test
//! did not expect fails it.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::ValidationErrors;
use crate::model::{
    AuditAction, AuditEvent, AuditEventId, AuditTarget, Credentials, Email, Journal, NewUser,
    OutgoingMail, PasswordHash, PersonName, Preferences, Role, Session, SessionId, Tenant,
    TenantId, TenantRef, TenantRole, TenantSlug, TokenHash, User, UserId, Username,
};
use crate::ports::{
    AttemptWindow, MailSeal, MockAuditLog, MockClock, MockIdGenerator, MockLoginThrottle,
    MockMailer, MockOutbox, MockPasswordHasher, MockPasswordStrength, MockSecureRandom,
    MockSessionStore, MockTenantStore, MockTokenCodec, MockTokenRevocation, MockUserStore,
    OpaqueToken, PageRequest, RevocationError, SealError, StoreError, StrengthVerdict,
};
use crate::services::{
    AccountService, AuditService, AuthService, ClientInfo, Ports, Principal, TenantService,
    UserAdminService,
};
use crate::settings::AuthSettings;

/// A [`MailSeal`] for tests: "sealing" keeps the message under its id (the sealed bytes are
/// the id), so a test can open what a journal queued. Clones share the messages.
#[derive(Debug, Clone, Default)]
pub(super) struct FakeSeal {
    messages: Arc<Mutex<Vec<(Uuid, OutgoingMail)>>>,
}

impl FakeSeal {
    /// The message sealed under `id`.
    pub(super) fn message(&self, id: Uuid) -> OutgoingMail {
        self.messages
            .lock()
            .expect("not poisoned")
            .iter()
            .find(|(sealed, _)| *sealed == id)
            .map(|(_, mail)| mail.clone())
            .expect("a message sealed under this id")
    }

    /// The messages of a journal, in order.
    pub(super) fn of(&self, journal: &Journal) -> Vec<OutgoingMail> {
        journal
            .mail
            .iter()
            .map(|mail| self.message(mail.id))
            .collect()
    }
}

impl MailSeal for FakeSeal {
    fn seal(&self, id: Uuid, mail: &OutgoingMail) -> Result<Vec<u8>, SealError> {
        self.messages
            .lock()
            .expect("not poisoned")
            .push((id, mail.clone()));
        Ok(id.as_bytes().to_vec())
    }

    fn open(&self, id: Uuid, sealed: &[u8]) -> Result<OutgoingMail, SealError> {
        if sealed != id.as_bytes() {
            return Err(SealError("sealed for another id".into()));
        }
        let messages = self.messages.lock().expect("not poisoned");
        messages
            .iter()
            .find(|(sealed, _)| *sealed == id)
            .map(|(_, mail)| mail.clone())
            .ok_or_else(|| SealError("unknown message".into()))
    }
}

/// Alice: an ordinary user, the usual caller.
pub(super) const ALICE: UserId = UserId::from_uuid(Uuid::from_u128(0xA11CE));
/// Bob: another ordinary user.
pub(super) const BOB: UserId = UserId::from_uuid(Uuid::from_u128(0xB0B));
/// An administrator.
pub(super) const ADMIN: UserId = UserId::from_uuid(Uuid::from_u128(0xAD));
/// The caller's current session.
pub(super) const SESSION: SessionId = SessionId::from_uuid(Uuid::from_u128(0x5E55_0001));
/// Other sessions of the same user.
pub(super) const SESSION_2: SessionId = SessionId::from_uuid(Uuid::from_u128(0x5E55_0002));
pub(super) const SESSION_3: SessionId = SessionId::from_uuid(Uuid::from_u128(0x5E55_0003));
/// A tenant (slug `acme`).
pub(super) const TENANT: TenantId = TenantId::from_uuid(Uuid::from_u128(0x7E4A_4701));

/// Alice's password, as she types it.
pub(super) const PASSWORD: &str = "correct horse battery";
/// What the mocked hasher makes of a password.
pub(super) const STORED_HASH: &str = "$2b$04$stored-hash-of-the-password";

/// The fixed instant the clock reports.
pub(super) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).expect("a valid timestamp")
}

/// The `n`-th id (from 1) the id generator hands out.
pub(super) fn generated_id(n: u128) -> Uuid {
    Uuid::from_u128(0x1D00_0000 + n)
}

/// The plaintext of the `n`-th (from 1) random token.
pub(super) fn token(n: u32) -> String {
    format!("random-token-{n}")
}

/// The digest the random port computes for a plaintext token.
pub(super) fn digest(plaintext: &str) -> TokenHash {
    TokenHash::new(format!("sha256({plaintext})"))
}

pub(super) fn secret(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

/// The default settings: access 15 min, refresh 7 days, remember-me 30 days, verification
/// 24 h; passwords of at least 10 characters and score 3. All lifetimes differ, so a test
/// cannot pass by using the wrong one.
pub(super) fn settings() -> AuthSettings {
    AuthSettings::default()
}

/// An active, verified user named `name` (`name@example.com`).
pub(super) fn user(id: UserId, name: &str, role: Role) -> User {
    User {
        id,
        email: Email::parse(&format!("{name}@example.com")).expect("a valid e-mail"),
        username: Username::parse(name).expect("a valid username"),
        first_name: PersonName::parse("First").expect("a valid name"),
        last_name: PersonName::parse("Last").expect("a valid name"),
        role,
        is_active: true,
        email_verified: true,
        preferences: Preferences::default(),
        created_at: now() - TimeDelta::days(100),
        updated_at: now() - TimeDelta::days(10),
        last_login_at: None,
        version: 4,
        password_changed_at: now() - TimeDelta::days(100),
    }
}

pub(super) fn alice() -> User {
    user(ALICE, "alice", Role::User)
}

pub(super) fn bob() -> User {
    user(BOB, "bob", Role::User)
}

pub(super) fn admin() -> User {
    user(ADMIN, "root", Role::Admin)
}

pub(super) fn inactive(mut user: User) -> User {
    user.is_active = false;
    user
}

/// `user` with [`STORED_HASH`] as their password hash.
pub(super) fn credentials(user: User) -> Credentials {
    Credentials {
        user,
        password_hash: PasswordHash::new(STORED_HASH.to_owned()),
    }
}

/// The user a store would return after inserting `new`.
pub(super) fn stored(new: &NewUser) -> User {
    User {
        id: new.id,
        email: new.email.clone(),
        username: new.username.clone(),
        first_name: new.first_name.clone(),
        last_name: new.last_name.clone(),
        role: new.role,
        is_active: new.is_active,
        email_verified: new.email_verified,
        preferences: Preferences::default(),
        created_at: new.created_at,
        updated_at: new.created_at,
        last_login_at: None,
        version: 1,
        password_changed_at: new.created_at,
    }
}

/// A live session of `user` opened a day ago, expiring in `remaining`.
pub(super) fn session(id: SessionId, user: UserId, remaining: TimeDelta) -> Session {
    Session {
        id,
        user_id: user,
        created_at: now() - TimeDelta::days(1),
        last_used_at: now() - TimeDelta::hours(1),
        expires_at: now() + remaining,
        revoked_at: None,
        user_agent: None,
        ip: None,
        tenant: None,
    }
}

/// A caller of no tenant, with a default (empty) [`ClientInfo`].
pub(super) fn principal(user: User, session_id: SessionId) -> Principal {
    Principal {
        user,
        session_id,
        tenant: None,
        client: ClientInfo::default(),
        password_change_required: false,
    }
}

/// A client that says who it is, where from, and which request this is.
pub(super) fn client() -> ClientInfo {
    ClientInfo {
        user_agent: Some("curl/8.5".to_owned()),
        ip: Some("203.0.113.7".to_owned()),
        request_id: Some("req-0042".to_owned()),
    }
}

/// [`principal`] calling from [`client`].
pub(super) fn principal_from_client(user: User, session_id: SessionId) -> Principal {
    Principal {
        client: client(),
        ..principal(user, session_id)
    }
}

/// The active tenant [`TENANT`], slug `acme`.
pub(super) fn tenant() -> Tenant {
    Tenant {
        id: TENANT,
        name: "Acme".to_owned(),
        slug: TenantSlug::parse("acme").expect("a valid slug"),
        description: String::new(),
        domain: String::new(),
        settings: serde_json::Map::new(),
        is_active: true,
        created_at: now() - TimeDelta::days(50),
        updated_at: now() - TimeDelta::days(5),
        version: 2,
    }
}

/// [`TENANT`] as a caller names it: by its slug.
pub(super) fn acme() -> TenantRef {
    TenantRef::Slug(TenantSlug::parse("acme").expect("a valid slug"))
}

/// Whether `reference` names [`TENANT`] (by id or by slug).
pub(super) fn names_acme(reference: &TenantRef) -> bool {
    *reference == acme() || *reference == TenantRef::Id(TENANT)
}

/// The first page of twenty.
pub(super) fn first_page() -> PageRequest {
    PageRequest {
        page: 1,
        per_page: 20,
    }
}

/// [`principal_from_client`] with an access token scoped to [`TENANT`] whose claim says
/// `claimed` (what the token says, not what the store says now).
pub(super) fn principal_in_tenant(user: User, claimed: TenantRole) -> Principal {
    Principal {
        tenant: Some((TENANT, claimed)),
        ..principal_from_client(user, SESSION)
    }
}

/// The `access.denied` journal of a refused administrative request by `actor` calling from
/// [`client`]: the `n`-th generated id, the operation in the details, and the tenant if any.
pub(super) fn denied(
    n: u128,
    actor: UserId,
    operation: &str,
    target: AuditTarget,
    tenant: Option<TenantId>,
) -> Journal {
    let mut event = event(n, AuditAction::AccessDenied, Some(actor), target, &client());
    event.tenant = tenant;
    event
        .details
        .insert("operation".to_owned(), operation.into());
    Journal::of(event)
}

/// The event a use case should record: the `n`-th generated id, now, no tenant, no details,
/// and the client's address and request id.
pub(super) fn event(
    n: u128,
    action: AuditAction,
    actor: Option<UserId>,
    target: AuditTarget,
    client: &ClientInfo,
) -> AuditEvent {
    AuditEvent {
        id: AuditEventId::from_uuid(generated_id(n)),
        at: now(),
        actor,
        tenant: None,
        action,
        target,
        ip: client.ip.clone(),
        request_id: client.request_id.clone(),
        details: serde_json::Map::new(),
    }
}

/// The events of the journals, in order.
pub(super) fn events(journals: &[Journal]) -> Vec<AuditEvent> {
    journals.iter().flat_map(|j| j.events.clone()).collect()
}

/// The names of the fields that have errors, in order.
pub(super) fn fields(errors: &ValidationErrors) -> Vec<&str> {
    errors.fields().keys().map(String::as_str).collect()
}

/// All messages recorded against `field`, joined.
pub(super) fn messages(errors: &ValidationErrors, field: &str) -> String {
    errors
        .fields()
        .get(field)
        .map(|m| m.join(" | "))
        .unwrap_or_default()
}

pub(super) fn revocation_error() -> RevocationError {
    RevocationError("the list is down".into())
}

/// Records the arguments of the calls a mock received, to assert on after the use case ran.
#[derive(Debug)]
pub(super) struct Calls<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Calls<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T: Clone> Calls<T> {
    pub(super) fn new() -> Self {
        Self(Arc::new(Mutex::new(Vec::new())))
    }

    pub(super) fn record(&self, call: T) {
        self.0.lock().unwrap().push(call);
    }

    pub(super) fn all(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }
}

/// Mocks of the ports a test configures; the clock, ids and randomness are added by
/// [`Fixture::ports`].
pub(super) struct Fixture {
    pub(super) settings: AuthSettings,
    pub(super) users: MockUserStore,
    pub(super) sessions: MockSessionStore,
    pub(super) tenants: MockTenantStore,
    /// The audit log: by default it accepts every append and records it in
    /// [`appended`](Self::appended).
    pub(super) audit: MockAuditLog,
    /// The journals appended to the default audit log (the events with no change of their
    /// own), in order.
    pub(super) appended: Calls<Journal>,
    pub(super) hasher: MockPasswordHasher,
    pub(super) strength: MockPasswordStrength,
    pub(super) tokens: MockTokenCodec,
    pub(super) revocation: MockTokenRevocation,
    pub(super) mailer: MockMailer,
    /// The outbox the delivery worker reads (the use cases only put mail in journals).
    pub(super) outbox: MockOutbox,
    /// The seal: a fake that keeps every sealed message, so tests can read what a journal's
    /// mail says.
    pub(super) sealed: FakeSeal,
    /// The login throttle; `None` means a permissive one (nothing locked, every call succeeds),
    /// for the tests that are not about throttling.
    pub(super) throttle: Option<MockLoginThrottle>,
}

impl Fixture {
    pub(super) fn new() -> Self {
        let appended = Calls::new();
        let recorder = appended.clone();
        let mut audit = MockAuditLog::new();
        audit.expect_append().returning(move |journal| {
            recorder.record(journal);
            Ok(())
        });
        Self {
            settings: settings(),
            users: MockUserStore::new(),
            sessions: MockSessionStore::new(),
            tenants: MockTenantStore::new(),
            audit,
            appended,
            hasher: MockPasswordHasher::new(),
            strength: MockPasswordStrength::new(),
            tokens: MockTokenCodec::new(),
            revocation: MockTokenRevocation::new(),
            mailer: MockMailer::new(),
            outbox: MockOutbox::new(),
            sealed: FakeSeal::default(),
            throttle: None,
        }
    }

    /// The audit log refuses every append (it still records the attempt in `appended`).
    pub(super) fn audit_fails(&mut self) {
        let recorder = self.appended.clone();
        self.audit = MockAuditLog::new();
        self.audit.expect_append().returning(move |journal| {
            recorder.record(journal);
            Err(StoreError::Unavailable("the audit table is locked".into()))
        });
    }

    /// The strength estimator scores every password `score`, with `feedback`.
    pub(super) fn strength_scores(&mut self, score: u8, feedback: Option<&str>) {
        let feedback = feedback.map(str::to_owned);
        self.strength
            .expect_estimate()
            .returning(move |_, _| StrengthVerdict {
                score,
                feedback: feedback.clone(),
            });
    }

    /// The hasher turns exactly `password` into [`STORED_HASH`], once.
    pub(super) fn hashes(&mut self, password: &'static str) {
        self.hasher
            .expect_hash()
            .withf(move |p| p.secret().expose_secret() == password)
            .times(1)
            .returning(|_| Ok(PasswordHash::new(STORED_HASH.to_owned())));
    }

    /// Records every fast-path revocation `(session, until)`; each succeeds.
    pub(super) fn record_fast_path(&mut self) -> Calls<(SessionId, DateTime<Utc>)> {
        let calls = Calls::new();
        let recorder = calls.clone();
        self.revocation
            .expect_revoke()
            .returning(move |session, until| {
                recorder.record((session, until));
                Ok(())
            });
        calls
    }

    /// No session is revoked, neither in the store nor on the fast path.
    pub(super) fn no_revocation(&mut self) {
        self.sessions.expect_revoke().never();
        self.sessions.expect_revoke_all().never();
        self.revocation.expect_revoke().never();
    }

    /// The ports, with the clock, ids and randomness faked deterministically.
    pub(super) fn ports(self) -> (Ports, AuthSettings) {
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now());

        let mut ids = MockIdGenerator::new();
        let mut issued_ids = 0;
        ids.expect_new_id().returning(move || {
            issued_ids += 1;
            generated_id(issued_ids)
        });

        let mut random = MockSecureRandom::new();
        let mut issued_tokens = 0;
        random.expect_new_token().returning(move || {
            issued_tokens += 1;
            let plaintext = token(issued_tokens);
            OpaqueToken {
                hash: digest(&plaintext),
                plaintext: SecretString::from(plaintext),
            }
        });
        random.expect_digest().returning(digest);

        let throttle = self.throttle.unwrap_or_else(|| {
            let mut throttle = MockLoginThrottle::new();
            throttle
                .expect_check()
                .returning(|_| Ok(AttemptWindow::default()));
            throttle.expect_count_attempt().returning(|_, window| {
                Ok(AttemptWindow {
                    failures: 1,
                    resets_at: Some(now() + window),
                })
            });
            throttle.expect_clear().returning(|_| Ok(()));
            throttle
        });
        let ports = Ports {
            throttle: Arc::new(throttle),
            users: Arc::new(self.users),
            sessions: Arc::new(self.sessions),
            tenants: Arc::new(self.tenants),
            audit: Arc::new(self.audit),
            hasher: Arc::new(self.hasher),
            strength: Arc::new(self.strength),
            tokens: Arc::new(self.tokens),
            revocation: Arc::new(self.revocation),
            mailer: Arc::new(self.mailer),
            outbox: Arc::new(self.outbox),
            seal: Arc::new(self.sealed),
            clock: Arc::new(clock),
            ids: Arc::new(ids),
            random: Arc::new(random),
        };
        (ports, self.settings)
    }

    /// The tenant store finds [`tenant()`] by its id or its slug (as often as asked), and
    /// nothing else.
    pub(super) fn tenant_exists(&mut self) {
        self.tenants
            .expect_find()
            .withf(names_acme)
            .returning(|_| Ok(Some(tenant())));
    }

    /// The tenant store finds no tenant.
    pub(super) fn no_tenant(&mut self) {
        self.tenants.expect_find().returning(|_| Ok(None));
    }

    /// `user`'s live role in [`TENANT`], as the store answers it now (`None`: not a member).
    pub(super) fn live_role(&mut self, user: UserId, role: Option<TenantRole>) {
        self.tenants
            .expect_role_of()
            .withf(move |tenant, member| *tenant == TENANT && *member == user)
            .returning(move |_, _| Ok(role));
    }

    /// The roles `viewer` holds in the tenants `target` belongs to.
    pub(super) fn shared_roles(&mut self, viewer: UserId, target: UserId, roles: &[TenantRole]) {
        let roles = roles.to_vec();
        self.tenants
            .expect_shared_roles()
            .withf(move |v, t| *v == viewer && *t == target)
            .returning(move |_, _| Ok(roles.clone()));
    }

    /// No tenant, membership or member list is written or read past the refusal.
    pub(super) fn no_tenant_writes(&mut self) {
        self.tenants.expect_create().never();
        self.tenants.expect_update().never();
        self.tenants.expect_delete().never();
        self.tenants.expect_members().never();
        self.tenants.expect_add_member().never();
        self.tenants.expect_change_role().never();
        self.tenants.expect_remove_member().never();
    }

    pub(super) fn auth(self) -> AuthService {
        let (ports, settings) = self.ports();
        AuthService::new(ports, settings)
    }

    pub(super) fn account(self) -> AccountService {
        let (ports, settings) = self.ports();
        AccountService::new(ports, settings)
    }

    pub(super) fn tenant_service(self) -> TenantService {
        let (ports, settings) = self.ports();
        TenantService::new(ports, settings)
    }

    pub(super) fn user_admin(self) -> UserAdminService {
        let (ports, settings) = self.ports();
        UserAdminService::new(ports, settings)
    }

    pub(super) fn audit_service(self) -> AuditService {
        let (ports, _) = self.ports();
        AuditService::new(ports)
    }
}

// ----- one-time tokens and queued mail ----------------------------------------------------------

/// The one-time token a use case should issue for `user`: the digest of the `n`-th random
/// token (never the plaintext), created now, for `purpose`, valid for `ttl`.
pub(super) fn action_token(
    n: u32,
    user: UserId,
    purpose: crate::model::ActionPurpose,
    ttl: TimeDelta,
) -> crate::model::ActionToken {
    crate::model::ActionToken {
        hash: digest(&token(n)),
        user_id: user,
        purpose,
        created_at: now(),
        expires_at: now() + ttl,
    }
}

/// The message a journal should queue: sealed by [`FakeSeal`] under the `n`-th generated id,
/// queued now.
pub(super) fn sealed_mail(n: u128, kind: crate::model::MailKind) -> crate::model::SealedMail {
    crate::model::SealedMail {
        id: generated_id(n),
        kind,
        created_at: now(),
        sealed: generated_id(n).as_bytes().to_vec(),
    }
}

/// Asserts that `mail` goes to `to` with `subject` and carries the plaintext token `plaintext`:
/// `link` (which holds it) in both bodies, a `token: <plaintext>` line in the text, and never
/// the token's digest.
pub(super) fn assert_carries_token(
    mail: &OutgoingMail,
    to: &str,
    subject: &str,
    link: &str,
    plaintext: &str,
) {
    assert_eq!(mail.to.as_str(), to);
    assert_eq!(mail.subject, subject);
    assert!(link.contains(plaintext), "the link holds the token: {link}");
    assert!(
        mail.text.contains(link),
        "the link in the text: {}",
        mail.text
    );
    assert!(
        mail.text
            .lines()
            .any(|line| line.trim() == format!("token: {plaintext}")),
        "a `token:` line in the text: {}",
        mail.text
    );
    assert!(
        mail.html.contains(link),
        "the link in the HTML: {}",
        mail.html
    );
    let hash = digest(plaintext);
    assert!(
        !mail.text.contains(hash.as_str()) && !mail.html.contains(hash.as_str()),
        "never the digest"
    );
}

/// Asserts that `mail` carries no one-time token at all (a notice): neither a `token:` line
/// nor a link with `token=`.
pub(super) fn assert_carries_no_token(mail: &OutgoingMail) {
    for body in [&mail.text, &mail.html] {
        assert!(
            !body.contains("token:") && !body.contains("token="),
            "a notice carries no token: {body}"
        );
    }
}
