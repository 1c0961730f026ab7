//! Signing in and out, as use cases the handlers call. Every way in ends the same way: one
//! server-side session record for the person (`records::start`), the browser's previous
//! session ended in the same step, and the session cookie renewed (`AppSession::sign_in`).
//!
//! - The Kakao web flow: [`start_kakao_login`] keeps `state`, the PKCE verifier, the OpenID
//!   Connect `nonce` and `next` in the session; [`finish_kakao_login`] (the callback) consumes
//!   the state once, before any call to Kakao, then exchanges the code, verifies the ID token
//!   (with OIDC on), reads the profile and applies the identity rules.
//! - [`sign_in_with_access_token`] and [`sign_in_with_id_token`]: tokens from Kakao's mobile
//!   SDKs, checked (with Kakao, or against its keys), then the same identity rules.
//! - [`sign_in_with_password`]: the break-glass password (rate limited).
//! - [`sign_out`]; [`sign_out_of_kakao_too`] and [`finish_kakao_logout`] (the Kakao Account
//!   logout and its state-checked return). Who a session belongs to now is found by the web
//!   layer's caller lookup (`records::user_for_token`), on the request's one database trip.

use chrono::TimeDelta;

use super::bearer::{self, TokenError};
use super::ratelimit::Refused;
use super::records;
use super::session::{AppSession, PendingLogin};
use crate::db::{self, DbError, DbPool};
use crate::kakao::{
    Audience, AuthorizeOptions, EmailStatus, IdClaims, IdTokenError, KakaoClient, KakaoError,
    KakaoUser, LOGIN_SCOPES, OPENID_SCOPE,
};
use crate::state::AppState;
use crate::users::changes;
use crate::users::model::User;
use crate::users::passwords;
use crate::users::signin::{self, KakaoIdentity, SignInError, SignInKind};

/// What was wrong with the `state` of a Kakao callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateProblem {
    Missing,
    Mismatch,
    Expired,
    Replayed,
}

/// Kakao's answers to `prompt=none` (and to a login it could not finish without the person).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptAnswer {
    /// `login_required`: the browser is not signed in to Kakao.
    LoginRequired,
    /// `consent_required`: signed in to Kakao, but the consent items are not all agreed.
    ConsentRequired,
    /// `interaction_required`: Kakao needs the person to do something on its pages.
    InteractionRequired,
}

/// `prompt` values passed to Kakao (an allowlist).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Show Kakao's login form even with a Kakao session.
    Login,
    /// Kakao's account chooser ("use another Kakao account").
    SelectAccount,
    /// Kakao account sign-up first.
    Create,
    /// No Kakao page at all: a code, or `login_required` / `consent_required`.
    None,
}

impl Prompt {
    pub fn parse(value: &str) -> Option<Prompt> {
        match value {
            "login" => Some(Prompt::Login),
            "select_account" => Some(Prompt::SelectAccount),
            "create" => Some(Prompt::Create),
            "none" => Some(Prompt::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Prompt::Login => "login",
            Prompt::SelectAccount => "select_account",
            Prompt::Create => "create",
            Prompt::None => "none",
        }
    }
}

/// Which consent items a login asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginScopes {
    /// A sign-in: nickname and email.
    SignIn,
    /// Asking again for the email the person declined (Kakao's additional consent).
    EmailAgain,
}

/// A login to start.
#[derive(Debug, Clone)]
pub struct LoginStart {
    /// A same-site path to go to afterwards.
    pub next: Option<String>,
    pub scopes: LoginScopes,
    pub prompt: Option<Prompt>,
    /// Pre-fills Kakao's login form.
    pub login_hint: Option<String>,
}

/// Why Kakao's email cannot be used. Email consent is required: it is how a person's account
/// is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailProblem {
    /// Not shared: the person declined the consent item.
    Missing,
    Unverified,
    Invalid,
}

