//! The composition root: the only place that knows which adapter serves which port.
//!
//! [`compose`] builds the use-case services from [`Settings`]; [`Application::build`] binds the
//! listener first (port 0 picks a free port, for tests) and wires the HTTP server.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use adapters_crypto::{
    AeadSeal, BcryptHasher, JwtCodec, OsRandom, SystemClock, UuidV7Ids, ZxcvbnStrength,
};
use adapters_mail::{FileMailer, SmtpMailer, SmtpSecurity};
use adapters_memory::{FallbackRateLimiter, MemoryRateLimiter};
use adapters_memory::{MemoryLoginThrottle, MemoryRevocation, MemoryUserCache};
use adapters_postgres::{PgPoolSettings, PostgresStore};
use adapters_redis::RedisRateLimiter;
use adapters_redis::{
    RedisClient, RedisLoginThrottle, RedisRevocation, RedisSettings, RedisUserCache,
};
use adapters_sqlite::SqliteStore;
use chrono::TimeDelta;
use domain::cache::CachedStore;
use domain::ports::RateLimiter;
use domain::ports::ServiceAccountStore;
use domain::ports::{
    AuditLog, Clock, LoginThrottle, Mailer, Outbox, PasswordHasher, Readiness, SessionStore,
    TenantStore, TokenRevocation, UserCache, UserStore,
};
use domain::services::ServiceAccountService;
use domain::services::{
    AccountService, AuditService, AuthService, MailDelivery, Maintenance, Ports, PurgeReport,
    RetentionSettings, TenantService, UserAdminService,
};
use secrecy::{ExposeSecret, SecretString};
use utoipa_swagger_ui::SwaggerUi;

use crate::ratelimit::AuthRateLimit;
use crate::settings::{DatabaseKind, Settings};
use crate::state::AppState;
use crate::{middleware, openapi, routes};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The store could not be opened or migrated.
    #[error("cannot open the database: {0}")]
    Database(String),
    /// The JWT secret could not be read, generated or used.
    #[error("JWT secret: {0}")]
    JwtSecret(String),
    /// The listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A setting the adapters refuse.
    #[error("{0}")]
    Config(String),
    /// Restoring the revocation list failed.
    #[error("cannot restore revoked sessions: {0}")]
    Revocations(String),
}

