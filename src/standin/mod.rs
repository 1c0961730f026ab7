//! TEMPORARY local stub of the stand-in API (replaced by the real module on merge).
#![allow(dead_code, unused_variables)]
#[derive(Clone, Debug)]
pub struct StandInConfig {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub app_id: i64,
    pub admin_key: Option<String>,
    pub redirect_uris: Vec<String>,
}
#[derive(Clone)]
pub struct StandIn;
impl StandIn {
    pub fn new(config: StandInConfig) -> Self {
        StandIn
    }
    pub fn configure(&self, cfg: &mut actix_web::web::ServiceConfig) {}
}
