//! Rate limits that cannot be raced: every attempt takes a cell *before* the work it limits (an
//! argon2 verification, a call that spends the app's Kakao quota), atomically, so a hundred
//! concurrent attempts get exactly the allowance and no more. GCRA ("at most `burst` at once,
//! one more every `per`"): in memory with `governor` when there is no Redis, and in Redis when
//! `REDIS_URL` is set, so that every instance counts against the same allowance.
//!
//! The Redis side is a small Lua script of the same arithmetic, written here: no maintained
//! crate offers GCRA over redis 0.32 (actix-limitation needs redis 1.x and counts fixed windows;
//! redis-rate is blocking and on redis 0.29). It runs atomically in Redis on Redis's clock, so
//! instances with skewed clocks agree.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::Clock;

use crate::redis_store::RedisStore;

/// One limit: at most `burst` attempts at once, then one more every `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Names the limit in Redis keys and logs.
    pub name: &'static str,
    pub burst: u32,
    pub per: Duration,
}

impl Limit {
    /// Break-glass sign-ins per client address: 20 in 15 minutes.
    pub const BREAK_GLASS_CLIENT: Limit = Limit {
        name: "break_glass_client",
        burst: 20,
        per: Duration::from_secs(45),
    };
    /// Break-glass sign-ins per account: 5 in 15 minutes.
    pub const BREAK_GLASS_ACCOUNT: Limit = Limit {
        name: "break_glass_account",
        burst: 5,
        per: Duration::from_secs(180),
    };
    /// Kakao logins started per client address (each may end in a code exchange).
    pub const LOGIN_START: Limit = Limit {
        name: "login_start",
        burst: 30,
        per: Duration::from_secs(2),
    };
    /// Sign-ins with a Kakao access token (the mobile SDKs) per client address.
    pub const MOBILE_SIGN_IN: Limit = Limit {
        name: "mobile_sign_in",
        burst: 20,
        per: Duration::from_secs(3),
    };
    /// Refused webhook deliveries recorded per client address (beyond it they are refused
    /// without a record, so that junk cannot fill the delivery log).
    pub const WEBHOOK_REFUSALS: Limit = Limit {
        name: "webhook_refusals",
        burst: 30,
        per: Duration::from_secs(10),
    };
    /// Refused webhook deliveries recorded from all clients together: many addresses (a botnet,
    /// an IPv6 /48) cannot fill the delivery log either. Beyond it, refusals are only counted.
    pub const WEBHOOK_REFUSALS_ALL: Limit = Limit {
        name: "webhook_refusals_all",
        burst: 100,
        per: Duration::from_secs(10),
    };
    /// Bearer tokens checked with Kakao (neither cached nor refused just now) per client.
    pub const TOKEN_CHECK: Limit = Limit {
        name: "token_check",
        burst: 30,
        per: Duration::from_secs(1),
    };
}

/// Why an attempt may not go ahead.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The allowance is used up; the next cell comes after this long.
    #[error("too many attempts; retry after {0:?}")]
    Limited(Duration),
    /// The shared store (Redis) did not answer: refused, rather than let attempts through
    /// uncounted.
    #[error("rate-limit store: {0}")]
    Unavailable(String),
}

/// Keys kept in memory before a sweep of those back at a fresh state.
const SWEEP_EVERY: u64 = 4096;

type MemoryCells = governor::DefaultKeyedRateLimiter<String>;

/// One limit, counted in memory or in Redis.
pub enum Limiter {
    Memory {
        limit: Limit,
        cells: MemoryCells,
        uses: AtomicU64,
    },
    Redis {
        limit: Limit,
        store: RedisStore,
    },
}

/// GCRA over Redis: KEYS[1] the key, ARGV[1] µs per cell, ARGV[2] the burst. Returns 0 when
/// a cell was taken, else the µs until the next one. `replicate_commands` lets Redis 3.2-4.x
/// accept a write after `TIME` (Redis 5+ always does; 7 keeps the call as a no-op).
const GCRA_LUA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local per = tonumber(ARGV[1])
local tolerance = per * (tonumber(ARGV[2]) - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allowed_at = tat - tolerance
if now < allowed_at then return allowed_at - now end
local next_tat = tat + per
local ttl_ms = math.max(1, math.ceil((next_tat - now) / 1000))
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', ttl_ms)
return 0
";

/// The script, hashed once; Redis is sent the hash and loads the body when it lacks it.
static GCRA: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(GCRA_LUA));

