//! `GET/POST /admin/users/{id}/`: one user's facts, the edit form (only the fields the staff
//! member may change), the action buttons and the user's history.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::super::audit::HistoryRow;
use super::super::{AdminLayout, admin_actor};
use crate::auth::AppSession;
use crate::db;
use crate::kakao::KakaoClient;
use crate::state::AppState;
use crate::users::changes::{self, ChangeError, UserPatch};
use crate::users::kakao_events;
use crate::users::lookup::{self, UserDetail};
use crate::users::manager::{EMAIL_TAKEN, FieldErrors, UserManager};
use crate::users::model::{SocialAccount, User};
use crate::users::permissions::{self, Role, UserField};
use crate::web::admin::webhooks::DeliveryRow;
use crate::web::consents::{self, Consents};
use crate::web::devices::DeviceRow;
use crate::web::extract::{Csrf, Form, StaffUser};
use crate::web::labels::{format_time, provider_label, role_label};
use crate::web::{AppError, Layout, render, see_other};

/// The edit form's values and errors.
#[derive(Default)]
struct EditValues {
    name: String,
    age: String,
    email: String,
    is_active: bool,
    is_staff: bool,
    is_superuser: bool,
    errors: FieldErrors,
}

impl EditValues {
    fn of(u: &User) -> EditValues {
        EditValues {
            name: u.name.clone().unwrap_or_default(),
            age: u.age.map(|a| a.to_string()).unwrap_or_default(),
            email: u.email.clone(),
            is_active: u.is_active,
            is_staff: u.is_staff,
            is_superuser: u.is_superuser,
            errors: FieldErrors::default(),
        }
    }

    fn errors_for(&self, field: &str) -> &[String] {
        self.errors.get(field)
    }
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    admin: AdminLayout,
    layout: Layout,
    user: User,
    role: &'static str,
    provider: &'static str,
    kakao: Option<SocialAccount>,
    connected_at: String,
    kakao_last_login: String,
    date_joined: String,
    last_login: String,
    form: EditValues,
    can_edit_name: bool,
    can_edit_email: bool,
    can_edit_active: bool,
    can_edit_flags: bool,
    can_manage: bool,
    can_delete: bool,
    saved: bool,
    history: Vec<HistoryRow>,
    /// Kakao consent items (with an admin key configured).
    consents: Option<Consents>,
    devices: Vec<DeviceRow>,
    deliveries: Vec<DeliveryRow>,
}

impl UserPage {
    fn can_edit_any(&self) -> bool {
        self.can_edit_name || self.can_edit_email || self.can_edit_active || self.can_edit_flags
    }
}

/// What the detail page shows besides the user's record: their signed-in devices and the
/// webhook deliveries that named them.
struct Activity {
    devices: Vec<crate::auth::records::Device>,
    deliveries: Vec<kakao_events::Delivery>,
}

/// How many deliveries the user's page lists.
const DELIVERIES_SHOWN: i64 = 20;

/// The user's record, history, devices and deliveries, if `actor` may see them (on the page's
/// one trip to the database).
fn load_page(conn: &mut db::DbConnection, actor: &User, id: i64) -> Result<Loaded, db::DbError> {
    let detail = lookup::user_detail(conn, &admin_actor(actor), id)?;
    let devices = crate::auth::records::devices(conn, &detail.user)?;
    let filter = kakao_events::DeliveryFilter {
        user_id: Some(id),
        ..Default::default()
    };
    let deliveries = kakao_events::list(conn, &filter, None, DELIVERIES_SHOWN)?.deliveries;
    Ok((
        detail,
        Activity {
            devices,
            deliveries,
        },
    ))
}

/// What the page shows of a user.
type Loaded = (UserDetail, Activity);

fn user_page(
    state: &AppState,
    actor: &User,
    session: &AppSession,
    (detail, activity): Loaded,
    form: Option<EditValues>,
) -> UserPage {
    let UserDetail {
        user,
        kakao,
        history,
    } = detail;
    let fields = permissions::editable_fields(actor, &user);
    UserPage {
        layout: Layout::new(state, Some(actor)),
        admin: AdminLayout::new(actor, session, "users"),
        role: role_label(Role::of(&user)),
        provider: provider_label(&user.provider),
        connected_at: format_time(kakao.as_ref().map(|k| k.connected_at)),
        kakao_last_login: format_time(kakao.as_ref().map(|k| k.last_login)),
        date_joined: format_time(Some(user.date_joined)),
        last_login: format_time(user.last_login),
        form: form.unwrap_or_else(|| EditValues::of(&user)),
        can_edit_name: fields.contains(&UserField::Name),
        can_edit_email: fields.contains(&UserField::Email),
        can_edit_active: fields.contains(&UserField::IsActive),
        can_edit_flags: fields.contains(&UserField::IsSuperuser),
        can_manage: permissions::can_manage(actor, &user),
        can_delete: permissions::can_delete(actor),
        saved: false,
        history: history.iter().map(HistoryRow::of).collect(),
        consents: None,
        devices: activity
            .devices
            .iter()
            .map(|d| DeviceRow::of(d, None))
            .collect(),
        deliveries: activity.deliveries.iter().map(DeliveryRow::of).collect(),
        kakao,
        user,
    }
}

