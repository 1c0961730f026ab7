//! The users API, shaped like DRF's `UserViewSet`. Every change goes through the change
//! service with the caller as its actor (door: the API), so it is checked and audited the same
//! way as the admin's.

use actix_session::Session;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::IntoParams;

use super::dto::{
    CreateUserRequest, DeletedResponse, UpdateMeRequest, UpdateUserRequest, UserListResponse,
    UserResponse,
};
use super::ok_json;
use crate::auth::AppSession;
use crate::kakao::KakaoClient;
use crate::state::AppState;
use crate::users::changes::{self, ChangeError, UserPatch};
use crate::users::lookup;
use crate::users::manager::{CreateUser, FieldErrors};
use crate::users::model::{Provider, User};
use crate::users::permissions::{self, Actor, Door, Role};
use crate::users::query::Cursor;
use crate::web::AppError;
use crate::web::extract::{AuthVia, Csrf, CurrentUser, JsonBody, StaffUser, SuperUser};
use crate::web::list::{ListFace, ListRequest};

/// Query parameters of the list (documentation only: `web::list` parses them).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "it documents the query in the OpenAPI document only"
)]
pub struct ListParams {
    /// Page size, 1..=200 (default 50).
    limit: Option<String>,
    /// Part of an email or name, at most 200 characters; case-insensitive; `%` and `_` are
    /// literal.
    search: Option<String>,
    /// `true` or `false`.
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

fn api_actor(user: User) -> Actor {
    Actor::User(user, Door::Api)
}

/// `GET /api/users/` (IsStaff): keyset pages with search, filters and ordering.
#[utoipa::path(get, path = "/api/users/", params(ListParams), tag = "users",
    responses((status = 200, body = UserListResponse), (status = 400), (status = 401), (status = 403)))]
pub async fn list_users(
    req: HttpRequest,
    state: web::Data<AppState>,
    staff: StaffUser,
) -> Result<HttpResponse, AppError> {
    let request = ListRequest::parse(req.query_string(), ListFace::Api)?;
    let (_, page) = request.page_for(staff, None).await?;
    let link = |c: &Cursor| {
        format!(
            "{}/api/users/?{}",
            state.settings.public_url,
            request.query_with(request.ordering, Some(c))
        )
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
    caller: StaffUser,
    Csrf(JsonBody(body)): Csrf<JsonBody<CreateUserRequest>>,
) -> Result<HttpResponse, AppError> {
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
    let (_, user) = caller
        .run(move |conn, caller| {
            changes::create_user(conn, &api_actor(caller.clone()), &input, role)
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/users/{}/", user.id)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(UserResponse::from(&user)))
}

/// `GET /api/users/{id}/` (IsSelfOrStaff).
#[utoipa::path(get, path = "/api/users/{id}/", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = UserResponse), (status = 401), (status = 404)))]
pub async fn get_user(caller: CurrentUser, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    // Others' records are not even confirmed to exist for non-staff.
    let (_, user) = caller
        .read(move |conn, caller| lookup::visible_user(conn, &api_actor(caller.clone()), id))
        .await?;
    Ok(ok_json(&UserResponse::from(&user)))
}

/// Fields a member's role never gets are unknown to them (400, the same answer as a
/// mass-assignment attempt); staff sending a superuser's fields get 403 from the policy.
fn refuse_fields_above_member(actor: &User, patch: &UserPatch) -> Result<(), FieldErrors> {
    let role = Role::of(actor);
    if role != Role::Member {
        return Ok(());
    }
    let theirs = permissions::role_fields(role);
    let mut unknown = FieldErrors::default();
    for field in patch.fields() {
        if !theirs.contains(&field) {
            unknown.add(field.as_str(), "알 수 없는 필드입니다.");
        }
    }
    unknown.into_result()
}

/// PATCH (`replace` false) or PUT (`replace`: every field the caller may change is required)
/// of user `target` (the caller themselves when `None`).
async fn update(
    caller: CurrentUser,
    target: Option<i64>,
    patch: UserPatch,
    replace: bool,
) -> Result<HttpResponse, AppError> {
    let (_, updated) = caller
        .run(move |conn, caller| {
            refuse_fields_above_member(caller, &patch).map_err(ChangeError::Invalid)?;
            let actor = api_actor(caller.clone());
            let target = target.unwrap_or(caller.id);
            if replace {
                changes::replace_user(conn, &actor, target, &patch)
            } else {
                changes::update_user(conn, &actor, target, &patch)
            }
        })
        .await?;
    Ok(ok_json(&UserResponse::from(&updated.user)))
}

/// `PATCH /api/users/{id}/` (self: name, age; staff: + email, is_active of members;
/// superuser: + flags, anyone).
#[utoipa::path(patch, path = "/api/users/{id}/", request_body = UpdateUserRequest, tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = UserResponse), (status = 400), (status = 401), (status = 403),
        (status = 404), (status = 409), (status = 413), (status = 415)))]
