//! OpenID Connect ID tokens from Kakao, verified before anyone is signed in.
//!
//! A token is accepted only when every check holds, in this order (the first that fails is
//! the reason logged):
//! - `alg` is RS256 and the header names a `kid` (so `alg: none` and HS256 signed with the
//!   public key are refused before any key is looked at);
//! - the key with that `kid` is in Kakao's JWKS (fetched once and cached for `KEY_TTL`; a
//!   `kid` we do not have makes one more fetch, which is how a key rotation is picked up, but
//!   at most once per `REFETCH_INTERVAL`, as Kakao asks: "too frequent fetching may be
//!   blocked");
//! - the RS256 signature verifies with it;
//! - `iss` is the configured issuer, `aud` one of the accepted audiences, `exp` in the future
//!   and `iat` not in the future (both with `SKEW`);
//! - `nonce` equals the one sent, compared raw (Kakao does not hash it), when one was sent;
//! - `sub` is a Kakao id. The caller then compares it with `/v2/user/me`'s id.
//!
//! The checks are `jsonwebtoken`'s (signature, `iss`, `aud`, `exp`) plus the ones it does not
//! make (`iat`, `nonce`, `sub`), written here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::KakaoError;

/// Clock difference tolerated between Kakao and us, for `exp` and `iat`.
pub const SKEW: Duration = Duration::from_secs(60);
/// How long fetched keys are used before they are fetched again.
pub const KEY_TTL: Duration = Duration::from_secs(60 * 60);
/// The shortest time between two fetches caused by an unknown `kid`.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// The oldest mobile ID token accepted (its `iat`): the SDK hands the app a fresh one at
/// each login.
pub const MOBILE_MAX_AGE: Duration = Duration::from_secs(10 * 60);
/// Longest ID token looked at.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Where the keys are and what the tokens must say.
#[derive(Clone, Debug)]
pub struct OidcConfig {
    /// `iss` (`KAKAO_OIDC_ISSUER`: Kakao's is `https://kauth.kakao.com`).
    pub issuer: String,
    /// `{KAKAO_AUTH_BASE_URL}/.well-known/jwks.json`.
    pub jwks_url: String,
}

/// What a verified ID token says about the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdClaims {
    pub kakao_id: i64,
    /// `exp`, Unix seconds.
    pub expires_at: i64,
    /// Present only when the Kakao account's email is valid and verified (Kakao's rule).
    pub email: Option<String>,
    pub nickname: Option<String>,
}

/// Why an ID token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    /// The token fails a check; the reason names it (for the log, never the person).
    #[error("ID token refused: {0}")]
    Invalid(&'static str),
    /// Kakao's keys could not be fetched: the token was not judged.
    #[error("Kakao's signing keys are unavailable: {0}")]
    Keys(KakaoError),
}

/// Kakao's signing keys, shared by every worker's client.
#[derive(Default)]
pub struct KeyCache {
    keys: Mutex<CachedKeys>,
    /// One fetch at a time: the others wait for it and use its keys.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct CachedKeys {
    by_kid: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
    /// The last fetch started because a token named a `kid` we did not have.
    refetched_at: Option<Instant>,
    /// The last fetch that failed: no other is made for `FAILURE_BACKOFF`.
    failed_at: Option<Instant>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.keys.lock().map(|k| k.by_kid.len()).unwrap_or(0);
        f.debug_struct("KeyCache").field("keys", &count).finish()
    }
}

/// After a failed fetch, how long the keys are not asked for again (logins meanwhile use the
/// keys they have, or wait for Kakao like everyone else).
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(5);

/// What a lookup decided.
enum Cached {
    /// Fresh, or stale while Kakao's JWKS is failing (stale-if-error).
    Key(DecodingKey),
    /// Nothing cached, or stale: fetch; `stale` is the key to fall back on if that fails.
    Fetch { stale: Option<DecodingKey> },
    /// The keys are fresh but lack this `kid`, and no such fetch happened lately: fetch once
    /// more (a rotation).
    Refetch,
    /// The keys are fresh, lack this `kid`, and a fetch for an unknown `kid` succeeded lately.
    Unknown,
    /// No usable key, and a fetch failed moments ago.
    Down,
}

