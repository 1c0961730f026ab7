//! Request and response bodies of the API (never database rows).

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::users::changes::{KakaoUnlink, Removed, UserPatch};
use crate::users::model::User;
use crate::web::extract::BodyFields;

/// A user as the API shows it. No tokens, sessions or password hashes, ever.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct UserResponse {
    pub id: i64,
    pub email: String,
    pub name: Option<String>,
    pub age: Option<i32>,
    /// How the user signed up: `kakao` or `local`.
    pub provider: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    /// RFC 3339, UTC.
    pub date_joined: String,
    /// RFC 3339, UTC; null when never signed in.
    pub last_login: Option<String>,
}

fn rfc3339(t: chrono::NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl From<&User> for UserResponse {
    fn from(u: &User) -> Self {
        UserResponse {
            id: u.id,
            email: u.email.clone(),
            name: u.name.clone(),
            age: u.age,
            provider: u.provider.clone(),
            is_active: u.is_active,
            is_staff: u.is_staff,
            is_superuser: u.is_superuser,
            date_joined: rfc3339(u.date_joined),
            last_login: u.last_login.map(rfc3339),
        }
    }
}

/// A page of users. `next` and `previous` are full URLs (keyset cursors), or null.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserListResponse {
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<UserResponse>,
}

/// `Some(None)` for an explicit null, `None` when the field is absent.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Changes to a user (PATCH: any subset; PUT: every field the caller may change). Which
/// fields a caller may send depends on who they are (see the permission policy).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub age: Option<Option<i32>>,
    /// Staff only.
    pub email: Option<String>,
    /// Staff only.
    pub is_active: Option<bool>,
    /// Superusers only.
    pub is_staff: Option<bool>,
    /// Superusers only.
    pub is_superuser: Option<bool>,
}

impl BodyFields for UpdateUserRequest {
    const FIELDS: &'static [&'static str] = &[
        "name",
        "age",
        "email",
        "is_active",
        "is_staff",
        "is_superuser",
    ];
}

impl From<UpdateUserRequest> for UserPatch {
    fn from(r: UpdateUserRequest) -> Self {
        UserPatch {
            name: r.name,
            age: r.age,
            email: r.email,
            is_active: r.is_active,
            is_staff: r.is_staff,
            is_superuser: r.is_superuser,
        }
    }
}

/// A person's own changes through `/api/users/me/`: name and age only.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub age: Option<Option<i32>>,
}

impl BodyFields for UpdateMeRequest {
    const FIELDS: &'static [&'static str] = &["name", "age"];
}

/// A new user (staff; staff and superuser flags need a superuser).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub email: String,
    pub name: Option<String>,
    pub age: Option<i32>,
    /// `local` (default) or `kakao`.
    pub provider: Option<String>,
    pub is_active: Option<bool>,
    pub is_staff: Option<bool>,
    pub is_superuser: Option<bool>,
}

impl BodyFields for CreateUserRequest {
    const FIELDS: &'static [&'static str] = &[
        "email",
        "name",
        "age",
        "provider",
        "is_active",
        "is_staff",
        "is_superuser",
    ];
}

/// Sign in with a token from Kakao's mobile SDK (no CSRF token: it acts on no existing
/// session): either an access token (checked with Kakao), or an OpenID Connect ID token
/// (verified against Kakao's keys) with, optionally, the nonce the app sent.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KakaoTokenRequest {
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub id_token: Option<String>,
    /// With `id_token`: the nonce the app passed to Kakao's SDK, compared with the token's.
    #[serde(default)]
    pub nonce: Option<String>,
}

impl BodyFields for KakaoTokenRequest {
    const FIELDS: &'static [&'static str] = &["access_token", "id_token", "nonce"];
}

/// What happened to an account that was deleted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeletedResponse {
    pub deleted: bool,
    pub id: i64,
    /// `unlinked`, `not_linked`, `not_configured` (no admin key) or `failed`.
    pub kakao_unlink: String,
    /// Why unlinking failed, when it did.
    pub kakao_error: Option<String>,
}

impl From<&Removed> for DeletedResponse {
    fn from(r: &Removed) -> Self {
        DeletedResponse {
            deleted: true,
            id: r.user.id,
            kakao_unlink: r.kakao.as_str().to_owned(),
            kakao_error: match &r.kakao {
                KakaoUnlink::Failed(why) => Some(why.clone()),
                _ => None,
            },
        }
    }
}

/// The CSRF token to send as `X-CSRF-Token` with cookie-authenticated unsafe requests.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CsrfResponse {
    pub csrf_token: String,
}

/// An error body: `{"error": code, ...}`; validation errors are a field map instead.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorResponse {
    pub error: String,
    pub detail: Option<String>,
    pub temporary: Option<bool>,
}
