//! `/admin/login/`: the break-glass sign-in for staff while Kakao is unavailable (the use case
//! is `auth::login::sign_in_with_password`: limited per client address, the socket's and
//! never `X-Forwarded-For`, and per account; a wrong password and an unknown email get the
//! same answer in about the same time).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::{AppSession, login, safe_next};
use crate::state::AppState;
use crate::users::permissions;
use crate::web::extract::{Csrf, Form, MaybeUser, client_address, user_agent};
use crate::web::{AppError, Layout, render, see_other};

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
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// `POST /admin/login/`.
pub async fn admin_login(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    Csrf(Form(form)): Csrf<Form<LoginForm>>,
) -> Result<HttpResponse, AppError> {
    let session = AppSession(session);
    let next = admin_next(form.next.as_deref());
    let client = client_address(&req);
    match login::sign_in_with_password(
        &state,
        &session,
        &client,
        user_agent(&req),
        &form.email,
        &form.password,
    )
    .await
    {
        Ok(_) => Ok(see_other(&next)),
        Err(login::LoginError::WrongPassword) => render(
            StatusCode::UNAUTHORIZED,
            &LoginPage {
                layout: Layout::new(&state, None),
                csrf_token: session.csrf_token(),
                email: form.email,
                next,
                failed: true,
            },
        ),
        Err(e) => Err(e.into()),
    }
}
