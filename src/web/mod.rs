//! HTTP: routes, extractors, the error faces, page rendering, and the middleware every
//! response passes through.
//!
//! Handlers parse input, call one function of the core (a change of `users::changes`, a use
//! case of `auth::login`, a read of `users::lookup`/`query`/`stats`/`audit`), and render a
//! page or a JSON body. They never reach the repo layer or Diesel.

pub mod admin;
pub mod api;
pub mod consents;
pub mod devices;
pub mod error;
pub mod extract;
pub mod kakao;
pub mod labels;
pub mod list;
pub mod pages;
pub mod webhooks;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

pub use error::AppError;
use error::ErrorView;

use crate::state::AppState;
use crate::users::model::User;

/// The parts of every page that come from the request, not the page.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub standin: bool,
    pub user_name: Option<String>,
    /// Show the link to the admin pages.
    pub is_staff: bool,
}

impl Layout {
    pub fn new(state: &AppState, user: Option<&User>) -> Layout {
        Layout {
            standin: state.standin,
            user_name: user.map(|u| u.display_name().to_owned()),
            is_staff: user.is_some_and(crate::users::permissions::can_use_admin),
        }
    }
}

/// Render a page template as an HTML answer.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Result<HttpResponse, AppError> {
    let body = page
        .render()
        .map_err(|e| AppError::Internal(format!("template: {e}")))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// A 303 to `location`: where a form's POST sends the browser next.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}

#[derive(Template)]
#[template(path = "errors/error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    view: &'a ErrorView,
}

/// The HTML face of an error: the error page (or, for `LoginRequired`, the way to the login
/// page), with the headers the error carries.
fn error_page(standin: bool, err: &AppError) -> HttpResponse {
    if let AppError::LoginRequired { next } = err {
        return see_other(&error::login_href(next));
    }
    let view = err.page();
    let layout = Layout {
        standin,
        ..Layout::default()
    };
    let mut res = HttpResponse::build(view.status);
    for header in err.headers() {
        res.insert_header(header);
    }
    match (ErrorPage {
        layout,
        view: &view,
    })
    .render()
    {
        Ok(body) => res.content_type("text/html; charset=utf-8").body(body),
        Err(_) => res
            .content_type("text/plain; charset=utf-8")
            .body(view.message),
    }
}

/// An error raised by middleware before any handler answered (the session store): it renders
/// its own face, as there is no response to replace.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
struct StoreError {
    error: AppError,
    standin: bool,
    api: bool,
}

impl ResponseError for StoreError {
    fn status_code(&self) -> StatusCode {
        self.error.status()
    }

    fn error_response(&self) -> HttpResponse {
        if self.api {
            return self.error.error_response();
        }
        let mut res = error_page(self.standin, &self.error);
        let headers = res.headers_mut();
        for (name, value) in default_headers(false) {
            headers.insert(name, HeaderValue::from_static(value));
        }
        res
    }
}

/// Give every error its face: JSON on the API (`AppError`'s own response), the HTML page
/// everywhere else; log it once. Errors that are not `AppError` (actix's own, the session
/// store's) become one first.
pub async fn render_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let standin = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.standin);
    let api = extract::is_api(req.request());
    let res = match next.call(req).await {
        Ok(res) => res,
        Err(err) => {
            let error = AppError::Unavailable(format!("session store: {err}"));
            error.log();
            return Err(StoreError {
                error,
                standin,
                api,
            }
            .into());
        }
    };
    let Some(err) = res.response().error() else {
        return Ok(res.map_into_left_body());
    };
    let status = res.status();
    let replacement = match err.as_error::<AppError>() {
        Some(app_err) => {
            app_err.log();
            (!api).then(|| error_page(standin, app_err))
        }
        None => {
            // The session middleware reports a store it cannot reach as a 500; actix's own
            // errors are the client's (bad payloads and the like): their status is kept.
            let app_err = if status == StatusCode::INTERNAL_SERVER_ERROR {
                AppError::Unavailable(format!("session store: {err}"))
            } else {
                AppError::bad_request(err.to_string())
            };
            app_err.log();
            let mut page = if api {
                app_err.error_response()
            } else {
                error_page(standin, &app_err)
            };
            if status.is_client_error() {
                *page.status_mut() = status;
            }
            Some(page)
        }
    };
    Ok(match replacement {
        Some(page) => {
            let (req, _) = res.into_parts();
            ServiceResponse::new(req, page).map_into_right_body()
        }
        None => res.map_into_left_body(),
    })
}

