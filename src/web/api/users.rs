//! The users API, shaped like DRF's `UserViewSet`, and sign-in with a Kakao access token.

use actix_session::Session;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::dto::{
    CreateUserRequest, CsrfResponse, DeletedResponse, KakaoTokenRequest, UpdateMeRequest,
    UpdateUserRequest, UserListResponse, UserResponse,
};
use super::{ApiError, ApiUser, AuthVia, JsonBody, StaffUser, SuperUser};
use crate::auth::AppSession;
use crate::auth::bearer::{self, TokenError};
use crate::db::{self, DbError};
use crate::kakao::{EmailStatus, KakaoClient};
use crate::state::AppState;
use crate::users::changes::{self, ChangeError, Deleted, UserPatch};
use crate::users::manager::{CreateUser, FieldErrors};
use crate::users::model::{Provider, User};
use crate::users::permissions::{self, Role};
use crate::users::query::{self, Cursor, Ordering, UserFilter};
use crate::users::service::{self, KakaoIdentity, SignInError};

fn ok_json<T: serde::Serialize>(value: &T) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(value)
}

/// Query parameters of the list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1..=200 (default 50).
    limit: Option<String>,
    /// Part of an email or name; case-insensitive; `%` and `_` are literal.
    search: Option<String>,
    is_active: Option<String>,
    is_staff: Option<String>,
    is_superuser: Option<String>,
    /// `kakao` or `local`.
    provider: Option<String>,
    /// `id`, `date_joined`, `email`, `last_login`, or any of them with a leading `-`.
    ordering: Option<String>,
    /// An opaque cursor from `next` or `previous`.
    cursor: Option<String>,
}

fn parse_bool(name: &str, v: &Option<String>, errors: &mut FieldErrors) -> Option<bool> {
    match v.as_deref() {
        None | Some("") => None,
        Some("true" | "1" | "True") => Some(true),
        Some("false" | "0" | "False") => Some(false),
        Some(_) => {
            errors.add(name, "true 또는 false여야 합니다.");
            None
        }
    }
}

/// `GET /api/users/` (IsStaff): keyset pages with search, filters and ordering.
#[utoipa::path(get, path = "/api/users/", params(ListParams), tag = "users",
    responses((status = 200, body = UserListResponse), (status = 400), (status = 401), (status = 403)))]
pub async fn list_users(
    state: web::Data<AppState>,
    _staff: StaffUser,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FieldErrors::default();
    let limit = match params.limit.as_deref() {
        None | Some("") => query::DEFAULT_LIMIT,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=query::MAX_LIMIT).contains(&n) => n,
            _ => {
                errors.add("limit", "1에서 200 사이의 정수여야 합니다.");
                query::DEFAULT_LIMIT
            }
        },
    };
    let ordering = match params.ordering.as_deref() {
        None | Some("") => Ordering::default(),
        Some(s) => Ordering::parse(s).unwrap_or_else(|| {
            errors.add(
                "ordering",
                format!("다음 중 하나여야 합니다: {}", Ordering::NAMES.join(", ")),
            );
            Ordering::default()
        }),
    };
    let provider = match params.provider.as_deref() {
        None | Some("") => None,
        Some(p) if Provider::parse(p).is_some() => Some(p.to_owned()),
        Some(_) => {
            errors.add("provider", "kakao 또는 local이어야 합니다.");
            None
        }
    };
    let filter = UserFilter {
        search: params
            .search
            .clone()
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.chars().take(100).collect()),
        provider,
        is_active: parse_bool("is_active", &params.is_active, &mut errors),
        is_staff: parse_bool("is_staff", &params.is_staff, &mut errors),
        is_superuser: parse_bool("is_superuser", &params.is_superuser, &mut errors),
    };
    let cursor = match params.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => match Cursor::decode(c, ordering) {
            Ok(c) => Some(c),
            Err(_) => {
                errors.add("cursor", "올바른 커서가 아닙니다.");
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let page = {
        let filter = filter.clone();
        db::run(&state.pool, move |conn| {
            query::list_users(conn, &filter, ordering, cursor.as_ref(), limit)
                .map_err(DbError::from)
        })
        .await?
    };
    let link = |c: &Cursor| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("limit", &limit.to_string());
        q.append_pair("ordering", &ordering.as_param());
        if let Some(s) = &filter.search {
            q.append_pair("search", s);
        }
        if let Some(p) = &filter.provider {
            q.append_pair("provider", p);
        }
        for (k, v) in [
            ("is_active", filter.is_active),
            ("is_staff", filter.is_staff),
            ("is_superuser", filter.is_superuser),
        ] {
            if let Some(v) = v {
                q.append_pair(k, if v { "true" } else { "false" });
            }
        }
        q.append_pair("cursor", &c.encode());
        format!("{}/api/users/?{}", state.settings.public_url, q.finish())
    };
    Ok(ok_json(&UserListResponse {
        next: page.next.as_ref().map(link),
        previous: page.previous.as_ref().map(link),
        results: page.users.iter().map(UserResponse::from).collect(),
    }))
}

