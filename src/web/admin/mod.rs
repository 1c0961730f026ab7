//! The staff admin under `/admin/`: dashboard, users (list, detail, edit, actions, create,
//! bulk actions, CSV export), the audit log, and the break-glass sign-in. Access goes through
//! the permission policy (`StaffUser`, `users::permissions`); every change goes through
//! `users::admin`, which records it in the audit log in the same transaction.

pub mod audit;
pub mod dashboard;
pub mod login;
pub mod users;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::same_origin;
use crate::auth::AppSession;
use crate::error::AppError;
use crate::state::AppState;
use crate::users::model::User;
use crate::users::permissions::{Permission, Role};

/// Register the admin routes (mounted at `/admin`). State changes are POST only: the same
/// paths answer GET with 405.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // Resources (not bare routes) so that a GET to a POST-only path answers 405.
    let page = |path: &str| web::resource(path.to_owned());
    cfg.service(page("/").get(dashboard::show_dashboard))
        .service(page("/users/").get(users::list_users))
        .service(page("/users.csv").get(users::export_users))
        .service(page("/users/bulk/").post(users::bulk_update_users))
        .service(
            page("/users/new/")
                .get(users::new_user)
                .post(users::create_user),
        )
        .service(
            page("/users/{id}/")
                .get(users::show_user)
                .post(users::update_user),
        )
        .service(page("/users/{id}/activate/").post(users::activate_user))
        .service(page("/users/{id}/deactivate/").post(users::deactivate_user))
        .service(page("/users/{id}/sign-out/").post(users::sign_out_user))
        .service(
            page("/users/{id}/delete/")
                .get(users::confirm_delete_user)
                .post(users::delete_user),
        )
        .service(page("/audit/").get(audit::list_audit))
        .service(
            page("/login/")
                .get(login::show_admin_login)
                .post(login::admin_login),
        );
}

/// What every admin page shows around its content (beside the site's `Layout`).
pub struct AdminLayout {
    /// The current section, for the admin navigation.
    pub section: &'static str,
    pub is_superuser: bool,
    /// For forms on the page.
    pub csrf_token: String,
}

impl AdminLayout {
    pub fn new(user: &User, session: &AppSession, section: &'static str) -> AdminLayout {
        AdminLayout {
            section,
            is_superuser: Permission::IsSuperuser.allows(user),
            csrf_token: session.csrf_token(),
        }
    }
}

/// Refuse a state-changing request without this session's CSRF token or from another site.
pub fn check_csrf(
    req: &HttpRequest,
    state: &AppState,
    session: &AppSession,
    token: &str,
    user_id: Option<i64>,
) -> Result<(), AppError> {
    if !same_origin(req, state) || !session.csrf_matches(token) {
        log::warn!(
            "event=csrf.rejected route={} user_id={}",
            req.path(),
            user_id.map_or_else(|| "-".to_owned(), |id| id.to_string())
        );
        return Err(AppError::Csrf);
    }
    Ok(())
}

/// A 303 to `location` (after a POST).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}

/// A role as admin forms spell it.
pub fn parse_role(s: &str) -> Option<Role> {
    match s {
        "member" => Some(Role::Member),
        "staff" => Some(Role::Staff),
        "superuser" => Some(Role::Superuser),
        _ => None,
    }
}

/// What the admin calls a role.
pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Member => "일반 회원",
        Role::Staff => "스태프",
        Role::Superuser => "최고 관리자",
    }
}

/// What the admin calls a provider.
pub fn provider_label(provider: &str) -> &str {
    match provider {
        "kakao" => "카카오",
        "local" => "관리자 등록",
        other => other,
    }
}
