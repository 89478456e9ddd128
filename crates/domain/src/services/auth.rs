//! Authentication use cases: register, login, refresh, logout, authenticate, e-mail verification.

use chrono::{DateTime, TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::{Ports, Principal, infrastructure_errors, strong_enough};
use crate::model::{
    AuditAction, AuditTarget, Email, Journal, NewSession, NewUser, Password, PersonName,
    RefreshRotation, Role, Session, SessionId, TenantId, TenantRef, TenantRole, User, UserId,
    Username,
};
use crate::policy;
use crate::ports::{AccessClaims, Login, StoreError, UniqueField};
use crate::settings::AuthSettings;
use crate::{BoxError, ValidationErrors};

/// A self-registration request, as received.
#[derive(Debug, Clone)]
pub struct Registration {
    /// E-mail address.
    pub email: String,
    /// Username.
    pub username: String,
    /// Password.
    pub password: SecretString,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
}

/// Why registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// A field is invalid (including a guessable password).
    #[error("invalid registration: {0}")]
    Invalid(ValidationErrors),
    /// The e-mail address is taken.
    #[error("the e-mail address is already registered")]
    EmailTaken,
    /// The username is taken.
    #[error("the username is already taken")]
    UsernameTaken,
    /// A dependency is down.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("registration failed")]
    Unexpected(#[source] BoxError),
}

/// Where a request came from, remembered with the session it opens and in the audit trail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// Peer address.
    pub ip: Option<String>,
    /// The request's id (`X-Request-Id`).
    pub request_id: Option<String>,
}

/// A login request, as received.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    /// E-mail address or username.
    pub login: String,
    /// Password.
    pub password: SecretString,
    /// Whether the session lasts the longer remember-me lifetime.
    pub remember_me: bool,
    /// The tenant (slug or id) to scope the tokens to.
    pub tenant: Option<String>,
    /// The client.
    pub client: ClientInfo,
}

/// Tokens handed to a client after login or refresh.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    /// Signed JWT access token.
    pub access_token: SecretString,
    /// Opaque refresh token.
    pub refresh_token: SecretString,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Seconds until the session (and so the refresh token) expires.
    pub refresh_expires_in: i64,
    /// The session the tokens belong to.
    pub session_id: SessionId,
    /// The user.
    pub user: User,
    /// Whether the password is past `AuthSettings::password_max_age`: the tokens then allow
    /// nothing but reading the account, changing the password and logging out, until the
    /// password is changed (decided on every request, not written into the tokens).
    pub password_change_required: bool,
}

