//! Extractors that put "who is calling" and "this request is really theirs" into handler
//! signatures, for pages and the API alike.
//!
//! - [`MaybeUser`], and [`CurrentUser`], [`StaffUser`], [`SuperUser`] ([`Caller`] by the
//!   policy's named permissions): the caller, found once per request: on the API by
//!   `Authorization: Bearer <Kakao access token>` when one is sent, otherwise (and on every
//!   page) by the session cookie, re-read from the database each request so that sign-out,
//!   revocation and deactivation take effect at once. A handler with database work of its own
//!   does it in [`Caller::run`], on the same connection and trip as the caller's lookup: one
//!   crossing to the blocking pool per page (counted per request, `db=` on the access line).
//! - [`Csrf`]: the one CSRF check, wrapping the body of every state-changing request that acts
//!   with the session cookie's authority: the `Origin` (when sent) is ours and the session's
//!   token came along, in the form's `csrf_token` field or the `X-CSRF-Token` header.
//! - [`Form`] and [`JsonBody`]: request bodies, read with limits, only ever through `Csrf`;
//!   [`SignInBody`] for the one request that needs no token (it brings its own credentials).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_session::SessionExt;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::error::AppError;
use crate::auth::bearer::{self, TokenError};
use crate::auth::{AppSession, records};
use crate::db::{self, DbConnection, DbError, DbFailure};
use crate::kakao::KakaoClient;
use crate::state::AppState;
use crate::users::manager::FieldErrors;
use crate::users::model::User;
use crate::users::permissions::Permission;

/// Largest request body accepted (forms and JSON).
pub const BODY_LIMIT: usize = 16 * 1024;

/// Whether text holds a control character (NUL, newline, DEL, C1...). None of our inputs
/// needs one, PostgreSQL refuses NUL in text and SQLite's search index chokes on it, so such
/// input is refused at the door (400) before any query sees it.
pub fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// A 400 for the field or parameter `name` holding a control character.
pub fn control_refused(name: &str) -> AppError {
    AppError::BadRequest {
        code: "control_character",
        detail: format!("{name:?} holds a control character"),
    }
}

/// Whether a request is the JSON API's (its errors get the JSON face, and it accepts bearer
/// tokens); everything else is a page.
pub fn is_api(req: &HttpRequest) -> bool {
    req.path().starts_with("/api/")
}

fn app_state(req: &HttpRequest) -> Result<&web::Data<AppState>, AppError> {
    req.app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::Internal("AppState missing".into()))
}

/// The client as the rate limits count it: the connection's peer, or, when the peer is one of
/// `TRUSTED_PROXIES`, the right-most address in `X-Forwarded-For` that is not a proxy (the
/// header is otherwise ignored: anyone can send it). IPv6 clients count by their /64, the
/// smallest network one is given; IPv4 addresses mapped into IPv6 count as IPv4.
pub fn client_address(req: &HttpRequest) -> String {
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
        return "unknown".to_owned();
    };
    let proxies = app_state(req)
        .map(|s| s.trusted_proxies.as_slice())
        .unwrap_or(&[]);
    let trusted = |ip: &std::net::IpAddr| proxies.iter().any(|net| net.contains(ip));
    let client = if trusted(&peer) {
        req.headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .filter_map(|hop| hop.trim().parse::<std::net::IpAddr>().ok())
            .find(|ip| !trusted(ip))
            .unwrap_or(peer)
    } else {
        peer
    };
    client_key(client)
}

/// The request's `User-Agent` (empty when absent or not text), kept with its session.
pub fn user_agent(req: &HttpRequest) -> &str {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The rate limits' key for an address.
fn client_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        v4 => v4.to_string(),
    }
}

/// Whether this request authenticates with a bearer token: on the API, whenever it sends
/// `Authorization`. Then the session cookie is not looked at, so it carries no authority that
/// a forged request could borrow, and no CSRF token is needed. `caller` and `Csrf` both decide
/// by this one rule.
fn uses_bearer(req: &HttpRequest) -> bool {
    is_api(req) && req.headers().contains_key(header::AUTHORIZATION)
}

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVia {
    Session,
    Bearer,
}

/// Who the caller of this request is, before the database is asked: what their session or
/// bearer token names. [`find`] then finds them on a connection, in the same trip to the
/// blocking pool as the handler's own work.
#[derive(Clone)]
enum Lookup {
    /// Found earlier in this request (or nobody to find: no token at all).
    Known(Option<(User, AuthVia)>),
    /// The session's token, whose record names the user.
    Session(String),
    /// The Kakao user a valid bearer token belongs to.
    Bearer(i64),
}