/// Why a sign-in (or sign-out) did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("bad login state: {0:?}")]
    State(StateProblem),
    /// The person pressed cancel at Kakao.
    #[error("login cancelled at Kakao")]
    Cancelled,
    /// Kakao redirected back with an error other than a cancel (the code, cut short).
    #[error("Kakao returned error {0}")]
    KakaoRedirect(String),
    /// Kakao's answer to a login without its pages (`prompt=none`).
    #[error("Kakao answered {0:?}")]
    Prompt(PromptAnswer),
    #[error("the callback carries no code")]
    CodeMissing,
    /// The web login's ID token failed a check (the reason is for the log).
    #[error("ID token refused: {0}")]
    IdToken(&'static str),
    /// The return from a Kakao Account logout carried a state this browser did not send, or
    /// one already used or expired.
    #[error("bad logout state: {0:?}")]
    LogoutState(StateProblem),
    #[error(transparent)]
    Kakao(KakaoError),
    /// An access token (mobile sign-in) that Kakao did not confirm.
    #[error(transparent)]
    Token(TokenError),
    /// The email cannot be used; `next` is kept for asking Kakao again.
    #[error("email {problem:?}")]
    Email {
        problem: EmailProblem,
        next: Option<String>,
    },
    #[error("email already linked to another Kakao account")]
    EmailLinkedElsewhere,
    #[error("account inactive")]
    Inactive,
    /// Kakao says the Kakao account is disabled.
    #[error("Kakao account disabled at Kakao")]
    KakaoDisabled,
    /// Break-glass: wrong email or password (the same answer for both).
    #[error("wrong email or password")]
    WrongPassword,
    /// A rate limit said no (or could not be asked).
    #[error(transparent)]
    Limited(#[from] Refused),
    #[error(transparent)]
    Db(DbError),
    #[error("session store: {0}")]
    Session(String),
}

impl From<DbError> for LoginError {
    fn from(e: DbError) -> Self {
        LoginError::Db(e)
    }
}

impl From<KakaoError> for LoginError {
    fn from(e: KakaoError) -> Self {
        LoginError::Kakao(e)
    }
}

impl From<actix_session::SessionInsertError> for LoginError {
    fn from(e: actix_session::SessionInsertError) -> Self {
        LoginError::Session(e.to_string())
    }
}

impl LoginError {
    /// Why a sign-in was refused, as a metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            LoginError::State(_) => "state",
            LoginError::Cancelled => "cancelled",
            LoginError::KakaoRedirect(_) => "kakao_error",
            LoginError::Prompt(_) => "prompt",
            LoginError::CodeMissing => "code_missing",
            LoginError::IdToken(_) => "id_token",
            LoginError::LogoutState(_) => "logout_state",
            LoginError::Kakao(_) => "kakao_unavailable",
            LoginError::Token(_) => "token",
            LoginError::Email { .. } => "email",
            LoginError::EmailLinkedElsewhere => "email_linked_elsewhere",
            LoginError::Inactive => "inactive",
            LoginError::KakaoDisabled => "kakao_disabled",
            LoginError::WrongPassword => "wrong_password",
            LoginError::Limited(_) => "rate_limited",
            LoginError::Db(_) => "database",
            LoginError::Session(_) => "session_store",
        }
    }
}

/// Run the sign-in `flow` and count how it ended: how (`kind` of its result), or refused and why.
async fn counted<T>(
    flow: &str,
    kind: fn(&T) -> SignInKind,
    sign_in: impl std::future::Future<Output = Result<T, LoginError>>,
) -> Result<T, LoginError> {
    let result = sign_in.await;
    let (outcome, reason) = match &result {
        Ok(done) => (kind(done).as_str(), ""),
        Err(e) => ("refused", e.reason()),
    };
    crate::telemetry::metrics::get().sign_in(flow, outcome, reason);
    result
}

/// A completed sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub kind: SignInKind,
    /// Where the person asked to go afterwards (a same-site path), if anywhere.
    pub next: Option<String>,
}

fn session_lifetime(state: &AppState) -> TimeDelta {
    TimeDelta::hours(i64::from(state.settings.session_lifetime_hours))
}

/// Remember a started login in the session and return Kakao's authorize URL for it (limited
/// per `client`: each start may end in a call to Kakao). With OpenID Connect on, `openid` is
/// asked for and a fresh nonce is bound to the login.
pub async fn start_kakao_login(
    state: &AppState,
    kakao: &KakaoClient,
    session: &AppSession,
    client: &str,
    start: LoginStart,
) -> Result<String, LoginError> {
    state.limits.login_start.acquire(client).await?;
    let oidc = kakao.config().oidc_login;
    let mut scopes: Vec<&str> = match start.scopes {
        LoginScopes::SignIn => LOGIN_SCOPES.to_vec(),
        LoginScopes::EmailAgain => vec!["account_email"],
    };
    let nonce = oidc.then(crate::token::random_token);
    if oidc {
        scopes.push(OPENID_SCOPE);
    }
    let request = kakao.authorize(
        &scopes,
        &AuthorizeOptions {
            nonce: nonce.as_deref(),
            prompt: start.prompt.map(Prompt::as_str),
            login_hint: start.login_hint.as_deref(),
        },
    );
    session.push_login(PendingLogin {
        state: request.state,
        verifier: request.verifier,
        nonce,
        next: start.next,
        created: chrono::Utc::now().timestamp(),
    })?;
    Ok(request.url)
}

