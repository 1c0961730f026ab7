//! The one parser of user-list requests, for the API (`GET /api/users/`) and the admin (the
//! list `/admin/users/` and its CSV export). The same filters with the same names and limits:
//! `provider`, `is_active`, `is_staff`, `is_superuser` (`true`/`false`, or `1`/`0` as the
//! admin's selects send), `ordering`, `cursor`, a search of at most 200 characters. Where
//! the two differ, they follow Django's admin and DRF:
//! - the search parameter is `q` in the admin (Django's admin) and `search` in the API (DRF's
//!   `SearchFilter`);
//! - the default ordering is newest first, `-id`, in the admin (Django's admin orders by
//!   `-pk`) and `id` in the API (DRF follows the model's order, the primary key);
//! - the admin shows a fixed page of 50 rows; the API takes `limit` (50 unless asked, at most
//!   200, as DRF's `LimitOffsetPagination` with a `max_limit`);
//! - a parameter the list does not know is refused by the admin (Django's admin refuses an
//!   unknown lookup too: a mistyped or renamed filter must not quietly list, or export,
//!   everyone) and ignored by the API (as DRF's filters ignore one).

use crate::db::{DbConnection, DbError};
use crate::users::manager::FieldErrors;
use crate::users::model::Provider;
use crate::users::model::User;
use crate::users::query::{self, Cursor, Ordering, UserFilter, UserPage};
use crate::web::error::AppError;
use crate::web::extract::{Caller, Needs};

/// Which list is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFace {
    Admin,
    Api,
}

impl ListFace {
    fn search_param(self) -> &'static str {
        match self {
            ListFace::Admin => "q",
            ListFace::Api => "search",
        }
    }

    fn default_ordering(self) -> Ordering {
        match self {
            ListFace::Admin => Ordering {
                key: query::SortKey::Id,
                descending: true,
            },
            ListFace::Api => Ordering::default(),
        }
    }
}

/// Longest search accepted.
pub const SEARCH_MAX: usize = 200;

/// A parsed list request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRequest {
    pub face: ListFace,
    pub filter: UserFilter,
    pub ordering: Ordering,
    pub cursor: Option<Cursor>,
    pub limit: i64,
}

fn flag(name: &str, value: &str, errors: &mut FieldErrors) -> Option<bool> {
    match value {
        "" => None,
        "true" | "True" | "1" => Some(true),
        "false" | "False" | "0" => Some(false),
        _ => {
            errors.add(name, "true 또는 false여야 합니다.");
            None
        }
    }
}

impl ListRequest {
    /// Parse a query string; every problem is reported, by parameter.
    pub fn parse(query: &str, face: ListFace) -> Result<ListRequest, FieldErrors> {
        Self::parse_with(query, face, &[])
    }

