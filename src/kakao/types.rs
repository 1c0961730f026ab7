//! Kakao's answers as they really arrive: 64-bit ids, every `kakao_account` field optional,
//! deprecated fields tolerated (never `deny_unknown_fields`), and both error shapes.

use serde::{Deserialize, Serialize};

/// `GET /v2/user/me`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct KakaoUser {
    /// Kakao's service user id (회원번호): 64-bit, beyond JavaScript's safe integers.
    pub id: i64,
    #[serde(default)]
    pub connected_at: Option<String>,
    #[serde(default)]
    pub kakao_account: Option<KakaoAccount>,
    /// Deprecated `properties.nickname` and app-defined properties.
    #[serde(default)]
    pub properties: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `kakao_account`: each value is present only with its consent item.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct KakaoAccount {
    #[serde(default)]
    pub profile_nickname_needs_agreement: Option<bool>,
    #[serde(default)]
    pub profile: Option<KakaoProfile>,
    #[serde(default)]
    pub email_needs_agreement: Option<bool>,
    #[serde(default)]
    pub is_email_valid: Option<bool>,
    #[serde(default)]
    pub is_email_verified: Option<bool>,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct KakaoProfile {
    #[serde(default)]
    pub nickname: Option<String>,
    #[serde(default)]
    pub is_default_nickname: Option<bool>,
}

/// What the email in a Kakao profile allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailStatus {
    /// Consented, verified and valid: the account can be recognised by it.
    Trusted(String),
    /// Not shared: the person did not consent to `account_email`.
    Missing,
    /// Shared but not verified by Kakao.
    Unverified,
    /// Shared but no longer valid (taken over by another Kakao account), or not an address.
    Invalid,
}

impl KakaoUser {
    /// The nickname, from `kakao_account.profile` or the deprecated `properties`.
    pub fn nickname(&self) -> Option<String> {
        let from_profile = self
            .kakao_account
            .as_ref()
            .and_then(|a| a.profile.as_ref())
            .filter(|p| p.is_default_nickname != Some(true))
            .and_then(|p| p.nickname.clone());
        from_profile.or_else(|| {
            self.properties
                .as_ref()
                .and_then(|p| p.get("nickname"))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
    }

    /// Decide whether the email can be trusted: present, `is_email_valid` and
    /// `is_email_verified` both true, and a syntactically valid address.
    pub fn email_status(&self) -> EmailStatus {
        let Some(account) = &self.kakao_account else {
            return EmailStatus::Missing;
        };
        let Some(email) = account.email.as_deref().filter(|e| !e.trim().is_empty()) else {
            return EmailStatus::Missing;
        };
        if account.is_email_valid != Some(true) {
            return EmailStatus::Invalid;
        }
        if account.is_email_verified != Some(true) {
            return EmailStatus::Unverified;
        }
        let normalized = crate::users::manager::UserManager::normalize_email(email);
        if crate::users::manager::UserManager::email_problem(&normalized).is_some() {
            return EmailStatus::Invalid;
        }
        EmailStatus::Trusted(normalized)
    }
}

/// `GET /v1/user/access_token_info`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: i64,
    pub expires_in: i64,
    pub app_id: i64,
}

/// `{"id": N}` from logout and unlink.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct IdOnly {
    pub id: i64,
}

/// The token answer's fields beyond OAuth's: the OpenID Connect ID token, when Kakao issues
/// one (OIDC on in the console).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct KakaoTokenFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl oauth2::ExtraTokenFields for KakaoTokenFields {}

/// `GET /v2/user/scopes`: the person's consent items.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct ScopesAnswer {
    pub id: i64,
    #[serde(default)]
    pub scopes: Vec<ConsentItem>,
}

/// One consent item (동의 항목) and whether the person agreed to it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct ConsentItem {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// `PRIVACY` (personal information) or `SERVICE`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Whether the app uses the item.
    #[serde(default)]
    pub using: Option<bool>,
    #[serde(default)]
    pub agreed: bool,
    /// Present only for agreed items.
    #[serde(default)]
    pub revocable: Option<bool>,
}

