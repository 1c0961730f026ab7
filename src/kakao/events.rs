//! What Kakao's two Kakao Login webhooks say, read and checked (no effects here: those are
//! `users::kakao_events`).
//!
//! - The **unlink webhook**: `app_id`, `user_id`, `referrer_type` (and an optional
//!   `group_user_token`), as a GET query or a POST form, authenticated by
//!   `Authorization: KakaoAK {primary admin key}`.
//! - The **account status change webhook**: a Security Event Token (RFC 8417), an RS256 JWS
//!   verified with the same keys and key cache as the ID tokens (`oidc::KeyCache`): `iss` the
//!   configured issuer, `aud` one of the accepted audiences (sources disagree whether Kakao
//!   puts the REST API key or the numeric app id there: every configured one is accepted),
//!   `iat` within `MAX_AGE`, a `jti`, and `events`. The person is a top-level `sub` or the
//!   event's `subject.sub`; both are read. The event URIs below are from third-party
//!   implementations, not Kakao's own text (kakao-api-2026-12.md §1.5).

use std::collections::BTreeMap;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Event URIs the app acts on (or deliberately ignores).
pub mod uri {
    pub const USER_LINKED: &str =
        "https://schemas.openid.net/secevent/oauth/event-type/user-linked";
    pub const USER_UNLINKED: &str =
        "https://schemas.openid.net/secevent/oauth/event-type/user-unlinked";
    pub const USER_SCOPE_CONSENT: &str =
        "https://schemas.openid.net/secevent/oauth/event-type/user-scope-consent";
    pub const TOKENS_REVOKED: &str =
        "https://schemas.openid.net/secevent/oauth/event-type/tokens-revoked";
    pub const SESSIONS_REVOKED: &str =
        "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked";
    pub const ACCOUNT_DISABLED: &str =
        "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
    pub const ACCOUNT_ENABLED: &str =
        "https://schemas.openid.net/secevent/risc/event-type/account-enabled";
    pub const ACCOUNT_PURGED: &str =
        "https://schemas.openid.net/secevent/risc/event-type/account-purged";
}

/// The oldest `iat` accepted (the `jti` of every accepted token is kept, so this bounds how
/// long a stolen token could be tried, not how long replays are refused).
pub const MAX_AGE: Duration = Duration::from_secs(60 * 60);
/// Clock difference tolerated for an `iat` in the future.
const SKEW_SECS: i64 = 60;
/// Longest token looked at.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// What Kakao says happened to a person's Kakao account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KakaoSaid {
    /// The link to our app is gone (unlinked from Kakao's side, or a sign-up never
    /// completed); `reason` is Kakao's referrer type.
    Unlinked { reason: String },
    /// The Kakao account itself is deleted (ACCOUNT_DELETE, FORCED_ACCOUNT_DELETE, RISC
    /// account-purged).
    AccountDeleted { reason: String },
    /// Kakao revoked the person's tokens or sessions: end every session here.
    SessionsRevoked { reason: String },
    /// RISC account-disabled: end every session, and no sign-in until enabled again.
    Disabled,
    /// RISC account-enabled.
    Enabled,
    /// Recorded, and nothing done: events that arrive at sign-up (user-linked,
    /// user-scope-consent, which must never remove anyone) and events not acted on.
    Nothing { known: bool },
}

impl KakaoSaid {
    /// The unlink webhook's `referrer_type`.
    pub fn from_referrer_type(referrer_type: &str) -> KakaoSaid {
        let reason = referrer_type.to_owned();
        match referrer_type {
            "ACCOUNT_DELETE" | "FORCED_ACCOUNT_DELETE" => KakaoSaid::AccountDeleted { reason },
            // UNLINK_FROM_APPS, UNLINK_FROM_ADMIN, INCOMPLETE_SIGN_UP, and any type Kakao adds
            // later: the webhook is only ever sent when the link is gone.
            _ => KakaoSaid::Unlinked { reason },
        }
    }

