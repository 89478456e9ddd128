//! `spawn_app()` and a request helper that checks every response against the OpenAPI document.

use std::path::PathBuf;

use actix_web::http::{Method, StatusCode, header::HeaderMap};
use api_actix::{Application, Settings};
use serde_json::{Value, json};

/// The HS256 secret every test app signs with, so tests can forge tokens on purpose.
pub const JWT_SECRET: &str = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
/// A password zxcvbn scores 4.
pub const PASSWORD: &str = "violet elephant parachute 42";

/// Which adapters a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// SQLite and the in-process revocation list and cache: the embedded default.
    Embedded,
    /// PostgreSQL (a fresh database per test) and Redis (a fresh key prefix per test), from
    /// `TEST_DATABASE_URL` and `TEST_REDIS_URL`.
    Production,
}

impl Stack {
    /// The stack `UMS_TEST_STACK` names (`embedded`, the default, or `production`);
    /// `cargo xtask test` runs this test binary once with each.
    pub fn from_env() -> Self {
        match std::env::var("UMS_TEST_STACK").as_deref() {
            Err(_) | Ok("" | "embedded") => Self::Embedded,
            Ok("production") => Self::Production,
            Ok(other) => panic!("UMS_TEST_STACK must be embedded or production, not {other:?}"),
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub handle: actix_web::dev::ServerHandle,
    pub stack: Stack,
    /// The SMTP server the app delivers its mail to (every test app has its own, unless the
    /// test unset `UMS_SMTP_URL` to get the file mailer); siblings share it.
    pub smtp: Option<std::sync::Arc<ums_tests::support::smtp::SmtpSink>>,
    /// The settings overrides this app was built with (database, Redis), for siblings.
    vars: Vec<(String, String)>,
    document: Value,
    // Dropped after the server handle is no longer used: the database is dropped, the keys
    // deleted.
    _database: Option<ums_tests::support::postgres::TestDatabase>,
    _redis: Option<ums_tests::support::redis::TestRedis>,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Settings for a test app whose files live in `dir`, with `overrides` on top.
pub fn test_settings(dir: &std::path::Path, overrides: &[(&str, &str)]) -> Settings {
    let mut vars: Vec<(String, String)> = vec![
        (
            "DATABASE_URL".into(),
            format!("sqlite://{}", dir.join("ums.db").display()),
        ),
        ("UMS_PORT".into(), "0".into()),
        ("UMS_WORKERS".into(), "1".into()),
        ("UMS_BCRYPT_COST".into(), "4".into()),
        ("UMS_DB_POOL_SIZE".into(), "4".into()),
        ("UMS_JWT_SECRET".into(), JWT_SECRET.into()),
        (
            "UMS_MAIL_DIR".into(),
            dir.join("mail").display().to_string(),
        ),
        // The auth endpoints are rate limited per client address, and every test request
        // comes from 127.0.0.1: a budget no test spends, except the rate limit's own tests
        // (tests/api/ratelimit.rs), which spawn apps with low limits.
        ("UMS_RATE_LIMIT_AUTH_PER_MINUTE".into(), "1000000".into()),
        ("UMS_RATE_LIMIT_AUTH_BURST".into(), "1000000".into()),
        // Deliver queued mail at once, and retry soon.
        ("UMS_MAIL_POLL_MS".into(), "20".into()),
        ("UMS_MAIL_RETRY_SECS".into(), "1".into()),
    ];
    for (name, value) in overrides {
        vars.retain(|(n, _)| n != name);
        vars.push(((*name).into(), (*value).into()));
    }
    // An empty override means "unset".
    vars.retain(|(_, v)| !v.is_empty());
    Settings::from_lookup(move |name| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
        .expect("valid test settings")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(
        Stack::from_env(),
        tempfile::tempdir().expect("temp dir"),
        &[],
    )
    .await
}

pub async fn spawn_app_with(
    stack: Stack,
    dir: tempfile::TempDir,
    overrides: &[(&str, &str)],
) -> TestApp {
    let (database, redis) = match stack {
        Stack::Embedded => (None, None),
        Stack::Production => {
            let pg = ums_tests::support::env::test_database_url()
                .expect("UMS_TEST_STACK=production needs TEST_DATABASE_URL");
            let redis = ums_tests::support::env::test_redis_url()
                .expect("UMS_TEST_STACK=production needs TEST_REDIS_URL");
            (
                Some(ums_tests::support::postgres::TestDatabase::create(&pg)),
                Some(ums_tests::support::redis::TestRedis::new(&redis)),
            )
        }
    };
    let mut vars: Vec<(String, String)> = Vec::new();
    // A real SMTP server per app, unless the test brings its own `UMS_SMTP_URL` (or unsets it).
    let smtp = if overrides.iter().any(|(name, _)| *name == "UMS_SMTP_URL") {
        None
    } else {
        let sink = std::sync::Arc::new(ums_tests::support::smtp::SmtpSink::start().await);
        vars.push(("UMS_SMTP_URL".into(), sink.url()));
        Some(sink)
    };
    if let Some(database) = &database {
        vars.push(("DATABASE_URL".into(), database.url.clone()));
    }
    if let Some(redis) = &redis {
        vars.push(("REDIS_URL".into(), redis.url.clone()));
        vars.push(("UMS_REDIS_PREFIX".into(), redis.prefix.clone()));
    }
    for (name, value) in overrides {
        vars.push(((*name).into(), (*value).into()));
    }
    let overrides: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let settings = test_settings(dir.path(), &overrides);
    let app = Application::build(settings).await.expect("the app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    let document = api_actix::openapi::document();
    TestApp {
        base,
        dir,
        handle,
        stack,
        smtp,
        vars,
        document: serde_json::to_value(document).expect("document serialises"),
        _database: database,
        _redis: redis,
    }
}

impl TestApp {
    /// A second instance of the service sharing this one's database and Redis (not its
    /// in-process state): what a load balancer would put beside it.
    pub async fn spawn_sibling(&self) -> TestApp {
        let vars: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut sibling = spawn_app_with(Stack::Embedded, dir, &vars).await;
        sibling.stack = self.stack;
        sibling.smtp.clone_from(&self.smtp);
        sibling
    }

    /// Sends a request and checks the response against the conventions and the document.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> TestResponse {
        self.send_with(method, path, token, body, &[]).await
    }

    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let raw = body.map(|b| (b.to_string().into_bytes(), "application/json"));
        self.send_raw(method, path, token, raw, headers).await
    }

    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(Vec<u8>, &str)>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let client = awc::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .finish();
        let mut request = client.request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let mut response = match body {
            Some((bytes, content_type)) => {
                request
                    .insert_header(("Content-Type", content_type))
                    .send_body(bytes)
                    .await
            }
            None => request.send().await,
        }
        .expect("the request is answered");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .body()
            .limit(4 << 20)
            .await
            .expect("the body is read");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let response = TestResponse {
            status,
            headers,
            body,
            text,
        };
        self.check_conventions(&method, path, &response);
        response
    }

    pub async fn post(&self, path: &str, body: Value) -> TestResponse {
        self.send(Method::POST, path, None, Some(body)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> TestResponse {
        self.send(Method::GET, path, Some(token), None).await
    }

    /// Every response: an `X-Request-Id`; every error: a problem document with the right
    /// status; and the status documented for the operation (or 404/405 when no operation is).
    fn check_conventions(&self, method: &Method, path: &str, response: &TestResponse) {
        let what = format!("{method} {path} -> {}", response.status);
        assert!(
            response.header("x-request-id").is_some(),
            "{what}: no X-Request-Id"
        );
        let path_only = path.split('?').next().unwrap_or(path);
        let operation = self.operation(method, path_only);
        // The body the document promises for this status, if it names one.
        let documented_type = match &operation {
            Operation::Documented(responses) => responses[response.status.as_str()]["content"]
                .as_object()
                .and_then(|content| content.keys().next().cloned()),
            _ => None,
        };
        let problem_expected = response.status.as_u16() >= 400
            && documented_type
                .as_deref()
                .is_none_or(|t| t == "application/problem+json");
        if problem_expected {
            assert_eq!(
                response.header("content-type"),
                Some("application/problem+json"),
                "{what}: error without a problem document: {}",
                response.text
            );
            assert_eq!(response.body["status"], response.status.as_u16(), "{what}");
            assert!(response.body["title"].is_string(), "{what}");
            assert!(response.body["detail"].is_string(), "{what}");
            assert_eq!(
                response.body["request_id"].as_str(),
                response.header("x-request-id"),
                "{what}"
            );
        } else if let Some(documented) = &documented_type {
            let actual = response.header("content-type").unwrap_or_default();
            assert!(
                actual.starts_with(documented.as_str()),
                "{what}: {actual} is not {documented}"
            );
        }
        if response.status == StatusCode::UNAUTHORIZED {
            let challenge = response.header("www-authenticate").unwrap_or_default();
            // Bearer everywhere; Basic for a refused service account (`/auth/introspect`).
            assert!(
                challenge.starts_with("Bearer") || challenge.starts_with("Basic"),
                "{what}: WWW-Authenticate {challenge:?}"
            );
        }
        match operation {
            Operation::Documented(responses) => assert!(
                responses.get(response.status.as_str()).is_some(),
                "{what}: status not in the OpenAPI document for this operation: {}",
                response.text
            ),
            Operation::WrongMethod => {
                assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
                assert!(
                    response.header("allow").is_some(),
                    "{what}: 405 without Allow"
                );
            }
            Operation::Unknown => assert_eq!(
                response.status,
                StatusCode::NOT_FOUND,
                "{what}: an undocumented path answered"
            ),
        }
    }

    /// The documented operation for a concrete path: of the templates that match, the most
    /// specific (most literal segments), as the router picks `/users/me` over `/users/{id}`.
    fn operation(&self, method: &Method, path: &str) -> Operation {
        let wanted: Vec<&str> = path.split('/').collect();
        let paths = self.document["paths"].as_object().expect("paths");
        let best = paths
            .iter()
            .filter_map(|(template, item)| {
                let parts: Vec<&str> = template.split('/').collect();
                let matches = parts.len() == wanted.len()
                    && parts
                        .iter()
                        .zip(&wanted)
                        .all(|(t, w)| (t.starts_with('{') && !w.is_empty()) || t == w);
                let literals = parts.iter().filter(|t| !t.starts_with('{')).count();
                matches.then_some((literals, item))
            })
            .max_by_key(|(literals, _)| *literals);
        match best {
            Some((_, item)) => match item.get(method.as_str().to_lowercase()) {
                Some(op) => Operation::Documented(op["responses"].clone()),
                None => Operation::WrongMethod,
            },
            None => Operation::Unknown,
        }
    }

    pub fn document(&self) -> &Value {
        &self.document
    }

    /// The settings this app runs with (same database, same Redis prefix).
    pub fn settings(&self) -> Settings {
        let vars: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        test_settings(self.dir.path(), &vars)
    }

    /// Creates a system administrator as `ums create-admin` does (no HTTP endpoint makes the
    /// first one), logs them in, and returns (access token, user id).
    pub async fn admin(&self, name: &str) -> (String, String) {
        let services = api_actix::startup::compose(&self.settings())
            .await
            .expect("compose the services");
        let user = services
            .auth
            .create_user(
                domain::services::Registration {
                    email: format!("{name}@example.com"),
                    username: name.to_owned(),
                    password: secrecy::SecretString::from(PASSWORD.to_owned()),
                    first_name: None,
                    last_name: None,
                },
                domain::model::Role::Admin,
                true,
                None,
                &domain::services::command_line(),
            )
            .await
            .expect("create the administrator");
        let tokens = self.login(name, PASSWORD).await;
        (
            tokens["access_token"].as_str().expect("token").to_owned(),
            user.id.to_string(),
        )
    }

    pub fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// Every e-mail delivered so far, raw, oldest first: received by the app's SMTP server,
    /// or written by the file mailer when the test unset `UMS_SMTP_URL`.
    pub fn mails(&self) -> Vec<String> {
        if let Some(smtp) = &self.smtp {
            return smtp.received().iter().map(|mail| mail.text()).collect();
        }
        let Ok(entries) = std::fs::read_dir(self.mail_dir()) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .collect()
    }

    /// Waits (at most 10 s) until at least `count` e-mails were delivered; returns them all.
    pub async fn wait_for_mails(&self, count: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mails = self.mails();
            if mails.len() >= count {
                return mails;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "expected {count} e-mails, got {}",
                mails.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Asserts that exactly `count` e-mails were delivered, after giving the outbox worker
    /// time to deliver any more (so a message that should not exist would have arrived).
    pub async fn assert_mail_count(&self, count: usize) {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(self.mails().len(), count, "e-mails delivered");
    }

    /// Registers a user and returns the response body.
    pub async fn register(&self, email: &str, username: &str) -> Value {
        let response = self
            .post(
                "/api/v1/auth/register",
                json!({"email": email, "username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
        response.body
    }

    /// Logs in and returns the token response body.
    pub async fn login(&self, login: &str, password: &str) -> Value {
        let response = self
            .post(
                "/api/v1/auth/login",
                json!({"login": login, "password": password}),
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text);
        response.body
    }

    /// Registers and logs in a fresh user; returns (access token, refresh token).
    pub async fn signed_in(&self, name: &str) -> (String, String) {
        self.register(&format!("{name}@example.com"), name).await;
        let tokens = self.login(name, PASSWORD).await;
        (
            tokens["access_token"]
                .as_str()
                .expect("access token")
                .to_owned(),
            tokens["refresh_token"]
                .as_str()
                .expect("refresh token")
                .to_owned(),
        )
    }
}

enum Operation {
    Documented(Value),
    WrongMethod,
    Unknown,
}

/// A delivered e-mail, parsed as a mail client would: (recipient, subject, text part, HTML
/// part).
pub fn parse_mail(raw: &str) -> (String, String, String, String) {
    let message = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .expect("a parsable e-mail");
    let to = message
        .to()
        .and_then(|to| to.first())
        .and_then(|to| to.address())
        .expect("a recipient")
        .to_owned();
    (
        to,
        message.subject().unwrap_or_default().to_owned(),
        message.body_text(0).expect("a text part").into_owned(),
        message.body_html(0).expect("an HTML part").into_owned(),
    )
}

/// The token of an e-mail, from its `token: ...` line, as a user would copy it.
pub fn token_from_mail(raw: &str) -> String {
    let (_, _, text, _) = parse_mail(raw);
    text.lines()
        .find_map(|line| line.trim().strip_prefix("token: "))
        .expect("a token line in the e-mail")
        .trim()
        .to_owned()
}