/// `GET /v1/user/ids` (admin key): a page of linked users' ids.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct UserIds {
    #[serde(default)]
    pub elements: Vec<i64>,
}

/// kauth's error body: `{"error", "error_description", "error_code": "KOE..."}`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct KauthErrorBody {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub error_code: Option<String>,
}

impl std::fmt::Display for KauthErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({})",
            self.error,
            self.error_code.as_deref().unwrap_or("no KOE code")
        )
    }
}

impl oauth2::ErrorResponse for KauthErrorBody {}

/// kapi's error body: `{"msg", "code"}`; `msg` is informational only.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct KapiErrorBody {
    pub code: i64,
    #[serde(default)]
    pub msg: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> KakaoUser {
        serde_json::from_str(json).expect("parses")
    }

    #[test]
    fn official_full_sample_parses_and_email_is_trusted() {
        let u = parse(
            r#"{"id":1376016924429759243,"connected_at":"2022-04-11T01:45:28Z",
            "kakao_account":{"profile_nickname_needs_agreement":false,"profile":{"nickname":"홍길동",
            "thumbnail_image_url":"http://x/y.jpg","is_default_image":false,"is_default_nickname":false},
            "name_needs_agreement":false,"name":"홍길동","email_needs_agreement":false,"is_email_valid":true,
            "is_email_verified":true,"email":"Sample@Sample.com","age_range":"20~29","has_email":true,
            "gender":"female"},"properties":{"nickname":"옛닉네임"},"for_partner":{"uuid":"u"}}"#,
        );
        assert_eq!(u.id, 1_376_016_924_429_759_243);
        assert_eq!(u.nickname().as_deref(), Some("홍길동"));
        assert_eq!(
            u.email_status(),
            EmailStatus::Trusted("sample@sample.com".into())
        );
    }

    #[test]
    fn minimal_nickname_only_sample_has_no_email() {
        let u = parse(
            r#"{"id":123456789,"connected_at":"2022-04-11T01:45:28Z",
            "kakao_account":{"profile_nickname_needs_agreement":false,"profile":{"nickname":"홍길동"}},
            "properties":{"k":"v"}}"#,
        );
        assert_eq!(u.email_status(), EmailStatus::Missing);
        let bare = parse(r#"{"id":1}"#);
        assert_eq!(bare.email_status(), EmailStatus::Missing);
        assert_eq!(bare.nickname(), None);
    }

    #[test]
    fn unverified_and_invalid_emails_are_not_trusted() {
        let unverified = parse(
            r#"{"id":1,"kakao_account":{"email":"a@b.co","is_email_valid":true,"is_email_verified":false}}"#,
        );
        assert_eq!(unverified.email_status(), EmailStatus::Unverified);
        let invalid = parse(
            r#"{"id":1,"kakao_account":{"email":"a@b.co","is_email_valid":false,"is_email_verified":true}}"#,
        );
        assert_eq!(invalid.email_status(), EmailStatus::Invalid);
        let flags_missing = parse(r#"{"id":1,"kakao_account":{"email":"a@b.co"}}"#);
        assert_eq!(flags_missing.email_status(), EmailStatus::Invalid);
        let not_an_address = parse(
            r#"{"id":1,"kakao_account":{"email":"nope","is_email_valid":true,"is_email_verified":true}}"#,
        );
        assert_eq!(not_an_address.email_status(), EmailStatus::Invalid);
    }

    #[test]
    fn deprecated_properties_nickname_is_used_when_profile_is_absent() {
        let u = parse(r#"{"id":1,"properties":{"nickname":"옛닉"}}"#);
        assert_eq!(u.nickname().as_deref(), Some("옛닉"));
    }

    #[test]
    fn ids_that_are_not_integers_are_refused() {
        assert!(serde_json::from_str::<KakaoUser>(r#"{"id":1.5e18}"#).is_err());
        assert!(serde_json::from_str::<KakaoUser>(r#"{"id":"123"}"#).is_err());
    }
}
