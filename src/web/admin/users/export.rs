//! `GET /admin/users.csv`: the current filtered list as CSV, streamed a page at a time (memory
//! stays flat at any size; each page is its own trip to the database). UTF-8 with a BOM so
//! spreadsheets read Korean names; times in UTC.

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::db;
use crate::state::AppState;
use crate::users::model::User;
use crate::users::query::{self, Cursor};
use crate::web::AppError;
use crate::web::extract::StaffUser;
use crate::web::list::{ListFace, ListRequest};

const HEADER: [&str; 10] = [
    "id",
    "email",
    "name",
    "age",
    "provider",
    "is_active",
    "is_staff",
    "is_superuser",
    "date_joined",
    "last_login",
];

/// A cell a spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`, a tab or a
/// carriage return, or their fullwidth forms, which some spreadsheets read the same way) is
/// prefixed with `'`.
fn defused(value: &str) -> String {
    const FORMULA_STARTS: [char; 10] = [
        '=', '+', '-', '@', '\t', '\r', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
    ];
    if value.starts_with(FORMULA_STARTS) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

/// CSV text of `rows` (CRLF line ends, quoting by the `csv` crate).
fn csv_text<I, R>(rows: I) -> Result<Bytes, csv::Error>
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = String>,
{
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for row in rows {
        writer.write_record(row)?;
    }
    writer
        .into_inner()
        .map(Bytes::from)
        .map_err(|e| csv::Error::from(e.into_error()))
}

fn user_row(u: &User) -> Vec<String> {
    let time = |t: chrono::NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    vec![
        u.id.to_string(),
        defused(&u.email),
        defused(u.name.as_deref().unwrap_or("")),
        u.age.map(|a| a.to_string()).unwrap_or_default(),
        defused(&u.provider),
        u.is_active.to_string(),
        u.is_staff.to_string(),
        u.is_superuser.to_string(),
        time(u.date_joined),
        u.last_login.map(time).unwrap_or_default(),
    ]
}

/// `GET /admin/users.csv`.
pub async fn export_users(
    req: HttpRequest,
    state: web::Data<AppState>,
    staff: StaffUser,
) -> Result<HttpResponse, AppError> {
    let request = ListRequest::parse(req.query_string(), ListFace::Admin)?;
    let actor = staff.user().await?;
    log::info!("event=admin.users.exported actor_id={}", actor.id);
    enum Step {
        Start,
        After(Option<Cursor>),
        Done,
    }
    let pool = state.pool.clone();
    let stream = futures_util::stream::unfold(Step::Start, move |step| {
        let pool = pool.clone();
        let request = request.clone();
        async move {
            let cursor = match step {
                Step::Done => return None,
                Step::Start => {
                    let head = csv_text([HEADER.map(str::to_owned)]).map(|head| {
                        let mut with_bom = "\u{feff}".as_bytes().to_vec();
                        with_bom.extend_from_slice(&head);
                        Bytes::from(with_bom)
                    });
                    return Some((head.map_err(csv_failed), Step::After(None)));
                }
                Step::After(c) => c,
            };
            // A page per trip: the connection goes back to the pool between pages.
            let page = db::run(&pool, move |conn| {
                request.load(conn, Some(query::MAX_LIMIT), cursor.as_ref())
            })
            .await;
            match page {
                Ok(page) => {
                    let chunk = csv_text(page.users.iter().map(user_row)).map_err(csv_failed);
                    let next = match page.next {
                        Some(c) if !page.users.is_empty() => Step::After(Some(c)),
                        _ => Step::Done,
                    };
                    Some((chunk, next))
                }
                Err(e) => {
                    log::error!("event=admin.users.export_failed error=\"{e}\"");
                    Some((Err(AppError::from(e).into()), Step::Done))
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

fn csv_failed(e: csv::Error) -> actix_web::Error {
    AppError::Internal(format!("csv: {e}")).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(cells: &[&str]) -> String {
        let bytes = csv_text([cells.iter().map(|c| defused(c)).collect::<Vec<_>>()]).expect("csv");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(line(&["plain", "김철수"]), "plain,김철수\r\n");
        assert_eq!(line(&["a,b"]), "\"a,b\"\r\n");
        assert_eq!(line(&["say \"hi\""]), "\"say \"\"hi\"\"\"\r\n");
        assert_eq!(line(&["line\nbreak"]), "\"line\nbreak\"\r\n");
        assert_eq!(line(&["=SUM(A1)"]), "'=SUM(A1)\r\n");
        assert_eq!(line(&["@cmd"]), "'@cmd\r\n");
        assert_eq!(line(&["-1+1,2"]), "\"'-1+1,2\"\r\n");
        assert_eq!(line(&["\u{FF1D}1+1"]), "'\u{FF1D}1+1\r\n");
    }
}
