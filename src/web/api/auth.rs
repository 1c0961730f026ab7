//! Signing in with a Kakao access token (the mobile SDKs), and the CSRF token for cookie
//! clients.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};

use super::dto::{CsrfResponse, KakaoTokenRequest, UserResponse};
use super::ok_json;
use crate::auth::{AppSession, login};
use crate::kakao::KakaoClient;
use crate::state::AppState;
use crate::web::AppError;
use crate::web::extract::{SignInBody, client_address, user_agent};

/// `GET /api/auth/csrf/`: the token for `X-CSRF-Token` (cookie sessions).
#[utoipa::path(get, path = "/api/auth/csrf/", tag = "auth",
    responses((status = 200, body = CsrfResponse)))]
pub async fn get_csrf_token(session: Session) -> HttpResponse {
    ok_json(&CsrfResponse {
        csrf_token: AppSession(session).csrf_token(),
    })
}

/// `POST /api/auth/kakao/`: sign in (or up) with an access token or an ID token from Kakao's
/// mobile SDK, by the same identity rules as the web flow; sets the session cookie.
#[utoipa::path(post, path = "/api/auth/kakao/", request_body = KakaoTokenRequest, tag = "auth",
    responses((status = 200, body = UserResponse), (status = 400), (status = 401), (status = 403),
        (status = 409), (status = 503)))]
pub async fn sign_in_with_kakao_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    kakao: web::Data<KakaoClient>,
    session: Session,
    SignInBody(body): SignInBody<KakaoTokenRequest>,
) -> Result<HttpResponse, AppError> {
    let (session, client) = (AppSession(session), client_address(&req));
    let device = user_agent(&req);
    let signed_in = match (&body.access_token, &body.id_token) {
        (Some(access_token), None) if body.nonce.is_none() => {
            login::sign_in_with_access_token(
                &state,
                &kakao,
                &session,
                &client,
                device,
                access_token,
            )
            .await?
        }
        (None, Some(id_token)) => {
            let nonce = body.nonce.as_deref();
            login::sign_in_with_id_token(&state, &kakao, &session, &client, device, id_token, nonce)
                .await?
        }
        _ => {
            return Err(AppError::bad_request(
                "send either access_token, or id_token (with an optional nonce)",
            ));
        }
    };
    Ok(ok_json(&UserResponse::from(&signed_in.user)))
}
