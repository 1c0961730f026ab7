//! The OpenAPI 3 document of the API, generated from the handlers' and bodies' annotations.

use actix_web::HttpResponse;
use utoipa::OpenApi;

use super::{auth, dto, users};

/// Every API operation and schema; a test checks each one is routed and nothing else is.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "kakao-login users API",
        description = "Users, permissions and sign-in with a Kakao access token. Authenticate \
                       with the session cookie (unsafe methods also need `X-CSRF-Token`, from \
                       `GET /api/auth/csrf/`) or with `Authorization: Bearer <Kakao access token>`."
    ),
    paths(
        users::list_users,
        users::create_user,
        users::get_user,
        users::patch_user,
        users::put_user,
        users::delete_user,
        users::get_me,
        users::update_me,
        users::delete_me,
        auth::get_csrf_token,
        auth::sign_in_with_kakao_token,
    ),
    components(schemas(
        dto::UserResponse,
        dto::UserListResponse,
        dto::UpdateUserRequest,
        dto::UpdateMeRequest,
        dto::CreateUserRequest,
        dto::KakaoTokenRequest,
        dto::DeletedResponse,
        dto::CsrfResponse,
        dto::ErrorResponse,
    ))
)]
pub struct ApiDoc;

/// `GET /api/openapi.json`.
pub async fn openapi_json() -> HttpResponse {
    match ApiDoc::openapi().to_json() {
        Ok(json) => HttpResponse::Ok()
            .content_type("application/json")
            .body(json),
        Err(e) => {
            actix_web::ResponseError::error_response(&crate::web::AppError::Internal(e.to_string()))
        }
    }
}
