//! What Kakao tells the app about people (its two Kakao Login webhooks), applied through the
//! change service with Kakao as the actor, and every delivery recorded: in one transaction,
//! so a delivery's row always says what its effect was. A Security Event Token's `jti` is
//! unique in the record, so a replay is refused and changes nothing.

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::changes::{self, ChangeError, KakaoEffect};
use crate::db::schema::webhook_deliveries;
use crate::db::{self, DbConnection, DbError, DbPool};
use crate::kakao::KakaoClient;
use crate::kakao::events::{self, KakaoSaid, SetRefused, UnlinkNotice};

/// How long a delivery's own work may take: Kakao wants an answer within 3 seconds.
pub const BUDGET: Duration = Duration::from_secs(2);

/// A delivery refused before it could have any effect; the caller records it (see
/// `refused`), unless the sender is flooding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub webhook: Webhook,
    /// 401 (not Kakao), 400 (malformed, or a bad token).
    pub status: u16,
    /// RFC 8935's code, for the events webhook.
    pub err: &'static str,
    pub why: String,
    pub kakao_id: Option<i64>,
}

/// How the unlink webhook answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnlinkAnswer {
    /// 200: Kakao's; applied, repeated, unknown user, or failed on our side (logged and
    /// recorded): Kakao wants 200 in every case.
    Ok(Outcome),
    Refused(Refusal),
}

impl UnlinkAnswer {
    /// The outcome, as a metric label.
    pub fn outcome(&self) -> &'static str {
        match self {
            UnlinkAnswer::Ok(outcome) => outcome.as_str(),
            UnlinkAnswer::Refused(_) => Outcome::Refused.as_str(),
        }
    }
}

/// The unlink webhook: Kakao's only with `Authorization: KakaoAK {admin key}` (compared in
/// constant time) and our `app_id`; then the link is removed, every session ends, and the
/// delivery is recorded, within `BUDGET`.
pub async fn unlink_webhook(
    pool: &DbPool,
    kakao: &KakaoClient,
    authorization: Option<&str>,
    fields: &[u8],
) -> UnlinkAnswer {
    let answer = unlink_webhook_uncounted(pool, kakao, authorization, fields).await;
    crate::telemetry::metrics::get().webhook("unlink", answer.outcome());
    answer
}

/// [`unlink_webhook`] before it is counted.
async fn unlink_webhook_uncounted(
    pool: &DbPool,
    kakao: &KakaoClient,
    authorization: Option<&str>,
    fields: &[u8],
) -> UnlinkAnswer {
    let refuse = |status, why: String, kakao_id| {
        UnlinkAnswer::Refused(Refusal {
            webhook: Webhook::Unlink,
            status,
            err: if status == 401 {
                "unauthorized"
            } else {
                "invalid_request"
            },
            why,
            kakao_id,
        })
    };
    let Some(admin_key) = kakao.config().admin_key.as_ref() else {
        log::error!(
            "event=webhook.unlink.refused reason=no_admin_key fix=\"set KAKAO_ADMIN_KEY (the primary admin key) to accept Kakao's webhooks\""
        );
        return refuse(401, "KAKAO_ADMIN_KEY is not set".into(), None);
    };
    let presented = authorization
        .and_then(|h| h.strip_prefix("KakaoAK "))
        .map(str::trim)
        .unwrap_or("");
    if !crate::token::constant_time_eq(presented, admin_key.expose()) {
        log::warn!("event=webhook.unlink.refused reason=bad_key");
        return refuse(
            401,
            "Authorization is not KakaoAK with our admin key".into(),
            None,
        );
    }
    let notice = match UnlinkNotice::parse(fields) {
        Ok(n) => n,
        Err(field) => return refuse(400, format!("missing or unusable {field}"), None),
    };
    if kakao.config().app_id != Some(notice.app_id) {
        log::warn!(
            "event=webhook.unlink.refused reason=app_id app_id={}",
            notice.app_id
        );
        return refuse(
            401,
            format!("app_id {} is not KAKAO_APP_ID", notice.app_id),
            Some(notice.kakao_id),
        );
    }
    let said = [KakaoSaid::from_referrer_type(&notice.referrer_type)];
    let outcome = within_budget(
        pool,
        Webhook::Unlink,
        notice.referrer_type.clone(),
        notice.kakao_id,
        None,
        said.to_vec(),
    )
    .await;
    UnlinkAnswer::Ok(match outcome {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Failed,
    })
}