    /// One event of a Security Event Token.
    pub fn from_event(uri: &str, event: &serde_json::Value) -> KakaoSaid {
        let reason = || {
            event
                .get("reason")
                .and_then(|r| r.as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| short_name(uri).to_owned())
        };
        match uri {
            uri::USER_UNLINKED => KakaoSaid::from_referrer_type(&reason()),
            uri::ACCOUNT_PURGED => KakaoSaid::AccountDeleted {
                reason: "account-purged".into(),
            },
            uri::TOKENS_REVOKED | uri::SESSIONS_REVOKED => KakaoSaid::SessionsRevoked {
                reason: short_name(uri).to_owned(),
            },
            uri::ACCOUNT_DISABLED => KakaoSaid::Disabled,
            uri::ACCOUNT_ENABLED => KakaoSaid::Enabled,
            uri::USER_LINKED | uri::USER_SCOPE_CONSENT => KakaoSaid::Nothing { known: true },
            _ => KakaoSaid::Nothing { known: false },
        }
    }
}

/// The last path segment of an event URI (`user-unlinked`).
pub fn short_name(uri: &str) -> &str {
    uri.rsplit('/').next().unwrap_or(uri)
}

/// An unlink webhook's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlinkNotice {
    pub app_id: i64,
    pub kakao_id: i64,
    pub referrer_type: String,
}

impl UnlinkNotice {
    /// Read the fields of a query string or form body; `Err` names what is missing or wrong.
    pub fn parse(raw: &[u8]) -> Result<UnlinkNotice, &'static str> {
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in url::form_urlencoded::parse(raw) {
            if fields.insert(k.into_owned(), v.into_owned()).is_some() {
                return Err("a repeated field");
            }
        }
        let number = |name: &str| {
            fields
                .get(name)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|n| *n > 0)
        };
        let app_id = number("app_id").ok_or("app_id")?;
        let kakao_id = number("user_id").ok_or("user_id")?;
        let referrer_type = fields
            .get("referrer_type")
            .map(|r| r.trim().to_owned())
            .filter(|r| {
                !r.is_empty()
                    && r.len() <= 64
                    && r.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
            })
            .ok_or("referrer_type")?;
        Ok(UnlinkNotice {
            app_id,
            kakao_id,
            referrer_type,
        })
    }
}

/// Why a Security Event Token was refused: RFC 8935's error codes, and a description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{err}: {description}")]
pub struct SetRefused {
    /// `invalid_request`, `invalid_key`, `invalid_issuer` or `invalid_audience`.
    pub err: &'static str,
    pub description: String,
}

impl SetRefused {
    pub fn new(err: &'static str, description: impl Into<String>) -> SetRefused {
        SetRefused {
            err,
            description: description.into(),
        }
    }
}

/// A verified Security Event Token.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEvent {
    pub jti: String,
    pub kakao_id: i64,
    /// Each event URI and its object, in the token's order.
    pub events: Vec<(String, serde_json::Value)>,
}

#[derive(Deserialize)]
struct SetClaims {
    jti: Option<String>,
    iat: Option<i64>,
    sub: Option<String>,
    events: Option<serde_json::Map<String, serde_json::Value>>,
}

/// What a token must say.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub audiences: &'a [String],
}

