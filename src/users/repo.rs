//! Diesel queries for users, their Kakao links and their break-glass passwords. Plain
//! synchronous functions over one connection. Reads are public; writes are visible to `users`
//! only, and only the change service (`changes`) calls them, so that no change escapes its
//! permission check and audit row.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{NewSocialAccount, NewUser, SocialAccount, User, UserChanges};
use crate::db::DbConnection;
use crate::db::schema::{social_accounts, staff_passwords, users};

/// The row a query on a unique key finds, if any.
///
/// Deliberately loaded without `LIMIT`: diesel binds a limit as a parameter, and SQLite lets a
/// bound LIMIT steer its query planner, so a statement carrying one is compiled again on every
/// run, which made every request parse its session lookup afresh (found by profiling the load
/// benchmark). A unique key matches at most one row, so the limit bought nothing. Loaded on
/// the backend's own connection (`db::load`).
pub fn at_most_one<'q, Q, T>(query: Q, conn: &mut DbConnection) -> QueryResult<Option<T>>
where
    Q: diesel::query_dsl::LoadQuery<'q, diesel::SqliteConnection, T>
        + diesel::query_dsl::LoadQuery<'q, diesel::PgConnection, T>,
{
    Ok(crate::db::load(conn, query)?.into_iter().next())
}

pub fn find_user(conn: &mut DbConnection, id: i64) -> QueryResult<Option<User>> {
    at_most_one(users::table.find(id), conn)
}

/// User `id`, its row locked until the end of the transaction on PostgreSQL (`FOR UPDATE`), so
/// that concurrent changes of one user are applied one after the other, each reading what the
/// last one wrote. (SQLite's writers are serialised already: they take the write lock first.)
pub(super) fn find_user_for_update(conn: &mut DbConnection, id: i64) -> QueryResult<Option<User>> {
    match conn {
        DbConnection::Postgresql(c) => Ok(users::table
            .find(id)
            .for_update()
            .load::<User>(c)?
            .into_iter()
            .next()),
        DbConnection::Sqlite(_) => find_user(conn, id),
    }
}

/// Look a user up by an already-normalized (lowercased) email.
pub fn find_user_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<User>> {
    at_most_one(users::table.filter(users::email.eq(email)), conn)
}

pub(super) fn insert_user(conn: &mut DbConnection, new: &NewUser) -> QueryResult<User> {
    diesel::insert_into(users::table)
        .values(new)
        .get_result(conn)
}

pub(super) fn update_user(
    conn: &mut DbConnection,
    id: i64,
    changes: &UserChanges,
) -> QueryResult<User> {
    if *changes == UserChanges::default() {
        return at_most_one(users::table.find(id), conn)?.ok_or(diesel::result::Error::NotFound);
    }
    diesel::update(users::table.find(id))
        .set(changes)
        .get_result(conn)
}

/// Delete a user; their social accounts, sessions and password go with them (ON DELETE
/// CASCADE).
pub(super) fn delete_user(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(users::table.find(id)).execute(conn)
}

/// The user linked to Kakao account `kakao_id`, and whether Kakao has the account disabled
/// (RISC `account-disabled`), in one query.
pub fn find_user_by_kakao_id(
    conn: &mut DbConnection,
    kakao_id: i64,
) -> QueryResult<Option<(User, bool)>> {
    let found: Option<(User, Option<NaiveDateTime>)> = at_most_one(
        social_accounts::table
            .inner_join(users::table)
            .filter(social_accounts::provider.eq(super::model::Provider::Kakao.as_str()))
            .filter(social_accounts::uid.eq(kakao_id))
            .select((users::all_columns, social_accounts::disabled_at)),
        conn,
    )?;
    Ok(found.map(|(user, disabled)| (user, disabled.is_some())))
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

pub(super) fn insert_social(
    conn: &mut DbConnection,
    new: &NewSocialAccount,
) -> QueryResult<SocialAccount> {
    diesel::insert_into(social_accounts::table)
        .values(new)
        .get_result(conn)
}

/// Remove a social account (the link to Kakao), the user staying.
pub(super) fn delete_social(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(social_accounts::table.find(id)).execute(conn)
}

/// Set or clear the Kakao-side block of a social account.
pub(super) fn set_social_disabled(
    conn: &mut DbConnection,
    id: i64,
    at: Option<NaiveDateTime>,
) -> QueryResult<usize> {
    diesel::update(social_accounts::table.find(id))
        .set(social_accounts::disabled_at.eq(at))
        .execute(conn)
}

/// Record a sign-in through a social account: its latest profile data and time.
pub(super) fn touch_social(
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

/// The break-glass password hash of user `user_id`, if one is set.
pub fn staff_password_hash(conn: &mut DbConnection, user_id: i64) -> QueryResult<Option<String>> {
    at_most_one(
        staff_passwords::table
            .find(user_id)
            .select(staff_passwords::password_hash),
        conn,
    )
}

/// Set (replace) the break-glass password hash of user `user_id`.
pub(super) fn set_staff_password_hash(
    conn: &mut DbConnection,
    user_id: i64,
    hash: &str,
    at: NaiveDateTime,
) -> QueryResult<()> {
    // Delete then insert: upserts are not available on the two-backend connection.
    diesel::delete(staff_passwords::table.find(user_id)).execute(conn)?;
    diesel::insert_into(staff_passwords::table)
        .values((
            staff_passwords::user_id.eq(user_id),
            staff_passwords::password_hash.eq(hash),
            staff_passwords::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}
