//! The staff admin under `/admin/`: dashboard, users (list, detail and edit, actions, create,
//! bulk actions, CSV export), the audit log, and the break-glass sign-in. Access goes through
//! the permission policy (`StaffUser`, `users::permissions`); every change goes through the
//! change service (`users::changes`) with the staff member as its actor, which records it in
//! the audit log in the same transaction.

pub mod audit;
pub mod dashboard;
pub mod login;
pub mod users;
pub mod webhooks;

use actix_web::web;

use crate::auth::AppSession;
use crate::users::model::User;
use crate::users::permissions::{Actor, Door, Permission};

/// Register the admin routes (mounted at `/admin`). State changes are POST only: the same
/// paths answer GET with 405.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // Resources (not bare routes) so that a GET to a POST-only path answers 405.
    let page = |path: &str| web::resource(path.to_owned());
    cfg.service(page("/").get(dashboard::show_dashboard))
        .service(page("/users/").get(users::list::list_users))
        .service(page("/users.csv").get(users::export::export_users))
        .service(page("/users/bulk/").post(users::bulk::bulk_update_users))
        .service(
            page("/users/new/")
                .get(users::create::show_new_user_form)
                .post(users::create::create_user),
        )
        .service(
            page("/users/{id}/")
                .get(users::detail::show_user)
                .post(users::detail::update_user),
        )
        .service(page("/users/{id}/{active:activate|deactivate}/").post(users::actions::set_active))
        .service(page("/users/{id}/sign-out/").post(users::actions::sign_out_user))
        .service(page("/users/{id}/sessions/").post(users::actions::end_device))
        .service(
            page("/users/{id}/delete/")
                .get(users::actions::confirm_delete_user)
                .post(users::actions::delete_user),
        )
        .service(page("/audit/").get(audit::list_audit))
        .service(page("/webhooks/").get(webhooks::list_webhooks))
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

/// A staff member acting through the admin.
pub fn admin_actor(user: &User) -> Actor {
    Actor::User(user.clone(), Door::Admin)
}
