//! The HTTP layer's one error vocabulary, [`AppError`], and its two faces.
//!
//! Which error type is used where:
//! - `db::DbError`: a database call failed, classified once (not found, unique violation,
//!   unavailable: pool timeout or connection lost, busy, anything else).
//! - `users::changes::ChangeError`: the change service refused a change.
//! - `auth::login::LoginError`: a sign-in did not happen (it carries what
//!   `users::signin::SignInError` said).
//! - `auth::bearer::TokenError`: a Kakao access token was not accepted.
//! - `kakao::KakaoError`: a call to Kakao failed.
//! - `AppError` (here): what every handler and extractor answers with. Each error above
//!   becomes an `AppError` in exactly one `From` impl below, and each `AppError` has one
//!   status and one code (`code()`), shown on both faces:
//!   - JSON, for `/api/`: `{"error": code, ...}` (`ResponseError::error_response`); field
//!     errors are a DRF-style field map;
//!   - HTML, for pages: the error page, with the code in `data-error` (`AppError::page`,
//!     applied to every page answer by `web::render_errors`).
//!
//! The faces differ in one place only: an anonymous visitor of a page is sent to the login
//! page (303 with `next`), where the API answers 401 with `WWW-Authenticate`.
//!
//! One code, two statuses: `kakao_unavailable` is 502 when Kakao failed a person's sign-in in
//! the browser (`Kakao`, `KakaoRedirect`: the upstream failed; the page offers a retry) and
//! 503 with `Retry-After` when Kakao could not judge an API caller's token
//! (`KakaoUnavailable`: API clients retry a 503 by themselves).

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::auth::bearer::TokenError;
use crate::auth::login::{EmailProblem, LoginError, PromptAnswer, StateProblem};
use crate::auth::ratelimit::Refused;
use crate::db::DbError;
use crate::kakao::{ErrorClass, KakaoError};
use crate::users::changes::ChangeError;
use crate::users::manager::{EMAIL_TAKEN, FieldErrors};

