//! `/teams`: every team's and every service's five numbers side by side, each with its tier,
//! its change against the previous window and its last 12 weeks, sortable by any column
//! through links. A row links to the overview filtered to it.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use flowmeter_core::{Scope, Window};
use flowmeter_engine::DoraReport;
use flowmeter_engine::metrics::Point;

use crate::error::ApiError;
use crate::pages::{Frame, Order, SortLink, hours, percent, tier_name};
use crate::params::{Filters, encode};
use crate::state::{AppState, View};
use crate::svg;

/// The columns, by the name `sort` takes, with whether they first sort descending (the best
/// first: more deployments, less of everything else).
const COLUMNS: [(&str, &str, bool); 6] = [
    ("name", "Name", false),
    ("deployment-frequency", "Deployment frequency", true),
    ("lead-time", "Lead time", false),
    ("change-failure-rate", "Change failure rate", false),
    ("recovery-time", "Recovery time", false),
    ("rework-rate", "Rework rate", false),
];

/// Weeks in a row's small trends.
const TREND_WEEKS: i64 = 12;

/// One number of a row.
pub struct Cell {
    pub value: String,
    pub tier: &'static str,
    pub change: String,
    pub spark: String,
    /// What the row sorts on (`None`: no data, always last).
    sort: Option<f64>,
}

pub struct Row {
    pub name: String,
    pub href: String,
    pub cells: Vec<Cell>,
}

/// One of the page's two tables.
pub struct Table {
    pub caption: &'static str,
    pub rows: Vec<Row>,
    /// What the page says when the table has no rows.
    pub empty: &'static str,
}

#[derive(Template)]
#[template(path = "teams.html")]
struct TeamsPage {
    frame: Frame,
    headers: Vec<SortLink>,
    tables: Vec<Table>,
    days: i64,
}

/// How a number moved against the previous window, in a few words.
pub(crate) fn change(now: Option<f64>, before: Option<f64>, lower_is_better: bool) -> String {
    match (now, before) {
        (Some(now), Some(before)) if before != 0.0 => {
            let change = (now - before) / before * 100.0;
            if change.abs() < 0.5 {
                return "unchanged".into();
            }
            let better = (change < 0.0) == lower_is_better;
            format!(
                "{}{:.0}% ({})",
                if change > 0.0 { "+" } else { "−" },
                change.abs(),
                if better { "better" } else { "worse" }
            )
        }
        (Some(0.0), Some(_)) => "unchanged".into(),
        (Some(_), Some(_)) => "from 0".into(),
        _ => "nothing to compare".into(),
    }
}

/// The row of one scope: its five numbers now, against the previous window, and weekly.
fn row(
    view: &View,
    name: &str,
    scope: Scope,
    window: Window,
    href: String,
) -> Result<Row, ApiError> {
    let s = &view.snapshot;
    let now = s.dora(window, &scope)?;
    let before = s.dora(window.previous(), &scope)?;
    let start = window.to - chrono::Duration::weeks(TREND_WEEKS);
    let weekly = s.series(start, TREND_WEEKS, 7, &scope)?;
    Ok(Row {
        name: name.to_string(),
        href,
        cells: cells(&now, &before, &weekly),
    })
}

fn cells(now: &DoraReport, before: &DoraReport, weekly: &[Point]) -> Vec<Cell> {
    let spark = |f: fn(&Point) -> Option<f64>, what: &str| {
        svg::sparkline(
            &weekly.iter().map(f).collect::<Vec<_>>(),
            &format!("{what}, last {TREND_WEEKS} weeks"),
        )
    };
    let (df, lt, cfr, rt, rw) = (
        &now.deployment_frequency,
        &now.lead_time,
        &now.change_failure_rate,
        &now.recovery_time,
        &now.rework_rate,
    );
    vec![
        Cell {
            value: format!("{:.2} / week", df.per_week),
            tier: tier_name(df.tier),
            change: change(
                Some(df.per_week),
                Some(before.deployment_frequency.per_week),
                false,
            ),
            spark: spark(|p| Some(p.deployments as f64), "deployments per week"),
            sort: Some(df.per_week),
        },
        Cell {
            value: hours(lt.median_hours),
            tier: tier_name(lt.tier),
            change: change(lt.median_hours, before.lead_time.median_hours, true),
            spark: spark(
                |p| p.lead_time_median_hours,
                "median lead time per week, hours",
            ),
            sort: lt.median_hours,
        },
        Cell {
            value: percent(cfr.rate),
            tier: tier_name(cfr.tier),
            change: change(cfr.rate, before.change_failure_rate.rate, true),
            spark: spark(Point::change_failure_rate, "change failure rate per week"),
            sort: cfr.rate,
        },
        Cell {
            value: hours(rt.median_hours),
            tier: tier_name(rt.tier),
            change: change(rt.median_hours, before.recovery_time.median_hours, true),
            spark: spark(
                |p| p.recovery_median_hours,
                "median recovery time per week, hours",
            ),
            sort: rt.median_hours,
        },
        Cell {
            value: percent(rw.rate),
            tier: "no tier table",
            change: change(rw.rate, before.rework_rate.rate, true),
            spark: spark(Point::rework_rate, "rework rate per week"),
            sort: rw.rate,
        },
    ]
}

