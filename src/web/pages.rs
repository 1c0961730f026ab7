//! The login page, the profile page (view and edit, consent items, leaving), and health
//! checks.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::consents::{self, Consents};
use super::error::urlencode;
use super::extract::{Csrf, CurrentUser, Form, MaybeUser};
use super::labels::{format_time, provider_label};
use super::{AppError, Layout, render, see_other};
use crate::auth::{AppSession, safe_next};
use crate::db;
use crate::kakao::KakaoClient;
use crate::state::AppState;
use crate::users::changes::{self, ChangeError, UserPatch};
use crate::users::manager::{FieldErrors, UserManager};
use crate::users::model::User;
use crate::users::permissions::{Actor, Door};

#[derive(Template)]
#[template(path = "pages/login.html")]
struct LoginPage {
    layout: Layout,
    notice: Option<&'static str>,
    login_href: String,
    /// The same login through Kakao's account chooser.
    other_account_href: String,
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
        return Ok(see_other(next.as_deref().unwrap_or("/profile/")));
    }
    let login_href = match &next {
        Some(n) => format!("/kakao/login/?next={}", urlencode(n)),
        None => "/kakao/login/".to_owned(),
    };
    let other_account_href = match &next {
        Some(n) => format!("/kakao/login/?prompt=select_account&next={}", urlencode(n)),
        None => "/kakao/login/?prompt=select_account".to_owned(),
    };
    let notice = if query.logged_out.as_deref() == Some("kakao") {
        Some("로그아웃했습니다. 이 브라우저의 카카오계정에서도 로그아웃했습니다.")
    } else if query.logged_out.is_some() {
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
            other_account_href,
        },
    )
}

#[derive(Template)]
#[template(path = "pages/profile.html")]
struct ProfilePage {
    layout: Layout,
    saved: bool,
    email: String,
    provider: &'static str,
    date_joined: String,
    last_login: String,
    csrf_token: String,
    name: String,
    age: String,
    name_errors: Vec<String>,
    age_errors: Vec<String>,
    /// Kakao consent items (with an admin key configured).
    consents: Option<Consents>,
}

impl ProfilePage {
    fn new(state: &AppState, user: &User, csrf_token: String) -> ProfilePage {
        ProfilePage {
            layout: Layout::new(state, Some(user)),
            saved: false,
            email: user.email.clone(),
            provider: provider_label(&user.provider),
            date_joined: format_time(Some(user.date_joined)),
            last_login: format_time(user.last_login),
            csrf_token,
            name: user.name.clone().unwrap_or_default(),
            age: user.age.map(|a| a.to_string()).unwrap_or_default(),
            name_errors: Vec::new(),
            age_errors: Vec::new(),
            consents: None,
        }
    }
}

#[derive(Deserialize)]
pub struct ProfileQuery {
    saved: Option<String>,
}

/// `GET /profile/`.
pub async fn show_profile(
    state: web::Data<AppState>,
    kakao: web::Data<KakaoClient>,
    caller: CurrentUser,
    session: Session,
    query: web::Query<ProfileQuery>,
) -> Result<HttpResponse, AppError> {
    let for_trip = state.clone();
    let admin_key = kakao.config().admin_key.is_some();
    let (user, kakao_id) = caller
        .read(move |conn, user| consents::kakao_id_if_needed(conn, &for_trip, admin_key, user.id))
        .await?;
    let mut page = ProfilePage::new(&state, &user, AppSession(session).csrf_token());
    page.saved = query.saved.is_some();
    page.consents = consents::for_user(&state, &kakao, user.id, kakao_id).await?;
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "pages/leave.html")]
struct LeavePage {
    layout: Layout,
    csrf_token: String,
    email: String,
}

/// `GET /profile/leave/`: what leaving means, and the button (leaving is never a GET).
pub async fn confirm_leave(
    state: web::Data<AppState>,
    caller: CurrentUser,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let user = caller.user().await?;
    render(
        StatusCode::OK,
        &LeavePage {
            layout: Layout::new(&state, Some(&user)),
            csrf_token: AppSession(session).csrf_token(),
            email: user.email.clone(),
        },
    )
}

