//! `GET/POST /admin/users/new/`: create a user through the change service (provider `local`;
//! the person claims the account at their first Kakao sign-in with this email).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::super::{AdminLayout, admin_actor};
use crate::auth::AppSession;
use crate::state::AppState;
use crate::users::changes::{self, ChangeError};
use crate::users::manager::{CreateUser, EMAIL_TAKEN, FieldErrors, UserManager};
use crate::users::model::{Provider, User};
use crate::users::permissions::{self, Role};
use crate::web::extract::{Csrf, Form, StaffUser};
use crate::web::labels::role_label;
use crate::web::{AppError, Layout, render, see_other};

#[derive(Template)]
#[template(path = "admin/new_user.html")]
struct NewUserPage {
    admin: AdminLayout,
    layout: Layout,
    email: String,
    name: String,
    age: String,
    role: String,
    roles: Vec<(&'static str, &'static str)>,
    errors: FieldErrors,
}

impl NewUserPage {
    fn errors_for(&self, field: &str) -> &[String] {
        self.errors.get(field)
    }
}

/// A role as the form spells it.
fn parse_role(s: &str) -> Option<Role> {
    match s {
        "member" => Some(Role::Member),
        "staff" => Some(Role::Staff),
        "superuser" => Some(Role::Superuser),
        _ => None,
    }
}

/// The roles `actor` may create, as (form value, label).
fn creatable_roles(actor: &User) -> Vec<(&'static str, &'static str)> {
    [
        ("member", Role::Member),
        ("staff", Role::Staff),
        ("superuser", Role::Superuser),
    ]
    .into_iter()
    .filter(|(_, r)| permissions::can_create(actor, *r))
    .map(|(v, r)| (v, role_label(r)))
    .collect()
}

/// `GET /admin/users/new/`.
pub async fn show_new_user_form(
    state: web::Data<AppState>,
    staff: StaffUser,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let actor = staff.user().await?;
    render(
        StatusCode::OK,
        &NewUserPage {
            layout: Layout::new(&state, Some(&actor)),
            admin: AdminLayout::new(&actor, &AppSession(session), "new"),
            email: String::new(),
            name: String::new(),
            age: String::new(),
            role: "member".into(),
            roles: creatable_roles(&actor),
            errors: FieldErrors::default(),
        },
    )
}

#[derive(Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    age: String,
    #[serde(default)]
    role: String,
}

/// `POST /admin/users/new/`.
pub async fn create_user(
    state: web::Data<AppState>,
    staff: StaffUser,
    session: Session,
    Csrf(Form(form)): Csrf<Form<NewUserForm>>,
) -> Result<HttpResponse, AppError> {
    let role = parse_role(&form.role).ok_or_else(|| AppError::bad_request("unknown role"))?;
    let (actor, errors) = match UserManager::parse_age(&form.age) {
        Err(problem) => (staff.user().await?, FieldErrors::single("age", problem)),
        Ok(age) => {
            let input = CreateUser {
                email: form.email.clone(),
                name: Some(form.name.clone()),
                age,
                provider: Provider::Local.as_str().to_owned(),
                ..CreateUser::default()
            };
            let (actor, outcome) = staff
                .run(move |conn, actor| {
                    // The new user's id, or the form's errors.
                    match changes::create_user(conn, &admin_actor(actor), &input, role) {
                        Ok(user) => Ok(Ok(user.id)),
                        Err(ChangeError::Invalid(errors)) => Ok(Err(errors)),
                        Err(ChangeError::DuplicateEmail) => {
                            Ok(Err(FieldErrors::single("email", EMAIL_TAKEN)))
                        }
                        Err(e) => Err(e),
                    }
                })
                .await?;
            match outcome {
                Ok(created) => return Ok(see_other(&format!("/admin/users/{created}/?saved=1"))),
                Err(errors) => (actor, errors),
            }
        }
    };
    render(
        StatusCode::UNPROCESSABLE_ENTITY,
        &NewUserPage {
            layout: Layout::new(&state, Some(&actor)),
            admin: AdminLayout::new(&actor, &AppSession(session), "new"),
            roles: creatable_roles(&actor),
            email: form.email,
            name: form.name,
            age: form.age,
            role: form.role,
            errors,
        },
    )
}
