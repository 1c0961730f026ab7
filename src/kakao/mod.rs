//! The Kakao client: authorize URLs with `state`, PKCE S256 and (with OpenID Connect) a
//! `nonce`, the code exchange (through the `oauth2` crate, sent by awc), ID-token
//! verification (`oidc`), Kakao Account logout URLs, and the kapi calls (user me, token info,
//! consent items, logout, unlink, the admin key's user list).

pub mod error;
pub mod events;
pub mod http;
pub mod oidc;
pub mod types;

use std::sync::Arc;
use std::time::Duration;

use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    StandardRevocableToken, TokenResponse, TokenUrl,
};
use serde::de::DeserializeOwned;

pub use error::{ErrorClass, KakaoError};
use http::{HttpError, RawResponse};
pub use oidc::{IdClaims, IdTokenError, OidcConfig};
pub use types::{ConsentItem, EmailStatus, KakaoUser, TokenInfo};

use crate::config::Secret;

/// The consent items asked for at sign-in. Email is required: it is how an existing account
/// is recognised.
pub const LOGIN_SCOPES: &[&str] = &["profile_nickname", "account_email"];
/// Asked for with OpenID Connect on: without it, an additional-consent request gets no new ID
/// token (Kakao's rule).
pub const OPENID_SCOPE: &str = "openid";

/// Where Kakao is and who we are to it. Built once at start-up.
#[derive(Clone, Debug)]
pub struct KakaoConfig {
    pub authorize_url: String,
    pub token_url: String,
    pub api_base_url: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub redirect_uri: String,
    pub admin_key: Option<Secret>,
    pub app_id: Option<i64>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// Where ID tokens' keys are and what they must say.
    pub oidc: OidcConfig,
    /// Whether the web login asks for and requires an ID token (`KAKAO_OIDC`).
    pub oidc_login: bool,
    /// Besides `client_id`, the app keys accepted as an ID token's `aud` from the mobile SDKs
    /// (`KAKAO_ALLOWED_AUDIENCES`: an app has up to five keys per platform).
    pub extra_audiences: Vec<String>,
    /// Kakao Account logout: `{KAKAO_AUTH_BASE_URL}/oauth/logout`.
    pub logout_url: String,
    /// Where Kakao sends the browser back after it (`KAKAO_LOGOUT_REDIRECT_URI`).
    pub logout_redirect_uri: String,
    /// Kakao's signing keys, shared by every worker's client.
    pub keys: Arc<oidc::KeyCache>,
}

/// Which audiences an ID token may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// The web login: `client_id` only (the token was issued to this request).
    Web,
    /// A mobile SDK's token: `client_id` or one of `KAKAO_ALLOWED_AUDIENCES`.
    Mobile,
}

/// What `/oauth/authorize` is asked besides the consent items.
#[derive(Clone, Debug, Default)]
pub struct AuthorizeOptions<'a> {
    /// Bound to this login's state; echoed in the ID token.
    pub nonce: Option<&'a str>,
    /// `login`, `select_account`, `create` or `none` (already checked against the allowlist).
    pub prompt: Option<&'a str>,
    /// Pre-fills Kakao's login form; never trusted.
    pub login_hint: Option<&'a str>,
}

/// The tokens of a code exchange. Kakao's access token is used once, to read the profile,
/// and never stored.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub id_token: Option<String>,
}

type TokenAnswer = oauth2::StandardTokenResponse<types::KakaoTokenFields, BasicTokenType>;

type OAuthClient = oauth2::Client<
    types::KauthErrorBody,
    TokenAnswer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// A started authorization: send the person to `url`, keep `state` and `verifier` in the session.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub url: String,
    pub state: String,
    pub verifier: String,
}

/// The Kakao client of one worker (awc's client is not `Send`).
pub struct KakaoClient {
    config: KakaoConfig,
    oauth: OAuthClient,
    http: awc::Client,
}

/// The configured Kakao URLs are not valid.
#[derive(Debug, thiserror::Error)]
#[error("invalid Kakao URL: {0}")]
pub struct BadKakaoUrl(String);

