//! Building and running the server: used by `main` and by the tests (each test builds its
//! own `Application` on port 0 with its own database and Kakao stand-in).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_session::SessionMiddleware;
use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;

use crate::auth::backend::SessionBackend;
use crate::auth::ratelimit::Limits;
use crate::config::{Secret, Settings};
use crate::db::{self, DbPool};
use crate::kakao::{KakaoClient, KakaoConfig, OidcConfig};
use crate::redis_store::RedisStore;
use crate::standin::{StandIn, StandInConfig};
use crate::state::AppState;
use crate::web as pages;

/// Where the built-in stand-in is mounted when no Kakao app is configured.
pub const STANDIN_PREFIX: &str = "/_kakao";
const STANDIN_CLIENT_ID: &str = "standin-rest-api-key";
const STANDIN_APP_ID: i64 = 1_000_001;

/// A built server, bound and ready to run.
pub struct Application {
    server: Server,
    addr: SocketAddr,
    /// The metrics listener (`METRICS_BIND`) and where it is bound.
    metrics: Option<(Server, SocketAddr)>,
    pub state: web::Data<AppState>,
    pub standin: Option<StandIn>,
}

/// Process-wide TLS set-up, before any connection is opened (harmless when repeated).
///
/// - rustls (awc, to Kakao): install the ring provider.
/// - OpenSSL (libpq, to PostgreSQL): initialise it without its exit-time clean-up. The pool
///   opens connections on background threads, so a process can exit while one is in its TLS
///   handshake; OpenSSL freeing its tables under that handshake killed `createsuperuser` with
///   SIGSEGV about once in twenty runs. The operating system frees the memory at exit anyway.
pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    openssl_sys::init();
}

impl Application {
    /// Bind `settings.bind` and build.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        Self::build_with_listener(settings, listener).await
    }

    /// Build on an already-bound listener (tests bind port 0 first to know the address).
    pub async fn build_with_listener(
        settings: Settings,
        listener: TcpListener,
    ) -> anyhow::Result<Application> {
        init_crypto();
        settings.validate()?;
        let addr = listener.local_addr()?;
        let session_key = session_key(&settings)?;
        let pool = db::build_pool(
            &settings.database_url,
            settings.database_pool_size,
            Duration::from_secs(settings.database_timeout_secs),
        )
        .with_context(|| {
            format!(
                "cannot open the database {}",
                db::redact_url(&settings.database_url)
            )
        })?;
        // Not through `db::run`: a migration may rightly take longer than its WORK_TIMEOUT.
        let migrating = pool.clone();
        let applied = actix_web::web::block(move || {
            let mut conn = migrating
                .get()
                .map_err(|e| anyhow::anyhow!("no database connection for the migrations: {e}"))?;
            db::run_migrations(&mut conn)
        })
        .await
        .map_err(|e| anyhow::anyhow!("the migrations did not run: {e}"))??;
        for version in applied {
            log::info!("event=db.migrated version={version}");
        }
        let redis = match settings.redis_url.as_deref() {
            Some(url) => Some(RedisStore::connect(url).await?),
            None => None,
        };
        let session_backend = match &redis {
            Some(redis) => SessionBackend::Redis(redis.clone()),
            None => SessionBackend::Cookie,
        };

        let (kakao, standin) = kakao_setup(&settings, addr);
        // Each worker builds its own client (awc's is not Send); one built now proves the
        // configuration, so that no worker can fail to.
        KakaoClient::new(kakao.clone()).context("the Kakao settings are unusable")?;
        let trusted_proxies = settings.trusted_proxy_nets().unwrap_or_default();
        let state = web::Data::new(AppState {
            kakao,
            pool,
            standin: standin.is_some(),
            token_cache: Default::default(),
            settings,
            limits: Limits::new(redis.as_ref()),
            sessions: session_backend.clone(),
            trusted_proxies,
            consent_cache: Default::default(),
            draining: Default::default(),
        });
        let metrics = match state.settings.metrics_bind.as_deref() {
            Some(bind) => Some(metrics_server(state.clone(), bind)?),
            None => None,
        };
        let server = build_server(
            state.clone(),
            standin.clone(),
            session_backend,
            session_key,
            listener,
        )?;
        log::info!(
            "event=server.ready addr={addr} database={} sessions={} kakao={}",
            db::DatabaseUrl::parse(&state.settings.database_url)
                .map(|u| u.backend_name())
                .unwrap_or("?"),
            match &state.settings.redis_url {
                Some(_) => "redis",
                None => "cookie",
            },
            if standin.is_some() {
                "stand-in"
            } else {
                "kakao"
            },
        );
        Ok(Application {
            server,
            addr,
            metrics,
            state,
            standin,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub fn pool(&self) -> &DbPool {
        &self.state.pool
    }

    /// Where metrics are served, when `METRICS_BIND` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, addr)| *addr)
    }

    /// Serve until stopped (through [`Application::handle`]), with the housekeeping job and
    /// the metrics listener beside; the metrics listener stops with the server.
    pub async fn run(self) -> std::io::Result<()> {
        let housekeeping = spawn_housekeeping(&self.state);
        let result = match self.metrics {
            Some((metrics, _)) => {
                let metrics_handle = metrics.handle();
                let server = self.server;
                let main = async move {
                    let done = server.await;
                    metrics_handle.stop(true).await;
                    done
                };
                futures_util::future::try_join(main, metrics)
                    .await
                    .map(|_| ())
            }
            None => self.server.await,
        };
        if let Some(job) = housekeeping {
            job.abort();
        }
        result
    }

    /// Serve until SIGTERM or Ctrl-C, then shut down gracefully: `/readyz` answers 503 at
    /// once and requests are still served for `SHUTDOWN_DRAIN_SECS` (a load balancer stops
    /// sending), then the listener closes and requests in flight get `SHUTDOWN_TIMEOUT_SECS`
    /// to finish; the pools close as the server's last reference to them goes. A second
    /// signal stops at once.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let state = self.state.clone();
        actix_web::rt::spawn(async move {
            shutdown_signal().await;
            state
                .draining
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let drain = state.settings.shutdown_drain_secs;
            log::info!(
                "event=server.draining drain_secs={drain} timeout_secs={}",
                state.settings.shutdown_timeout_secs
            );
            let second = actix_web::rt::spawn({
                let handle = handle.clone();
                async move {
                    shutdown_signal().await;
                    log::warn!("event=server.stop_now reason=second_signal");
                    handle.stop(false).await;
                }
            });
            actix_web::rt::time::sleep(Duration::from_secs(drain)).await;
            log::info!("event=server.stopping");
            handle.stop(true).await;
            second.abort();
        });
        self.run().await?;
        log::info!("event=server.stopped");
        Ok(())
    }
}

