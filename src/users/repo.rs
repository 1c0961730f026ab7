//! Diesel queries for users, social accounts, server-side sessions and used login states.
//! Plain synchronous functions over one connection; rules live in `manager` and `service`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{NewSocialAccount, NewUser, SocialAccount, User, UserChanges};
use crate::db::DbConnection;
use crate::db::schema::{consumed_login_states, social_accounts, user_sessions, users};

/// The row a query on a unique key finds, if any.
///
/// Deliberately loaded without `LIMIT`: diesel binds a limit as a parameter, and SQLite lets a
/// bound LIMIT steer its query planner, so a statement carrying one is compiled again on every
/// run, which made every request parse its session lookup afresh (found by profiling the load
/// benchmark). A unique key matches at most one row, so the limit bought nothing.
pub fn at_most_one<'q, Q, T>(query: Q, conn: &mut DbConnection) -> QueryResult<Option<T>>
where
    Q: diesel::query_dsl::LoadQuery<'q, DbConnection, T>,
{
    Ok(query.load::<T>(conn)?.into_iter().next())
}

pub fn find_user(conn: &mut DbConnection, id: i64) -> QueryResult<Option<User>> {
    at_most_one(users::table.find(id), conn)
}

/// Look a user up by an already-normalized (lowercased) email.
pub fn find_user_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<User>> {
    at_most_one(users::table.filter(users::email.eq(email)), conn)
}

pub fn insert_user(conn: &mut DbConnection, new: &NewUser) -> QueryResult<User> {
    diesel::insert_into(users::table)
        .values(new)
        .get_result(conn)
}

pub fn update_user(conn: &mut DbConnection, id: i64, changes: &UserChanges) -> QueryResult<User> {
    if *changes == UserChanges::default() {
        return at_most_one(users::table.find(id), conn)?.ok_or(diesel::result::Error::NotFound);
    }
    diesel::update(users::table.find(id))
        .set(changes)
        .get_result(conn)
}

/// Delete a user; their social accounts and sessions go with them (ON DELETE CASCADE).
pub fn delete_user(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(users::table.find(id)).execute(conn)
}

pub fn count_users(conn: &mut DbConnection) -> QueryResult<i64> {
    users::table.count().get_result(conn)
}

pub fn find_social(
    conn: &mut DbConnection,
    provider: &str,
    uid: i64,
) -> QueryResult<Option<SocialAccount>> {
    at_most_one(
        social_accounts::table
            .filter(social_accounts::provider.eq(provider))
            .filter(social_accounts::uid.eq(uid)),
        conn,
    )
}

pub fn find_social_for_user(
    conn: &mut DbConnection,
    user_id: i64,
    provider: &str,
) -> QueryResult<Option<SocialAccount>> {
    at_most_one(
        social_accounts::table
            .filter(social_accounts::user_id.eq(user_id))
            .filter(social_accounts::provider.eq(provider)),
        conn,
    )
}

pub fn insert_social(
    conn: &mut DbConnection,
    new: &NewSocialAccount,
) -> QueryResult<SocialAccount> {
    diesel::insert_into(social_accounts::table)
        .values(new)
        .get_result(conn)
}

/// Record a sign-in through a social account: its latest profile data and time.
pub fn touch_social(
    conn: &mut DbConnection,
    id: i64,
    extra_data: &str,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(social_accounts::table.find(id))
        .set((
            social_accounts::extra_data.eq(extra_data),
            social_accounts::last_login.eq(at),
        ))
        .execute(conn)
}

/// Store a server-side session record (by the hash of its token).
pub fn insert_session(
    conn: &mut DbConnection,
    id_hash: &str,
    user_id: i64,
    created_at: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::insert_into(user_sessions::table)
        .values((
            user_sessions::id.eq(id_hash),
            user_sessions::user_id.eq(user_id),
            user_sessions::created_at.eq(created_at),
            user_sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)
}

/// The user behind a live session record, in one query.
pub fn session_user(
    conn: &mut DbConnection,
    id_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<User>> {
    at_most_one(
        user_sessions::table
            .inner_join(users::table)
            .filter(user_sessions::id.eq(id_hash))
            .filter(user_sessions::expires_at.gt(now))
            .select(users::all_columns),
        conn,
    )
}

pub fn delete_session(conn: &mut DbConnection, id_hash: &str) -> QueryResult<usize> {
    diesel::delete(user_sessions::table.find(id_hash)).execute(conn)
}

/// Revoke every session of a user ("sign out everywhere"); returns how many there were.
pub fn delete_user_sessions(conn: &mut DbConnection, user_id: i64) -> QueryResult<usize> {
    diesel::delete(user_sessions::table.filter(user_sessions::user_id.eq(user_id))).execute(conn)
}

pub fn delete_expired_sessions(
    conn: &mut DbConnection,
    user_id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::delete(
        user_sessions::table
            .filter(user_sessions::user_id.eq(user_id))
            .filter(user_sessions::expires_at.le(now)),
    )
    .execute(conn)
}

/// Mark a login `state` as used. `Ok(false)` when it was used before (a replay).
pub fn consume_login_state(
    conn: &mut DbConnection,
    state_hash: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::delete(consumed_login_states::table.filter(consumed_login_states::expires_at.le(now)))
        .execute(conn)?;
    match diesel::insert_into(consumed_login_states::table)
        .values((
            consumed_login_states::state_hash.eq(state_hash),
            consumed_login_states::expires_at.eq(expires_at),
        ))
        .execute(conn)
    {
        Ok(_) => Ok(true),
        Err(e) if crate::db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

pub fn login_state_consumed(conn: &mut DbConnection, state_hash: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        consumed_login_states::table.filter(consumed_login_states::state_hash.eq(state_hash)),
    ))
    .get_result(conn)
}
