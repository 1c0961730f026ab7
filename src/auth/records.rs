//! What sign-in keeps in the database: a record per signed-in session (by the hash of its
//! token) and the login `state` values already used. Plain synchronous functions over one
//! connection, called by the sign-in use cases (`auth::login`) and the extractors.
//!
//! A session record is live while it has not expired and its `epoch` equals its user's
//! `session_epoch`: the user service ends all of a person's sessions by bumping that number,
//! without touching this table.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use crate::db::schema::{consumed_login_states, user_sessions, users};
use crate::db::{self, DbConnection, DbError};
use crate::token::{hash_token, random_token};
use crate::users::model::User;
use crate::users::repo::at_most_one;

/// Start a session for `user`; returns the token to keep in the session cookie. The
/// browser's previous session (`replacing`, when it had one) ends in the same step, and the
/// user's dead records (expired, or of an older epoch: never a newer one, which a sign-out
/// everywhere committed meanwhile would make) are cleared.
pub fn start(
    conn: &mut DbConnection,
    user: &User,
    lifetime: TimeDelta,
    replacing: Option<&str>,
) -> Result<String, DbError> {
    // One transaction: the old session ends exactly when the new one starts.
    db::transaction_with_retry(conn, DbError::is_busy, |conn| {
        start_in(conn, user, lifetime, replacing)
    })
}

fn start_in(
    conn: &mut DbConnection,
    user: &User,
    lifetime: TimeDelta,
    replacing: Option<&str>,
) -> Result<String, DbError> {
    let token = random_token();
    let now = db::now();
    if let Some(old) = replacing {
        end(conn, old)?;
    }
    diesel::delete(
        user_sessions::table
            .filter(user_sessions::user_id.eq(user.id))
            .filter(
                user_sessions::expires_at
                    .le(now)
                    .or(user_sessions::epoch.lt(user.session_epoch)),
            ),
    )
    .execute(conn)?;
    diesel::insert_into(user_sessions::table)
        .values((
            user_sessions::id.eq(hash_token(&token)),
            user_sessions::user_id.eq(user.id),
            user_sessions::created_at.eq(now),
            user_sessions::expires_at.eq(now + lifetime),
            user_sessions::epoch.eq(user.session_epoch),
        ))
        .execute(conn)?;
    Ok(token)
}

/// The active user behind a session token, if the session is live, in one query.
pub fn user_for_token(conn: &mut DbConnection, token: &str) -> QueryResult<Option<User>> {
    at_most_one(
        user_sessions::table
            .inner_join(users::table)
            .filter(user_sessions::id.eq(hash_token(token)))
            .filter(user_sessions::expires_at.gt(db::now()))
            .filter(user_sessions::epoch.eq(users::session_epoch))
            .filter(users::is_active.eq(true))
            .select(users::all_columns),
        conn,
    )
}

/// End one session (sign-out); returns how many records went (0 or 1).
pub fn end(conn: &mut DbConnection, token: &str) -> QueryResult<usize> {
    diesel::delete(user_sessions::table.find(hash_token(token))).execute(conn)
}

/// Mark a login `state` as used. `Ok(false)` when it was used before (a replay). Used states
/// that have expired are cleared on the way. One transaction, so that it is never half done
/// (and `db::run` never runs it twice after it committed).
pub fn consume_login_state(
    conn: &mut DbConnection,
    state: &str,
    expires_at: NaiveDateTime,
) -> Result<bool, DbError> {
    let consumed = db::transaction_with_retry(conn, DbError::is_busy, |conn| {
        diesel::delete(
            consumed_login_states::table.filter(consumed_login_states::expires_at.le(db::now())),
        )
        .execute(conn)?;
        diesel::insert_into(consumed_login_states::table)
            .values((
                consumed_login_states::state_hash.eq(hash_token(state)),
                consumed_login_states::expires_at.eq(expires_at),
            ))
            .execute(conn)?;
        Ok::<_, DbError>(())
    });
    match consumed {
        Ok(()) => Ok(true),
        // Used before: the unique key refused the second use (and rolled the transaction back).
        Err(DbError::Unique(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether a login `state` was used already.
pub fn login_state_consumed(conn: &mut DbConnection, state: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        consumed_login_states::table
            .filter(consumed_login_states::state_hash.eq(hash_token(state))),
    ))
    .get_result(conn)
}
