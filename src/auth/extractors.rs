//! Extractors that put "who is signed in" into handler signatures. The user is re-read from
//! the database on every request (one query joining the session record), so sign-out,
//! revocation and deactivation take effect at once, even with cookie sessions.

use std::future::Future;
use std::pin::Pin;

use actix_session::SessionExt;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::AppSession;
use crate::db::{self, DbError};
use crate::error::AppError;
use crate::state::AppState;
use crate::users::model::User;
use crate::users::service;

/// The signed-in, active user; pages without one redirect to the login page with `next`.
pub struct CurrentUser(pub User);

/// The signed-in user, if any.
pub struct MaybeUser(pub Option<User>);

#[derive(Clone)]
struct CachedUser(Option<User>);

/// Find the signed-in user of this request (once per request).
pub async fn signed_in_user(req: &HttpRequest) -> Result<Option<User>, AppError> {
    if let Some(cached) = req.extensions().get::<CachedUser>() {
        return Ok(cached.0.clone());
    }
    let session = AppSession(req.get_session());
    let user = match session.token() {
        None => None,
        Some(token) => {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| AppError::Internal("AppState missing".into()))?;
            let user = db::run(&state.pool, move |conn| {
                service::user_for_session(conn, &token).map_err(DbError::from)
            })
            .await
            .map_err(AppError::Db)?;
            if user.is_none() {
                // Revoked, expired, or the user was deactivated: the cookie is worthless now.
                session.forget_sign_in();
            }
            user
        }
    };
    req.extensions_mut().insert(CachedUser(user.clone()));
    Ok(user)
}

/// The path and query of this request, for `next`.
pub fn here(req: &HttpRequest) -> String {
    match req.uri().path_and_query() {
        Some(pq) => pq.as_str().to_owned(),
        None => req.path().to_owned(),
    }
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match signed_in_user(&req).await? {
                Some(user) => Ok(CurrentUser(user)),
                None => Err(AppError::LoginRequired { next: here(&req) }),
            }
        })
    }
}

impl FromRequest for MaybeUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(MaybeUser(signed_in_user(&req).await?)) })
    }
}

/// An active staff member (superusers are staff), by the permission policy. Anonymous people
/// go to the login page with `next`; signed-in people without the permission get the 403 page.
pub struct StaffUser(pub User);

impl FromRequest for StaffUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match signed_in_user(&req).await? {
                Some(user) if crate::users::permissions::can_use_admin(&user) => {
                    Ok(StaffUser(user))
                }
                Some(user) => {
                    log::warn!(
                        "event=admin.forbidden user_id={} path={}",
                        user.id,
                        req.path()
                    );
                    Err(AppError::Forbidden)
                }
                None => Err(AppError::LoginRequired { next: here(&req) }),
            }
        })
    }
}