#[derive(Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

/// `GET /admin/users/{id}/`.
pub async fn show_user(
    state: web::Data<AppState>,
    kakao: web::Data<KakaoClient>,
    staff: StaffUser,
    session: Session,
    path: web::Path<i64>,
    query: web::Query<SavedQuery>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let (actor, loaded) = staff
        .run(move |conn, actor| load_page(conn, actor, id))
        .await?;
    let kakao_id = loaded.0.kakao.as_ref().map(|k| k.uid);
    let mut page = user_page(&state, &actor, &AppSession(session), loaded, None);
    page.saved = query.saved.is_some();
    page.consents = consents::for_user(&state, &kakao, page.user.id, Some(kakao_id)).await?;
    render(StatusCode::OK, &page)
}

#[derive(Deserialize, Clone)]
pub struct EditForm {
    name: Option<String>,
    age: Option<String>,
    email: Option<String>,
    is_active: Option<String>,
    is_staff: Option<String>,
    is_superuser: Option<String>,
}

impl EditForm {
    /// The change this form asks for. An unticked checkbox is not sent, so a flag the actor
    /// may change (`allowed`) is false when absent; a flag they may not is passed on only when
    /// sent, for the service to refuse.
    fn patch(&self, age: Option<Option<i32>>, allowed: &[UserField]) -> UserPatch {
        let flag = |field: UserField, sent: &Option<String>| {
            (allowed.contains(&field) || sent.is_some()).then_some(sent.is_some())
        };
        UserPatch {
            name: self.name.clone().map(Some),
            age,
            email: self.email.clone(),
            is_active: flag(UserField::IsActive, &self.is_active),
            is_staff: flag(UserField::IsStaff, &self.is_staff),
            is_superuser: flag(UserField::IsSuperuser, &self.is_superuser),
        }
    }
}

/// `POST /admin/users/{id}/`: save the edit form through the change service; field errors
/// come back in the form (422).
pub async fn update_user(
    state: web::Data<AppState>,
    staff: StaffUser,
    session: Session,
    path: web::Path<i64>,
    Csrf(Form(form)): Csrf<Form<EditForm>>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    // Saved, or the errors and what the page shows again (in the same trip).
    let (actor, (errors, (detail, activity))) =
        match form.age.as_deref().map(UserManager::parse_age).transpose() {
            Err(problem) => {
                let mut errors = changes::field_problems(&form.patch(None, &[]));
                errors.add("age", problem);
                staff
                    .run(move |conn, actor| {
                        Ok::<_, db::DbError>((errors.clone(), load_page(conn, actor, id)?))
                    })
                    .await?
            }
            Ok(age) => {
                let sent = form.clone();
                let (actor, refused) = staff
                    .run(move |conn, actor| {
                        let patch = |_: &User, allowed: &[UserField]| sent.patch(age, allowed);
                        let errors =
                            match changes::update_user_with(conn, &admin_actor(actor), id, patch) {
                                Ok(_) => return Ok(None),
                                Err(ChangeError::Invalid(errors)) => errors,
                                Err(ChangeError::DuplicateEmail) => {
                                    FieldErrors::single("email", EMAIL_TAKEN)
                                }
                                Err(e) => return Err(e),
                            };
                        Ok(Some((errors, load_page(conn, actor, id)?)))
                    })
                    .await?;
                let Some(refused) = refused else {
                    return Ok(see_other(&format!("/admin/users/{id}/?saved=1")));
                };
                (actor, refused)
            }
        };
    // Show the form again, as it was filled in.
    let entered = EditValues {
        name: form.name.clone().unwrap_or_default(),
        age: form.age.clone().unwrap_or_default(),
        email: form
            .email
            .clone()
            .unwrap_or_else(|| detail.user.email.clone()),
        is_active: form.is_active.is_some(),
        is_staff: form.is_staff.is_some(),
        is_superuser: form.is_superuser.is_some(),
        errors,
    };
    let page = user_page(
        &state,
        &actor,
        &AppSession(session),
        (detail, activity),
        Some(entered),
    );
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}
