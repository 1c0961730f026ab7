//! The JSON API under `/api/`: its error face, its JSON body extractor, and who is calling
//! (session cookie, or a Kakao access token as `Authorization: Bearer`).

pub mod dto;
pub mod openapi;
pub mod users;

use std::future::Future;
use std::pin::Pin;

use actix_session::SessionExt;
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::auth::bearer::{self, TokenError};
use crate::auth::{AppSession, extractors::signed_in_user};
use crate::db::{self, DbError};
use crate::error::AppError;
use crate::kakao::KakaoClient;
use crate::state::AppState;
use crate::users::changes::ChangeError;
use crate::users::manager::FieldErrors;
use crate::users::model::{Provider, User};
use crate::users::permissions::Permission;
use crate::users::repo;

/// Largest JSON body accepted.
pub const BODY_LIMIT: usize = 16 * 1024;

/// Every way an API call can fail, with its status and JSON body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required")]
    NotAuthenticated,
    #[error("invalid token")]
    InvalidToken,
    #[error("token issued to another app")]
    OtherApp,
    #[error("malformed token")]
    MalformedToken,
    #[error("Kakao temporarily unavailable")]
    KakaoUnavailable,
    #[error("no account for this Kakao user")]
    NotRegistered,
    #[error("account inactive")]
    Inactive,
    #[error("permission denied: {0}")]
    Forbidden(String),
    #[error("CSRF token missing or wrong")]
    Csrf,
    #[error("not found")]
    NotFound,
    #[error("invalid fields: {0}")]
    Invalid(FieldErrors),
    #[error("bad request: {0}")]
    BadRequest(&'static str, String),
    #[error("conflict: {0}")]
    Conflict(&'static str, String),
    #[error("body too large")]
    TooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("email consent required")]
    EmailRequired,
    #[error("email not verified or not valid")]
    EmailUntrusted,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::NotAuthenticated => "not_authenticated",
            ApiError::InvalidToken => "invalid_token",
            ApiError::OtherApp => "app_id_mismatch",
            ApiError::MalformedToken => "malformed_token",
            ApiError::KakaoUnavailable => "kakao_unavailable",
            ApiError::NotRegistered => "not_registered",
            ApiError::Inactive => "account_inactive",
            ApiError::Forbidden(_) => "permission_denied",
            ApiError::Csrf => "csrf_invalid",
            ApiError::NotFound => "not_found",
            ApiError::Invalid(_) => "invalid",
            ApiError::BadRequest(code, _) | ApiError::Conflict(code, _) => code,
            ApiError::TooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::EmailRequired => "email_required",
            ApiError::EmailUntrusted => "email_untrusted",
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotAuthenticated
            | ApiError::InvalidToken
            | ApiError::OtherApp
            | ApiError::Inactive => StatusCode::UNAUTHORIZED,
            ApiError::MalformedToken | ApiError::Invalid(_) | ApiError::BadRequest(..) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::KakaoUnavailable | ApiError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::NotRegistered
            | ApiError::Forbidden(_)
            | ApiError::Csrf
            | ApiError::EmailRequired
            | ApiError::EmailUntrusted => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict(..) => StatusCode::CONFLICT,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CACHE_CONTROL, "no-store"));
        let body = match self {
            ApiError::Invalid(fields) => serde_json::to_value(fields).unwrap_or_default(),
            ApiError::Forbidden(detail)
            | ApiError::BadRequest(_, detail)
            | ApiError::Conflict(_, detail) => json!({"error": self.code(), "detail": detail}),
            ApiError::KakaoUnavailable | ApiError::Unavailable(_) => {
                res.insert_header((header::RETRY_AFTER, "5"));
                json!({
                    "error": self.code(),
                    "temporary": true,
                    "detail": "temporarily unavailable; try again shortly",
                })
            }
            ApiError::Internal(_) => json!({"error": "internal"}),
            _ => json!({"error": self.code()}),
        };
        match self {
            ApiError::InvalidToken | ApiError::OtherApp => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\""));
            }
            ApiError::NotAuthenticated => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"api\""));
            }
            _ => {}
        }
        if matches!(self, ApiError::Internal(_) | ApiError::Unavailable(_)) {
            log::error!("event=api.failed error=\"{self}\"");
        }
        res.json(body)
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Temporary => ApiError::KakaoUnavailable,
            TokenError::Malformed => ApiError::MalformedToken,
            TokenError::Invalid => ApiError::InvalidToken,
            TokenError::OtherApp => ApiError::OtherApp,
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(m) => ApiError::Unavailable(m),
            DbError::Query(diesel::result::Error::NotFound) => ApiError::NotFound,
            DbError::Query(q) => ApiError::Internal(q.to_string()),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        ApiError::from(DbError::Query(e))
    }
}

impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::NotFound => ApiError::NotFound,
            ChangeError::Forbidden(d) => ApiError::Forbidden(d),
            ChangeError::Invalid(f) => ApiError::Invalid(f),
            ChangeError::DuplicateEmail => {
                let mut f = FieldErrors::default();
                f.add("email", "이미 사용 중인 이메일입니다.");
                ApiError::Conflict("email_in_use", f.to_string())
            }
            ChangeError::LastSuperuser => ApiError::Conflict(
                "last_superuser",
                "the last active superuser cannot be demoted, deactivated or deleted".into(),
            ),
            ChangeError::Db(e) => ApiError::from(e),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Db(e) => ApiError::from(e),
            AppError::Session(m) => ApiError::Unavailable(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<actix_session::SessionInsertError> for ApiError {
    fn from(e: actix_session::SessionInsertError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

/// A JSON request body: `application/json` only (415), at most 16 KiB (413), well-formed
/// (400), a JSON object without unknown fields (400 with a field map), each field of the
/// right type (400 with a field map).
pub struct JsonBody<T>(pub T);

/// The fields a request body may carry.
pub trait BodyFields {
    const FIELDS: &'static [&'static str];
}

impl<T: DeserializeOwned + BodyFields + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .mime_type()
            .ok()
            .flatten()
            .is_some_and(|m| m.type_() == "application" && m.subtype() == "json");
        let declared_too_large = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n > BODY_LIMIT);
        let mut payload = payload.take();
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::UnsupportedMediaType);
            }
            if declared_too_large {
                return Err(ApiError::TooLarge);
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| ApiError::BadRequest("bad_body", e.to_string()))?;
                if body.len() + chunk.len() > BODY_LIMIT {
                    return Err(ApiError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            parse_body(&body).map(JsonBody)
        })
    }
}

/// Parse a body into `T`, with DRF-shaped field errors.
pub fn parse_body<T: DeserializeOwned + BodyFields>(body: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest("malformed_json", e.to_string()))?;
    let Some(object) = value.as_object() else {
        let mut f = FieldErrors::default();
        f.add("non_field_errors", "JSON 객체여야 합니다.");
        return Err(ApiError::Invalid(f));
    };
    let mut unknown = FieldErrors::default();
    for key in object.keys() {
        if !T::FIELDS.contains(&key.as_str()) {
            unknown.add(key, "알 수 없는 필드입니다.");
        }
    }
    if !unknown.is_empty() {
        return Err(ApiError::Invalid(unknown));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let mut f = FieldErrors::default();
        let field = if field.is_empty() || field == "." {
            "non_field_errors".to_owned()
        } else {
            field
        };
        f.add(&field, format!("올바른 값이 아닙니다: {}", e.inner()));
        ApiError::Invalid(f)
    })
}

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVia {
    Session,
    Bearer,
}

/// `IsAuthenticated`: the caller, by session cookie or Kakao access token. Cookie-authenticated
/// unsafe methods must carry the session's CSRF token in `X-CSRF-Token`.
pub struct ApiUser {
    pub user: User,
    pub via: AuthVia,
}

/// `IsStaff`.
pub struct StaffUser(pub ApiUser);

/// `IsSuperuser`.
pub struct SuperUser(pub ApiUser);

#[derive(Clone)]
struct CachedApiUser(User, AuthVia);

