//! One error type for pages, named by what happened. Each has a status, a machine-checkable
//! code (`data-error` on the page) and Korean text; 5xx answers say nothing internal and the
//! cause goes to the log once.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::db::DbError;
use crate::kakao::{ErrorClass, KakaoError};

/// What was wrong with the `state` of a Kakao callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateProblem {
    Missing,
    Mismatch,
    Expired,
    Replayed,
}

/// Everything a page request can end with other than success.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    /// Sign-in required; pages redirect to the login page with `next`.
    #[error("sign-in required")]
    LoginRequired { next: String },
    #[error("CSRF token missing or wrong")]
    Csrf,
    #[error("bad login state: {0:?}")]
    State(StateProblem),
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The person pressed cancel at Kakao.
    #[error("login cancelled at Kakao")]
    KakaoCancelled,
    /// Kakao redirected back with an error other than a cancel.
    #[error("Kakao returned error {0}")]
    KakaoRedirectError(String),
    /// No email was shared: consent is required. `next` is kept for asking again.
    #[error("email consent missing")]
    EmailRequired { next: Option<String> },
    #[error("email not verified")]
    EmailUnverified,
    #[error("email not valid")]
    EmailInvalid,
    #[error("email already linked to another Kakao account")]
    EmailInUse,
    #[error("account inactive")]
    Inactive,
    /// Signed in, but the permission policy says no (a 403 page).
    #[error("forbidden")]
    Forbidden,
    /// The change would leave no active superuser (a 409 page).
    #[error("the last active superuser cannot be demoted, deactivated or deleted")]
    LastSuperuser,
    /// Too many attempts (break-glass sign-in); try again after this many seconds.
    #[error("too many attempts; retry after {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error(transparent)]
    Kakao(#[from] KakaoError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("session store: {0}")]
    Session(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => AppError::NotFound,
            other => AppError::Db(DbError::Query(other)),
        }
    }
}

impl From<crate::users::changes::ChangeError> for AppError {
    /// Handlers that show field errors in a form handle `Invalid` and `DuplicateEmail`
    /// themselves; anywhere else they are a bad request.
    fn from(e: crate::users::changes::ChangeError) -> Self {
        use crate::users::changes::ChangeError;
        match e {
            ChangeError::NotFound => AppError::NotFound,
            ChangeError::Forbidden(_) => AppError::Forbidden,
            ChangeError::LastSuperuser => AppError::LastSuperuser,
            ChangeError::Invalid(errors) => AppError::BadRequest(errors.to_string()),
            ChangeError::DuplicateEmail => AppError::BadRequest("duplicate email".into()),
            ChangeError::Db(e) => AppError::Db(e),
        }
    }
}

impl From<actix_session::SessionInsertError> for AppError {
    fn from(e: actix_session::SessionInsertError) -> Self {
        AppError::Session(e.to_string())
    }
}

/// What a page shows for an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorView {
    pub status: StatusCode,
    /// Stable code for tests and support (`data-error`).
    pub code: String,
    pub title: &'static str,
    pub message: &'static str,
    /// A primary action: (label, href).
    pub action: Option<(&'static str, String)>,
}

