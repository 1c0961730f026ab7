//! The HTTP client for calls to Kakao: awc with redirects off, timeouts and a body limit, and
//! the adapter that lets the `oauth2` crate send its requests through it.

use std::time::Duration;

use awc::http::{Method, StatusCode};

/// Largest Kakao answer read (user profiles are a few KiB).
pub const BODY_LIMIT: usize = 64 * 1024;

/// A transport-level failure talking to Kakao.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("request to Kakao timed out")]
    Timeout,
    #[error("could not reach Kakao: {0}")]
    Connect(String),
    #[error("Kakao answered HTTP {0} with a redirect, which is never followed")]
    Redirect(u16),
    #[error("Kakao answered HTTP {0}")]
    ServerError(u16),
    #[error("Kakao's answer could not be read: {0}")]
    Body(String),
    #[error("request could not be built: {0}")]
    Request(String),
}

/// Build the per-worker client (awc's client is not `Send`).
pub fn build_client(connect_timeout: Duration, total_timeout: Duration) -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().timeout(connect_timeout))
        .timeout(total_timeout)
        .disable_redirects()
        .add_default_header((awc::http::header::USER_AGENT, "kakao-login"))
        .finish()
}

/// A status, its headers' content type, and the body, read with the limit and the timeout.
pub struct RawResponse {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Send one request and read the whole answer. 3xx and 5xx answers are errors here, so that
/// callers only ever see answers Kakao meant as final.
pub async fn send(
    total_timeout: Duration,
    request: awc::ClientRequest,
    body: Option<Vec<u8>>,
) -> Result<RawResponse, HttpError> {
    let endpoint = endpoint_label(request.get_uri().path());
    let started = std::time::Instant::now();
    let result = send_unmeasured(total_timeout, request, body).await;
    let outcome = match &result {
        Ok(raw) if raw.status.is_success() => "ok",
        Ok(_) => "client_error",
        Err(HttpError::Timeout) => "timeout",
        Err(HttpError::Connect(_)) => "connect",
        Err(HttpError::Redirect(_)) => "redirect",
        Err(HttpError::ServerError(_)) => "server_error",
        Err(HttpError::Body(_)) => "body",
        Err(HttpError::Request(_)) => "request",
    };
    crate::telemetry::metrics::get().kakao(endpoint, outcome, started.elapsed());
    result
}

/// Kakao's endpoints as metric labels (any other path is `other`, so that the label set stays
/// small whatever the configured base URLs hold).
const ENDPOINTS: [&str; 10] = [
    "/oauth/token",
    "/v2/user/me",
    "/v1/user/access_token_info",
    "/v1/user/logout",
    "/v1/user/unlink",
    "/v2/user/scopes",
    "/v1/user/ids",
    "/.well-known/jwks.json",
    "/.well-known/openid-configuration",
    "/oauth/logout",
];

/// The label of the endpoint at `path` (which may carry a prefix of the base URL's).
pub fn endpoint_label(path: &str) -> &'static str {
    ENDPOINTS
        .iter()
        .find(|e| path.ends_with(*e))
        .copied()
        .unwrap_or("other")
}

/// [`send`] without the metrics.
async fn send_unmeasured(
    total_timeout: Duration,
    request: awc::ClientRequest,
    body: Option<Vec<u8>>,
) -> Result<RawResponse, HttpError> {
    let fut = async move {
        let mut response = match body {
            Some(b) => request.send_body(b).await,
            None => request.send().await,
        }
        .map_err(|e| match e {
            awc::error::SendRequestError::Timeout => HttpError::Timeout,
            awc::error::SendRequestError::Connect(awc::error::ConnectError::Timeout) => {
                HttpError::Timeout
            }
            other => HttpError::Connect(other.to_string()),
        })?;
        let status = response.status();
        if status.is_redirection() {
            return Err(HttpError::Redirect(status.as_u16()));
        }
        let content_type = response
            .headers()
            .get(awc::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .body()
            .limit(BODY_LIMIT)
            .await
            .map_err(|e| HttpError::Body(e.to_string()))?;
        if status.is_server_error() {
            return Err(HttpError::ServerError(status.as_u16()));
        }
        Ok(RawResponse {
            status,
            content_type,
            body: body.to_vec(),
        })
    };
    match actix_web::rt::time::timeout(total_timeout, fut).await {
        Ok(result) => result,
        Err(_) => Err(HttpError::Timeout),
    }
}

/// Send an `oauth2` request (http 1.x types) through awc (http 0.2 types).
pub async fn send_oauth2(
    client: &awc::Client,
    total_timeout: Duration,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, HttpError> {
    let method = Method::from_bytes(request.method().as_str().as_bytes())
        .map_err(|e| HttpError::Request(e.to_string()))?;
    let mut req = client.request(method, request.uri().to_string());
    for (name, value) in request.headers() {
        req = req.insert_header((name.as_str(), value.as_bytes()));
    }
    let raw = send(total_timeout, req, Some(request.into_body())).await?;
    let mut builder = oauth2::http::Response::builder().status(raw.status.as_u16());
    if let Some(ct) = raw.content_type {
        builder = builder.header(oauth2::http::header::CONTENT_TYPE, ct);
    }
    builder
        .body(raw.body)
        .map_err(|e| HttpError::Body(e.to_string()))
}
