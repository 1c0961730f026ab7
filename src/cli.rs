//! The command line: `serve` (default), `migrate`, `createsuperuser`, `changepassword`,
//! `check`.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::db;
use crate::kakao::{ErrorClass, KakaoError};
use crate::users::changes::{self, ChangeError};
use crate::users::manager::CreateUser;
use crate::users::model::Provider;
use crate::users::permissions::{Actor, Role};

#[derive(Parser, Debug)]
#[command(name = "kakao-login", version, about = "카카오 로그인 service")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create a superuser (staff and superuser flags set). They sign in with Kakao: the first
    /// Kakao login with this verified email claims the account.
    Createsuperuser {
        /// The superuser's email (asked for when missing and a terminal is attached).
        #[arg(long)]
        email: Option<String>,
        /// Display name (optional).
        #[arg(long)]
        name: Option<String>,
        /// Never ask; fail when something required is missing.
        #[arg(long)]
        noinput: bool,
    },
    /// Set a staff member's break-glass password, for signing in at /admin/login/ while Kakao
    /// is unavailable. Asked twice without echo, or read from stdin with --stdin.
    Changepassword {
        /// The staff member's email.
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input (for scripts).
        #[arg(long)]
        stdin: bool,
    },
    /// Validate the configuration, reach the database (and Redis, if configured), and ask
    /// Kakao whether it accepts the app's keys (client id and secret, the JWKS with OpenID
    /// Connect on, the admin key). One line per finding; non-zero exit on any problem.
    Check,
}

/// Open the pool and apply migrations (shared by `migrate` and `createsuperuser`).
fn migrated_pool(settings: &Settings) -> anyhow::Result<db::DbPool> {
    let pool = db::build_pool(
        &settings.database_url,
        settings.database_pool_size.min(2),
        Duration::from_secs(settings.database_timeout_secs),
    )?;
    let mut conn = pool.get()?;
    for version in db::run_migrations(&mut conn)? {
        println!("applied migration {version}");
    }
    drop(conn);
    Ok(pool)
}

pub fn migrate(settings: &Settings) -> anyhow::Result<()> {
    settings.validate()?;
    migrated_pool(settings)?;
    println!(
        "database {} is up to date",
        db::redact_url(&settings.database_url)
    );
    Ok(())
}

