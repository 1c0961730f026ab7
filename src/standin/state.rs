//! The stand-in's in-memory world: test accounts, app links, codes, tokens, faults and counters.
//!
//! Everything here is synchronous and lives behind the one `Mutex` in [`super::StandIn`]; the HTTP
//! handlers take what they need out of it and never hold the lock across an `.await`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore as _;

use super::{Endpoint, Fault, IdTokenFault, TestUser};

/// First Kakao id handed out; ids are above 2^53 so that float-parsing clients break visibly.
pub(super) const FIRST_KAKAO_ID: i64 = 4_100_000_000_000_000_001;
/// How long an authorization code stays usable (Kakao only says "short"; 10 minutes is the
/// commonly reported value).
pub(super) const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Access-token lifetime observed for REST-API-key tokens (6 hours minus one second).
pub(super) const ACCESS_TOKEN_SECONDS: u64 = 21_599;
/// Refresh-token lifetime observed for REST-API-key tokens (60 days minus one second).
pub(super) const REFRESH_TOKEN_SECONDS: u64 = 5_183_999;
/// Kakao renews a refresh token on refresh only when less than a month of its life is left.
pub(super) const REFRESH_ROTATION_THRESHOLD: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Consent item id for the nickname.
pub(super) const SCOPE_NICKNAME: &str = "profile_nickname";
/// Consent item id for the Kakao account's email.
pub(super) const SCOPE_EMAIL: &str = "account_email";
/// Consent item id that asks for an ID token (accepted while OpenID Connect is on).
pub(super) const SCOPE_OPENID: &str = "openid";
/// The consent items the stand-in's app has configured while OpenID Connect is off.
pub(super) const CONFIGURED_SCOPES: [&str; 2] = [SCOPE_NICKNAME, SCOPE_EMAIL];
/// The `iss` of ID tokens until [`super::StandIn::set_issuer`] is called: where the stand-in's
/// routes are mounted (host and scope) is not knowable from inside, so a name that resolves
/// nowhere makes a forgotten `set_issuer` visible instead of plausible.
pub(super) const DEFAULT_ISSUER: &str = "http://stand-in.invalid";

/// The consent items the app has configured: anything else in `scope` is `KOE205`. `openid` is
/// one of them while OpenID Connect is on.
pub(super) fn configured_scopes(oidc: bool) -> Vec<&'static str> {
    let mut scopes = CONFIGURED_SCOPES.to_vec();
    if oidc {
        scopes.push(SCOPE_OPENID);
    }
    scopes
}

/// Seconds since the Unix epoch, now (the unit of ID-token times).
pub(super) fn unix_now() -> i64 {
    Utc::now().timestamp()
}

/// A Kakao account known to the stand-in.
#[derive(Clone, Debug)]
pub(super) struct Account {
    pub(super) id: i64,
    pub(super) user: TestUser,
}

/// The link (연결) between a Kakao account and the app, created on first consent.
#[derive(Clone, Debug)]
pub(super) struct Link {
    pub(super) connected_at: DateTime<Utc>,
    /// Every consent item the person agreed to since linking (consents accumulate, as on Kakao).
    pub(super) scopes: BTreeSet<String>,
}

/// A Kakao Account browser session, named by the `standin_kakao_session` cookie.
#[derive(Clone, Debug)]
pub(super) struct Session {
    pub(super) kakao_id: i64,
    /// When the person signed in (Unix seconds): the `auth_time` of codes granted in it.
    pub(super) auth_time: i64,
}

/// An authorization code waiting to be exchanged.
#[derive(Clone, Debug)]
pub(super) struct CodeGrant {
    pub(super) kakao_id: i64,
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) code_challenge: Option<String>,
    pub(super) expires_at: Instant,
    /// The authorize request's `nonce`, as sent, for the ID token.
    pub(super) nonce: Option<String>,
    /// When the person authenticated (Unix seconds), the ID token's `auth_time`.
    pub(super) auth_time: i64,
    /// Whether the request asked for an ID token: `openid` was configured and either no `scope`
    /// was sent or it named `openid`.
    pub(super) openid: bool,
}

