//! User and social-account rows, and the inserts/changesets that write them.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{social_accounts, users};

/// A row of `users`. Never serialized directly: API bodies and pages have their own types.
#[derive(Queryable, Identifiable, Debug, Clone, PartialEq, Eq)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: Option<String>,
    pub age: Option<i32>,
    pub provider: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    #[diesel(deserialize_as = crate::db::time::Time)]
    pub date_joined: NaiveDateTime,
    #[diesel(deserialize_as = crate::db::time::MaybeTime)]
    pub last_login: Option<NaiveDateTime>,
    /// Bumping this ends every session of the user (see `users::changes`); a session record is
    /// live only while its epoch equals this.
    pub session_epoch: i64,
}

impl User {
    /// What to call the person on a page: their name, else their email.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.email)
    }
}

/// A validated user about to be inserted: only `UserManager` builds one, only `changes`
/// inserts it (the fields are private to `users`).
#[derive(Insertable, Debug, Clone)]
#[diesel(table_name = users)]
pub struct NewUser {
    pub(in crate::users) email: String,
    pub(in crate::users) name: Option<String>,
    pub(in crate::users) age: Option<i32>,
    pub(in crate::users) provider: String,
    pub(in crate::users) is_active: bool,
    pub(in crate::users) is_staff: bool,
    pub(in crate::users) is_superuser: bool,
    pub(in crate::users) date_joined: NaiveDateTime,
    /// Set only for a person who signs up by signing in.
    pub(in crate::users) last_login: Option<NaiveDateTime>,
}

impl NewUser {
    pub fn email(&self) -> &str {
        &self.email
    }
    pub fn is_staff(&self) -> bool {
        self.is_staff
    }
    pub fn is_superuser(&self) -> bool {
        self.is_superuser
    }
}

/// Changes to a user; `None` leaves a column as it is. Written only by `changes`.
#[derive(AsChangeset, Debug, Clone, Default, PartialEq, Eq)]
#[diesel(table_name = users)]
pub(in crate::users) struct UserChanges {
    pub email: Option<String>,
    pub name: Option<Option<String>>,
    pub age: Option<Option<i32>>,
    pub is_active: Option<bool>,
    pub is_staff: Option<bool>,
    pub is_superuser: Option<bool>,
    pub last_login: Option<Option<NaiveDateTime>>,
    pub session_epoch: Option<i64>,
}

/// How a user signed up (the `provider` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// Through 카카오 로그인.
    Kakao,
    /// Made by an operator (CLI, admin, API) before any Kakao sign-in.
    Local,
}

impl Provider {
    pub const ALL: [Provider; 2] = [Provider::Kakao, Provider::Local];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Kakao => "kakao",
            Provider::Local => "local",
        }
    }

    pub fn parse(s: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// A row of `social_accounts`: one Kakao identity linked to one user.
#[derive(Queryable, Identifiable, Associations, Debug, Clone, PartialEq, Eq)]
#[diesel(table_name = social_accounts, belongs_to(User))]
pub struct SocialAccount {
    pub id: i64,
    pub user_id: i64,
    pub provider: String,
    pub uid: i64,
    pub extra_data: String,
    pub connected_at: NaiveDateTime,
    pub last_login: NaiveDateTime,
    /// Set while Kakao says the Kakao account is disabled (RISC `account-disabled`): no
    /// sign-in through this link until `account-enabled`.
    pub disabled_at: Option<NaiveDateTime>,
}

#[derive(Insertable, Debug, Clone)]
#[diesel(table_name = social_accounts)]
pub(in crate::users) struct NewSocialAccount {
    pub user_id: i64,
    pub provider: String,
    pub uid: i64,
    pub extra_data: String,
    pub connected_at: NaiveDateTime,
    pub last_login: NaiveDateTime,
}
