//! Prometheus metrics (the `prometheus` crate, text format), served on `METRICS_BIND` only,
//! never on the public listener. One process-wide set; the pool gauges are read from the
//! pool when scraped.
//!
//! | family | labels | what |
//! |---|---|---|
//! | `kakao_login_http_requests_total` | route, method, status | requests by route pattern |
//! | `kakao_login_http_request_duration_seconds` | route | time to the response head |
//! | `kakao_login_http_request_db_trips` | route, method | trips to the blocking pool for database work, per request |
//! | `kakao_login_db_pool_connections` | state (`idle`, `in_use`) | pooled connections now |
//! | `kakao_login_db_pool_max_connections` | | the pool's size |
//! | `kakao_login_db_pool_wait_seconds` | | waiting for a pooled connection |
//! | `kakao_login_db_pool_get_failures_total` | | no connection within the timeout |
//! | `kakao_login_kakao_requests_total` | endpoint, outcome | calls to Kakao |
//! | `kakao_login_kakao_request_duration_seconds` | endpoint | their latency |
//! | `kakao_login_sign_ins_total` | flow, outcome, reason | sign-ins: created, returning, claimed, refused (by reason) |
//! | `kakao_login_webhook_deliveries_total` | webhook, outcome | Kakao's webhooks by outcome |
//! | `kakao_login_rate_limit_refusals_total` | limit | attempts a rate limit refused |

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    http_db_trips: HistogramVec,
    pool_connections: IntGaugeVec,
    pool_max: IntGauge,
    pool_wait: Histogram,
    pool_get_failures: IntCounter,
    kakao_requests: IntCounterVec,
    kakao_duration: HistogramVec,
    sign_ins: IntCounterVec,
    webhooks: IntCounterVec,
    rate_limited: IntCounterVec,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

const HTTP_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const TRIP_BUCKETS: [f64; 6] = [0.0, 1.0, 2.0, 3.0, 5.0, 10.0];
const KAKAO_BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0];
const POOL_BUCKETS: [f64; 10] = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace("kakao_login")
}

fn hopts(name: &str, help: &str, buckets: &[f64]) -> HistogramOpts {
    HistogramOpts::new(name, help)
        .namespace("kakao_login")
        .buckets(buckets.to_vec())
}

/// Register `metric` or stop: every name is a constant, so a failure is a programming error
/// that the first test finds.
fn registered<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> M {
    #[allow(clippy::expect_used)]
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique constants");
    metric
}

impl Metrics {
    #[allow(clippy::expect_used)]
    fn new() -> Metrics {
        let registry = Registry::new();
        let r = &registry;
        let counter_vec = |name, help, labels: &[&str]| {
            registered(
                r,
                IntCounterVec::new(opts(name, help), labels).expect("valid counter"),
            )
        };
        let histogram_vec = |name, help, buckets: &[f64], labels: &[&str]| {
            registered(
                r,
                HistogramVec::new(hopts(name, help, buckets), labels).expect("valid histogram"),
            )
        };
        Metrics {
            http_requests: counter_vec(
                "http_requests_total",
                "HTTP requests by route pattern, method and status.",
                &["route", "method", "status"],
            ),
            http_duration: histogram_vec(
                "http_request_duration_seconds",
                "Time from the request to the response head, by route pattern.",
                &HTTP_BUCKETS,
                &["route"],
            ),
            http_db_trips: histogram_vec(
                "http_request_db_trips",
                "Trips to the blocking pool for database work per request, by route pattern and method.",
                &TRIP_BUCKETS,
                &["route", "method"],
            ),
            pool_connections: registered(
                r,
                IntGaugeVec::new(
                    opts(
                        "db_pool_connections",
                        "Pooled database connections by state.",
                    ),
                    &["state"],
                )
                .expect("valid gauge"),
            ),
            pool_max: registered(
                r,
                IntGauge::with_opts(opts(
                    "db_pool_max_connections",
                    "Largest number of pooled database connections.",
                ))
                .expect("valid gauge"),
            ),
            pool_wait: registered(
                r,
                Histogram::with_opts(hopts(
                    "db_pool_wait_seconds",
                    "Time waiting for a pooled database connection.",
                    &POOL_BUCKETS,
                ))
                .expect("valid histogram"),
            ),
            pool_get_failures: registered(
                r,
                IntCounter::with_opts(opts(
                    "db_pool_get_failures_total",
                    "Times no pooled database connection could be had.",
                ))
                .expect("valid counter"),
            ),
            kakao_requests: counter_vec(
                "kakao_requests_total",
                "Calls to Kakao by endpoint and outcome.",
                &["endpoint", "outcome"],
            ),
            kakao_duration: histogram_vec(
                "kakao_request_duration_seconds",
                "Latency of calls to Kakao by endpoint.",
                &KAKAO_BUCKETS,
                &["endpoint"],
            ),
            sign_ins: counter_vec(
                "sign_ins_total",
                "Sign-ins by flow (web, mobile_token, mobile_id_token, password) and outcome (created, returning, claimed, refused with a reason).",
                &["flow", "outcome", "reason"],
            ),
            webhooks: counter_vec(
                "webhook_deliveries_total",
                "Deliveries of Kakao's webhooks by webhook and outcome.",
                &["webhook", "outcome"],
            ),
            rate_limited: counter_vec(
                "rate_limit_refusals_total",
                "Attempts refused by a rate limit, by limit.",
                &["limit"],
            ),
            registry,
        }
    }