/// The use-case services, wired to the adapters the settings select.
#[derive(Clone)]
pub struct Services {
    /// Authentication use cases.
    pub auth: AuthService,
    /// Account use cases.
    pub account: AccountService,
    /// Tenant use cases.
    pub tenants: TenantService,
    /// User administration.
    pub users: UserAdminService,
    /// The audit trail.
    pub audit: AuditService,
    /// Service accounts and token introspection.
    pub service_accounts: ServiceAccountService,
    /// The outbox's delivery worker.
    pub delivery: MailDelivery,
    /// Housekeeping.
    pub maintenance: Maintenance,
    /// The dependencies the readiness probe reports, by name (`database`, `cache`).
    pub readiness: Vec<(&'static str, Arc<dyn Readiness>)>,
    /// Dependencies it reports without refusing traffic for them (`mail`: a mail server that
    /// is down delays mail; it must not take instances out of a load balancer).
    pub advisory: Vec<(&'static str, Arc<dyn Readiness>)>,
    /// The rate limiter (Redis with a stricter in-process fallback, or in process), shared
    /// by the HTTP layer's per-client limits.
    pub rate_limiter: Arc<dyn RateLimiter>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

/// An opened store: the same adapter behind every storage port, and its readiness probe.
pub struct OpenedStore {
    /// The user store.
    pub users: Arc<dyn UserStore>,
    /// The session store.
    pub sessions: Arc<dyn SessionStore>,
    /// The tenant store.
    pub tenants: Arc<dyn TenantStore>,
    /// The audit trail.
    pub audit: Arc<dyn AuditLog>,
    /// The mail outbox.
    pub outbox: Arc<dyn Outbox>,
    /// The service accounts.
    pub service_accounts: Arc<dyn ServiceAccountStore>,
    /// Its readiness probe.
    pub readiness: Arc<dyn Readiness>,
    /// What it is, for the log (no secrets).
    pub description: String,
    /// Migrations applied while opening.
    pub applied: Vec<String>,
}

impl std::fmt::Debug for OpenedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedStore")
            .field("description", &self.description)
            .field("applied", &self.applied)
            .finish_non_exhaustive()
    }
}

/// Opens the configured store (SQLite or PostgreSQL) and applies pending migrations, off the
/// async runtime.
///
/// # Errors
/// [`StartupError::Database`].
pub async fn open_store(settings: &Settings) -> Result<OpenedStore, StartupError> {
    let database = settings.database.clone();
    let pool_size = settings.db_pool_size;
    let timeout = settings.db_timeout;
    let statement_timeout = settings.db_statement_timeout;
    tokio::task::spawn_blocking(move || match database {
        DatabaseKind::Sqlite { path } => {
            let location = path.to_string_lossy().into_owned();
            let fail =
                |e: &dyn std::fmt::Display| StartupError::Database(format!("{location}: {e}"));
            let store = SqliteStore::open(&location, pool_size, timeout).map_err(|e| fail(&e))?;
            let applied = store.run_migrations().map_err(|e| fail(&e))?;
            let store = Arc::new(store);
            Ok(OpenedStore {
                users: store.clone(),
                sessions: store.clone(),
                tenants: store.clone(),
                audit: store.clone(),
                outbox: store.clone(),
                service_accounts: store.clone(),
                readiness: store,
                description: format!("sqlite ({location})"),
                applied,
            })
        }
        DatabaseKind::Postgres { url } => {
            let shown = redact_url(url.expose_secret());
            let fail = |e: &dyn std::fmt::Display| StartupError::Database(format!("{shown}: {e}"));
            let store = PostgresStore::open(
                url.expose_secret(),
                PgPoolSettings {
                    pool_size,
                    connect_timeout: timeout,
                    statement_timeout,
                },
            )
            .map_err(|e| fail(&e))?;
            let applied = store.run_migrations().map_err(|e| fail(&e))?;
            let store = Arc::new(store);
            Ok(OpenedStore {
                users: store.clone(),
                sessions: store.clone(),
                tenants: store.clone(),
                audit: store.clone(),
                outbox: store.clone(),
                service_accounts: store.clone(),
                readiness: store,
                description: format!("postgres ({shown})"),
                applied,
            })
        }
    })
    .await
    .map_err(|e| StartupError::Database(e.to_string()))?
}

/// A URL for logs and errors, its password and secret query parameters masked: the
/// workspace's one redactor, shared with the PostgreSQL and Redis adapters.
pub use redact::redact_url;

/// The state shared by every instance (Redis) or kept in process: revocation list, login
/// throttle and user cache.
struct SharedState {
    revocation: Arc<dyn TokenRevocation>,
    throttle: Arc<dyn LoginThrottle>,
    cache: Arc<dyn UserCache>,
    readiness: Arc<dyn Readiness>,
    description: String,
    limiter: Arc<dyn RateLimiter>,
    limiter_description: String,
}

/// While Redis is down, the in-process fallback enforces this fraction of each rate limit (a
/// quarter), so a few instances limiting on their own stay at or under the shared limit.
const RATE_LIMIT_FALLBACK_DIVISOR: u32 = 4;

/// Builds the services: the store `DATABASE_URL` selects (SQLite by default), Redis or
/// in-process revocation and user cache, the file mailer, bcrypt and HS256 JWTs.
///
/// # Errors
/// [`StartupError`] when a dependency cannot be set up.
pub async fn compose(settings: &Settings) -> Result<Services, StartupError> {
    let store = open_store(settings).await?;
    if !store.applied.is_empty() {
        tracing::info!(migrations = ?store.applied, "applied database migrations");
    }
    let secret = jwt_secret(settings)?;
    let tokens = JwtCodec::hs256(
        secret.expose_secret().as_bytes(),
        &settings.jwt_issuer,
        &settings.jwt_audience,
        settings.jwt_leeway_secs,
    )
    .map_err(|e| StartupError::JwtSecret(e.to_string()))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    let shared = match &settings.redis {
        Some(redis) => {
            let client = RedisClient::connect(RedisSettings {
                url: redis.url.expose_secret().to_owned(),
                pool_size: redis.pool_size,
                command_timeout: redis.command_timeout,
                key_prefix: redis.key_prefix.clone(),
            })
            .map_err(|e| StartupError::Config(format!("REDIS_URL: {e}")))?;
            match client.check_version().await {
                Ok(version) => tracing::info!(%version, "Redis version supported"),
                Err(error @ adapters_redis::RedisError::Unsupported { .. }) => {
                    return Err(StartupError::Config(format!("REDIS_URL: {error}")));
                }
                // Not reachable now: the service starts and fails closed until it is; the
                // version is the server's business once it is back.
                Err(error) => tracing::warn!(error = %error, "Redis version not checked"),
            }
            SharedState {
                revocation: Arc::new(RedisRevocation::new(client.clone())),
                throttle: Arc::new(RedisLoginThrottle::new(client.clone())),
                cache: Arc::new(RedisUserCache::new(client.clone())),
                limiter: Arc::new(FallbackRateLimiter::new(
                    RedisRateLimiter::new(client.clone()),
                    clock.clone(),
                    RATE_LIMIT_FALLBACK_DIVISOR,
                )),
                limiter_description: format!(
                    "redis, falling back to in-process limits at 1/{RATE_LIMIT_FALLBACK_DIVISOR} \
                     of the rate while it is down"
                ),
                readiness: Arc::new(client),
                description: format!("redis ({})", redact_url(redis.url.expose_secret())),
            }
        }
        None => {
            let revocation = Arc::new(MemoryRevocation::new(clock.clone()));
            SharedState {
                revocation: revocation.clone(),
                throttle: Arc::new(MemoryLoginThrottle::new(clock.clone())),
                cache: Arc::new(MemoryUserCache::new(clock.clone())),
                readiness: revocation,
                description: "memory (in process)".to_owned(),
                limiter: Arc::new(MemoryRateLimiter::new(clock.clone())),
                limiter_description: "memory (in process)".to_owned(),
            }
        }
    };
    let cache_ttl = TimeDelta::from_std(settings.cache_ttl)
        .map_err(|e| StartupError::Config(format!("UMS_CACHE_TTL_SECS: {e}")))?;
    let cached = Arc::new(CachedStore::new(
        store.users.clone(),
        store.sessions.clone(),
        shared.cache,
        cache_ttl,
    ));
    let hasher: Arc<dyn PasswordHasher> = Arc::new(
        BcryptHasher::new(settings.bcrypt_cost).map_err(|e| StartupError::Config(e.to_string()))?,
    );
    // Compute the dummy hash now, so the first unknown login costs no more than the others.
    let warm = hasher.clone();
    tokio::spawn(async move {
        let _ = warm.verify_dummy(&SecretString::from("warm-up")).await;
    });
    let (mailer, mailer_description) = mailer(settings)?;
    let ports = Ports {
        users: cached.clone(),
        sessions: cached,
        tenants: store.tenants,
        audit: store.audit,
        hasher,
        strength: Arc::new(ZxcvbnStrength),
        tokens: Arc::new(tokens),
        revocation: shared.revocation,
        throttle: shared.throttle,
        mailer,
        outbox: store.outbox,
        seal: Arc::new(AeadSeal::from_secret(secret.expose_secret().as_bytes())),
        clock,
        ids: Arc::new(UuidV7Ids),
        random: Arc::new(OsRandom),
    };
    tracing::info!(
        store = %store.description,
        revocation_and_cache = %shared.description,
        rate_limiter = %shared.limiter_description,
        auth_rate_limit = %crate::ratelimit::describe(settings.auth_rate_limit),
        trusted_proxies = %settings.client_ip.describe(),
        mailer = %mailer_description,
        hasher = %format!("bcrypt (cost {})", settings.bcrypt_cost),
        tokens = "JWT HS256",
        "adapters chosen"
    );
    let auth = AuthService::new(ports.clone(), settings.auth.clone());
    let restored = auth
        .restore_revocations()
        .await
        .map_err(|e| StartupError::Revocations(e.to_string()))?;
    if restored > 0 {
        tracing::info!(sessions = restored, "restored recently revoked sessions");
    }
    let account = AccountService::new(ports.clone(), settings.auth.clone());
    if settings.delivery.lease
        < TimeDelta::from_std(settings.smtp_timeout * 2).unwrap_or(TimeDelta::MAX)
    {
        return Err(StartupError::Config(
            "UMS_MAIL_LEASE_SECS must be at least twice UMS_SMTP_TIMEOUT_SECS: another instance \
             may resend a message whose lease ran out during its delivery"
                .to_owned(),
        ));
    }
    let delivery = MailDelivery::new(ports.clone(), settings.delivery.clone());
    // Kept at least as long as what depends on them: the revocation list is rebuilt from
    // sessions revoked within an access token's lifetime, the cooldown counts recent tokens.
    let day = TimeDelta::days(1);
    let retention = RetentionSettings {
        ended_sessions: day.max(settings.auth.revocation_window() * 2),
        spent_tokens: day.max(settings.auth.mail_cooldown * 2),
        ..RetentionSettings::default()
    };
    let mail_probe: Arc<dyn Readiness> = Arc::new(OutboxProbe(delivery.clone()));
    Ok(Services {
        delivery,
        maintenance: Maintenance::new(ports.clone(), retention),
        advisory: vec![("mail", mail_probe)],
        auth,
        account,
        tenants: TenantService::new(ports.clone(), settings.auth.clone()),
        users: UserAdminService::new(ports.clone(), settings.auth.clone()),
        service_accounts: ServiceAccountService::new(ports.clone(), store.service_accounts)
            .with_password_max_age(settings.auth.password_max_age),
        audit: AuditService::new(ports),
        readiness: vec![("database", store.readiness), ("cache", shared.readiness)],
        rate_limiter: shared.limiter,
    })
}

/// The SMTP mailer `UMS_SMTP_URL` names, or the file mailer; with how the log names it.
fn mailer(settings: &Settings) -> Result<(Arc<dyn Mailer>, String), StartupError> {
    let Some(url) = &settings.smtp_url else {
        let mailer = FileMailer::new(settings.mail_dir.clone(), &settings.mail_from)
            .map_err(|e| StartupError::Config(format!("UMS_MAIL_FROM: {e}")))?;
        return Ok((
            Arc::new(mailer),
            format!("file ({})", settings.mail_dir.display()),
        ));
    };
    let mailer = SmtpMailer::new(url, &settings.mail_from, settings.smtp_timeout)
        .map_err(|e| StartupError::Config(e.to_string()))?;
    let security = match mailer.security() {
        SmtpSecurity::Tls => "TLS",
        SmtpSecurity::StartTls => "STARTTLS",
        SmtpSecurity::Opportunistic => "STARTTLS if offered",
        SmtpSecurity::None => "unencrypted",
    };
    if matches!(
        mailer.security(),
        SmtpSecurity::None | SmtpSecurity::Opportunistic
    ) {
        tracing::warn!(
            "UMS_SMTP_URL does not require TLS: mail (with one-time tokens) and SMTP credentials \
             may cross the network in clear; use smtps:// or ?tls=required unless the server is local"
        );
    }
    Ok((
        Arc::new(mailer),
        format!("smtp ({}, {security})", redact_url(url.expose_secret())),
    ))
}

/// The readiness of mail: down while messages wait for a retry after a failed attempt (the
/// server is down, silent or deferring). A message given up because the server refused it
/// (no such mailbox) says nothing about the server, and anyone can cause one by registering
/// a bad address: it is logged, not reported here.
struct OutboxProbe(MailDelivery);

#[async_trait::async_trait]
impl Readiness for OutboxProbe {
    async fn ready(&self) -> Result<(), domain::BoxError> {
        let status = self.0.status().await?;
        if status.retrying > 0 {
            return Err(format!(
                "{} of {} queued messages wait for a retry after a failed delivery",
                status.retrying, status.pending
            )
            .into());
        }
        Ok(())
    }
}

/// `UMS_JWT_SECRET`, or a secret generated on first start and kept (mode 0600) in a file
/// beside the SQLite database, so tokens survive restarts.
fn jwt_secret(settings: &Settings) -> Result<SecretString, StartupError> {
    if let Some(secret) = &settings.jwt_secret {
        return Ok(secret.clone());
    }
    let DatabaseKind::Sqlite { path } = &settings.database else {
        return Err(StartupError::JwtSecret(
            "UMS_JWT_SECRET is required with PostgreSQL".to_owned(),
        ));
    };
    let file = secret_file_for(path);
    let secret = if file.exists() {
        std::fs::read_to_string(&file)
            .map_err(|e| StartupError::JwtSecret(format!("{}: {e}", file.display())))?
            .trim()
            .to_owned()
    } else {
        let secret = generate_secret();
        write_private(&file, &secret)
            .map_err(|e| StartupError::JwtSecret(format!("{}: {e}", file.display())))?;
        secret
    };
    tracing::warn!(
        file = %file.display(),
        "UMS_JWT_SECRET is not set: using a generated secret kept beside the database; \
         set UMS_JWT_SECRET in production"
    );
    Ok(SecretString::from(secret))
}

fn secret_file_for(database: &Path) -> PathBuf {
    let stem = database
        .file_stem()
        .map_or_else(|| "ums".into(), |s| s.to_string_lossy().into_owned());
    database.with_file_name(format!("{stem}.jwt-secret"))
}

fn generate_secret() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn write_private(file: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut handle = options.open(file)?;
    handle.write_all(contents.as_bytes())?;
    handle.sync_all()
}

/// Every second, restores the revocation list if its server lost its state (a Redis restart
/// without persistence): a logged-out token is refused again within about a second, instead
/// of passing until it expires. Runs for the life of the runtime.
fn spawn_revocation_keeper(auth: AuthService) {
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match auth.keep_revocations_restored().await {
                Ok(None) => {}
                Ok(Some(sessions)) => tracing::warn!(
                    sessions,
                    "the revocation list had lost its state; restored it from the store"
                ),
                // Unreachable: requests fail closed meanwhile; try again next tick.
                Err(error) => tracing::debug!(error = %error, "revocation list not checked"),
            }
        }
    });
}