#[derive(Clone)]
struct CachedCaller(Option<(User, AuthVia)>);

/// What the request says of its caller: a bearer token is checked with Kakao here (or its
/// cached verdict is used), a session's token is taken as it is; neither touches the database.
async fn lookup(req: &HttpRequest) -> Result<Lookup, AppError> {
    if let Some(cached) = req.extensions().get::<CachedCaller>() {
        return Ok(Lookup::Known(cached.0.clone()));
    }
    if uses_bearer(req) {
        let state = app_state(req)?;
        let value = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(AppError::InvalidToken)?;
        let kakao = req
            .app_data::<web::Data<KakaoClient>>()
            .ok_or_else(|| AppError::Internal("Kakao client missing".into()))?;
        let kakao_id = bearer::kakao_id_for(state, kakao, &client_address(req), value).await?;
        return Ok(Lookup::Bearer(kakao_id));
    }
    Ok(match AppSession(req.get_session()).token() {
        Some(token) => Lookup::Session(token),
        None => Lookup::Known(None),
    })
}

/// The caller `lookup` names, found on `conn`: the active user behind a live session record,
/// or the active account of a bearer token's Kakao user.
fn find(conn: &mut DbConnection, lookup: &Lookup) -> Result<Option<(User, AuthVia)>, TokenError> {
    Ok(match lookup {
        Lookup::Known(found) => found.clone(),
        Lookup::Session(token) => records::user_for_token(conn, token)
            .map_err(DbError::from)?
            .map(|user| (user, AuthVia::Session)),
        Lookup::Bearer(kakao_id) => Some((bearer::user_for(conn, *kakao_id)?, AuthVia::Bearer)),
    })
}

/// Keep what was found for the rest of the request. A session whose record is gone (revoked,
/// expired, the user deactivated) is worthless now: its sign-in is forgotten.
fn remember(req: &HttpRequest, lookup: &Lookup, found: &Option<(User, AuthVia)>) {
    if found.is_none() && matches!(lookup, Lookup::Session(_)) {
        AppSession(req.get_session()).forget_sign_in();
    }
    req.extensions_mut().insert(CachedCaller(found.clone()));
}

/// The caller of this request, found once and kept for the rest of it (a trip to the database
/// of its own: handlers with database work of their own use [`Caller::run`]).
pub async fn caller(req: &HttpRequest) -> Result<Option<(User, AuthVia)>, AppError> {
    let lookup = lookup(req).await?;
    let found = match &lookup {
        Lookup::Known(found) => found.clone(),
        pending => {
            let pending = pending.clone();
            let pool = app_state(req)?.pool.clone();
            db::read(&pool, move |conn| find(conn, &pending)).await?
        }
    };
    remember(req, &lookup, &found);
    Ok(found)
}

/// The path and query of this request, for `next`.
pub fn here(req: &HttpRequest) -> String {
    match req.uri().path_and_query() {
        Some(pq) => pq.as_str().to_owned(),
        None => req.path().to_owned(),
    }
}

type Extracted<T> = Pin<Box<dyn Future<Output = Result<T, AppError>>>>;

/// The caller, if anyone is signed in.
pub struct MaybeUser(pub Option<User>);

impl FromRequest for MaybeUser {
    type Error = AppError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(MaybeUser(caller(&req).await?.map(|(user, _)| user))) })
    }
}

/// A named permission as a type, for [`Caller`].
pub trait Needs {
    const PERMISSION: Permission;
}

/// `IsAuthenticated`: any signed-in, active caller.
pub struct Authenticated;
/// `IsStaff`: active staff (superusers are staff).
pub struct Staff;
/// `IsSuperuser`.
pub struct Superuser;

impl Needs for Authenticated {
    const PERMISSION: Permission = Permission::IsAuthenticated;
}
impl Needs for Staff {
    const PERMISSION: Permission = Permission::IsStaff;
}
impl Needs for Superuser {
    const PERMISSION: Permission = Permission::IsSuperuser;
}

/// The caller of a handler that needs permission `N`, not yet looked up: the handler finds
/// them with [`Caller::run`], which looks the caller up, checks `N` and does the handler's own
/// database work on one connection in one trip to the blocking pool (a page costs one crossing,
/// not one for the caller and another for the page), or with [`Caller::user`] when it has no
/// database work of its own. Anonymous callers are sent to sign in (pages) or answered 401
/// (API); signed-in people without the permission get 403, before any of the work is done.
pub struct Caller<N: Needs> {
    req: HttpRequest,
    lookup: Lookup,
    needs: PhantomData<N>,
}