/// `POST /api/users/` (IsStaff; staff or superuser flags need a superuser).
#[utoipa::path(post, path = "/api/users/", request_body = CreateUserRequest, tag = "users",
    responses((status = 201, body = UserResponse), (status = 400), (status = 401), (status = 403),
        (status = 409), (status = 413), (status = 415)))]
pub async fn create_user(
    state: web::Data<AppState>,
    StaffUser(caller): StaffUser,
    JsonBody(body): JsonBody<CreateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let role = if body.is_superuser == Some(true) {
        Role::Superuser
    } else if body.is_staff == Some(true) {
        Role::Staff
    } else {
        Role::Member
    };
    let input = CreateUser {
        email: body.email,
        name: body.name,
        age: body.age,
        provider: body
            .provider
            .unwrap_or_else(|| Provider::Local.as_str().to_owned()),
        is_active: body.is_active,
        // The role carries the flags; an explicit `false` beside it reaches UserManager's check.
        is_staff: body.is_staff.filter(|s| !s),
        is_superuser: body.is_superuser.filter(|s| !s),
    };
    let actor = caller.user;
    let user = db::run(&state.pool, move |conn| {
        changes::create_user(conn, &actor, &input, role)
    })
    .await?;
    log::info!("event=api.user.created user_id={}", user.id);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/users/{}/", user.id)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(UserResponse::from(&user)))
}

async fn load_visible(state: &AppState, actor: &User, id: i64) -> Result<User, ApiError> {
    // Others' records are not even confirmed to exist for non-staff.
    if !permissions::can_view(actor, id) {
        return Err(ApiError::NotFound);
    }
    db::run(&state.pool, move |conn| {
        crate::users::repo::find_user(conn, id).map_err(DbError::from)
    })
    .await?
    .ok_or(ApiError::NotFound)
}

/// `GET /api/users/{id}/` (IsSelfOrStaff).
#[utoipa::path(get, path = "/api/users/{id}/", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = UserResponse), (status = 401), (status = 404)))]
pub async fn get_user(
    state: web::Data<AppState>,
    caller: ApiUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let user = load_visible(&state, &caller.user, id.into_inner()).await?;
    Ok(ok_json(&UserResponse::from(&user)))
}

async fn apply_update(
    state: &AppState,
    actor: User,
    target_id: i64,
    patch: UserPatch,
    full: bool,
) -> Result<HttpResponse, ApiError> {
    if !permissions::can_view(&actor, target_id) {
        return Err(ApiError::NotFound);
    }
    if full {
        // PUT replaces every field the caller may change, so each must be present.
        let target = load_visible(state, &actor, target_id).await?;
        let sent = patch.fields();
        let mut missing = FieldErrors::default();
        for field in permissions::editable_fields(&actor, &target) {
            if !sent.contains(&field) {
                missing.add(field.as_str(), "이 필드는 필수입니다.");
            }
        }
        if !missing.is_empty() {
            return Err(ApiError::Invalid(missing));
        }
    }
    let actor_id = actor.id;
    let (user, changed) = db::run(&state.pool, move |conn| {
        changes::update_user(conn, &actor, target_id, &patch)
    })
    .await?;
    if !changed.is_empty() {
        let fields: Vec<&str> = changed.iter().map(|c| c.field).collect();
        log::info!(
            "event=api.user.updated actor_id={actor_id} user_id={} fields={}",
            user.id,
            fields.join(",")
        );
    }
    Ok(ok_json(&UserResponse::from(&user)))
}