/// Rows the retention job deletes per statement, so no transaction holds locks for long.
const RETENTION_BATCH: u32 = 1000;

/// With `UMS_AUDIT_RETENTION_DAYS`, deletes older audit events now and then hourly, in
/// batches. Several instances may run it at once: deleting is idempotent.
fn spawn_audit_retention(audit: AuditService, clock: Arc<dyn Clock>, days: Option<u32>) {
    let Some(days) = days else {
        return;
    };
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let before = clock.now() - TimeDelta::days(i64::from(days));
            match audit.purge_before(before, RETENTION_BATCH).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, days, "deleted audit events past retention"),
                Err(error) => {
                    tracing::warn!(error = %error, "audit retention did not run; next try in an hour")
                }
            }
        }
    });
}

/// Forgotten-password requests worked on at once, after their answers.
const FORGOT_SLOTS: usize = 32;

/// Delivers the outbox: a round, then at once another while rounds move mail, else a pause
/// of `poll`. A store failure is logged and retried after the pause.
fn spawn_mail_worker(delivery: MailDelivery, poll: std::time::Duration) {
    actix_web::rt::spawn(async move {
        loop {
            match delivery.deliver_due().await {
                Ok(report) if report.sent + report.retrying + report.dead > 0 => continue,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(error = %error, "outbox unreadable; mail delivery paused");
                }
            }
            tokio::time::sleep(poll).await;
        }
    });
}