    /// As `parse`, with parameters of the page's own (`also`) let through.
    pub fn parse_with(
        query: &str,
        face: ListFace,
        also: &[&str],
    ) -> Result<ListRequest, FieldErrors> {
        let mut errors = FieldErrors::default();
        let mut search = None;
        let mut raw_ordering = None;
        let mut raw_cursor = None;
        let mut request = ListRequest {
            face,
            filter: UserFilter::default(),
            ordering: face.default_ordering(),
            cursor: None,
            limit: query::DEFAULT_LIMIT,
        };
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let value = value.trim();
            match key.as_ref() {
                k if k == face.search_param() => search = Some(value.to_owned()),
                "provider" => {
                    request.filter.provider = match value {
                        "" => None,
                        p => match Provider::parse(p) {
                            Some(p) => Some(p.as_str().to_owned()),
                            None => {
                                errors.add("provider", "kakao 또는 local이어야 합니다.");
                                None
                            }
                        },
                    }
                }
                "is_active" => request.filter.is_active = flag("is_active", value, &mut errors),
                "is_staff" => request.filter.is_staff = flag("is_staff", value, &mut errors),
                "is_superuser" => {
                    request.filter.is_superuser = flag("is_superuser", value, &mut errors)
                }
                "ordering" => raw_ordering = Some(value.to_owned()),
                "cursor" => raw_cursor = Some(value.to_owned()),
                "limit" if face == ListFace::Api => match value {
                    "" => {}
                    v => match v.parse::<i64>() {
                        Ok(n) if (1..=query::MAX_LIMIT).contains(&n) => request.limit = n,
                        _ => errors.add("limit", "1에서 200 사이의 정수여야 합니다."),
                    },
                },
                k if face == ListFace::Api || also.contains(&k) => {}
                k => errors.add(k, "알 수 없는 조건입니다."),
            }
        }
        if let Some(s) = search.filter(|s| !s.is_empty()) {
            if s.chars().count() > SEARCH_MAX {
                errors.add(
                    face.search_param(),
                    format!("검색어는 {SEARCH_MAX}자 이하여야 합니다."),
                );
            } else {
                request.filter.search = Some(s);
            }
        }
        if let Some(o) = raw_ordering.filter(|o| !o.is_empty()) {
            match Ordering::parse(&o) {
                Some(ordering) => request.ordering = ordering,
                None => errors.add(
                    "ordering",
                    format!("다음 중 하나여야 합니다: {}", Ordering::NAMES.join(", ")),
                ),
            }
        }
        if let Some(c) = raw_cursor.filter(|c| !c.is_empty()) {
            match Cursor::decode(&c, request.ordering) {
                Ok(cursor) => request.cursor = Some(cursor),
                Err(_) => errors.add("cursor", "올바른 커서가 아닙니다."),
            }
        }
        errors.into_result()?;
        Ok(request)
    }

    /// The query string of this list, with `ordering` and `cursor` in place of its own (for
    /// the links to other pages and orderings). Only what differs from the defaults is written.
    pub fn query_with(&self, ordering: Ordering, cursor: Option<&Cursor>) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(s) = &self.filter.search {
            q.append_pair(self.face.search_param(), s);
        }
        if let Some(p) = &self.filter.provider {
            q.append_pair("provider", p);
        }
        for (name, value) in [
            ("is_active", self.filter.is_active),
            ("is_staff", self.filter.is_staff),
            ("is_superuser", self.filter.is_superuser),
        ] {
            if let Some(v) = value {
                q.append_pair(name, if v { "true" } else { "false" });
            }
        }
        if ordering != self.face.default_ordering() {
            q.append_pair("ordering", &ordering.as_param());
        }
        if self.face == ListFace::Api && self.limit != query::DEFAULT_LIMIT {
            q.append_pair("limit", &self.limit.to_string());
        }
        if let Some(c) = cursor {
            q.append_pair("cursor", &c.encode());
        }
        q.finish()
    }

    /// One page of this list, `page_size` rows at most (the request's own `limit` unless the
    /// page fixes another), from `cursor` (the request's own, or an export's next page).
    pub fn load(
        &self,
        conn: &mut DbConnection,
        page_size: Option<i64>,
        cursor: Option<&Cursor>,
    ) -> Result<UserPage, DbError> {
        let limit = page_size.unwrap_or(self.limit);
        query::list_users(conn, &self.filter, self.ordering, cursor, limit).map_err(DbError::from)
    }

    /// One page of this list and `caller`, found in one trip: read without leaving the HTTP
    /// worker (`Caller::read`) when the page is a walk of at most `limit + 1` rows along an
    /// index, whatever the table's size; a search or a filter may read many rows, so it goes
    /// to the blocking pool.
    pub async fn page_for<N: Needs>(
        &self,
        caller: Caller<N>,
        page_size: Option<i64>,
    ) -> Result<(User, UserPage), AppError> {
        let asked = self.clone();
        let load = move |conn: &mut DbConnection, _: &User| {
            asked.load(conn, page_size, asked.cursor.as_ref())
        };
        if self.filter.is_empty() {
            caller.read(load).await
        } else {
            caller.run(load).await
        }
    }

    /// A flag filter as the admin's select shows it: `"1"`, `"0"` or `""`.
    pub fn flag_choice(value: Option<bool>) -> &'static str {
        match value {
            Some(true) => "1",
            Some(false) => "0",
            None => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_faces_read_the_same_filters_with_their_own_defaults() {
        let admin =
            ListRequest::parse("q=kim&is_staff=1&provider=kakao", ListFace::Admin).expect("admin");
        let api = ListRequest::parse("search=kim&is_staff=true&provider=kakao", ListFace::Api)
            .expect("api");
        assert_eq!(admin.filter, api.filter);
        assert_eq!(admin.ordering.as_param(), "-id");
        assert_eq!(api.ordering.as_param(), "id");
        assert_eq!((admin.limit, api.limit), (50, 50));
        assert_eq!(
            ListRequest::parse("limit=7", ListFace::Api)
                .expect("limit")
                .limit,
            7
        );
    }

    #[test]
    fn every_problem_is_reported_by_parameter() {
        let errors = ListRequest::parse(
            "ordering=password&is_active=maybe&provider=x&limit=0",
            ListFace::Api,
        )
        .expect_err("refused");
        for field in ["ordering", "is_active", "provider", "limit"] {
            assert_eq!(errors.get(field).len(), 1, "{field}: {errors}");
        }
        let long = format!("q={}", "가".repeat(201));
        assert_eq!(
            ListRequest::parse(&long, ListFace::Admin)
                .expect_err("too long")
                .get("q")
                .len(),
            1
        );
        assert!(ListRequest::parse("cursor=nope", ListFace::Admin).is_err());
    }

    #[test]
    fn the_admin_refuses_what_it_does_not_know_and_the_api_ignores_it() {
        let old_name = ListRequest::parse("staff=1", ListFace::Admin).expect_err("refused");
        assert_eq!(old_name.get("staff").len(), 1);
        assert!(ListRequest::parse_with("deleted=3", ListFace::Admin, &["deleted"]).is_ok());
        assert!(ListRequest::parse("staff=1&utm_source=x", ListFace::Api).is_ok());
    }

    #[test]
    fn links_keep_the_filters_and_round_trip() {
        let request =
            ListRequest::parse("search=a b&is_active=false&limit=20", ListFace::Api).expect("ok");
        let ordering = Ordering::parse("-email").expect("ordering");
        let link = request.query_with(ordering, None);
        let again = ListRequest::parse(&link, ListFace::Api).expect("round trip");
        assert_eq!(again.filter, request.filter);
        assert_eq!(again.ordering, ordering);
        assert_eq!(again.limit, 20);
    }
}