/// SIGTERM or SIGINT (Ctrl-C), whichever comes first.
async fn shutdown_signal() {
    use actix_web::rt::signal;
    #[cfg(unix)]
    {
        match signal::unix::signal(signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                futures_util::future::select(Box::pin(term.recv()), Box::pin(signal::ctrl_c()))
                    .await;
            }
            Err(e) => {
                log::error!("event=server.signals_unavailable error=\"{e}\"");
                let _ = signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = signal::ctrl_c().await;
    }
}

/// Purge expired sessions, used login states and month-old refused webhook deliveries every
/// `HOUSEKEEPING_INTERVAL_SECS`, starting
/// at a random point of the first interval so that instances started together spread out.
fn spawn_housekeeping(state: &web::Data<AppState>) -> Option<actix_web::rt::task::JoinHandle<()>> {
    let every = state.settings.housekeeping_interval_secs;
    if every == 0 {
        return None;
    }
    let pool = state.pool.clone();
    Some(actix_web::rt::spawn(async move {
        let every = Duration::from_secs(every);
        let first = every.mul_f64(rand::random::<f64>());
        actix_web::rt::time::sleep(first).await;
        loop {
            match db::run(&pool, crate::auth::records::purge_expired).await {
                Ok(purged) if purged.any() => log::info!(
                    "event=housekeeping.purged sessions={} login_states={} more={}",
                    purged.sessions,
                    purged.login_states,
                    purged.more
                ),
                Ok(_) => {}
                Err(e) => log::warn!("event=housekeeping.failed error=\"{e}\""),
            }
            match db::run(&pool, crate::users::kakao_events::purge_old_refusals).await {
                Ok(0) => {}
                Ok(n) => log::info!("event=housekeeping.purged refused_deliveries={n}"),
                Err(e) => log::warn!("event=housekeeping.failed error=\"{e}\""),
            }
            actix_web::rt::time::sleep(every).await;
        }
    }))
}

/// The metrics listener on `bind`: `GET /metrics` and nothing else.
fn metrics_server(state: web::Data<AppState>, bind: &str) -> anyhow::Result<(Server, SocketAddr)> {
    let listener =
        TcpListener::bind(bind).with_context(|| format!("cannot listen for metrics on {bind}"))?;
    let addr = listener.local_addr()?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(pages::metrics))
            .default_service(web::to(|| async {
                actix_web::HttpResponse::NotFound().finish()
            }))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    log::info!("event=metrics.ready addr={addr}");
    Ok((server, addr))
}