/// Purges ended sessions, spent tokens and finished mail every `interval`, first at most a
/// minute after start.
fn spawn_purge(maintenance: Maintenance, interval: std::time::Duration) {
    actix_web::rt::spawn(async move {
        let start = tokio::time::Instant::now() + interval.min(std::time::Duration::from_secs(60));
        let mut tick = tokio::time::interval_at(start, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match maintenance.purge().await {
                Ok(report) if report == PurgeReport::default() => {}
                Ok(report) => tracing::info!(
                    sessions = report.sessions,
                    tokens = report.tokens,
                    mail = report.mail,
                    "purged ended sessions, spent tokens and finished mail"
                ),
                Err(error) => tracing::warn!(error = %error, "purge did not run; next try later"),
            }
        }
    });
}

/// The HTTP server, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Composes the services, binds the listener and builds the server.
    ///
    /// # Errors
    /// [`StartupError`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let services = compose(&settings).await?;
        spawn_revocation_keeper(services.auth.clone());
        spawn_mail_worker(services.delivery.clone(), settings.mail_poll);
        spawn_purge(services.maintenance.clone(), settings.purge_interval);
        spawn_audit_retention(
            services.audit.clone(),
            Arc::new(SystemClock),
            settings.audit_retention_days,
        );
        let address = format!("{}:{}", settings.host, settings.port);
        let listener = TcpListener::bind(&address).map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        let local = listener.local_addr().map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        let document = openapi::document();
        let state = web::Data::new(AppState {
            auth: services.auth,
            account: services.account,
            tenants: services.tenants,
            users: services.users,
            audit: services.audit,
            service_accounts: services.service_accounts,
            max_body_bytes: settings.max_body_bytes,
            routes: openapi::RouteTable::from_document(&document),
            readiness: services.readiness,
            advisory: services.advisory,
            forgot_slots: Arc::new(tokio::sync::Semaphore::new(FORGOT_SLOTS)),
        });
        let max_body = settings.max_body_bytes;
        let rate_limit = web::Data::new(AuthRateLimit::new(
            services.rate_limiter.clone(),
            settings.auth_rate_limit,
        ));
        let client_ip = web::Data::new(settings.client_ip.clone());
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(max_body))
                .app_data(rate_limit.clone())
                .app_data(client_ip.clone())
                .wrap(from_fn(middleware::request_context))
                .configure(routes::configure)
                .service(
                    SwaggerUi::new("/api/docs/{_:.*}").url("/api/openapi.json", document.clone()),
                )
                .default_service(web::to(routes::fallback))
        });
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        let server = server
            .listen(listener)
            .map_err(|source| StartupError::Bind {
                address: address.clone(),
                source,
            })?;
        tracing::info!(address = %format!("http://{local}"), "listening");
        Ok(Self {
            port: local.port(),
            server: server.run(),
        })
    }

    /// The port the listener is bound to.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server (tests use it to restart on the same database).
    #[must_use]
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the process is told to stop (SIGINT/SIGTERM: graceful shutdown).
    ///
    /// # Errors
    /// I/O errors of the server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_are_shown_without_secrets() {
        assert_eq!(
            redact_url("postgres://ums:pw@db:5432/ums"),
            "postgres://ums:***@db:5432/ums"
        );
        assert_eq!(
            redact_url("postgres://db/ums?user=u&password=pw"),
            "postgres://db/ums?user=u&password=***"
        );
        assert_eq!(
            redact_url("redis://:pw@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(redact_url("redis://cache"), "redis://cache");
        // An unencoded `?`, `#`, `/` or `@` in a password hides nothing of it.
        for url in [
            "postgres://u:p?ss@db/x",
            "postgres://u:p#ss@db/x",
            "postgres://u:p/ss@db/x",
            "postgres://u:p@ss@db/x",
        ] {
            let shown = redact_url(url);
            assert_eq!(shown, "postgres://u:***@db/x", "{url}");
            assert!(!shown.contains("ss"), "{url} -> {shown}");
        }
        assert_eq!(
            redact_url("postgres://u:p@ss@db/x?sslmode=require"),
            "postgres://u:***@db/x?sslmode=require"
        );
        assert_eq!(redact_url("garbage"), "[unparsable URL]");
    }
}