    /// One answered request, which made `db_trips` trips to the database.
    pub fn http(&self, route: &str, method: &str, status: u16, took: Duration, db_trips: u32) {
        let status = status.to_string();
        self.http_requests
            .with_label_values(&[route, method, status.as_str()])
            .inc();
        self.http_duration
            .with_label_values(&[route])
            .observe(took.as_secs_f64());
        self.http_db_trips
            .with_label_values(&[route, method])
            .observe(f64::from(db_trips));
    }

    /// One wait for a pooled connection; `got` false when none came in time.
    pub fn pool_wait(&self, took: Duration, got: bool) {
        self.pool_wait.observe(took.as_secs_f64());
        if !got {
            self.pool_get_failures.inc();
        }
    }

    /// One call to Kakao.
    pub fn kakao(&self, endpoint: &str, outcome: &str, took: Duration) {
        self.kakao_requests
            .with_label_values(&[endpoint, outcome])
            .inc();
        self.kakao_duration
            .with_label_values(&[endpoint])
            .observe(took.as_secs_f64());
    }

    /// One sign-in attempt that ended; `reason` is empty unless it was refused.
    pub fn sign_in(&self, flow: &str, outcome: &str, reason: &str) {
        self.sign_ins
            .with_label_values(&[flow, outcome, reason])
            .inc();
    }

    /// One webhook delivery answered.
    pub fn webhook(&self, webhook: &str, outcome: &str) {
        self.webhooks.with_label_values(&[webhook, outcome]).inc();
    }

    /// One attempt a rate limit refused.
    pub fn rate_limited(&self, limit: &str) {
        self.rate_limited.with_label_values(&[limit]).inc();
    }

    /// The text format, with the pool gauges set from `pool` (`connections`, `idle`, `max`).
    pub fn render(&self, pool: (u32, u32, u32)) -> String {
        let (connections, idle, max) = pool;
        self.pool_connections
            .with_label_values(&["idle"])
            .set(i64::from(idle));
        self.pool_connections
            .with_label_values(&["in_use"])
            .set(i64::from(connections.saturating_sub(idle)));
        self.pool_max.set(i64::from(max));
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            log::error!("event=metrics.encode_failed error=\"{e}\"");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_renders_in_the_text_format() {
        let m = get();
        m.http("/profile/", "GET", 200, Duration::from_millis(3), 1);
        m.pool_wait(Duration::from_micros(50), true);
        m.kakao("/oauth/token", "ok", Duration::from_millis(20));
        m.sign_in("web", "created", "");
        m.webhook("unlink", "applied");
        m.rate_limited("login_start");
        let text = m.render((3, 1, 8));
        for family in [
            "kakao_login_http_requests_total{method=\"GET\",route=\"/profile/\",status=\"200\"}",
            "kakao_login_http_request_duration_seconds_bucket{route=\"/profile/\",le=",
            "kakao_login_http_request_db_trips_bucket{method=\"GET\",route=\"/profile/\",le=\"1\"}",
            "kakao_login_db_pool_connections{state=\"in_use\"} 2",
            "kakao_login_db_pool_max_connections 8",
            "kakao_login_db_pool_wait_seconds_count",
            "kakao_login_kakao_requests_total{endpoint=\"/oauth/token\",outcome=\"ok\"}",
            "kakao_login_kakao_request_duration_seconds_sum{endpoint=\"/oauth/token\"}",
            "kakao_login_sign_ins_total{flow=\"web\",outcome=\"created\",reason=\"\"}",
            "kakao_login_webhook_deliveries_total{outcome=\"applied\",webhook=\"unlink\"}",
            "kakao_login_rate_limit_refusals_total{limit=\"login_start\"}",
        ] {
            assert!(text.contains(family), "{family} missing from:\n{text}");
        }
    }
}
