//! env_logger, with the request id in every line of a request and an optional JSON format
//! (`LOG_FORMAT=json`: one object per line, `ts`, `level`, `target`, `msg`, `request_id`).
//!
//! The id rides a task-local while the request's future runs, and a thread-local while its
//! database work runs on a blocking thread (`db::run` carries it over with [`enter`]).

use std::cell::RefCell;
use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `[time LEVEL target] message request_id=...`
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

tokio::task_local! {
    static REQUEST_ID: Arc<str>;
}

thread_local! {
    static BLOCKING_ID: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// Run `fut` as the request `id`.
pub async fn scope<F: Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(Arc::from(id), fut).await
}

/// The id of the request this code runs for, if any.
pub fn current() -> Option<Arc<str>> {
    REQUEST_ID
        .try_with(Arc::clone)
        .ok()
        .or_else(|| BLOCKING_ID.with(|id| id.borrow().clone()))
}

/// Until the guard drops, log lines on this thread carry `id` (work handed to another thread).
pub fn enter(id: Option<Arc<str>>) -> Entered {
    let previous = BLOCKING_ID.with(|slot| slot.replace(id));
    Entered { previous }
}

/// Restores the thread's previous request id when dropped.
pub struct Entered {
    previous: Option<Arc<str>>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        BLOCKING_ID.with(|slot| *slot.borrow_mut() = previous);
    }
}

/// One line as JSON.
#[derive(Serialize)]
struct JsonLine<'a> {
    ts: String,
    level: &'a str,
    target: &'a str,
    msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

/// Install env_logger (`RUST_LOG`, default `info`) writing `format`.
pub fn init(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    builder.format(move |buf, record| {
        let ts = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        let id = current();
        match format {
            LogFormat::Text => {
                write!(
                    buf,
                    "[{ts} {:<5} {}] {}",
                    record.level(),
                    record.target(),
                    record.args()
                )?;
                if let Some(id) = &id {
                    write!(buf, " request_id={id}")?;
                }
                writeln!(buf)
            }
            LogFormat::Json => {
                let line = JsonLine {
                    ts,
                    level: record.level().as_str(),
                    target: record.target(),
                    msg: record.args().to_string(),
                    request_id: id.as_deref(),
                };
                let text = serde_json::to_string(&line).map_err(std::io::Error::other)?;
                writeln!(buf, "{text}")
            }
        }
    });
    let _ = builder.try_init();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn the_id_follows_the_request_and_its_blocking_work() {
        assert!(current().is_none());
        scope("req-1".to_owned(), async {
            assert_eq!(current().as_deref(), Some("req-1"));
            let carried = current();
            let seen = std::thread::spawn(move || {
                let before = current();
                let _entered = enter(carried);
                let inside = current();
                (before, inside)
            })
            .join()
            .unwrap();
            assert_eq!(seen, (None, Some(Arc::from("req-1"))));
        })
        .await;
        assert!(current().is_none());
        {
            let _outer = enter(Some(Arc::from("a")));
            {
                let _inner = enter(Some(Arc::from("b")));
                assert_eq!(current().as_deref(), Some("b"));
            }
            assert_eq!(current().as_deref(), Some("a"));
        }
        assert!(current().is_none());
    }
}
