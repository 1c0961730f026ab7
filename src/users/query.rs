//! The user list shared by the API and the admin: search, filters, ordering, and keyset
//! (cursor) pagination that stays correct while users are added, on both backends.
//!
//! One SQL text serves SQLite and PostgreSQL (`$n` placeholders, `COALESCE` so never-signed-in
//! users sort first) except for search, which each backend answers from its own index:
//! - PostgreSQL: `LIKE` on the lowercased email and name, with `ESCAPE` so that `%` and `_` are
//!   literal, served by trigram (pg_trgm) indexes.
//! - SQLite: an FTS5 trigram index (`users_search`) queried with the search as one phrase,
//!   which matches it as a case-insensitive substring. Trigrams need three characters, so a
//!   shorter search reads the table with the same `LIKE` as PostgreSQL (SQLite's `lower()`
//!   and `LIKE` fold ASCII letters only).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text, Timestamp};

use super::model::User;
use crate::db::DbConnection;
use crate::db::schema::users;

/// Largest page.
pub const MAX_LIMIT: i64 = 200;
/// Page size when none is asked for.
pub const DEFAULT_LIMIT: i64 = 50;

/// What to sort by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Id,
    DateJoined,
    Email,
    LastLogin,
}

/// A sort key and its direction, as `?ordering=` spells it (`email`, `-date_joined`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ordering {
    pub key: SortKey,
    pub descending: bool,
}

impl Default for Ordering {
    fn default() -> Self {
        Ordering {
            key: SortKey::Id,
            descending: false,
        }
    }
}

impl Ordering {
    pub const NAMES: [&'static str; 4] = ["id", "date_joined", "email", "last_login"];

    pub fn parse(s: &str) -> Option<Ordering> {
        let (descending, name) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let key = match name {
            "id" => SortKey::Id,
            "date_joined" => SortKey::DateJoined,
            "email" => SortKey::Email,
            "last_login" => SortKey::LastLogin,
            _ => return None,
        };
        Some(Ordering { key, descending })
    }

    pub fn as_param(self) -> String {
        let name = match self.key {
            SortKey::Id => "id",
            SortKey::DateJoined => "date_joined",
            SortKey::Email => "email",
            SortKey::LastLogin => "last_login",
        };
        if self.descending {
            format!("-{name}")
        } else {
            name.to_owned()
        }
    }

    /// The SQL expression sorted on. `last_login` treats "never" as the epoch, written the
    /// same way as the index in the migration so the planner can use it.
    fn column(self) -> &'static str {
        match self.key {
            SortKey::Id => "id",
            SortKey::DateJoined => "date_joined",
            SortKey::Email => "email",
            SortKey::LastLogin => "COALESCE(last_login, '1970-01-01 00:00:00')",
        }
    }
}

/// Filters and search.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Part of an email or name, case-insensitive; `%` and `_` are literal.
    pub search: Option<String>,
    pub provider: Option<String>,
    pub is_active: Option<bool>,
    pub is_staff: Option<bool>,
    pub is_superuser: Option<bool>,
}

impl UserFilter {
    /// Whether nothing is filtered: every page is then a walk along an ordering's index.
    pub fn is_empty(&self) -> bool {
        let UserFilter {
            search: _,
            provider,
            is_active,
            is_staff,
            is_superuser,
        } = self;
        self.search_text().is_none()
            && provider.is_none()
            && is_active.is_none()
            && is_staff.is_none()
            && is_superuser.is_none()
    }

    /// The search, trimmed; `None` when there is nothing to search for.
    fn search_text(&self) -> Option<&str> {
        self.search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// Which way a cursor points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Direction {
    #[serde(rename = "n")]
    After,
    #[serde(rename = "p")]
    Before,
}

/// A position in one ordering: the sort value and id of a row, and which way to go from it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    #[serde(rename = "d")]
    pub direction: Direction,
    /// The ordering it belongs to (`-email`...): a cursor is refused under another ordering.
    #[serde(rename = "o")]
    pub ordering: String,
    /// The sort value as text (id, timestamp or email).
    #[serde(rename = "v")]
    pub value: String,
    #[serde(rename = "i")]
    pub id: i64,
}

/// A cursor string that is not one of ours (or not for this ordering).
#[derive(Debug, thiserror::Error)]
#[error("invalid cursor")]
pub struct BadCursor;

