//! `POST /admin/users/bulk/`: one action on the selected users, through the change service
//! (`changes::bulk`): the ones refused (no permission, the last superuser) are skipped and
//! counted.

use actix_web::HttpResponse;
use serde::Deserialize;

use super::super::admin_actor;
use crate::auth::safe_next;
use crate::users::changes::{self, BulkAction};
use crate::web::extract::{Csrf, Form, StaffUser};
use crate::web::{AppError, see_other};

#[derive(Deserialize)]
pub struct BulkForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    back: String,
    /// The ticked rows (a repeated field).
    #[serde(default)]
    ids: Vec<i64>,
}

/// Only a list address of our own is a place to go back to.
fn back_to(back: &str) -> String {
    match safe_next(back) {
        Some(b) if b.starts_with("/admin/users/?") || b == "/admin/users/" => b,
        _ => "/admin/users/?".to_owned(),
    }
}

/// `POST /admin/users/bulk/`.
pub async fn bulk_update_users(
    staff: StaffUser,
    Csrf(Form(form)): Csrf<Form<BulkForm>>,
) -> Result<HttpResponse, AppError> {
    let action =
        BulkAction::parse(&form.action).ok_or_else(|| AppError::bad_request("unknown action"))?;
    let ids = form.ids;
    let (actor, outcome) = staff
        .run(move |conn, actor| changes::bulk(conn, &admin_actor(actor), &ids, action))
        .await?;
    log::info!(
        "event=admin.bulk action={} actor_id={} applied={} skipped={}",
        form.action,
        actor.id,
        outcome.applied,
        outcome.skipped
    );
    let back = back_to(&form.back);
    let sep = if back.ends_with('?') || back.ends_with('&') {
        ""
    } else if back.contains('?') {
        "&"
    } else {
        "?"
    };
    Ok(see_other(&format!(
        "{back}{sep}bulk_ok={}&bulk_failed={}",
        outcome.applied, outcome.skipped
    )))
}
