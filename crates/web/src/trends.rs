//! `/trends/{metric}`: one metric's weekly series for the chosen scope over the last 6, 12 or
//! 24 months, as a chart with labelled axes, units, the tier bands behind it and the current
//! window shaded, and the same numbers as a table under it (the accessible fallback) and as CSV
//! (`format=csv`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use flowmeter_engine::metrics::Point;
use flowmeter_engine::tiers::Thresholds;

use crate::error::ApiError;
use crate::pages::{Frame, hours, percent, tier_name};
use crate::params::{Filters, encode};
use crate::state::AppState;
use crate::svg::{self, Band};

/// How a metric's weekly values are measured and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// Deployments in the week.
    Count,
    /// Hours (written as hours or days, as everywhere in the product).
    Hours,
    /// A share of deployments.
    Rate,
}

/// One metric of the trend pages.
struct Metric {
    slug: &'static str,
    title: &'static str,
    /// What a week's value is, in words.
    per_week: &'static str,
    unit: Unit,
    value: fn(&Point) -> Option<f64>,
    /// What the week's value counts over ("12 changes").
    over: fn(&Point) -> String,
    thresholds: fn(&flowmeter_engine::TierTable) -> Option<&Thresholds>,
}

const METRICS: [Metric; 5] = [
    Metric {
        slug: "deployment-frequency",
        title: "Deployment frequency",
        per_week: "deployments in the week",
        unit: Unit::Count,
        value: |p| Some(p.deployments as f64),
        over: |p| format!("{} deployments", p.deployments),
        thresholds: |t| Some(&t.deployment_frequency),
    },
    Metric {
        slug: "lead-time",
        title: "Lead time for changes",
        per_week: "median lead time of the changes the week's deployments delivered",
        unit: Unit::Hours,
        value: |p| p.lead_time_median_hours,
        over: |p| format!("{} changes", p.changes),
        thresholds: |t| Some(&t.lead_time),
    },
    Metric {
        slug: "change-failure-rate",
        title: "Change failure rate",
        per_week: "share of the week's deployments that failed",
        unit: Unit::Rate,
        value: Point::change_failure_rate,
        over: |p| format!("{} of {} deployments", p.failed, p.deployments),
        thresholds: |t| Some(&t.change_failure_rate),
    },
    Metric {
        slug: "recovery-time",
        title: "Recovery time",
        per_week: "median recovery time of the incidents resolved in the week",
        unit: Unit::Hours,
        value: |p| p.recovery_median_hours,
        over: |p| format!("{} incidents", p.incidents_resolved),
        thresholds: |t| Some(&t.recovery_time),
    },
    Metric {
        slug: "rework-rate",
        title: "Rework rate",
        per_week: "share of the week's deployments that were rework",
        unit: Unit::Rate,
        value: Point::rework_rate,
        over: |p| format!("{} of {} deployments", p.rework, p.deployments),
        thresholds: |_| None,
    },
];

/// The months a trend may cover.
const MONTHS: [u32; 3] = [6, 12, 24];

/// A week of the table.
pub struct WeekLine {
    pub week: String,
    pub value: String,
    pub over: String,
}

/// A link to the same trend over another span.
pub struct Span {
    pub months: u32,
    pub href: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "trend.html")]
