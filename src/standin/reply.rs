//! Response building shared by the stand-in's handlers: Kakao's JSON and error bodies, redirects,
//! HTML pages with the stand-in's security headers, form parsing and fault injection.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::Fault;

/// The exact `Content-Type` Kakao sends with its JSON answers.
pub(super) const JSON_CONTENT_TYPE: &str = "application/json;charset=UTF-8";
/// Content-Security-Policy for the stand-in's own HTML pages: nothing external may load.
pub(super) const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'";

/// An error in kauth's shape: `{"error":..., "error_description":..., "error_code":"KOE..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(super) struct KauthError {
    #[serde(skip)]
    pub(super) status: u16,
    pub(super) error: String,
    pub(super) error_description: String,
    pub(super) error_code: String,
}

impl KauthError {
    /// Build one from its parts.
    pub(super) fn new(
        status: u16,
        error: &str,
        description: impl Into<String>,
        code: &str,
    ) -> Self {
        Self {
            status,
            error: error.to_owned(),
            error_description: description.into(),
            error_code: code.to_owned(),
        }
    }

    /// The HTTP answer carrying this error.
    pub(super) fn response(&self) -> HttpResponse {
        json(self.status, self)
    }
}

/// An error in kapi's shape: `{"msg":..., "code":<negative int>}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(super) struct KapiError {
    #[serde(skip)]
    pub(super) status: u16,
    pub(super) msg: String,
    pub(super) code: i64,
}

impl KapiError {
    /// Build one from its parts.
    pub(super) fn new(status: u16, code: i64, msg: impl Into<String>) -> Self {
        Self {
            status,
            msg: msg.into(),
            code,
        }
    }

    /// `401 {"msg":"this access token does not exist","code":-401}`.
    pub(super) fn token_does_not_exist() -> Self {
        Self::new(401, -401, "this access token does not exist")
    }

    /// `401 {"msg":"this access token is already expired","code":-401}`.
    pub(super) fn token_expired() -> Self {
        Self::new(401, -401, "this access token is already expired")
    }

    /// `400 {"msg":"NotRegisteredUserException","code":-101}`.
    pub(super) fn not_registered() -> Self {
        Self::new(400, -101, "NotRegisteredUserException")
    }

    /// The HTTP answer carrying this error.
    pub(super) fn response(&self) -> HttpResponse {
        json(self.status, self)
    }
}

/// `status` as a `StatusCode`, falling back to 500 for numbers HTTP does not allow.
pub(super) fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A JSON answer with Kakao's `Content-Type`.
pub(super) fn json<T: Serialize>(status: u16, body: &T) -> HttpResponse {
    match serde_json::to_string(body) {
        Ok(text) => raw_json(status, text),
        Err(err) => {
            log::error!("stand-in: cannot serialise a response: {err}");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// A JSON-typed answer with exactly this body text (which may deliberately not be JSON).
pub(super) fn raw_json(status: u16, body: String) -> HttpResponse {
    HttpResponse::build(status_code(status))
        .insert_header((header::CONTENT_TYPE, JSON_CONTENT_TYPE))
        .body(body)
}

/// One of the stand-in's own HTML pages, with its security headers.
pub(super) fn html(status: u16, body: String) -> HttpResponse {
    HttpResponse::build(status_code(status))
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_CSP))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

/// `302 Found` to `location` with an empty body.
pub(super) fn found(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Percent-encode everything except RFC 3986 unreserved characters (so a space is `%20`, as in
/// Kakao's `error_description=User%20denied%20access`).
pub(super) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `redirect_uri` with `params` appended to its query string (keeping any query it already has).
pub(super) fn redirect_target(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut target = redirect_uri.to_owned();
    for (name, value) in params {
        let separator = if target.contains('?') {
            if target.ends_with('?') || target.ends_with('&') {
                ""
            } else {
                "&"
            }
        } else {
            "?"
        };
        target.push_str(separator);
        target.push_str(&percent_encode(name));
        target.push('=');
        target.push_str(&percent_encode(value));
    }
    target
}

/// Parsed `application/x-www-form-urlencoded` parameters; the first occurrence of a name wins.
#[derive(Clone, Debug, Default)]
pub(super) struct Params(HashMap<String, String>);

impl Params {
    /// Parse a urlencoded string (query string or form body).
    pub(super) fn parse(input: &[u8]) -> Self {
        let mut map = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(input) {
            map.entry(name.into_owned())
                .or_insert_with(|| value.into_owned());
        }
        Self(map)
    }

    /// Add the parameters of `other` that this one does not have yet.
    pub(super) fn merge(mut self, other: Params) -> Self {
        for (name, value) in other.0 {
            self.0.entry(name).or_insert(value);
        }
        self
    }

    /// The value of `name`, if present (possibly empty).
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The value of `name` unless absent or empty.
    pub(super) fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Every parameter, sorted by name (the first occurrence of a name, as everywhere).
    pub(super) fn to_map(&self) -> BTreeMap<String, String> {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Whether `name` was sent at all (how HTML checkboxes report "checked").
    pub(super) fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// Whether the request declares an `application/x-www-form-urlencoded` body (any parameters,
/// such as `;charset=utf-8`, are allowed).
pub(super) fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// A plausible `msg` for an injected kapi error code.
fn kapi_message(code: i64) -> &'static str {
    match code {
        -1 => "internal error",
        -2 => "invalid request parameter",
        -3 => "feature not enabled",
        -5 => "permission denied",
        -7 => "service under maintenance",
        -10 => "API limit has been exceeded.",
        -101 => "NotRegisteredUserException",
        -401 => "this access token does not exist",
        -402 => "insufficient scopes",
        -603 => "internal timeout",
        -9798 => "service check. please try again later.",
        _ => "stand-in injected error",
    }
}

/// A plausible `error_description` for an injected kauth error code.
fn kauth_description(error_code: &str) -> &'static str {
    match error_code {
        "KOE009" => "invalid android_key_hash or ios_bundle_id or web_site_url",
        "KOE010" => "Bad client credentials",
        "KOE101" => "Not exist client_id [null]",
        "KOE237" => "token request rate limit exceeded",
        "KOE303" => "Redirect URI mismatch.",
        "KOE319" => "refresh_token is required",
        "KOE320" => "authorization code not found for code=injected-fault",
        "KOE322" => "expired_or_invalid_refresh_token",
        _ => "stand-in injected error",
    }
}

/// Carry out `fault` if it replaces the normal answer. `Delay` sleeps and returns `None` (answer
/// normally afterwards); `AuthorizeError` and `ForeignAppId` also return `None`, because only the
/// endpoint they belong to can apply them (elsewhere they have no effect).
pub(super) async fn apply_fault(fault: Option<&Fault>) -> Option<HttpResponse> {
    match fault? {
        Fault::Status(status) => Some(HttpResponse::build(status_code(*status)).finish()),
        Fault::Delay(duration) => {
            actix_web::rt::time::sleep(*duration).await;
            None
        }
        Fault::MalformedJson => Some(raw_json(
            200,
            r#"{"id":41000000,"kakao_account":{"#.to_owned(),
        )),
        Fault::WrongShape => Some(raw_json(200, r#"{"unexpected":true}"#.to_owned())),
        Fault::KapiError { status, code } => {
            Some(KapiError::new(*status, *code, kapi_message(*code)).response())
        }
        Fault::KauthError {
            status,
            error,
            error_code,
        } => Some(
            KauthError::new(*status, error, kauth_description(error_code), error_code).response(),
        ),
        Fault::Redirect(location) => Some(found(location)),
        Fault::AuthorizeError(_) | Fault::ForeignAppId(_) => None,
    }
}