impl AppError {
    /// The page's content; also decides the status.
    pub fn view(&self) -> ErrorView {
        let home = || Some(("처음으로", "/".to_owned()));
        let retry = || Some(("다시 로그인하기", "/kakao/login/".to_owned()));
        let v = |status, code: &str, title, message, action| ErrorView {
            status,
            code: code.to_owned(),
            title,
            message,
            action,
        };
        match self {
            AppError::NotFound => v(
                StatusCode::NOT_FOUND,
                "not_found",
                "페이지를 찾을 수 없습니다",
                "주소가 바뀌었거나 없는 페이지입니다.",
                home(),
            ),
            AppError::LoginRequired { next } => v(
                StatusCode::UNAUTHORIZED,
                "login_required",
                "로그인이 필요합니다",
                "카카오 로그인 후 이용할 수 있습니다.",
                Some(("로그인하기", format!("/?next={}", urlencode(next)))),
            ),
            AppError::Csrf => v(
                StatusCode::FORBIDDEN,
                "csrf_invalid",
                "요청을 확인할 수 없습니다",
                "보안 토큰이 없거나 맞지 않습니다. 페이지를 새로 고친 뒤 다시 시도하세요.",
                home(),
            ),
            AppError::State(problem) => {
                let (code, message) = match problem {
                    StateProblem::Missing => (
                        "state_missing",
                        "로그인 요청에 state 값이 없습니다. 처음부터 다시 로그인하세요.",
                    ),
                    StateProblem::Mismatch => (
                        "state_mismatch",
                        "이 브라우저에서 시작한 로그인 요청이 아닙니다. 처음부터 다시 로그인하세요.",
                    ),
                    StateProblem::Expired => (
                        "state_expired",
                        "로그인 요청이 만료되었습니다. 처음부터 다시 로그인하세요.",
                    ),
                    StateProblem::Replayed => (
                        "state_replayed",
                        "이미 처리된 로그인 요청입니다. 처음부터 다시 로그인하세요.",
                    ),
                };
                v(
                    StatusCode::BAD_REQUEST,
                    code,
                    "로그인 요청이 올바르지 않습니다",
                    message,
                    retry(),
                )
            }
            AppError::BadRequest(_) => v(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "잘못된 요청입니다",
                "요청을 처리할 수 없습니다. 주소나 입력값을 확인하세요.",
                home(),
            ),
            AppError::KakaoCancelled => v(
                StatusCode::OK,
                "cancelled",
                "로그인을 취소했습니다",
                "카카오 로그인 화면에서 취소하셨습니다. 언제든 다시 로그인할 수 있습니다.",
                retry(),
            ),
            AppError::KakaoRedirectError(_) => v(
                StatusCode::BAD_GATEWAY,
                "kakao_unavailable",
                "카카오 로그인을 완료하지 못했습니다",
                "카카오에서 오류를 알려 왔습니다. 잠시 후 다시 시도하세요.",
                Some(("다시 시도", "/kakao/login/".to_owned())),
            ),
            AppError::EmailRequired { next } => v(
                StatusCode::FORBIDDEN,
                "email_required",
                "이메일 제공 동의가 필요합니다",
                "이 서비스는 카카오계정 이메일로 회원을 확인합니다. 이메일 제공에 동의해야 로그인할 수 있습니다.",
                Some((
                    "이메일 제공 동의하고 다시 로그인",
                    match next {
                        Some(n) => {
                            format!("/kakao/login/?scope=account_email&next={}", urlencode(n))
                        }
                        None => "/kakao/login/?scope=account_email".to_owned(),
                    },
                )),
            ),
            AppError::EmailUnverified => v(
                StatusCode::FORBIDDEN,
                "email_unverified",
                "인증된 이메일이 필요합니다",
                "카카오계정의 이메일이 인증되지 않았습니다. 카카오계정에서 이메일 인증을 마친 뒤 다시 로그인하세요.",
                retry(),
            ),
            AppError::EmailInvalid => v(
                StatusCode::FORBIDDEN,
                "email_invalid",
                "사용할 수 없는 이메일입니다",
                "카카오계정의 이메일이 유효하지 않습니다. 카카오계정의 이메일을 확인한 뒤 다시 로그인하세요.",
                retry(),
            ),
            AppError::EmailInUse => v(
                StatusCode::CONFLICT,
                "email_in_use",
                "이미 다른 카카오계정과 연결된 이메일입니다",
                "이 이메일의 회원은 다른 카카오계정으로 가입되어 있습니다. 원래 카카오계정으로 로그인하세요.",
                home(),
            ),
            AppError::Inactive => v(
                StatusCode::FORBIDDEN,
                "account_inactive",
                "비활성화된 계정입니다",
                "이 계정은 사용이 중지되었습니다. 관리자에게 문의하세요.",
                home(),
            ),
            AppError::Forbidden => v(
                StatusCode::FORBIDDEN,
                "forbidden",
                "권한이 없습니다",
                "이 페이지나 작업은 권한이 있는 관리자만 이용할 수 있습니다.",
                home(),
            ),
            AppError::LastSuperuser => v(
                StatusCode::CONFLICT,
                "last_superuser",
                "마지막 최고 관리자입니다",
                "활성 최고 관리자가 한 명뿐이라 권한 해제, 비활성화, 삭제를 할 수 없습니다. 다른 최고 관리자를 먼저 지정하세요.",
                Some(("회원 목록으로", "/admin/users/".to_owned())),
            ),
            AppError::TooManyAttempts { .. } => v(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "시도 횟수가 너무 많습니다",
                "잠시 후 다시 시도하세요.",
                None,
            ),
            AppError::Kakao(e) => kakao_view(e),
            AppError::Db(DbError::Unavailable(_)) | AppError::Session(_) => v(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "일시적으로 이용할 수 없습니다",
                "서비스가 잠시 응답하지 않습니다. 잠시 후 다시 시도하세요.",
                home(),
            ),
            AppError::Db(DbError::Query(_)) | AppError::Internal(_) => v(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "문제가 발생했습니다",
                "요청을 처리하지 못했습니다. 잠시 후 다시 시도하세요.",
                home(),
            ),
        }
    }