impl KeyCache {
    fn lookup(&self, kid: &str, now: Instant) -> Cached {
        let Ok(keys) = self.keys.lock() else {
            return Cached::Fetch { stale: None };
        };
        let within = |at: Option<Instant>, span: Duration| {
            at.is_some_and(|at| now.saturating_duration_since(at) < span)
        };
        let fresh = within(keys.fetched_at, KEY_TTL);
        let backing_off = within(keys.failed_at, FAILURE_BACKOFF);
        let have = keys.by_kid.get(kid).cloned();
        match (fresh, have) {
            (true, Some(key)) => Cached::Key(key),
            (false, Some(key)) if backing_off => Cached::Key(key),
            (false, None) if backing_off => Cached::Down,
            (false, stale) => Cached::Fetch { stale },
            // The fetch for an unknown `kid` failed: whether Kakao has that key is not known,
            // so say the keys are down (503: Kakao sends a webhook again), never "unknown"
            // (400, which Kakao takes as final); try once more after the backoff.
            (true, None) if backing_off => Cached::Down,
            (true, None) if within(keys.failed_at, REFETCH_INTERVAL) => Cached::Refetch,
            (true, None) if within(keys.refetched_at, REFETCH_INTERVAL) => Cached::Unknown,
            (true, None) => Cached::Refetch,
        }
    }

    fn note(&self, f: impl FnOnce(&mut CachedKeys)) {
        if let Ok(mut keys) = self.keys.lock() {
            f(&mut keys);
        }
    }

    fn replace(&self, set: &JwkSet, now: Instant) {
        let by_kid = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some((kid, key))
            })
            .collect();
        self.note(|keys| {
            keys.by_kid = by_kid;
            keys.fetched_at = Some(now);
            keys.failed_at = None;
        });
    }

    /// The key for `kid`, fetching the JWKS with `fetch` when the cache allows it. One fetch
    /// at a time; the logins waiting for it use its outcome.
    pub async fn key_for<F, Fut>(&self, kid: &str, fetch: F) -> Result<DecodingKey, IdTokenError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<JwkSet, KakaoError>>,
    {
        let down = || {
            IdTokenError::Keys(KakaoError::Transport(super::http::HttpError::Connect(
                "Kakao's JWKS failed moments ago; not asked again yet".to_owned(),
            )))
        };
        match self.lookup(kid, Instant::now()) {
            Cached::Key(key) => return Ok(key),
            Cached::Unknown => return Err(IdTokenError::Invalid("unknown_kid")),
            Cached::Down => return Err(down()),
            Cached::Fetch { .. } | Cached::Refetch => {}
        }
        let _one_at_a_time = self.fetching.lock().await;
        // Another login may have fetched (or failed to) while this one waited.
        let (stale, for_unknown_kid) = match self.lookup(kid, Instant::now()) {
            Cached::Key(key) => return Ok(key),
            Cached::Unknown => return Err(IdTokenError::Invalid("unknown_kid")),
            Cached::Down => return Err(down()),
            Cached::Fetch { stale } => (stale, false),
            Cached::Refetch => (None, true),
        };
        if for_unknown_kid {
            // Counted when started, so that failing fetches are limited too.
            self.note(|keys| keys.refetched_at = Some(Instant::now()));
        }
        match fetch().await {
            Ok(set) => {
                log::info!(
                    "event=kakao.jwks.fetched keys={} unknown_kid={for_unknown_kid}",
                    set.keys.len()
                );
                self.replace(&set, Instant::now());
            }
            Err(e) => {
                self.note(|keys| keys.failed_at = Some(Instant::now()));
                return match stale {
                    Some(key) => {
                        log::warn!(
                            "event=kakao.jwks.failed using=stale_keys code={} error=\"{e}\"",
                            e.log_code()
                        );
                        Ok(key)
                    }
                    None => Err(IdTokenError::Keys(e)),
                };
            }
        }
        match self.lookup(kid, Instant::now()) {
            Cached::Key(key) => Ok(key),
            _ => Err(IdTokenError::Invalid("unknown_kid")),
        }
    }
}

/// The header fields looked at before any key is.
#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<String>,
}

/// `alg` and `kid` of a compact JWT, read without trusting anything else in it.
pub fn header_kid(token: &str) -> Result<String, IdTokenError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
        return Err(IdTokenError::Invalid("malformed"));
    }
    let first = token.split('.').next().unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD
        .decode(first)
        .map_err(|_| IdTokenError::Invalid("malformed"))?;
    let header: RawHeader =
        serde_json::from_slice(&bytes).map_err(|_| IdTokenError::Invalid("malformed"))?;
    if header.alg.as_deref() != Some("RS256") {
        return Err(IdTokenError::Invalid("alg"));
    }
    header.kid.ok_or(IdTokenError::Invalid("kid_missing"))
}