impl KakaoClient {
    pub fn new(config: KakaoConfig) -> Result<KakaoClient, BadKakaoUrl> {
        let mut oauth: OAuthClient = oauth2::Client::new(ClientId::new(config.client_id.clone()))
            .set_auth_uri(
                AuthUrl::new(config.authorize_url.clone())
                    .map_err(|e| BadKakaoUrl(e.to_string()))?,
            )
            .set_token_uri(
                TokenUrl::new(config.token_url.clone()).map_err(|e| BadKakaoUrl(e.to_string()))?,
            )
            .set_redirect_uri(
                RedirectUrl::new(config.redirect_uri.clone())
                    .map_err(|e| BadKakaoUrl(e.to_string()))?,
            )
            // Kakao takes the client credentials in the form body (client_secret_post).
            .set_auth_type(AuthType::RequestBody);
        if let Some(secret) = &config.client_secret {
            oauth = oauth.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
        }
        let http = http::build_client(config.connect_timeout, config.timeout);
        Ok(KakaoClient {
            config,
            oauth,
            http,
        })
    }

    pub fn config(&self) -> &KakaoConfig {
        &self.config
    }

    /// A new authorize URL with a fresh `state` (128 random bits), an S256 PKCE challenge and
    /// the `options` given.
    pub fn authorize(&self, scopes: &[&str], options: &AuthorizeOptions<'_>) -> AuthorizeRequest {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self.oauth.authorize_url(CsrfToken::new_random);
        for scope in scopes {
            request = request.add_scope(Scope::new((*scope).to_owned()));
        }
        for (name, value) in [
            ("nonce", options.nonce),
            ("prompt", options.prompt),
            ("login_hint", options.login_hint),
        ] {
            if let Some(value) = value {
                request = request.add_extra_param(name, value);
            }
        }
        let (url, state) = request.set_pkce_challenge(challenge).url();
        AuthorizeRequest {
            url: url.to_string(),
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
        }
    }

