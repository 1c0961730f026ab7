//! The admin's user pages: list (search, filters, sorting, keyset pages), detail with edit
//! form and history, actions, delete with confirmation, create, bulk actions and CSV export.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{AdminLayout, check_csrf, parse_role, provider_label, role_label, see_other};
use crate::auth::{AppSession, StaffUser};
use crate::db::{self, DbError};
use crate::error::{AppError, urlencode};
use crate::kakao::KakaoClient;
use crate::users::audit::{self, AuditAction, AuditEntry, AuditFilter};
use crate::users::changes::{ChangeError, UserPatch};
use crate::users::manager::{CreateUser, FieldErrors};
use crate::users::model::{Provider, SocialAccount, User};
use crate::users::permissions::{self, Role, UserField};
use crate::users::query::{self, Cursor, Ordering, UserFilter};
use crate::users::{admin, repo};
use crate::web::pages::format_time;
use crate::web::{Layout, render};

/// Rows per list page.
const PAGE_SIZE: i64 = 50;
/// Most users one bulk action may touch.
const BULK_MAX: usize = 200;

/// `?q=&provider=&active=&staff=&superuser=&ordering=&cursor=` of the list and the export.
#[derive(Deserialize, Default, Clone)]
pub struct ListParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    active: String,
    #[serde(default)]
    staff: String,
    #[serde(default)]
    superuser: String,
    #[serde(default)]
    ordering: String,
    #[serde(default)]
    cursor: String,
    deleted: Option<i64>,
    unlink: Option<String>,
    bulk_ok: Option<usize>,
    bulk_failed: Option<usize>,
}

/// The admin lists newest sign-ups first unless asked otherwise: by id, which grows in the
/// order people join (Django's admin orders by `-pk` too). Id order is the one a search can
/// read straight from the search index, a page at a time, however many users there are.
const DEFAULT_ORDERING: &str = "-id";

fn yes_no(s: &str) -> Result<Option<bool>, AppError> {
    match s {
        "" => Ok(None),
        "1" => Ok(Some(true)),
        "0" => Ok(Some(false)),
        _ => Err(AppError::BadRequest(format!("bad filter value {s:?}"))),
    }
}

impl ListParams {
    fn filter(&self) -> Result<UserFilter, AppError> {
        let provider = match self.provider.as_str() {
            "" => None,
            p => Some(
                Provider::parse(p)
                    .ok_or_else(|| AppError::BadRequest(format!("unknown provider {p:?}")))?
                    .as_str()
                    .to_owned(),
            ),
        };
        if self.q.chars().count() > 200 {
            return Err(AppError::BadRequest("search too long".into()));
        }
        Ok(UserFilter {
            search: Some(self.q.trim().to_owned()).filter(|s| !s.is_empty()),
            provider,
            is_active: yes_no(&self.active)?,
            is_staff: yes_no(&self.staff)?,
            is_superuser: yes_no(&self.superuser)?,
        })
    }

    fn ordering(&self) -> Result<Ordering, AppError> {
        let name = if self.ordering.is_empty() {
            DEFAULT_ORDERING
        } else {
            &self.ordering
        };
        Ordering::parse(name).ok_or_else(|| AppError::BadRequest(format!("bad ordering {name:?}")))
    }

    /// The query string of this list (filters and ordering), with another ordering and cursor.
    fn query_with(&self, ordering: &str, cursor: Option<&str>) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("q", self.q.as_str()),
            ("provider", &self.provider),
            ("active", &self.active),
            ("staff", &self.staff),
            ("superuser", &self.superuser),
            ("ordering", ordering),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", urlencode(v)));
            }
        }
        if let Some(c) = cursor {
            parts.push(format!("cursor={}", urlencode(c)));
        }
        parts.join("&")
    }
}

/// One row of the list.
struct Row {
    id: i64,
    email: String,
    name: String,
    provider: &'static str,
    is_active: bool,
    is_staff: bool,
    is_superuser: bool,
    date_joined: String,
    last_login: String,
}

