//! Through HTTP, mirroring `src/web/`: the Kakao login pages, the other pages, sessions, the
//! admin, the API, and the doors into the change service.

mod admin;
mod api;
mod devices;
mod doors;
mod inputs;
mod kakao_account;
mod kakao_failures;
mod kakao_flow;
mod oidc;
mod pages;
mod sessions;
mod trips;
mod webhooks;