/// What Kakao sent back to the callback.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// The callback: state first (before any call to Kakao), then Kakao's answer, the code
/// exchange (never retried), the ID token (with OIDC on: required, and verified before
/// anything else is believed), the profile, and the sign-in.
pub async fn finish_kakao_login(
    state: &AppState,
    kakao: &KakaoClient,
    session: &AppSession,
    device: &str,
    callback: Callback,
) -> Result<SignedIn, LoginError> {
    counted("web", |s| s.kind, async move {
        let login = consume_state(state, session, &callback).await?;
        if let Some(error) = callback.error.as_deref() {
            let answer = match error {
                "access_denied" => {
                    log::info!("event=auth.login.cancelled reason=user_cancelled");
                    return Err(LoginError::Cancelled);
                }
                "login_required" => PromptAnswer::LoginRequired,
                "consent_required" => PromptAnswer::ConsentRequired,
                "interaction_required" => PromptAnswer::InteractionRequired,
                other => return Err(LoginError::KakaoRedirect(other.chars().take(64).collect())),
            };
            log::info!("event=auth.login.prompt_answer answer={error}");
            return Err(LoginError::Prompt(answer));
        }
        let code = callback
            .code
            .filter(|c| !c.is_empty())
            .ok_or(LoginError::CodeMissing)?;
        let tokens = kakao.exchange_code(&code, &login.verifier).await?;
        let claims = if kakao.config().oidc_login {
            let Some(id_token) = tokens.id_token.as_deref() else {
                log::error!(
                    "event=auth.id_token.missing fix=\"Kakao sent no ID token: turn OpenID Connect on in Kakao's console (Kakao Login > OpenID Connect), or set KAKAO_OIDC=false\""
                );
                return Err(refuse_id_token("missing"));
            };
            // A login started while OIDC was off (or before it was on) has no nonce to compare.
            if login.nonce.is_none() {
                return Err(refuse_id_token("nonce_missing"));
            }
            match kakao
                .verify_id_token(id_token, login.nonce.as_deref(), Audience::Web)
                .await
            {
                Ok(claims) => Some(claims),
                Err(IdTokenError::Invalid(reason)) => return Err(refuse_id_token(reason)),
                Err(IdTokenError::Keys(e)) => return Err(LoginError::Kakao(e)),
            }
        } else {
            None
        };
        let kakao_user = kakao.user_me(&tokens.access_token).await?;
        if let Some(claims) = &claims
            && claims.kakao_id != kakao_user.id
        {
            return Err(refuse_id_token("sub_mismatch"));
        }
        let (user, kind) =
            sign_in_kakao_user(state, session, device, &kakao_user, login.next.clone()).await?;
        Ok(SignedIn {
            user,
            kind,
            next: login.next,
        })
    })
    .await
}

fn refuse_id_token(reason: &'static str) -> LoginError {
    log::warn!("event=auth.id_token.rejected reason={reason}");
    LoginError::IdToken(reason)
}

/// Take the login this callback's `state` belongs to, once: it must be present, this
/// browser's, not expired and never used before (the database remembers used states, so a
/// replay fails even with a saved cookie and on another instance).
async fn consume_state(
    state: &AppState,
    session: &AppSession,
    callback: &Callback,
) -> Result<PendingLogin, LoginError> {
    let refuse = |problem: StateProblem| {
        log::warn!("event=auth.callback.rejected reason={problem:?}");
        LoginError::State(problem)
    };
    let Some(value) = callback.state.clone() else {
        if callback.error.as_deref() == Some("access_denied") {
            // Kakao's documented error redirect may omit `state`: a cancel is still a cancel.
            return Err(LoginError::Cancelled);
        }
        return Err(refuse(StateProblem::Missing));
    };
    let Some(login) = session.take_login(&value) else {
        let replayed = db::run(&state.pool, move |conn| {
            records::login_state_consumed(conn, &value).map_err(DbError::from)
        })
        .await?;
        return Err(refuse(if replayed {
            StateProblem::Replayed
        } else {
            StateProblem::Mismatch
        }));
    };
    use_state_once(state, value, login.created)
        .await?
        .map_err(refuse)?;
    Ok(login)
}

