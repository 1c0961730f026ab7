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

#[test]
fn refused_webhook_deliveries_are_purged_after_a_month_and_the_rest_kept() {
    use kakao_login::users::kakao_events::{self, Webhook};
    let db = TestDb::new();
    let pool = db.pool();
    let mut conn = pool.get().expect("connection");
    for why in ["old 1", "old 2", "recent"] {
        kakao_events::refused(&mut conn, Webhook::Unlink, "", None, why).expect("record");
    }
    let long_ago = kakao_login::db::now() - TimeDelta::days(31);
    let at = long_ago.format("%Y-%m-%d %H:%M:%S").to_string();
    diesel::sql_query(format!(
        "UPDATE webhook_deliveries SET received_at = '{at}' WHERE detail LIKE '%old%'"
    ))
    .execute(&mut **conn)
    .expect("age them");
    // An old delivery that was applied is what Kakao told us: it stays.
    diesel::sql_query(format!(
        "INSERT INTO webhook_deliveries (received_at, kind, event, outcome, detail) \
         VALUES ('{at}', 'unlink', 'UNLINK_FROM_APPS', 'applied', 'kept')"
    ))
    .execute(&mut **conn)
    .expect("applied row");
    assert_eq!(
        kakao_events::purge_old_refusals(&mut conn).expect("purge"),
        2
    );
    assert_eq!(
        kakao_events::purge_old_refusals(&mut conn).expect("purge"),
        0
    );
    #[derive(diesel::QueryableByName)]
    struct Left {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let left: Left = diesel::sql_query("SELECT COUNT(*) AS n FROM webhook_deliveries")
        .get_result(&mut **conn)
        .expect("count");
    assert_eq!(left.n, 2);
}