/// How the account status change webhook answers (RFC 8935).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsAnswer {
    /// 202.
    Accepted(Outcome),
    /// 400 with `{"err", "description"}`.
    Refused(Refusal),
    /// 503: Kakao's keys or our database could not be reached; nothing changed, Kakao may
    /// send it again.
    Unavailable,
}

impl EventsAnswer {
    /// The outcome, as a metric label.
    pub fn outcome(&self) -> &'static str {
        match self {
            EventsAnswer::Accepted(outcome) => outcome.as_str(),
            EventsAnswer::Refused(_) => Outcome::Refused.as_str(),
            EventsAnswer::Unavailable => "unavailable",
        }
    }
}

/// The account status change webhook: the Security Event Token is verified (`events`), its
/// `jti` must be new, and each event is applied (or recorded and ignored) within `BUDGET`.
pub async fn events_webhook(
    pool: &DbPool,
    kakao: &KakaoClient,
    content_type: Option<&str>,
    body: &[u8],
) -> EventsAnswer {
    let answer = events_webhook_uncounted(pool, kakao, content_type, body).await;
    crate::telemetry::metrics::get().webhook("events", answer.outcome());
    answer
}

/// [`events_webhook`] before it is counted.
async fn events_webhook_uncounted(
    pool: &DbPool,
    kakao: &KakaoClient,
    content_type: Option<&str>,
    body: &[u8],
) -> EventsAnswer {
    let refuse = |err: &'static str, why: String, kakao_id| {
        EventsAnswer::Refused(Refusal {
            webhook: Webhook::Events,
            status: 400,
            err,
            why,
            kakao_id,
        })
    };
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    if media.as_deref() != Some("application/secevent+jwt") {
        return refuse(
            "invalid_request",
            "Content-Type must be application/secevent+jwt".into(),
            None,
        );
    }
    let Ok(token) = std::str::from_utf8(body) else {
        return refuse("invalid_request", "the body is not a token".into(), None);
    };
    let event = match kakao.verify_security_event(token.trim()).await {
        Ok(event) => event,
        Err(Some(refused)) => {
            log::warn!(
                "event=webhook.events.refused err={} reason=\"{}\"",
                refused.err,
                refused.description
            );
            let SetRefused { err, description } = refused;
            return refuse(err, description, None);
        }
        Err(None) => return EventsAnswer::Unavailable,
    };
    let said: Vec<KakaoSaid> = event
        .events
        .iter()
        .map(|(uri, body)| KakaoSaid::from_event(uri, body))
        .collect();
    let label = event
        .events
        .iter()
        .map(|(uri, _)| uri.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    for (uri, _) in &event.events {
        if matches!(
            KakaoSaid::from_event(uri, &serde_json::Value::Null),
            KakaoSaid::Nothing { known: false }
        ) {
            log::info!(
                "event=webhook.events.unknown uri=\"{}\"",
                events::short_name(uri)
            );
        }
    }
    match within_budget(
        pool,
        Webhook::Events,
        label,
        event.kakao_id,
        Some(event.jti.clone()),
        said,
    )
    .await
    {
        Ok(outcome) => EventsAnswer::Accepted(outcome),
        Err(Some(ReceiveError::Replayed)) => refuse(
            "invalid_request",
            "this jti was received before".into(),
            Some(event.kakao_id),
        ),
        Err(_) => EventsAnswer::Unavailable,
    }
}