/// Sorts rows by a column (`None`: by name), values without data last whatever the order.
fn sort_rows(rows: &mut [Row], column: Option<usize>, descending: bool) {
    rows.sort_by(|a, b| {
        let by_name = a.name.to_lowercase().cmp(&b.name.to_lowercase());
        let ordering = match column {
            None => by_name,
            Some(i) => match (a.cells[i].sort, b.cells[i].sort) {
                (Some(x), Some(y)) => x.total_cmp(&y).then(by_name),
                (Some(_), None) => return std::cmp::Ordering::Less,
                (None, Some(_)) => return std::cmp::Ordering::Greater,
                (None, None) => return by_name,
            },
        };
        if descending {
            ordering.reverse()
        } else {
            ordering
        }
    });
}

pub async fn page(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Result<Response, ApiError> {
    let order = Order::of(&filters, &COLUMNS)?;
    // Column 0 is the name; the metrics' cells follow it.
    let (column, descending) = (order.column.checked_sub(1), order.descending);
    let view = state.view();
    let window = filters.window(&view, false)?;
    let query = filters.query_for(&window);
    let key = format!("/teams?{query}{}", order.query());
    if let Some(html) = view.cached(&key) {
        return Ok(Html(html).into_response());
    }
    state
        .clone()
        .heavy(move || {
            // The page compares teams and services: their own filters are not applied.
            let base = Filters {
                from: Some(window.from.to_string()),
                to: Some(window.to.to_string()),
                ..Filters::default()
            };
            let base_query = base.query_for(&window);
            let mut teams = Vec::new();
            for team in &view.snapshot.config().teams {
                teams.push(row(
                    &view,
                    &team.name,
                    Scope {
                        team: Some(team.name.clone()),
                        ..Scope::default()
                    },
                    window,
                    format!("/?{base_query}&team={}", encode(&team.name)),
                )?);
            }
            let mut services = Vec::new();
            for service in &view.snapshot.prepared.services {
                services.push(row(
                    &view,
                    service,
                    Scope {
                        service: Some(service.clone()),
                        ..Scope::default()
                    },
                    window,
                    format!("/?{base_query}&service={}", encode(service)),
                )?);
            }
            sort_rows(&mut teams, column, descending);
            sort_rows(&mut services, column, descending);
            let page = TeamsPage {
                frame: Frame::new("teams", &view, &base, &window),
                headers: order.links("/teams", &query, &COLUMNS),
                tables: vec![
                    Table {
                        caption: "Teams",
                        rows: teams,
                        empty: "No teams are configured: list them under [[teams]] in flowmeter.toml.",
                    },
                    Table {
                        caption: "Services",
                        rows: services,
                        empty: "No service has deployments yet.",
                    },
                ],
                days: window.days(),
            };
            let html = page.render().map_err(ApiError::internal)?;
            view.remember(key, html.clone());
            Ok(Html(html).into_response())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, value: Option<f64>) -> Row {
        Row {
            name: name.into(),
            href: String::new(),
            cells: vec![Cell {
                value: String::new(),
                tier: "",
                change: String::new(),
                spark: String::new(),
                sort: value,
            }],
        }
    }

    #[test]
    fn rows_sort_by_a_column_with_no_data_last_either_way() {
        let names = |rows: &[Row]| rows.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        let mut rows = vec![
            row("b", Some(2.0)),
            row("c", None),
            row("a", Some(2.0)),
            row("d", Some(1.0)),
        ];
        sort_rows(&mut rows, Some(0), false);
        assert_eq!(names(&rows), ["d", "a", "b", "c"]);
        sort_rows(&mut rows, Some(0), true);
        assert_eq!(names(&rows), ["b", "a", "d", "c"]);
        sort_rows(&mut rows, None, false);
        assert_eq!(names(&rows), ["a", "b", "c", "d"]);
    }

    #[test]
    fn changes_say_which_way_is_better() {
        assert_eq!(change(Some(12.0), Some(10.0), true), "+20% (worse)");
        assert_eq!(change(Some(8.0), Some(10.0), true), "−20% (better)");
        assert_eq!(change(Some(12.0), Some(10.0), false), "+20% (better)");
        assert_eq!(change(Some(10.02), Some(10.0), false), "unchanged");
        assert_eq!(change(Some(3.0), Some(0.0), false), "from 0");
        assert_eq!(change(None, Some(1.0), true), "nothing to compare");
    }
}
