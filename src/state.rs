//! What every request can reach: settings, the database pool, and the Kakao configuration.

use crate::auth::bearer::TokenCache;
use crate::auth::ratelimit::LoginLimits;
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
    /// Failed break-glass sign-ins, per client and per account (in memory).
    pub login_limits: LoginLimits,
}
