//! `GET /admin/users/`: search, filters, sortable columns, keyset pages and the notices of
//! what was just done (a deletion, a bulk action).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::super::AdminLayout;
use crate::auth::AppSession;
use crate::state::AppState;
use crate::users::model::User;
use crate::users::query::{Cursor, Ordering, SortKey};
use crate::web::extract::StaffUser;
use crate::web::labels::{format_time, provider_label};
use crate::web::list::{ListFace, ListRequest};
use crate::web::{AppError, Layout, render};

/// Rows per page (the admin shows a fixed page; see `web::list`).
const PAGE_SIZE: i64 = 50;

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
            provider: provider_label(&u.provider),
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

/// The filter form's current values, as its inputs show them.
struct Filters {
    q: String,
    provider: String,
    is_active: &'static str,
    is_staff: &'static str,
    is_superuser: &'static str,
    ordering: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    admin: AdminLayout,
    layout: Layout,
    filters: Filters,
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

/// What the last action left to say (from the redirect that brought the browser here).
#[derive(Deserialize)]
pub struct Notices {
    deleted: Option<i64>,
    unlink: Option<String>,
    bulk_ok: Option<usize>,
    bulk_failed: Option<usize>,
}

impl Notices {
    /// The parameters these come in (the list parser lets them through).
    const KEYS: &'static [&'static str] = &["deleted", "unlink", "bulk_ok", "bulk_failed"];

    fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(id) = self.deleted {
            lines.push(format!("회원 #{id}을(를) 삭제했습니다."));
            lines.push(
                match self.unlink.as_deref() {
                    Some("unlinked") => "카카오 연결도 끊었습니다.",
                    Some("failed") => {
                        "카카오 연결 끊기에 실패했습니다. 카카오 개발자 콘솔에서 직접 연결을 끊으세요."
                    }
                    Some("not_configured") => {
                        "카카오 Admin 키가 설정되지 않아 카카오 연결은 끊지 않았습니다."
                    }
                    _ => "카카오와 연결되지 않은 회원이었습니다.",
                }
                .to_owned(),
            );
        }
        if let Some(ok) = self.bulk_ok {
            lines.push(format!("{ok}명에게 적용했습니다."));
        }
        if let Some(failed) = self.bulk_failed.filter(|n| *n > 0) {
            lines.push(format!(
                "{failed}명은 권한이 없거나 마지막 최고 관리자여서 건너뛰었습니다."
            ));
        }
        lines
    }
}

fn sort_links(request: &ListRequest) -> Vec<SortLink> {
    let current = request.ordering;
    [
        (SortKey::Id, "번호"),
        (SortKey::Email, "이메일"),
        (SortKey::DateJoined, "가입일"),
        (SortKey::LastLogin, "최근 로그인"),
    ]
    .into_iter()
    .map(|(key, label)| {
        let here = current.key == key;
        // A second click on the sorted column turns it round.
        let next = Ordering {
            key,
            descending: here && !current.descending,
        };
        let (mark, aria_sort) = match (here, current.descending) {
            (false, _) => ("", "none"),
            (true, false) => ("▲", "ascending"),
            (true, true) => ("▼", "descending"),
        };
        SortLink {
            label,
            href: format!("/admin/users/?{}", request.query_with(next, None)),
            mark,
            aria_sort,
        }
    })
    .collect()
}

/// `GET /admin/users/`.
pub async fn list_users(
    req: HttpRequest,
    state: web::Data<AppState>,
    staff: StaffUser,
    session: Session,
    notices: web::Query<Notices>,
) -> Result<HttpResponse, AppError> {
    let request = ListRequest::parse_with(req.query_string(), ListFace::Admin, Notices::KEYS)?;
    let (actor, page) = request.page_for(staff, Some(PAGE_SIZE)).await?;
    let page_href = |c: &Cursor| {
        format!(
            "/admin/users/?{}",
            request.query_with(request.ordering, Some(c))
        )
    };
    let here = request.query_with(request.ordering, None);
    let filter = &request.filter;
    let body = UsersPage {
        layout: Layout::new(&state, Some(&actor)),
        admin: AdminLayout::new(&actor, &AppSession(session), "users"),
        filters: Filters {
            q: filter.search.clone().unwrap_or_default(),
            provider: filter.provider.clone().unwrap_or_default(),
            is_active: ListRequest::flag_choice(filter.is_active),
            is_staff: ListRequest::flag_choice(filter.is_staff),
            is_superuser: ListRequest::flag_choice(filter.is_superuser),
            ordering: request.ordering.as_param(),
        },
        rows: page.users.iter().map(Row::of).collect(),
        sort_links: sort_links(&request),
        next_href: page.next.as_ref().map(page_href),
        previous_href: page.previous.as_ref().map(page_href),
        csv_href: format!("/admin/users.csv?{here}"),
        back: format!("/admin/users/?{here}"),
        unlink_failed: notices.unlink.as_deref() == Some("failed"),
        notices: notices.lines(),
    };
    render(StatusCode::OK, &body)
}
