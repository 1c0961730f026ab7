//! The Kakao login flow's pages: start (redirect to Kakao), callback, sign-out (here only, or
//! of the Kakao account too) and the return from Kakao's account logout. Each parses its input
//! and calls one use case of `auth::login`.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::extract::{Csrf, Form, MaybeUser, client_address, user_agent};
use super::{AppError, Layout, render, see_other};
use crate::auth::login::{self, Callback, LoginScopes, LoginStart, Prompt};
use crate::auth::{AppSession, safe_next};
use crate::kakao::KakaoClient;
use crate::state::AppState;

/// Longest `code` or `state` accepted on the callback (Kakao's are well under this).
const MAX_PARAM_LEN: usize = 2048;
/// Longest `login_hint` passed on (an email or a phone number).
const MAX_LOGIN_HINT_LEN: usize = 256;

#[derive(Deserialize)]
pub struct StartQuery {
    next: Option<String>,
    scope: Option<String>,
    prompt: Option<String>,
    login_hint: Option<String>,
}

/// `GET /kakao/login/`: remember where to go after, then send the person to Kakao.
pub async fn start_kakao_login(
    req: HttpRequest,
    state: web::Data<AppState>,
    kakao: web::Data<KakaoClient>,
    session: Session,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, AppError> {
    let next = query.next.as_deref().and_then(|raw| {
        let safe = safe_next(raw);
        if safe.is_none() {
            log::warn!("event=auth.next.rejected");
        }
        safe
    });
    // Asking again after the email was declined: only that item, as Kakao's additional consent.
    let scopes = match query.scope.as_deref() {
        None => LoginScopes::SignIn,
        Some("account_email") => LoginScopes::EmailAgain,
        Some(_) => return Err(AppError::bad_request("unknown scope")),
    };
    let prompt = match query.prompt.as_deref() {
        None => None,
        Some(value) => Some(Prompt::parse(value).ok_or_else(|| AppError::BadRequest {
            code: "unknown_prompt",
            detail: "prompt must be login, select_account, create or none".into(),
        })?),
    };
    let login_hint = query.login_hint.clone().filter(|h| !h.is_empty());
    if login_hint
        .as_ref()
        .is_some_and(|h| h.len() > MAX_LOGIN_HINT_LEN)
    {
        return Err(AppError::bad_request("login_hint is too long"));
    }
    let url = login::start_kakao_login(
        &state,
        &kakao,
        &AppSession(session),
        &client_address(&req),
        LoginStart {
            next,
            scopes,
            prompt,
            login_hint,
        },
    )
    .await?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, url))
        .finish())
}

/// `GET /kakao/login/callback/`.
pub async fn finish_kakao_login(
    req: HttpRequest,
    state: web::Data<AppState>,
    kakao: web::Data<KakaoClient>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let callback = parse_callback_query(req.query_string())?;
    let signed_in = login::finish_kakao_login(
        &state,
        &kakao,
        &AppSession(session),
        user_agent(&req),
        callback,
    )
    .await?;
    let next = signed_in.next.unwrap_or_else(|| "/profile/".to_owned());
    let mut res = see_other(&next);
    res.headers_mut().insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    Ok(res)
}

/// Parsed by hand so that repeated parameters are refused rather than one picked.
fn parse_callback_query(raw: &str) -> Result<Callback, AppError> {
    let mut query = Callback::default();
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        let slot = match key.as_ref() {
            "code" => &mut query.code,
            "state" => &mut query.state,
            "error" => &mut query.error,
            _ => continue,
        };
        if slot.is_some() {
            return Err(AppError::bad_request(format!("repeated parameter {key}")));
        }
        if value.len() > MAX_PARAM_LEN || value.chars().any(char::is_control) {
            return Err(AppError::bad_request(format!("unusable parameter {key}")));
        }
        *slot = Some(value.into_owned());
    }
    Ok(query)
}

#[derive(Template)]
#[template(path = "pages/logout.html")]
struct LogoutPage {
    layout: Layout,
    csrf_token: String,
}

/// `GET /kakao/logout/`: a confirmation form (signing out is never a GET).
pub async fn confirm_logout(
    state: web::Data<AppState>,
    user: MaybeUser,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let Some(user) = user.0 else {
        return Ok(see_other("/"));
    };
    render(
        StatusCode::OK,
        &LogoutPage {
            layout: Layout::new(&state, Some(&user)),
            csrf_token: AppSession(session).csrf_token(),
        },
    )
}

#[derive(Deserialize)]
pub struct LogoutForm {
    /// `1`: log out of the Kakao account in this browser too.
    #[serde(default)]
    kakao_account: Option<String>,
}

/// `POST /kakao/logout/`: end this session on the server and expire the cookie; with
/// `kakao_account=1`, then send the browser to Kakao's account logout.
pub async fn logout(
    state: web::Data<AppState>,
    kakao: web::Data<KakaoClient>,
    session: Session,
    Csrf(Form(form)): Csrf<Form<LogoutForm>>,
) -> Result<HttpResponse, AppError> {
    let session = AppSession(session);
    match form.kakao_account.as_deref() {
        None | Some("") | Some("0") => {
            login::sign_out(&state.pool, &session).await?;
            Ok(see_other("/?logged_out=1"))
        }
        Some("1") => {
            let url = login::sign_out_of_kakao_too(&state, &kakao, &session).await?;
            Ok(see_other(&url))
        }
        Some(_) => Err(AppError::bad_request("kakao_account must be 1 or 0")),
    }
}

#[derive(Deserialize)]
pub struct LogoutCallbackQuery {
    state: Option<String>,
}

/// `GET /kakao/logout/callback/`: the return from Kakao's account logout. The state must be
/// this browser's; then the signed-out page.
pub async fn finish_kakao_logout(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<LogoutCallbackQuery>,
) -> Result<HttpResponse, AppError> {
    let returned = query.state.as_deref().filter(|s| s.len() <= MAX_PARAM_LEN);
    login::finish_kakao_logout(&state, &AppSession(session), returned).await?;
    Ok(see_other("/?logged_out=kakao"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_query_refuses_repeats_and_oversized_values() {
        let q = parse_callback_query("code=abc&state=xyz").expect("ok");
        assert_eq!(q.code.as_deref(), Some("abc"));
        assert_eq!(q.state.as_deref(), Some("xyz"));
        assert!(parse_callback_query("state=a&state=b").is_err());
        assert!(parse_callback_query(&format!("code={}", "x".repeat(3000))).is_err());
        assert!(parse_callback_query("state=a%00b").is_err());
        let q = parse_callback_query("error=access_denied&error_description=User%20denied")
            .expect("ok");
        assert_eq!(q.error.as_deref(), Some("access_denied"));
    }
}