/// `POST /profile/leave/`: the person leaves. The account is deleted through the change
/// service (audited, every session ends with it), unlinked at Kakao when an admin key is
/// set, and the browser signed out; the goodbye page says what Kakao answered.
pub async fn leave(
    state: web::Data<AppState>,
    kakao: web::Data<KakaoClient>,
    caller: CurrentUser,
    session: Session,
    _: Csrf,
) -> Result<HttpResponse, AppError> {
    let user = caller.user().await?;
    let id = user.id;
    let actor = Actor::User(user, Door::Profile);
    let removed = changes::remove_user(&state.pool, &kakao, actor, id).await?;
    AppSession(session).sign_out();
    Ok(see_other(&format!(
        "/goodbye/?unlink={}",
        removed.kakao.as_str()
    )))
}

#[derive(Template)]
#[template(path = "pages/goodbye.html")]
struct GoodbyePage {
    layout: Layout,
    /// What Kakao said about the link, in words.
    unlink: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct GoodbyeQuery {
    unlink: Option<String>,
}

/// `GET /goodbye/`: after leaving.
pub async fn goodbye(
    state: web::Data<AppState>,
    query: web::Query<GoodbyeQuery>,
) -> Result<HttpResponse, AppError> {
    let unlink = match query.unlink.as_deref() {
        Some("unlinked") => Some("카카오계정과의 연결도 끊었습니다."),
        Some("not_linked") => None,
        Some("not_configured") => Some(
            "카카오계정과의 연결은 이 서비스에서 끊을 수 없습니다. 카카오계정 > 연결된 서비스 관리에서 직접 끊을 수 있습니다.",
        ),
        Some("failed") => Some(
            "카카오계정과의 연결을 끊지 못했습니다. 카카오계정 > 연결된 서비스 관리에서 직접 끊을 수 있습니다.",
        ),
        _ => None,
    };
    render(
        StatusCode::OK,
        &GoodbyePage {
            layout: Layout::new(&state, None),
            unlink,
        },
    )
}

#[derive(Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    age: String,
}

/// `POST /profile/`: save name and age through the change service, or show the form again
/// with field errors (422).
pub async fn update_profile(
    state: web::Data<AppState>,
    caller: CurrentUser,
    session: Session,
    Csrf(Form(form)): Csrf<Form<ProfileForm>>,
) -> Result<HttpResponse, AppError> {
    let mut patch = UserPatch {
        name: Some(Some(form.name.clone())),
        ..UserPatch::default()
    };
    let (user, errors) = match UserManager::parse_age(&form.age) {
        Ok(age) => {
            patch.age = Some(age);
            let (user, refused) = caller
                .run(move |conn, user| {
                    let actor = Actor::User(user.clone(), Door::Profile);
                    match changes::update_user(conn, &actor, user.id, &patch) {
                        Ok(_) => Ok(None),
                        Err(ChangeError::Invalid(errors)) => Ok(Some(errors)),
                        Err(e) => Err(e),
                    }
                })
                .await?;
            let Some(errors) = refused else {
                return Ok(see_other("/profile/?saved=1"));
            };
            (user, errors)
        }
        Err(problem) => {
            let mut errors = changes::field_problems(&patch);
            errors.add("age", problem);
            (caller.user().await?, errors)
        }
    };
    profile_with_errors(&state, &user, &AppSession(session), form, errors)
}

fn profile_with_errors(
    state: &AppState,
    user: &User,
    session: &AppSession,
    form: ProfileForm,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let mut page = ProfilePage::new(state, user, session.csrf_token());
    // Show what the person typed, not what is stored, so they can correct it.
    page.name = form.name;
    page.age = form.age;
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

/// `GET /readyz`: every store the app needs answers (the database, and Redis when sessions
/// live there); 503 otherwise, so that a load balancer sends traffic elsewhere. 503 as well
/// from the moment shutdown starts, while requests are still served, so that it drains.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    if state.is_draining() {
        return Err(AppError::Unavailable("shutting down".to_owned()));
    }
    db::ready(&state.pool, std::time::Duration::from_secs(1)).await?;
    state
        .sessions
        .ping()
        .await
        .map_err(|e| AppError::Unavailable(format!("session store: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ready"))
}
