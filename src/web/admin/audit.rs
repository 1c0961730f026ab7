//! `/admin/audit/`: the audit log, newest first, filtered by actor, target and action.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::AdminLayout;
use crate::auth::AppSession;
use crate::db::DbError;
use crate::state::AppState;
use crate::users::audit::{self, AuditAction, AuditEntry, AuditFilter};
use crate::web::extract::StaffUser;
use crate::web::labels::{action_label, format_time, via_label};
use crate::web::{AppError, Layout, render};

const PAGE_SIZE: i64 = 50;

/// One audit entry as shown (here and on a user's page).
pub struct HistoryRow {
    pub id: i64,
    pub at: String,
    pub actor_id: Option<i64>,
    pub actor_email: String,
    pub target_id: Option<i64>,
    pub target_email: String,
    pub action: &'static str,
    pub via: &'static str,
    pub changes: Vec<(String, String, String)>,
}

impl HistoryRow {
    pub fn of(e: &AuditEntry) -> HistoryRow {
        HistoryRow {
            id: e.id,
            at: format_time(Some(e.at)),
            actor_id: e.actor_id,
            actor_email: e.actor_email.clone(),
            target_id: e.target_id,
            target_email: e.target_email.clone(),
            action: action_label(&e.action),
            via: via_label(&e.via),
            changes: e
                .field_changes()
                .into_iter()
                .map(|c| (c.field, c.old, c.new))
                .collect(),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    action: String,
    before: Option<i64>,
}

fn optional_id(s: &str) -> Result<Option<i64>, AppError> {
    match s.trim() {
        "" => Ok(None),
        t => t.parse().map(Some).map_err(|_| AppError::bad_request("id")),
    }
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    admin: AdminLayout,
    layout: Layout,
    actor: String,
    target: String,
    action: String,
    actions: Vec<(&'static str, &'static str)>,
    rows: Vec<HistoryRow>,
    next_href: Option<String>,
}

/// `GET /admin/audit/`.
pub async fn list_audit(
    state: web::Data<AppState>,
    staff: StaffUser,
    session: Session,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let filter = AuditFilter {
        actor_id: optional_id(&query.actor)?,
        target_id: optional_id(&query.target)?,
        action: match query.action.as_str() {
            "" => None,
            a => Some(AuditAction::parse(a).ok_or_else(|| AppError::bad_request("action"))?),
        },
    };
    let before = query.before;
    let (actor, page) = staff
        .run(move |conn, _| audit::list(conn, &filter, before, PAGE_SIZE).map_err(DbError::from))
        .await?;
    let next_href = page.next_before.map(|b| {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("actor", &query.actor)
            .append_pair("target", &query.target)
            .append_pair("action", &query.action)
            .append_pair("before", &b.to_string())
            .finish();
        format!("/admin/audit/?{q}")
    });
    render(
        StatusCode::OK,
        &AuditPage {
            layout: Layout::new(&state, Some(&actor)),
            admin: AdminLayout::new(&actor, &AppSession(session), "audit"),
            rows: page.entries.iter().map(HistoryRow::of).collect(),
            actions: AuditAction::ALL
                .into_iter()
                .map(|a| (a.as_str(), action_label(a.as_str())))
                .collect(),
            actor: query.actor,
            target: query.target,
            action: query.action,
            next_href,
        },
    )
}