async fn authenticate(req: &HttpRequest) -> Result<ApiUser, ApiError> {
    if let Some(cached) = req.extensions().get::<CachedApiUser>() {
        return Ok(ApiUser {
            user: cached.0.clone(),
            via: cached.1,
        });
    }
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal("state missing".into()))?
        .clone();
    let (user, via) = match req.headers().get(header::AUTHORIZATION) {
        Some(value) => {
            let value = value.to_str().map_err(|_| ApiError::InvalidToken)?;
            // The scheme name is case-insensitive (RFC 9110 11.1).
            let token = match value.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
                _ => return Err(ApiError::InvalidToken),
            };
            let kakao = req
                .app_data::<web::Data<KakaoClient>>()
                .ok_or_else(|| ApiError::Internal("Kakao client missing".into()))?;
            let kakao_id = bearer::validate(kakao, &state.token_cache, token).await?;
            let user = db::run(&state.pool, move |conn| {
                let social = repo::find_social(conn, Provider::Kakao.as_str(), kakao_id)?;
                match social {
                    Some(s) => repo::find_user(conn, s.user_id).map_err(DbError::from),
                    None => Ok(None),
                }
            })
            .await?
            .ok_or(ApiError::NotRegistered)?;
            if !user.is_active {
                return Err(ApiError::Inactive);
            }
            (user, AuthVia::Bearer)
        }
        None => {
            let user = signed_in_user(req)
                .await?
                .ok_or(ApiError::NotAuthenticated)?;
            let safe = matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
            if !safe {
                let session = AppSession(req.get_session());
                let sent = req
                    .headers()
                    .get("x-csrf-token")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !super::same_origin(req, &state) || !session.csrf_matches(sent) {
                    log::warn!("event=csrf.rejected route={}", req.path());
                    return Err(ApiError::Csrf);
                }
            }
            (user, AuthVia::Session)
        }
    };
    req.extensions_mut()
        .insert(CachedApiUser(user.clone(), via));
    Ok(ApiUser { user, via })
}

type ApiFuture<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

impl FromRequest for ApiUser {
    type Error = ApiError;
    type Future = ApiFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await })
    }
}

/// The caller, if `permission` allows them; otherwise 403.
async fn authenticate_with(req: &HttpRequest, permission: Permission) -> Result<ApiUser, ApiError> {
    let caller = authenticate(req).await?;
    if permission.allows(&caller.user) {
        Ok(caller)
    } else {
        Err(ApiError::Forbidden(match permission {
            Permission::IsSuperuser => "superusers only".into(),
            _ => "staff only".into(),
        }))
    }
}

impl FromRequest for StaffUser {
    type Error = ApiError;
    type Future = ApiFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            authenticate_with(&req, Permission::IsStaff)
                .await
                .map(StaffUser)
        })
    }
}

impl FromRequest for SuperUser {
    type Error = ApiError;
    type Future = ApiFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            authenticate_with(&req, Permission::IsSuperuser)
                .await
                .map(SuperUser)
        })
    }
}

/// Register `/api/...`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api")
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ApiError::BadRequest("bad_query", e.to_string()).into()),
            )
            .app_data(web::PathConfig::default().error_handler(|_, _| ApiError::NotFound.into()))
            .route("/openapi.json", web::get().to(openapi::openapi_json))
            .route(
                "/auth/kakao/",
                web::post().to(users::sign_in_with_kakao_token),
            )
            .route("/auth/csrf/", web::get().to(users::csrf_token))
            .route("/users/", web::get().to(users::list_users))
            .route("/users/", web::post().to(users::create_user))
            .route("/users/me/", web::get().to(users::get_me))
            .route("/users/me/", web::patch().to(users::update_me))
            .route("/users/me/", web::delete().to(users::delete_me))
            .route("/users/{id:\\d+}/", web::get().to(users::get_user))
            .route("/users/{id:\\d+}/", web::patch().to(users::patch_user))
            .route("/users/{id:\\d+}/", web::put().to(users::put_user))
            .route("/users/{id:\\d+}/", web::delete().to(users::delete_user))
            .default_service(web::to(|| async { ApiError::NotFound.error_response() })),
    );
}