/// Why login failed. Wrong login name, wrong password and inactive account are the same error,
/// so the answer does not tell whether an account exists.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown login, wrong password or inactive account.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The credentials are right but the requested tenant is unknown, inactive, or not one
    /// of the user's: one answer for all three.
    #[error("not a member of the requested tenant")]
    TenantForbidden,
    /// The credentials are right, but the address is not verified yet and
    /// `require_verified_email` is on.
    #[error("the e-mail address is not verified")]
    EmailNotVerified,
    /// Too many failures for this login name; nothing was checked. Known and unknown names are
    /// locked alike.
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    TooManyAttempts {
        /// Seconds until the lock ends.
        retry_after_secs: i64,
    },
    /// A dependency is down.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("login failed")]
    Unexpected(#[source] BoxError),
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Unknown token, or its session is revoked or expired, or its user is gone or inactive.
    #[error("invalid refresh token")]
    InvalidToken,
    /// The token had already been spent: the whole session has now been revoked.
    #[error("refresh token reuse detected; the session is revoked")]
    Reused,
    /// A dependency is down.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("refresh failed")]
    Unexpected(#[source] BoxError),
}

/// Why a logout failed.
#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    /// The policy refused it.
    #[error("not allowed")]
    Forbidden,
    /// A dependency is down.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("logout failed")]
    Unexpected(#[source] BoxError),
}

/// Why a bearer token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Invalid, expired or revoked token, or its user is gone or inactive.
    #[error("not authenticated: {0}")]
    Unauthenticated(&'static str),
    /// The revocation list or the store cannot be read; the request is refused (fail closed).
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("authentication failed")]
    Unexpected(#[source] BoxError),
}

infrastructure_errors!(
    RegisterError,
    LoginError,
    RefreshError,
    LogoutError,
    AuthError,
);

/// The authentication use cases.
#[derive(Debug, Clone)]
pub struct AuthService {
    pub(super) ports: Ports,
    pub(super) settings: AuthSettings,
}

impl AuthService {
    /// A service over `ports`.
    #[must_use]
    pub fn new(ports: Ports, settings: AuthSettings) -> Self {
        Self { ports, settings }
    }

    /// The settings in force.
    #[must_use]
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Registers a new account (role `user`, active, address unverified) and e-mails a
    /// verification token: the account, the token and the message commit together.
    ///
    /// # Errors
    /// [`RegisterError`]: every invalid field at once, then a taken e-mail or username.
    pub async fn register(
        &self,
        input: Registration,
        client: &ClientInfo,
    ) -> Result<User, RegisterError> {
        self.create_user(input, Role::User, false, None, client)
            .await
    }

    /// Creates an account with the given role, e.g. the first administrator from the command
    /// line, or a user an administrator (`actor`) creates. The password rules apply as for
    /// registration; a verification e-mail goes with it unless `email_verified`. Recorded as
    /// `user.registered` without an actor, `user.created` with one.
    ///
    /// # Errors
    /// As [`register`](Self::register).
    pub async fn create_user(
        &self,
        input: Registration,
        role: Role,
        email_verified: bool,
        actor: Option<UserId>,
        client: &ClientInfo,
    ) -> Result<User, RegisterError> {
        let new_user = self.new_user(input, role, email_verified).await?;
        let action = if actor.is_some() {
            AuditAction::UserCreated
        } else {
            AuditAction::UserRegistered
        };
        let event = self
            .ports
            .event(action, actor, AuditTarget::User(new_user.id), client)
            .with("role", role.as_str());
        let mut journal = Journal::of(event);
        if !email_verified {
            journal = self
                .with_verification(journal, new_user.id, &new_user.email, &new_user.username)
                .map_err(|error| RegisterError::Unexpected(Box::new(error)))?;
        }
        match self.ports.users.insert(new_user, journal).await {
            Ok(user) => Ok(user),
            Err(StoreError::Duplicate(UniqueField::Email)) => Err(RegisterError::EmailTaken),
            Err(StoreError::Duplicate(UniqueField::Username)) => Err(RegisterError::UsernameTaken),
            Err(other) => Err(other.into()),
        }
    }

    /// Validates a registration and hashes its password: the user to insert.
    ///
    /// # Errors
    /// [`RegisterError::Invalid`] with every invalid field at once.
    pub async fn new_user(
        &self,
        input: Registration,
        role: Role,
        email_verified: bool,
    ) -> Result<NewUser, RegisterError> {
        let mut errors = ValidationErrors::new();
        let email = errors.check("email", Email::parse(&input.email));
        let username = errors.check("username", Username::parse(&input.username));
        let first_name = errors.check(
            "first_name",
            PersonName::parse(input.first_name.as_deref().unwrap_or_default()),
        );
        let last_name = errors.check(
            "last_name",
            PersonName::parse(input.last_name.as_deref().unwrap_or_default()),
        );
        // Length rules always, so every field's error is reported at once; the strength
        // estimate only once the other fields are valid, so it sees bounded, normalised inputs.
        let password = errors.check(
            "password",
            Password::new(input.password, &self.settings.password_rules),
        );
        let (Some(email), Some(username), Some(first_name), Some(last_name), Some(password)) =
            (email, username, first_name, last_name, password)
        else {
            return Err(RegisterError::Invalid(errors));
        };
        let user_inputs: Vec<String> = [
            email.as_str(),
            username.as_str(),
            first_name.as_str(),
            last_name.as_str(),
        ]
        .into_iter()
        .filter(|word| !word.is_empty())
        .map(str::to_owned)
        .collect();
        if !strong_enough(
            &self.ports,
            &self.settings.password_rules,
            &password,
            &user_inputs,
            "password",
            &mut errors,
        )
        .await
        {
            return Err(RegisterError::Invalid(errors));
        }

        let password_hash = self.ports.hasher.hash(&password).await?;
        Ok(NewUser {
            id: UserId::from_uuid(self.ports.ids.new_id()),
            email,
            username,
            first_name,
            last_name,
            role,
            is_active: true,
            email_verified,
            password_hash,
            created_at: self.ports.clock.now(),
        })
    }

    /// Logs a user in by e-mail or username and opens a session.
    ///
    /// An unknown login spends as long as a wrong password (the hasher verifies against a
    /// dummy hash), and an inactive account is refused only after its password was checked.
    /// Attempts are counted per login name (known or not) before the password is checked;
    /// beyond `login_max_failures` within `login_window` the name is locked until the window
    /// ends, and no password is checked. When the name is an account's, the attempt is also
    /// counted for the account (`account:<id>`, one window for its e-mail address and its
    /// username together); beyond the limit the account refuses every password, the right
    /// one included, as it refuses a wrong one: the same 401 after the same work, so that
    /// the account's lock cannot tell which names belong to one account. A success clears
    /// both counts. The session is created only if the password hash that was checked is
    /// still the account's (a password changed or reset meanwhile makes the login fail).
    ///
    /// # Errors
    /// [`LoginError::InvalidCredentials`] for every kind of refusal;
    /// [`LoginError::TooManyAttempts`] while the name is locked; `Unavailable` when the
    /// throttle cannot be reached (fail closed: no unlimited guessing while it is down).
    pub async fn login(&self, request: LoginRequest) -> Result<IssuedTokens, LoginError> {
        let key = throttle_key(&request.login);
        // Count the attempt before checking the password: concurrent attempts each get their
        // own count, so no more than `login_max_failures` passwords are tried per window.
        let window = self
            .ports
            .throttle
            .count_attempt(&key, self.settings.login_window)
            .await?;
        if window.failures > self.settings.login_max_failures {
            if window.failures == self.settings.login_max_failures + 1 {
                // Once, when the lock starts: by the account's id when the name is one's (so
                // that no personal data outlives the account), else by the name as typed.
                let account = match parse_login(&request.login) {
                    Some(login) => match self.ports.users.find_credentials(&login).await {
                        Ok(found) => Ok(found.map(|credentials| credentials.user.id)),
                        Err(error) => Err(error),
                    },
                    None => Ok(None),
                };
                let event = match account {
                    Ok(Some(id)) => self.ports.event(
                        AuditAction::UserLocked,
                        None,
                        AuditTarget::User(id),
                        &request.client,
                    ),
                    // Whose name it is cannot be told now: recorded without the name, which
                    // may be an account's.
                    Err(error) => {
                        tracing::warn!(error = %error, "lockout recorded without its account");
                        self.ports.event(
                            AuditAction::UserLocked,
                            None,
                            AuditTarget::None,
                            &request.client,
                        )
                    }
                    Ok(None) => self
                        .ports
                        .event(
                            AuditAction::UserLocked,
                            None,
                            AuditTarget::None,
                            &request.client,
                        )
                        .with("login", login_name(&request.login)),
                };
                self.ports.record(event).await;
            }
            return Err(self.locked(window));
        }
        let credentials = match self.check_credentials(&request).await {
            Ok(credentials) => credentials,
            Err(Refusal::Credentials(account)) => {
                self.record_failed_login(&request, account, "credentials")
                    .await;
                return Err(LoginError::InvalidCredentials);
            }
            Err(Refusal::Locked(account)) => {
                self.record_failed_login(&request, Some(account), "locked")
                    .await;
                return Err(LoginError::InvalidCredentials);
            }
            Err(Refusal::Failed(other)) => return Err(other),
        };
        self.ports.throttle.clear(&key).await?;
        self.ports
            .throttle
            .clear(&account_throttle_key(credentials.user.id))
            .await?;
        // Only after the password was checked: only the account's owner learns that the
        // address is what stands in the way.
        if self.settings.require_verified_email && !credentials.user.email_verified {
            self.record_failed_login(&request, Some(credentials.user.id), "unverified")
                .await;
            return Err(LoginError::EmailNotVerified);
        }
        let tenant = match &request.tenant {
            None => None,
            Some(raw) => match self.tenant_scope(credentials.user.id, raw).await? {
                Some(scope) => Some(scope),
                None => {
                    self.record_failed_login(&request, Some(credentials.user.id), "tenant")
                        .await;
                    return Err(LoginError::TenantForbidden);
                }
            },
        };
        self.open_session(credentials, request, tenant).await
    }

    /// `user`'s role in the active tenant `raw` names (slug or id); `None` for an unknown or
    /// inactive tenant or a non-member, alike.
    async fn tenant_scope(
        &self,
        user: UserId,
        raw: &str,
    ) -> Result<Option<(TenantId, TenantRole)>, StoreError> {
        let Ok(reference) = TenantRef::parse(raw) else {
            return Ok(None);
        };
        let Some(tenant) = self.ports.tenants.find(&reference).await? else {
            return Ok(None);
        };
        if !tenant.is_active {
            return Ok(None);
        }
        Ok(self
            .ports
            .tenants
            .role_of(tenant.id, user)
            .await?
            .map(|role| (tenant.id, role)))
    }

    /// Records a refused login, never the password: for an existing account by its id (so
    /// that no personal data outlives the account), with `reason` (`credentials`: a wrong
    /// password or an inactive account, or a password changed or reset while the login ran;
    /// `locked`: the account's own window is over the limit, so no password was checked;
    /// `tenant`: the tenant asked for was refused, named as typed); for a name that is
    /// nobody's, by the name as typed.
    async fn record_failed_login(
        &self,
        request: &LoginRequest,
        account: Option<UserId>,
        reason: &'static str,
    ) {
        let event = match account {
            Some(user) => {
                let event = self
                    .ports
                    .event(
                        AuditAction::UserLoginFailed,
                        None,
                        AuditTarget::User(user),
                        &request.client,
                    )
                    .with("reason", reason);
                match &request.tenant {
                    Some(tenant) if reason == "tenant" => event.with("tenant", login_name(tenant)),
                    _ => event,
                }
            }
            None => self
                .ports
                .event(
                    AuditAction::UserLoginFailed,
                    None,
                    AuditTarget::None,
                    &request.client,
                )
                .with("login", login_name(&request.login)),
        };
        self.ports.record(event).await;
    }

    fn locked(&self, window: crate::ports::AttemptWindow) -> LoginError {
        LoginError::TooManyAttempts {
            retry_after_secs: retry_after_secs(window, self.ports.clock.now(), &self.settings),
        }
    }

    /// The user whose credentials these are, if the password matches and the account is active.
    ///
    /// For a name that is an account's, the attempt is counted for the account too, before
    /// the password is checked; an account over the limit is refused without checking the
    /// password, after a dummy verification, exactly as a wrong password is refused.
    async fn check_credentials(
        &self,
        request: &LoginRequest,
    ) -> Result<crate::model::Credentials, Refusal> {
        let login = parse_login(&request.login);
        let credentials = match &login {
            Some(login) => self
                .ports
                .users
                .find_credentials(login)
                .await
                .map_err(|e| Refusal::Failed(e.into()))?,
            None => None,
        };
        let Some(credentials) = credentials else {
            self.ports
                .hasher
                .verify_dummy(&request.password)
                .await
                .map_err(|e| Refusal::Failed(e.into()))?;
            return Err(Refusal::Credentials(None));
        };
        let account = credentials.user.id;
        let window = self
            .ports
            .throttle
            .count_attempt(&account_throttle_key(account), self.settings.login_window)
            .await
            .map_err(|e| Refusal::Failed(e.into()))?;
        if window.failures > self.settings.login_max_failures {
            if window.failures == self.settings.login_max_failures + 1 {
                let event = self
                    .ports
                    .event(
                        AuditAction::UserLocked,
                        None,
                        AuditTarget::User(account),
                        &request.client,
                    )
                    .with("scope", "account");
                self.ports.record(event).await;
            }
            // Not a 429: that would tell that this name and the one that used the window up
            // are the same account's. The same work as a wrong password, and its answer.
            self.ports
                .hasher
                .verify_dummy(&request.password)
                .await
                .map_err(|e| Refusal::Failed(e.into()))?;
            return Err(Refusal::Locked(account));
        }
        let matches = self
            .ports
            .hasher
            .verify(&request.password, &credentials.password_hash)
            .await
            .map_err(|e| Refusal::Failed(e.into()))?;
        if !matches || !credentials.user.is_active {
            return Err(Refusal::Credentials(Some(account)));
        }
        Ok(credentials)
    }

    async fn open_session(
        &self,
        credentials: crate::model::Credentials,
        request: LoginRequest,
        tenant: Option<(TenantId, TenantRole)>,
    ) -> Result<IssuedTokens, LoginError> {
        let now = self.ports.clock.now();
        let lifetime = if request.remember_me {
            self.settings.remember_me_ttl
        } else {
            self.settings.refresh_ttl
        };
        let refresh = self.ports.random.new_token();
        let session = Session {
            id: SessionId::from_uuid(self.ports.ids.new_id()),
            user_id: credentials.user.id,
            created_at: now,
            last_used_at: now,
            expires_at: now + lifetime,
            revoked_at: None,
            user_agent: request
                .client
                .user_agent
                .clone()
                .map(|ua| truncate(&ua, 256)),
            ip: request.client.ip.clone().map(|ip| truncate(&ip, 64)),
            tenant: tenant.map(|(id, _)| id),
        };
        let mut event = self
            .ports
            .event(
                AuditAction::UserLogin,
                Some(credentials.user.id),
                AuditTarget::User(credentials.user.id),
                &request.client,
            )
            .with("session_id", session.id.to_string());
        if let Some((id, _)) = tenant {
            event = event.in_tenant(id);
        }
        let created = self
            .ports
            .sessions
            .create(
                NewSession {
                    session: session.clone(),
                    refresh_token: refresh.hash,
                    verified_password: credentials.password_hash.clone(),
                },
                Journal::of(event),
            )
            .await;
        match created {
            Ok(()) => {}
            // The password that was checked is no longer the password (changed or reset while
            // this login ran, and the other sessions revoked), or the account was deactivated
            // or deleted meanwhile: refused as wrong credentials, opening no session.
            Err(StoreError::Changed | StoreError::NotFound) => {
                self.record_failed_login(&request, Some(credentials.user.id), "credentials")
                    .await;
                return Err(LoginError::InvalidCredentials);
            }
            Err(other) => return Err(other.into()),
        }
        let mut user = credentials.user;
        user.last_login_at = Some(now);
        Ok(self.issue(user, &session, tenant, refresh.plaintext, now)?)
    }

    /// Exchanges a refresh token for a new pair. The presented token is spent; presenting a
    /// spent token again revokes its whole session.
    ///
    /// Everything that can fail is done before the token is spent: the token and its session
    /// are looked up, the revocation list, the user and the tenant scope read, and the access
    /// token signed; then the rotation spends the token (re-checking atomically that it is
    /// still unspent and its session live) and nothing is left to fail. A dependency that is
    /// down therefore leaves the token unspent, and the client's retry with it is no reuse.
    /// A session on the revocation list but live in the store (a logout whose store write
    /// failed) is revoked in the store too.
    ///
    /// # Errors
    /// [`RefreshError::InvalidToken`] or [`RefreshError::Reused`]; `Unavailable` when the
    /// store or the revocation list cannot be read (fail closed), the token unspent.
    pub async fn refresh(
        &self,
        token: &SecretString,
        client: &ClientInfo,
    ) -> Result<IssuedTokens, RefreshError> {
        let presented = self.ports.random.digest(token.expose_secret());
        let now = self.ports.clock.now();
        let Some(stored) = self.ports.sessions.find_refresh_token(&presented).await? else {
            return Err(RefreshError::InvalidToken);
        };
        let session = stored.session;
        // A replayed token is reported even when its session is dead too: the reuse is the
        // more alarming fact.
        if stored.used_at.is_some() {
            return Err(self.reuse_detected(&session, now, client).await);
        }
        if !session.is_live(now) {
            return Err(RefreshError::InvalidToken);
        }
        if self.ports.revocation.is_revoked(session.id).await? {
            // Revoked on the fast path but not in the store: the store write of a logout (or
            // of another revocation) failed after the list's. Completed now.
            let event = self
                .ports
                .event(
                    AuditAction::SessionRevoked,
                    None,
                    AuditTarget::Session(session.id),
                    client,
                )
                .with("reason", "refresh of a session on the revocation list");
            self.ports
                .sessions
                .revoke(session.user_id, session.id, now, Journal::of(event))
                .await?;
            return Err(RefreshError::InvalidToken);
        }
        let user = match self.ports.users.find_by_id(session.user_id).await? {
            Some(user) if user.is_active => Some(user),
            _ => None,
        };
        // A scoped session keeps its scope only while the membership lasts.
        let scope = match (&user, session.tenant) {
            (Some(user), Some(tenant)) => self
                .tenant_scope(user.id, &tenant.to_string())
                .await?
                .map(Some),
            (Some(_), None) => Some(None),
            (None, _) => None,
        };
        let (Some(user), Some(tenant)) = (user, scope) else {
            let event = self
                .ports
                .event(
                    AuditAction::SessionRevoked,
                    None,
                    AuditTarget::Session(session.id),
                    client,
                )
                .with("reason", "refresh after the account or membership ended");
            self.revoke_session::<RefreshError>(
                session.user_id,
                session.id,
                now,
                Journal::of(event),
            )
            .await?;
            return Err(RefreshError::InvalidToken);
        };
        let replacement = self.ports.random.new_token();
        // Signed before the token is spent (the session's id and lifetime are fixed), so
        // that no failure can come after the rotation.
        let issued = self.issue(user, &session, tenant, replacement.plaintext, now)?;
        match self
            .ports
            .sessions
            .rotate_refresh_token(&presented, &replacement.hash, now)
            .await
        {
            Ok(RefreshRotation::Rotated(_)) => Ok(issued),
            // A concurrent refresh with the same token spent it first: of two presenters of
            // one token at most one is the client, as before.
            Ok(RefreshRotation::Reused(session)) => {
                Err(self.reuse_detected(&session, now, client).await)
            }
            // Revoked, expired or deleted (with its user) since it was read.
            Ok(RefreshRotation::Dead(_) | RefreshRotation::Unknown) | Err(StoreError::NotFound) => {
                Err(RefreshError::InvalidToken)
            }
            Err(other) => Err(other.into()),
        }
    }

    /// A spent refresh token was presented again: revokes its session (fast path, then
    /// store) and answers [`RefreshError::Reused`], or why the revocation failed.
    async fn reuse_detected(
        &self,
        session: &Session,
        now: DateTime<Utc>,
        client: &ClientInfo,
    ) -> RefreshError {
        tracing::warn!(
            session_id = %session.id,
            user_id = %session.user_id,
            "spent refresh token presented again; revoking the session"
        );
        let event = self
            .ports
            .event(
                AuditAction::RefreshReused,
                None,
                AuditTarget::Session(session.id),
                client,
            )
            .with("user_id", session.user_id.to_string());
        match self
            .revoke_session::<RefreshError>(session.user_id, session.id, now, Journal::of(event))
            .await
        {
            Ok(()) => RefreshError::Reused,
            Err(error) => error,
        }
    }

    /// Ends the caller's current session: its access and refresh tokens stop working at once.
    ///
    /// # Errors
    /// [`LogoutError`].
    pub async fn logout(&self, principal: &Principal) -> Result<(), LogoutError> {
        if !policy::can_end_sessions(&principal.actor(), principal.user.id) {
            return Err(LogoutError::Forbidden);
        }
        let now = self.ports.clock.now();
        let event = self.ports.event(
            AuditAction::UserLogout,
            Some(principal.user.id),
            AuditTarget::Session(principal.session_id),
            &principal.client,
        );
        self.revoke_session(
            principal.user.id,
            principal.session_id,
            now,
            Journal::of(event),
        )
        .await
    }

    /// Ends every session of the caller.
    ///
    /// # Errors
    /// [`LogoutError`].
    pub async fn logout_all(&self, principal: &Principal) -> Result<(), LogoutError> {
        if !policy::can_end_sessions(&principal.actor(), principal.user.id) {
            return Err(LogoutError::Forbidden);
        }
        let now = self.ports.clock.now();
        let user = principal.user.id;
        let mut marked = self
            .mark_live_sessions_revoked::<LogoutError>(user, None, now)
            .await?;
        // The current session too, even if a racing call revoked it already.
        if !marked.contains(&principal.session_id) {
            self.mark_revoked::<LogoutError>(&[principal.session_id], now)
                .await?;
            marked.push(principal.session_id);
        }
        let event = self
            .ports
            .event(
                AuditAction::UserLogout,
                Some(user),
                AuditTarget::User(user),
                &principal.client,
            )
            .with("all_sessions", true);
        let revoked = self
            .ports
            .sessions
            .revoke_all(user, now, Journal::of(event))
            .await?;
        // Sessions opened while this ran.
        let late: Vec<SessionId> = revoked
            .into_iter()
            .filter(|id| !marked.contains(id))
            .collect();
        self.mark_revoked::<LogoutError>(&late, now).await?;
        Ok(())
    }

    /// Accepts a bearer access token: valid signature and claims, session not revoked, user
    /// present and active.
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`] for any refusal; [`AuthError::Unavailable`] when the
    /// revocation list cannot be read (the request must then be refused).
    pub async fn authenticate(
        &self,
        token: &str,
        client: ClientInfo,
    ) -> Result<Principal, AuthError> {
        let claims = self
            .ports
            .tokens
            .verify(token)
            .map_err(|error| match error {
                crate::ports::TokenError::Invalid(_) => {
                    AuthError::Unauthenticated("invalid or expired access token")
                }
                unexpected @ crate::ports::TokenError::Unexpected(_) => unexpected.into(),
            })?;
        if self.ports.revocation.is_revoked(claims.session_id).await? {
            return Err(AuthError::Unauthenticated("the session has ended"));
        }
        match self.ports.users.find_by_id(claims.user_id).await? {
            Some(user) if user.is_active => Ok(Principal {
                password_change_required: self.password_change_required(&user),
                user,
                session_id: claims.session_id,
                tenant: claims.tenant,
                client,
            }),
            _ => Err(AuthError::Unauthenticated("the account is not active")),
        }
    }

    /// Rebuilds the fast-path revocation list from the sessions revoked while an access token
    /// issued for them could still be valid (after a restart of an in-process list).
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] when the store or the list cannot be reached.
    pub async fn restore_revocations(&self) -> Result<usize, AuthError> {
        let now = self.ports.clock.now();
        let revoked = self
            .ports
            .sessions
            .revoked_since(now - self.settings.revocation_window())
            .await?;
        for (session, revoked_at) in &revoked {
            self.ports
                .revocation
                .revoke(*session, *revoked_at + self.settings.revocation_window())
                .await?;
        }
        self.ports.revocation.mark_restored().await?;
        Ok(revoked.len())
    }

    /// Restores the revocation list if it lost its state (a shared server restarted empty);
    /// the composition root calls this every second. Returns how many sessions it put back,
    /// or `None` when the list was intact.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] when the list or the store cannot be reached.
    pub async fn keep_revocations_restored(&self) -> Result<Option<usize>, AuthError> {
        if self.ports.revocation.is_restored().await? {
            return Ok(None);
        }
        self.restore_revocations().await.map(Some)
    }

    /// Revokes a session on the fast path, then in the store with `journal`. In that order,
    /// a failure leaves either nothing revoked (the caller can retry) or the session refused
    /// already.
    async fn revoke_session<E>(
        &self,
        user: UserId,
        session: SessionId,
        now: DateTime<Utc>,
        journal: Journal,
    ) -> Result<(), E>
    where
        E: From<StoreError> + From<crate::ports::RevocationError>,
    {
        self.mark_revoked::<E>(&[session], now).await?;
        self.ports
            .sessions
            .revoke(user, session, now, journal)
            .await?;
        Ok(())
    }

    /// Puts every unrevoked session of `user` except `keep` on the fast-path list, before the
    /// store revokes them: if the list cannot be written, nothing has changed yet and the
    /// caller can retry; had the store gone first, a failure here would leave revoked sessions
    /// whose access tokens still pass, with no way to find them again.
    pub(crate) async fn mark_live_sessions_revoked<E>(
        &self,
        user: UserId,
        keep: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionId>, E>
    where
        E: From<StoreError> + From<crate::ports::RevocationError>,
    {
        let live = self.live_sessions::<E>(user, keep).await?;
        self.mark_revoked::<E>(&live, now).await?;
        Ok(live)
    }

    /// The unrevoked sessions of `user`, except `keep`.
    pub(crate) async fn live_sessions<E>(
        &self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> Result<Vec<SessionId>, E>
    where
        E: From<StoreError>,
    {
        let mut live = self.ports.sessions.live_for_user(user).await?;
        live.retain(|session| Some(*session) != keep);
        Ok(live)
    }

    /// Puts sessions on the fast-path revocation list for as long as their tokens could live.
    pub(crate) async fn mark_revoked<E>(
        &self,
        sessions: &[SessionId],
        now: DateTime<Utc>,
    ) -> Result<(), E>
    where
        E: From<crate::ports::RevocationError>,
    {
        for session in sessions {
            self.ports
                .revocation
                .revoke(*session, now + self.settings.revocation_window())
                .await?;
        }
        Ok(())
    }

    fn issue(
        &self,
        user: User,
        session: &Session,
        tenant: Option<(TenantId, TenantRole)>,
        refresh_token: SecretString,
        now: DateTime<Utc>,
    ) -> Result<IssuedTokens, crate::ports::TokenError> {
        // An access token never outlives its session.
        let expires_at = (now + self.settings.access_ttl).min(session.expires_at);
        let claims = AccessClaims {
            user_id: user.id,
            session_id: session.id,
            token_id: self.ports.ids.new_id(),
            role: user.role,
            tenant,
            issued_at: now,
            expires_at,
        };
        let access_token = SecretString::from(self.ports.tokens.issue(&claims)?);
        Ok(IssuedTokens {
            access_token,
            refresh_token,
            expires_in: (expires_at - now).num_seconds(),
            refresh_expires_in: (session.expires_at - now)
                .max(TimeDelta::zero())
                .num_seconds(),
            session_id: session.id,
            password_change_required: policy::password_change_required(
                &user,
                now,
                self.settings.password_max_age,
            ),
            user,
        })
    }

    /// Whether `user` must change their password now (see
    /// [`policy::password_change_required`]), under the configured maximum age.
    #[must_use]
    pub fn password_change_required(&self, user: &User) -> bool {
        policy::password_change_required(
            user,
            self.ports.clock.now(),
            self.settings.password_max_age,
        )
    }
}

/// Why credentials were not accepted: refused (with the account, when the name is one's),
/// refused unchecked because the account's window is over the limit, or a dependency failed.
enum Refusal {
    Credentials(Option<UserId>),
    Locked(UserId),
    Failed(LoginError),
}

/// A login name as recorded in the audit trail: trimmed and bounded, as the throttle sees it.
fn login_name(login: &str) -> String {
    login.trim().chars().take(320).collect()
}

/// The throttle key of a login name: trimmed, lower-cased (as e-mail addresses and usernames
/// compare), and bounded in length, whether or not such an account exists.
pub(crate) fn throttle_key(login: &str) -> String {
    let name: String = login.trim().to_lowercase().chars().take(320).collect();
    format!("login:{name}")
}

/// The throttle key of an account's login attempts, by whichever of its names they came:
/// counted besides the name's own key, so that the e-mail address and the username do not
/// give two windows of guesses.
pub(crate) fn account_throttle_key(user: UserId) -> String {
    format!("account:{user}")
}

/// The throttle key of the attempts to confirm an account's current password (a password
/// change), so that a stolen access token does not allow unlimited guesses.
pub(crate) fn password_throttle_key(user: UserId) -> String {
    format!("password:{user}")
}

/// Every throttle key that can lock `user` out: their two login names, the account, and the
/// confirmation of their current password. An unlock or a password reset clears them all.
pub(crate) fn lockout_keys(user: &User) -> [String; 4] {
    [
        throttle_key(user.email.as_str()),
        throttle_key(user.username.as_str()),
        account_throttle_key(user.id),
        password_throttle_key(user.id),
    ]
}

/// Seconds until `window` resets at `now` (the whole `login_window` when it does not say),
/// rounded up so that a client that waits exactly this long is not refused again.
pub(crate) fn retry_after_secs(
    window: crate::ports::AttemptWindow,
    now: DateTime<Utc>,
    settings: &AuthSettings,
) -> i64 {
    let remaining = window
        .resets_at
        .map_or(settings.login_window, |at| at - now);
    (remaining.num_milliseconds() + 999).div_euclid(1000).max(1)
}

/// An e-mail address if the login parses as one, else a username if it parses as one.
fn parse_login(raw: &str) -> Option<Login> {
    if raw.contains('@') {
        Email::parse(raw).ok().map(Login::Email)
    } else {
        Username::parse(raw).ok().map(Login::Username)
    }
}

fn truncate(value: &str, max_chars: usize) -> String {
    value.chars().take(max_chars).collect()
}
