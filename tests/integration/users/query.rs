//! The shared user list: search, filters, orderings and keyset pages on a real database.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use kakao_login::db::DbConnection;
use kakao_login::db::schema::users;
use kakao_login::users::changes;
use kakao_login::users::manager::CreateUser;
use kakao_login::users::model::User;
use kakao_login::users::permissions::{Actor, Role};
use kakao_login::users::query::{Cursor, Direction, Ordering, UserFilter, list_users};

use crate::support::TestDb;

/// Every ordering, both ways.
const ORDERINGS: [&str; 8] = [
    "id",
    "-id",
    "date_joined",
    "-date_joined",
    "email",
    "-email",
    "last_login",
    "-last_login",
];

fn base_time() -> NaiveDateTime {
    chrono::DateTime::from_timestamp(1_767_225_600, 0)
        .expect("time")
        .naive_utc()
}

/// Users with distinct emails, some sharing join times, some never signed in.
fn seed(conn: &mut DbConnection, n: usize) -> Vec<User> {
    for i in 0..n {
        let user = changes::create_user(
            conn,
            &Actor::Cli,
            &CreateUser {
                email: format!("user{:02}@example.com", (i * 7) % n),
                name: Some(match i % 4 {
                    0 => "Kim 50%".to_owned(),
                    1 => "lee_a".to_owned(),
                    2 => "박".to_owned(),
                    _ => "KIMchi".to_owned(),
                }),
                provider: if i % 3 == 0 { "local" } else { "kakao" }.into(),
                ..CreateUser::default()
            },
            Role::Member,
        )
        .expect("create");
        // Ties on date_joined (pairs), and every third user never signed in.
        let joined = base_time() + TimeDelta::minutes((i / 2) as i64);
        let last = (i % 3 != 0).then(|| base_time() + TimeDelta::seconds((n - i) as i64));
        diesel::update(users::table.find(user.id))
            .set((
                users::date_joined.eq(joined),
                users::last_login.eq(last),
                users::is_active.eq(i % 5 != 0),
            ))
            .execute(conn)
            .expect("update");
    }
    users::table.load::<User>(conn).expect("load")
}

fn expected(all: &[User], ordering: Ordering) -> Vec<i64> {
    let mut v = all.to_vec();
    v.sort_by(|a, b| {
        use kakao_login::users::query::SortKey::*;
        let primary = match ordering.key {
            Id => a.id.cmp(&b.id),
            DateJoined => a.date_joined.cmp(&b.date_joined),
            Email => a.email.cmp(&b.email),
            LastLogin => a
                .last_login
                .unwrap_or_default()
                .cmp(&b.last_login.unwrap_or_default()),
        };
        primary.then(a.id.cmp(&b.id))
    });
    if ordering.descending {
        v.reverse();
    }
    v.into_iter().map(|u| u.id).collect()
}

fn walk_forward(conn: &mut DbConnection, f: &UserFilter, o: Ordering, limit: i64) -> Vec<i64> {
    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    for _ in 0..100 {
        let page = list_users(conn, f, o, cursor.as_ref(), limit).expect("page");
        assert!(page.users.len() as i64 <= limit);
        seen.extend(page.users.iter().map(|u| u.id));
        match page.next {
            Some(c) => cursor = Some(c),
            None => return seen,
        }
    }
    panic!("pagination did not end");
}

/// What a search must find: `needle` in the email or the name, ignoring case.
fn contains_ignoring_case(u: &User, needle: &str) -> bool {
    let needle = needle.to_lowercase();
    u.email.contains(&needle)
        || u.name
            .as_deref()
            .is_some_and(|name| name.to_lowercase().contains(&needle))
}

/// From the last page, walk back with `previous` to the first; the ids in list order.
fn walk_backward(conn: &mut DbConnection, f: &UserFilter, o: Ordering, limit: i64) -> Vec<i64> {
    let mut cursor = None;
    let last_page = loop {
        let page = list_users(conn, f, o, cursor.as_ref(), limit).expect("page");
        match page.next {
            Some(c) => cursor = Some(c),
            None => break page,
        }
    };
    let mut backward: Vec<i64> = last_page.users.iter().map(|u| u.id).collect();
    let mut prev = last_page.previous;
    for _ in 0..100 {
        let Some(c) = prev else {
            return backward;
        };
        assert_eq!(c.direction, Direction::Before);
        let page = list_users(conn, f, o, Some(&c), limit).expect("page");
        assert!(page.users.len() as i64 <= limit);
        let mut ids: Vec<i64> = page.users.iter().map(|u| u.id).collect();
        ids.extend(backward);
        backward = ids;
        prev = page.previous;
    }
    panic!("pagination did not end");
}

#[test]
fn every_ordering_pages_forward_and_backward_over_every_row_once() {
    let db = TestDb::new();
    let pool = db.pool();
    let mut conn = pool.get().expect("conn");
    let all = seed(&mut conn, 23);
    for name in ORDERINGS {
        let ordering = Ordering::parse(name).expect("ordering");
        let want = expected(&all, ordering);
        let forward = walk_forward(&mut conn, &UserFilter::default(), ordering, 4);
        assert_eq!(forward, want, "forward {name}");

        let backward = walk_backward(&mut conn, &UserFilter::default(), ordering, 4);
        assert_eq!(backward, want, "backward {name}");
    }
}

