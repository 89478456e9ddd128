//! Configuration: environment variables (`UMS_*`, `DATABASE_URL`) typed into one `Settings`,
//! validated at start-up with errors that name the offending variable.

use std::path::PathBuf;
use std::time::Duration;

use chrono::TimeDelta;
use domain::model::PasswordRules;
use domain::ports::RateLimit;
use domain::services::DeliverySettings;
use domain::settings::AuthSettings;
use secrecy::{ExposeSecret as _, SecretString};

use crate::client_ip::{ClientIpResolver, ForwardedHeader};

/// A configuration value that cannot be used; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration error in {variable}: {message}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self {
            variable,
            message: message.into(),
        }
    }
}

/// Which store serves persistence.
#[derive(Debug, Clone)]
pub enum DatabaseKind {
    /// A SQLite file (the embedded default).
    Sqlite {
        /// Path of the database file.
        path: PathBuf,
    },
    /// A PostgreSQL server (production).
    Postgres {
        /// The connection URL; it may hold a password, so it is kept secret.
        url: SecretString,
    },
}

impl PartialEq for DatabaseKind {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Sqlite { path: a }, Self::Sqlite { path: b }) => a == b,
            (Self::Postgres { url: a }, Self::Postgres { url: b }) => {
                a.expose_secret() == b.expose_secret()
            }
            _ => false,
        }
    }
}