/// The claims read from a token whose signature, `iss`, `aud` and `exp` verified.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    iat: Option<i64>,
    nonce: Option<String>,
    email: Option<String>,
    nickname: Option<String>,
}

/// What a token must say.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub audiences: &'a [String],
    /// The nonce sent with the authorize request (the web flow), or the mobile app's.
    pub nonce: Option<&'a str>,
    /// When set, `iat` may be no older than this (the mobile endpoint: a token handed to us
    /// must be fresh, not one kept for hours).
    pub max_age: Option<Duration>,
}

/// Check a token against `key`: the signature and every claim rule (see the module doc).
pub fn verify(
    token: &str,
    key: &DecodingKey,
    expected: &Expected<'_>,
) -> Result<IdClaims, IdTokenError> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = SKEW.as_secs();
    validation.set_issuer(&[expected.issuer]);
    validation.set_audience(expected.audiences);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| {
        IdTokenError::Invalid(match e.kind() {
            ErrorKind::InvalidSignature => "signature",
            ErrorKind::ExpiredSignature => "expired",
            ErrorKind::InvalidIssuer => "iss",
            ErrorKind::InvalidAudience => "aud",
            ErrorKind::InvalidAlgorithm => "alg",
            ErrorKind::MissingRequiredClaim(_) => "missing_claim",
            _ => "malformed",
        })
    })?;
    let claims = data.claims;
    let now = chrono::Utc::now().timestamp();
    let skew = i64::try_from(SKEW.as_secs()).unwrap_or(60);
    match claims.iat {
        Some(iat) if iat > now + skew => return Err(IdTokenError::Invalid("iat_in_future")),
        Some(iat)
            if expected
                .max_age
                .is_some_and(|age| iat < now - i64::try_from(age.as_secs()).unwrap_or(0)) =>
        {
            return Err(IdTokenError::Invalid("too_old"));
        }
        Some(_) => {}
        None => return Err(IdTokenError::Invalid("missing_claim")),
    }
    if let Some(sent) = expected.nonce {
        let echoed = claims.nonce.as_deref().unwrap_or("");
        if !crate::token::constant_time_eq(sent, echoed) {
            return Err(IdTokenError::Invalid("nonce"));
        }
    }
    let kakao_id = claims
        .sub
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(IdTokenError::Invalid("sub"))?;
    Ok(IdClaims {
        kakao_id,
        expires_at: claims.exp,
        email: claims.email.filter(|e| !e.is_empty()),
        nickname: claims.nickname.filter(|n| !n.trim().is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_other_than_rs256_with_a_kid_are_refused_before_any_key() {
        let part = |v: &str| URL_SAFE_NO_PAD.encode(v);
        let token = |header: &str| format!("{}.{}.sig", part(header), part("{}"));
        assert_eq!(
            header_kid(&token(r#"{"alg":"RS256","kid":"k1"}"#)).ok(),
            Some("k1".to_owned())
        );
        for (header, reason) in [
            (r#"{"alg":"none","typ":"JWT"}"#, "alg"),
            (r#"{"alg":"HS256","kid":"k1"}"#, "alg"),
            (r#"{"alg":"RS512","kid":"k1"}"#, "alg"),
            (r#"{"kid":"k1"}"#, "alg"),
            (r#"{"alg":"RS256"}"#, "kid_missing"),
            ("not json", "malformed"),
        ] {
            match header_kid(&token(header)) {
                Err(IdTokenError::Invalid(r)) => assert_eq!(r, reason, "{header}"),
                other => panic!("{header}: {other:?}"),
            }
        }
        for bad in ["", "a.b", "a.b.c.d", "%%%.e30.sig"] {
            assert!(header_kid(bad).is_err(), "{bad}");
        }
        assert!(header_kid(&"a".repeat(MAX_TOKEN_LEN + 1)).is_err());
    }

    /// Each rule, against tokens signed by the stand-in: the reason names the check that
    /// failed.
    #[actix_web::test]
    async fn each_rule_refuses_with_its_own_reason() {
        use crate::standin::{IdTokenFault, StandIn, StandInConfig, TestUser};
        let standin = StandIn::new(StandInConfig {
            client_id: "rest-key".into(),
            client_secret: None,
            app_id: 1,
            admin_key: None,
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
        });
        standin.set_issuer("https://kauth.example");
        let id = standin.add_user(TestUser {
            nickname: Some("길동".into()),
            email: Some("gildong@example.com".into()),
            email_verified: true,
            email_valid: true,
        });
        let for_service = standin.clone();
        let service = actix_web::test::init_service(
            actix_web::App::new().configure(move |c| for_service.configure(c)),
        )
        .await;
        let request = actix_web::test::TestRequest::get()
            .uri("/.well-known/jwks.json")
            .to_request();
        let set: JwkSet = actix_web::test::call_and_read_body_json(&service, request).await;
        let key_of = |token: &str| {
            let kid = header_kid(token)?;
            set.keys
                .iter()
                .find(|k| k.common.key_id.as_deref() == Some(kid.as_str()))
                .and_then(|k| DecodingKey::from_jwk(k).ok())
                .ok_or(IdTokenError::Invalid("unknown_kid"))
        };
        let audiences = vec!["rest-key".to_owned()];
        let expected = Expected {
            issuer: "https://kauth.example",
            audiences: &audiences,
            nonce: Some("n-1"),
            max_age: None,
        };
        let check = |token: &str| key_of(token).and_then(|key| verify(token, &key, &expected));

        let good = standin.mint_id_token(id, "rest-key", Some("n-1"));
        let claims = check(&good).expect("a good token");
        assert_eq!(claims.kakao_id, id);
        assert_eq!(claims.email.as_deref(), Some("gildong@example.com"));
        assert_eq!(claims.nickname.as_deref(), Some("길동"));

        for (fault, reason) in [
            (IdTokenFault::WrongNonce, "nonce"),
            (IdTokenFault::WrongAudience, "aud"),
            (IdTokenFault::WrongIssuer, "iss"),
            (IdTokenFault::Expired, "expired"),
            (IdTokenFault::IssuedInFuture, "iat_in_future"),
            (IdTokenFault::BadSignature, "signature"),
            (IdTokenFault::UnknownKid, "unknown_kid"),
            (IdTokenFault::AlgNone, "alg"),
            (IdTokenFault::Hs256WithPublicKey, "alg"),
        ] {
            let token = standin.mint_id_token_with(id, "rest-key", Some("n-1"), fault);
            match check(&token) {
                Err(IdTokenError::Invalid(r)) => assert_eq!(r, reason, "{fault:?}"),
                other => panic!("{fault:?}: {other:?}"),
            }
        }
        // A nonce was sent but the token has none; another allowed audience is accepted.
        let bare = standin.mint_id_token(id, "rest-key", None);
        assert!(matches!(check(&bare), Err(IdTokenError::Invalid("nonce"))));
        let native = standin.mint_id_token(id, "native-key", None);
        let both = vec!["rest-key".to_owned(), "native-key".to_owned()];
        let mobile = Expected {
            issuer: "https://kauth.example",
            audiences: &both,
            nonce: None,
            max_age: Some(Duration::from_secs(600)),
        };
        let key = key_of(&native).expect("key");
        assert!(verify(&native, &key, &mobile).is_ok());
        // The subject is checked against /v2/user/me by the caller; here it must be an id.
        let other =
            standin.mint_id_token_with(id, "rest-key", Some("n-1"), IdTokenFault::WrongSubject);
        assert_eq!(check(&other).map(|c| c.kakao_id).ok(), Some(id + 1));
    }

    #[actix_web::test]
    async fn keys_are_fetched_once_and_again_only_for_an_unknown_kid_after_the_interval() {
        let cache = KeyCache::default();
        let fetches = std::cell::Cell::new(0);
        let set: JwkSet = serde_json::from_str(
            r#"{"keys":[{"kid":"k1","kty":"RSA","alg":"RS256","use":"sig",
            "n":"q8zZ0b_MNaLd6Ny8wd4cjFomilLfFIZcmhNSc1ttx_oQdJJZt5CDHB8WWwPGBUDUyY8AmfglS9Y1qA0_fxxs-ZUWdt45jSbUxghKNYgEwSutfM5sROh3srm5TiLW4YfOvKytGW1r9TQEdLe98ork8-rNRYPybRI3SKoqpci1m1QOcvUg4xEYRvbZIWku24DNMSeheytKUz6Ni4kKOVkzfGN11rUj1IrlRR-LNA9V9ZYmeoywy3k066rD5TaZHor5bM5gIzt1B4FmUuFITpXKGQZS5Hn_Ck8Bgc8kLWGAU8TzmOzLeROosqKE0eZJ4ESLMImTb2XSEZuN1wFyL0VtJw",
            "e":"AQAB"}]}"#,
        )
        .expect("jwks");
        let fetch = || {
            fetches.set(fetches.get() + 1);
            let set = set.clone();
            async move { Ok(set) }
        };
        assert!(cache.key_for("k1", fetch).await.is_ok());
        assert!(cache.key_for("k1", fetch).await.is_ok());
        assert_eq!(fetches.get(), 1, "a known kid is served from the cache");
        // An unknown kid: one more fetch (a rotation would be picked up by it)...
        assert!(matches!(
            cache.key_for("k2", fetch).await,
            Err(IdTokenError::Invalid("unknown_kid"))
        ));
        assert_eq!(fetches.get(), 2);
        // ...but not another within the interval, whatever the kid.
        for kid in ["k2", "k3", "k4"] {
            assert!(matches!(
                cache.key_for(kid, fetch).await,
                Err(IdTokenError::Invalid("unknown_kid"))
            ));
        }
        assert_eq!(fetches.get(), 2);
        assert!(
            cache.key_for("k1", fetch).await.is_ok(),
            "known kids still work"
        );
        // Once the interval has passed, one more.
        if let Ok(mut keys) = cache.keys.lock() {
            keys.refetched_at = Some(Instant::now() - REFETCH_INTERVAL - Duration::from_secs(1));
        }
        assert!(cache.key_for("k2", fetch).await.is_err());
        assert_eq!(fetches.get(), 3);
        // Stale keys are fetched again before use.
        if let Ok(mut keys) = cache.keys.lock() {
            keys.fetched_at = Some(Instant::now() - KEY_TTL - Duration::from_secs(1));
        }
        assert!(cache.key_for("k1", fetch).await.is_ok());
        assert_eq!(fetches.get(), 4);
        // A failed fetch is the keys' problem, not the token's; the next logins do not
        // queue behind fetches of their own for a while.
        let cold = KeyCache::default();
        let failures = std::cell::Cell::new(0);
        let down = || {
            failures.set(failures.get() + 1);
            async {
                Err(KakaoError::Transport(
                    crate::kakao::http::HttpError::Timeout,
                ))
            }
        };
        for _ in 0..3 {
            assert!(matches!(
                cold.key_for("k1", down).await,
                Err(IdTokenError::Keys(_))
            ));
        }
        assert_eq!(failures.get(), 1, "one fetch, then the back-off");
        // Stale keys are used while the JWKS fails (stale-if-error).
        if let Ok(mut keys) = cache.keys.lock() {
            keys.fetched_at = Some(Instant::now() - KEY_TTL - Duration::from_secs(1));
        }
        assert!(cache.key_for("k1", down).await.is_ok());
        assert!(cache.key_for("k1", down).await.is_ok());
        assert_eq!(failures.get(), 2, "stale keys served; one failed fetch");
        // With fresh keys, a refetch for an unknown kid that fails leaves the kid undecided:
        // the keys are down (503), not "unknown" (400, final for Kakao's webhooks), and after
        // the back-off it is asked once more.
        let rotating = KeyCache::default();
        assert!(rotating.key_for("k1", fetch).await.is_ok());
        for _ in 0..2 {
            assert!(matches!(
                rotating.key_for("k-new", down).await,
                Err(IdTokenError::Keys(_))
            ));
        }
        assert_eq!(failures.get(), 3, "one failed refetch, then the back-off");
        if let Ok(mut keys) = rotating.keys.lock() {
            keys.failed_at = Some(Instant::now() - FAILURE_BACKOFF - Duration::from_secs(1));
        }
        assert!(matches!(
            rotating.key_for("k-new", fetch).await,
            Err(IdTokenError::Invalid("unknown_kid"))
        ));
        assert!(
            matches!(
                rotating.key_for("k-new", fetch).await,
                Err(IdTokenError::Invalid("unknown_kid"))
            ),
            "a successful refetch settles it"
        );
    }
}