/// A search combined with filters pages forward and backward over exactly its matches in every
/// ordering (SQLite answers searches of three or more characters from its trigram index, in id
/// order straight from the index when the list is ordered by id).
#[test]
fn searches_with_filters_page_both_ways_in_every_ordering() {
    let db = TestDb::new();
    let pool = db.pool();
    let mut conn = pool.get().expect("conn");
    let all = seed(&mut conn, 23);
    for (search, provider, is_active) in [
        ("kim", None, None),
        ("KIM", Some("kakao"), None),
        ("kim", None, Some(true)),
        ("im", Some("local"), Some(false)),
        ("user1", None, Some(true)),
        ("nobody", None, None),
    ] {
        let f = UserFilter {
            search: Some(search.into()),
            provider: provider.map(str::to_owned),
            is_active,
            ..UserFilter::default()
        };
        let matching: Vec<User> = all
            .iter()
            .filter(|u| {
                contains_ignoring_case(u, search)
                    && provider.is_none_or(|p| u.provider == p)
                    && is_active.is_none_or(|a| u.is_active == a)
            })
            .cloned()
            .collect();
        for name in ORDERINGS {
            let ordering = Ordering::parse(name).expect("ordering");
            let want = expected(&matching, ordering);
            let case = format!("{search:?} {provider:?} {is_active:?} {name}");
            assert_eq!(
                walk_forward(&mut conn, &f, ordering, 3),
                want,
                "forward {case}"
            );
            assert_eq!(
                walk_backward(&mut conn, &f, ordering, 3),
                want,
                "backward {case}"
            );
        }
    }
}

#[test]
fn pages_stay_correct_while_users_are_added() {
    let db = TestDb::new();
    let pool = db.pool();
    let mut conn = pool.get().expect("conn");
    let all = seed(&mut conn, 12);
    let ordering = Ordering::parse("id").expect("ordering");
    let first = list_users(&mut conn, &UserFilter::default(), ordering, None, 5).expect("page");
    // New users arrive between page views; with ids they sort after every existing one.
    for i in 0..3 {
        changes::create_user(
            &mut conn,
            &Actor::Cli,
            &CreateUser {
                email: format!("late{i}@example.com"),
                provider: "kakao".into(),
                ..CreateUser::default()
            },
            Role::Member,
        )
        .expect("create");
    }
    let mut seen: Vec<i64> = first.users.iter().map(|u| u.id).collect();
    let mut cursor = first.next;
    while let Some(c) = cursor {
        let page =
            list_users(&mut conn, &UserFilter::default(), ordering, Some(&c), 5).expect("page");
        seen.extend(page.users.iter().map(|u| u.id));
        cursor = page.next;
    }
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no row twice");
    for u in &all {
        assert!(seen.contains(&u.id), "no existing row skipped");
    }
    assert_eq!(seen.len(), all.len() + 3);
}

#[test]
fn search_is_case_insensitive_and_takes_wildcards_literally() {
    let db = TestDb::new();
    let pool = db.pool();
    let mut conn = pool.get().expect("conn");
    let all = seed(&mut conn, 20);
    let search = |conn: &mut DbConnection, s: &str| -> Vec<i64> {
        let f = UserFilter {
            search: Some(s.into()),
            ..UserFilter::default()
        };
        walk_forward(conn, &f, Ordering::default(), 50)
    };
    let kim: Vec<i64> = all
        .iter()
        .filter(|u| {
            u.name
                .as_deref()
                .is_some_and(|n| n.to_lowercase().contains("kim"))
        })
        .map(|u| u.id)
        .collect();
    assert_eq!(search(&mut conn, "KIM"), kim);
    let percent: Vec<i64> = all
        .iter()
        .filter(|u| u.name.as_deref() == Some("Kim 50%"))
        .map(|u| u.id)
        .collect();
    assert_eq!(search(&mut conn, "50%"), percent, "% is literal");
    assert!(
        search(&mut conn, "%").len() == percent.len(),
        "% alone is not 'everyone'"
    );
    let underscore: Vec<i64> = all
        .iter()
        .filter(|u| u.name.as_deref() == Some("lee_a"))
        .map(|u| u.id)
        .collect();
    assert_eq!(search(&mut conn, "_"), underscore, "_ is literal");
    assert_eq!(search(&mut conn, "USER03@EXAMPLE").len(), 1, "emails too");
    assert_eq!(search(&mut conn, "박").len(), 5);
    assert!(search(&mut conn, "' OR 1=1 --").is_empty());
}