    /// Log the cause once, at a level that fits.
    pub fn log(&self) {
        match self {
            AppError::Db(_) | AppError::Internal(_) | AppError::Session(_) => {
                log::error!("event=request.failed error=\"{self}\"")
            }
            AppError::Kakao(e) => {
                log::warn!("event=kakao.failed code={} error=\"{e}\"", e.log_code())
            }
            _ => {}
        }
    }
}

fn kakao_view(e: &KakaoError) -> ErrorView {
    let retry = Some(("다시 시도", "/kakao/login/".to_owned()));
    if e.is_timeout() {
        return ErrorView {
            status: StatusCode::GATEWAY_TIMEOUT,
            code: "kakao_timeout".into(),
            title: "카카오가 응답하지 않습니다",
            message: "카카오 서버의 응답이 늦어지고 있습니다. 잠시 후 다시 시도하세요.",
            action: retry,
        };
    }
    if e.is_misconfiguration() {
        return ErrorView {
            status: StatusCode::BAD_GATEWAY,
            code: "kakao_misconfigured".into(),
            title: "카카오 로그인 설정에 문제가 있습니다",
            message: "서비스의 카카오 앱 설정이 올바르지 않습니다. 관리자에게 문의하세요.",
            action: None,
        };
    }
    match e.class() {
        ErrorClass::Temporary => ErrorView {
            status: StatusCode::BAD_GATEWAY,
            code: "kakao_unavailable".into(),
            title: "카카오에 연결할 수 없습니다",
            message: "카카오 서버가 일시적으로 응답하지 않습니다. 잠시 후 다시 시도하세요.",
            action: retry,
        },
        _ => ErrorView {
            status: StatusCode::BAD_REQUEST,
            code: "kakao_rejected".into(),
            title: "로그인을 완료하지 못했습니다",
            message: "카카오가 로그인 요청을 거절했습니다(만료되었거나 이미 사용된 요청). 처음부터 다시 로그인하세요.",
            action: Some(("다시 로그인하기", "/kakao/login/".to_owned())),
        },
    }
}

/// Percent-encode a query value.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.view().status
    }

    /// A plain answer; page scopes replace it with the full HTML page (see `web::render_errors`).
    fn error_response(&self) -> HttpResponse {
        let view = self.view();
        let mut res = HttpResponse::build(view.status);
        if let AppError::LoginRequired { next } = self {
            res.status(StatusCode::SEE_OTHER);
            res.insert_header((
                actix_web::http::header::LOCATION,
                format!("/?next={}", urlencode(next)),
            ));
        }
        res.content_type("text/plain; charset=utf-8")
            .body(format!("{}: {}", view.code, view.message))
    }
}