/// The shared Redis server, when one is configured.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `REDIS_URL`; it may hold a password, so it is kept secret.
    pub url: SecretString,
    /// Prefix of every key (`UMS_REDIS_PREFIX`, default `ums:`), so servers can be shared.
    pub key_prefix: String,
    /// Longest wait for one command, pool wait included (`UMS_REDIS_TIMEOUT_MS`, default 500).
    pub command_timeout: Duration,
    /// Pooled connections (`UMS_REDIS_POOL_SIZE`, default 16).
    pub pool_size: usize,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything the service can be configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on (`UMS_HOST`, default `127.0.0.1`).
    pub host: String,
    /// Port to listen on (`UMS_PORT`, default 8080; 0 picks a free one).
    pub port: u16,
    /// HTTP worker threads (`UMS_WORKERS`, default: one per core).
    pub workers: Option<usize>,
    /// The store (`DATABASE_URL`, default `sqlite://ums.db`).
    pub database: DatabaseKind,
    /// Connections in the pool (`UMS_DB_POOL_SIZE`, default 8).
    pub db_pool_size: u32,
    /// Longest wait for a pooled connection (`UMS_DB_TIMEOUT_SECS`, default 5).
    pub db_timeout: Duration,
    /// Longest a PostgreSQL statement may run (`UMS_DB_STATEMENT_TIMEOUT_SECS`, default 10).
    pub db_statement_timeout: Duration,
    /// Redis for revocation and the user cache (`REDIS_URL`); unset: in process.
    pub redis: Option<RedisConfig>,
    /// Lifetime of a cached user (`UMS_CACHE_TTL_SECS`, default 60).
    pub cache_ttl: Duration,
    /// HS256 signing secret, at least 32 bytes (`UMS_JWT_SECRET`). Unset: generated on first
    /// start and kept in a file beside the SQLite database; required with PostgreSQL, where
    /// every instance must sign with the same key.
    pub jwt_secret: Option<SecretString>,
    /// `iss` of access tokens (`UMS_JWT_ISSUER`, default `ums`).
    pub jwt_issuer: String,
    /// `aud` of access tokens (`UMS_JWT_AUDIENCE`, default `ums`).
    pub jwt_audience: String,
    /// Clock-skew leeway when verifying tokens (`UMS_JWT_LEEWAY_SECS`, default 5).
    pub jwt_leeway_secs: u64,
    /// bcrypt cost (`UMS_BCRYPT_COST`, 4-31, default 12).
    pub bcrypt_cost: u32,
    /// Use-case settings: token lifetimes (`UMS_ACCESS_TOKEN_TTL_SECS`,
    /// `UMS_REFRESH_TOKEN_TTL_SECS`, `UMS_REMEMBER_ME_TTL_SECS`), password rules
    /// (`UMS_PASSWORD_MIN_LENGTH`, `UMS_PASSWORD_MIN_SCORE`), login lockout
    /// (`UMS_LOGIN_MAX_FAILURES`, `UMS_LOGIN_WINDOW_SECS`), clock skew (`UMS_JWT_LEEWAY_SECS`),
    /// and the mail flows: links (`UMS_PUBLIC_URL`, `UMS_VERIFY_EMAIL_URL`,
    /// `UMS_RESET_PASSWORD_URL`), `UMS_RESET_TOKEN_TTL_SECS`,
    /// `UMS_VERIFY_RESEND_COOLDOWN_SECS`, `UMS_REQUIRE_VERIFIED_EMAIL`.
    pub auth: AuthSettings,
    /// Folder the file mailer writes `.eml` files to (`UMS_MAIL_DIR`, default `mail-outbox`).
    pub mail_dir: PathBuf,
    /// Sender address (`UMS_MAIL_FROM`, default `UMS <no-reply@localhost>`).
    pub mail_from: String,
    /// The SMTP server (`UMS_SMTP_URL`: `smtps://user:pass@host:465`,
    /// `smtp://user:pass@host:587?tls=required` for STARTTLS, `smtp://host:25` unencrypted);
    /// unset: the file mailer.
    pub smtp_url: Option<SecretString>,
    /// Longest one delivery may take, from connecting to the server's last reply
    /// (`UMS_SMTP_TIMEOUT_SECS`, default 30).
    pub smtp_timeout: Duration,
    /// Pause of the outbox worker when nothing is due (`UMS_MAIL_POLL_MS`, default 1000).
    pub mail_poll: Duration,
    /// Outbox delivery: attempts before giving up (`UMS_MAIL_MAX_ATTEMPTS`, default 10), the
    /// first retry's wait, doubled each time up to an hour (`UMS_MAIL_RETRY_SECS`, default 10),
    /// and how long one delivery may take before another worker may try
    /// (`UMS_MAIL_LEASE_SECS`, default 300).
    pub delivery: DeliverySettings,
    /// Pause between purges of ended sessions, spent tokens and delivered mail
    /// (`UMS_PURGE_INTERVAL_SECS`, default 3600).
    pub purge_interval: Duration,
    /// Largest request body accepted, in bytes (`UMS_MAX_BODY_BYTES`, default 65536).
    pub max_body_bytes: usize,
    /// Log format (`UMS_LOG_FORMAT`: `text` or `json`, default `text`).
    pub log_format: LogFormat,
    /// Audit events older than this many days are deleted hourly
    /// (`UMS_AUDIT_RETENTION_DAYS`, 1-36500; unset: kept for ever).
    pub audit_retention_days: Option<u32>,
    /// Per-client-address limit of the auth endpoints' `POST`s (logout, refresh and
    /// introspection excepted; introspection counts its failed authentications):
    /// `UMS_RATE_LIMIT_AUTH_PER_MINUTE` (default 30) refilled evenly, with bursts of
    /// `UMS_RATE_LIMIT_AUTH_BURST` (default 10); `None` when `UMS_RATE_LIMIT_ENABLED=false`.
    pub auth_rate_limit: Option<RateLimit>,
    /// Whose forwarded headers name the client (`UMS_TRUSTED_PROXIES`: addresses and CIDR
    /// blocks, default none; `UMS_FORWARDED_HEADER`: `x-forwarded-for` or `forwarded`,
    /// required when `UMS_TRUSTED_PROXIES` is set).
    pub client_ip: ClientIpResolver,
}

