//! `/admin/login/`: the break-glass sign-in for staff while Kakao is unavailable. Limited per
//! client address (the socket's, never `X-Forwarded-For`) and per account; a wrong password
//! and an unknown email get the same answer in about the same time.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::TimeDelta;
use serde::Deserialize;

use super::{check_csrf, see_other};
use crate::auth::{AppSession, MaybeUser, safe_next};
use crate::db::{self, DbError};
use crate::error::AppError;
use crate::state::AppState;
use crate::users::manager::UserManager;
use crate::users::{passwords, permissions};
use crate::web::{Layout, render};

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    layout: Layout,
    csrf_token: String,
    email: String,
    next: String,
    failed: bool,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

fn admin_next(next: Option<&str>) -> String {
    next.and_then(safe_next)
        .filter(|n| n.starts_with("/admin/"))
        .unwrap_or_else(|| "/admin/".to_owned())
}

/// `GET /admin/login/`.
pub async fn show_admin_login(
    state: web::Data<AppState>,
    user: MaybeUser,
    session: Session,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, AppError> {
    let next = admin_next(query.next.as_deref());
    if user.0.as_ref().is_some_and(permissions::can_use_admin) {
        return Ok(see_other(&next));
    }
    render(
        StatusCode::OK,
        &LoginPage {
            layout: Layout::new(&state, user.0.as_ref()),
            csrf_token: AppSession(session).csrf_token(),
            email: String::new(),
            next,
            failed: false,
        },
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// Longest input looked at (argon2 work is bounded by it).
const INPUT_MAX: usize = 1024;

fn retry_after(wait: std::time::Duration) -> AppError {
    AppError::TooManyAttempts {
        retry_after_secs: wait.as_secs().max(1),
    }
}

/// `POST /admin/login/`.
pub async fn admin_login(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let session = AppSession(session);
    check_csrf(&req, &state, &session, &form.csrf_token, None)?;
    let form = form.into_inner();
    let next = admin_next(form.next.as_deref());
    let client_key = match req.peer_addr() {
        Some(addr) => format!("ip:{}", addr.ip()),
        None => "ip:unknown".to_owned(),
    };
    let email = UserManager::normalize_email(&form.email);
    let account_key = format!("account:{email}");
    let limits = &state.login_limits;
    if let Err(wait) = limits.per_client.check(&client_key) {
        log::warn!("event=admin.break_glass.limited key=client");
        return Err(retry_after(wait));
    }
    if let Err(wait) = limits.per_account.check(&account_key) {
        log::warn!("event=admin.break_glass.limited key=account");
        return Err(retry_after(wait));
    }
    let signed_in = if form.email.len() > INPUT_MAX || form.password.len() > INPUT_MAX {
        None
    } else {
        let lifetime = TimeDelta::hours(i64::from(state.settings.session_lifetime_hours));
        let (email, password) = (email.clone(), form.password);
        db::run(&state.pool, move |conn| {
            passwords::sign_in_with_password(conn, &email, &password, lifetime)
                .map_err(DbError::from)
        })
        .await?
    };
    match signed_in {
        Some((user, token)) => {
            limits.per_account.reset(&account_key);
            session.sign_in(&token)?;
            log::warn!("event=admin.break_glass.success user_id={}", user.id);
            Ok(see_other(&next))
        }
        None => {
            limits.per_client.fail(&client_key);
            limits.per_account.fail(&account_key);
            log::warn!("event=admin.break_glass.failed");
            render(
                StatusCode::UNAUTHORIZED,
                &LoginPage {
                    layout: Layout::new(&state, None),
                    csrf_token: session.csrf_token(),
                    email: form.email,
                    next,
                    failed: true,
                },
            )
        }
    }
}