    /// Exchange an authorization code for tokens. Called once per code: a code exchange is
    /// never retried (codes are single-use).
    pub async fn exchange_code(&self, code: &str, verifier: &str) -> Result<Tokens, KakaoError> {
        let http = self.http.clone();
        let timeout = self.config.timeout;
        let send = move |request: oauth2::HttpRequest| {
            let http = http.clone();
            async move { http::send_oauth2(&http, timeout, request).await }
        };
        let result = self
            .oauth
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&send)
            .await;
        match result {
            Ok(token) => Ok(Tokens {
                access_token: token.access_token().secret().clone(),
                id_token: token.extra_fields().id_token.clone(),
            }),
            Err(e) => Err(token_error(e)),
        }
    }

    /// Ask the token endpoint to exchange a code that cannot exist, to learn whether it
    /// accepts our client id and secret (`kakao-login check`): Kakao judges the client before
    /// the code, so `invalid_grant` (KOE320) means both are right. Returns Kakao's refusal;
    /// `Ok` would mean the impossible code was accepted.
    pub async fn probe_credentials(&self) -> Result<(), KakaoError> {
        let http = self.http.clone();
        let timeout = self.config.timeout;
        let send = move |request: oauth2::HttpRequest| {
            let http = http.clone();
            async move { http::send_oauth2(&http, timeout, request).await }
        };
        self.oauth
            .exchange_code(AuthorizationCode::new(
                "kakao-login-check-not-a-code".to_owned(),
            ))
            .request_async(&send)
            .await
            .map(|_| ())
            .map_err(token_error)
    }

    /// Verify an ID token (see `oidc`), fetching Kakao's keys when needed. `nonce` is the one
    /// sent, when one was.
    pub async fn verify_id_token(
        &self,
        token: &str,
        nonce: Option<&str>,
        audience: Audience,
    ) -> Result<IdClaims, IdTokenError> {
        let kid = oidc::header_kid(token)?;
        let key = self.config.keys.key_for(&kid, || self.fetch_jwks()).await?;
        let mut audiences = vec![self.config.client_id.clone()];
        if audience == Audience::Mobile {
            audiences.extend(self.config.extra_audiences.iter().cloned());
        }
        oidc::verify(
            token,
            &key,
            &oidc::Expected {
                issuer: &self.config.oidc.issuer,
                audiences: &audiences,
                nonce,
                max_age: (audience == Audience::Mobile).then_some(oidc::MOBILE_MAX_AGE),
            },
        )
    }

    /// Verify a Security Event Token from the account status change webhook (see `events`):
    /// the same keys as the ID tokens; `aud` the REST API key, one of the allowed audiences,
    /// or the numeric app id. `Err(None)` when Kakao's keys could not be fetched (the token
    /// was not judged).
    pub async fn verify_security_event(
        &self,
        token: &str,
    ) -> Result<events::SecurityEvent, Option<events::SetRefused>> {
        use events::SetRefused;
        if token.len() > events::MAX_TOKEN_LEN {
            return Err(Some(SetRefused::new("invalid_request", "token too long")));
        }
        let refused = |e: IdTokenError| match e {
            IdTokenError::Invalid("malformed") => {
                Some(SetRefused::new("invalid_request", "not a compact JWS"))
            }
            IdTokenError::Invalid(reason) => Some(SetRefused::new(
                "invalid_key",
                format!("key not usable: {reason}"),
            )),
            IdTokenError::Keys(e) => {
                log::warn!(
                    "event=kakao.jwks.failed code={} error=\"{e}\"",
                    e.log_code()
                );
                None
            }
        };
        let kid = oidc::header_kid(token).map_err(refused)?;
        let key = self
            .config
            .keys
            .key_for(&kid, || self.fetch_jwks())
            .await
            .map_err(refused)?;
        let mut audiences = vec![self.config.client_id.clone()];
        audiences.extend(self.config.extra_audiences.iter().cloned());
        audiences.extend(self.config.app_id.map(|id| id.to_string()));
        events::verify(
            token,
            &key,
            &events::Expected {
                issuer: &self.config.oidc.issuer,
                audiences: &audiences,
            },
        )
        .map_err(Some)
    }

    /// `GET {KAKAO_AUTH_BASE_URL}/.well-known/jwks.json`.
    pub async fn fetch_jwks(&self) -> Result<jsonwebtoken::jwk::JwkSet, KakaoError> {
        let request = self.http.get(&self.config.oidc.jwks_url);
        let raw = http::send(self.config.timeout, request, None).await?;
        if raw.status.as_u16() != 200 {
            return Err(KakaoError::Malformed(format!(
                "JWKS answered HTTP {}",
                raw.status.as_u16()
            )));
        }
        serde_json::from_slice(&raw.body)
            .map_err(|e| KakaoError::Malformed(format!("JWKS body: {e}")))
    }

    /// The `issuer` of Kakao's OpenID Connect discovery document (beside the JWKS), for
    /// `kakao-login check`.
    pub async fn discovery_issuer(&self) -> Result<String, KakaoError> {
        let url = self.config.oidc.jwks_url.replace(
            "/.well-known/jwks.json",
            "/.well-known/openid-configuration",
        );
        let raw = http::send(self.config.timeout, self.http.get(&url), None).await?;
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: String,
        }
        if raw.status.as_u16() != 200 {
            return Err(KakaoError::Malformed(format!(
                "discovery answered HTTP {}",
                raw.status.as_u16()
            )));
        }
        serde_json::from_slice::<Discovery>(&raw.body)
            .map(|d| d.issuer)
            .map_err(|e| KakaoError::Malformed(format!("discovery body: {e}")))
    }

    /// Kakao Account logout for this browser, coming back to `logout_redirect_uri` with
    /// `state`.
    pub fn account_logout_url(&self, state: &str) -> String {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.config.client_id)
            .append_pair("logout_redirect_uri", &self.config.logout_redirect_uri)
            .append_pair("state", state)
            .finish();
        format!("{}?{query}", self.config.logout_url)
    }

    /// `GET /v2/user/scopes` with the admin key: the person's consent items. `Ok(None)` when
    /// no admin key is configured.
    pub async fn consent_items(
        &self,
        kakao_id: i64,
    ) -> Result<Option<Vec<ConsentItem>>, KakaoError> {
        let Some(key) = &self.config.admin_key else {
            return Ok(None);
        };
        let path = format!("/v2/user/scopes?target_id_type=user_id&target_id={kakao_id}");
        let answer: types::ScopesAnswer = self
            .kapi("GET", &path, &format!("KakaoAK {}", key.expose()), None)
            .await?;
        Ok(Some(answer.scopes))
    }

    /// A harmless admin-key call (`GET /v1/user/ids?limit=1`, "Manage User Info"), for
    /// `kakao-login check`. `Ok(false)` when no admin key is configured.
    pub async fn probe_admin_key(&self) -> Result<bool, KakaoError> {
        let Some(key) = &self.config.admin_key else {
            return Ok(false);
        };
        let _: types::UserIds = self
            .kapi(
                "GET",
                "/v1/user/ids?limit=1",
                &format!("KakaoAK {}", key.expose()),
                None,
            )
            .await?;
        Ok(true)
    }

    /// `GET /v2/user/me` with the person's access token.
    pub async fn user_me(&self, access_token: &str) -> Result<KakaoUser, KakaoError> {
        self.kapi("GET", "/v2/user/me", &bearer(access_token), None)
            .await
    }

    /// `GET /v1/user/access_token_info`: validates a token and says whose and which app's it is.
    pub async fn access_token_info(&self, access_token: &str) -> Result<TokenInfo, KakaoError> {
        self.kapi(
            "GET",
            "/v1/user/access_token_info",
            &bearer(access_token),
            None,
        )
        .await
    }

    /// `POST /v1/user/logout` with the person's access token (expires that token at Kakao).
    pub async fn logout(&self, access_token: &str) -> Result<i64, KakaoError> {
        let ok: types::IdOnly = self
            .kapi("POST", "/v1/user/logout", &bearer(access_token), Some(""))
            .await?;
        Ok(ok.id)
    }

    /// `POST /v1/user/unlink` with the admin key: disconnects a Kakao user from the app.
    /// `Ok(None)` when no admin key is configured (nothing was sent).
    pub async fn unlink_user(&self, kakao_id: i64) -> Result<Option<i64>, KakaoError> {
        let Some(key) = &self.config.admin_key else {
            return Ok(None);
        };
        let form = format!("target_id_type=user_id&target_id={kakao_id}");
        let ok: types::IdOnly = self
            .kapi(
                "POST",
                "/v1/user/unlink",
                &format!("KakaoAK {}", key.expose()),
                Some(&form),
            )
            .await?;
        Ok(Some(ok.id))
    }

    async fn kapi<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        authorization: &str,
        form: Option<&str>,
    ) -> Result<T, KakaoError> {
        let url = format!("{}{}", self.config.api_base_url, path);
        let method = awc::http::Method::from_bytes(method.as_bytes())
            .map_err(|e| KakaoError::Transport(HttpError::Request(e.to_string())))?;
        let request = self
            .http
            .request(method, url)
            .insert_header((awc::http::header::AUTHORIZATION, authorization))
            .insert_header((
                awc::http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded;charset=utf-8",
            ));
        let raw = http::send(
            self.config.timeout,
            request,
            form.map(|f| f.as_bytes().to_vec()),
        )
        .await?;
        parse_kapi(raw)
    }
}