impl Settings {
    /// Reads the process environment (after loading an optional `.env` file).
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads settings through `lookup` (a variable name to its value), for tests.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let defaults = AuthSettings::default();
        let rules = PasswordRules {
            min_length: env.number("UMS_PASSWORD_MIN_LENGTH", 10, 1, 72)?,
            min_score: env.number("UMS_PASSWORD_MIN_SCORE", 3, 0, 4)?,
        };
        let jwt_leeway_secs: u64 = env.number("UMS_JWT_LEEWAY_SECS", 5, 0, 300)?;
        let auth = AuthSettings {
            access_ttl: env.seconds("UMS_ACCESS_TOKEN_TTL_SECS", defaults.access_ttl)?,
            refresh_ttl: env.seconds("UMS_REFRESH_TOKEN_TTL_SECS", defaults.refresh_ttl)?,
            remember_me_ttl: env.seconds("UMS_REMEMBER_ME_TTL_SECS", defaults.remember_me_ttl)?,
            verification_ttl: defaults.verification_ttl,
            clock_skew: TimeDelta::seconds(i64::try_from(jwt_leeway_secs).unwrap_or(300)),
            login_max_failures: env.number("UMS_LOGIN_MAX_FAILURES", 5, 1, 1000)?,
            login_window: env.seconds("UMS_LOGIN_WINDOW_SECS", defaults.login_window)?,
            password_rules: rules,
            verify_email_url: env.get("UMS_VERIFY_EMAIL_URL"),
            reset_password_url: env.get("UMS_RESET_PASSWORD_URL"),
            public_url: public_url(&env)?,
            reset_ttl: env.seconds("UMS_RESET_TOKEN_TTL_SECS", defaults.reset_ttl)?,
            mail_cooldown: env
                .seconds("UMS_VERIFY_RESEND_COOLDOWN_SECS", defaults.mail_cooldown)?,
            require_verified_email: env.flag("UMS_REQUIRE_VERIFIED_EMAIL", false)?,
            password_max_age: env
                .optional_number::<i64>("UMS_PASSWORD_MAX_AGE_DAYS", 1, 3650)?
                .map(TimeDelta::days),
        };
        for (name, template) in [
            ("UMS_VERIFY_EMAIL_URL", &auth.verify_email_url),
            ("UMS_RESET_PASSWORD_URL", &auth.reset_password_url),
        ] {
            if template.as_ref().is_some_and(|t| !t.contains("{token}")) {
                return Err(ConfigError::new(
                    name,
                    "must contain `{token}` where the token goes",
                ));
            }
        }
        let jwt_secret = match env.get("UMS_JWT_SECRET") {
            Some(secret) if secret.len() < 32 => {
                return Err(ConfigError::new(
                    "UMS_JWT_SECRET",
                    "must be at least 32 bytes long (e.g. `openssl rand -base64 48`)",
                ));
            }
            other => other.map(SecretString::from),
        };
        let log_format = match env.get("UMS_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(_) => {
                return Err(ConfigError::new(
                    "UMS_LOG_FORMAT",
                    "must be `text` or `json`",
                ));
            }
        };
        let database = parse_database_url(env.get("DATABASE_URL"))?;
        if matches!(database, DatabaseKind::Postgres { .. }) && jwt_secret.is_none() {
            return Err(ConfigError::new(
                "UMS_JWT_SECRET",
                "is required with PostgreSQL: every instance must sign with the same key",
            ));
        }
        Ok(Self {
            host: env
                .get("UMS_HOST")
                .unwrap_or_else(|| "127.0.0.1".to_owned()),
            port: env.number("UMS_PORT", 8080, 0, 65535)?,
            workers: env.optional_number("UMS_WORKERS", 1, 1024)?,
            database,
            db_pool_size: env.number("UMS_DB_POOL_SIZE", 8, 1, 1024)?,
            db_timeout: Duration::from_secs(env.number("UMS_DB_TIMEOUT_SECS", 5, 1, 600)?),
            db_statement_timeout: Duration::from_secs(env.number(
                "UMS_DB_STATEMENT_TIMEOUT_SECS",
                10,
                1,
                3600,
            )?),
            redis: match env.get("REDIS_URL") {
                None => None,
                Some(url) => {
                    if !url.starts_with("redis://") {
                        return Err(ConfigError::new(
                            "REDIS_URL",
                            "must start with redis:// (rediss:// needs TLS, which this build does not include)",
                        ));
                    }

                    Some(RedisConfig {
                        url: SecretString::from(url),
                        key_prefix: env
                            .get("UMS_REDIS_PREFIX")
                            .unwrap_or_else(|| "ums:".to_owned()),
                        command_timeout: Duration::from_millis(env.number(
                            "UMS_REDIS_TIMEOUT_MS",
                            500,
                            10,
                            60_000,
                        )?),
                        pool_size: env.number("UMS_REDIS_POOL_SIZE", 16, 1, 1024)?,
                    })
                }
            },
            cache_ttl: Duration::from_secs(env.number("UMS_CACHE_TTL_SECS", 60, 1, 86_400)?),
            jwt_secret,
            jwt_issuer: env
                .get("UMS_JWT_ISSUER")
                .unwrap_or_else(|| "ums".to_owned()),
            jwt_audience: env
                .get("UMS_JWT_AUDIENCE")
                .unwrap_or_else(|| "ums".to_owned()),
            jwt_leeway_secs,
            bcrypt_cost: env.number("UMS_BCRYPT_COST", 12, 4, 31)?,
            auth,
            mail_dir: env
                .get("UMS_MAIL_DIR")
                .map_or_else(|| PathBuf::from("mail-outbox"), PathBuf::from),
            mail_from: env
                .get("UMS_MAIL_FROM")
                .unwrap_or_else(|| "UMS <no-reply@localhost>".to_owned()),
            smtp_url: match env.get("UMS_SMTP_URL") {
                None => None,
                Some(url) if url.starts_with("smtp://") || url.starts_with("smtps://") => {
                    Some(SecretString::from(url))
                }
                Some(_) => {
                    return Err(ConfigError::new(
                        "UMS_SMTP_URL",
                        "must start with smtp:// or smtps://",
                    ));
                }
            },
            smtp_timeout: Duration::from_secs(env.number("UMS_SMTP_TIMEOUT_SECS", 30, 1, 600)?),
            mail_poll: Duration::from_millis(env.number(
                "UMS_MAIL_POLL_MS",
                1000,
                10,
                3_600_000,
            )?),
            delivery: DeliverySettings {
                max_attempts: env.number("UMS_MAIL_MAX_ATTEMPTS", 10, 1, 100)?,
                first_backoff: env.seconds("UMS_MAIL_RETRY_SECS", TimeDelta::seconds(10))?,
                lease: env.seconds("UMS_MAIL_LEASE_SECS", TimeDelta::seconds(300))?,
                ..DeliverySettings::default()
            },
            purge_interval: Duration::from_secs(env.number(
                "UMS_PURGE_INTERVAL_SECS",
                3600,
                1,
                7 * 86_400,
            )?),
            max_body_bytes: env.number("UMS_MAX_BODY_BYTES", 64 * 1024, 1024, 16 * 1024 * 1024)?,
            log_format,
            audit_retention_days: env.optional_number("UMS_AUDIT_RETENTION_DAYS", 1, 36_500)?,
            auth_rate_limit: auth_rate_limit(&env)?,
            client_ip: client_ip(&env)?,
        })
    }
}