/// `IsAuthenticated`.
pub type CurrentUser = Caller<Authenticated>;
/// `IsStaff`.
pub type StaffUser = Caller<Staff>;
/// `IsSuperuser`.
pub type SuperUser = Caller<Superuser>;

impl<N: Needs> FromRequest for Caller<N> {
    type Error = AppError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let lookup = lookup(&req).await?;
            let caller = Caller {
                req,
                lookup,
                needs: PhantomData,
            };
            // Known already (nobody, without a token): refused before any other extractor
            // (a body, its CSRF check) is looked at.
            if let Lookup::Known(found) = &caller.lookup
                && !found.as_ref().is_some_and(|(u, _)| N::PERMISSION.allows(u))
            {
                return Err(caller.refused(found.clone()));
            }
            Ok(caller)
        })
    }
}

/// How a trip of [`Caller::run`] failed: the caller's lookup, or the handler's work.
enum Trip<E> {
    Caller(TokenError),
    Work(E),
}

impl<E> From<DbError> for Trip<E> {
    fn from(e: DbError) -> Self {
        Trip::Caller(TokenError::Db(e))
    }
}

impl<E: DbFailure> DbFailure for Trip<E> {
    fn db_unavailable(&self) -> bool {
        match self {
            Trip::Caller(e) => e.db_unavailable(),
            Trip::Work(e) => e.db_unavailable(),
        }
    }
    fn db_busy(&self) -> bool {
        match self {
            Trip::Caller(e) => e.db_busy(),
            Trip::Work(e) => e.db_busy(),
        }
    }
}

/// Where a trip of [`Caller::run`] ended.
enum Arrived<T> {
    Nobody,
    Refused(User, AuthVia),
    Done(User, AuthVia, T),
}

impl<N: Needs> Caller<N> {
    /// How the caller proves who they are: by the request's own headers, so known before the
    /// lookup.
    pub fn via(&self) -> AuthVia {
        if uses_bearer(&self.req) {
            AuthVia::Bearer
        } else {
            AuthVia::Session
        }
    }

    /// The caller, permitted; one trip to the database unless this request found them already
    /// (a caller known when extracted was permitted then, or refused by the extractor).
    pub async fn user(self) -> Result<User, AppError> {
        if let Lookup::Known(Some((user, _))) = &self.lookup {
            return Ok(user.clone());
        }
        let (user, ()) = self.read(|_, _| Ok::<(), DbError>(())).await?;
        Ok(user)
    }

    /// Find the caller, check the permission and then do `work` for them, all on one pooled
    /// connection in one trip to the blocking pool; returns the caller and what `work` made.
    /// `work` may run twice, as anything under `db::run` may (a connection lost before it wrote).
    pub async fn run<T, E, F>(self, work: F) -> Result<(User, T), AppError>
    where
        F: FnMut(&mut DbConnection, &User) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + DbFailure + Send + 'static,
        AppError: From<E>,
    {
        self.trip(false, work).await
    }

    /// [`Caller::run`] for `work` that only reads, in bounded time (see `db::read`: on SQLite
    /// the caller and the page are read without leaving the HTTP worker). Finding the caller
    /// may still write (a session's last-seen time); `db::read` sees to that.
    pub async fn read<T, E, F>(self, work: F) -> Result<(User, T), AppError>
    where
        F: FnMut(&mut DbConnection, &User) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + DbFailure + Send + 'static,
        AppError: From<E>,
    {
        self.trip(true, work).await
    }

    async fn trip<T, E, F>(self, only_reads: bool, mut work: F) -> Result<(User, T), AppError>
    where
        F: FnMut(&mut DbConnection, &User) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + DbFailure + Send + 'static,
        AppError: From<E>,
    {
        let pool = app_state(&self.req)?.pool.clone();
        let lookup = self.lookup.clone();
        let work = move |conn: &mut DbConnection| {
            let Some((user, via)) = find(conn, &lookup).map_err(Trip::Caller)? else {
                return Ok(Arrived::Nobody);
            };
            if !N::PERMISSION.allows(&user) {
                return Ok(Arrived::Refused(user, via));
            }
            let done = work(conn, &user).map_err(Trip::Work)?;
            Ok(Arrived::Done(user, via, done))
        };
        let arrived = if only_reads {
            db::read(&pool, work).await
        } else {
            db::run(&pool, work).await
        };
        match arrived {
            Err(Trip::Caller(e)) => Err(e.into()),
            Err(Trip::Work(e)) => Err(e.into()),
            Ok(Arrived::Nobody) => Err(self.refused(None)),
            Ok(Arrived::Refused(user, via)) => Err(self.refused(Some((user, via)))),
            Ok(Arrived::Done(user, via, done)) => {
                remember(&self.req, &self.lookup, &Some((user.clone(), via)));
                Ok((user, done))
            }
        }
    }

