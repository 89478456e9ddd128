//! The `ums` command: `serve` (default), `migrate`, `create-admin`, `create-tenant`,
//! `create-service-client`, `openapi`.

use std::process::ExitCode;

use api_actix::settings::Settings;
use api_actix::startup::{self, Application};
use api_actix::{openapi, telemetry};
use clap::{Parser, Subcommand};
use domain::model::Role;
use domain::ports::Login;
use domain::services::NewServiceClient;
use domain::services::{
    AdminInput, Conflict, ManageError, NewTenantInput, RegisterError, Registration, command_line,
};
use secrecy::{ExposeSecret as _, SecretString};

/// UMS, the user management service.
#[derive(Debug, Parser)]
#[command(name = "ums", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create a system administrator. The password is read from UMS_ADMIN_PASSWORD, or asked
    /// for without echo.
    CreateAdmin {
        /// The administrator's e-mail address.
        #[arg(long)]
        email: String,
        /// The administrator's username.
        #[arg(long)]
        username: String,
    },
    /// Create a tenant, optionally with an existing user as its first admin.
    CreateTenant {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Unique URL-safe name, `[a-z0-9-]{3,63}`.
        #[arg(long)]
        slug: String,
        /// E-mail address of an existing user to make the tenant's admin.
        #[arg(long)]
        admin_email: Option<String>,
    },
    /// Create a service account for a resource server: prints its client id and secret
    /// (shown this once) for HTTP Basic on POST /api/v1/auth/introspect.
    CreateServiceClient {
        /// Unique name, 3-64 characters of letters, digits, `_`, `.`, `-`.
        #[arg(long)]
        name: String,
        /// What the service is.
        #[arg(long)]
        description: Option<String>,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Print the effective configuration (defaults included), one `VARIABLE = value` per
    /// line; secrets are never printed (URLs have their passwords masked).
    Config,
    /// Bulk-load synthetic users for benchmarks (`cargo xtask seed`): multi-row inserts, not
    /// the API; no mail, no audit events; every one has the password `UMS_SEED_PASSWORD`, or
    /// one generated for the run and printed at the end.
    #[command(hide = true)]
    SeedUsers {
        /// How many users to create.
        #[arg(long)]
        count: u64,
        /// Users per transaction.
        #[arg(long, default_value_t = 20_000)]
        batch: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        return match openapi::document().to_pretty_json() {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let _ = dotenvy::dotenv();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve | Command::Openapi => serve(settings),
        Command::Config => {
            let settings = settings.effective();
            let width = settings
                .iter()
                .map(|(name, _)| name.len())
                .max()
                .unwrap_or(0);
            for (name, value) in settings {
                println!("{name:<width$} = {value}");
            }
            Ok(())
        }
        Command::Migrate => runtime().and_then(|rt| rt.block_on(migrate(&settings))),
        Command::CreateAdmin { email, username } => {
            runtime().and_then(|rt| rt.block_on(create_admin(&settings, email, username)))
        }
        Command::CreateTenant {
            name,
            slug,
            admin_email,
        } => {
            runtime().and_then(|rt| rt.block_on(create_tenant(&settings, name, slug, admin_email)))
        }
        Command::CreateServiceClient { name, description } => runtime()
            .and_then(|rt| rt.block_on(create_service_client(&settings, name, description))),
        Command::SeedUsers { count, batch } => {
            runtime().and_then(|rt| rt.block_on(seed_users(&settings, count, batch)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn serve(settings: Settings) -> Result<(), String> {
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings)
            .await
            .map_err(|e| e.to_string())?;
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}

async fn migrate(settings: &Settings) -> Result<(), String> {
    let store = startup::open_store(settings)
        .await
        .map_err(|e| e.to_string())?;
    if store.applied.is_empty() {
        println!("database is up to date");
    } else {
        for name in store.applied {
            println!("applied {name}");
        }
    }
    Ok(())
}

async fn create_admin(settings: &Settings, email: String, username: String) -> Result<(), String> {
    let password = match std::env::var("UMS_ADMIN_PASSWORD") {
        Ok(password) if !password.is_empty() => password,
        _ => rpassword::prompt_password("Password for the new administrator: ")
            .map_err(|e| format!("cannot read the password: {e}"))?,
    };
    let services = startup::compose(settings)
        .await
        .map_err(|e| e.to_string())?;
    let registration = Registration {
        email,
        username,
        password: SecretString::from(password),
        first_name: None,
        last_name: None,
    };
    match services
        .auth
        .create_user(registration, Role::Admin, true, None, &command_line())
        .await
    {
        Ok(user) => {
            println!("created administrator {} ({})", user.username, user.id);
            Ok(())
        }
        Err(RegisterError::Invalid(errors)) => Err(format!("invalid administrator: {errors}")),
        Err(RegisterError::EmailTaken) => Err("that e-mail address is already registered".into()),
        Err(RegisterError::UsernameTaken) => Err("that username is taken".into()),
        Err(other) => Err(other.to_string()),
    }
}

async fn create_tenant(
    settings: &Settings,
    name: String,
    slug: String,
    admin_email: Option<String>,
) -> Result<(), String> {
    let store = startup::open_store(settings)
        .await
        .map_err(|e| e.to_string())?;
    let admin = match admin_email {
        None => None,
        Some(raw) => {
            let email =
                domain::model::Email::parse(&raw).map_err(|e| format!("--admin-email: {e}"))?;
            let user = store
                .users
                .find_credentials(&Login::Email(email))
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("--admin-email: no user has the address {raw}"))?;
            Some(AdminInput::Existing(user.user.id))
        }
    };
    drop(store);
    let services = startup::compose(settings)
        .await
        .map_err(|e| e.to_string())?;
    let input = NewTenantInput {
        name,
        slug,
        admin,
        ..NewTenantInput::default()
    };
    match services
        .tenants
        .create_as_operator(input, &command_line())
        .await
    {
        Ok(tenant) => {
            println!("created tenant {} ({})", tenant.slug.as_str(), tenant.id);
            Ok(())
        }
        Err(ManageError::Invalid(errors)) => Err(format!("invalid tenant: {errors}")),
        Err(ManageError::Conflict(Conflict::SlugTaken)) => {
            Err("a tenant with that slug exists already".into())
        }
        Err(other) => Err(other.to_string()),
    }
}

async fn create_service_client(
    settings: &Settings,
    name: String,
    description: Option<String>,
) -> Result<(), String> {
    let services = startup::compose(settings)
        .await
        .map_err(|e| e.to_string())?;
    match services
        .service_accounts
        .create_service_client(NewServiceClient { name, description }, &command_line())
        .await
    {
        Ok(created) => {
            println!(
                "created service account {} ({})",
                created.account.name, created.account.id
            );
            println!("client_id: {}", created.account.client_id);
            println!("client_secret: {}", created.secret.expose_secret());
            println!(
                "The secret is not stored and will not be shown again: keep it now. The service \
                 authenticates with HTTP Basic (client_id:client_secret) on \
                 POST /api/v1/auth/introspect."
            );
            Ok(())
        }
        Err(ManageError::Invalid(errors)) => Err(format!("invalid service account: {errors}")),
        Err(ManageError::Conflict(Conflict::ServiceAccountNameTaken)) => {
            Err("a service account with that name exists already".into())
        }
        Err(other) => Err(other.to_string()),
    }
}

async fn seed_users(settings: &Settings, count: u64, batch: u64) -> Result<(), String> {
    use domain::model::{Email, NewUser, Password, PasswordRules, PersonName, UserId, Username};
    use domain::ports::PasswordHasher as _;

    const FIRST: [&str; 16] = [
        "Ada",
        "Alan",
        "Barbara",
        "Edsger",
        "Frances",
        "Grace",
        "Hedy",
        "John",
        "Katherine",
        "Ken",
        "Leslie",
        "Margaret",
        "Niklaus",
        "Radia",
        "Tim",
        "Yukihiro",
    ];
    const LAST: [&str; 16] = [
        "Lovelace",
        "Turing",
        "Liskov",
        "Dijkstra",
        "Allen",
        "Hopper",
        "Lamarr",
        "Backus",
        "Johnson",
        "Thompson",
        "Lamport",
        "Hamilton",
        "Wirth",
        "Perlman",
        "Berners-Lee",
        "Matsumoto",
    ];
    let batch = batch.clamp(1, 100_000);
    let store = startup::open_store(settings)
        .await
        .map_err(|e| e.to_string())?;
    // A password of this run's own unless one is given, so that seeding a real database by
    // mistake does not open a million accounts with a published password.
    let password = std::env::var("UMS_SEED_PASSWORD").unwrap_or_else(|_| {
        use base64::Engine as _;
        use rand::RngCore as _;
        let mut bytes = [0u8; 18];
        rand::rng().fill_bytes(&mut bytes);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    });
    let password = Password::new(SecretString::from(password), &PasswordRules::default())
        .map_err(|e| format!("UMS_SEED_PASSWORD: {e}"))?;
    let hasher =
        adapters_crypto::BcryptHasher::new(settings.bcrypt_cost).map_err(|e| e.to_string())?;
    // One hash for all: hashing a million passwords would take days, not minutes.
    let hash = hasher.hash(&password).await.map_err(|e| e.to_string())?;
    // A tag of this run, so that seeding twice adds users instead of colliding.
    let tag: String = uuid::Uuid::now_v7().simple().to_string()[24..].to_owned();
    let start = chrono::Utc::now() - chrono::TimeDelta::seconds(i64::try_from(count).unwrap_or(0));
    let began = std::time::Instant::now();
    let mut created = 0u64;
    while created < count {
        let size = batch.min(count - created);
        let users = (created..created + size)
            .map(|n| {
                let pick = usize::try_from(n % 16).unwrap_or(0);
                let other = usize::try_from((n / 16) % 16).unwrap_or(0);
                let parsed = (
                    Email::parse(&format!("u{n}.{tag}@seed.test")),
                    Username::parse(&format!("u{n}_{tag}")),
                    PersonName::parse(FIRST[pick]),
                    PersonName::parse(LAST[other]),
                );
                match parsed {
                    (Ok(email), Ok(username), Ok(first_name), Ok(last_name)) => Ok(NewUser {
                        id: UserId::from_uuid(uuid::Uuid::now_v7()),
                        email,
                        username,
                        first_name,
                        last_name,
                        role: Role::User,
                        is_active: n % 50 != 0,
                        email_verified: n % 3 != 0,
                        password_hash: hash.clone(),
                        created_at: start
                            + chrono::TimeDelta::seconds(i64::try_from(n).unwrap_or(0)),
                    }),
                    _ => Err(format!("seed user {n} is not valid")),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        created += store
            .users
            .insert_many(users, domain::model::Journal::default())
            .await
            .map_err(|e| e.to_string())?;
        let secs = began.elapsed().as_secs_f64().max(0.001);
        eprintln!(
            "seeded {created}/{count} users ({:.0} a second)",
            created as f64 / secs
        );
    }
    println!(
        "seeded {created} users in {:.1} s ({}); their password: {}",
        began.elapsed().as_secs_f64(),
        store.description,
        password.secret().expose_secret()
    );
    Ok(())
}
