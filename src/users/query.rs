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
        if cursor.ordering != ordering.as_param() {
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

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    name: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    age: Option<i32>,
    #[diesel(sql_type = Text)]
    provider: String,
    #[diesel(sql_type = Bool)]
    is_active: bool,
    #[diesel(sql_type = Bool)]
    is_staff: bool,
    #[diesel(sql_type = Bool)]
    is_superuser: bool,
    #[diesel(sql_type = Timestamp)]
    date_joined: NaiveDateTime,
    #[diesel(sql_type = diesel::sql_types::Nullable<Timestamp>)]
    last_login: Option<NaiveDateTime>,
}

impl From<Row> for User {
    fn from(r: Row) -> User {
        User {
            id: r.id,
            email: r.email,
            name: r.name,
            age: r.age,
            provider: r.provider,
            is_active: r.is_active,
            is_staff: r.is_staff,
            is_superuser: r.is_superuser,
            date_joined: r.date_joined,
            last_login: r.last_login,
        }
    }
}

/// A value to bind, in the order of the `$n` placeholders.
enum Bind {
    Text(String),
    Int(i64),
    Bool(bool),
    Time(NaiveDateTime),
}

/// The WHERE clause of a filter (without the cursor), with its binds.
fn filter_sql(filter: &UserFilter, dialect: Dialect, binds: &mut Vec<Bind>) -> String {
    let mut sql = String::from(" WHERE 1 = 1");
    let param = |binds: &mut Vec<Bind>, b: Bind| {
        binds.push(b);
        format!("${}", binds.len())
    };
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if dialect == Dialect::Sqlite && search.chars().count() >= TRIGRAM {
            let p = param(binds, Bind::Text(fts_phrase(search)));
            sql.push_str(&format!(
                " AND id IN (SELECT rowid FROM users_search WHERE users_search MATCH {p})"
            ));
        } else {
            // Emails are stored lowercased; names are folded here.
            let pattern = like_pattern(search);
            let p1 = param(binds, Bind::Text(pattern.clone()));
            let p2 = param(binds, Bind::Text(pattern));
            sql.push_str(&format!(
                " AND (email LIKE {p1} ESCAPE '\\' OR lower(COALESCE(name, '')) LIKE {p2} ESCAPE '\\')"
            ));
        }
    }
    if let Some(provider) = &filter.provider {
        let p = param(binds, Bind::Text(provider.clone()));
        sql.push_str(&format!(" AND provider = {p}"));
    }
    for (column, value) in [
        ("is_active", filter.is_active),
        ("is_staff", filter.is_staff),
        ("is_superuser", filter.is_superuser),
    ] {
        if let Some(v) = value {
            let p = param(binds, Bind::Bool(v));
            sql.push_str(&format!(" AND {column} = {p}"));
        }
    }
    sql
}

const COLUMNS: &str =
    "id, email, name, age, provider, is_active, is_staff, is_superuser, date_joined, last_login";

/// One page of users matching `filter`, in `ordering`, from `cursor`.
pub fn list_users(
    conn: &mut DbConnection,
    filter: &UserFilter,
    ordering: Ordering,
    cursor: Option<&Cursor>,
    limit: i64,
) -> QueryResult<UserPage> {
    let limit = limit.clamp(1, MAX_LIMIT);
    let mut binds = Vec::new();
    let dialect = match conn {
        DbConnection::Sqlite(_) => Dialect::Sqlite,
        DbConnection::Postgresql(_) => Dialect::Postgres,
    };
    let mut sql = format!(
        "SELECT {COLUMNS} FROM users{}",
        filter_sql(filter, dialect, &mut binds)
    );
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
        // SQLite numbers `$n` parameters by first appearance, so every bind is used once, in
        // the order the placeholders appear.
        if ordering.key == SortKey::Id {
            binds.push(value);
            sql.push_str(&format!(" AND id {op} ${}", binds.len()));
        } else {
            let again = match &value {
                Bind::Int(v) => Bind::Int(*v),
                Bind::Text(v) => Bind::Text(v.clone()),
                Bind::Time(v) => Bind::Time(*v),
                Bind::Bool(v) => Bind::Bool(*v),
            };
            binds.push(value);
            let p1 = binds.len();
            binds.push(again);
            let p2 = binds.len();
            binds.push(Bind::Int(c.id));
            let p3 = binds.len();
            sql.push_str(&format!(
                " AND ({column} {op} ${p1} OR ({column} = ${p2} AND id {op} ${p3}))"
            ));
        }
    }
    let dir = if read_descending { "DESC" } else { "ASC" };
    if ordering.key == SortKey::Id {
        sql.push_str(&format!(" ORDER BY id {dir}"));
    } else {
        sql.push_str(&format!(" ORDER BY {column} {dir}, id {dir}"));
    }
    binds.push(Bind::Int(limit + 1));
    sql.push_str(&format!(" LIMIT ${}", binds.len()));

    let mut query = diesel::sql_query(sql).into_boxed();
    for b in binds {
        query = match b {
            Bind::Text(v) => query.bind::<Text, _>(v),
            Bind::Int(v) => query.bind::<BigInt, _>(v),
            Bind::Bool(v) => query.bind::<Bool, _>(v),
            Bind::Time(v) => query.bind::<Timestamp, _>(v),
        };
    }
    let mut users: Vec<User> = query
        .load::<Row>(conn)?
        .into_iter()
        .map(User::from)
        .collect();
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

/// Every user matching `filter` in `ordering`, a page at a time (for exports): calls `each`
/// per page so memory stays flat.
pub fn for_each_page(
    conn: &mut DbConnection,
    filter: &UserFilter,
    ordering: Ordering,
    mut each: impl FnMut(&[User]) -> bool,
) -> QueryResult<()> {
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = list_users(conn, filter, ordering, cursor.as_ref(), MAX_LIMIT)?;
        if page.users.is_empty() || !each(&page.users) {
            return Ok(());
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
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
            ..c
        };
        assert!(Cursor::decode(&bad_value.encode(), ordering).is_err());
    }
}