pub async fn patch_user(
    caller: CurrentUser,
    id: web::Path<i64>,
    Csrf(JsonBody(body)): Csrf<JsonBody<UpdateUserRequest>>,
) -> Result<HttpResponse, AppError> {
    update(caller, Some(id.into_inner()), UserPatch::from(body), false).await
}

/// `PUT /api/users/{id}/`: as PATCH, but every field the caller may change is required.
#[utoipa::path(put, path = "/api/users/{id}/", request_body = UpdateUserRequest, tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = UserResponse), (status = 400), (status = 401), (status = 403),
        (status = 404), (status = 409)))]
pub async fn put_user(
    caller: CurrentUser,
    id: web::Path<i64>,
    Csrf(JsonBody(body)): Csrf<JsonBody<UpdateUserRequest>>,
) -> Result<HttpResponse, AppError> {
    update(caller, Some(id.into_inner()), UserPatch::from(body), true).await
}

/// `DELETE /api/users/{id}/` (IsSuperuser). Unlinks at Kakao when an admin key is set.
#[utoipa::path(delete, path = "/api/users/{id}/", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = DeletedResponse), (status = 401), (status = 403), (status = 404),
        (status = 409)))]
pub async fn delete_user(
    state: web::Data<AppState>,
    kakao: web::Data<KakaoClient>,
    caller: SuperUser,
    id: web::Path<i64>,
    _: Csrf,
) -> Result<HttpResponse, AppError> {
    let caller = caller.user().await?;
    let removed =
        changes::remove_user(&state.pool, &kakao, api_actor(caller), id.into_inner()).await?;
    Ok(ok_json(&DeletedResponse::from(&removed)))
}

/// `GET /api/users/me/`.
#[utoipa::path(get, path = "/api/users/me/", tag = "me",
    responses((status = 200, body = UserResponse), (status = 401)))]
pub async fn get_me(caller: CurrentUser) -> Result<HttpResponse, AppError> {
    Ok(ok_json(&UserResponse::from(&caller.user().await?)))
}

/// `PATCH /api/users/me/`: name and age.
#[utoipa::path(patch, path = "/api/users/me/", request_body = UpdateMeRequest, tag = "me",
    responses((status = 200, body = UserResponse), (status = 400), (status = 401), (status = 403)))]
pub async fn update_me(
    caller: CurrentUser,
    Csrf(JsonBody(body)): Csrf<JsonBody<UpdateMeRequest>>,
) -> Result<HttpResponse, AppError> {
    let patch = UserPatch {
        name: body.name,
        age: body.age,
        ..UserPatch::default()
    };
    update(caller, None, patch, false).await
}

/// `DELETE /api/users/me/`: the person leaves; the account is deleted and, with an admin key,
/// unlinked at Kakao (a failure there is reported in the answer, not hidden).
#[utoipa::path(delete, path = "/api/users/me/", tag = "me",
    responses((status = 200, body = DeletedResponse), (status = 401), (status = 409)))]
pub async fn delete_me(
    state: web::Data<AppState>,
    kakao: web::Data<KakaoClient>,
    session: Session,
    caller: CurrentUser,
    _: Csrf,
) -> Result<HttpResponse, AppError> {
    let via = caller.via();
    let caller = caller.user().await?;
    let id = caller.id;
    let removed = changes::remove_user(&state.pool, &kakao, api_actor(caller), id).await?;
    if via == AuthVia::Session {
        AppSession(session).sign_out();
    }
    Ok(ok_json(&DeletedResponse::from(&removed)))
}