/// Search agrees with a plain "contains, ignoring case" over email and name for searches of
/// every length (SQLite answers three or more characters from its trigram index, shorter ones
/// by reading the table), including characters that mean something to FTS5 or to LIKE, and it
/// follows renames, email changes and deletions.
#[test]
fn search_matches_substrings_and_follows_changes() {
    let db = TestDb::new();
    let pool = db.pool();
    let mut conn = pool.get().expect("conn");
    seed(&mut conn, 12);
    for (email, name) in [
        ("quote@example.com", "He said \"hi\" OR NOT*"),
        ("hong@example.com", "홍길동"),
        ("near@example.com", "NEAR(a b) ^c"),
    ] {
        changes::create_user(
            &mut conn,
            &Actor::Cli,
            &CreateUser {
                email: email.into(),
                name: Some(name.into()),
                provider: "kakao".into(),
                ..CreateUser::default()
            },
            Role::Member,
        )
        .expect("create");
    }
    let check = |conn: &mut DbConnection| {
        let all = users::table
            .order(users::id)
            .load::<User>(conn)
            .expect("load");
        for needle in [
            "k",
            "Ki",
            "kim",
            "KIMC",
            "mchi",
            "50%",
            "0%",
            "%",
            "_",
            "e_a",
            "user0",
            "USER07@",
            "@example.com",
            "example.org",
            "홍",
            "길동",
            "홍길동",
            "\"hi\"",
            "\"",
            "OR NOT*",
            "NEAR(a",
            "^c",
            "renamed",
            "moved@",
            "nobody",
        ] {
            let expected: Vec<i64> = all
                .iter()
                .filter(|u| contains_ignoring_case(u, needle))
                .map(|u| u.id)
                .collect();
            let f = UserFilter {
                search: Some(needle.into()),
                ..UserFilter::default()
            };
            assert_eq!(
                walk_forward(conn, &f, Ordering::default(), 5),
                expected,
                "{needle:?}"
            );
        }
    };
    check(&mut conn);
    let first: User = users::table
        .order(users::id)
        .first(&mut **conn)
        .expect("first");
    let rename = changes::UserPatch {
        name: Some(Some("Renamed Kim".into())),
        email: Some("moved@example.org".into()),
        ..Default::default()
    };
    changes::update_user(&mut conn, &Actor::Cli, first.id, &rename).expect("rename");
    let second: i64 = users::table
        .select(users::id)
        .filter(users::id.gt(first.id))
        .order(users::id)
        .first(&mut **conn)
        .expect("second");
    changes::delete_user(&mut conn, &Actor::Cli, second).expect("delete");
    check(&mut conn);
}

#[test]
fn filters_combine() {
    let db = TestDb::new();
    let pool = db.pool();
    let mut conn = pool.get().expect("conn");
    let all = seed(&mut conn, 30);
    let f = UserFilter {
        provider: Some("kakao".into()),
        is_active: Some(true),
        is_staff: Some(false),
        ..UserFilter::default()
    };
    let want: Vec<i64> = all
        .iter()
        .filter(|u| u.provider == "kakao" && u.is_active && !u.is_staff)
        .map(|u| u.id)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(walk_forward(&mut conn, &f, Ordering::default(), 7), want);
    let supers = UserFilter {
        is_superuser: Some(true),
        ..UserFilter::default()
    };
    assert!(walk_forward(&mut conn, &supers, Ordering::default(), 7).is_empty());
}

/// On PostgreSQL, a list without a search is prepared once per connection and run again from
/// its prepared statement; a search is planned afresh each time (a generic plan for it walks
/// the whole primary key). SQLite keeps its statements in the process, out of sight.
#[test]
fn lists_without_a_search_reuse_their_prepared_statement() {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    /// The statements prepared on this PostgreSQL connection (`None` on SQLite).
    fn prepared(conn: &mut DbConnection) -> Option<i64> {
        let DbConnection::Postgresql(pg) = conn else {
            return None;
        };
        let sql = "SELECT count(*) AS n FROM pg_prepared_statements";
        Some(
            diesel::sql_query(sql)
                .get_result::<Count>(pg)
                .expect("count")
                .n,
        )
    }
    let db = TestDb::new();
    let pool = db.pool();
    let mut pooled = pool.get().expect("connection");
    let conn: &mut DbConnection = &mut pooled;
    seed(conn, 12);
    let Some(before) = prepared(conn) else {
        return;
    };
    let ordering = Ordering::parse("-email").expect("ordering");
    let filtered = UserFilter {
        is_active: Some(true),
        provider: Some("kakao".into()),
        ..UserFilter::default()
    };
    let searched = UserFilter {
        search: Some("kim".into()),
        ..UserFilter::default()
    };
    let ids = |page: kakao_login::users::query::UserPage| {
        page.users.iter().map(|u| u.id).collect::<Vec<_>>()
    };
    let first = ids(list_users(conn, &filtered, ordering, None, 5).expect("page"));
    assert!(!first.is_empty());
    let after_one = prepared(conn).expect("count");
    assert_eq!(after_one, before + 1, "the filtered list is prepared");
    for _ in 0..3 {
        let again = ids(list_users(conn, &filtered, ordering, None, 5).expect("page"));
        assert_eq!(again, first);
        list_users(conn, &searched, ordering, None, 5).expect("search");
    }
    assert_eq!(
        prepared(conn),
        Some(after_one),
        "the filtered list reuses its statement and the search keeps none"
    );
}