impl Settings {
    /// The effective configuration, one `(variable, value)` per setting, in the order of the
    /// README's table: what `ums config` prints. Secrets never appear: the JWT secret is only
    /// said to be set or generated, and every URL has its password masked.
    #[must_use]
    pub fn effective(&self) -> Vec<(&'static str, String)> {
        let secs = |d: Duration| d.as_secs().to_string();
        let delta = |d: TimeDelta| d.num_seconds().to_string();
        let or_unset = |value: Option<String>| value.unwrap_or_else(|| "(unset)".to_owned());
        let auth = &self.auth;
        let database = match &self.database {
            DatabaseKind::Sqlite { path } => format!("sqlite://{}", path.display()),
            DatabaseKind::Postgres { url } => redact::redact_url(url.expose_secret()),
        };
        let redis = self.redis.as_ref();
        let mut lines = vec![
            ("DATABASE_URL", database),
            (
                "REDIS_URL",
                or_unset(redis.map(|r| redact::redact_url(r.url.expose_secret()))),
            ),
            (
                "UMS_REDIS_PREFIX",
                or_unset(redis.map(|r| r.key_prefix.clone())),
            ),
            (
                "UMS_REDIS_TIMEOUT_MS",
                or_unset(redis.map(|r| r.command_timeout.as_millis().to_string())),
            ),
            (
                "UMS_REDIS_POOL_SIZE",
                or_unset(redis.map(|r| r.pool_size.to_string())),
            ),
            ("UMS_CACHE_TTL_SECS", secs(self.cache_ttl)),
            (
                "UMS_DB_STATEMENT_TIMEOUT_SECS",
                secs(self.db_statement_timeout),
            ),
            ("UMS_HOST", self.host.clone()),
            ("UMS_PORT", self.port.to_string()),
            (
                "UMS_WORKERS",
                self.workers
                    .map_or_else(|| "(one per core)".to_owned(), |n| n.to_string()),
            ),
            ("UMS_DB_POOL_SIZE", self.db_pool_size.to_string()),
            ("UMS_DB_TIMEOUT_SECS", secs(self.db_timeout)),
            (
                "UMS_JWT_SECRET",
                if self.jwt_secret.is_some() {
                    "(set, hidden)".to_owned()
                } else {
                    "(unset: generated beside the SQLite database)".to_owned()
                },
            ),
            ("UMS_JWT_ISSUER", self.jwt_issuer.clone()),
            ("UMS_JWT_AUDIENCE", self.jwt_audience.clone()),
            ("UMS_JWT_LEEWAY_SECS", self.jwt_leeway_secs.to_string()),
            ("UMS_ACCESS_TOKEN_TTL_SECS", delta(auth.access_ttl)),
            ("UMS_REFRESH_TOKEN_TTL_SECS", delta(auth.refresh_ttl)),
            ("UMS_REMEMBER_ME_TTL_SECS", delta(auth.remember_me_ttl)),
            ("UMS_BCRYPT_COST", self.bcrypt_cost.to_string()),
            (
                "UMS_PASSWORD_MIN_LENGTH",
                auth.password_rules.min_length.to_string(),
            ),
            (
                "UMS_PASSWORD_MIN_SCORE",
                auth.password_rules.min_score.to_string(),
            ),
            (
                "UMS_PASSWORD_MAX_AGE_DAYS",
                or_unset(auth.password_max_age.map(|age| age.num_days().to_string())),
            ),
            (
                "UMS_LOGIN_MAX_FAILURES",
                auth.login_max_failures.to_string(),
            ),
            ("UMS_LOGIN_WINDOW_SECS", delta(auth.login_window)),
            ("UMS_PUBLIC_URL", auth.public_url.clone()),
            (
                "UMS_VERIFY_EMAIL_URL",
                or_unset(auth.verify_email_url.clone()),
            ),
            (
                "UMS_RESET_PASSWORD_URL",
                or_unset(auth.reset_password_url.clone()),
            ),
            ("UMS_RESET_TOKEN_TTL_SECS", delta(auth.reset_ttl)),
            ("UMS_VERIFY_RESEND_COOLDOWN_SECS", delta(auth.mail_cooldown)),
            (
                "UMS_REQUIRE_VERIFIED_EMAIL",
                auth.require_verified_email.to_string(),
            ),
            (
                "UMS_SMTP_URL",
                self.smtp_url.as_ref().map_or_else(
                    || "(unset: the file mailer)".to_owned(),
                    |url| redact::redact_url(url.expose_secret()),
                ),
            ),
            ("UMS_SMTP_TIMEOUT_SECS", secs(self.smtp_timeout)),
            ("UMS_MAIL_DIR", self.mail_dir.display().to_string()),
            ("UMS_MAIL_FROM", self.mail_from.clone()),
            ("UMS_MAIL_POLL_MS", self.mail_poll.as_millis().to_string()),
            ("UMS_MAIL_RETRY_SECS", delta(self.delivery.first_backoff)),
            (
                "UMS_MAIL_MAX_ATTEMPTS",
                self.delivery.max_attempts.to_string(),
            ),
            ("UMS_MAIL_LEASE_SECS", delta(self.delivery.lease)),
            ("UMS_PURGE_INTERVAL_SECS", secs(self.purge_interval)),
            ("UMS_MAX_BODY_BYTES", self.max_body_bytes.to_string()),
            (
                "UMS_LOG_FORMAT",
                match self.log_format {
                    LogFormat::Text => "text",
                    LogFormat::Json => "json",
                }
                .to_owned(),
            ),
            (
                "UMS_AUDIT_RETENTION_DAYS",
                or_unset(self.audit_retention_days.map(|d| d.to_string())),
            ),
        ];
        lines.push((
            "UMS_RATE_LIMIT_AUTH",
            self.auth_rate_limit.map_or_else(
                || "(disabled: UMS_RATE_LIMIT_ENABLED=false)".to_owned(),
                |limit| {
                    format!(
                        "burst {} per {} ms",
                        limit.burst,
                        limit.period.num_milliseconds()
                    )
                },
            ),
        ));
        lines.push(("UMS_TRUSTED_PROXIES", self.client_ip.describe()));
        lines
    }
}

