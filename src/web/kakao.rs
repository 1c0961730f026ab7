//! The Kakao login flow: start (redirect to Kakao), callback (state check, code exchange,
//! profile, sign-in), and sign-out.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::TimeDelta;
use serde::Deserialize;

use super::{Layout, render, same_origin};
use crate::auth::{AppSession, MaybeUser, PendingLogin, hash_token, safe_next};
use crate::db::{self, DbError};
use crate::error::{AppError, StateProblem};
use crate::kakao::{EmailStatus, KakaoClient, LOGIN_SCOPES};
use crate::state::AppState;
use crate::users::repo;
use crate::users::service::{self, KakaoIdentity, SignInError};

/// Longest `code` or `state` accepted on the callback (Kakao's are well under this).
const MAX_PARAM_LEN: usize = 2048;

#[derive(Deserialize)]
pub struct StartQuery {
    next: Option<String>,
    scope: Option<String>,
}

/// `GET /kakao/login/`: remember where to go after, then send the person to Kakao.
pub async fn start_kakao_login(
    kakao: web::Data<KakaoClient>,
    session: Session,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, AppError> {
    let next = match query.next.as_deref() {
        Some(raw) => {
            let safe = safe_next(raw);
            if safe.is_none() {
                log::warn!("event=auth.next.rejected");
            }
            safe
        }
        None => None,
    };
    // Asking again after the email was declined: only that item, as Kakao's additional consent.
    let scopes: &[&str] = match query.scope.as_deref() {
        None => LOGIN_SCOPES,
        Some("account_email") => &["account_email"],
        Some(_) => return Err(AppError::BadRequest("unknown scope".into())),
    };
    let request = kakao.authorize(scopes);
    AppSession(session).push_login(PendingLogin {
        state: request.state,
        verifier: request.verifier,
        next,
        created: chrono::Utc::now().timestamp(),
    })?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, request.url))
        .finish())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /kakao/login/callback/`.
pub async fn finish_kakao_login(
    req: HttpRequest,
    state: web::Data<AppState>,
    kakao: web::Data<KakaoClient>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    // Parsed by hand so that repeated parameters are refused rather than one picked.
    let query = parse_callback_query(req.query_string())?;
    let session = AppSession(session);

    // Every check of `state` happens before any call to Kakao.
    let Some(state_value) = query.state.as_deref() else {
        if query.error.as_deref() == Some("access_denied") {
            // Kakao's documented error redirect may omit `state`: a cancel is still a cancel.
            return Err(AppError::KakaoCancelled);
        }
        log::warn!("event=auth.callback.rejected reason=state_missing");
        return Err(AppError::State(StateProblem::Missing));
    };
    let state_hash = hash_token(state_value);
    let Some(login) = session.take_login(state_value) else {
        let hash = state_hash.clone();
        let replayed = db::run(&state.pool, move |conn| {
            repo::login_state_consumed(conn, &hash).map_err(DbError::from)
        })
        .await?;
        let problem = if replayed {
            StateProblem::Replayed
        } else {
            StateProblem::Mismatch
        };
        log::warn!("event=auth.callback.rejected reason={problem:?}");
        return Err(AppError::State(problem));
    };
    let ttl = state.settings.login_state_ttl_secs as i64;
    let expires_at = chrono::DateTime::from_timestamp(login.created + ttl, 0)
        .map(|t| t.naive_utc())
        .unwrap_or_else(db::now);
    if chrono::Utc::now().timestamp() > login.created + ttl {
        log::warn!("event=auth.callback.rejected reason=state_expired");
        return Err(AppError::State(StateProblem::Expired));
    }
    // Single use, across every copy of the cookie and every instance.
    let fresh = db::run(&state.pool, move |conn| {
        repo::consume_login_state(conn, &state_hash, expires_at, db::now()).map_err(DbError::from)
    })
    .await?;
    if !fresh {
        log::warn!("event=auth.callback.rejected reason=state_replayed");
        return Err(AppError::State(StateProblem::Replayed));
    }

    if let Some(error) = query.error.as_deref() {
        return Err(match error {
            "access_denied" | "consent_required" => {
                log::info!("event=auth.login.cancelled reason=user_cancelled");
                AppError::KakaoCancelled
            }
            other => AppError::KakaoRedirectError(other.chars().take(64).collect()),
        });
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return Err(AppError::BadRequest("code missing".into()));
    };

    let access_token = kakao.exchange_code(code, &login.verifier).await?;
    let kakao_user = kakao.user_me(&access_token).await?;
    let email = match kakao_user.email_status() {
        EmailStatus::Trusted(email) => email,
        EmailStatus::Missing => {
            return Err(AppError::EmailRequired {
                next: login.next.clone(),
            });
        }
        EmailStatus::Unverified => return Err(AppError::EmailUnverified),
        EmailStatus::Invalid => return Err(AppError::EmailInvalid),
    };
    let identity = KakaoIdentity {
        kakao_id: kakao_user.id,
        email,
        nickname: kakao_user.nickname(),
        profile_json: serde_json::to_string(&kakao_user).unwrap_or_else(|_| "{}".to_owned()),
    };
    let lifetime = TimeDelta::hours(i64::from(state.settings.session_lifetime_hours));
    let outcome = db::run(&state.pool, move |conn| {
        let signed_in = service::sign_in_with_kakao(conn, &identity);
        match signed_in {
            Ok((user, kind)) => {
                let token = service::start_session(conn, user.id, lifetime)
                    .map_err(|e| SignInError::Db(DbError::Query(e)))?;
                Ok((user, kind, token, identity.kakao_id))
            }
            Err(e) => Err(e),
        }
    })
    .await;
    let (user, kind, token, kakao_id) = match outcome {
        Ok(v) => v,
        Err(SignInError::EmailLinkedElsewhere) => {
            log::warn!(
                "event=auth.link.refused reason=email_in_use kakao_id={}",
                kakao_user.id
            );
            return Err(AppError::EmailInUse);
        }
        Err(SignInError::Inactive) => {
            log::info!(
                "event=auth.login.refused reason=inactive kakao_id={}",
                kakao_user.id
            );
            return Err(AppError::Inactive);
        }
        Err(SignInError::InvalidEmail(_)) => return Err(AppError::EmailInvalid),
        Err(SignInError::Db(e)) => return Err(AppError::Db(e)),
    };
    session.sign_in(&token)?;
    log::info!(
        "event=auth.login.success user_id={} kakao_id={} kind={kind:?}",
        user.id,
        kakao_id
    );
    Ok(HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            login.next.unwrap_or_else(|| "/profile/".to_owned()),
        ))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .finish())
}

fn parse_callback_query(raw: &str) -> Result<CallbackQuery, AppError> {
    let mut query = CallbackQuery {
        code: None,
        state: None,
        error: None,
    };
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        let slot = match key.as_ref() {
            "code" => &mut query.code,
            "state" => &mut query.state,
            "error" => &mut query.error,
            _ => continue,
        };
        if slot.is_some() {
            return Err(AppError::BadRequest(format!("repeated parameter {key}")));
        }
        if value.len() > MAX_PARAM_LEN || value.chars().any(char::is_control) {
            return Err(AppError::BadRequest(format!("unusable parameter {key}")));
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
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/"))
            .finish());
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
    #[serde(default)]
    csrf_token: String,
}

/// `POST /kakao/logout/`: end this session on the server and expire the cookie.
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<LogoutForm>,
) -> Result<HttpResponse, AppError> {
    let session = AppSession(session);
    if !same_origin(&req, &state) || !session.csrf_matches(&form.csrf_token) {
        log::warn!("event=csrf.rejected route=/kakao/logout/");
        return Err(AppError::Csrf);
    }
    if let Some(token) = session.token() {
        db::run(&state.pool, move |conn| {
            service::end_session(conn, &token).map_err(DbError::from)
        })
        .await?;
    }
    session.sign_out();
    log::info!("event=auth.logout");
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/?logged_out=1"))
        .finish())
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
