//! A small in-memory limiter for the break-glass sign-in: failed attempts per key in a sliding
//! window. In memory on purpose (no new infrastructure for a rarely used door): limits are per
//! process, so with several instances an attacker gets each instance's allowance, and a
//! restart forgets them.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts allowed per key within `window`.
#[derive(Debug)]
pub struct RateLimiter {
    max: usize,
    window: Duration,
    /// Keys are pruned when touched and when the map grows large, so memory stays bounded.
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Keys kept before a sweep of expired entries.
const SWEEP_AT: usize = 10_000;

impl RateLimiter {
    pub fn new(max: usize, window: Duration) -> RateLimiter {
        RateLimiter {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` while `key` has used up its failures in the window.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let Some(times) = map.get_mut(key) else {
            return Ok(());
        };
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() >= self.max {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(self.window.saturating_sub(now.duration_since(oldest)));
        }
        Ok(())
    }

    /// Count a failed attempt against `key`.
    pub fn fail(&self, key: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SWEEP_AT {
            let window = self.window;
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        let times = map.entry(key.to_owned()).or_default();
        times.push_back(now);
        while times.len() > self.max {
            times.pop_front();
        }
    }

    /// Forget `key`'s failures (after a successful sign-in).
    pub fn reset(&self, key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(key);
    }
}

/// The break-glass sign-in's limits: per client address and per account.
#[derive(Debug)]
pub struct LoginLimits {
    pub per_client: RateLimiter,
    pub per_account: RateLimiter,
}

impl Default for LoginLimits {
    /// 20 failures per client and 5 per account in 15 minutes.
    fn default() -> Self {
        LoginLimits {
            per_client: RateLimiter::new(20, Duration::from_secs(15 * 60)),
            per_account: RateLimiter::new(5, Duration::from_secs(15 * 60)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_beyond_the_limit_are_refused_until_reset() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        assert!(limiter.check("a").is_ok());
        limiter.fail("a");
        limiter.fail("a");
        let wait = limiter.check("a").expect_err("limited");
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert!(limiter.check("b").is_ok(), "keys are separate");
        limiter.reset("a");
        assert!(limiter.check("a").is_ok());
    }

    #[test]
    fn failures_expire_with_the_window() {
        let limiter = RateLimiter::new(1, Duration::from_millis(20));
        limiter.fail("a");
        assert!(limiter.check("a").is_err());
        std::thread::sleep(Duration::from_millis(30));
        assert!(limiter.check("a").is_ok());
    }
}
