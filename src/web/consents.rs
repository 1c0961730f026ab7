//! A person's Kakao consent items (동의 항목), as the profile page and the admin's user detail
//! show them. Read with the admin key (`GET /v2/user/scopes`) when one is configured; any
//! failure at Kakao degrades to "not available", never an error page.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::db::{self, DbError};
use crate::kakao::{ConsentItem, KakaoClient};
use crate::state::AppState;

/// Longest the page waits for Kakao's answer: the items are a detail of the page.
const WAIT: Duration = Duration::from_secs(2);
/// How long an answer is reused: the profile page is where every sign-in lands, and a
/// Kakao call per view would spend the app's quota and its time. A consent given or taken
/// back shows within this long.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// Users remembered before the cache is emptied.
const CACHE_MAX: usize = 10_000;

/// Recent answers, by user id: their Kakao id and items (only answers Kakao gave; a failure
/// is asked again next time).
#[derive(Default)]
pub struct ConsentCache {
    entries: Mutex<HashMap<i64, CachedConsents>>,
}

/// One remembered answer: when, the Kakao id, the items.
type CachedConsents = (Instant, Option<i64>, Vec<ConsentRow>);

impl ConsentCache {
    /// A recent answer for `user_id`: `Some(kakao id, rows)`.
    pub fn get(&self, user_id: i64) -> Option<(Option<i64>, Vec<ConsentRow>)> {
        let entries = self.entries.lock().ok()?;
        let (at, kakao_id, rows) = entries.get(&user_id)?;
        (at.elapsed() < CACHE_TTL).then(|| (*kakao_id, rows.clone()))
    }

    /// Whether a recent answer for `user_id` is kept (without copying it).
    pub fn has(&self, user_id: i64) -> bool {
        self.entries.lock().is_ok_and(|e| {
            e.get(&user_id)
                .is_some_and(|(at, _, _)| at.elapsed() < CACHE_TTL)
        })
    }

    pub fn put(&self, user_id: i64, kakao_id: Option<i64>, rows: Vec<ConsentRow>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_MAX {
                entries.retain(|_, (at, _, _)| at.elapsed() < CACHE_TTL);
                if entries.len() >= CACHE_MAX {
                    entries.clear();
                }
            }
            entries.insert(user_id, (Instant::now(), kakao_id, rows));
        }
    }
}

/// What the page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consents {
    /// Each item, agreed or not.
    Items(Vec<ConsentRow>),
    /// Kakao could not be asked just now.
    Unavailable,
}

/// One consent item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    pub id: String,
    pub name: String,
    pub agreed: bool,
}

impl Consents {
    /// Whether the person has not agreed to share their email (the page offers to ask again).
    pub fn email_declined(&self) -> bool {
        matches!(self, Consents::Items(rows) if rows.iter().any(|r| r.id == "account_email" && !r.agreed))
    }
}

/// On a page's own trip to the database: the Kakao id of user `user_id` when [`for_user`] will
/// need it (`admin_key`: one is configured, and no recent answer is cached), so that it makes
/// no trip of its own; `None` when it will not.
pub fn kakao_id_if_needed(
    conn: &mut db::DbConnection,
    state: &AppState,
    admin_key: bool,
    user_id: i64,
) -> Result<Option<Option<i64>>, DbError> {
    if !admin_key || state.consent_cache.has(user_id) {
        return Ok(None);
    }
    crate::users::lookup::kakao_id_of(conn, user_id).map(Some)
}

/// The consent items of user `user_id`, from the cache or from Kakao: `None` when there is
/// nothing to show (no admin key configured, or no Kakao link). `kakao_id` is their Kakao
/// id when the caller knows it (else it is looked up, on a cache miss only).
pub async fn for_user(
    state: &AppState,
    kakao: &KakaoClient,
    user_id: i64,
    kakao_id: Option<Option<i64>>,
) -> Result<Option<Consents>, DbError> {
    if kakao.config().admin_key.is_none() {
        return Ok(None);
    }
    if let Some((cached_id, rows)) = state.consent_cache.get(user_id) {
        return Ok(cached_id.map(|_| Consents::Items(rows)));
    }
    let kakao_id = match kakao_id {
        Some(known) => known,
        None => {
            db::run(&state.pool, move |conn| {
                crate::users::lookup::kakao_id_of(conn, user_id)
            })
            .await?
        }
    };
    let found = consents(kakao, kakao_id).await;
    match &found {
        Some(Consents::Items(rows)) => state.consent_cache.put(user_id, kakao_id, rows.clone()),
        None => state.consent_cache.put(user_id, None, Vec::new()),
        Some(Consents::Unavailable) => {}
    }
    Ok(found)
}

/// The consent items of Kakao user `kakao_id`, asked of Kakao.
async fn consents(kakao: &KakaoClient, kakao_id: Option<i64>) -> Option<Consents> {
    let kakao_id = kakao_id?;
    match actix_web::rt::time::timeout(WAIT, kakao.consent_items(kakao_id)).await {
        Ok(Ok(Some(items))) => Some(Consents::Items(items.iter().map(row).collect())),
        Ok(Ok(None)) => None,
        Ok(Err(e)) => {
            log::warn!(
                "event=kakao.scopes.failed kakao_id={kakao_id} code={} error=\"{e}\"",
                e.log_code()
            );
            Some(Consents::Unavailable)
        }
        Err(_) => {
            log::warn!("event=kakao.scopes.failed kakao_id={kakao_id} code=timeout");
            Some(Consents::Unavailable)
        }
    }
}

fn row(item: &ConsentItem) -> ConsentRow {
    ConsentRow {
        name: item
            .display_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| item.id.clone()),
        id: item.id.clone(),
        agreed: item.agreed,
    }
}