/// `receive` on the blocking pool; the answer waits at most `BUDGET`. The work itself is not
/// cut off when the wait ends: it goes on, and records its own outcome (or, when it fails,
/// a `failed` row), so a delivery is never recorded as failed and then applied. `Err(None)`
/// when it failed or was not done within the budget.
async fn within_budget(
    pool: &DbPool,
    webhook: Webhook,
    event: String,
    kakao_id: i64,
    jti: Option<String>,
    said: Vec<KakaoSaid>,
) -> Result<Outcome, Option<ReceiveError>> {
    let pool = pool.clone();
    let work = actix_web::rt::spawn(async move {
        let done = {
            let event = event.clone();
            db::run(&pool, move |conn| {
                receive(
                    conn,
                    &Word {
                        webhook,
                        event: &event,
                        kakao_id,
                        jti: jti.as_deref(),
                        said: &said,
                    },
                )
            })
            .await
        };
        match &done {
            Ok(outcome) => log::info!(
                "event=webhook.received kind={} kakao_id={kakao_id} outcome={}",
                webhook.as_str(),
                outcome.as_str()
            ),
            Err(ReceiveError::Replayed) => {}
            Err(e) => {
                // The transaction rolled back: nothing changed, and that is what is recorded.
                let failure = e.to_string();
                log::error!(
                    "event=webhook.failed kind={} kakao_id={kakao_id} error=\"{failure}\"",
                    webhook.as_str()
                );
                let note = db::run(&pool, move |conn| {
                    record_without_effect(
                        conn,
                        webhook,
                        &event,
                        Some(kakao_id),
                        Outcome::Failed,
                        &failure,
                    )
                });
                let _ = actix_web::rt::time::timeout(Duration::from_millis(500), note).await;
            }
        }
        done
    });
    match actix_web::rt::time::timeout(BUDGET, work).await {
        Ok(Ok(Ok(outcome))) => Ok(outcome),
        Ok(Ok(Err(ReceiveError::Replayed))) => Err(Some(ReceiveError::Replayed)),
        Ok(Ok(Err(_))) | Ok(Err(_)) => Err(None),
        Err(_) => {
            log::warn!(
                "event=webhook.slow kind={} kakao_id={kakao_id} budget_s={} note=\"answered; the work goes on and records its outcome\"",
                webhook.as_str(),
                BUDGET.as_secs()
            );
            Err(None)
        }
    }
}

/// Which webhook a delivery came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Webhook {
    /// The unlink webhook (연결 해제 웹훅).
    Unlink,
    /// The account status change webhook (계정 상태 변경 웹훅): Security Event Tokens.
    Events,
}

impl Webhook {
    pub fn as_str(self) -> &'static str {
        match self {
            Webhook::Unlink => "unlink",
            Webhook::Events => "events",
        }
    }
}

/// How a delivery ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Its effect was made (and audited).
    Applied,
    /// The person is known; nothing to change (said before, or an event that asks nothing).
    NoChange,
    /// No user here is linked to that Kakao account.
    UnknownUser,
    /// Refused: not from Kakao, malformed, or a replay. Nothing changed.
    Refused,
    /// Accepted from Kakao, but our side failed (logged); nothing changed.
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Applied,
        Outcome::NoChange,
        Outcome::UnknownUser,
        Outcome::Refused,
        Outcome::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::NoChange => "no_change",
            Outcome::UnknownUser => "unknown_user",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// A row of `webhook_deliveries`.
#[derive(Queryable, Debug, Clone, PartialEq, Eq)]
#[diesel(table_name = webhook_deliveries)]
pub struct Delivery {
    pub id: i64,
    pub received_at: NaiveDateTime,
    /// `unlink` or `events`.
    pub kind: String,
    /// The referrer type, or the event URIs.
    pub event: String,
    pub kakao_id: Option<i64>,
    pub user_id: Option<i64>,
    pub outcome: String,
    /// Why it was refused or failed, or what was done.
    pub detail: String,
    pub jti: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = webhook_deliveries)]
struct NewDelivery<'a> {
    received_at: NaiveDateTime,
    kind: &'a str,
    event: &'a str,
    kakao_id: Option<i64>,
    user_id: Option<i64>,
    outcome: &'a str,
    detail: &'a str,
    jti: Option<&'a str>,
}