/// The Kakao URLs and credentials in use, and the stand-in when it plays Kakao.
fn kakao_setup(settings: &Settings, addr: SocketAddr) -> (KakaoConfig, Option<StandIn>) {
    if !settings.uses_standin() {
        return (kakao_config(settings), None);
    }
    let secret = crate::token::random_token();
    let admin_key = crate::token::random_token();
    let standin = StandIn::new(StandInConfig {
        client_id: STANDIN_CLIENT_ID.to_owned(),
        client_secret: Some(secret.clone()),
        app_id: STANDIN_APP_ID,
        admin_key: Some(admin_key.clone()),
        redirect_uris: vec![settings.redirect_uri()],
    });
    // The browser reaches the stand-in through PUBLIC_URL; the server calls it directly on
    // the address it is bound to.
    let back_channel = format!("http://{addr}{STANDIN_PREFIX}");
    let browser_side = format!("{}{STANDIN_PREFIX}", settings.public_url);
    let issuer = settings
        .kakao_oidc_issuer
        .clone()
        .unwrap_or_else(|| back_channel.clone());
    standin.set_issuer(&issuer);
    standin.set_logout_redirect_uris(vec![settings.logout_redirect_uri()]);
    // Kakao calls the app's webhooks from outside; the stand-in calls the bound address.
    standin.set_webhook_targets(
        Some(format!("http://{addr}/kakao/webhooks/unlink/")),
        Some(format!("http://{addr}/kakao/webhooks/events/")),
    );
    let config = KakaoConfig {
        authorize_url: format!("{browser_side}/oauth/authorize"),
        token_url: format!("{back_channel}/oauth/token"),
        oidc: OidcConfig {
            issuer,
            jwks_url: format!("{back_channel}/.well-known/jwks.json"),
        },
        logout_url: format!("{browser_side}/oauth/logout"),
        api_base_url: back_channel,
        client_id: STANDIN_CLIENT_ID.to_owned(),
        client_secret: Some(Secret::new(secret)),
        admin_key: Some(Secret::new(admin_key)),
        app_id: Some(STANDIN_APP_ID),
        ..kakao_config(settings)
    };
    (config, Some(standin))
}

/// The Kakao configuration for real Kakao (or any Kakao at `KAKAO_AUTH_BASE_URL` and
/// `KAKAO_API_BASE_URL`), from the settings.
pub fn kakao_config(settings: &Settings) -> KakaoConfig {
    let auth = &settings.kakao_auth_base_url;
    KakaoConfig {
        authorize_url: format!("{auth}/oauth/authorize"),
        token_url: format!("{auth}/oauth/token"),
        oidc: OidcConfig {
            issuer: settings
                .kakao_oidc_issuer
                .clone()
                .unwrap_or_else(|| auth.clone()),
            jwks_url: format!("{auth}/.well-known/jwks.json"),
        },
        oidc_login: settings.oidc_login(),
        extra_audiences: settings.allowed_audiences(),
        logout_url: format!("{auth}/oauth/logout"),
        logout_redirect_uri: settings.logout_redirect_uri(),
        keys: Arc::default(),
        api_base_url: settings.kakao_api_base_url.clone(),
        client_id: settings.kakao_client_id.clone().unwrap_or_default(),
        client_secret: settings.kakao_client_secret.clone(),
        redirect_uri: settings.redirect_uri(),
        admin_key: settings.kakao_admin_key.clone(),
        app_id: settings.kakao_app_id,
        connect_timeout: Duration::from_millis(settings.kakao_connect_timeout_ms),
        timeout: Duration::from_millis(settings.kakao_timeout_ms),
    }
}

