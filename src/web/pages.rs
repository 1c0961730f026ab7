//! The login page, the profile page (view and edit), and health checks.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Layout, render, same_origin};
use crate::auth::{AppSession, CurrentUser, MaybeUser, safe_next};
use crate::db::{self, DbError};
use crate::error::{AppError, urlencode};
use crate::state::AppState;
use crate::users::manager::FieldErrors;
use crate::users::model::User;
use crate::users::service;

#[derive(Template)]
#[template(path = "pages/login.html")]
struct LoginPage {
    layout: Layout,
    notice: Option<&'static str>,
    login_href: String,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    logged_out: Option<String>,
}

/// `GET /`: the login page; signed-in people go to their profile (or `next`).
pub async fn login_page(
    state: web::Data<AppState>,
    user: MaybeUser,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, AppError> {
    let next = query.next.as_deref().and_then(safe_next);
    if user.0.is_some() {
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, next.unwrap_or_else(|| "/profile/".into())))
            .finish());
    }
    let login_href = match &next {
        Some(n) => format!("/kakao/login/?next={}", urlencode(n)),
        None => "/kakao/login/".to_owned(),
    };
    let notice = if query.logged_out.is_some() {
        Some("로그아웃했습니다.")
    } else if next.is_some() {
        Some("로그인이 필요한 페이지입니다. 카카오 로그인 후 이어서 이용하세요.")
    } else {
        None
    };
    render(
        StatusCode::OK,
        &LoginPage {
            layout: Layout::new(&state, None),
            notice,
            login_href,
        },
    )
}

#[derive(Template)]
#[template(path = "pages/profile.html")]
struct ProfilePage {
    layout: Layout,
    saved: bool,
    email: String,
    provider: String,
    date_joined: String,
    last_login: String,
    csrf_token: String,
    name: String,
    age: String,
    name_errors: Vec<String>,
    age_errors: Vec<String>,
}

impl ProfilePage {
    fn new(state: &AppState, user: &User, csrf_token: String) -> ProfilePage {
        ProfilePage {
            layout: Layout::new(state, Some(user)),
            saved: false,
            email: user.email.clone(),
            provider: match user.provider.as_str() {
                "kakao" => "카카오".to_owned(),
                "local" => "관리자 등록".to_owned(),
                other => other.to_owned(),
            },
            date_joined: format_time(Some(user.date_joined)),
            last_login: format_time(user.last_login),
            csrf_token,
            name: user.name.clone().unwrap_or_default(),
            age: user.age.map(|a| a.to_string()).unwrap_or_default(),
            name_errors: Vec::new(),
            age_errors: Vec::new(),
        }
    }
}

/// Times are stored in UTC and shown in Korea's time zone (UTC+9, no daylight saving).
pub fn format_time(t: Option<chrono::NaiveDateTime>) -> String {
    match t {
        Some(t) => (t + chrono::TimeDelta::hours(9))
            .format("%Y-%m-%d %H:%M (KST)")
            .to_string(),
        None => "-".to_owned(),
    }
}

#[derive(Deserialize)]
pub struct ProfileQuery {
    saved: Option<String>,
}

/// `GET /profile/`.
pub async fn show_profile(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    session: Session,
    query: web::Query<ProfileQuery>,
) -> Result<HttpResponse, AppError> {
    let mut page = ProfilePage::new(&state, &user, AppSession(session).csrf_token());
    page.saved = query.saved.is_some();
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    age: String,
}

/// `POST /profile/`: save name and age, or show the form again with field errors (422).
pub async fn update_profile(
    req: HttpRequest,
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    session: Session,
    form: web::Form<ProfileForm>,
) -> Result<HttpResponse, AppError> {
    let session = AppSession(session);
    if !same_origin(&req, &state) || !session.csrf_matches(&form.csrf_token) {
        log::warn!("event=csrf.rejected route=/profile/ user_id={}", user.id);
        return Err(AppError::Csrf);
    }
    let edit = match service::parse_profile_form(&form.name, &form.age) {
        Ok(edit) => edit,
        Err(errors) => return profile_with_errors(&state, &user, &session, &form, errors),
    };
    let user_id = user.id;
    db::run(&state.pool, move |conn| {
        service::update_profile(conn, user_id, &edit).map_err(DbError::from)
    })
    .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/profile/?saved=1"))
        .finish())
}

fn profile_with_errors(
    state: &AppState,
    user: &User,
    session: &AppSession,
    form: &ProfileForm,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let mut page = ProfilePage::new(state, user, session.csrf_token());
    // Show what the person typed, not what is stored, so they can correct it.
    page.name = form.name.clone();
    page.age = form.age.clone();
    page.name_errors = errors.get("name").to_vec();
    page.age_errors = errors.get("age").to_vec();
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

/// `GET /healthz`: the process is up (no I/O; also the benchmarks' ceiling).
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

/// `GET /readyz`: the database answers.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    db::run(&state.pool, |conn| {
        use diesel::connection::SimpleConnection;
        conn.batch_execute("SELECT 1").map_err(DbError::from)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ready"))
}