/// A delivery that passed the webhook's checks.
#[derive(Debug, Clone)]
pub struct Word<'a> {
    pub webhook: Webhook,
    /// What is recorded as its event (the referrer type, or the event URIs).
    pub event: &'a str,
    pub kakao_id: i64,
    /// A Security Event Token's id (refused when seen before).
    pub jti: Option<&'a str>,
    pub said: &'a [KakaoSaid],
}

/// Why a delivery was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// This `jti` was delivered before: nothing changed (the refusal is recorded).
    #[error("jti already received")]
    Replayed,
    #[error(transparent)]
    Change(#[from] ChangeError),
}

impl From<DbError> for ReceiveError {
    fn from(e: DbError) -> Self {
        ReceiveError::Change(ChangeError::Db(e))
    }
}

impl From<diesel::result::Error> for ReceiveError {
    fn from(e: diesel::result::Error) -> Self {
        ReceiveError::from(DbError::from(e))
    }
}

impl db::DbFailure for ReceiveError {
    fn db_unavailable(&self) -> bool {
        matches!(self, ReceiveError::Change(e) if e.db_unavailable())
    }
    fn db_busy(&self) -> bool {
        matches!(self, ReceiveError::Change(e) if e.db_busy())
    }
}

/// Apply a word from Kakao and record its delivery, in one transaction; returns the outcome.
/// A replayed `jti` changes nothing and records nothing (the caller records the refusal).
pub fn receive(conn: &mut DbConnection, word: &Word<'_>) -> Result<Outcome, ReceiveError> {
    db::transaction_with_retry(
        conn,
        |e: &ReceiveError| matches!(e, ReceiveError::Change(ChangeError::Db(d)) if d.is_busy()),
        |conn| {
            let mut outcome = Outcome::UnknownUser;
            let mut user_id = None;
            let mut done = Vec::new();
            for said in word.said {
                match changes::kakao_said_in(conn, word.kakao_id, said)? {
                    KakaoEffect::Applied(user) => {
                        outcome = Outcome::Applied;
                        user_id = Some(user.id);
                        done.push(effect_name(said));
                    }
                    KakaoEffect::NoChange(user) => {
                        if outcome != Outcome::Applied {
                            outcome = Outcome::NoChange;
                        }
                        user_id = user_id.or(Some(user.id));
                    }
                    KakaoEffect::UnknownUser => {}
                }
            }
            let mut detail = done.join(", ");
            if outcome == Outcome::UnknownUser
                && let Some((delivery, user)) = previously_applied(conn, word.kakao_id)?
            {
                // Said again after it took effect (the link is gone now): a repeat, shown
                // with the person it was about.
                outcome = Outcome::NoChange;
                user_id = user;
                detail = format!("already applied by delivery #{delivery}");
            }
            insert(
                conn,
                &NewDelivery {
                    received_at: db::now(),
                    kind: word.webhook.as_str(),
                    event: word.event,
                    kakao_id: Some(word.kakao_id),
                    user_id,
                    outcome: outcome.as_str(),
                    detail: &detail,
                    jti: word.jti,
                },
            )
            .map_err(|e| match e {
                DbError::Unique(_) => ReceiveError::Replayed,
                e => ReceiveError::from(e),
            })?;
            Ok(outcome)
        },
    )
}

/// What an applied word did, for the delivery's detail.
fn effect_name(said: &KakaoSaid) -> &'static str {
    match said {
        KakaoSaid::Unlinked { .. } => "link removed, sessions ended",
        KakaoSaid::AccountDeleted { .. } => "link removed, sessions ended, deactivated",
        KakaoSaid::SessionsRevoked { .. } => "sessions ended",
        KakaoSaid::Disabled => "sign-in blocked, sessions ended",
        KakaoSaid::Enabled => "sign-in unblocked",
        KakaoSaid::Nothing { .. } => "nothing",
    }
}