    /// Why the caller `found` (nobody, or someone `N` does not allow) is refused; what was
    /// found is remembered for the rest of the request.
    fn refused(&self, found: Option<(User, AuthVia)>) -> AppError {
        remember(&self.req, &self.lookup, &found);
        let Some((user, _)) = found else {
            return AppError::LoginRequired {
                next: here(&self.req),
            };
        };
        log::warn!(
            "event=access.forbidden user_id={} path={} needs={:?}",
            user.id,
            self.req.path(),
            N::PERMISSION
        );
        AppError::Forbidden(
            match N::PERMISSION {
                Permission::IsSuperuser => "superusers only",
                Permission::IsStaff => "staff only",
                Permission::IsAuthenticated => "active accounts only",
            }
            .to_owned(),
        )
    }
}

// ---- CSRF ---------------------------------------------------------------------------------

/// A state-changing request that this session made from this site, with its body `B`:
/// `Csrf<Form<T>>` for a form, `Csrf<JsonBody<T>>` for JSON, bare `Csrf` for a request whose
/// only content is the token (an action button's form, or an API `DELETE` with the header).
///
/// API calls authenticated by a bearer token carry no cookie authority to abuse and need no
/// token. The one unsafe call without it is the mobile sign-in (`POST /api/auth/kakao/`),
/// which acts on no existing session: it makes one from a Kakao token.
pub struct Csrf<B = ()>(pub B);

/// A body that may carry the CSRF token itself. It is read first (the token may be in it),
/// checked, and only then parsed, so that a forged request is refused before its content is
/// looked at.
pub trait CsrfBody: Sized + 'static {
    /// Whether the body can carry the token (a form can; JSON sends it as a header).
    const TOKEN_IN_BODY: bool;
    /// Make the value from the raw body, after the token was checked.
    fn parse(req: &HttpRequest, body: &[u8]) -> Result<Self, AppError>;
}

/// Whether this session may act: `Origin` is ours (or, without one, the fetch is not
/// cross-site) and `submitted` (or the `X-CSRF-Token` header) is the session's token.
fn verify_csrf(req: &HttpRequest, submitted: Option<String>) -> Result<(), AppError> {
    if uses_bearer(req) {
        return Ok(());
    }
    let state = app_state(req)?;
    let submitted = submitted.or_else(|| {
        req.headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let session = AppSession(req.get_session());
    let token_ok = submitted.is_some_and(|t| session.csrf_matches(&t));
    if same_origin(req, state) && token_ok {
        return Ok(());
    }
    log::warn!("event=csrf.rejected route={}", req.path());
    Err(AppError::Csrf)
}

impl<B: CsrfBody> FromRequest for Csrf<B> {
    type Error = AppError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let body = read_body(&req, payload).await?;
            let token = (B::TOKEN_IN_BODY && is_form(&req))
                .then(|| form_token(&body))
                .flatten();
            verify_csrf(&req, token)?;
            Ok(Csrf(B::parse(&req, &body)?))
        })
    }
}

/// A present `Origin` must be ours; without one, the browser's `Sec-Fetch-Site` must not say
/// cross-site (defence in depth beside the token).
pub fn same_origin(req: &HttpRequest, state: &AppState) -> bool {
    match req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        None => req
            .headers()
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|site| site != "cross-site"),
        Some(origin) => {
            origin == state.settings.public_url
                || url::Url::parse(&state.settings.public_url)
                    .map(|u| u.origin().ascii_serialization() == origin)
                    .unwrap_or(false)
        }
    }
}

/// Read at most `BODY_LIMIT` bytes of the body (413 beyond).
async fn read_body(req: &HttpRequest, mut payload: Payload) -> Result<web::BytesMut, AppError> {
    let declared_too_large = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > BODY_LIMIT);
    if declared_too_large {
        return Err(AppError::TooLarge);
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| AppError::BadRequest {
            code: "bad_body",
            detail: e.to_string(),
        })?;
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(AppError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether the request's content type is `application/{subtype}`.
fn is_application(req: &HttpRequest, subtype: &str) -> bool {
    req.mime_type()
        .ok()
        .flatten()
        .is_some_and(|m| m.type_() == "application" && m.subtype() == subtype)
}

fn is_form(req: &HttpRequest) -> bool {
    is_application(req, "x-www-form-urlencoded")
}

/// The `csrf_token` field of a form body.
fn form_token(body: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v.into_owned())
}