const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.f";

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(s: &str, ordering: Ordering) -> Result<Cursor, BadCursor> {
        if s.len() > 512 {
            return Err(BadCursor);
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| BadCursor)?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| BadCursor)?;
        if cursor.ordering != ordering.as_param() || cursor.value.chars().any(char::is_control) {
            return Err(BadCursor);
        }
        // The value must parse for its key, so it can be bound with the right type.
        match ordering.key {
            SortKey::Id => {
                cursor.value.parse::<i64>().map_err(|_| BadCursor)?;
            }
            SortKey::DateJoined | SortKey::LastLogin => {
                NaiveDateTime::parse_from_str(&cursor.value, TIME_FORMAT).map_err(|_| BadCursor)?;
            }
            SortKey::Email => {}
        }
        Ok(cursor)
    }

    fn at(user: &User, ordering: Ordering, direction: Direction) -> Cursor {
        let value = match ordering.key {
            SortKey::Id => user.id.to_string(),
            SortKey::DateJoined => user.date_joined.format(TIME_FORMAT).to_string(),
            SortKey::Email => user.email.clone(),
            SortKey::LastLogin => user
                .last_login
                .unwrap_or_default()
                .format(TIME_FORMAT)
                .to_string(),
        };
        Cursor {
            direction,
            ordering: ordering.as_param(),
            value,
            id: user.id,
        }
    }
}

/// One page of users, with the cursors of its neighbours.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next: Option<Cursor>,
    pub previous: Option<Cursor>,
}

/// The database a list query is written for: only search differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

/// The shortest search the SQLite trigram index can answer.
const TRIGRAM: usize = 3;

/// An FTS5 query matching `search` as one phrase: inside double quotes every character is
/// literal except `"`, which is doubled.
pub fn fts_phrase(search: &str) -> String {
    format!("\"{}\"", search.replace('"', "\"\""))
}

/// `%` and `_` match themselves; `\` is the escape character.
pub fn like_pattern(search: &str) -> String {
    let mut out = String::with_capacity(search.len() + 2);
    out.push('%');
    for c in search.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A value to bind.
#[derive(Clone)]
enum Bind {
    Text(String),
    Int(i64),
    Bool(bool),
    Time(NaiveDateTime),
}

/// A list query being written: SQL text and binds, in order. Placeholders are written by the
/// backend (`?` or `$n`) when the query runs.
#[derive(Default)]
struct ListQuery {
    parts: Vec<Part>,
    /// Whether to keep the prepared statement on the connection (see `list_users`).
    cacheable: bool,
}

enum Part {
    Sql(String),
    Bind(Bind),
}

impl ListQuery {
    fn sql(&mut self, sql: impl Into<String>) -> &mut Self {
        self.parts.push(Part::Sql(sql.into()));
        self
    }

    fn bind(&mut self, value: Bind) -> &mut Self {
        self.parts.push(Part::Bind(value));
        self
    }
}

/// Written for each backend itself, so that it runs on the backend's own connection
/// (`db::load`).
impl<DB> diesel::query_builder::QueryFragment<DB> for ListQuery
where
    DB: diesel::backend::Backend
        + diesel::sql_types::HasSqlType<Text>
        + diesel::sql_types::HasSqlType<BigInt>
        + diesel::sql_types::HasSqlType<Bool>
        + diesel::sql_types::HasSqlType<Timestamp>,
    String: diesel::serialize::ToSql<Text, DB>,
    i64: diesel::serialize::ToSql<BigInt, DB>,
    bool: diesel::serialize::ToSql<Bool, DB>,
    NaiveDateTime: diesel::serialize::ToSql<Timestamp, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        if !self.cacheable {
            out.unsafe_to_cache_prepared();
        }
        for part in &self.parts {
            match part {
                Part::Sql(sql) => out.push_sql(sql),
                Part::Bind(Bind::Text(v)) => out.push_bind_param::<Text, _>(v)?,
                Part::Bind(Bind::Int(v)) => out.push_bind_param::<BigInt, _>(v)?,
                Part::Bind(Bind::Bool(v)) => out.push_bind_param::<Bool, _>(v)?,
                Part::Bind(Bind::Time(v)) => out.push_bind_param::<Timestamp, _>(v)?,
            }
        }
        Ok(())
    }
}