fn build_server(
    state: web::Data<AppState>,
    standin: Option<StandIn>,
    session_backend: SessionBackend,
    session_key: Key,
    listener: TcpListener,
) -> anyhow::Result<Server> {
    let settings = &state.settings;
    let secure = settings.secure_cookies();
    // `__Host-` binds the cookie to this exact host over https (no Domain, Path=/).
    let cookie_name = if secure {
        "__Host-kakao_login"
    } else {
        "kakao_login"
    };
    let lifetime =
        actix_web::cookie::time::Duration::hours(i64::from(settings.session_lifetime_hours));
    let workers = if settings.workers == 0 {
        crate::config::cpu_cores()
    } else {
        settings.workers
    };
    let blocking_threads = blocking_threads_per_worker(settings.database_pool_size, workers);
    let shutdown_timeout = settings.shutdown_timeout_secs;
    let kakao_config = Arc::new(state.kakao.clone());
    let server = HttpServer::new(move || {
        // awc's client is per worker: it is not Send. `build` made one already, so this cannot
        // fail; if it ever did, the worker must not serve without Kakao.
        let kakao = match KakaoClient::new((*kakao_config).clone()) {
            Ok(client) => client,
            Err(e) => {
                log::error!("event=kakao.config.invalid error=\"{e}\"");
                std::process::exit(2);
            }
        };
        let session = SessionMiddleware::builder(session_backend.clone(), session_key.clone())
            .cookie_name(cookie_name.to_owned())
            .cookie_secure(secure)
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_path("/".to_owned())
            .cookie_content_security(CookieContentSecurity::Private)
            .session_lifecycle(PersistentSession::default().session_ttl(lifetime))
            .build();
        let standin = standin.clone();
        App::new()
            .app_data(state.clone())
            .app_data(web::Data::new(kakao))
            .configure(pages::routes)
            .configure(|cfg| {
                if let Some(standin) = &standin {
                    cfg.service(
                        web::scope(STANDIN_PREFIX)
                            .wrap(from_fn(StandIn::only_from_this_machine))
                            .configure(|c| standin.configure(c)),
                    );
                }
            })
            .service(actix_files::Files::new("/static", static_dir()).prefer_utf8(true))
            .default_service(web::to(pages::not_found))
            .wrap(from_fn(pages::refuse_control_characters))
            .wrap(session)
            .wrap(from_fn(pages::render_errors))
            .wrap(from_fn(pages::security_headers))
            .wrap(from_fn(crate::telemetry::observe))
    })
    .workers(workers)
    // Shutdown is ours (`run_until_signalled`): drain first, then stop.
    .disable_signals()
    .shutdown_timeout(shutdown_timeout)
    // Blocking threads serve database calls (and static file reads). More of them than pooled
    // connections would only queue for a connection, and each extra thread costs memory: with
    // the default of 512 per worker, the load benchmark's peak RSS passed 110 MiB.
    .worker_max_blocking_threads(blocking_threads)
    .listen(listener)?
    .run();
    Ok(server)
}

/// A worker's share of the database pool, plus one thread for static files.
fn blocking_threads_per_worker(pool_size: u32, workers: usize) -> usize {
    (pool_size as usize).div_ceil(workers.max(1)) + 1
}

/// Static files live beside the templates in the source tree.
fn static_dir() -> std::path::PathBuf {
    let beside_binary = std::path::Path::new("static");
    if beside_binary.is_dir() {
        beside_binary.to_path_buf()
    } else {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static")
    }
}

/// The session cookie key: SESSION_KEY, or in development a key generated once and kept in
/// the data folder with mode 0600.
fn session_key(settings: &Settings) -> anyhow::Result<Key> {
    if let Some(key) = &settings.session_key {
        return Ok(Key::derive_from(key.expose().as_bytes()));
    }
    let path = settings.session_key_path();
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= 64 {
            return Ok(Key::derive_from(existing.as_bytes()));
        }
        anyhow::bail!(
            "{} holds a session key shorter than 64 bytes; delete it to make a new one",
            path.display()
        );
    }
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    let generated = format!(
        "{}{}{}",
        crate::token::random_token(),
        crate::token::random_token(),
        crate::token::random_token()
    );
    write_private(&path, &generated).with_context(|| format!("cannot write {}", path.display()))?;
    log::info!("event=session_key.generated path={}", path.display());
    Ok(Key::derive_from(generated.as_bytes()))
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::blocking_threads_per_worker;

    #[test]
    fn each_worker_gets_its_share_of_the_pool_and_one_more() {
        assert_eq!(blocking_threads_per_worker(10, 2), 6);
        assert_eq!(blocking_threads_per_worker(16, 3), 7);
        assert_eq!(blocking_threads_per_worker(1, 4), 2);
        assert_eq!(blocking_threads_per_worker(5, 0), 6);
    }
}
