//! The housekeeping purge: expired session records and used login states go, in bounded
//! batches; live ones stay.

use chrono::TimeDelta;
use diesel::prelude::*;
use kakao_login::auth::records::{self, Purged};

use crate::support::{TestDb, pool_create_user};

#[test]
fn the_purge_deletes_only_what_expired_in_bounded_batches() {
    let db = TestDb::new();
    let pool = db.pool();
    let user = pool_create_user(&pool, "kept@example.com", "남김");
    let mut conn = pool.get().expect("connection");
    let live = records::start(&mut conn, &user, TimeDelta::hours(1), None, "test").expect("live");
    // 21,000 expired records (written directly: a sign-in clears its own person's).
    let past = kakao_login::db::now() - TimeDelta::hours(1);
    let at = |t: chrono::NaiveDateTime| t.format("%Y-%m-%d %H:%M:%S").to_string();
    for chunk in 0..21 {
        let rows: Vec<String> = (0..1000)
            .map(|i| {
                format!(
                    "('expired-{chunk}-{i}', {}, '{}', '{}', {}, '')",
                    user.id,
                    at(past - TimeDelta::hours(1)),
                    at(past),
                    user.session_epoch
                )
            })
            .collect();
        diesel::sql_query(format!(
            "INSERT INTO user_sessions (id, user_id, created_at, expires_at, epoch, user_agent) \
             VALUES {}",
            rows.join(", ")
        ))
        .execute(&mut **conn)
        .expect("insert");
    }
    // Used login states: one still within its lifetime, one past it.
    assert!(
        records::consume_login_state(
            &mut conn,
            "fresh",
            kakao_login::db::now() + TimeDelta::minutes(5)
        )
        .expect("fresh")
    );
    assert!(records::consume_login_state(&mut conn, "stale", past).expect("stale"));

    let first = records::purge_expired(&mut conn).expect("purge");
    assert_eq!(
        first,
        Purged {
            sessions: 20_000,
            login_states: 1,
            more: true
        },
        "one run stops at its bound"
    );
    let second = records::purge_expired(&mut conn).expect("purge");
    assert_eq!(
        second,
        Purged {
            sessions: 1000,
            login_states: 0,
            more: false
        }
    );
    assert_eq!(
        records::purge_expired(&mut conn).expect("purge"),
        Purged::default()
    );
    // What is live is untouched.
    assert!(
        records::user_for_token(&mut conn, &live)
            .expect("lookup")
            .is_some()
    );
    assert!(records::login_state_consumed(&mut conn, "fresh").expect("lookup"));
    assert!(!records::login_state_consumed(&mut conn, "stale").expect("lookup"));
}
