//! The JSON API under `/api/`: the users (`users`), signing in with a Kakao access token and
//! the CSRF token (`auth`), and the OpenAPI document. Errors are `AppError`'s JSON face; the
//! caller is found by the shared extractors (a bearer token is accepted here).

pub mod auth;
pub mod dto;
pub mod openapi;
pub mod users;

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use super::AppError;

/// A 200 JSON answer that no cache keeps.
pub fn ok_json<T: serde::Serialize>(value: &T) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(value)
}

/// Register `/api/...`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api")
            .route("/openapi.json", web::get().to(openapi::openapi_json))
            .route(
                "/auth/kakao/",
                web::post().to(auth::sign_in_with_kakao_token),
            )
            .route("/auth/csrf/", web::get().to(auth::get_csrf_token))
            .route("/users/", web::get().to(users::list_users))
            .route("/users/", web::post().to(users::create_user))
            .route("/users/me/", web::get().to(users::get_me))
            .route("/users/me/", web::patch().to(users::update_me))
            .route("/users/me/", web::delete().to(users::delete_me))
            .route("/users/{id:\\d+}/", web::get().to(users::get_user))
            .route("/users/{id:\\d+}/", web::patch().to(users::patch_user))
            .route("/users/{id:\\d+}/", web::put().to(users::put_user))
            .route("/users/{id:\\d+}/", web::delete().to(users::delete_user))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(AppError::NotFound)
            })),
    );
}
