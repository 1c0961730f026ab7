//! kakao-login: a server-side 카카오 로그인 service (actix-web, Diesel, Askama).

pub mod standin;
