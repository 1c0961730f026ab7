//! `/admin/audit/`: the audit log, newest first, filtered by actor, target and action.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::AdminLayout;
use super::users::HistoryRow;
use crate::auth::{AppSession, StaffUser};
use crate::db::{self, DbError};
use crate::error::AppError;
use crate::state::AppState;
use crate::users::audit::{self, AuditAction, AuditFilter};
use crate::web::{Layout, render};

const PAGE_SIZE: i64 = 50;

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
        t => t
            .parse()
            .map(Some)
            .map_err(|_| AppError::BadRequest("id".into())),
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
    StaffUser(actor): StaffUser,
    session: Session,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let filter = AuditFilter {
        actor_id: optional_id(&query.actor)?,
        target_id: optional_id(&query.target)?,
        action: match query.action.as_str() {
            "" => None,
            a => Some(AuditAction::parse(a).ok_or_else(|| AppError::BadRequest("action".into()))?),
        },
    };
    let before = query.before;
    let page = db::run(&state.pool, move |conn| {
        audit::list(conn, &filter, before, PAGE_SIZE).map_err(DbError::from)
    })
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
                .map(|a| (a.as_str(), a.label()))
                .collect(),
            actor: query.actor,
            target: query.target,
            action: query.action,
            next_href,
        },
    )
}