/// `UMS_PUBLIC_URL`: an `http(s)://` URL, without its trailing slash.
fn public_url(env: &Env<'_>) -> Result<String, ConfigError> {
    let Some(url) = env.get("UMS_PUBLIC_URL") else {
        return Ok(AuthSettings::default().public_url);
    };
    let url = url.trim().trim_end_matches('/').to_owned();
    let valid = (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains(['?', '#', ' ', '"', '<', '>'])
        && url.split("//").nth(1).is_some_and(|rest| !rest.is_empty());
    if valid {
        Ok(url)
    } else {
        Err(ConfigError::new(
            "UMS_PUBLIC_URL",
            "must be an http:// or https:// URL without query or fragment, e.g. https://app.example.com",
        ))
    }
}

/// `UMS_RATE_LIMIT_ENABLED`, `UMS_RATE_LIMIT_AUTH_PER_MINUTE` and `UMS_RATE_LIMIT_AUTH_BURST`
/// as a [`RateLimit`]: `burst` at once, one more every minute / `per_minute`.
fn auth_rate_limit(env: &Env<'_>) -> Result<Option<RateLimit>, ConfigError> {
    let enabled = env.flag("UMS_RATE_LIMIT_ENABLED", true)?;
    let per_minute: u32 = env.number("UMS_RATE_LIMIT_AUTH_PER_MINUTE", 30, 1, 1_000_000)?;
    let burst: u32 = env.number("UMS_RATE_LIMIT_AUTH_BURST", 10, 1, 1_000_000)?;
    // burst / per_minute minutes, in milliseconds (at most a million minutes: no overflow).
    let period = TimeDelta::milliseconds(i64::from(burst) * 60_000 / i64::from(per_minute));
    Ok(enabled.then_some(RateLimit {
        burst,
        period: period.max(TimeDelta::milliseconds(1)),
    }))
}

/// `UMS_TRUSTED_PROXIES` and `UMS_FORWARDED_HEADER`, which has no default: with trusted
/// proxies it must name the header they write (a wrong guess could let clients choose their
/// address); without, it is not read.
fn client_ip(env: &Env<'_>) -> Result<ClientIpResolver, ConfigError> {
    let header = match env.get("UMS_FORWARDED_HEADER") {
        None => None,
        Some(raw) => Some(
            ForwardedHeader::parse(&raw)
                .map_err(|message| ConfigError::new("UMS_FORWARDED_HEADER", message))?,
        ),
    };
    let trusted = env.get("UMS_TRUSTED_PROXIES").unwrap_or_default();
    let resolver =
        ClientIpResolver::parse(&trusted, header.unwrap_or(ForwardedHeader::XForwardedFor))
            .map_err(|message| ConfigError::new("UMS_TRUSTED_PROXIES", message))?;
    if header.is_none() && !resolver.trusts_none() {
        return Err(ConfigError::new(
            "UMS_FORWARDED_HEADER",
            "must be set when UMS_TRUSTED_PROXIES is: `x-forwarded-for` (nginx, HAProxy, \
             most load balancers) or `forwarded` (RFC 7239), whichever your proxies write",
        ));
    }
    Ok(resolver)
}

/// `sqlite://PATH`, `sqlite:PATH` or a bare path select SQLite; unset means `ums.db`.
fn parse_database_url(url: Option<String>) -> Result<DatabaseKind, ConfigError> {
    let Some(url) = url else {
        return Ok(DatabaseKind::Sqlite {
            path: PathBuf::from("ums.db"),
        });
    };
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err(ConfigError::new("DATABASE_URL", "the SQLite path is empty"));
        }
        return Ok(DatabaseKind::Sqlite {
            path: PathBuf::from(path),
        });
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(DatabaseKind::Postgres {
            url: SecretString::from(url),
        });
    }
    if url.contains('=') {
        // `host=db user=ums password=…` is libpq's key/value form: refuse it rather than
        // create a SQLite file named after it (and log its password as a path).
        return Err(ConfigError::new(
            "DATABASE_URL",
            "looks like a libpq key/value string; use a postgres://user:password@host/db URL",
        ));
    }
    if url.contains("://") {
        return Err(ConfigError::new(
            "DATABASE_URL",
            "unsupported scheme; use postgres://…, sqlite://PATH or a file path",
        ));
    }
    Ok(DatabaseKind::Sqlite {
        path: PathBuf::from(url),
    })
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }

    fn optional_number<T>(
        &self,
        name: &'static str,
        min: T,
        max: T,
    ) -> Result<Option<T>, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        match raw.trim().parse::<T>() {
            Ok(value) if value >= min && value <= max => Ok(Some(value)),
            _ => Err(ConfigError::new(
                name,
                format!("must be a whole number from {min} to {max}, got {raw:?}"),
            )),
        }
    }

    fn number<T>(&self, name: &'static str, default: T, min: T, max: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        Ok(self.optional_number(name, min, max)?.unwrap_or(default))
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), or `default` when unset.
    fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::new(
                    name,
                    format!("must be `true` or `false`, got {raw:?}"),
                )),
            },
        }
    }

    fn seconds(&self, name: &'static str, default: TimeDelta) -> Result<TimeDelta, ConfigError> {
        let secs: i64 = self.number(name, default.num_seconds(), 1, 366 * 24 * 3600)?;
        Ok(TimeDelta::seconds(secs))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn nothing_set_means_the_embedded_default() {
        let s = settings(&[]).unwrap();
        assert_eq!(
            s.database,
            DatabaseKind::Sqlite {
                path: "ums.db".into()
            }
        );
        assert_eq!(s.port, 8080);
        assert!(s.jwt_secret.is_none());
        assert_eq!(s.bcrypt_cost, 12);
        assert_eq!(s.max_body_bytes, 65536);
        assert_eq!(s.auth.access_ttl, TimeDelta::minutes(15));
        assert!(s.redis.is_none());
        assert_eq!(
            s.auth_rate_limit,
            Some(RateLimit {
                burst: 10,
                period: TimeDelta::seconds(20)
            }),
            "30 a minute, 10 at once"
        );
        assert!(s.client_ip.trusts_none());
    }

    #[test]
    fn the_auth_rate_limit_and_trusted_proxies_are_configurable() {
        let s = settings(&[
            ("UMS_RATE_LIMIT_AUTH_PER_MINUTE", "120"),
            ("UMS_RATE_LIMIT_AUTH_BURST", "3"),
            ("UMS_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
            ("UMS_FORWARDED_HEADER", "forwarded"),
        ])
        .unwrap();
        assert_eq!(
            s.auth_rate_limit,
            Some(RateLimit {
                burst: 3,
                period: TimeDelta::milliseconds(1_500)
            })
        );
        assert_eq!(
            s.client_ip,
            ClientIpResolver::parse("10.0.0.0/8,::1", ForwardedHeader::Forwarded).unwrap()
        );
        let s = settings(&[
            ("UMS_TRUSTED_PROXIES", "10.0.0.1"),
            ("UMS_FORWARDED_HEADER", "X-Forwarded-For"),
        ])
        .unwrap();
        assert_eq!(
            s.client_ip,
            ClientIpResolver::parse("10.0.0.1", ForwardedHeader::XForwardedFor).unwrap()
        );
        // The header is not read (nor needed) without trusted proxies.
        let s = settings(&[("UMS_FORWARDED_HEADER", "forwarded")]).unwrap();
        assert!(s.client_ip.trusts_none());
        for off in ["false", "0", "OFF"] {
            let s = settings(&[("UMS_RATE_LIMIT_ENABLED", off)]).unwrap();
            assert_eq!(s.auth_rate_limit, None, "{off}");
        }
        let s = settings(&[("UMS_RATE_LIMIT_ENABLED", "true")]).unwrap();
        assert!(s.auth_rate_limit.is_some());
        let s = settings(&[
            ("UMS_RATE_LIMIT_AUTH_PER_MINUTE", "1000000"),
            ("UMS_RATE_LIMIT_AUTH_BURST", "1"),
        ])
        .unwrap();
        assert_eq!(
            s.auth_rate_limit.unwrap().period,
            TimeDelta::milliseconds(1),
            "never a zero period"
        );
    }

    #[test]
    fn redis_url_selects_redis_with_its_settings() {
        let s = settings(&[
            ("REDIS_URL", "redis://:pw@cache:6379/2"),
            ("UMS_REDIS_PREFIX", "a:"),
        ])
        .unwrap();
        let redis = s.redis.unwrap();
        assert_eq!(redis.key_prefix, "a:");
        assert_eq!(redis.command_timeout, Duration::from_millis(500));
        assert!(
            !format!("{redis:?}").contains("pw"),
            "the URL's password is redacted"
        );
    }

    #[test]
    fn database_urls_select_the_store_or_name_the_variable() {
        let s = settings(&[("DATABASE_URL", "sqlite:///tmp/x.db")]).unwrap();
        assert_eq!(
            s.database,
            DatabaseKind::Sqlite {
                path: "/tmp/x.db".into()
            }
        );
        let s = settings(&[("DATABASE_URL", "data/ums.sqlite")]).unwrap();
        assert_eq!(
            s.database,
            DatabaseKind::Sqlite {
                path: "data/ums.sqlite".into()
            }
        );
        let s = settings(&[
            ("DATABASE_URL", "postgres://ums:pw@db/ums"),
            ("UMS_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ])
        .unwrap();
        assert!(matches!(s.database, DatabaseKind::Postgres { .. }));
        let err = settings(&[("DATABASE_URL", "postgres://ums:pw@db/ums")]).unwrap_err();
        assert_eq!(
            err.variable, "UMS_JWT_SECRET",
            "a generated secret cannot be shared"
        );
        for bad in [
            "mysql://localhost/db",
            "sqlite://",
            "host=db user=ums password=pw",
        ] {
            let err = settings(&[("DATABASE_URL", bad)]).unwrap_err();
            assert_eq!(err.variable, "DATABASE_URL", "{bad}");
        }
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("UMS_PORT", "eighty"),
            ("UMS_PORT", "70000"),
            ("UMS_BCRYPT_COST", "3"),
            ("UMS_PASSWORD_MIN_SCORE", "5"),
            ("UMS_JWT_SECRET", "too-short"),
            ("UMS_LOG_FORMAT", "xml"),
            ("UMS_ACCESS_TOKEN_TTL_SECS", "0"),
            ("REDIS_URL", "localhost:6379"),
            ("UMS_CACHE_TTL_SECS", "0"),
            ("UMS_RATE_LIMIT_ENABLED", "maybe"),
            ("UMS_RATE_LIMIT_AUTH_PER_MINUTE", "0"),
            ("UMS_RATE_LIMIT_AUTH_BURST", "-1"),
            ("UMS_TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal"),
            ("UMS_TRUSTED_PROXIES", "10.0.0.300"),
            ("UMS_FORWARDED_HEADER", "x-real-ip"),
            ("UMS_FORWARDED_HEADER", "auto"),
        ] {
            let err = settings(&[(name, value)]).unwrap_err();
            assert_eq!(err.variable, name);
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn trusted_proxies_need_the_header_they_write() {
        let err = settings(&[("UMS_TRUSTED_PROXIES", "10.0.0.0/8")]).unwrap_err();
        assert_eq!(err.variable, "UMS_FORWARDED_HEADER");
        let text = err.to_string();
        assert!(
            text.contains("x-forwarded-for") && text.contains("forwarded"),
            "{text}"
        );
        // An empty list trusts none, and needs none.
        assert!(
            settings(&[("UMS_TRUSTED_PROXIES", " ")])
                .unwrap()
                .client_ip
                .trusts_none()
        );
    }

    #[test]
    fn the_password_max_age_is_in_days_and_off_when_unset() {
        assert_eq!(settings(&[]).unwrap().auth.password_max_age, None);
        let s = settings(&[("UMS_PASSWORD_MAX_AGE_DAYS", "90")]).unwrap();
        assert_eq!(s.auth.password_max_age, Some(TimeDelta::days(90)));
        let s = settings(&[("UMS_PASSWORD_MAX_AGE_DAYS", "3650")]).unwrap();
        assert_eq!(s.auth.password_max_age, Some(TimeDelta::days(3650)));
        for bad in ["0", "3651", "-1", "90d", ""] {
            let err = settings(&[("UMS_PASSWORD_MAX_AGE_DAYS", bad)]).unwrap_err();
            assert_eq!(err.variable, "UMS_PASSWORD_MAX_AGE_DAYS", "{bad:?}");
        }
    }
}