/// Use a one-time `state` (a login's, or a Kakao Account logout's) started at `created`
/// (Unix seconds): refused when older than `LOGIN_STATE_TTL_SECS` or used before (the
/// database remembers used states, so a replay fails on any instance and with a saved
/// cookie).
async fn use_state_once(
    state: &AppState,
    value: String,
    created: i64,
) -> Result<Result<(), StateProblem>, DbError> {
    let ttl = i64::try_from(state.settings.login_state_ttl_secs).unwrap_or(i64::MAX);
    let deadline = created.saturating_add(ttl);
    if chrono::Utc::now().timestamp() > deadline {
        return Ok(Err(StateProblem::Expired));
    }
    let expires_at = chrono::DateTime::from_timestamp(deadline, 0)
        .map(|t| t.naive_utc())
        .unwrap_or_else(db::now);
    let fresh = db::run(&state.pool, move |conn| {
        records::consume_login_state(conn, &value, expires_at)
    })
    .await?;
    Ok(if fresh {
        Ok(())
    } else {
        Err(StateProblem::Replayed)
    })
}

/// Sign in with an access token from Kakao's mobile SDK: Kakao confirms it is ours, the
/// profile is read with it, then the same identity rules as the web flow.
pub async fn sign_in_with_access_token(
    state: &AppState,
    kakao: &KakaoClient,
    session: &AppSession,
    client: &str,
    device: &str,
    access_token: &str,
) -> Result<SignedIn, LoginError> {
    counted("mobile_token", |s| s.kind, async move {
        state.limits.mobile_sign_in.acquire(client).await?;
        let token = access_token.trim();
        let checks = &state.limits.token_check;
        let kakao_id = bearer::validate(kakao, &state.token_cache, checks, client, token)
            .await
            .map_err(LoginError::Token)?;
        let profile = kakao
            .user_me(token)
            .await
            .map_err(|e| LoginError::Token(TokenError::from(e)))?;
        if profile.id != kakao_id {
            return Err(LoginError::Token(TokenError::Invalid));
        }
        let (user, kind) = sign_in_kakao_user(state, session, device, &profile, None).await?;
        Ok(SignedIn {
            user,
            kind,
            next: None,
        })
    })
    .await
}

/// Sign in with an OpenID Connect ID token from Kakao's mobile SDK: verified against Kakao's
/// keys (no call to Kakao once they are cached), `aud` the REST API key or one of
/// `KAKAO_ALLOWED_AUDIENCES`, issued in the last `MOBILE_MAX_AGE`, used once, `nonce` the
/// app's when it sends one (it binds nothing the server holds: the freshness and single use
/// are what stop a replay); then the same identity rules as the web flow, with the token's
/// email (Kakao puts one in only when it is valid and verified).
pub async fn sign_in_with_id_token(
    state: &AppState,
    kakao: &KakaoClient,
    session: &AppSession,
    client: &str,
    device: &str,
    id_token: &str,
    nonce: Option<&str>,
) -> Result<SignedIn, LoginError> {
    counted("mobile_id_token", |s| s.kind, async move {
        state.limits.mobile_sign_in.acquire(client).await?;
        let id_token = id_token.trim();
        let nonce = nonce.filter(|n| !n.is_empty());
        let claims = match kakao
            .verify_id_token(id_token, nonce, Audience::Mobile)
            .await
        {
            Ok(claims) => claims,
            Err(IdTokenError::Invalid(reason)) => {
                log::warn!("event=auth.id_token.rejected reason={reason} via=mobile");
                return Err(LoginError::Token(TokenError::Invalid));
            }
            Err(IdTokenError::Keys(e)) => {
                log::warn!(
                    "event=kakao.jwks.failed code={} error=\"{e}\"",
                    e.log_code()
                );
                return Err(LoginError::Token(TokenError::Temporary));
            }
        };
        // Each ID token signs in once: recorded like a used login state until it expires, so a
        // token that leaked (or one kept after the person left) cannot be replayed.
        let used = format!("id_token:{id_token}");
        let expires_at = chrono::DateTime::from_timestamp(claims.expires_at, 0)
            .map(|t| t.naive_utc())
            .unwrap_or_else(db::now);
        let fresh = db::run(&state.pool, move |conn| {
            records::consume_login_state(conn, &used, expires_at)
        })
        .await?;
        if !fresh {
            log::warn!("event=auth.id_token.rejected reason=replayed via=mobile");
            return Err(LoginError::Token(TokenError::Invalid));
        }
        let profile = profile_from_claims(&claims);
        let (user, kind) = sign_in_kakao_user(state, session, device, &profile, None).await?;
        Ok(SignedIn {
            user,
            kind,
            next: None,
        })
    })
    .await
}