/// Everything a request can end with other than success, named by what happened.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    /// The request itself is unusable; `code` says how (`bad_request`, `bad_query`, ...).
    #[error("bad request ({code}): {detail}")]
    BadRequest { code: &'static str, detail: String },
    /// Fields that fail their rules (forms re-render these in place where they can).
    #[error("invalid fields: {0}")]
    Invalid(FieldErrors),
    #[error("body too large")]
    TooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("CSRF token missing or wrong")]
    Csrf,
    /// Not signed in: pages go to the login page with `next`; the API answers 401.
    #[error("sign-in required")]
    LoginRequired { next: String },
    /// Signed in, but the permission policy says no.
    #[error("permission denied: {0}")]
    Forbidden(String),
    #[error("too many attempts; retry after {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("bad login state: {0:?}")]
    State(StateProblem),
    /// The person pressed cancel at Kakao.
    #[error("login cancelled at Kakao")]
    Cancelled,
    /// Kakao redirected back with an error other than a cancel.
    #[error("Kakao returned error {0}")]
    KakaoRedirect(String),
    /// Kakao's answer to a login without its pages (`prompt=none`).
    #[error("Kakao answered {0:?}")]
    Prompt(PromptAnswer),
    /// The web login's ID token failed a check.
    #[error("ID token refused")]
    IdTokenInvalid,
    /// The return from Kakao's account logout carried a state this browser does not hold.
    #[error("bad logout state: {0:?}")]
    LogoutState(StateProblem),
    #[error(transparent)]
    Kakao(KakaoError),
    #[error("invalid token")]
    InvalidToken,
    #[error("token issued to another app")]
    OtherApp,
    #[error("malformed token")]
    MalformedToken,
    /// Kakao could not judge a token just now: not the caller's fault, try again.
    #[error("Kakao temporarily unavailable")]
    KakaoUnavailable,
    #[error("no account for this Kakao user")]
    NotRegistered,
    /// Kakao's email cannot be used; `next` is kept for asking Kakao again.
    #[error("email {problem:?}")]
    Email {
        problem: EmailProblem,
        next: Option<String>,
    },
    #[error("email already linked to another Kakao account")]
    EmailLinkedElsewhere,
    #[error("a user with this email already exists")]
    DuplicateEmail,
    #[error("account inactive")]
    Inactive,
    /// Kakao says the Kakao account is disabled (its account status webhook).
    #[error("Kakao account disabled at Kakao")]
    KakaoDisabled,
    #[error("the last active superuser cannot be demoted, deactivated or deleted")]
    LastSuperuser,
    /// Break-glass sign-in: wrong email or password (pages re-render the form).
    #[error("wrong email or password")]
    WrongPassword,
    /// A store we need (the database, the session store) cannot serve us right now.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl AppError {
    pub fn bad_request(detail: impl Into<String>) -> AppError {
        AppError::BadRequest {
            code: "bad_request",
            detail: detail.into(),
        }
    }

    /// The status, the same on both faces (but see `LoginRequired` on pages).
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest { .. }
            | AppError::Invalid(_)
            | AppError::State(_)
            | AppError::LogoutState(_)
            | AppError::IdTokenInvalid
            | AppError::MalformedToken => StatusCode::BAD_REQUEST,
            AppError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::LoginRequired { .. }
            | AppError::InvalidToken
            | AppError::OtherApp
            | AppError::WrongPassword => StatusCode::UNAUTHORIZED,
            AppError::Csrf
            | AppError::Forbidden(_)
            | AppError::NotRegistered
            | AppError::Email { .. }
            | AppError::KakaoDisabled
            | AppError::Inactive => StatusCode::FORBIDDEN,
            AppError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Cancelled | AppError::Prompt(_) => StatusCode::OK,
            AppError::KakaoRedirect(_) => StatusCode::BAD_GATEWAY,
            AppError::Kakao(e) => kakao_status(e).0,
            AppError::EmailLinkedElsewhere | AppError::DuplicateEmail | AppError::LastSuperuser => {
                StatusCode::CONFLICT
            }
            AppError::KakaoUnavailable | AppError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code: `error` in the JSON body, `data-error` on the page.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::NotFound => "not_found",
            AppError::BadRequest { code, .. } => code,
            AppError::Invalid(_) => "invalid",
            AppError::TooLarge => "payload_too_large",
            AppError::UnsupportedMediaType => "unsupported_media_type",
            AppError::Csrf => "csrf_invalid",
            AppError::LoginRequired { .. } => "not_authenticated",
            AppError::Forbidden(_) => "permission_denied",
            AppError::TooManyAttempts { .. } => "rate_limited",
            AppError::State(StateProblem::Missing) => "state_missing",
            AppError::State(StateProblem::Mismatch) => "state_mismatch",
            AppError::State(StateProblem::Expired) => "state_expired",
            AppError::State(StateProblem::Replayed) => "state_replayed",
            AppError::Cancelled => "cancelled",
            AppError::Prompt(PromptAnswer::LoginRequired) => "login_required",
            AppError::Prompt(PromptAnswer::ConsentRequired) => "consent_required",
            AppError::Prompt(PromptAnswer::InteractionRequired) => "interaction_required",
            AppError::IdTokenInvalid => "id_token_invalid",
            AppError::LogoutState(_) => "logout_state_invalid",
            AppError::KakaoRedirect(_) | AppError::KakaoUnavailable => "kakao_unavailable",
            AppError::Kakao(e) => kakao_status(e).1,
            AppError::InvalidToken => "invalid_token",
            AppError::OtherApp => "app_id_mismatch",
            AppError::MalformedToken => "malformed_token",
            AppError::NotRegistered => "not_registered",
            AppError::Email {
                problem: EmailProblem::Missing,
                ..
            } => "email_required",
            AppError::Email {
                problem: EmailProblem::Unverified,
                ..
            } => "email_unverified",
            AppError::Email {
                problem: EmailProblem::Invalid,
                ..
            } => "email_invalid",
            AppError::EmailLinkedElsewhere | AppError::DuplicateEmail => "email_in_use",
            AppError::Inactive => "account_inactive",
            AppError::KakaoDisabled => "kakao_account_disabled",
            AppError::LastSuperuser => "last_superuser",
            AppError::WrongPassword => "invalid_credentials",
            AppError::Unavailable(_) => "service_unavailable",
            AppError::Internal(_) => "internal",
        }
    }

    /// Log the cause once, at a level that fits: faults of ours or of a store as errors,
    /// Kakao's as warnings, the caller's own mistakes not at all.
    pub fn log(&self) {
        match self {
            AppError::Unavailable(_) | AppError::Internal(_) => {
                log::error!("event=request.failed code={} error=\"{self}\"", self.code())
            }
            AppError::Kakao(e) => match e.koe() {
                Some(koe) if koe.misconfigured => log::error!(
                    "event=kakao.misconfigured code={} fix=\"{}\" error=\"{e}\"",
                    koe.code,
                    koe.operator
                ),
                Some(koe) => log::warn!(
                    "event=kakao.failed code={} meaning=\"{}\" error=\"{e}\"",
                    koe.code,
                    koe.operator
                ),
                None => log::warn!("event=kakao.failed code={} error=\"{e}\"", e.log_code()),
            },
            _ => {}
        }
    }

    /// Seconds to wait before trying again, when there is a point in it.
    fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::TooManyAttempts { retry_after_secs } => Some(*retry_after_secs),
            AppError::KakaoUnavailable | AppError::Unavailable(_) => Some(5),
            _ => None,
        }
    }

    /// The headers both faces carry: `Retry-After`, and the bearer challenges.
    pub fn headers(&self) -> Vec<(header::HeaderName, String)> {
        let mut headers = Vec::new();
        if let Some(secs) = self.retry_after() {
            headers.push((header::RETRY_AFTER, secs.to_string()));
        }
        match self {
            AppError::InvalidToken | AppError::OtherApp => headers.push((
                header::WWW_AUTHENTICATE,
                "Bearer error=\"invalid_token\"".to_owned(),
            )),
            AppError::LoginRequired { .. } => {
                headers.push((header::WWW_AUTHENTICATE, "Bearer realm=\"api\"".to_owned()))
            }
            _ => {}
        }
        headers
    }

    /// The JSON face's body.
    pub fn json_body(&self) -> serde_json::Value {
        match self {
            AppError::Invalid(fields) => json!(fields.0),
            AppError::Forbidden(detail) | AppError::BadRequest { detail, .. } => {
                json!({"error": self.code(), "detail": detail})
            }
            AppError::DuplicateEmail | AppError::EmailLinkedElsewhere => json!({
                "error": self.code(),
                "detail": self.to_string(),
                "email": [EMAIL_TAKEN],
            }),
            AppError::LastSuperuser => json!({"error": self.code(), "detail": self.to_string()}),
            AppError::KakaoUnavailable | AppError::Unavailable(_) => json!({
                "error": self.code(),
                "temporary": true,
                "detail": "temporarily unavailable; try again shortly",
            }),
            _ => json!({"error": self.code()}),
        }
    }

    /// The HTML face's content (status, code, Korean copy, a next step).
    pub fn page(&self) -> ErrorView {
        let home = || Some(("처음으로", "/".to_owned()));
        let retry = || Some(("다시 로그인하기", "/kakao/login/".to_owned()));
        let (title, message, action): (&'static str, &'static str, _) = match self {
            AppError::NotFound => (
                "페이지를 찾을 수 없습니다",
                "주소가 바뀌었거나 없는 페이지입니다.",
                home(),
            ),
            AppError::BadRequest { .. } | AppError::Invalid(_) => (
                "잘못된 요청입니다",
                "요청을 처리할 수 없습니다. 주소나 입력값을 확인하세요.",
                home(),
            ),
            AppError::TooLarge | AppError::UnsupportedMediaType => (
                "잘못된 요청입니다",
                "보낸 내용이 너무 크거나 형식이 맞지 않습니다.",
                home(),
            ),
            AppError::Csrf => (
                "요청을 확인할 수 없습니다",
                "보안 토큰이 없거나 맞지 않습니다. 페이지를 새로 고친 뒤 다시 시도하세요.",
                home(),
            ),
            AppError::LoginRequired { next } => (
                "로그인이 필요합니다",
                "카카오 로그인 후 이용할 수 있습니다.",
                Some(("로그인하기", login_href(next))),
            ),
            AppError::Forbidden(_) => (
                "권한이 없습니다",
                "이 페이지나 작업은 권한이 있는 관리자만 이용할 수 있습니다.",
                home(),
            ),
            AppError::TooManyAttempts { .. } => (
                "시도 횟수가 너무 많습니다",
                "잠시 후 다시 시도하세요.",
                None,
            ),
            AppError::State(problem) => (
                "로그인 요청이 올바르지 않습니다",
                match problem {
                    StateProblem::Missing => {
                        "로그인 요청에 state 값이 없습니다. 처음부터 다시 로그인하세요."
                    }
                    StateProblem::Mismatch => {
                        "이 브라우저에서 시작한 로그인 요청이 아닙니다. 처음부터 다시 로그인하세요."
                    }
                    StateProblem::Expired => {
                        "로그인 요청이 만료되었습니다. 처음부터 다시 로그인하세요."
                    }
                    StateProblem::Replayed => {
                        "이미 처리된 로그인 요청입니다. 처음부터 다시 로그인하세요."
                    }
                },
                retry(),
            ),
            AppError::Cancelled => (
                "로그인을 취소했습니다",
                "카카오 로그인 화면에서 취소하셨습니다. 언제든 다시 로그인할 수 있습니다.",
                retry(),
            ),
            AppError::KakaoRedirect(_) => (
                "카카오 로그인을 완료하지 못했습니다",
                "카카오에서 오류를 알려 왔습니다. 잠시 후 다시 시도하세요.",
                Some(("다시 시도", "/kakao/login/".to_owned())),
            ),
            AppError::Prompt(PromptAnswer::LoginRequired) => (
                "카카오계정에 로그인되어 있지 않습니다",
                "이 브라우저에서 카카오계정에 로그인되어 있지 않아 바로 로그인할 수 없었습니다. 카카오 로그인 화면에서 로그인하세요.",
                Some(("카카오 로그인", "/kakao/login/".to_owned())),
            ),
            AppError::Prompt(PromptAnswer::ConsentRequired) => (
                "동의가 필요합니다",
                "이 서비스를 처음 이용하거나 동의하지 않은 항목이 있어 바로 로그인할 수 없었습니다. 동의 화면에서 확인한 뒤 로그인하세요.",
                Some(("동의하고 로그인", "/kakao/login/".to_owned())),
            ),
            AppError::Prompt(PromptAnswer::InteractionRequired) => (
                "카카오에서 확인이 필요합니다",
                "카카오가 로그인 전에 확인할 내용이 있다고 알려 왔습니다. 카카오 로그인 화면에서 이어서 진행하세요.",
                Some(("카카오 로그인", "/kakao/login/".to_owned())),
            ),
            AppError::IdTokenInvalid => (
                "로그인 정보를 확인할 수 없습니다",
                "카카오에서 받은 로그인 정보(ID 토큰)가 검증을 통과하지 못해 로그인하지 않았습니다. 처음부터 다시 로그인하세요.",
                retry(),
            ),
            AppError::LogoutState(_) => (
                "로그아웃 요청이 올바르지 않습니다",
                "이 브라우저에서 시작한 로그아웃이 아니거나, 이미 처리되었거나 만료된 요청입니다. 아무것도 바뀌지 않았습니다.",
                home(),
            ),
            AppError::Kakao(e) => kakao_page(e),
            AppError::InvalidToken
            | AppError::OtherApp
            | AppError::MalformedToken
            | AppError::NotRegistered => (
                "카카오 토큰을 쓸 수 없습니다",
                "카카오 로그인 정보가 올바르지 않거나 만료되었습니다. 다시 로그인하세요.",
                retry(),
            ),
            AppError::KakaoUnavailable => (
                "카카오에 연결할 수 없습니다",
                "카카오 서버가 일시적으로 응답하지 않습니다. 잠시 후 다시 시도하세요.",
                retry(),
            ),
            AppError::Email {
                problem: EmailProblem::Missing,
                next,
            } => (
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
            AppError::Email {
                problem: EmailProblem::Unverified,
                ..
            } => (
                "인증된 이메일이 필요합니다",
                "카카오계정의 이메일이 인증되지 않았습니다. 카카오계정에서 이메일 인증을 마친 뒤 다시 로그인하세요.",
                retry(),
            ),
            AppError::Email {
                problem: EmailProblem::Invalid,
                ..
            } => (
                "사용할 수 없는 이메일입니다",
                "카카오계정의 이메일이 유효하지 않습니다. 카카오계정의 이메일을 확인한 뒤 다시 로그인하세요.",
                retry(),
            ),
            AppError::EmailLinkedElsewhere => (
                "이미 다른 카카오계정과 연결된 이메일입니다",
                "이 이메일의 회원은 다른 카카오계정으로 가입되어 있습니다. 원래 카카오계정으로 로그인하세요.",
                home(),
            ),
            AppError::DuplicateEmail => ("이미 사용 중인 이메일입니다", EMAIL_TAKEN, home()),
            AppError::Inactive => (
                "비활성화된 계정입니다",
                "이 계정은 사용이 중지되었습니다. 관리자에게 문의하세요.",
                home(),
            ),
            AppError::KakaoDisabled => (
                "카카오계정이 정지되어 있습니다",
                "카카오가 이 카카오계정을 정지했다고 알려 와 로그인할 수 없습니다. 카카오에서 정지가 풀리면 다시 로그인할 수 있습니다.",
                home(),
            ),
            AppError::LastSuperuser => (
                "마지막 최고 관리자입니다",
                "활성 최고 관리자가 한 명뿐이라 권한 해제, 비활성화, 삭제를 할 수 없습니다. 다른 최고 관리자를 먼저 지정하세요.",
                Some(("회원 목록으로", "/admin/users/".to_owned())),
            ),
            AppError::WrongPassword => (
                "로그인하지 못했습니다",
                "이메일이나 비밀번호가 맞지 않습니다.",
                Some(("다시 시도", "/admin/login/".to_owned())),
            ),
            AppError::Unavailable(_) => (
                "일시적으로 이용할 수 없습니다",
                "서비스가 잠시 응답하지 않습니다. 잠시 후 다시 시도하세요.",
                home(),
            ),
            AppError::Internal(_) => (
                "문제가 발생했습니다",
                "요청을 처리하지 못했습니다. 잠시 후 다시 시도하세요.",
                home(),
            ),
        };
        ErrorView {
            status: self.status(),
            code: self.code(),
            title,
            message,
            action,
        }
    }
}