impl diesel::query_builder::QueryId for ListQuery {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// Rows come back as `users.*`, so they load into `User` by position (by-name loading, as
/// `sql_query` does, cost about a sixth of the list's time in the profile).
impl diesel::query_builder::Query for ListQuery {
    type SqlType = users::SqlType;
}

impl<C> RunQueryDsl<C> for ListQuery {}

/// Whether `search` is answered from SQLite's FTS5 trigram index (shorter searches have no
/// trigram to look up, and PostgreSQL's `pg_trgm` index serves `LIKE` itself).
fn from_trigram_index(dialect: Dialect, search: &str) -> bool {
    dialect == Dialect::Sqlite && search.chars().count() >= TRIGRAM
}

/// Add the search's condition to `query`, for a query that does not read the search index.
fn push_search(query: &mut ListQuery, search: &str, dialect: Dialect) {
    if from_trigram_index(dialect, search) {
        query
            .sql(" AND id IN (SELECT rowid FROM users_search WHERE users_search MATCH ")
            .bind(Bind::Text(fts_phrase(search)))
            .sql(")");
    } else {
        // Emails are stored lowercased; names are folded here.
        let pattern = like_pattern(search);
        query
            .sql(" AND (email LIKE ")
            .bind(Bind::Text(pattern.clone()))
            .sql(" ESCAPE '\\' OR lower(COALESCE(name, '')) LIKE ")
            .bind(Bind::Text(pattern))
            .sql(" ESCAPE '\\')");
    }
}

/// Add the filter's conditions other than the search (and not the cursor's) to `query`.
fn push_flags(query: &mut ListQuery, filter: &UserFilter) {
    if let Some(provider) = &filter.provider {
        query
            .sql(" AND provider = ")
            .bind(Bind::Text(provider.clone()));
    }
    for (column, value) in [
        ("is_active", filter.is_active),
        ("is_staff", filter.is_staff),
        ("is_superuser", filter.is_superuser),
    ] {
        if let Some(v) = value {
            query.sql(format!(" AND {column} = ")).bind(Bind::Bool(v));
        }
    }
}

/// `users.*` in the table's column order, which is the order `User` loads by (qualified: the
/// search index has `email` and `name` columns too).
const COLUMNS: &str = "users.id, users.email, users.name, users.age, users.provider, \
     users.is_active, users.is_staff, users.is_superuser, users.date_joined, users.last_login, \
     users.session_epoch";

/// One page of users matching `filter`, in `ordering`, from `cursor`.
pub fn list_users(
    conn: &mut DbConnection,
    filter: &UserFilter,
    ordering: Ordering,
    cursor: Option<&Cursor>,
    limit: i64,
) -> QueryResult<UserPage> {
    let limit = limit.clamp(1, MAX_LIMIT);
    let dialect = match conn {
        DbConnection::Sqlite(_) => Dialect::Sqlite,
        DbConnection::Postgresql(_) => Dialect::Postgres,
    };
    // Lists without a search keep their prepared statements on each connection: every value
    // is bound, so there are at most 2 x 8 filter shapes x 8 orderings x 3 cursor forms. A
    // search is planned afresh each time: kept, PostgreSQL would switch it to a generic plan
    // after five runs (it costs the unknown pattern lower than the trigram index's bitmap),
    // which walks the primary key and filters every row (`EXPLAIN ANALYZE`, "kim 12": 12 ms
    // instead of 0.1 ms at 10k users, 120 ms instead of 3.7 ms at 1M); planning it costs 0.2 ms.
    let mut query = ListQuery {
        cacheable: filter.search_text().is_none(),
        ..ListQuery::default()
    };
    // Ordered by id, an SQLite trigram search reads the index in rowid order, joined to the
    // table, and stops at the end of the page; otherwise every match would be read and sorted
    // (at a million users, a common word matches a hundred thousand).
    let search = filter.search_text();
    let id = match search {
        Some(search) if ordering.key == SortKey::Id && from_trigram_index(dialect, search) => {
            query
                .sql(format!(
                    "SELECT {COLUMNS} FROM users_search JOIN users ON users.id = users_search.rowid \
                     WHERE users_search MATCH "
                ))
                .bind(Bind::Text(fts_phrase(search)));
            "users_search.rowid"
        }
        _ => {
            query.sql(format!("SELECT {COLUMNS} FROM users WHERE 1 = 1"));
            if let Some(search) = search {
                push_search(&mut query, search, dialect);
            }
            "id"
        }
    };
    push_flags(&mut query, filter);
    let backwards = cursor.is_some_and(|c| c.direction == Direction::Before);
    // Walking backwards reads in the opposite order, then flips the page.
    let read_descending = ordering.descending != backwards;
    let column = ordering.column();
    if let Some(c) = cursor {
        let op = if read_descending { "<" } else { ">" };
        let value = match ordering.key {
            SortKey::Id => Bind::Int(c.value.parse().unwrap_or_default()),
            SortKey::Email => Bind::Text(c.value.clone()),
            SortKey::DateJoined | SortKey::LastLogin => {
                Bind::Time(NaiveDateTime::parse_from_str(&c.value, TIME_FORMAT).unwrap_or_default())
            }
        };
        if ordering.key == SortKey::Id {
            query.sql(format!(" AND {id} {op} ")).bind(value);
        } else {
            query
                .sql(format!(" AND ({column} {op} "))
                .bind(value.clone())
                .sql(format!(" OR ({column} = "))
                .bind(value)
                .sql(format!(" AND id {op} "))
                .bind(Bind::Int(c.id))
                .sql("))");
        }
    }
    let dir = if read_descending { "DESC" } else { "ASC" };
    if ordering.key == SortKey::Id {
        query.sql(format!(" ORDER BY {id} {dir}"));
    } else {
        query.sql(format!(" ORDER BY {column} {dir}, id {dir}"));
    }
    // Not a bare `?`: SQLite lets a bound LIMIT steer its planner and then compiles the
    // statement again on every run, which would make a kept statement worthless.
    query
        .sql(" LIMIT CAST(")
        .bind(Bind::Int(limit + 1))
        .sql(" AS BIGINT)");
    let mut users: Vec<User> = crate::db::load(conn, query)?;
    let more = users.len() as i64 > limit;
    users.truncate(limit as usize);
    if backwards {
        users.reverse();
    }
    let first = users.first();
    let last = users.last();
    let (next, previous) = if backwards {
        (
            // We came from a later page, so there is one after this.
            last.map(|u| Cursor::at(u, ordering, Direction::After)),
            more.then(|| first.map(|u| Cursor::at(u, ordering, Direction::Before)))
                .flatten(),
        )
    } else {
        (
            more.then(|| last.map(|u| Cursor::at(u, ordering, Direction::After)))
                .flatten(),
            cursor.and(first.map(|u| Cursor::at(u, ordering, Direction::Before))),
        )
    };
    Ok(UserPage {
        users,
        next,
        previous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_make_wildcards_literal() {
        assert_eq!(like_pattern("Kim"), "%kim%");
        assert_eq!(like_pattern("50%"), "%50\\%%");
        assert_eq!(like_pattern("a_b"), "%a\\_b%");
        assert_eq!(like_pattern("c:\\x"), "%c:\\\\x%");
    }

    #[test]
    fn fts_phrases_quote_the_whole_search() {
        assert_eq!(fts_phrase("kim 12"), "\"kim 12\"");
        assert_eq!(fts_phrase("a\"b"), "\"a\"\"b\"");
        assert_eq!(fts_phrase("x OR y*"), "\"x OR y*\"");
    }

    #[test]
    fn orderings_round_trip_and_unknown_ones_are_refused() {
        for name in ["id", "-id", "email", "-date_joined", "last_login"] {
            assert_eq!(
                Ordering::parse(name).map(Ordering::as_param).as_deref(),
                Some(name)
            );
        }
        assert_eq!(Ordering::parse("password"), None);
        assert_eq!(Ordering::parse("--id"), None);
    }

    #[test]
    fn cursors_are_bound_to_their_ordering_and_checked() {
        let ordering = Ordering::parse("-date_joined").expect("ordering");
        let c = Cursor {
            direction: Direction::After,
            ordering: ordering.as_param(),
            value: "2026-11-28T10:00:00.5".into(),
            id: 7,
        };
        let s = c.encode();
        assert_eq!(Cursor::decode(&s, ordering).expect("decodes"), c);
        assert!(Cursor::decode(&s, Ordering::default()).is_err());
        assert!(Cursor::decode("not-a-cursor", ordering).is_err());
        let bad_value = Cursor {
            value: "yesterday".into(),
            ..c.clone()
        };
        assert!(Cursor::decode(&bad_value.encode(), ordering).is_err());
        let by_email = Ordering::parse("email").expect("ordering");
        let nul = Cursor {
            ordering: by_email.as_param(),
            value: "a\u{0}b".into(),
            ..c
        };
        assert!(Cursor::decode(&nul.encode(), by_email).is_err());
    }
}
