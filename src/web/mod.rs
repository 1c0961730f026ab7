//! HTTP: routes, page rendering, and the middleware every response passes through.

pub mod admin;
pub mod api;
pub mod kakao;
pub mod pages;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::error::{AppError, ErrorView};
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

#[derive(Template)]
#[template(path = "errors/error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    view: &'a ErrorView,
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

fn error_page(standin: bool, err: &AppError) -> HttpResponse {
    let view = err.view();
    let layout = Layout {
        standin,
        ..Layout::default()
    };
    match (ErrorPage {
        layout,
        view: &view,
    })
    .render()
    {
        Ok(body) => {
            let mut res = HttpResponse::build(view.status);
            if view.status == StatusCode::SERVICE_UNAVAILABLE {
                res.insert_header((header::RETRY_AFTER, "5"));
            }
            if let AppError::TooManyAttempts { retry_after_secs } = err {
                res.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            res.content_type("text/html; charset=utf-8").body(body)
        }
        Err(_) => HttpResponse::build(view.status)
            .content_type("text/plain; charset=utf-8")
            .body(view.message),
    }
}

/// An error that renders itself as the full page (used where no response can be built).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct PageError {
    error: AppError,
    standin: bool,
}

impl actix_web::ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.error.view().status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = error_page(self.standin, &self.error);
        let headers = res.headers_mut();
        for (name, value) in default_headers(false) {
            headers.insert(name, HeaderValue::from_static(value));
        }
        res
    }
}

/// Turn errors into full HTML pages. Errors raised by middleware inside (the session store
/// failing to reach Redis) have no page of their own: they become a 503 page.
pub async fn render_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let standin = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.standin);
    let api = req.path().starts_with("/api/");
    let res = match next.call(req).await {
        Ok(res) if api => return Ok(res.map_into_left_body()),
        Err(err) if api => {
            return Err(api::ApiError::Unavailable(format!("session store: {err}")).into());
        }
        Ok(res) => res,
        // Middleware inside (the session store) failed before any handler answered; there is
        // no request left to attach a page to, so the error itself renders the page.
        Err(err) => {
            let app_err = AppError::Session(err.to_string());
            app_err.log();
            return Err(PageError {
                error: app_err,
                standin,
            }
            .into());
        }
    };
    let replacement = match res.response().error() {
        Some(err) => match err.as_error::<AppError>() {
            Some(AppError::LoginRequired { .. }) => None,
            Some(app_err) => {
                app_err.log();
                Some(error_page(standin, app_err))
            }
            None if res.status() == StatusCode::INTERNAL_SERVER_ERROR => {
                let app_err = AppError::Session(err.to_string());
                app_err.log();
                Some(error_page(standin, &app_err))
            }
            None => {
                // actix's own client errors (bad payloads and the like): keep the status.
                let app_err = AppError::BadRequest(err.to_string());
                let mut page = error_page(standin, &app_err);
                *page.status_mut() = res.status();
                Some(page)
            }
        },
        None => None,
    };
    Ok(match replacement {
        Some(page) => {
            let (req, _) = res.into_parts();
            ServiceResponse::new(req, page).map_into_right_body()
        }
        None => res.map_into_left_body(),
    })
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

/// Register the page routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(api::routes)
        .route("/", web::get().to(pages::login_page))
        .route("/healthz", web::get().to(pages::healthz))
        .route("/readyz", web::get().to(pages::readyz))
        .route("/profile/", web::get().to(pages::show_profile))
        .route("/profile/", web::post().to(pages::update_profile))
        .route("/kakao/login/", web::get().to(kakao::start_kakao_login))
        .route(
            "/kakao/login/callback/",
            web::get().to(kakao::finish_kakao_login),
        )
        .route("/kakao/logout/", web::get().to(kakao::confirm_logout))
        .route("/kakao/logout/", web::post().to(kakao::logout))
        .service(web::scope("/admin").configure(admin::routes));
}

/// Paths that exist with a trailing slash; without one they redirect, as Django does.
const SLASH_PATHS: &[&str] = &[
    "/profile",
    "/admin",
    "/admin/users",
    "/admin/audit",
    "/admin/login",
    "/kakao/login",
    "/kakao/login/callback",
    "/kakao/logout",
];

/// Anything not routed: a redirect to the slashed path, or the 404 page.
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

/// Reject state-changing requests sent from another site even before the CSRF token is
/// checked (defence in depth): a present `Origin` must be ours.
pub fn same_origin(req: &HttpRequest, state: &AppState) -> bool {
    match req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        None => req
            .headers()
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|site| site != "cross-site"),
        Some(origin) => {
            origin == state.settings.public_url
                || url::Url::parse(&state.settings.public_url)
                    .map(|u| u.origin().ascii_serialization() == origin)
                    .unwrap_or(false)
        }
    }
}
