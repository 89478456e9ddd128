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
use adapters_crypto::{BcryptHasher, JwtCodec, OsRandom, SystemClock, UuidV7Ids, ZxcvbnStrength};
use adapters_mail::FileMailer;
use adapters_memory::{MemoryLoginThrottle, MemoryRevocation, MemoryUserCache};
use adapters_postgres::{PgPoolSettings, PostgresStore};
use adapters_redis::{
    RedisClient, RedisLoginThrottle, RedisRevocation, RedisSettings, RedisUserCache,
};
use adapters_sqlite::SqliteStore;
use chrono::TimeDelta;
use domain::cache::CachedStore;
use domain::ports::{
    AuditLog, Clock, LoginThrottle, PasswordHasher, Readiness, SessionStore, TenantStore,
    TokenRevocation, UserCache, UserStore,
};
use domain::services::{
    AccountService, AuditService, AuthService, Ports, TenantService, UserAdminService,
};
use secrecy::{ExposeSecret, SecretString};
use utoipa_swagger_ui::SwaggerUi;

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
    /// The dependencies the readiness probe reports, by name (`database`, `cache`).
    pub readiness: Vec<(&'static str, Arc<dyn Readiness>)>,
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
                readiness: store,
                description: format!("postgres ({shown})"),
                applied,
            })
        }
    })
    .await
    .map_err(|e| StartupError::Database(e.to_string()))?
}

/// `scheme://user:***@host/path` for logs and errors: the password is masked and the query
/// string (which may carry one too) dropped.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "[unparsable URL]".to_owned();
    };
    // The credentials end at the last `@`, which may come after a `?`, `#` or `/` of an
    // unencoded password (`postgres://u:p?ss@db/x`): split there first, then drop the query.
    let without_query = |part: &str| part.split(['?', '#']).next().unwrap_or_default().to_owned();
    match rest.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials
                .split([':', '?', '#', '/'])
                .next()
                .unwrap_or_default();
            format!("{scheme}://{user}:***@{}", without_query(host))
        }
        None => format!("{scheme}://{}", without_query(rest)),
    }
}

/// The state shared by every instance (Redis) or kept in process: revocation list, login
/// throttle and user cache.
struct SharedState {
    revocation: Arc<dyn TokenRevocation>,
    throttle: Arc<dyn LoginThrottle>,
    cache: Arc<dyn UserCache>,
    readiness: Arc<dyn Readiness>,
    description: String,
}

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
            SharedState {
                revocation: Arc::new(RedisRevocation::new(client.clone())),
                throttle: Arc::new(RedisLoginThrottle::new(client.clone())),
                cache: Arc::new(RedisUserCache::new(client.clone())),
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
        mailer: Arc::new(
            FileMailer::new(settings.mail_dir.clone(), settings.mail_from.clone())
                .map_err(|e| StartupError::Config(format!("UMS_MAIL_FROM / UMS_MAIL_DIR: {e}")))?,
        ),
        clock,
        ids: Arc::new(UuidV7Ids),
        random: Arc::new(OsRandom),
    };
    tracing::info!(
        store = %store.description,
        revocation_and_cache = %shared.description,
        mailer = %format!("file ({})", settings.mail_dir.display()),
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
    Ok(Services {
        auth,
        account,
        tenants: TenantService::new(ports.clone(), settings.auth.clone()),
        users: UserAdminService::new(ports.clone(), settings.auth.clone()),
        audit: AuditService::new(ports),
        readiness: vec![("database", store.readiness), ("cache", shared.readiness)],
    })
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
            max_body_bytes: settings.max_body_bytes,
            routes: openapi::RouteTable::from_document(&document),
            readiness: services.readiness,
        });
        let max_body = settings.max_body_bytes;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(max_body))
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
            "postgres://db/ums"
        );
        assert_eq!(
            redact_url("redis://:pw@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(redact_url("redis://cache"), "redis://cache");
        // An unencoded `?`, `#` or `/` in a password hides nothing of it.
        for url in [
            "postgres://u:p?ss@db/x",
            "postgres://u:p#ss@db/x",
            "postgres://u:p/ss@db/x",
            "postgres://u:p@ss@db/x?sslmode=require",
        ] {
            let shown = redact_url(url);
            assert_eq!(shown, "postgres://u:***@db/x", "{url}");
            assert!(!shown.contains("ss"), "{url} -> {shown}");
        }
        assert_eq!(redact_url("garbage"), "[unparsable URL]");
    }
}
