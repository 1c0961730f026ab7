//! TIMESTAMP columns of the rows read most (`User`), decoded without chrono's format parser.
//!
//! SQLite keeps a timestamp as text. Diesel reads it by trying chrono's `parse_from_str`
//! against up to 18 format strings, and chrono parses the format string itself again for
//! every value: 10% of the API's first page (51 users, two timestamps each) in a profile on
//! 2026-12-04. The spelling Diesel writes, and so the only one this app stores
//! (`YYYY-MM-DD HH:MM:SS` with an optional fraction), is read here directly; any other goes
//! to Diesel's decoding, as before. PostgreSQL's binary timestamps are Diesel's as they are.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::pg::Pg;
use diesel::sql_types::{Nullable, Timestamp};
use diesel::sqlite::{Sqlite, SqliteValue};

use super::MultiBackend;

/// A `Timestamp` column, for `#[diesel(deserialize_as = Time)]` on a `NaiveDateTime` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromSqlRow)]
pub struct Time(NaiveDateTime);

/// A `Nullable<Timestamp>` column, for an `Option<NaiveDateTime>` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromSqlRow)]
pub struct MaybeTime(Option<NaiveDateTime>);

impl From<Time> for NaiveDateTime {
    fn from(t: Time) -> NaiveDateTime {
        t.0
    }
}

impl From<MaybeTime> for Option<NaiveDateTime> {
    fn from(t: MaybeTime) -> Option<NaiveDateTime> {
        t.0
    }
}

/// `YYYY-MM-DD HH:MM:SS`, then nothing or `.` and 1 to 9 digits; `None` for anything else
/// (including a leap second, which chrono spells differently).
fn parse_stored(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    let separators = [(4, b'-'), (7, b'-'), (10, b' '), (13, b':'), (16, b':')];
    if b.len() < 19 || separators.iter().any(|&(i, c)| b[i] != c) {
        return None;
    }
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let nanos = match b.get(19..) {
        Some([]) => 0,
        Some([b'.', fraction @ ..]) if (1..=9).contains(&fraction.len()) => {
            number(fraction)? * 10u32.pow(9 - fraction.len() as u32)
        }
        _ => return None,
    };
    let year = i32::try_from(number(&b[0..4])?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, number(&b[5..7])?, number(&b[8..10])?)?;
    let time = NaiveTime::from_hms_nano_opt(
        number(&b[11..13])?,
        number(&b[14..16])?,
        number(&b[17..19])?,
        nanos,
    )?;
    Some(date.and_time(time))
}

fn from_sqlite(mut value: SqliteValue<'_, '_, '_>) -> deserialize::Result<NaiveDateTime> {
    if let Some(t) = parse_stored(value.read_text()) {
        return Ok(t);
    }
    <NaiveDateTime as FromSql<Timestamp, Sqlite>>::from_sql(value)
}

impl FromSql<Timestamp, Sqlite> for Time {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        from_sqlite(value).map(Time)
    }
}

impl FromSql<Timestamp, Pg> for Time {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> deserialize::Result<Self> {
        <NaiveDateTime as FromSql<Timestamp, Pg>>::from_sql(value).map(Time)
    }
}

impl FromSql<Timestamp, MultiBackend> for Time {
    fn from_sql(value: <MultiBackend as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        value.from_sql::<Self, Timestamp>()
    }
}

/// Any backend `Time` reads: NULL is `None`, anything else `Time`'s.
impl<DB: Backend> FromSql<Nullable<Timestamp>, DB> for MaybeTime
where
    Time: FromSql<Timestamp, DB>,
{
    fn from_sql(value: DB::RawValue<'_>) -> deserialize::Result<Self> {
        <Time as FromSql<Timestamp, DB>>::from_sql(value).map(|t| MaybeTime(Some(t.0)))
    }

    fn from_nullable_sql(value: Option<DB::RawValue<'_>>) -> deserialize::Result<Self> {
        value.map_or(
            Ok(MaybeTime(None)),
            <Self as FromSql<Nullable<Timestamp>, DB>>::from_sql,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_spellings_are_read_as_chrono_reads_them() {
        for text in [
            "2026-12-04 19:33:19",
            "2026-12-04 19:33:19.5",
            "2026-12-04 19:33:19.123456",
            "1999-01-31 00:00:00.000000001",
            "0001-01-01 00:00:00",
        ] {
            let chrono = NaiveDateTime::parse_from_str(text, "%F %T%.f").expect(text);
            assert_eq!(parse_stored(text), Some(chrono), "{text}");
        }
    }

    #[test]
    fn other_spellings_are_left_to_diesel() {
        for text in [
            "2026-12-04T19:33:19",
            "2026-12-04 19:33",
            "2026-12-04 19:33:19Z",
            "2026-12-04 19:33:19+09:00",
            "2026-12-04 19:33:19.",
            "2026-12-04 19:33:19.1234567890",
            "2026-02-30 19:33:19",
            "2026-12-04 24:00:00",
            "2026-12-04 23:59:60",
            "2026-12-04 19:33:1x",
            "2460648.5",
            "",
        ] {
            assert_eq!(parse_stored(text), None, "{text}");
        }
    }
}