/// What the error page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorView {
    pub status: StatusCode,
    /// Stable code for tests and support (`data-error`).
    pub code: &'static str,
    pub title: &'static str,
    pub message: &'static str,
    /// A primary action: (label, href).
    pub action: Option<(&'static str, String)>,
}

/// The login page, coming back to `next` afterwards.
pub fn login_href(next: &str) -> String {
    format!("/?next={}", urlencode(next))
}

/// Percent-encode a query value.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A failed call to Kakao: a timeout is 504, our own credentials refused or a temporary
/// failure at Kakao 502 (the upstream failed), and a refusal of the request 400.
fn kakao_status(e: &KakaoError) -> (StatusCode, &'static str) {
    if e.is_timeout() {
        (StatusCode::GATEWAY_TIMEOUT, "kakao_timeout")
    } else if e.is_misconfiguration() {
        (StatusCode::BAD_GATEWAY, "kakao_misconfigured")
    } else if e.class() == ErrorClass::Temporary {
        (StatusCode::BAD_GATEWAY, "kakao_unavailable")
    } else {
        (StatusCode::BAD_REQUEST, "kakao_rejected")
    }
}

type PageCopy = (&'static str, &'static str, Option<(&'static str, String)>);

fn kakao_page(e: &KakaoError) -> PageCopy {
    let retry = Some(("다시 시도", "/kakao/login/".to_owned()));
    if let Some(koe) = e.koe() {
        let title = if koe.misconfigured {
            "카카오 로그인 설정에 문제가 있습니다"
        } else {
            "로그인을 완료하지 못했습니다"
        };
        return (
            title,
            koe.person,
            (!koe.misconfigured).then_some(retry).flatten(),
        );
    }
    match kakao_status(e).1 {
        "kakao_timeout" => (
            "카카오가 응답하지 않습니다",
            "카카오 서버의 응답이 늦어지고 있습니다. 잠시 후 다시 시도하세요.",
            retry,
        ),
        "kakao_misconfigured" => (
            "카카오 로그인 설정에 문제가 있습니다",
            "서비스의 카카오 앱 설정이 올바르지 않습니다. 관리자에게 문의하세요.",
            None,
        ),
        "kakao_unavailable" => (
            "카카오에 연결할 수 없습니다",
            "카카오 서버가 일시적으로 응답하지 않습니다. 잠시 후 다시 시도하세요.",
            retry,
        ),
        _ => (
            "로그인을 완료하지 못했습니다",
            "카카오가 로그인 요청을 거절했습니다(만료되었거나 이미 사용된 요청). 처음부터 다시 로그인하세요.",
            Some(("다시 로그인하기", "/kakao/login/".to_owned())),
        ),
    }
}

/// The JSON face. Pages replace it with the HTML face in `web::render_errors`.
impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status());
        res.insert_header((header::CACHE_CONTROL, "no-store"));
        for header in self.headers() {
            res.insert_header(header);
        }
        res.json(self.json_body())
    }
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound => AppError::NotFound,
            e @ DbError::Unique(_) if e.is_email_taken() => AppError::DuplicateEmail,
            // Another key's race that outlasted its retries: nothing the caller did wrong.
            DbError::Unique(key) => AppError::Unavailable(format!("conflict on {key}")),
            DbError::Unavailable(m) | DbError::Busy(m) | DbError::CommitUnknown(m) => {
                AppError::Unavailable(m)
            }
            DbError::Query(q) => AppError::Internal(q.to_string()),
        }
    }
}