fn prompt(label: &str) -> anyhow::Result<String> {
    print!("{label}: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

pub fn create_superuser(
    settings: &Settings,
    email: Option<String>,
    name: Option<String>,
    noinput: bool,
) -> anyhow::Result<()> {
    settings.validate()?;
    let interactive = !noinput && std::io::stdin().is_terminal();
    let email = match email {
        Some(e) => e,
        None if interactive => prompt("이메일 (email)")?,
        None => anyhow::bail!("--email is required with --noinput or without a terminal"),
    };
    let name = match name {
        Some(n) => Some(n),
        None if interactive => Some(prompt("이름 (name, optional)")?).filter(|n| !n.is_empty()),
        None => None,
    };
    let pool = migrated_pool(settings)?;
    let mut conn = pool.get()?;
    let input = CreateUser {
        email: email.clone(),
        name,
        provider: Provider::Local.as_str().to_owned(),
        ..CreateUser::default()
    };
    match changes::create_user(&mut conn, &Actor::Cli, &input, Role::Superuser) {
        Ok(user) => {
            println!(
                "superuser created: id={} email={} (sign in with Kakao using this verified email)",
                user.id, user.email
            );
            Ok(())
        }
        Err(ChangeError::DuplicateEmail) => {
            anyhow::bail!("a user with email {email:?} already exists")
        }
        Err(e) => Err(cli_error(e)),
    }
}

/// A refused change as the command line says it.
fn cli_error(e: ChangeError) -> anyhow::Error {
    match e {
        ChangeError::Invalid(errors) => anyhow::anyhow!("invalid: {errors}"),
        ChangeError::Db(e) => e.into(),
        other => anyhow::anyhow!("{other}"),
    }
}

/// Set a staff member's break-glass password (see `users::passwords`).
pub fn change_password(settings: &Settings, email: &str, from_stdin: bool) -> anyhow::Result<()> {
    settings.validate()?;
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        anyhow::ensure!(
            std::io::stdin().is_terminal(),
            "no terminal to ask for the password: use --stdin"
        );
        let first = rpassword::prompt_password("새 비밀번호 (new password): ")?;
        let again = rpassword::prompt_password("비밀번호 확인 (again): ")?;
        anyhow::ensure!(first == again, "the passwords do not match");
        first
    };
    let pool = migrated_pool(settings)?;
    let mut conn = pool.get()?;
    match changes::set_password(&mut conn, &Actor::Cli, email, &password) {
        Ok(user) => {
            println!(
                "break-glass password set for id={} email={}",
                user.id, user.email
            );
            Ok(())
        }
        Err(ChangeError::NotFound) => anyhow::bail!("no user with email {email:?}"),
        Err(ChangeError::Forbidden(_)) => {
            anyhow::bail!("{email} is not staff: only staff may have a break-glass password")
        }
        Err(e) => Err(cli_error(e)),
    }
}

/// Report every problem found; Err when there is at least one.
pub async fn check(settings: &Settings) -> anyhow::Result<()> {
    let mut failures = 0;
    match settings.validate() {
        Ok(()) => println!("ok    configuration ({} mode)", settings.app_env.as_str()),
        Err(e) => {
            failures += 1;
            println!("FAIL  {e}");
        }
    }
    let url = settings.database_url.clone();
    let timeout = Duration::from_secs(settings.database_timeout_secs);
    let db_result = match db::build_pool(&url, 1, timeout) {
        Ok(pool) => db::run(&pool, db::ping).await.map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    match db_result {
        Ok(()) => println!("ok    database {}", db::redact_url(&settings.database_url)),
        Err(e) => {
            failures += 1;
            println!(
                "FAIL  database {}: {e:#}",
                db::redact_url(&settings.database_url)
            );
        }
    }
    if let Some(redis_url) = &settings.redis_url {
        match ping_redis(redis_url).await {
            Ok(()) => println!("ok    redis {}", db::redact_url(redis_url)),
            Err(e) => {
                failures += 1;
                println!("FAIL  redis {}: {e:#}", db::redact_url(redis_url));
            }
        }
    } else {
        println!("ok    sessions in cookies (REDIS_URL not set)");
    }
    if settings.uses_standin() {
        println!("note  no KAKAO_CLIENT_ID: the built-in Kakao stand-in will play Kakao");
    } else if settings.kakao_client_id.is_some() {
        failures += check_kakao(settings).await;
    }
    if failures > 0 {
        anyhow::bail!("{failures} problem(s) found");
    }
    Ok(())
}

/// Ask Kakao what it thinks of our configuration, one line per finding; returns how many
/// problems were found.
///
/// - The token endpoint is sent a code that cannot exist: Kakao judges the client first, so
///   `invalid_grant` (KOE320) means the REST API key and the client secret are accepted.
/// - With OpenID Connect on, the JWKS is fetched.
/// - With an admin key, a harmless admin-key call (the first page of linked user ids).
async fn check_kakao(settings: &Settings) -> usize {
    let config = crate::app::kakao_config(settings);
    let kakao = match crate::kakao::KakaoClient::new(config) {
        Ok(k) => k,
        Err(e) => {
            println!("FAIL  Kakao URLs: {e}");
            return 1;
        }
    };
    let mut failures = 0;
    let mut fail = |line: String| {
        failures += 1;
        println!("FAIL  {line}");
    };
    match kakao.probe_credentials().await {
        Err(KakaoError::Auth {
            error, error_code, ..
        }) if error == "invalid_grant"
            && matches!(error_code.as_deref(), Some("KOE320") | None) =>
        {
            println!(
                "ok    Kakao accepts KAKAO_CLIENT_ID and the client secret (token endpoint: invalid_grant for a made-up code, as expected)"
            );
        }
        Err(e) => match e.koe() {
            Some(koe) => fail(format!("Kakao token endpoint: {} ({e})", koe.operator)),
            None if e.class() == ErrorClass::Temporary => fail(format!(
                "cannot reach Kakao's token endpoint at {}: {e}",
                settings.kakao_auth_base_url
            )),
            None => fail(format!("Kakao's token endpoint refused us: {e}")),
        },
        Ok(()) => fail(
            "Kakao's token endpoint accepted a made-up code: is KAKAO_AUTH_BASE_URL really Kakao?"
                .into(),
        ),
    }
    if settings.oidc_login() {
        let expected = kakao.config().oidc.issuer.clone();
        match kakao.discovery_issuer().await {
            Ok(issuer) if issuer == expected => {
                println!("ok    OpenID Connect: Kakao's discovery names the issuer {issuer}")
            }
            Ok(issuer) => fail(format!(
                "OpenID Connect: Kakao's discovery names the issuer {issuer:?} but ID tokens are expected from {expected:?}: fix KAKAO_OIDC_ISSUER (or KAKAO_AUTH_BASE_URL)"
            )),
            Err(e) => fail(format!(
                "OpenID Connect: cannot read Kakao's discovery document: {e}"
            )),
        }
        match kakao.fetch_jwks().await {
            Ok(set) if !set.keys.is_empty() => println!(
                "ok    OpenID Connect: Kakao's JWKS is reachable ({} signing key(s)); this does not prove OpenID Connect is ON in Kakao's console: a login with KAKAO_OIDC=true and it OFF is refused (log: event=auth.id_token.missing)",
                set.keys.len()
            ),
            Ok(_) => fail("OpenID Connect: Kakao's JWKS has no keys".into()),
            Err(e) => fail(format!(
                "OpenID Connect: cannot fetch {}: {e}",
                kakao.config().oidc.jwks_url
            )),
        }
    } else {
        println!(
            "note  OpenID Connect is off (KAKAO_OIDC): turn it on in Kakao's console (Kakao Login > OpenID Connect), then set KAKAO_OIDC=true"
        );
    }
    match kakao.probe_admin_key().await {
        Ok(true) => println!(
            "ok    KAKAO_ADMIN_KEY is accepted for Manage User Info (Unlink and Manage Consent, which leaving and the consent items need, are not probed)"
        ),
        Ok(false) => println!("note  no KAKAO_ADMIN_KEY: leaving users are not unlinked at Kakao, and consent items are not shown"),
        Err(KakaoError::Api { code: -401, .. }) => fail(
            "KAKAO_ADMIN_KEY is not this app's admin key: copy it from Kakao Developers > App > App Keys > Admin key".into(),
        ),
        Err(e) if e.class() == ErrorClass::Temporary => fail(format!(
            "cannot reach Kakao's API at {}: {e}",
            settings.kakao_api_base_url
        )),
        Err(e) => fail(format!(
            "KAKAO_ADMIN_KEY was refused ({e}): allow its API categories Logout, Unlink, Manage User Info and Manage Consent under App > App Keys > Admin key"
        )),
    }
    failures
}

async fn ping_redis(url: &str) -> anyhow::Result<()> {
    crate::redis_store::RedisStore::connect(url).await?;
    Ok(())
}
