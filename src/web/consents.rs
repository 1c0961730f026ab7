//! A person's Kakao consent items (동의 항목), as the profile page and the admin's user detail
//! show them. Read with the admin key (`GET /v2/user/scopes`) when one is configured; any
//! failure at Kakao degrades to "not available", never an error page.

use std::time::Duration;

use crate::kakao::{ConsentItem, KakaoClient};

/// Longest the page waits for Kakao's answer: the items are a detail of the page.
const WAIT: Duration = Duration::from_secs(2);

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

/// The consent items of Kakao user `kakao_id`: `None` when there is nothing to show (no admin
/// key configured, or no Kakao link).
pub async fn consents(kakao: &KakaoClient, kakao_id: Option<i64>) -> Option<Consents> {
    let kakao_id = kakao_id?;
    kakao.config().admin_key.as_ref()?;
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