impl Limiter {
    /// A limiter for `limit`: in Redis when there is one, in memory otherwise.
    pub fn new(limit: Limit, redis: Option<&RedisStore>) -> Limiter {
        match redis {
            Some(store) => Limiter::Redis {
                limit,
                store: store.clone(),
            },
            None => {
                let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
                let quota = governor::Quota::with_period(limit.per)
                    .unwrap_or_else(|| governor::Quota::per_second(NonZeroU32::MIN))
                    .allow_burst(burst);
                Limiter::Memory {
                    limit,
                    cells: governor::RateLimiter::keyed(quota),
                    uses: AtomicU64::new(0),
                }
            }
        }
    }

    fn limit(&self) -> Limit {
        match self {
            Limiter::Memory { limit, .. } | Limiter::Redis { limit, .. } => *limit,
        }
    }

    /// Take one cell for `key`, or say how long until there is one.
    pub async fn acquire(&self, key: &str) -> Result<(), Refused> {
        let refused = match self {
            Limiter::Memory { cells, uses, .. } => {
                if uses.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
                    cells.retain_recent();
                }
                match cells.check_key(&key.to_owned()) {
                    Ok(()) => return Ok(()),
                    Err(not_until) => {
                        Refused::Limited(not_until.wait_time_from(cells.clock().now()))
                    }
                }
            }
            Limiter::Redis { limit, store } => {
                let per_us = i64::try_from(limit.per.as_micros()).unwrap_or(i64::MAX);
                let wait_us: i64 = store
                    .invoke(
                        &GCRA,
                        vec![format!("kakao-login:limit:{}:{key}", limit.name)],
                        vec![per_us, i64::from(limit.burst)],
                    )
                    .await
                    .map_err(|e| Refused::Unavailable(e.to_string()))?;
                if wait_us <= 0 {
                    return Ok(());
                }
                Refused::Limited(Duration::from_micros(wait_us.unsigned_abs()))
            }
        };
        log::warn!(
            "event=ratelimit.refused limit={} reason=\"{refused}\"",
            self.limit().name
        );
        crate::telemetry::metrics::get().rate_limited(self.limit().name);
        Err(refused)
    }
}

/// Every limit the app applies.
pub struct Limits {
    pub break_glass_client: Limiter,
    pub break_glass_account: Limiter,
    pub login_start: Limiter,
    pub mobile_sign_in: Limiter,
    pub token_check: Limiter,
    pub webhook_refusals: Limiter,
    pub webhook_refusals_all: Limiter,
}

impl Limits {
    /// The limits, shared through `redis` when there is one.
    pub fn new(redis: Option<&RedisStore>) -> Limits {
        Limits {
            break_glass_client: Limiter::new(Limit::BREAK_GLASS_CLIENT, redis),
            break_glass_account: Limiter::new(Limit::BREAK_GLASS_ACCOUNT, redis),
            login_start: Limiter::new(Limit::LOGIN_START, redis),
            mobile_sign_in: Limiter::new(Limit::MOBILE_SIGN_IN, redis),
            token_check: Limiter::new(Limit::TOKEN_CHECK, redis),
            webhook_refusals: Limiter::new(Limit::WEBHOOK_REFUSALS, redis),
            webhook_refusals_all: Limiter::new(Limit::WEBHOOK_REFUSALS_ALL, redis),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn the_burst_is_allowed_then_refused_with_the_wait() {
        let limiter = Limiter::new(
            Limit {
                name: "t",
                burst: 3,
                per: Duration::from_secs(60),
            },
            None,
        );
        for _ in 0..3 {
            limiter.acquire("a").await.expect("within the burst");
        }
        match limiter.acquire("a").await {
            Err(Refused::Limited(wait)) => {
                assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60))
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        limiter.acquire("b").await.expect("keys are separate");
    }

    #[actix_web::test]
    async fn a_cell_comes_back_after_its_period() {
        let limiter = Limiter::new(
            Limit {
                name: "t",
                burst: 1,
                per: Duration::from_millis(30),
            },
            None,
        );
        limiter.acquire("a").await.expect("first");
        assert!(limiter.acquire("a").await.is_err());
        actix_web::rt::time::sleep(Duration::from_millis(40)).await;
        limiter.acquire("a").await.expect("replenished");
    }
}