/// What a refresh needs to issue an ID token again, kept with refresh tokens from grants that had one.
#[derive(Clone, Debug)]
pub(super) struct IdTokenGrant {
    /// The `client_id` the original grant used (the `aud`).
    pub(super) audience: String,
    /// The original authentication time (OpenID Connect Core 12.2 keeps `auth_time` on refresh).
    pub(super) auth_time: i64,
}

/// An access token the stand-in issued.
#[derive(Clone, Debug)]
pub(super) struct AccessToken {
    pub(super) kakao_id: i64,
    pub(super) expires_at: Instant,
    /// Set by [`super::StandIn::expire_access_token`].
    pub(super) forced_expired: bool,
    /// Set by logout (token or admin-key form).
    pub(super) revoked: bool,
    /// Set by unlink; such a token answers -101 while the user stays unlinked, -401 after relinking.
    pub(super) unlinked: bool,
    /// The refresh token issued together with it, if any (logout discards both).
    pub(super) refresh_token: Option<String>,
}

/// A refresh token the stand-in issued.
#[derive(Clone, Debug)]
pub(super) struct RefreshToken {
    pub(super) kakao_id: i64,
    pub(super) expires_at: Instant,
    /// Set when the grant it came from answered an ID token; a refresh then answers one too.
    pub(super) id_token: Option<IdTokenGrant>,
}

/// Why a kapi call with an access token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TokenProblem {
    /// Unknown, revoked by logout, or from before an unlink-and-relink: -401 "does not exist".
    DoesNotExist,
    /// Past its lifetime or expired by the test: -401 "already expired".
    Expired,
    /// The owner is not linked to the app: -101.
    NotLinked,
}

/// The whole mutable world.
#[derive(Debug)]
pub(super) struct State {
    next_kakao_id: i64,
    pub(super) accounts: BTreeMap<i64, Account>,
    /// The first account (lowest id) of each email, ASCII-lowercased: email look-ups stay
    /// constant-time with the many accounts a load test creates.
    emails: HashMap<String, i64>,
    pub(super) links: HashMap<i64, Link>,
    pub(super) codes: HashMap<String, CodeGrant>,
    pub(super) access_tokens: HashMap<String, AccessToken>,
    pub(super) refresh_tokens: HashMap<String, RefreshToken>,
    pub(super) auto_consent: Option<super::Consent>,
    pub(super) sticky_faults: HashMap<Endpoint, Fault>,
    pub(super) queued_faults: HashMap<Endpoint, VecDeque<(Fault, usize)>>,
    pub(super) hits: HashMap<Endpoint, usize>,
    pub(super) unlinked: Vec<i64>,
    pub(super) logged_out: Vec<i64>,
    /// The `iss` of ID tokens and the base of the discovery document's URLs (no trailing slash).
    pub(super) issuer: String,
    /// Index in the process-wide key pool of the key that signs ID tokens.
    pub(super) key_index: usize,
    /// The key current before the last rotation, still published in the JWKS.
    pub(super) previous_key: Option<usize>,
    /// Whether OpenID Connect is on for the app (Kakao console: [Kakao Login] > [OpenID Connect]).
    pub(super) oidc: bool,
    /// Sticky fault for the ID tokens the token endpoint answers.
    pub(super) id_token_fault: Option<IdTokenFault>,
    /// Kakao Account browser sessions by cookie value (an opaque random token).
    pub(super) sessions: HashMap<String, Session>,
    /// The query of the last `GET /oauth/authorize`, whatever became of it.
    pub(super) last_authorize_query: Option<BTreeMap<String, String>>,
    /// Registered "Logout Redirect URIs" for `GET /oauth/logout` (compared byte for byte).
    pub(super) logout_redirect_uris: Vec<String>,
    /// Where the app receives Kakao's webhooks.
    pub(super) webhook_targets: super::webhooks::WebhookTargets,
}

