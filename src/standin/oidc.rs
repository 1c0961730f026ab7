//! The OpenID Connect side of the stand-in: `GET /.well-known/jwks.json`,
//! `GET /.well-known/openid-configuration` and the ID tokens the token endpoint answers.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::keys::{self, CryptoError, Jwk};
use super::reply;
use super::state::{
    ACCESS_TOKEN_SECONDS, SCOPE_EMAIL, SCOPE_NICKNAME, State, random_token, unix_now,
};
use super::{Endpoint, IdTokenFault, StandIn};

/// `/.well-known/jwks.json` answer.
#[derive(Clone, Debug, Serialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

/// `GET /.well-known/jwks.json`: the current key, then the one before the last rotation.
pub(super) async fn jwks(standin: StandIn, _req: HttpRequest, _body: Bytes) -> HttpResponse {
    let fault = standin.enter(Endpoint::Jwks);
    if let Some(response) = reply::apply_fault(fault.as_ref()).await {
        return response;
    }
    // Copy the indices out first: generating a missing key takes a while and must not hold the
    // stand-in's lock.
    let indices = standin.lock().published_keys();
    let keys: Result<Vec<Jwk>, _> = indices
        .into_iter()
        .map(|i| keys::key(i).map(|k| k.jwk.clone()))
        .collect();
    match keys {
        Ok(keys) => reply::json(200, &Jwks { keys }),
        Err(err) => {
            log::error!("stand-in: {err}");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// `/.well-known/openid-configuration` answer, in Kakao's field order (kakao-api.md 7.1).
#[derive(Clone, Debug, Serialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    jwks_uri: String,
    token_endpoint_auth_methods_supported: [&'static str; 1],
    subject_types_supported: [&'static str; 1],
    id_token_signing_alg_values_supported: [&'static str; 1],
    request_uri_parameter_supported: bool,
    response_types_supported: [&'static str; 1],
    response_modes_supported: [&'static str; 1],
    grant_types_supported: [&'static str; 2],
    code_challenge_methods_supported: [&'static str; 1],
    claims_supported: [&'static str; 10],
}

/// `GET /.well-known/openid-configuration` (not counted, no faults). Every URL is built from the
/// issuer (kauth paths) and the API base (kapi paths), which for the stand-in are the same base.
/// Kakao's document advertises `userinfo_endpoint`; the stand-in lists it for the same shape but
/// does not serve `/v1/oidc/userinfo` (yet).
pub(super) async fn openid_configuration(
    standin: StandIn,
    _req: HttpRequest,
    _body: Bytes,
) -> HttpResponse {
    let issuer = standin.lock().issuer.clone();
    let api_base = &issuer;
    reply::json(
        200,
        &Discovery {
            authorization_endpoint: format!("{issuer}/oauth/authorize"),
            token_endpoint: format!("{issuer}/oauth/token"),
            userinfo_endpoint: format!("{api_base}/v1/oidc/userinfo"),
            jwks_uri: format!("{issuer}/.well-known/jwks.json"),
            issuer: issuer.clone(),
            token_endpoint_auth_methods_supported: ["client_secret_post"],
            subject_types_supported: ["public"],
            id_token_signing_alg_values_supported: ["RS256"],
            request_uri_parameter_supported: false,
            response_types_supported: ["code"],
            response_modes_supported: ["query"],
            grant_types_supported: ["authorization_code", "refresh_token"],
            code_challenge_methods_supported: ["S256"],
            claims_supported: [
                "iss",
                "aud",
                "sub",
                "auth_time",
                "exp",
                "iat",
                "nonce",
                "nickname",
                "picture",
                "email",
            ],
        },
    )
}

/// An ID token's claims, in the order of Kakao's sample payload (kakao-api.md 7.3).
#[derive(Clone, Debug, Serialize)]
pub(super) struct Claims {
    aud: String,
    /// The Kakao id as a string, as on Kakao.
    sub: String,
    auth_time: i64,
    iss: String,
    exp: i64,
    iat: i64,
    /// The authorize request's `nonce`, raw (Kakao does not hash it); absent when none was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    /// `kakao_account.profile.nickname`, when the nickname item was agreed.
    #[serde(skip_serializing_if = "Option::is_none")]
    nickname: Option<String>,
    /// `kakao_account.email`, only when the email item was agreed and the address is valid and
    /// verified (Kakao: "only if the email is valid and verified").
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

/// An ID token decided under the state lock, to be signed after releasing it (signing may have
/// to generate a key first).
#[derive(Clone, Debug)]
pub(super) struct IdTokenPlan {
    claims: Claims,
    /// Pool index of the signing key.
    key_index: usize,
    /// A fault that changes the header or signature (claim faults are already applied).
    fault: Option<IdTokenFault>,
}

/// Decide the ID token for `kakao_id`: claims from the account and its link as they are now,
/// `iat` now and `exp` when an access token issued now expires, then `fault` applied. `None`
/// for [`IdTokenFault::Omit`].
pub(super) fn plan(
    state: &State,
    kakao_id: i64,
    audience: &str,
    nonce: Option<&str>,
    auth_time: i64,
    fault: Option<IdTokenFault>,
) -> Option<IdTokenPlan> {
    let now = unix_now();
    let account = state.accounts.get(&kakao_id);
    let agreed = |item: &str| {
        state
            .links
            .get(&kakao_id)
            .is_some_and(|link| link.scopes.contains(item))
    };
    let nickname = account
        .and_then(|a| a.user.nickname.clone())
        .filter(|_| agreed(SCOPE_NICKNAME));
    let email = account
        .filter(|a| a.user.email_valid && a.user.email_verified)
        .and_then(|a| a.user.email.clone())
        .filter(|_| agreed(SCOPE_EMAIL));
    let lifetime = i64::try_from(ACCESS_TOKEN_SECONDS).unwrap_or(i64::MAX);
    let mut plan = IdTokenPlan {
        claims: Claims {
            aud: audience.to_owned(),
            sub: kakao_id.to_string(),
            auth_time,
            iss: state.issuer.clone(),
            exp: now.saturating_add(lifetime),
            iat: now,
            nonce: nonce.map(str::to_owned),
            nickname,
            email,
        },
        key_index: state.key_index,
        fault,
    };
    let claims = &mut plan.claims;
    match fault {
        None => {}
        Some(IdTokenFault::Omit) => return None,
        Some(IdTokenFault::WrongNonce) => {
            claims.nonce = Some(format!("wrong-{}", random_token(16)))
        }
        Some(IdTokenFault::WrongAudience) => claims.aud = "another-apps-rest-api-key".to_owned(),
        Some(IdTokenFault::WrongIssuer) => claims.iss = format!("{}/wrong-issuer", state.issuer),
        Some(IdTokenFault::Expired) => {
            claims.exp = now - 600;
            claims.iat = claims.exp.saturating_sub(lifetime);
            claims.auth_time = claims.auth_time.min(claims.iat);
        }
        Some(IdTokenFault::IssuedInFuture) => {
            claims.iat = now + 3600;
            claims.exp = claims.iat.saturating_add(lifetime);
        }
        Some(IdTokenFault::WrongSubject) => claims.sub = kakao_id.wrapping_add(1).to_string(),
        // Published keys are the current one and older ones, so the next is never published.
        Some(IdTokenFault::UnknownKid) => plan.key_index = state.key_index + 1,
        Some(
            IdTokenFault::BadSignature | IdTokenFault::AlgNone | IdTokenFault::Hs256WithPublicKey,
        ) => {}
    }
    Some(plan)
}

impl IdTokenPlan {
    /// Sign it: RS256 with the planned pool key, header `{"typ":"JWT","alg":"RS256","kid":...}`,
    /// unless the fault says otherwise.
    pub(super) fn sign(&self) -> Result<String, CryptoError> {
        let how = match self.fault {
            Some(IdTokenFault::AlgNone) => Signing::AlgNone,
            Some(IdTokenFault::Hs256WithPublicKey) => Signing::Hs256WithPublicKey,
            Some(IdTokenFault::BadSignature) => Signing::BadSignature,
            _ => Signing::Rs256,
        };
        sign_jwt(&self.claims, "JWT", self.key_index, how)
    }
}

/// How a token the stand-in issues (an ID token, a Security Event Token) is signed: properly,
/// or broken in exactly one way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Signing {
    /// RS256 with the key, its `kid` in the header.
    Rs256,
    /// RS256 with one bit of the signature flipped (still valid base64url of the right length).
    BadSignature,
    /// Header `{"alg":"none","typ":...}` and an empty signature part.
    AlgNone,
    /// HS256 with the key's public PEM as the HMAC secret, its `kid` in the header.
    Hs256WithPublicKey,
}

/// `claims` as a compact JWS with header `typ` (`JWT`, `secevent+jwt`), signed with pool key
/// `key_index` as `how` says.
pub(super) fn sign_jwt(
    claims: &impl Serialize,
    typ: &str,
    key_index: usize,
    how: Signing,
) -> Result<String, CryptoError> {
    let (algorithm, secret) = match how {
        Signing::AlgNone => {
            let header = serde_json::json!({"alg": "none", "typ": typ});
            let payload = serde_json::to_vec(claims).map_err(|e| CryptoError(e.to_string()))?;
            return Ok(format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(payload)
            ));
        }
        Signing::Hs256WithPublicKey => {
            let key = keys::key(key_index)?;
            let secret = EncodingKey::from_secret(key.public_pem.as_bytes())
                .map_err(|e| CryptoError(e.to_string()))?;
            (Algorithm::HS256, (key, secret))
        }
        Signing::Rs256 | Signing::BadSignature => {
            let key = keys::key(key_index)?;
            let secret = EncodingKey::from_rsa_der(&key.private_der);
            (Algorithm::RS256, (key, secret))
        }
    };
    let (key, secret) = secret;
    let mut header = Header::new(algorithm);
    header.typ = Some(typ.to_owned());
    header.kid = Some(key.kid.clone());
    let token =
        jsonwebtoken::encode(&header, claims, &secret).map_err(|e| CryptoError(e.to_string()))?;
    if how == Signing::BadSignature {
        corrupt_signature(&token)
    } else {
        Ok(token)
    }
}

/// `token` with one bit of its signature flipped, re-encoded as base64url.
fn corrupt_signature(token: &str) -> Result<String, CryptoError> {
    let (signed, signature) = token
        .rsplit_once('.')
        .ok_or_else(|| CryptoError("a JWT without a signature part".to_owned()))?;
    let mut bytes = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|e| CryptoError(e.to_string()))?;
    if let Some(last) = bytes.last_mut() {
        *last ^= 0x01;
    }
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bytes)))
}