impl From<ChangeError> for AppError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::NotFound => AppError::NotFound,
            ChangeError::Forbidden(why) => AppError::Forbidden(why),
            ChangeError::Invalid(fields) => AppError::Invalid(fields),
            ChangeError::DuplicateEmail => AppError::DuplicateEmail,
            ChangeError::LastSuperuser => AppError::LastSuperuser,
            ChangeError::Db(e) => AppError::from(e),
        }
    }
}

impl From<TokenError> for AppError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Temporary => AppError::KakaoUnavailable,
            TokenError::Malformed => AppError::MalformedToken,
            TokenError::Invalid => AppError::InvalidToken,
            TokenError::OtherApp => AppError::OtherApp,
            TokenError::NotRegistered => AppError::NotRegistered,
            TokenError::Inactive => AppError::Inactive,
            TokenError::Limited(refused) => AppError::from(refused),
            TokenError::Db(e) => AppError::from(e),
        }
    }
}

impl From<LoginError> for AppError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::State(p) => AppError::State(p),
            LoginError::Cancelled => AppError::Cancelled,
            LoginError::KakaoRedirect(code) => AppError::KakaoRedirect(code),
            LoginError::CodeMissing => AppError::bad_request("code missing"),
            LoginError::Prompt(answer) => AppError::Prompt(answer),
            LoginError::IdToken(_) => AppError::IdTokenInvalid,
            LoginError::LogoutState(p) => AppError::LogoutState(p),
            LoginError::Kakao(e) => AppError::Kakao(e),
            LoginError::Token(e) => AppError::from(e),
            LoginError::Email { problem, next } => AppError::Email { problem, next },
            LoginError::EmailLinkedElsewhere => AppError::EmailLinkedElsewhere,
            LoginError::Inactive => AppError::Inactive,
            LoginError::KakaoDisabled => AppError::KakaoDisabled,
            LoginError::WrongPassword => AppError::WrongPassword,
            LoginError::Limited(refused) => AppError::from(refused),
            // The account vanished between the sign-in's reads (deleted meanwhile): try again.
            LoginError::Db(DbError::NotFound) => {
                AppError::Unavailable("the account changed during sign-in".to_owned())
            }
            LoginError::Db(e) => AppError::from(e),
            LoginError::Session(m) => AppError::Unavailable(format!("session store: {m}")),
        }
    }
}