struct TrendPage {
    frame: Frame,
    slug: &'static str,
    title: &'static str,
    per_week: &'static str,
    months: u32,
    spans: Vec<Span>,
    /// The other numbers' trends: (title, link, whether it is this one).
    others: Vec<(&'static str, String, bool)>,
    chart: String,
    unit_note: String,
    weeks: Vec<WeekLine>,
    csv: String,
}

/// The value as the table writes it.
fn written(unit: Unit, value: Option<f64>) -> String {
    match (unit, value) {
        (_, None) => "no data".into(),
        (Unit::Count, Some(v)) => format!("{v:.0}"),
        (Unit::Hours, v) => hours(v),
        (Unit::Rate, v) => percent(v),
    }
}

/// The chart's axis: hours below two days at the top, else days (as `hours` writes them);
/// rates in percent; counts as they are. Returns the scale to divide values by and the label.
fn axis(unit: Unit, max: f64) -> (f64, &'static str) {
    match unit {
        Unit::Count => (1.0, "deployments per week"),
        Unit::Rate => (0.01, "% of deployments"),
        Unit::Hours if max < 48.0 => (1.0, "hours"),
        Unit::Hours => (24.0, "days"),
    }
}

pub async fn page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(filters): Query<Filters>,
) -> Result<Response, ApiError> {
    let Some(metric) = METRICS.iter().find(|m| m.slug == slug) else {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            param: Some("metric".into()),
            message: format!(
                "unknown metric '{}': one of {}",
                encode(&slug),
                METRICS.map(|m| m.slug).join(", ")
            ),
        });
    };
    let months = match filters.months.as_deref().map(str::trim) {
        None | Some("") => 12,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|m| MONTHS.contains(m))
            .ok_or_else(|| {
                ApiError::bad_request("months", format!("'{}' is not 6, 12 or 24", encode(text)))
            })?,
    };
    let csv = filters.format.as_deref() == Some("csv");
    if let Some(format) = filters
        .format
        .as_deref()
        .filter(|f| *f != "csv" && !f.is_empty())
    {
        return Err(ApiError::bad_request(
            "format",
            format!("'{}' is not a format; use csv", encode(format)),
        ));
    }
    let view = state.view();
    let window = filters.window(&view, false)?;
    let query = filters.query_for(&window);
    let key = format!("/trends/{slug}?{query}&months={months}&csv={csv}");
    if let Some(body) = view.cached(&key) {
        return Ok(respond(csv, metric.slug, body));
    }
    state
        .clone()
        .heavy(move || {
            let s = &view.snapshot;
            // Whole weeks ending where the window ends.
            let weeks = i64::from(months) * 52 / 12;
            let start = window.to - chrono::Duration::weeks(weeks);
            let series = s.series(start, weeks, 7, &filters.scope())?;
            let body = if csv {
                let mut out = String::from("week_start,value,unit,over\r\n");
                let unit = match metric.unit {
                    Unit::Count => "deployments",
                    Unit::Hours => "hours",
                    Unit::Rate => "ratio",
                };
                for p in &series {
                    let value = (metric.value)(p).map(|v| format!("{v}")).unwrap_or_default();
                    out.push_str(&format!("{},{value},{unit},{}\r\n", p.from, (metric.over)(p)));
                }
                out
            } else {
                let values: Vec<(chrono::NaiveDate, Option<f64>)> =
                    series.iter().map(|p| (p.from, (metric.value)(p))).collect();
                let max = values.iter().filter_map(|(_, v)| *v).fold(0.0, f64::max);
                let (scale, label) = axis(metric.unit, max);
                let scaled: Vec<(chrono::NaiveDate, Option<f64>)> =
                    values.iter().map(|(d, v)| (*d, v.map(|v| v / scale))).collect();
                let bands: Vec<Band> = (metric.thresholds)(s.tiers())
                    .map(|t| {
                        t.ranges()
                            .iter()
                            .map(|(tier, from, to)| Band {
                                from: from / scale,
                                to: to / scale,
                                label: tier_name(Some(*tier)),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let title = format!("{}: {} per week, last {months} months", metric.title, metric.per_week);
                let chart = svg::line_chart(&svg::LineChart {
                    title: &title,
                    unit: label,
                    weeks: &scaled,
                    bands: &bands,
                    highlight: Some((window.from, window.to)),
                    suffix: match (metric.unit, scale) {
                        (Unit::Rate, _) => "%",
                        (Unit::Hours, s) if s > 1.0 => " d",
                        (Unit::Hours, _) => " h",
                        (Unit::Count, _) => "",
                    },
                });
                let link = |m: u32| format!("/trends/{slug}?{query}&months={m}", slug = metric.slug);
                let page = TrendPage {
                    frame: Frame::new("trends", &view, &filters, &window),
                    slug: metric.slug,
                    title: metric.title,
                    per_week: metric.per_week,
                    months,
                    spans: MONTHS
                        .iter()
                        .map(|m| Span {
                            months: *m,
                            href: link(*m),
                            current: *m == months,
                        })
                        .collect(),
                    others: METRICS
                        .iter()
                        .map(|m| {
                            (
                                m.title,
                                format!("/trends/{}?{query}&months={months}", m.slug),
                                m.slug == metric.slug,
                            )
                        })
                        .collect(),
                    chart,
                    unit_note: match (metric.unit, (metric.thresholds)(s.tiers()).is_some()) {
                        (_, true) => format!(
                            "Bands behind the line: the tiers of the {} DORA report for this number (each week's value against them; the overview's tier is the window's).",
                            s.tiers().year
                        ),
                        (_, false) => "DORA publishes no tiers for this number.".into(),
                    },
                    weeks: series
                        .iter()
                        .rev()
                        .map(|p| WeekLine {
                            week: p.from.to_string(),
                            value: written(metric.unit, (metric.value)(p)),
                            over: (metric.over)(p),
                        })
                        .collect(),
                    csv: format!("/trends/{}?{query}&months={months}&format=csv", metric.slug),
                };
                page.render().map_err(ApiError::internal)?
            };
            view.remember(key, body.clone());
            Ok(respond(csv, metric.slug, body))
        })
        .await
}

fn respond(csv: bool, slug: &str, body: String) -> Response {
    if csv {
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{slug}-weekly.csv\""),
                ),
            ],
            body,
        )
            .into_response()
    } else {
        Html(body).into_response()
    }
}