/// The latest delivery about `kakao_id` that had an effect, and whom it was about.
fn previously_applied(
    conn: &mut DbConnection,
    kakao_id: i64,
) -> Result<Option<(i64, Option<i64>)>, DbError> {
    Ok(webhook_deliveries::table
        .filter(webhook_deliveries::kakao_id.eq(kakao_id))
        .filter(webhook_deliveries::outcome.eq(Outcome::Applied.as_str()))
        .order(webhook_deliveries::id.desc())
        .select((webhook_deliveries::id, webhook_deliveries::user_id))
        .first(conn)
        .optional()?)
}

fn insert(conn: &mut DbConnection, row: &NewDelivery<'_>) -> Result<(), DbError> {
    diesel::insert_into(webhook_deliveries::table)
        .values(row)
        .execute(conn)
        .map_err(DbError::from)?;
    Ok(())
}

/// Record a delivery that was refused (or failed on our side) and changed nothing.
pub fn refused(
    conn: &mut DbConnection,
    webhook: Webhook,
    event: &str,
    kakao_id: Option<i64>,
    why: &str,
) -> Result<(), DbError> {
    record_without_effect(conn, webhook, event, kakao_id, Outcome::Refused, why)
}

/// How long refused deliveries are kept (the others stay: they are what Kakao told us).
pub const REFUSED_KEPT_DAYS: i64 = 30;

/// Delete refused deliveries older than `REFUSED_KEPT_DAYS`, in bounded batches (the
/// housekeeping job's; `db::delete_in_batches`). Returns how many.
pub fn purge_old_refusals(conn: &mut DbConnection) -> Result<usize, DbError> {
    let before = db::now() - chrono::TimeDelta::days(REFUSED_KEPT_DAYS);
    let (purged, _) = db::delete_in_batches(
        conn,
        |conn, limit| {
            webhook_deliveries::table
                .filter(webhook_deliveries::outcome.eq(Outcome::Refused.as_str()))
                .filter(webhook_deliveries::received_at.lt(before))
                .select(webhook_deliveries::id)
                .limit(limit)
                .load::<i64>(conn)
        },
        |conn, ids| {
            diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(ids)))
                .execute(conn)
        },
    )?;
    Ok(purged)
}

/// Record a delivery that changed nothing, with its outcome and why.
pub fn record_without_effect(
    conn: &mut DbConnection,
    webhook: Webhook,
    event: &str,
    kakao_id: Option<i64>,
    outcome: Outcome,
    why: &str,
) -> Result<(), DbError> {
    let event: String = event.chars().take(512).collect();
    let why: String = why.chars().take(512).collect();
    db::transaction_with_retry(conn, DbError::is_busy, |conn| {
        insert(
            conn,
            &NewDelivery {
                received_at: db::now(),
                kind: webhook.as_str(),
                event: &event,
                kakao_id,
                user_id: None,
                outcome: outcome.as_str(),
                detail: &why,
                jti: None,
            },
        )
    })
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub outcome: Option<Outcome>,
    pub user_id: Option<i64>,
}

/// A page of deliveries, newest first, and the id to continue before.
#[derive(Debug, Clone)]
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    pub next_before: Option<i64>,
}

/// Newest first, `limit` at a time, older than `before` (keyset by id).
pub fn list(
    conn: &mut DbConnection,
    filter: &DeliveryFilter,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<DeliveryPage> {
    let limit = limit.clamp(1, 200);
    let mut query = webhook_deliveries::table.into_boxed();
    if let Some(outcome) = filter.outcome {
        query = query.filter(webhook_deliveries::outcome.eq(outcome.as_str()));
    }
    if let Some(user_id) = filter.user_id {
        query = query.filter(webhook_deliveries::user_id.eq(user_id));
    }
    if let Some(b) = before {
        query = query.filter(webhook_deliveries::id.lt(b));
    }
    let mut deliveries: Vec<Delivery> = query
        .order(webhook_deliveries::id.desc())
        .limit(limit + 1)
        .load(conn)?;
    let more = deliveries.len() as i64 > limit;
    deliveries.truncate(limit as usize);
    let next_before = if more {
        deliveries.last().map(|d| d.id)
    } else {
        None
    };
    Ok(DeliveryPage {
        deliveries,
        next_before,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_round_trip_by_name() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(Outcome::parse("maybe"), None);
    }
}