impl Row {
    fn of(u: &User) -> Row {
        Row {
            id: u.id,
            email: u.email.clone(),
            name: u.name.clone().unwrap_or_default(),
            provider: match u.provider.as_str() {
                "kakao" => "카카오",
                "local" => "관리자 등록",
                _ => "기타",
            },
            is_active: u.is_active,
            is_staff: u.is_staff,
            is_superuser: u.is_superuser,
            date_joined: format_time(Some(u.date_joined)),
            last_login: format_time(u.last_login),
        }
    }
}

/// A sortable column heading.
struct SortLink {
    label: &'static str,
    href: String,
    /// "▲" / "▼" when the list is sorted by this column.
    mark: &'static str,
    aria_sort: &'static str,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    admin: AdminLayout,
    layout: Layout,
    params: ListParams,
    rows: Vec<Row>,
    sort_links: Vec<SortLink>,
    next_href: Option<String>,
    previous_href: Option<String>,
    csv_href: String,
    /// This list's own address, where bulk actions come back to.
    back: String,
    notices: Vec<String>,
    unlink_failed: bool,
}

/// `GET /admin/users/`.
pub async fn list_users(
    state: web::Data<AppState>,
    StaffUser(actor): StaffUser,
    session: Session,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, AppError> {
    let params = params.into_inner();
    let filter = params.filter()?;
    let ordering = params.ordering()?;
    let cursor = match params.cursor.as_str() {
        "" => None,
        c => Some(
            Cursor::decode(c, ordering).map_err(|_| AppError::BadRequest("bad cursor".into()))?,
        ),
    };
    let page = db::run(&state.pool, move |conn| {
        query::list_users(conn, &filter, ordering, cursor.as_ref(), PAGE_SIZE)
            .map_err(DbError::from)
    })
    .await?;
    let current = ordering.as_param();
    let sort_links = [
        ("id", "번호"),
        ("email", "이메일"),
        ("date_joined", "가입일"),
        ("last_login", "최근 로그인"),
    ]
    .into_iter()
    .map(|(key, label)| {
        let sorted_here = ordering.as_param().trim_start_matches('-') == key;
        let next = if sorted_here && !ordering.descending {
            format!("-{key}")
        } else {
            key.to_owned()
        };
        SortLink {
            label,
            href: format!("/admin/users/?{}", params.query_with(&next, None)),
            mark: match (sorted_here, ordering.descending) {
                (false, _) => "",
                (true, false) => "▲",
                (true, true) => "▼",
            },
            aria_sort: match (sorted_here, ordering.descending) {
                (false, _) => "none",
                (true, false) => "ascending",
                (true, true) => "descending",
            },
        }
    })
    .collect();
    let mut notices = Vec::new();
    if let Some(id) = params.deleted {
        notices.push(format!("회원 #{id}을(를) 삭제했습니다."));
        notices.push(
            match params.unlink.as_deref() {
                Some("ok") => "카카오 연결도 끊었습니다.",
                Some("failed") => {
                    "카카오 연결 끊기에 실패했습니다. 카카오 개발자 콘솔에서 직접 연결을 끊으세요."
                }
                Some("no_admin_key") => {
                    "카카오 Admin 키가 설정되지 않아 카카오 연결은 끊지 않았습니다."
                }
                _ => "카카오와 연결되지 않은 회원이었습니다.",
            }
            .to_owned(),
        );
    }
    if let Some(ok) = params.bulk_ok {
        notices.push(format!("{ok}명에게 적용했습니다."));
    }
    if let Some(failed) = params.bulk_failed.filter(|n| *n > 0) {
        notices.push(format!(
            "{failed}명은 권한이 없거나 마지막 최고 관리자여서 건너뛰었습니다."
        ));
    }
    let base_query = params.query_with(&current, None);
    let page_href = |c: &Cursor| {
        format!(
            "/admin/users/?{}",
            params.query_with(&current, Some(&c.encode()))
        )
    };
    let body = UsersPage {
        layout: Layout::new(&state, Some(&actor)),
        admin: AdminLayout::new(&actor, &AppSession(session), "users"),
        rows: page.users.iter().map(Row::of).collect(),
        sort_links,
        next_href: page.next.as_ref().map(page_href),
        previous_href: page.previous.as_ref().map(page_href),
        csv_href: format!("/admin/users.csv?{base_query}"),
        back: format!("/admin/users/?{base_query}"),
        unlink_failed: params.unlink.as_deref() == Some("failed"),
        notices,
        params,
    };
    render(StatusCode::OK, &body)
}

use crate::state::AppState;

/// The edit form's values and errors.
#[derive(Default)]
struct EditForm {
    name: String,
    age: String,
    email: String,
    is_active: bool,
    is_staff: bool,
    is_superuser: bool,
    errors: FieldErrors,
}

impl EditForm {
    fn of(u: &User) -> EditForm {
        EditForm {
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

/// One audit entry as shown.
pub struct HistoryRow {
    pub id: i64,
    pub at: String,
    pub actor_id: Option<i64>,
    pub actor_email: String,
    pub target_id: Option<i64>,
    pub target_email: String,
    pub action: &'static str,
    pub changes: Vec<(String, String, String)>,
}

impl HistoryRow {
    pub fn of(e: &AuditEntry) -> HistoryRow {
        HistoryRow {
            id: e.id,
            at: format_time(Some(e.at)),
            actor_id: e.actor_id,
            actor_email: e.actor_email.clone(),
            target_id: e.target_id,
            target_email: e.target_email.clone(),
            action: AuditAction::parse(&e.action).map_or("기타", AuditAction::label),
            changes: e
                .field_changes()
                .into_iter()
                .map(|c| (c.field, c.old, c.new))
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    admin: AdminLayout,
    layout: Layout,
    user: User,
    role: &'static str,
    provider: String,
    kakao: Option<SocialAccount>,
    connected_at: String,
    kakao_last_login: String,
    date_joined: String,
    last_login: String,
    form: EditForm,
    can_edit_name: bool,
    can_edit_email: bool,
    can_edit_active: bool,
    can_edit_flags: bool,
    can_manage: bool,
    can_delete: bool,
    saved: bool,
    history: Vec<HistoryRow>,
}

impl UserPage {
    fn can_edit_any(&self) -> bool {
        self.can_edit_name || self.can_edit_email || self.can_edit_active || self.can_edit_flags
    }
}

/// Everything the detail page shows about a user, read in one go.
struct Detail {
    user: User,
    kakao: Option<SocialAccount>,
    history: Vec<AuditEntry>,
}

async fn load_detail(state: &AppState, actor: &User, id: i64) -> Result<Detail, AppError> {
    if !permissions::can_view(actor, id) {
        return Err(AppError::NotFound);
    }
    db::run(&state.pool, move |conn| {
        let user = repo::find_user(conn, id)?.ok_or(AppError::NotFound)?;
        let kakao = repo::find_social_for_user(conn, id, Provider::Kakao.as_str())?;
        let history = audit::list(
            conn,
            &AuditFilter {
                target_id: Some(id),
                ..AuditFilter::default()
            },
            None,
            50,
        )?
        .entries;
        Ok(Detail {
            user,
            kakao,
            history,
        })
    })
    .await
}

fn user_page(
    state: &AppState,
    actor: &User,
    session: &AppSession,
    detail: Detail,
    form: Option<EditForm>,
) -> UserPage {
    let Detail {
        user,
        kakao,
        history,
    } = detail;
    let fields = permissions::editable_fields(actor, &user);
    UserPage {
        layout: Layout::new(state, Some(actor)),
        admin: AdminLayout::new(actor, session, "users"),
        role: role_label(permissions::Role::of(&user)),
        provider: provider_label(&user.provider).to_owned(),
        connected_at: format_time(kakao.as_ref().map(|k| k.connected_at)),
        kakao_last_login: format_time(kakao.as_ref().map(|k| k.last_login)),
        date_joined: format_time(Some(user.date_joined)),
        last_login: format_time(user.last_login),
        form: form.unwrap_or_else(|| EditForm::of(&user)),
        can_edit_name: fields.contains(&UserField::Name),
        can_edit_email: fields.contains(&UserField::Email),
        can_edit_active: fields.contains(&UserField::IsActive),
        can_edit_flags: fields.contains(&UserField::IsSuperuser),
        can_manage: permissions::can_manage(actor, &user),
        can_delete: permissions::can_delete(actor),
        saved: false,
        history: history.iter().map(HistoryRow::of).collect(),
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
    StaffUser(actor): StaffUser,
    session: Session,
    path: web::Path<i64>,
    query: web::Query<SavedQuery>,
) -> Result<HttpResponse, AppError> {
    let detail = load_detail(&state, &actor, path.into_inner()).await?;
    let mut page = user_page(&state, &actor, &AppSession(session), detail, None);
    page.saved = query.saved.is_some();
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct EditRequest {
    #[serde(default)]
    csrf_token: String,
    name: Option<String>,
    age: Option<String>,
    email: Option<String>,
    is_active: Option<String>,
    is_staff: Option<String>,
    is_superuser: Option<String>,
}

/// `POST /admin/users/{id}/`: save the edit form; field errors come back in the form (422).
pub async fn update_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    StaffUser(actor): StaffUser,
    session: Session,
    path: web::Path<i64>,
    form: web::Form<EditRequest>,
) -> Result<HttpResponse, AppError> {
    let session = AppSession(session);
    check_csrf(&req, &state, &session, &form.csrf_token, Some(actor.id))?;
    let id = path.into_inner();
    let detail = load_detail(&state, &actor, id).await?;
    let allowed = permissions::editable_fields(&actor, &detail.user);
    let mut patch = UserPatch::default();
    let mut errors = FieldErrors::default();
    if let Some(name) = &form.name {
        patch.name = Some(Some(name.clone()));
    }
    if let Some(age) = &form.age {
        patch.age = Some(match age.trim() {
            "" => None,
            text => match text.parse::<i32>() {
                Ok(n) => Some(n),
                Err(_) => {
                    errors.add("age", "나이는 숫자로 입력하세요.");
                    None
                }
            },
        });
    }
    if let Some(email) = &form.email {
        patch.email = Some(email.clone());
    }
    // An unticked checkbox is not sent, so a flag the actor may edit is false when absent. A
    // flag they may not edit is passed on only when sent, for the service to refuse.
    for (field, sent, slot) in [
        (UserField::IsActive, &form.is_active, &mut patch.is_active),
        (UserField::IsStaff, &form.is_staff, &mut patch.is_staff),
        (
            UserField::IsSuperuser,
            &form.is_superuser,
            &mut patch.is_superuser,
        ),
    ] {
        if allowed.contains(&field) || sent.is_some() {
            *slot = Some(sent.is_some());
        }
    }
    let entered = EditForm {
        name: form.name.clone().unwrap_or_default(),
        age: form.age.clone().unwrap_or_default(),
        email: form
            .email
            .clone()
            .unwrap_or_else(|| detail.user.email.clone()),
        is_active: form.is_active.is_some(),
        is_staff: form.is_staff.is_some(),
        is_superuser: form.is_superuser.is_some(),
        errors: FieldErrors::default(),
    };
    if !errors.is_empty() {
        let form = EditForm { errors, ..entered };
        let page = user_page(&state, &actor, &session, detail, Some(form));
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let who = actor.clone();
    let result = db::run(&state.pool, move |conn| {
        Ok::<_, ChangeError>(admin::update_user(
            conn,
            &who,
            id,
            &patch,
            AuditAction::Update,
        ))
    })
    .await?;
    match result {
        Ok((_, changes)) => {
            log::info!(
                "event=admin.user.updated actor_id={} user_id={id} fields={}",
                actor.id,
                changes
                    .iter()
                    .map(|c| c.field)
                    .collect::<Vec<_>>()
                    .join(",")
            );
            Ok(see_other(&format!("/admin/users/{id}/?saved=1")))
        }
        Err(ChangeError::Invalid(errors)) => {
            let page = user_page(
                &state,
                &actor,
                &session,
                detail,
                Some(EditForm { errors, ..entered }),
            );
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(ChangeError::DuplicateEmail) => {
            let mut errors = FieldErrors::default();
            errors.add("email", "이미 다른 회원이 쓰는 이메일입니다.");
            let page = user_page(
                &state,
                &actor,
                &session,
                detail,
                Some(EditForm { errors, ..entered }),
            );
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf_token: String,
}

async fn set_active(
    req: HttpRequest,
    state: web::Data<AppState>,
    actor: User,
    session: Session,
    id: i64,
    form: TokenForm,
    active: bool,
) -> Result<HttpResponse, AppError> {
    check_csrf(
        &req,
        &state,
        &AppSession(session),
        &form.csrf_token,
        Some(actor.id),
    )?;
    let patch = UserPatch {
        is_active: Some(active),
        ..UserPatch::default()
    };
    let action = if active {
        AuditAction::Activate
    } else {
        AuditAction::Deactivate
    };
    let who = actor.clone();
    db::run(&state.pool, move |conn| {
        admin::update_user(conn, &who, id, &patch, action).map_err(AppError::from)
    })
    .await?;
    log::info!(
        "event=admin.user.{} actor_id={} user_id={id}",
        action.as_str(),
        actor.id
    );
    Ok(see_other(&format!("/admin/users/{id}/?saved=1")))
}

/// `POST /admin/users/{id}/activate/`.
pub async fn activate_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    StaffUser(actor): StaffUser,
    session: Session,
    path: web::Path<i64>,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, AppError> {
    set_active(
        req,
        state,
        actor,
        session,
        path.into_inner(),
        form.into_inner(),
        true,
    )
    .await
}

/// `POST /admin/users/{id}/deactivate/` (ends the user's sessions too).
pub async fn deactivate_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    StaffUser(actor): StaffUser,
    session: Session,
    path: web::Path<i64>,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, AppError> {
    set_active(
        req,
        state,
        actor,
        session,
        path.into_inner(),
        form.into_inner(),
        false,
    )
    .await
}

/// `POST /admin/users/{id}/sign-out/`: revoke every session of the user.
pub async fn sign_out_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    StaffUser(actor): StaffUser,
    session: Session,
    path: web::Path<i64>,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, AppError> {
    check_csrf(
        &req,
        &state,
        &AppSession(session),
        &form.csrf_token,
        Some(actor.id),
    )?;
    let id = path.into_inner();
    if !permissions::can_view(&actor, id) {
        return Err(AppError::NotFound);
    }
    let who = actor.clone();
    let ended = db::run(&state.pool, move |conn| {
        admin::sign_out_everywhere(conn, &who, id).map_err(AppError::from)
    })
    .await?;
    log::info!(
        "event=admin.user.sign_out_everywhere actor_id={} user_id={id} sessions={ended}",
        actor.id
    );
    Ok(see_other(&format!("/admin/users/{id}/?saved=1")))
}

#[derive(Template)]
#[template(path = "admin/delete.html")]
struct DeletePage {
    admin: AdminLayout,
    layout: Layout,
    user: User,
    has_kakao: bool,
}

/// `GET /admin/users/{id}/delete/`: the confirmation page (superusers).
pub async fn confirm_delete_user(
    state: web::Data<AppState>,
    StaffUser(actor): StaffUser,
    session: Session,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    if !permissions::can_delete(&actor) {
        return Err(AppError::Forbidden);
    }
    let detail = load_detail(&state, &actor, path.into_inner()).await?;
    render(
        StatusCode::OK,
        &DeletePage {
            layout: Layout::new(&state, Some(&actor)),
            admin: AdminLayout::new(&actor, &AppSession(session), "users"),
            has_kakao: detail.kakao.is_some(),
            user: detail.user,
        },
    )
}

/// `POST /admin/users/{id}/delete/`: delete, then unlink at Kakao with the admin key. A
/// failure at Kakao is logged and shown: the user is gone here either way.
pub async fn delete_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    kakao: web::Data<KakaoClient>,
    StaffUser(actor): StaffUser,
    session: Session,
    path: web::Path<i64>,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, AppError> {
    check_csrf(
        &req,
        &state,
        &AppSession(session),
        &form.csrf_token,
        Some(actor.id),
    )?;
    let id = path.into_inner();
    let who = actor.clone();
    let deleted = db::run(&state.pool, move |conn| {
        admin::delete_user(conn, &who, id).map_err(AppError::from)
    })
    .await?;
    log::info!(
        "event=admin.user.deleted actor_id={} user_id={id}",
        actor.id
    );
    let unlink = match deleted.kakao_id {
        None => "none",
        Some(kakao_id) => match kakao.unlink_user(kakao_id).await {
            Ok(Some(_)) => "ok",
            Ok(None) => "no_admin_key",
            Err(e) => {
                log::warn!(
                    "event=kakao.unlink.failed user_id={id} kakao_id={kakao_id} code={} error=\"{e}\"",
                    e.log_code()
                );
                "failed"
            }
        },
    };
    Ok(see_other(&format!(
        "/admin/users/?deleted={id}&unlink={unlink}"
    )))
}

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
pub async fn new_user(
    state: web::Data<AppState>,
    StaffUser(actor): StaffUser,
    session: Session,
) -> Result<HttpResponse, AppError> {
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
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    age: String,
    #[serde(default)]
    role: String,
}

/// `POST /admin/users/new/`: create through `UserManager` (provider `local`; the person
/// claims the account at their first Kakao sign-in with this email).
pub async fn create_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    StaffUser(actor): StaffUser,
    session: Session,
    form: web::Form<NewUserForm>,
) -> Result<HttpResponse, AppError> {
    let session = AppSession(session);
    check_csrf(&req, &state, &session, &form.csrf_token, Some(actor.id))?;
    let form = form.into_inner();
    let role = parse_role(&form.role).ok_or_else(|| AppError::BadRequest("role".into()))?;
    let mut errors = FieldErrors::default();
    let age = match form.age.trim() {
        "" => None,
        t => match t.parse::<i32>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.add("age", "나이는 숫자로 입력하세요.");
                None
            }
        },
    };
    let result = if errors.is_empty() {
        let input = CreateUser {
            email: form.email.clone(),
            name: Some(form.name.clone()),
            age,
            provider: Provider::Local.as_str().to_owned(),
            ..CreateUser::default()
        };
        let who = actor.clone();
        db::run(&state.pool, move |conn| {
            Ok::<_, ChangeError>(admin::create_user(conn, &who, &input, role))
        })
        .await?
    } else {
        Err(ChangeError::Invalid(errors))
    };
    let errors = match result {
        Ok(user) => {
            log::info!(
                "event=admin.user.created actor_id={} user_id={}",
                actor.id,
                user.id
            );
            return Ok(see_other(&format!("/admin/users/{}/?saved=1", user.id)));
        }
        Err(ChangeError::Invalid(errors)) => errors,
        Err(ChangeError::DuplicateEmail) => {
            let mut errors = FieldErrors::default();
            errors.add("email", "이미 다른 회원이 쓰는 이메일입니다.");
            errors
        }
        Err(e) => return Err(e.into()),
    };
    render(
        StatusCode::UNPROCESSABLE_ENTITY,
        &NewUserPage {
            layout: Layout::new(&state, Some(&actor)),
            admin: AdminLayout::new(&actor, &session, "new"),
            roles: creatable_roles(&actor),
            email: form.email,
            name: form.name,
            age: form.age,
            role: form.role,
            errors,
        },
    )
}

/// `POST /admin/users/bulk/`: `action` (activate, deactivate, sign_out) on every `ids`. Each
/// user goes through the services on their own; the ones refused (no permission, the last
/// superuser) are skipped and counted.
pub async fn bulk_update_users(
    req: HttpRequest,
    state: web::Data<AppState>,
    StaffUser(actor): StaffUser,
    session: Session,
    body: Bytes,
) -> Result<HttpResponse, AppError> {
    let mut token = String::new();
    let mut action = String::new();
    let mut back = String::new();
    let mut ids = Vec::new();
    // Parsed by hand: `ids` repeats, which `web::Form` cannot collect.
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "csrf_token" => token = v.into_owned(),
            "action" => action = v.into_owned(),
            "back" => back = v.into_owned(),
            "ids" => ids.push(
                v.parse::<i64>()
                    .map_err(|_| AppError::BadRequest("ids".into()))?,
            ),
            _ => {}
        }
    }
    check_csrf(&req, &state, &AppSession(session), &token, Some(actor.id))?;
    if ids.len() > BULK_MAX {
        return Err(AppError::BadRequest("too many users selected".into()));
    }
    ids.sort_unstable();
    ids.dedup();
    #[derive(Clone, Copy)]
    enum Bulk {
        Active(bool),
        SignOut,
    }
    let bulk = match action.as_str() {
        "activate" => Bulk::Active(true),
        "deactivate" => Bulk::Active(false),
        "sign_out" => Bulk::SignOut,
        _ => return Err(AppError::BadRequest("unknown bulk action".into())),
    };
    let who = actor.clone();
    let count = ids.len();
    let (ok, failed) = db::run(&state.pool, move |conn| {
        let (mut ok, mut failed) = (0usize, 0usize);
        for id in ids {
            let outcome = match bulk {
                Bulk::Active(active) => admin::update_user(
                    conn,
                    &who,
                    id,
                    &UserPatch {
                        is_active: Some(active),
                        ..UserPatch::default()
                    },
                    if active {
                        AuditAction::Activate
                    } else {
                        AuditAction::Deactivate
                    },
                )
                .map(|_| ()),
                Bulk::SignOut => admin::sign_out_everywhere(conn, &who, id).map(|_| ()),
            };
            match outcome {
                Ok(()) => ok += 1,
                Err(ChangeError::Db(e)) => return Err(AppError::Db(e)),
                Err(_) => failed += 1,
            }
        }
        Ok((ok, failed))
    })
    .await?;
    log::info!(
        "event=admin.bulk action={action} actor_id={} selected={count} ok={ok} skipped={failed}",
        actor.id
    );
    // Only a list address of our own is a place to go back to.
    let back = match crate::auth::safe_next(&back) {
        Some(b) if b.starts_with("/admin/users/?") || b == "/admin/users/" => b,
        _ => "/admin/users/?".to_owned(),
    };
    let sep = if back.ends_with('?') || back.ends_with('&') {
        ""
    } else if back.contains('?') {
        "&"
    } else {
        "?"
    };
    Ok(see_other(&format!(
        "{back}{sep}bulk_ok={ok}&bulk_failed={failed}"
    )))
}

/// A CSV field: quoted when needed, and text that a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@`, tab, CR first) is prefixed with `'`.
fn csv_field(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r'])
        || guarded.starts_with(' ')
        || guarded.ends_with(' ')
    {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

const CSV_HEADER: &str =
    "id,email,name,age,provider,is_active,is_staff,is_superuser,date_joined,last_login\r\n";

fn csv_rows(users: &[User]) -> String {
    let time = |t: chrono::NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut out = String::new();
    for u in users {
        let fields = [
            u.id.to_string(),
            csv_field(&u.email),
            csv_field(u.name.as_deref().unwrap_or("")),
            u.age.map(|a| a.to_string()).unwrap_or_default(),
            csv_field(&u.provider),
            u.is_active.to_string(),
            u.is_staff.to_string(),
            u.is_superuser.to_string(),
            time(u.date_joined),
            u.last_login.map(time).unwrap_or_default(),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// `GET /admin/users.csv`: the current filtered list, streamed a page at a time (memory stays
/// flat at any size). Times are UTC; a UTF-8 BOM lets spreadsheets read Korean names.
pub async fn export_users(
    state: web::Data<AppState>,
    StaffUser(actor): StaffUser,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, AppError> {
    let filter = params.filter()?;
    let ordering = params.ordering()?;
    log::info!("event=admin.users.exported actor_id={}", actor.id);
    enum Step {
        Start,
        After(Option<Cursor>),
        Done,
    }
    let pool = state.pool.clone();
    let stream = futures_util::stream::unfold(Step::Start, move |step| {
        let pool = pool.clone();
        let filter = filter.clone();
        async move {
            let cursor = match step {
                Step::Done => return None,
                Step::Start => {
                    let head = format!("\u{feff}{CSV_HEADER}");
                    return Some((Ok(Bytes::from(head)), Step::After(None)));
                }
                Step::After(c) => c,
            };
            let page = db::run(&pool, move |conn| {
                query::list_users(conn, &filter, ordering, cursor.as_ref(), query::MAX_LIMIT)
                    .map_err(DbError::from)
            })
            .await;
            match page {
                Ok(page) => {
                    let chunk = Bytes::from(csv_rows(&page.users));
                    let next = match page.next {
                        Some(c) if !page.users.is_empty() => Step::After(Some(c)),
                        _ => Step::Done,
                    };
                    Some((Ok::<_, actix_web::Error>(chunk), next))
                }
                Err(e) => {
                    log::error!("event=admin.users.export_failed error=\"{e}\"");
                    Some((Err(AppError::Db(e).into()), Step::Done))
                }
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"users.csv\"",
        ))
        .streaming(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("@cmd"), "'@cmd");
        assert_eq!(csv_field("-1+1,2"), "\"'-1+1,2\"");
        assert_eq!(csv_field("김철수"), "김철수");
    }
}
