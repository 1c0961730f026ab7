//! Kakao's Kakao Login webhooks: `/kakao/webhooks/unlink/` (GET query or POST form) and
//! `/kakao/webhooks/events/` (Security Event Tokens). Each parses the request, calls one use
//! case of `users::kakao_events`, records a refusal (unless the sender floods) and answers as
//! Kakao expects: 200 for the unlink webhook once it is Kakao's, RFC 8935's 202 / 400 for
//! events.

use actix_web::http::{Method, StatusCode, header};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use super::extract::client_address;
use crate::db;
use crate::kakao::KakaoClient;
use crate::state::AppState;
use crate::users::kakao_events::{self, EventsAnswer, Refusal, UnlinkAnswer};

/// Longest webhook body read (a Security Event Token is a few KiB).
pub const BODY_LIMIT: usize = 16 * 1024;

/// `GET|POST /kakao/webhooks/unlink/`.
pub async fn unlink(
    req: HttpRequest,
    state: web::Data<AppState>,
    kakao: web::Data<KakaoClient>,
    body: Bytes,
) -> HttpResponse {
    let fields: &[u8] = if req.method() == Method::GET {
        req.query_string().as_bytes()
    } else {
        &body
    };
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match kakao_events::unlink_webhook(&state.pool, &kakao, authorization, fields).await {
        UnlinkAnswer::Ok(outcome) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(outcome.as_str()),
        UnlinkAnswer::Refused(refusal) => {
            let status = refusal.status;
            record(&state, &req, refusal).await;
            HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
                .content_type("text/plain; charset=utf-8")
                .body("refused")
        }
    }
}

/// `POST /kakao/webhooks/events/`.
pub async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
    kakao: web::Data<KakaoClient>,
    body: Bytes,
) -> HttpResponse {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    match kakao_events::events_webhook(&state.pool, &kakao, content_type, &body).await {
        EventsAnswer::Accepted(_) => HttpResponse::Accepted().finish(),
        EventsAnswer::Refused(refusal) => {
            let body = json!({"err": refusal.err, "description": refusal.why});
            record(&state, &req, refusal).await;
            HttpResponse::BadRequest().json(body)
        }
        EventsAnswer::Unavailable => HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "5"))
            .json(json!({"err": "temporarily_unavailable", "description": "try again shortly"})),
    }
}

/// Record a refused delivery, unless this client, or all clients together, had too many
/// refused lately (junk must not fill the log; the refusal is still counted in the metrics).
/// Bounded: the answer does not wait on a slow database.
async fn record(state: &AppState, req: &HttpRequest, refusal: Refusal) {
    let limits = &state.limits;
    if limits
        .webhook_refusals
        .acquire(&client_address(req))
        .await
        .is_err()
        || limits.webhook_refusals_all.acquire("all").await.is_err()
    {
        return;
    }
    let Refusal {
        webhook,
        why,
        kakao_id,
        err,
        ..
    } = refusal;
    let why = format!("{err}: {why}");
    let write = db::run(&state.pool, move |conn| {
        kakao_events::refused(conn, webhook, "", kakao_id, &why)
    });
    match actix_web::rt::time::timeout(kakao_events::BUDGET, write).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log::error!("event=webhook.record_failed error=\"{e}\""),
        Err(_) => log::error!("event=webhook.record_failed error=\"timeout\""),
    }
}