/// A member sending staff-only fields is told the fields are unknown to them (400), the same
/// as a mass-assignment attempt; staff sending superuser-only fields get 403 from the policy.
fn refuse_fields_above_member(actor: &User, body: &UpdateUserRequest) -> Result<(), ApiError> {
    if permissions::Permission::IsStaff.allows(actor) {
        return Ok(());
    }
    let mut unknown = FieldErrors::default();
    for (name, present) in [
        ("email", body.email.is_some()),
        ("is_active", body.is_active.is_some()),
        ("is_staff", body.is_staff.is_some()),
        ("is_superuser", body.is_superuser.is_some()),
    ] {
        if present {
            unknown.add(name, "알 수 없는 필드입니다.");
        }
    }
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid(unknown))
    }
}

/// `PATCH /api/users/{id}/` (self: name, age; staff: + email, is_active; superuser: + flags).
#[utoipa::path(patch, path = "/api/users/{id}/", request_body = UpdateUserRequest, tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = UserResponse), (status = 400), (status = 401), (status = 403),
        (status = 404), (status = 409), (status = 413), (status = 415)))]
pub async fn patch_user(
    state: web::Data<AppState>,
    caller: ApiUser,
    id: web::Path<i64>,
    JsonBody(body): JsonBody<UpdateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    refuse_fields_above_member(&caller.user, &body)?;
    apply_update(&state, caller.user, id.into_inner(), body.into(), false).await
}

/// `PUT /api/users/{id}/`: as PATCH, but every field the caller may change is required.
#[utoipa::path(put, path = "/api/users/{id}/", request_body = UpdateUserRequest, tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = UserResponse), (status = 400), (status = 401), (status = 403),
        (status = 404), (status = 409)))]
pub async fn put_user(
    state: web::Data<AppState>,
    caller: ApiUser,
    id: web::Path<i64>,
    JsonBody(body): JsonBody<UpdateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    refuse_fields_above_member(&caller.user, &body)?;
    apply_update(&state, caller.user, id.into_inner(), body.into(), true).await
}

async fn delete_and_unlink(
    state: &AppState,
    kakao: &KakaoClient,
    actor: User,
    target_id: i64,
) -> Result<DeletedResponse, ApiError> {
    let actor_id = actor.id;
    let Deleted { user, kakao_id } = db::run(&state.pool, move |conn| {
        changes::delete_user(conn, &actor, target_id)
    })
    .await
    .map_err(|e| match e {
        // Only superusers delete others; a member asking about someone else learns nothing.
        ChangeError::NotFound => ApiError::NotFound,
        other => ApiError::from(other),
    })?;
    log::info!(
        "event=api.user.deleted actor_id={actor_id} user_id={}",
        user.id
    );
    let (kakao_unlink, kakao_error) = match kakao_id {
        None => ("not_linked", None),
        Some(kid) => match kakao.unlink_user(kid).await {
            Ok(Some(_)) => ("unlinked", None),
            Ok(None) => ("not_configured", None),
            Err(e) => {
                log::error!(
                    "event=kakao.unlink.failed user_id={} kakao_id={kid} code={} error=\"{e}\"",
                    user.id,
                    e.log_code()
                );
                ("failed", Some(e.to_string()))
            }
        },
    };
    Ok(DeletedResponse {
        deleted: true,
        id: user.id,
        kakao_unlink: kakao_unlink.to_owned(),
        kakao_error,
    })
}

/// `DELETE /api/users/{id}/` (IsSuperuser). Unlinks at Kakao when an admin key is set.
#[utoipa::path(delete, path = "/api/users/{id}/", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = DeletedResponse), (status = 401), (status = 403), (status = 404),
        (status = 409)))]
pub async fn delete_user(
    state: web::Data<AppState>,
    kakao: web::Data<KakaoClient>,
    SuperUser(caller): SuperUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let done = delete_and_unlink(&state, &kakao, caller.user, id.into_inner()).await?;
    Ok(ok_json(&done))
}

/// `GET /api/users/me/`.
#[utoipa::path(get, path = "/api/users/me/", tag = "me",
    responses((status = 200, body = UserResponse), (status = 401)))]
pub async fn get_me(caller: ApiUser) -> HttpResponse {
    ok_json(&UserResponse::from(&caller.user))
}

