//! What both benchmarks (`load`, `side_by_side`) share: a free loopback port, wrk's summary as
//! one JSON line (the Lua hook and its parser), and client addresses of their own for the
//! requests the app rate-limits per client, and a browser's cookie jar for the sign-in drivers.

use std::net::TcpListener;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// For the login start: every request from an address of its own, as `X-Forwarded-For` from
/// the trusted loopback proxy (see [`next_client_address`]); the same script for both apps.
pub const WRK_FORWARDED_FOR: &str = r#"
local n = 0
request = function()
  n = n + 1
  wrk.headers["X-Forwarded-For"] = string.format("10.%d.%d.%d",
    math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  return wrk.format()
end
"#;

/// wrk's Lua hook: the summary as one JSON line on stdout.
pub const WRK_SCRIPT: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\n{"requests":%d,"duration_us":%d,"errors":%d,"error_kinds":"connect %d, read %d, write %d, status >= 400 %d, timeout %d","p50_us":%f,"p99_us":%f}\n',
    summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"#;

/// What wrk prints at the end (see `WRK_SCRIPT`).
#[derive(serde::Deserialize)]
pub struct WrkSummary {
    pub requests: u64,
    pub duration_us: u64,
    pub errors: u64,
    pub error_kinds: String,
    pub p50_us: f64,
    pub p99_us: f64,
}

impl WrkSummary {
    /// The summary in wrk's output for `url` (its last JSON line); errors, if any, are told
    /// on stderr.
    pub fn from_output(url: &str, stdout: &[u8]) -> WrkSummary {
        let stdout = String::from_utf8_lossy(stdout);
        let summary: WrkSummary = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("wrk printed no summary: {stdout}"));
        if summary.errors > 0 {
            eprintln!("{url}: {} errors ({})", summary.errors, summary.error_kinds);
        }
        summary
    }
}

/// A client address not used before in this run: 10.0.0.1, 10.0.0.2, ...
pub fn next_client_address() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255)
}

/// Busy and steal CPU seconds of the whole machine (`/proc/stat`, clock ticks / 100).
pub fn machine_cpu_secs() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let at = |i: usize| fields.get(i).copied().unwrap_or(0.0);
    let busy = at(0) + at(1) + at(2) + at(5) + at(6);
    (busy / 100.0, at(7) / 100.0)
}

/// Cookies of one browser for one site.
#[derive(Default)]
pub struct Jar(std::collections::BTreeMap<String, String>);

impl Jar {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `Cookie` header.
    pub fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keep the response's `Set-Cookie`s (an empty value deletes the cookie).
    pub fn keep(&mut self, headers: &awc::http::header::HeaderMap) {
        for value in headers.get_all("set-cookie") {
            let first = value
                .to_str()
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default();
            if let Some((k, v)) = first.split_once('=') {
                let (k, v) = (k.trim(), v.trim().trim_matches('"'));
                if v.is_empty() {
                    self.0.remove(k);
                } else {
                    self.0.insert(k.to_owned(), v.to_owned());
                }
            }
        }
    }
}

/// A response's `Location` (empty without one).
pub fn location(headers: &awc::http::header::HeaderMap) -> String {
    headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