/// A verified ID token's claims in the shape of `/v2/user/me`, so both sign-ins share one
/// identity path. The email is valid and verified whenever Kakao put it in the token.
fn profile_from_claims(claims: &IdClaims) -> KakaoUser {
    use crate::kakao::types::{KakaoAccount, KakaoProfile};
    KakaoUser {
        id: claims.kakao_id,
        connected_at: None,
        kakao_account: Some(KakaoAccount {
            profile: claims.nickname.as_ref().map(|n| KakaoProfile {
                nickname: Some(n.clone()),
                is_default_nickname: None,
            }),
            email: claims.email.clone(),
            is_email_valid: claims.email.as_ref().map(|_| true),
            is_email_verified: claims.email.as_ref().map(|_| true),
            ..KakaoAccount::default()
        }),
        properties: None,
    }
}

/// The shared end of both Kakao sign-ins: the email rule, the identity rules, the session.
async fn sign_in_kakao_user(
    state: &AppState,
    session: &AppSession,
    device: &str,
    kakao_user: &KakaoUser,
    next: Option<String>,
) -> Result<(User, SignInKind), LoginError> {
    let email = match kakao_user.email_status() {
        EmailStatus::Trusted(email) => email,
        EmailStatus::Missing => Err(LoginError::Email {
            problem: EmailProblem::Missing,
            next,
        })?,
        EmailStatus::Unverified => Err(LoginError::Email {
            problem: EmailProblem::Unverified,
            next,
        })?,
        EmailStatus::Invalid => Err(LoginError::Email {
            problem: EmailProblem::Invalid,
            next,
        })?,
    };
    let identity = KakaoIdentity {
        kakao_id: kakao_user.id,
        email,
        nickname: kakao_user.nickname(),
        profile_json: serde_json::to_string(kakao_user).unwrap_or_else(|_| "{}".to_owned()),
    };
    let kakao_id = identity.kakao_id;
    let lifetime = session_lifetime(state);
    let previous = session.token();
    let device = device.to_owned();
    let signed_in = db::run(&state.pool, move |conn| {
        let (user, kind) = signin::sign_in_with_kakao(conn, &identity)?;
        let token = records::start(conn, &user, lifetime, previous.as_deref(), &device)?;
        Ok::<_, SignInError>((user, kind, token))
    })
    .await;
    let (user, kind, token) = match signed_in {
        Ok(done) => done,
        Err(SignInError::EmailLinkedElsewhere) => {
            log::warn!("event=auth.link.refused reason=email_in_use kakao_id={kakao_id}");
            return Err(LoginError::EmailLinkedElsewhere);
        }
        Err(SignInError::Inactive) => {
            log::info!("event=auth.login.refused reason=inactive kakao_id={kakao_id}");
            return Err(LoginError::Inactive);
        }
        Err(SignInError::KakaoDisabled) => {
            log::info!("event=auth.login.refused reason=kakao_disabled kakao_id={kakao_id}");
            return Err(LoginError::KakaoDisabled);
        }
        Err(SignInError::InvalidEmail(_)) => {
            return Err(LoginError::Email {
                problem: EmailProblem::Invalid,
                next: None,
            });
        }
        Err(SignInError::Db(e)) => return Err(LoginError::Db(e)),
    };
    session.sign_in(&token)?;
    log::info!(
        "event=auth.login.success user_id={} kakao_id={kakao_id} kind={}",
        user.id,
        kind.as_str()
    );
    Ok((user, kind))
}

/// Longest email or password looked at (argon2's work is bounded by it).
const PASSWORD_INPUT_MAX: usize = 1024;

