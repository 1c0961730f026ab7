//! `/admin/`: user counts and sign-ups per day, drawn on the server as inline SVG with text
//! labels, titles and a data table, so the chart needs no script and no colour to be read.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDate;

use super::AdminLayout;
use crate::auth::AppSession;
use crate::db::{self, DbError};
use crate::state::AppState;
use crate::users::stats::{self, Counts};
use crate::web::extract::StaffUser;
use crate::web::{AppError, Layout, render};

/// Drawing area of a chart, in SVG user units.
const CHART_WIDTH: i64 = 720;
const PLOT_HEIGHT: i64 = 160;
const TOP: i64 = 20;
const LEFT: i64 = 36;

/// One day's bar.
pub struct Bar {
    pub x: i64,
    pub y: i64,
    pub width: i64,
    pub height: i64,
    pub date: String,
    pub count: i64,
    /// The count written above the bar, when there is room for it.
    pub show_count: bool,
    /// The date written under the bar, for some of the bars.
    pub show_date: bool,
    pub short_date: String,
}

/// A sign-ups chart and its data.
pub struct Chart {
    pub id: &'static str,
    pub title: String,
    pub summary: String,
    pub width: i64,
    pub height: i64,
    pub plot_top: i64,
    pub plot_bottom: i64,
    pub left: i64,
    pub max: i64,
    pub bars: Vec<Bar>,
}

impl Chart {
    /// Lay out bars for `(day, count)` oldest first.
    pub fn new(id: &'static str, days: &[(NaiveDate, i64)]) -> Chart {
        let n = days.len().max(1) as i64;
        let max = days.iter().map(|(_, c)| *c).max().unwrap_or(0);
        let total: i64 = days.iter().map(|(_, c)| *c).sum();
        let slot = (CHART_WIDTH - LEFT) / n;
        let width = (slot * 4 / 5).max(1);
        // Label every day when the bars are wide enough, else about one day a week.
        let date_every = if slot >= 20 { 5 } else { 15 };
        let bars = days
            .iter()
            .enumerate()
            .map(|(i, (day, count))| {
                let height = if max == 0 {
                    0
                } else {
                    (count * PLOT_HEIGHT) / max
                };
                Bar {
                    x: LEFT + i as i64 * slot,
                    y: TOP + PLOT_HEIGHT - height,
                    width,
                    height,
                    date: day.format("%Y-%m-%d").to_string(),
                    count: *count,
                    show_count: slot >= 20 && *count > 0,
                    show_date: (n - 1 - i as i64) % date_every == 0,
                    short_date: day.format("%m-%d").to_string(),
                }
            })
            .collect();
        Chart {
            id,
            title: format!("최근 {n}일 일별 가입자 수"),
            summary: format!("최근 {n}일 동안 {total}명 가입, 하루 최대 {max}명"),
            width: CHART_WIDTH,
            height: TOP + PLOT_HEIGHT + 30,
            plot_top: TOP,
            plot_bottom: TOP + PLOT_HEIGHT,
            left: LEFT,
            max,
            bars,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    admin: AdminLayout,
    layout: Layout,
    counts: Counts,
    charts: Vec<Chart>,
}

/// `GET /admin/`.
pub async fn show_dashboard(
    state: web::Data<AppState>,
    staff: StaffUser,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let now = db::now();
    // One grouped query over the longest window; the shorter chart is its tail.
    let (actor, dashboard) = staff
        .run(move |conn, _| stats::dashboard(conn, now, 90).map_err(DbError::from))
        .await?;
    let (counts, days) = (dashboard.counts, dashboard.days);
    let last_30 = &days[days.len().saturating_sub(30)..];
    render(
        StatusCode::OK,
        &DashboardPage {
            layout: Layout::new(&state, Some(&actor)),
            admin: AdminLayout::new(&actor, &AppSession(session), "dashboard"),
            counts,
            charts: vec![
                Chart::new("chart-30", last_30),
                Chart::new("chart-90", &days),
            ],
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_busiest_day_and_fit_the_width() {
        let start = NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
        let days: Vec<(NaiveDate, i64)> = (0..30)
            .map(|i| (start + chrono::TimeDelta::days(i), i % 4))
            .collect();
        let chart = Chart::new("c", &days);
        assert_eq!(chart.bars.len(), 30);
        assert_eq!(chart.max, 3);
        let tallest = chart.bars.iter().map(|b| b.height).max().unwrap_or(0);
        assert_eq!(tallest, PLOT_HEIGHT);
        assert!(chart.bars.iter().all(|b| b.x + b.width <= CHART_WIDTH));
        assert!(
            chart
                .bars
                .iter()
                .all(|b| b.y + b.height == TOP + PLOT_HEIGHT)
        );
        assert!(chart.bars.last().is_some_and(|b| b.show_date));
        let empty = Chart::new("e", &[(start, 0)]);
        assert_eq!(empty.bars[0].height, 0);
    }
}
