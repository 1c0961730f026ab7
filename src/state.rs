//! What every request can reach: settings, the database pool, the session store, the Kakao
//! configuration, and the rate limits.

use crate::auth::backend::SessionBackend;
use crate::auth::bearer::TokenCache;
use crate::auth::ratelimit::Limits;
use crate::config::Settings;
use crate::db::DbPool;
use crate::kakao::KakaoConfig;

/// Shared by all workers through `web::Data`.
pub struct AppState {
    pub settings: Settings,
    pub pool: DbPool,
    pub kakao: KakaoConfig,
    /// The built-in Kakao stand-in is serving at `/_kakao` (banner on every page).
    pub standin: bool,
    /// Kakao access tokens recently confirmed by Kakao (API bearer authentication).
    pub token_cache: TokenCache,
    /// The rate limits (in Redis when there is one, so every instance shares them).
    pub limits: Limits,
    /// Where session state is kept (for readiness checks; the middleware has its own copy).
    pub sessions: SessionBackend,
    /// The reverse proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Recent answers about people's Kakao consent items (the profile and admin pages).
    pub consent_cache: crate::web::consents::ConsentCache,
    /// Set when shutdown starts: `/readyz` answers 503 so that load balancers drain us.
    pub draining: std::sync::atomic::AtomicBool,
}

impl AppState {
    /// Whether shutdown has started.
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }
}