/// The break-glass sign-in: active staff with a password only, limited per client address and
/// per account. Each attempt counts, taken before the password is looked at, so concurrent
/// guesses cannot outrun the limit (a right password included). A wrong password, an unknown
/// email, a member or a deactivated account all get `WrongPassword`, at the cost of one argon2
/// verification each.
pub async fn sign_in_with_password(
    state: &AppState,
    session: &AppSession,
    client: &str,
    device: &str,
    email: &str,
    password: &str,
) -> Result<User, LoginError> {
    counted("password", |_| SignInKind::Returning, async move {
        let email = crate::users::manager::UserManager::normalize_email(email);
        state.limits.break_glass_client.acquire(client).await?;
        state.limits.break_glass_account.acquire(&email).await?;
        let found = if email.len() > PASSWORD_INPUT_MAX || password.len() > PASSWORD_INPUT_MAX {
            None
        } else {
            let lookup = email.clone();
            db::run(&state.pool, move |conn| {
                passwords::find_with_hash(conn, &lookup).map_err(DbError::from)
            })
            .await?
        };
        // argon2 is CPU work: on a blocking thread, without holding a pooled connection.
        let password = password.to_owned();
        let found = actix_web::web::block(move || passwords::check(found, &password))
            .await
            .map_err(|e| LoginError::Db(DbError::Unavailable(format!("blocking pool: {e}"))))?;
        let Some(user) = found else {
            log::warn!("event=admin.break_glass.failed");
            return Err(LoginError::WrongPassword);
        };
        let lifetime = session_lifetime(state);
        let previous = session.token();
        let device = device.to_owned();
        let (user, token) = db::run(&state.pool, move |conn| {
            let user = changes::note_sign_in(conn, user.id)?;
            let token = records::start(conn, &user, lifetime, previous.as_deref(), &device)?;
            Ok::<_, DbError>((user, token))
        })
        .await?;
        session.sign_in(&token)?;
        log::warn!("event=admin.break_glass.success user_id={}", user.id);
        Ok(user)
    })
    .await
}

/// End this session on the server and forget it in the browser.
pub async fn sign_out(pool: &DbPool, session: &AppSession) -> Result<(), DbError> {
    end_session_record(pool, session).await?;
    session.sign_out();
    log::info!("event=auth.logout");
    Ok(())
}

async fn end_session_record(pool: &DbPool, session: &AppSession) -> Result<(), DbError> {
    if let Some(token) = session.token() {
        db::run(pool, move |conn| {
            records::end(conn, &token).map_err(DbError::from)
        })
        .await?;
    }
    Ok(())
}

/// "Log out of Kakao too": end this session here, then send the browser to Kakao's account
/// logout, which comes back to `finish_kakao_logout` with a state that only this browser
/// holds. Returns Kakao's logout URL.
pub async fn sign_out_of_kakao_too(
    state: &AppState,
    kakao: &KakaoClient,
    session: &AppSession,
) -> Result<String, LoginError> {
    end_session_record(&state.pool, session).await?;
    let logout_state = crate::token::random_token();
    session.sign_out_expecting_kakao_logout(&logout_state)?;
    log::info!("event=auth.logout kakao_account=1");
    Ok(kakao.account_logout_url(&logout_state))
}

/// The return from Kakao's account logout: its `state` must be the one this browser was
/// given, within the login-state lifetime, and never used before (recorded like login
/// states, so a saved cookie cannot replay it). Nothing changes otherwise.
pub async fn finish_kakao_logout(
    state: &AppState,
    session: &AppSession,
    returned: Option<&str>,
) -> Result<(), LoginError> {
    let refuse = |problem: StateProblem| {
        log::warn!("event=auth.kakao_logout.rejected reason={problem:?}");
        LoginError::LogoutState(problem)
    };
    let Some(value) = returned.filter(|v| !v.is_empty()).map(str::to_owned) else {
        return Err(refuse(StateProblem::Missing));
    };
    let Some(created) = session.take_kakao_logout(&value) else {
        return Err(refuse(StateProblem::Mismatch));
    };
    use_state_once(state, value, created)
        .await?
        .map_err(refuse)?;
    // Kakao's session in this browser is gone: so is ours, whatever happened meanwhile.
    sign_out(&state.pool, session).await?;
    log::info!("event=auth.kakao_logout.finished");
    Ok(())
}
