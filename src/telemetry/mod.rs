//! What an operator watches: request ids in every log line (`logging`), Prometheus metrics
//! (`metrics`), and the one middleware that gives each request its id, its access-log line and
//! its request metrics (`observe`). A leaf: anyone may use it, it uses nothing of the app's.

pub mod logging;
pub mod metrics;

use std::cell::Cell;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;

/// The request id header, read and echoed.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longest incoming request id kept (longer ones are replaced by a generated id).
const REQUEST_ID_MAX: usize = 64;

/// An incoming request id worth keeping: 1 to 64 printable ASCII characters, none of them a
/// space, a quote or a backslash (so that it needs no escaping in a log line).
pub fn acceptable_request_id(value: &str) -> bool {
    (1..=REQUEST_ID_MAX).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

/// A new request id: 16 lowercase hex characters.
pub fn new_request_id() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The method as a metric label: the standard ones, else `other` (a client may send any
/// token as a method, and each label value is a time series).
fn method_label(method: &actix_web::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

tokio::task_local! {
    /// Trips this request made to the blocking pool for database work.
    static DB_TRIPS: Cell<u32>;
}

/// Count one trip of the current request to the blocking pool (`db::run` and `db::ready` call
/// this; work outside a request counts nowhere).
pub fn count_db_trip() {
    let _ = DB_TRIPS.try_with(|trips| trips.set(trips.get() + 1));
}

/// Outermost middleware: take the request's `X-Request-Id` (or make one), run the request with
/// it (every log line carries it, database work included), echo it in the response, and log
/// and count the request, with its trips to the database (`db=`), by its route pattern (`route=/admin/users/{id}/`; the path is logged
/// without its query, so that no token in a query reaches the log).
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(new_request_id);
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let echoed = id.clone();
    let observed = async move {
        let result = next.call(req).await;
        let elapsed = started.elapsed();
        let trips = DB_TRIPS.try_with(Cell::get).unwrap_or(0);
        let (status, route) = match &result {
            Ok(res) => (
                res.status().as_u16(),
                res.request()
                    .match_pattern()
                    .unwrap_or_else(|| "unmatched".to_owned()),
            ),
            Err(e) => (
                e.as_response_error().status_code().as_u16(),
                "unmatched".to_owned(),
            ),
        };
        metrics::get().http(&route, method_label(&method), status, elapsed, trips);
        log::info!(
            target: "kakao_login::http",
            "event=http method={method} route={route} path={path} status={status} ms={:.3} db={trips}",
            elapsed.as_secs_f64() * 1000.0
        );
        let mut res = result?;
        if let Ok(value) = HeaderValue::from_str(&echoed) {
            res.headers_mut()
                .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
        }
        Ok(res)
    };
    logging::scope(id, DB_TRIPS.scope(Cell::new(0), observed)).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_short_printable_and_need_no_escaping() {
        assert!(acceptable_request_id("abc-123_X.y:z/9+="));
        assert!(acceptable_request_id(&"a".repeat(64)));
        for bad in [
            "",
            "has space",
            "quo\"te",
            "back\\slash",
            "tab\tx",
            "한글",
            &"a".repeat(65),
        ] {
            assert!(!acceptable_request_id(bad), "{bad:?}");
        }
        assert_eq!(method_label(&actix_web::http::Method::PATCH), "PATCH");
        let custom = actix_web::http::Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&custom), "other");
        let made = new_request_id();
        assert_eq!(made.len(), 16);
        assert!(acceptable_request_id(&made));
        assert_ne!(made, new_request_id());
    }
}
