//! `/admin/webhooks/`: every delivery of Kakao's webhooks, newest first, filtered by
//! outcome; the same rows on a user's detail page.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::AdminLayout;
use crate::auth::AppSession;
use crate::db::DbError;
use crate::kakao::events::short_name;
use crate::state::AppState;
use crate::users::kakao_events::{self, Delivery, DeliveryFilter, Outcome};
use crate::web::extract::StaffUser;
use crate::web::labels::format_time;
use crate::web::{AppError, Layout, render};

const PAGE_SIZE: i64 = 50;

/// One delivery as shown.
pub struct DeliveryRow {
    pub id: i64,
    pub at: String,
    pub kind: &'static str,
    /// The referrer type, or the events' short names.
    pub event: String,
    pub kakao_id: Option<i64>,
    pub user_id: Option<i64>,
    pub outcome: &'static str,
    /// The outcome's stored name (`data-outcome`).
    pub outcome_code: String,
    pub detail: String,
}

impl DeliveryRow {
    pub fn of(d: &Delivery) -> DeliveryRow {
        DeliveryRow {
            id: d.id,
            at: format_time(Some(d.received_at)),
            kind: match d.kind.as_str() {
                "unlink" => "연결 해제",
                "events" => "계정 상태 변경",
                _ => "-",
            },
            event: d
                .event
                .split_whitespace()
                .map(short_name)
                .collect::<Vec<_>>()
                .join(", "),
            kakao_id: d.kakao_id,
            user_id: d.user_id,
            outcome: outcome_label(&d.outcome),
            outcome_code: d.outcome.clone(),
            detail: d.detail.clone(),
        }
    }
}

/// An outcome, in words.
pub fn outcome_label(outcome: &str) -> &'static str {
    match Outcome::parse(outcome) {
        Some(Outcome::Applied) => "반영함",
        Some(Outcome::NoChange) => "변경 없음",
        Some(Outcome::UnknownUser) => "모르는 회원",
        Some(Outcome::Refused) => "거부함",
        Some(Outcome::Failed) => "처리 실패",
        None => "-",
    }
}

#[derive(Deserialize, Default)]
pub struct WebhooksQuery {
    #[serde(default)]
    outcome: String,
    before: Option<i64>,
}

#[derive(Template)]
#[template(path = "admin/webhooks.html")]
struct WebhooksPage {
    admin: AdminLayout,
    layout: Layout,
    outcome: String,
    outcomes: Vec<(&'static str, &'static str)>,
    rows: Vec<DeliveryRow>,
    next_href: Option<String>,
}

/// `GET /admin/webhooks/`.
pub async fn list_webhooks(
    state: web::Data<AppState>,
    staff: StaffUser,
    session: Session,
    query: web::Query<WebhooksQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let filter = DeliveryFilter {
        outcome: match query.outcome.as_str() {
            "" => None,
            o => Some(Outcome::parse(o).ok_or_else(|| AppError::bad_request("outcome"))?),
        },
        user_id: None,
    };
    let before = query.before;
    let (actor, page) = staff
        .run(move |conn, _| {
            kakao_events::list(conn, &filter, before, PAGE_SIZE).map_err(DbError::from)
        })
        .await?;
    let next_href = page.next_before.map(|b| {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("outcome", &query.outcome)
            .append_pair("before", &b.to_string())
            .finish();
        format!("/admin/webhooks/?{q}")
    });
    render(
        StatusCode::OK,
        &WebhooksPage {
            layout: Layout::new(&state, Some(&actor)),
            admin: AdminLayout::new(&actor, &AppSession(session), "webhooks"),
            rows: page.deliveries.iter().map(DeliveryRow::of).collect(),
            outcomes: Outcome::ALL
                .into_iter()
                .map(|o| (o.as_str(), outcome_label(o.as_str())))
                .collect(),
            outcome: query.outcome,
            next_href,
        },
    )
}