/// A failed token request, as Kakao's error.
fn token_error(e: RequestTokenError<HttpError, types::KauthErrorBody>) -> KakaoError {
    match e {
        RequestTokenError::ServerResponse(body) => KakaoError::Auth {
            error: body.error,
            error_code: body.error_code,
        },
        RequestTokenError::Request(e) => KakaoError::Transport(e),
        RequestTokenError::Parse(e, _) => KakaoError::Malformed(e.to_string()),
        RequestTokenError::Other(e) => KakaoError::Malformed(e),
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A kapi answer: the value on 200, else Kakao's `{"msg","code"}` as a typed error.
fn parse_kapi<T: DeserializeOwned>(raw: RawResponse) -> Result<T, KakaoError> {
    let status = raw.status.as_u16();
    if status == 200 {
        return serde_json::from_slice(&raw.body)
            .map_err(|e| KakaoError::Malformed(format!("HTTP 200 body: {e}")));
    }
    match serde_json::from_slice::<types::KapiErrorBody>(&raw.body) {
        Ok(body) => Err(KakaoError::Api {
            status,
            code: body.code,
        }),
        Err(_) => Err(KakaoError::Malformed(format!(
            "HTTP {status} without a Kakao error body"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status: awc::http::StatusCode::from_u16(status).expect("status"),
            content_type: Some("application/json;charset=UTF-8".into()),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn kapi_errors_are_read_from_the_body_code() {
        let r: Result<TokenInfo, _> = parse_kapi(raw(400, r#"{"msg":"whatever","code":-1}"#));
        assert!(matches!(r, Err(KakaoError::Api { code: -1, .. })));
        let r: Result<TokenInfo, _> = parse_kapi(raw(
            401,
            r#"{"msg":"this access token does not exist","code":-401}"#,
        ));
        assert_eq!(r.expect_err("error").class(), ErrorClass::InvalidToken);
    }

    #[test]
    fn kapi_answers_that_are_not_kakao_shaped_are_malformed() {
        let r: Result<TokenInfo, _> = parse_kapi(raw(200, "{not json"));
        assert!(matches!(r, Err(KakaoError::Malformed(_))));
        let r: Result<TokenInfo, _> = parse_kapi(raw(200, r#"{"unexpected":true}"#));
        assert!(matches!(r, Err(KakaoError::Malformed(_))));
        let r: Result<TokenInfo, _> = parse_kapi(raw(404, "<html>"));
        assert!(matches!(r, Err(KakaoError::Malformed(_))));
    }

    #[test]
    fn authorize_urls_carry_state_pkce_and_scopes() {
        let client = KakaoClient::new(KakaoConfig {
            authorize_url: "https://kauth.kakao.com/oauth/authorize".into(),
            token_url: "https://kauth.kakao.com/oauth/token".into(),
            api_base_url: "https://kapi.kakao.com".into(),
            client_id: "rest-key".into(),
            client_secret: None,
            redirect_uri: "https://example.com/kakao/login/callback/".into(),
            admin_key: None,
            app_id: None,
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            oidc: OidcConfig {
                issuer: "https://kauth.kakao.com".into(),
                jwks_url: "https://kauth.kakao.com/.well-known/jwks.json".into(),
            },
            oidc_login: true,
            extra_audiences: Vec::new(),
            logout_url: "https://kauth.kakao.com/oauth/logout".into(),
            logout_redirect_uri: "https://example.com/kakao/logout/callback/".into(),
            keys: Arc::default(),
        })
        .expect("client");
        let a = client.authorize(
            &[LOGIN_SCOPES, &[OPENID_SCOPE]].concat(),
            &AuthorizeOptions {
                nonce: Some("n-0S6_WzA2Mj"),
                prompt: Some("select_account"),
                login_hint: Some("a@b.co"),
            },
        );
        let url = url::Url::parse(&a.url).expect("url");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "rest-key");
        assert_eq!(
            q["redirect_uri"],
            "https://example.com/kakao/login/callback/"
        );
        assert_eq!(q["state"], a.state);
        assert!(a.state.len() >= 22, "state carries at least 128 bits");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["scope"], "profile_nickname account_email openid");
        assert_eq!(q["nonce"], "n-0S6_WzA2Mj");
        assert_eq!(q["prompt"], "select_account");
        assert_eq!(q["login_hint"], "a@b.co");
        let logout = url::Url::parse(&client.account_logout_url("st")).expect("url");
        let lq: std::collections::HashMap<_, _> = logout.query_pairs().into_owned().collect();
        assert_eq!(logout.path(), "/oauth/logout");
        assert_eq!(lq["client_id"], "rest-key");
        assert_eq!(
            lq["logout_redirect_uri"],
            "https://example.com/kakao/logout/callback/"
        );
        assert_eq!(lq["state"], "st");
        assert!(a.verifier.len() >= 43);
        assert_ne!(q["code_challenge"], a.verifier, "never plain PKCE");
    }
}
