//! Each person's signed-in devices: `/profile/sessions/` (their own: sign out one, or all
//! others) and the list on the admin's user detail (staff end one). Every ending goes through
//! `auth::records::end_devices`, which audits it.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::extract::{Csrf, CurrentUser, Form};
use super::labels::format_time;
use super::{AppError, Layout, render, see_other};
use crate::auth::AppSession;
use crate::auth::records::{self, Device, Devices};
use crate::db;
use crate::state::AppState;
use crate::users::permissions::{Actor, Door};

/// One device as the pages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    pub id: String,
    pub browser: String,
    pub os: String,
    pub started: String,
    pub last_seen: String,
    /// The device showing the page.
    pub this_device: bool,
}

impl DeviceRow {
    /// `device` as shown to the holder of `current_token` (if any).
    pub fn of(device: &Device, current_token: Option<&str>) -> DeviceRow {
        let (browser, os) = describe(&device.user_agent);
        DeviceRow {
            id: device.id.clone(),
            browser,
            os,
            started: format_time(Some(device.created_at)),
            last_seen: format_time(device.last_seen_at),
            this_device: current_token.is_some_and(|t| device.is(t)),
        }
    }
}

/// Browser (with its major version) and OS from a User-Agent, in words.
pub fn describe(user_agent: &str) -> (String, String) {
    const UNKNOWN: &str = "UNKNOWN";
    let parsed = woothee::parser::Parser::new().parse(user_agent);
    let Some(ua) = parsed else {
        return ("알 수 없는 브라우저".into(), "알 수 없는 기기".into());
    };
    let browser = if ua.name == UNKNOWN {
        "알 수 없는 브라우저".to_owned()
    } else {
        match ua
            .version
            .split('.')
            .next()
            .filter(|v| !v.is_empty() && *v != UNKNOWN)
        {
            Some(major) => format!("{} {major}", ua.name),
            None => ua.name.to_owned(),
        }
    };
    let os = if ua.os == UNKNOWN {
        "알 수 없는 기기".to_owned()
    } else {
        ua.os.to_owned()
    };
    (browser, os)
}

#[derive(Template)]
#[template(path = "pages/sessions.html")]
struct SessionsPage {
    layout: Layout,
    csrf_token: String,
    devices: Vec<DeviceRow>,
    ended: Option<usize>,
}

#[derive(Deserialize)]
pub struct SessionsQuery {
    ended: Option<usize>,
}

/// `GET /profile/sessions/`.
pub async fn show_sessions(
    state: web::Data<AppState>,
    caller: CurrentUser,
    session: Session,
    query: web::Query<SessionsQuery>,
) -> Result<HttpResponse, AppError> {
    let session = AppSession(session);
    let current = session.token();
    let (user, devices) = caller
        .run(|conn, owner| records::devices(conn, owner).map_err(db::DbError::from))
        .await?;
    render(
        StatusCode::OK,
        &SessionsPage {
            layout: Layout::new(&state, Some(&user)),
            csrf_token: session.csrf_token(),
            devices: devices
                .iter()
                .map(|d| DeviceRow::of(d, current.as_deref()))
                .collect(),
            ended: query.ended,
        },
    )
}

#[derive(Deserialize)]
pub struct SignOutForm {
    /// A device's id, or absent with `others=1`.
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    others: Option<String>,
}

/// `POST /profile/sessions/`: sign out one device (`device=`) or every other one
/// (`others=1`).
pub async fn sign_out_devices(
    caller: CurrentUser,
    session: Session,
    Csrf(Form(form)): Csrf<Form<SignOutForm>>,
) -> Result<HttpResponse, AppError> {
    let current = AppSession(session)
        .token()
        .ok_or_else(|| AppError::bad_request("no session"))?;
    let which = match (form.device, form.others.as_deref()) {
        (Some(device), None) if is_device_id(&device) => DeviceChoice::One(device),
        (None, Some("1")) => DeviceChoice::Others,
        _ => return Err(AppError::bad_request("send device=<id> or others=1")),
    };
    let (_, ended) = caller
        .run(move |conn, user| {
            let which = match &which {
                DeviceChoice::One(device) => Devices::One(device),
                DeviceChoice::Others => Devices::AllBut(&current),
            };
            let actor = Actor::User(user.clone(), Door::Profile);
            records::end_devices(conn, &actor, user.id, which)
        })
        .await?;
    Ok(see_other(&format!("/profile/sessions/?ended={ended}")))
}

/// An owned `Devices`, to move into the database closure.
enum DeviceChoice {
    One(String),
    Others,
}

/// A session record's id: 64 lowercase hex digits.
pub fn is_device_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_described_in_words() {
        let (b, o) = describe(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        );
        assert_eq!(b, "Chrome 131");
        assert!(o.starts_with("Windows"), "{o}");
        let (b, o) = describe(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        );
        assert!(b.starts_with("Safari"), "{b}");
        assert_eq!(o, "iPhone");
        let (b, o) = describe("");
        assert_eq!(
            (b.as_str(), o.as_str()),
            ("알 수 없는 브라우저", "알 수 없는 기기")
        );
        assert!(is_device_id(&"a1".repeat(32)));
        assert!(!is_device_id("a1") && !is_device_id(&"A1".repeat(32)));
    }
}
