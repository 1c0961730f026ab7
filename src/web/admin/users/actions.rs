//! The action buttons of a user's page: (de)activate, sign out everywhere or one device, and
//! delete (with its confirmation page). Each is one call of the change service (ending one
//! device goes through `auth::records::end_devices`, which audits through it).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::super::{AdminLayout, admin_actor};
use crate::auth::AppSession;
use crate::auth::records::{self, Devices};
use crate::kakao::KakaoClient;
use crate::state::AppState;
use crate::users::changes::{self, ChangeError, UserPatch};
use crate::users::lookup;
use crate::users::model::User;
use crate::users::permissions;
use crate::web::extract::{Csrf, Form, StaffUser};
use crate::web::{AppError, Layout, render, see_other};

/// `POST /admin/users/{id}/activate/` and `.../deactivate/` (which ends the user's sessions
/// too).
pub async fn set_active(
    staff: StaffUser,
    path: web::Path<(i64, String)>,
    _: Csrf,
) -> Result<HttpResponse, AppError> {
    let (id, action) = path.into_inner();
    let patch = UserPatch::active(action == "activate");
    staff
        .run(move |conn, actor| changes::update_user(conn, &admin_actor(actor), id, &patch))
        .await?;
    Ok(see_other(&format!("/admin/users/{id}/?saved=1")))
}

/// `POST /admin/users/{id}/sign-out/`: end every session of the user.
pub async fn sign_out_user(
    staff: StaffUser,
    path: web::Path<i64>,
    _: Csrf,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    staff
        .run(move |conn, actor| changes::sign_out_everywhere(conn, &admin_actor(actor), id))
        .await?;
    Ok(see_other(&format!("/admin/users/{id}/?saved=1")))
}

#[derive(serde::Deserialize)]
pub struct EndDeviceForm {
    device: String,
}

/// `POST /admin/users/{id}/sessions/`: end one of the user's sessions (`device=`).
pub async fn end_device(
    staff: StaffUser,
    path: web::Path<i64>,
    Csrf(Form(form)): Csrf<Form<EndDeviceForm>>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    if !crate::web::devices::is_device_id(&form.device) {
        return Err(AppError::bad_request("device"));
    }
    staff
        .run(move |conn, actor| {
            records::end_devices(conn, &admin_actor(actor), id, Devices::One(&form.device))
        })
        .await?;
    Ok(see_other(&format!("/admin/users/{id}/?saved=1")))
}

#[derive(Template)]
#[template(path = "admin/delete.html")]
struct DeletePage {
    admin: AdminLayout,
    layout: Layout,
    user: User,
    has_kakao: bool,
}

/// `GET /admin/users/{id}/delete/`: the confirmation page (superusers).
pub async fn confirm_delete_user(
    state: web::Data<AppState>,
    staff: StaffUser,
    session: Session,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let (actor, detail) = staff
        .run(move |conn, actor| {
            if !permissions::can_delete(actor) {
                return Err(ChangeError::Forbidden(
                    "only superusers delete users".into(),
                ));
            }
            Ok(lookup::user_detail(conn, &admin_actor(actor), id)?)
        })
        .await?;
    render(
        StatusCode::OK,
        &DeletePage {
            layout: Layout::new(&state, Some(&actor)),
            admin: AdminLayout::new(&actor, &AppSession(session), "users"),
            has_kakao: detail.kakao.is_some(),
            user: detail.user,
        },
    )
}

/// `POST /admin/users/{id}/delete/`: delete, then unlink at Kakao with the admin key. The
/// outcome at Kakao is shown on the list: the user is gone here either way.
pub async fn delete_user(
    state: web::Data<AppState>,
    kakao: web::Data<KakaoClient>,
    staff: StaffUser,
    path: web::Path<i64>,
    _: Csrf,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let actor = staff.user().await?;
    let removed = changes::remove_user(&state.pool, &kakao, admin_actor(&actor), id).await?;
    Ok(see_other(&format!(
        "/admin/users/?deleted={id}&unlink={}",
        removed.kakao.as_str()
    )))
}
