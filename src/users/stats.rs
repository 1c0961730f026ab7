//! Numbers for the admin dashboard: counts from indexed columns and sign-ups per day in one
//! grouped query over the window (never one query per day).

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text, Timestamp};

use crate::db::DbConnection;
use crate::db::schema::users;
use crate::kst;

/// The dashboard's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub all: i64,
    pub active: i64,
    pub staff: i64,
    pub new_24h: i64,
    pub new_7d: i64,
    pub new_30d: i64,
    pub signins_24h: i64,
}

/// Count users as of `now`.
pub fn counts(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<Counts> {
    let joined_since = |conn: &mut DbConnection, since: NaiveDateTime| {
        users::table
            .filter(users::date_joined.ge(since))
            .count()
            .get_result::<i64>(conn)
    };
    // Written as the list's last_login index is, so the planner can use that index.
    let signed_in_since =
        diesel::dsl::sql::<Bool>("COALESCE(last_login, '1970-01-01 00:00:00') >= ")
            .bind::<Timestamp, _>(now - TimeDelta::hours(24));
    Ok(Counts {
        all: users::table.count().get_result(conn)?,
        active: users::table
            .filter(users::is_active.eq(true))
            .count()
            .get_result(conn)?,
        staff: users::table
            .filter(users::is_staff.eq(true).or(users::is_superuser.eq(true)))
            .count()
            .get_result(conn)?,
        new_24h: joined_since(conn, now - TimeDelta::hours(24))?,
        new_7d: joined_since(conn, now - TimeDelta::days(7))?,
        new_30d: joined_since(conn, now - TimeDelta::days(30))?,
        signins_24h: users::table
            .filter(signed_in_since)
            .count()
            .get_result(conn)?,
    })
}

#[derive(QueryableByName)]
struct DayRow {
    #[diesel(sql_type = Text)]
    day: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Sign-ups per local day for the `days` days ending today (local), oldest first, with zeros
/// for days without any.
pub fn signups_per_day(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    days: i64,
) -> QueryResult<Vec<(NaiveDate, i64)>> {
    // Days are Korean days: a sign-up at 23:30 UTC counts for the next day.
    let hours = kst::OFFSET_HOURS;
    let today = kst::from_utc(now).date();
    let first = today - TimeDelta::days(days - 1);
    let since = kst::to_utc(first.and_hms_opt(0, 0, 0).unwrap_or_default());
    let rows: Vec<DayRow> = match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(format!(
            "SELECT strftime('%Y-%m-%d', date_joined, '+{hours} hours') AS day, COUNT(*) AS n \
             FROM users WHERE date_joined >= $1 GROUP BY day"
        ))
        .bind::<Timestamp, _>(since)
        .load(c)?,
        DbConnection::Postgresql(c) => diesel::sql_query(format!(
            "SELECT to_char(date_joined + interval '{hours} hours', 'YYYY-MM-DD') AS day, \
             COUNT(*) AS n FROM users WHERE date_joined >= $1 GROUP BY 1"
        ))
        .bind::<Timestamp, _>(since)
        .load(c)?,
    };
    let by_day: std::collections::HashMap<NaiveDate, i64> = rows
        .into_iter()
        .filter_map(|r| {
            NaiveDate::parse_from_str(&r.day, "%Y-%m-%d")
                .ok()
                .map(|d| (d, r.n))
        })
        .collect();
    Ok((0..days)
        .map(|i| {
            let day = first + TimeDelta::days(i);
            (day, by_day.get(&day).copied().unwrap_or(0))
        })
        .collect())
}

/// What the dashboard shows: the counts, and sign-ups per day over the last `days` days.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub counts: Counts,
    pub days: Vec<(NaiveDate, i64)>,
}

/// The dashboard's numbers as of `now`, in one trip.
pub fn dashboard(conn: &mut DbConnection, now: NaiveDateTime, days: i64) -> QueryResult<Dashboard> {
    Ok(Dashboard {
        counts: counts(conn, now)?,
        days: signups_per_day(conn, now, days)?,
    })
}