impl From<Refused> for AppError {
    fn from(e: Refused) -> Self {
        match e {
            Refused::Limited(wait) => AppError::TooManyAttempts {
                // Rounded up: retrying at the floor would be refused again.
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            },
            Refused::Unavailable(why) => AppError::Unavailable(why),
        }
    }
}

impl From<KakaoError> for AppError {
    fn from(e: KakaoError) -> Self {
        AppError::Kakao(e)
    }
}

impl From<FieldErrors> for AppError {
    fn from(e: FieldErrors) -> Self {
        AppError::Invalid(e)
    }
}

impl From<actix_session::SessionInsertError> for AppError {
    fn from(e: actix_session::SessionInsertError) -> Self {
        AppError::Unavailable(format!("session store: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every error of the core lands on a defined status: nothing a page could raise turns
    /// into a 500 on the API, because there is one mapping for both.
    #[test]
    fn core_errors_map_to_their_own_status_not_500() {
        let cases: Vec<(AppError, u16, &str)> = vec![
            (ChangeError::NotFound.into(), 404, "not_found"),
            (
                ChangeError::Forbidden("x".into()).into(),
                403,
                "permission_denied",
            ),
            (ChangeError::DuplicateEmail.into(), 409, "email_in_use"),
            (ChangeError::LastSuperuser.into(), 409, "last_superuser"),
            (
                ChangeError::Invalid(FieldErrors::single("age", "x")).into(),
                400,
                "invalid",
            ),
            (
                DbError::Unavailable("gone".into()).into(),
                503,
                "service_unavailable",
            ),
            (
                DbError::Busy("locked".into()).into(),
                503,
                "service_unavailable",
            ),
            (DbError::NotFound.into(), 404, "not_found"),
            (TokenError::Temporary.into(), 503, "kakao_unavailable"),
            (TokenError::Inactive.into(), 403, "account_inactive"),
            (
                LoginError::State(StateProblem::Replayed).into(),
                400,
                "state_replayed",
            ),
            (LoginError::Cancelled.into(), 200, "cancelled"),
            (
                LoginError::Session("redis".into()).into(),
                503,
                "service_unavailable",
            ),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.code(), code, "{error:?}");
            assert_eq!(error.page().code, code, "both faces show the same code");
            let res = error.error_response();
            assert_eq!(res.status().as_u16(), status);
        }
    }

    #[test]
    fn temporary_answers_say_when_to_try_again() {
        let headers = AppError::Unavailable("x".into()).headers();
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == header::RETRY_AFTER && v == "5")
        );
        let limited = AppError::TooManyAttempts {
            retry_after_secs: 42,
        };
        assert!(limited.headers().iter().any(|(_, v)| v == "42"));
        let body = AppError::Invalid(FieldErrors::single("age", "bad")).json_body();
        assert_eq!(body, json!({"age": ["bad"]}));
    }
}