/// `PATCH /api/users/me/`: name and age.
#[utoipa::path(patch, path = "/api/users/me/", request_body = UpdateMeRequest, tag = "me",
    responses((status = 200, body = UserResponse), (status = 400), (status = 401), (status = 403)))]
pub async fn update_me(
    state: web::Data<AppState>,
    caller: ApiUser,
    JsonBody(body): JsonBody<UpdateMeRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = caller.user.id;
    let patch = UserPatch {
        name: body.name,
        age: body.age,
        ..UserPatch::default()
    };
    apply_update(&state, caller.user, id, patch, false).await
}

/// `DELETE /api/users/me/`: the person leaves; the account is deleted and, with an admin key,
/// unlinked at Kakao (a failure there is reported in the answer, not hidden).
#[utoipa::path(delete, path = "/api/users/me/", tag = "me",
    responses((status = 200, body = DeletedResponse), (status = 401), (status = 409)))]
pub async fn delete_me(
    state: web::Data<AppState>,
    kakao: web::Data<KakaoClient>,
    session: Session,
    caller: ApiUser,
) -> Result<HttpResponse, ApiError> {
    let id = caller.user.id;
    let done = delete_and_unlink(&state, &kakao, caller.user, id).await?;
    if caller.via == AuthVia::Session {
        AppSession(session).sign_out();
    }
    Ok(ok_json(&done))
}

/// `GET /api/auth/csrf/`: the token for `X-CSRF-Token` (cookie sessions).
#[utoipa::path(get, path = "/api/auth/csrf/", tag = "auth",
    responses((status = 200, body = CsrfResponse)))]
pub async fn csrf_token(session: Session) -> HttpResponse {
    ok_json(&CsrfResponse {
        csrf_token: AppSession(session).csrf_token(),
    })
}

/// `POST /api/auth/kakao/`: sign in (or up) with an access token from Kakao's mobile SDK,
/// by the same identity rules as the web flow; sets the session cookie.
#[utoipa::path(post, path = "/api/auth/kakao/", request_body = KakaoTokenRequest, tag = "auth",
    responses((status = 200, body = UserResponse), (status = 400), (status = 401), (status = 403),
        (status = 409), (status = 503)))]
pub async fn sign_in_with_kakao_token(
    state: web::Data<AppState>,
    kakao: web::Data<KakaoClient>,
    session: Session,
    JsonBody(body): JsonBody<KakaoTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let token = body.access_token.trim().to_owned();
    let kakao_id = bearer::validate(&kakao, &state.token_cache, &token).await?;
    let profile = kakao
        .user_me(&token)
        .await
        .map_err(|e| ApiError::from(TokenError::from(e)))?;
    if profile.id != kakao_id {
        return Err(ApiError::InvalidToken);
    }
    let email = match profile.email_status() {
        EmailStatus::Trusted(e) => e,
        EmailStatus::Missing => return Err(ApiError::EmailRequired),
        EmailStatus::Unverified | EmailStatus::Invalid => return Err(ApiError::EmailUntrusted),
    };
    let identity = KakaoIdentity {
        kakao_id,
        email,
        nickname: profile.nickname(),
        profile_json: serde_json::to_string(&profile).unwrap_or_else(|_| "{}".into()),
    };
    let lifetime = chrono::TimeDelta::hours(i64::from(state.settings.session_lifetime_hours));
    let (user, token) = db::run(&state.pool, move |conn| {
        let (user, _) = service::sign_in_with_kakao(conn, &identity)?;
        let token = service::start_session(conn, user.id, lifetime)
            .map_err(|e| SignInError::Db(DbError::Query(e)))?;
        Ok::<_, SignInError>((user, token))
    })
    .await
    .map_err(|e| match e {
        SignInError::EmailLinkedElsewhere => ApiError::Conflict(
            "email_in_use",
            "this email belongs to an account linked to another Kakao user".into(),
        ),
        SignInError::Inactive => ApiError::Inactive,
        SignInError::InvalidEmail(_) => ApiError::EmailUntrusted,
        SignInError::Db(e) => ApiError::from(e),
    })?;
    AppSession(session).sign_in(&token)?;
    log::info!(
        "event=auth.login.success via=api user_id={} kakao_id={kakao_id}",
        user.id
    );
    Ok(ok_json(&UserResponse::from(&user)))
}