impl Default for State {
    fn default() -> Self {
        Self {
            next_kakao_id: FIRST_KAKAO_ID,
            accounts: BTreeMap::new(),
            emails: HashMap::new(),
            links: HashMap::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            auto_consent: None,
            sticky_faults: HashMap::new(),
            queued_faults: HashMap::new(),
            hits: HashMap::new(),
            unlinked: Vec::new(),
            logged_out: Vec::new(),
            issuer: DEFAULT_ISSUER.to_owned(),
            key_index: 0,
            previous_key: None,
            oidc: true,
            id_token_fault: None,
            sessions: HashMap::new(),
            last_authorize_query: None,
            logout_redirect_uris: Vec::new(),
            webhook_targets: super::webhooks::WebhookTargets::default(),
        }
    }
}

/// `n` random bytes as unpadded base64url (the alphabet Kakao's codes and tokens use).
pub(super) fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl State {
    /// Pool indices of the keys the JWKS publishes: the current one first, then the previous one.
    pub(super) fn published_keys(&self) -> Vec<usize> {
        std::iter::once(self.key_index)
            .chain(self.previous_key)
            .collect()
    }

    /// Store a new account and return its id.
    pub(super) fn add_account(&mut self, user: TestUser) -> i64 {
        let id = self.next_kakao_id;
        self.next_kakao_id += 1;
        if let Some(email) = &user.email {
            self.emails.entry(email.to_ascii_lowercase()).or_insert(id);
        }
        self.accounts.insert(id, Account { id, user });
        id
    }

    /// The account whose email equals `email` (ASCII case-insensitively), if any: the first one
    /// added when several share it.
    pub(super) fn account_by_email(&self, email: &str) -> Option<i64> {
        self.emails.get(&email.to_ascii_lowercase()).copied()
    }

    /// The account of `email` for [`super::Consent::AgreeAsLoginHint`]: the existing one, or a
    /// new one named after the email's local part, its email verified and valid.
    pub(super) fn account_for_login_hint(&mut self, email: &str) -> i64 {
        if let Some(id) = self.account_by_email(email) {
            return id;
        }
        let local = email.split_once('@').map_or(email, |(local, _)| local);
        self.add_account(TestUser {
            nickname: Some(local.to_owned()),
            email: Some(email.to_owned()),
            email_verified: true,
            email_valid: true,
        })
    }

    /// Count a request to `endpoint` and take the fault that applies to it, if any.
    /// One-shot faults (queued by `fail_next`) win over the sticky one.
    pub(super) fn enter(&mut self, endpoint: Endpoint) -> Option<Fault> {
        *self.hits.entry(endpoint).or_default() += 1;
        if let Some(queue) = self.queued_faults.get_mut(&endpoint)
            && let Some((fault, remaining)) = queue.front_mut()
        {
            let fault = fault.clone();
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                queue.pop_front();
            }
            return Some(fault);
        }
        self.sticky_faults.get(&endpoint).cloned()
    }

    /// Link (or extend the link of) `kakao_id` with the consent items `scopes`.
    pub(super) fn link(&mut self, kakao_id: i64, scopes: impl IntoIterator<Item = String>) {
        let link = self.links.entry(kakao_id).or_insert_with(|| Link {
            connected_at: Utc::now(),
            scopes: BTreeSet::new(),
        });
        link.scopes.extend(scopes);
    }

    /// Record a consent: link (or extend the link of) the grant's account with `scopes` and
    /// return a new code for `grant` (whose `expires_at` the caller sets).
    pub(super) fn grant_code(&mut self, scopes: BTreeSet<String>, grant: CodeGrant) -> String {
        let now = Instant::now();
        self.codes.retain(|_, c| c.expires_at > now);
        self.link(grant.kakao_id, scopes);
        let code = random_token(64);
        self.codes.insert(code.clone(), grant);
        code
    }

    /// Start a browser session for `kakao_id` signed in now, ending the one named `previous` (a
    /// sign-in replaces the browser's session); returns the new cookie value.
    pub(super) fn start_session(&mut self, kakao_id: i64, previous: Option<&str>) -> String {
        if let Some(previous) = previous {
            self.sessions.remove(previous);
        }
        let value = random_token(32);
        self.sessions.insert(
            value.clone(),
            Session {
                kakao_id,
                auth_time: unix_now(),
            },
        );
        value
    }

    /// Issue a refresh token for `kakao_id`, remembering whether refreshes answer an ID token.
    pub(super) fn issue_refresh_token(
        &mut self,
        kakao_id: i64,
        id_token: Option<IdTokenGrant>,
    ) -> String {
        let token = random_token(40);
        self.refresh_tokens.insert(
            token.clone(),
            RefreshToken {
                kakao_id,
                expires_at: Instant::now() + Duration::from_secs(REFRESH_TOKEN_SECONDS),
                id_token,
            },
        );
        token
    }

    /// Issue an access token for `kakao_id`, remembering the refresh token it belongs with.
    pub(super) fn issue_access_token(
        &mut self,
        kakao_id: i64,
        refresh_token: Option<String>,
    ) -> String {
        let token = random_token(40);
        self.access_tokens.insert(
            token.clone(),
            AccessToken {
                kakao_id,
                expires_at: Instant::now() + Duration::from_secs(ACCESS_TOKEN_SECONDS),
                forced_expired: false,
                revoked: false,
                unlinked: false,
                refresh_token,
            },
        );
        token
    }

    /// Check an access token presented to kapi; on success the owner's id and remaining lifetime.
    pub(super) fn check_access_token(&self, token: &str) -> Result<(i64, Duration), TokenProblem> {
        let record = self
            .access_tokens
            .get(token)
            .ok_or(TokenProblem::DoesNotExist)?;
        if record.revoked {
            return Err(TokenProblem::DoesNotExist);
        }
        let now = Instant::now();
        if record.forced_expired || record.expires_at <= now {
            return Err(TokenProblem::Expired);
        }
        if !self.links.contains_key(&record.kakao_id) {
            return Err(TokenProblem::NotLinked);
        }
        if record.unlinked {
            return Err(TokenProblem::DoesNotExist);
        }
        Ok((record.kakao_id, record.expires_at - now))
    }

    /// Logout with an access token: that token and the refresh token issued with it stop working.
    pub(super) fn logout_token(&mut self, token: &str) {
        let mut refresh = None;
        if let Some(record) = self.access_tokens.get_mut(token) {
            record.revoked = true;
            refresh = record.refresh_token.take();
            self.logged_out.push(record.kakao_id);
        }
        if let Some(refresh) = refresh {
            self.refresh_tokens.remove(&refresh);
        }
    }

    /// Logout with the admin key: every token of `kakao_id` stops working.
    pub(super) fn logout_user(&mut self, kakao_id: i64) {
        for record in self.access_tokens.values_mut() {
            if record.kakao_id == kakao_id {
                record.revoked = true;
            }
        }
        self.refresh_tokens.retain(|_, r| r.kakao_id != kakao_id);
        self.logged_out.push(kakao_id);
    }

    /// Unlink `kakao_id` from the app through the API: the link is cut and the call recorded.
    pub(super) fn unlink_user(&mut self, kakao_id: i64) {
        self.cut_link(kakao_id);
        self.unlinked.push(kakao_id);
    }

    /// Cut the link of `kakao_id` to the app (by the API, or from Kakao's side): consent,
    /// codes and tokens are gone.
    pub(super) fn cut_link(&mut self, kakao_id: i64) {
        self.links.remove(&kakao_id);
        for record in self.access_tokens.values_mut() {
            if record.kakao_id == kakao_id {
                record.unlinked = true;
            }
        }
        self.refresh_tokens.retain(|_, r| r.kakao_id != kakao_id);
        self.codes.retain(|_, c| c.kakao_id != kakao_id);
    }
}