impl CsrfBody for () {
    const TOKEN_IN_BODY: bool = true;

    fn parse(_: &HttpRequest, _: &[u8]) -> Result<(), AppError> {
        Ok(())
    }
}

/// A form body (`application/x-www-form-urlencoded`, at most 16 KiB). Repeated fields
/// collect into a `Vec` (checkbox lists). Read only through `Csrf<Form<T>>`: every form here
/// changes something.
pub struct Form<T>(pub T);

impl<T: DeserializeOwned + 'static> CsrfBody for Form<T> {
    const TOKEN_IN_BODY: bool = true;

    fn parse(req: &HttpRequest, body: &[u8]) -> Result<Self, AppError> {
        // A form without fields may come without a content type.
        let body = if is_form(req) { body } else { &[] };
        if let Some((key, _)) =
            url::form_urlencoded::parse(body).find(|(k, v)| has_control(k) || has_control(v))
        {
            return Err(control_refused(&key));
        }
        serde_html_form::from_bytes::<T>(body)
            .map(Form)
            .map_err(|e| AppError::bad_request(format!("form: {e}")))
    }
}

/// A JSON request body: `application/json` only (415), at most 16 KiB (413), well-formed
/// (400), a JSON object without unknown fields (400 with a field map), each field of the
/// right type (400 with a field map).
pub struct JsonBody<T>(pub T);

/// The fields a request body may carry (to report every unknown one, as DRF does).
pub trait BodyFields {
    const FIELDS: &'static [&'static str];
}

impl<T: DeserializeOwned + BodyFields + 'static> JsonBody<T> {
    fn from_body(req: &HttpRequest, body: &[u8]) -> Result<Self, AppError> {
        if !is_application(req, "json") {
            return Err(AppError::UnsupportedMediaType);
        }
        parse_json(body).map(JsonBody)
    }
}

/// The JSON body of a sign-in that brings credentials of its own (a Kakao access token, from
/// the mobile SDKs): it borrows no session's authority, so it needs no CSRF token; a present
/// `Origin` must still be ours. Everything else reads JSON through `Csrf<JsonBody<T>>`:
/// `JsonBody` is not an extractor by itself, so a handler cannot forget the check.
pub struct SignInBody<T>(pub T);

impl<T: DeserializeOwned + BodyFields + 'static> FromRequest for SignInBody<T> {
    type Error = AppError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let body = read_body(&req, payload).await?;
            if !same_origin(&req, app_state(&req)?) {
                log::warn!("event=csrf.rejected route={} reason=origin", req.path());
                return Err(AppError::Csrf);
            }
            JsonBody::<T>::from_body(&req, &body).map(|JsonBody(value)| SignInBody(value))
        })
    }
}

impl<T: DeserializeOwned + BodyFields + 'static> CsrfBody for JsonBody<T> {
    const TOKEN_IN_BODY: bool = false;

    fn parse(req: &HttpRequest, body: &[u8]) -> Result<Self, AppError> {
        Self::from_body(req, body)
    }
}

/// Parse a JSON body into `T`, with DRF-shaped field errors.
pub fn parse_json<T: DeserializeOwned + BodyFields>(body: &[u8]) -> Result<T, AppError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| AppError::BadRequest {
            code: "malformed_json",
            detail: e.to_string(),
        })?;
    let Some(object) = value.as_object() else {
        return Err(AppError::Invalid(FieldErrors::single(
            "non_field_errors",
            "JSON 객체여야 합니다.",
        )));
    };
    let mut unknown = FieldErrors::default();
    for (key, field) in object {
        if !T::FIELDS.contains(&key.as_str()) {
            unknown.add(key, "알 수 없는 필드입니다.");
        } else if field.as_str().is_some_and(has_control) {
            unknown.add(key, "제어 문자를 쓸 수 없습니다.");
        }
    }
    unknown.into_result()?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let field = if field.is_empty() || field == "." {
            "non_field_errors".to_owned()
        } else {
            field
        };
        AppError::Invalid(FieldErrors::single(
            &field,
            format!("올바른 값이 아닙니다: {}", e.inner()),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_counted_by_address_or_ipv6_network() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        assert_eq!(client_key(ip("203.0.113.5")), "203.0.113.5");
        assert_eq!(client_key(ip("::ffff:203.0.113.5")), "203.0.113.5");
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa::1")),
            client_key(ip("2001:db8:1:2:ffff::9")),
            "one /64 is one client"
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
    }
}