/// Refuse a query string holding a control character (a `%00` in a search, a cursor, a
/// filter) with a 400 before any handler or query sees it. Innermost, so that the answer gets
/// its face from `render_errors`.
pub async fn refuse_control_characters(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let bad = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, v)| extract::has_control(k) || extract::has_control(v))
        .map(|(k, _)| k.into_owned());
    if let Some(key) = bad {
        log::warn!("event=input.refused reason=control_character param={key:?}");
        return Ok(req
            .error_response(extract::control_refused(&key))
            .map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                   base-uri 'none'";

fn default_headers(is_static: bool) -> [(header::HeaderName, &'static str); 6] {
    [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            header::CACHE_CONTROL,
            if is_static {
                "public, max-age=3600"
            } else {
                "no-store"
            },
        ),
    ]
}

/// Security headers on every answer (a handler's own value wins), and no caching of anything
/// but static files.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let is_static = req.path().starts_with("/static/");
    let hsts = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.settings.secure_cookies());
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    let defaults = default_headers(is_static);
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    Ok(res)
}

/// Register every route but the static files and the stand-in.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| {
        AppError::BadRequest {
            code: "bad_query",
            detail: e.to_string(),
        }
        .into()
    }))
    .app_data(web::PathConfig::default().error_handler(|_, _| AppError::NotFound.into()))
    .configure(api::routes)
    .route("/", web::get().to(pages::login_page))
    .route("/healthz", web::get().to(pages::healthz))
    .route("/readyz", web::get().to(pages::readyz))
    .route("/profile/", web::get().to(pages::show_profile))
    .route("/profile/", web::post().to(pages::update_profile))
    .route("/profile/sessions/", web::get().to(devices::show_sessions))
    .route(
        "/profile/sessions/",
        web::post().to(devices::sign_out_devices),
    )
    .route("/profile/leave/", web::get().to(pages::confirm_leave))
    .route("/profile/leave/", web::post().to(pages::leave))
    .route("/goodbye/", web::get().to(pages::goodbye))
    .route("/kakao/login/", web::get().to(kakao::start_kakao_login))
    .route(
        "/kakao/login/callback/",
        web::get().to(kakao::finish_kakao_login),
    )
    .route("/kakao/logout/", web::get().to(kakao::confirm_logout))
    .route("/kakao/logout/", web::post().to(kakao::logout))
    .route(
        "/kakao/logout/callback/",
        web::get().to(kakao::finish_kakao_logout),
    )
    // Kakao follows no redirect: both spellings of each webhook URL answer.
    .service(
        web::resource(["/kakao/webhooks/unlink/", "/kakao/webhooks/unlink"])
            .app_data(web::PayloadConfig::new(webhooks::BODY_LIMIT))
            .get(webhooks::unlink)
            .post(webhooks::unlink),
    )
    .service(
        web::resource(["/kakao/webhooks/events/", "/kakao/webhooks/events"])
            .app_data(web::PayloadConfig::new(webhooks::BODY_LIMIT))
            .post(webhooks::events),
    )
    .service(web::scope("/admin").configure(admin::routes));
}

/// Paths that exist with a trailing slash; without one they redirect, as Django does.
const SLASH_PATHS: &[&str] = &[
    "/profile",
    "/profile/leave",
    "/profile/sessions",
    "/goodbye",
    "/admin",
    "/admin/users",
    "/admin/audit",
    "/admin/webhooks",
    "/admin/login",
    "/kakao/login",
    "/kakao/login/callback",
    "/kakao/logout",
    "/kakao/logout/callback",
];

/// Anything not routed: a redirect to the slashed path, or the 404 page.
/// `GET /metrics`, on the metrics listener only (`METRICS_BIND`): Prometheus's text format.
pub async fn metrics(state: web::Data<crate::state::AppState>) -> HttpResponse {
    let pool = state.pool.state();
    let body = crate::telemetry::metrics::get().render((
        pool.connections,
        pool.idle_connections,
        state.pool.max_size(),
    ));
    HttpResponse::Ok()
        .content_type(crate::telemetry::metrics::CONTENT_TYPE)
        .body(body)
}

pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, AppError> {
    if req.method() == actix_web::http::Method::GET && SLASH_PATHS.contains(&req.path()) {
        let target = match req.uri().query() {
            Some(q) => format!("{}/?{q}", req.path()),
            None => format!("{}/", req.path()),
        };
        return Ok(HttpResponse::PermanentRedirect()
            .insert_header((header::LOCATION, target))
            .finish());
    }
    Err(AppError::NotFound)
}
