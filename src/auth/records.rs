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
    user_agent: &str,
) -> Result<String, DbError> {
    // One transaction: the old session ends exactly when the new one starts.
    db::transaction_with_retry(conn, DbError::is_busy, |conn| {
        start_in(conn, user, lifetime, replacing, user_agent)
    })
}

/// Longest User-Agent kept for the sessions list.
const USER_AGENT_MAX: usize = 256;

fn start_in(
    conn: &mut DbConnection,
    user: &User,
    lifetime: TimeDelta,
    replacing: Option<&str>,
    user_agent: &str,
) -> Result<String, DbError> {
    let user_agent: String = user_agent
        .chars()
        .filter(|c| !c.is_control())
        .take(USER_AGENT_MAX)
        .collect();
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
            user_sessions::user_agent.eq(user_agent),
            user_sessions::last_seen_at.eq(Some(now)),
        ))
        .execute(conn)?;
    Ok(token)
}

/// How stale a session's "last seen" may get before a request updates it: so that the
/// sessions list is right to within a few minutes, and most requests write nothing.
pub const LAST_SEEN_EVERY: TimeDelta = TimeDelta::minutes(5);

/// The active user behind a session token, if the session is live, in one query (plus, at
/// most every `LAST_SEEN_EVERY`, an update of when the session was last seen).
pub fn user_for_token(conn: &mut DbConnection, token: &str) -> QueryResult<Option<User>> {
    let id = hash_token(token);
    let now = db::now();
    let found: Option<(User, Option<NaiveDateTime>)> = at_most_one(
        user_sessions::table
            .inner_join(users::table)
            .filter(user_sessions::id.eq(&id))
            .filter(user_sessions::expires_at.gt(now))
            .filter(user_sessions::epoch.eq(users::session_epoch))
            .filter(users::is_active.eq(true))
            .select((users::all_columns, user_sessions::last_seen_at)),
        conn,
    )?;
    let Some((user, last_seen)) = found else {
        return Ok(None);
    };
    if last_seen.is_none_or(|seen| now - seen >= LAST_SEEN_EVERY) {
        // Idempotent: running it twice (a retry after a lost connection) only sets it again.
        diesel::update(user_sessions::table.find(&id))
            .set(user_sessions::last_seen_at.eq(Some(now)))
            .execute(conn)?;
    }
    Ok(Some(user))
}

/// One signed-in device: a live session record of a user.
#[derive(Queryable, Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The record's id (the hash of the session token: naming it reveals nothing usable).
    pub id: String,
    pub created_at: NaiveDateTime,
    pub last_seen_at: Option<NaiveDateTime>,
    pub user_agent: String,
}

impl Device {
    /// Whether this is the session behind `token`.
    pub fn is(&self, token: &str) -> bool {
        crate::token::constant_time_eq(&self.id, &hash_token(token))
    }
}

/// The live sessions of `user`, the most recently seen first.
pub fn devices(conn: &mut DbConnection, user: &User) -> QueryResult<Vec<Device>> {
    user_sessions::table
        .filter(user_sessions::user_id.eq(user.id))
        .filter(user_sessions::expires_at.gt(db::now()))
        .filter(user_sessions::epoch.eq(user.session_epoch))
        .order((
            // Records never seen since last_seen_at existed go last on both backends
            // (PostgreSQL sorts NULLs first in a descending order, SQLite last).
            user_sessions::last_seen_at.is_null(),
            user_sessions::last_seen_at.desc(),
            user_sessions::created_at.desc(),
        ))
        .select((
            user_sessions::id,
            user_sessions::created_at,
            user_sessions::last_seen_at,
            user_sessions::user_agent,
        ))
        .load(conn)
}

/// Which devices to sign out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Devices<'a> {
    /// The session record with this id.
    One(&'a str),
    /// Every session but the one behind this token (the device asking).
    AllBut(&'a str),
}

/// Sign out devices of user `target_id` on behalf of `actor` (the person, or staff the policy
/// allows), with one audit row through the change service; returns how many ended (0: none
/// matched, and nothing is recorded).
pub fn end_devices(
    conn: &mut DbConnection,
    actor: &crate::users::permissions::Actor,
    target_id: i64,
    which: Devices<'_>,
) -> Result<usize, crate::users::changes::ChangeError> {
    use crate::users::changes::{self, ChangeError};
    db::transaction_with_retry(
        conn,
        |e: &ChangeError| matches!(e, ChangeError::Db(d) if d.is_busy()),
        |conn| {
            let mine = user_sessions::table.filter(user_sessions::user_id.eq(target_id));
            let ended = match which {
                Devices::One(id) => {
                    diesel::delete(mine.filter(user_sessions::id.eq(id))).execute(conn)
                }
                Devices::AllBut(token) => {
                    diesel::delete(mine.filter(user_sessions::id.ne(hash_token(token))))
                        .execute(conn)
                }
            }
            .map_err(DbError::from)?;
            // The audit row (and the permission check, which rolls the delete back on refusal).
            changes::sessions_ended_in(conn, actor, target_id, ended)?;
            Ok(ended)
        },
    )
}

/// End one session (sign-out); returns how many records went (0 or 1).
pub fn end(conn: &mut DbConnection, token: &str) -> QueryResult<usize> {
    diesel::delete(user_sessions::table.find(hash_token(token))).execute(conn)
}

/// What one housekeeping run deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Session records past their expiry.
    pub sessions: usize,
    /// Used login states past their expiry.
    pub login_states: usize,
    /// The run stopped at its bound with rows left (the next run goes on).
    pub more: bool,
}

impl Purged {
    pub fn any(&self) -> bool {
        self.sessions > 0 || self.login_states > 0
    }
}

/// Delete expired session records and expired used login states, in bounded batches
/// (`db::delete_in_batches`). Expired records only, found by their index: a record of an older
/// epoch is dead already (every lookup checks the epoch) and expires within a session lifetime.
pub fn purge_expired(conn: &mut DbConnection) -> Result<Purged, DbError> {
    let now = db::now();
    let (sessions, more_sessions) = db::delete_in_batches(
        conn,
        |conn, limit| {
            user_sessions::table
                .filter(user_sessions::expires_at.le(now))
                .select(user_sessions::id)
                .limit(limit)
                .load::<String>(conn)
        },
        |conn, ids| {
            diesel::delete(user_sessions::table.filter(user_sessions::id.eq_any(ids))).execute(conn)
        },
    )?;
    let (login_states, more_states) = db::delete_in_batches(
        conn,
        |conn, limit| {
            consumed_login_states::table
                .filter(consumed_login_states::expires_at.le(now))
                .select(consumed_login_states::state_hash)
                .limit(limit)
                .load::<String>(conn)
        },
        |conn, hashes| {
            diesel::delete(
                consumed_login_states::table
                    .filter(consumed_login_states::state_hash.eq_any(hashes)),
            )
            .execute(conn)
        },
    )?;
    Ok(Purged {
        sessions,
        login_states,
        more: more_sessions || more_states,
    })
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