/// Check a token against `key` (found by its `kid`): signature, `iss`, `aud`, `iat`, `jti`,
/// `events` and a subject.
pub fn verify(
    token: &str,
    key: &DecodingKey,
    expected: &Expected<'_>,
) -> Result<SecurityEvent, SetRefused> {
    let mut validation = Validation::new(Algorithm::RS256);
    // SETs carry no `exp` (RFC 8417 §2.2); `iat` is checked below.
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss", "aud"]);
    validation.set_issuer(&[expected.issuer]);
    validation.set_audience(expected.audiences);
    let data =
        jsonwebtoken::decode::<SetClaims>(token, key, &validation).map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                SetRefused::new("invalid_key", "the signature does not verify")
            }
            ErrorKind::InvalidIssuer => SetRefused::new("invalid_issuer", "unexpected iss"),
            ErrorKind::InvalidAudience => SetRefused::new("invalid_audience", "unexpected aud"),
            _ => SetRefused::new("invalid_request", format!("unreadable token: {e}")),
        })?;
    let claims = data.claims;
    let now = chrono::Utc::now().timestamp();
    let max_age = i64::try_from(MAX_AGE.as_secs()).unwrap_or(3600);
    match claims.iat {
        Some(iat) if iat > now + SKEW_SECS => {
            return Err(SetRefused::new("invalid_request", "iat is in the future"));
        }
        Some(iat) if iat < now - max_age => {
            return Err(SetRefused::new("invalid_request", "iat is too old"));
        }
        Some(_) => {}
        None => return Err(SetRefused::new("invalid_request", "no iat")),
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 256 && j.chars().all(|c| !c.is_control()))
        .ok_or_else(|| SetRefused::new("invalid_request", "no usable jti"))?;
    let events: Vec<(String, serde_json::Value)> = claims
        .events
        .filter(|e| !e.is_empty())
        .ok_or_else(|| SetRefused::new("invalid_request", "no events"))?
        .into_iter()
        .collect();
    let subject = claims.sub.or_else(|| {
        events.iter().find_map(|(_, event)| {
            event
                .get("subject")
                .and_then(|s| s.get("sub"))
                .and_then(|s| s.as_str())
                .map(str::to_owned)
        })
    });
    let kakao_id = subject
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| SetRefused::new("invalid_request", "no Kakao user id in sub"))?;
    Ok(SecurityEvent {
        jti,
        kakao_id,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlink_fields_are_read_from_a_query_or_a_form() {
        let n = UnlinkNotice::parse(
            b"app_id=424242&user_id=4100000000000000001&referrer_type=UNLINK_FROM_APPS",
        )
        .expect("parses");
        assert_eq!(n.app_id, 424_242);
        assert_eq!(n.kakao_id, 4_100_000_000_000_000_001);
        assert_eq!(n.referrer_type, "UNLINK_FROM_APPS");
        assert!(
            UnlinkNotice::parse(b"app_id=1&user_id=2&referrer_type=X&group_user_token=abc").is_ok()
        );
        for (bad, why) in [
            (&b"user_id=2&referrer_type=X"[..], "app_id"),
            (b"app_id=1&referrer_type=X", "user_id"),
            (b"app_id=1&user_id=-2&referrer_type=X", "user_id"),
            (b"app_id=1&user_id=2", "referrer_type"),
            (
                b"app_id=1&user_id=2&referrer_type=drop%20table",
                "referrer_type",
            ),
            (
                b"app_id=1&app_id=2&user_id=2&referrer_type=X",
                "a repeated field",
            ),
        ] {
            assert_eq!(UnlinkNotice::parse(bad), Err(why));
        }
    }

    #[test]
    fn events_map_to_what_they_mean_and_sign_up_events_never_remove_anyone() {
        let none = serde_json::json!({});
        assert_eq!(
            KakaoSaid::from_event(
                uri::USER_UNLINKED,
                &serde_json::json!({"reason": "ACCOUNT_DELETE"})
            ),
            KakaoSaid::AccountDeleted {
                reason: "ACCOUNT_DELETE".into()
            }
        );
        assert!(matches!(
            KakaoSaid::from_event(uri::USER_UNLINKED, &none),
            KakaoSaid::Unlinked { .. }
        ));
        assert!(matches!(
            KakaoSaid::from_event(uri::SESSIONS_REVOKED, &none),
            KakaoSaid::SessionsRevoked { .. }
        ));
        assert_eq!(
            KakaoSaid::from_event(uri::ACCOUNT_DISABLED, &none),
            KakaoSaid::Disabled
        );
        assert_eq!(
            KakaoSaid::from_event(uri::ACCOUNT_ENABLED, &none),
            KakaoSaid::Enabled
        );
        for signup in [uri::USER_LINKED, uri::USER_SCOPE_CONSENT] {
            assert_eq!(
                KakaoSaid::from_event(signup, &serde_json::json!({"reason": "ACCOUNT_DELETE"})),
                KakaoSaid::Nothing { known: true }
            );
        }
        assert_eq!(
            KakaoSaid::from_event("https://example.com/event-type/new", &none),
            KakaoSaid::Nothing { known: false }
        );
        assert_eq!(
            KakaoSaid::from_referrer_type("FORCED_ACCOUNT_DELETE"),
            KakaoSaid::AccountDeleted {
                reason: "FORCED_ACCOUNT_DELETE".into()
            }
        );
        assert_eq!(short_name(uri::ACCOUNT_PURGED), "account-purged");
    }
}
