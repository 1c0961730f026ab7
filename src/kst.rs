//! Korea's time zone, in which the service shows times and counts days: UTC+9, no daylight
//! saving. Times are stored in UTC (`db::now`).

use chrono::{NaiveDateTime, TimeDelta};

/// Hours east of UTC.
pub const OFFSET_HOURS: i64 = 9;

/// A stored (UTC) time as a wall-clock time in Korea.
pub fn from_utc(t: NaiveDateTime) -> NaiveDateTime {
    t + TimeDelta::hours(OFFSET_HOURS)
}

/// A wall-clock time in Korea as stored (UTC).
pub fn to_utc(t: NaiveDateTime) -> NaiveDateTime {
    t - TimeDelta::hours(OFFSET_HOURS)
}
