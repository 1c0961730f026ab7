//! What both benchmarks (`load`, `side_by_side`) share: a free loopback port, and wrk's
//! summary as one JSON line (the Lua hook and its parser).

use std::net::TcpListener;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

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
