//! The capitalization export (docs/capitalization.md): the weeks asked for, read from the store
//! week by week and computed by the method in `flowmeter_engine::capitalization`; the same
//! rows for `flowmeter export capitalization`, `GET /export/capitalization.csv` and the
//! `/capitalization` page.
//!
//! One file, over 600 lines, on purpose: the export, its two handlers and the page's chart
//! geometry are one feature whose parts share the week and team checks and the `Export` type.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use chrono::NaiveDate;
use sha2::Digest as _;

use flowmeter_core::{Config, IsoWeek, Timestamp};
use flowmeter_engine::capitalization::{self, CapRow, METHOD_VERSION};
use flowmeter_store::Store;

use crate::error::ApiError;
use crate::params::{Filters, given};
use crate::state::AppState;

/// The most weeks one export of the command line covers (two years and a bit).
pub const MAX_WEEKS: usize = 106;

/// The most weeks one HTTP request exports (a quarter): a week of a large organisation takes
/// up to a second, so a request stays well inside the server's 30-second timeout.
pub const MAX_WEEKS_HTTP: usize = 13;

/// How many times an export re-reads when the store changed between its weeks.
const READ_ATTEMPTS: usize = 3;

/// A request that cannot be answered, naming what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{param}: {message}")]
    Invalid {
        param: &'static str,
        message: String,
    },
    #[error("the store kept changing while the weeks were read; try again")]
    Unsettled,
    #[error(transparent)]
    Store(#[from] flowmeter_store::StoreError),
}

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::Invalid { param, message } => ApiError::bad_request(param, message),
            ExportError::Unsettled => ApiError::busy(),
            ExportError::Store(e) => ApiError::internal(e),
        }
    }
}

fn invalid(param: &'static str, message: impl Into<String>) -> ExportError {
    ExportError::Invalid {
        param,
        message: message.into(),
    }
}

/// The weeks of `--week W` or `--weeks A..B` (`week` and `weeks` name the parameters as the
/// caller spells them): each must have ended by `now`; a range runs forwards and holds at most
/// `max` weeks.
pub fn weeks(
    week: Option<(&'static str, &str)>,
    range: Option<(&'static str, &str)>,
    now: Timestamp,
    max: usize,
) -> Result<Vec<IsoWeek>, ExportError> {
    let parse = |param: &'static str, text: &str| {
        IsoWeek::parse(param, text).map_err(|e| invalid(param, e.to_string()))
    };
    let list = match (week, range) {
        (Some(_), Some((param, _))) => {
            return Err(invalid(param, "give a week or a range of weeks, not both"));
        }
        (Some((param, text)), None) => vec![parse(param, text)?],
        (None, Some((param, text))) => {
            let (first, last) = text.split_once("..").ok_or_else(|| {
                invalid(
                    param,
                    format!("'{text}' is not a range such as 2026-W40..2026-W47"),
                )
            })?;
            let (first, last) = (parse(param, first)?, parse(param, last)?);
            if last < first {
                return Err(invalid(param, format!("'{text}' ends before it starts")));
            }
            let count = (last.monday() - first.monday()).num_weeks() as usize + 1;
            if count > max {
                return Err(invalid(
                    param,
                    format!("'{text}' holds {count} weeks; at most {max} at once"),
                ));
            }
            (0..count)
                .map(|i| IsoWeek::of(first.monday() + chrono::Days::new(7 * i as u64)))
                .collect()
        }
        (None, None) => vec![IsoWeek::completed_before(now)],
    };
    let param = week.or(range).map_or("week", |(p, _)| p);
    if let Some(open) = list.iter().find(|w| w.window().end() > now) {
        return Err(invalid(
            param,
            format!(
                "week {open} has not ended yet (it ends {} 00:00 UTC)",
                open.window().to
            ),
        ));
    }
    Ok(list)
}

/// The team asked for, checked against the teams of the configuration and of `[[people]]`.
pub fn team(
    config: &Config,
    team: Option<&str>,
    param: &'static str,
) -> Result<Option<String>, ExportError> {
    let Some(team) = team.map(str::trim).filter(|t| !t.is_empty() && *t != "all") else {
        return Ok(None);
    };
    let known = config.teams.iter().any(|t| t.name == team)
        || config.people.iter().any(|p| match &p.team {
            flowmeter_core::people::TeamHistory::Always(t) => t == team,
            flowmeter_core::people::TeamHistory::Spans(spans) => {
                spans.iter().any(|s| s.team == team)
            }
        });
    if !known {
        return Err(invalid(
            param,
            format!("'{team}' is not a team of the configuration"),
        ));
    }
    Ok(Some(team.to_string()))
}

/// The rows of some weeks and the store generation they reflect.
#[derive(Debug, Clone)]
pub struct Export {
    pub generation: i64,
    pub weeks: Vec<IsoWeek>,
    pub team: Option<String>,
    pub rows: Vec<CapRow>,
}

impl Export {
    pub fn csv(&self) -> Vec<u8> {
        capitalization::to_csv(&self.rows)
    }

    /// What `--manifest` writes: enough to tell whether a re-export would differ.
    pub fn manifest(&self, config: &Config, csv: &[u8]) -> serde_json::Value {
        serde_json::json!({
            "method_version": METHOD_VERSION,
            "store_generation": self.generation,
            "config_sha256": config_digest(config),
            "weeks": self.weeks.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "team": self.team,
            "rows": self.rows.len(),
            "file_sha256": hex(&sha2::Sha256::digest(csv)),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest of the configuration that shapes the export: people, the method's settings, the
/// status groups and the bot patterns.
pub fn config_digest(config: &Config) -> String {
    let shaping = serde_json::json!({
        "people": config.people,
        "capitalization": config.capitalization,
        "stages": config.stages,
        "bot_logins": config.metrics.bot_logins,
    });
    hex(&sha2::Sha256::digest(shaping.to_string().as_bytes()))
}

/// Reads and computes `weeks` (in order); when the store changed between two weeks' reads, reads
/// again, so every row reflects one generation.
pub async fn export(
    store: &Store,
    config: &Config,
    weeks: &[IsoWeek],
    team: Option<&str>,
) -> Result<Export, ExportError> {
    for _ in 0..READ_ATTEMPTS {
        let mut generations = Vec::with_capacity(weeks.len());
        let mut rows = Vec::new();
        for &week in weeks {
            let window = week.window();
            let (generation, data) = store.activity(window.start(), window.end()).await?;
            generations.push(generation);
            let config = config.clone();
            let team = team.map(String::from);
            let week_rows = tokio::task::spawn_blocking(move || {
                capitalization::compute(week, &data, &config, team.as_deref())
            })
            .await
            .expect("the capitalization method does not panic");
            rows.extend(week_rows);
        }
        if generations.windows(2).all(|w| w[0] == w[1]) {
            return Ok(Export {
                generation: generations.first().copied().unwrap_or_default(),
                weeks: weeks.to_vec(),
                team: team.map(String::from),
                rows,
            });
        }
    }
    Err(ExportError::Unsettled)
}

/// [`export`] for a request: on one of the server's workers for heavy work, so a flood of exports
/// is answered 503 at once rather than queued without end, and pages stay served meanwhile.
async fn bounded_export(
    state: &AppState,
    weeks: Vec<IsoWeek>,
    team: Option<String>,
) -> Result<Export, ApiError> {
    let (store, config) = (state.store().clone(), state.config().clone());
    state
        .heavy(move || {
            tokio::runtime::Handle::current()
                .block_on(export(&store, &config, &weeks, team.as_deref()))
                .map_err(ApiError::from)
        })
        .await
}

/// `GET /export/capitalization.csv?week=2026-W47` (or `weeks=A..B`, `team=`).
pub async fn export_csv(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Result<Response, ApiError> {
    let now = chrono::Utc::now();
    let week = given(&filters.week);
    let range = given(&filters.weeks);
    let weeks = weeks(
        week.as_deref().map(|w| ("week", w)),
        range.as_deref().map(|w| ("weeks", w)),
        now,
        MAX_WEEKS_HTTP,
    )?;
    let team = team(state.config(), filters.team.as_deref(), "team")?;
    let export = bounded_export(&state, weeks.clone(), team).await?;
    let name = match (weeks.first(), weeks.last()) {
        (Some(a), Some(b)) if a != b => format!("capitalization-{a}..{b}.csv"),
        (Some(a), _) => format!("capitalization-{a}.csv"),
        _ => "capitalization.csv".into(),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (
                header::HeaderName::from_static("x-flowmeter-generation"),
                export.generation.to_string(),
            ),
            (
                header::HeaderName::from_static("x-flowmeter-method-version"),
                METHOD_VERSION.to_string(),
            ),
        ],
        export.csv(),
    )
        .into_response())
}

/// Weeks shown in the page's chart, ending with the chosen week.
const CHART_WEEKS: usize = 8;

#[derive(Debug)]
pub struct Bar {
    pub x: usize,
    pub y: usize,
    pub height: usize,
    pub label: String,
    pub title: String,
}

#[derive(Debug)]
pub struct TeamSeries {
    pub team: String,
    pub bars: Vec<Bar>,
}

#[derive(Debug)]
pub struct ProjectLine {
    pub project: String,
    pub cells: Vec<String>,
}

#[derive(Debug)]
pub struct RowView {
    pub person: String,
    pub team: String,
    pub work_item: String,
    pub project: String,
    pub capitalizable: &'static str,
    pub cap_rule: String,
    pub fte_share: String,
    pub est_hours: String,
    pub evidence: String,
    pub receipts: Vec<String>,
}

#[derive(Template)]
#[template(path = "capitalization.html")]
struct CapitalizationPage {
    frame: crate::pages::Frame,
    week: String,
    team: String,
    csv_link: String,
    method_version: u32,
    generation: i64,
    week_labels: Vec<(usize, String)>,
    series: Vec<TeamSeries>,
    project_series: Vec<TeamSeries>,
    projects: Vec<ProjectLine>,
    unattributed: Vec<RowView>,
    rows: Vec<RowView>,
}

/// The chart's geometry: one group of bars per team, one bar per week, 0-100% high.
pub const CHART_HEIGHT: usize = 120;
const BAR_WIDTH: usize = 14;
const BAR_GAP: usize = 4;

/// The capitalizable share of each team's time per week, as bars (`None`: no time that week,
/// drawn as a gap, not as 0%).
pub fn team_bars(weeks: &[IsoWeek], rows: &[CapRow]) -> Vec<TeamSeries> {
    share_bars(weeks, rows, |r| Some(r.team.as_str()))
}

/// The capitalizable share of the time spent on each project per week (unattributed time is on
/// no project).
pub fn project_bars(weeks: &[IsoWeek], rows: &[CapRow]) -> Vec<TeamSeries> {
    share_bars(weeks, rows, |r| {
        (!r.is_unattributed()).then_some(r.project.as_str())
    })
}

/// Per group (`group_of` a row, `None`: in none), per week, the share of its FTE that was
/// capitalizable, as bars 0-100% high; a week without time is a gap.
fn share_bars<'r>(
    weeks: &[IsoWeek],
    rows: &'r [CapRow],
    group_of: impl Fn(&'r CapRow) -> Option<&'r str>,
) -> Vec<TeamSeries> {
    let mut groups: Vec<&str> = rows.iter().filter_map(&group_of).collect();
    groups.sort();
    groups.dedup();
    groups
        .into_iter()
        .map(|group| {
            let bars = weeks
                .iter()
                .enumerate()
                .filter_map(|(i, week)| {
                    let of_week = rows
                        .iter()
                        .filter(|r| group_of(r) == Some(group) && r.week_start == week.monday());
                    let (mut cap, mut all) = (0i64, 0i64);
                    for r in of_week {
                        all += r.fte_units;
                        if r.capitalizable {
                            cap += r.fte_units;
                        }
                    }
                    (all > 0).then(|| {
                        let percent = cap as f64 * 100.0 / all as f64;
                        let height = (percent / 100.0 * CHART_HEIGHT as f64).round() as usize;
                        Bar {
                            x: i * (BAR_WIDTH + BAR_GAP),
                            y: CHART_HEIGHT - height,
                            height,
                            label: format!("{percent:.0}%"),
                            title: format!(
                                "{group}, {week}: {percent:.1}% capitalizable ({} of {} FTE)",
                                fte(cap),
                                fte(all)
                            ),
                        }
                    })
                })
                .collect();
            TeamSeries {
                team: group.to_string(),
                bars,
            }
        })
        .collect()
}

fn fte(units: i64) -> String {
    format!("{:.2}", units as f64 / capitalization::UNITS_PER_FTE as f64)
}

fn row_view(r: &CapRow) -> RowView {
    let evidence = [
        (r.evidence_commits, "commits"),
        (r.evidence_prs, "pull request events"),
        (r.evidence_reviews, "reviews"),
        (r.evidence_issue_days, "issue-days"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect::<Vec<_>>()
    .join(", ");
    RowView {
        person: format!("{} ({})", r.person_name, r.person_id),
        team: r.team.clone(),
        work_item: r.work_item_key.clone(),
        project: r.project.clone(),
        capitalizable: if r.capitalizable { "yes" } else { "no" },
        cap_rule: r.cap_rule.clone(),
        fte_share: r.fte_share(),
        est_hours: r.est_hours(),
        evidence: if evidence.is_empty() {
            "no evidence".into()
        } else {
            evidence
        },
        receipts: r
            .receipts
            .iter()
            .map(|x| {
                format!(
                    "{} {}: {} {} (weight {})",
                    x.day,
                    x.day.format("%a"),
                    x.kind.label(),
                    x.item,
                    x.weight
                )
            })
            .collect(),
    }
}

/// `/capitalization?week=2026-W47&team=`: the week's rows with receipts, the people-weeks with
/// unattributed time, and the capitalizable share per team and project over 8 weeks.
pub async fn page(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Result<Response, ApiError> {
    let now = chrono::Utc::now();
    let week = given(&filters.week);
    let chosen = match week.as_deref() {
        Some(w) => weeks(Some(("week", w)), None, now, 1)?[0],
        // The last week that ended, or the week of the latest commit when the store ends earlier.
        None => {
            let last = IsoWeek::completed_before(now);
            match state
                .store()
                .latest_commit()
                .await
                .map_err(ApiError::internal)?
            {
                Some(t) => last.min(IsoWeek::of(t.date_naive())),
                None => last,
            }
        }
    };
    let team = team(state.config(), filters.team.as_deref(), "team")?;
    let first = chosen.monday() - chrono::Days::new(7 * (CHART_WEEKS as u64 - 1));
    let chart_weeks: Vec<IsoWeek> = (0..CHART_WEEKS)
        .map(|i| IsoWeek::of(first + chrono::Days::new(7 * i as u64)))
        .collect();
    let export = bounded_export(&state, chart_weeks.clone(), team.clone()).await?;
    let view = state.view();
    let window = chosen.window();
    let frame_filters = Filters {
        from: Some(window.from.to_string()),
        to: Some(window.to.to_string()),
        team: team.clone(),
        ..Filters::default()
    };
    let frame = crate::pages::Frame::new("capitalization", &view, &frame_filters, &window);
    let this_week: Vec<&CapRow> = export
        .rows
        .iter()
        .filter(|r| r.week_start == chosen.monday())
        .collect();
    let mut projects: Vec<String> = export
        .rows
        .iter()
        .filter(|r| r.capitalizable)
        .map(|r| r.project.clone())
        .collect();
    projects.sort();
    projects.dedup();
    let projects = projects
        .into_iter()
        .map(|project| ProjectLine {
            cells: chart_weeks
                .iter()
                .map(|w| {
                    let units: i64 = export
                        .rows
                        .iter()
                        .filter(|r| {
                            r.capitalizable && r.project == project && r.week_start == w.monday()
                        })
                        .map(|r| r.fte_units)
                        .sum();
                    fte(units)
                })
                .collect(),
            project,
        })
        .collect();
    let team_param = crate::params::encode(team.as_deref().unwrap_or(""));
    let page = CapitalizationPage {
        frame,
        week: chosen.to_string(),
        team: team.clone().unwrap_or_default(),
        csv_link: format!("/export/capitalization.csv?week={chosen}&team={team_param}"),
        method_version: METHOD_VERSION,
        generation: export.generation,
        week_labels: chart_weeks
            .iter()
            .enumerate()
            .map(|(i, w)| (i * (BAR_WIDTH + BAR_GAP), week_label(w.monday())))
            .collect(),
        series: team_bars(&chart_weeks, &export.rows),
        project_series: project_bars(&chart_weeks, &export.rows),
        projects,
        unattributed: this_week
            .iter()
            .filter(|r| r.is_unattributed())
            .map(|r| row_view(r))
            .collect(),
        rows: this_week.iter().map(|r| row_view(r)).collect(),
    };
    let html = page.render().map_err(ApiError::internal)?;
    Ok(Html(html).into_response())
}

fn week_label(monday: NaiveDate) -> String {
    let w = IsoWeek::of(monday).to_string();
    w.split_once('-')
        .map_or(w.clone(), |(_, week)| week.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(team: &str, project: &str, monday: &str, units: i64, capitalizable: bool) -> CapRow {
        let monday = NaiveDate::parse_from_str(monday, "%Y-%m-%d").unwrap();
        CapRow {
            week_start: monday,
            week_end: monday + chrono::Days::new(6),
            person_id: "p".into(),
            person_name: "P".into(),
            team: team.into(),
            cost_center: String::new(),
            work_item_key: if project.is_empty() {
                capitalization::UNATTRIBUTED.into()
            } else {
                "PAY-1".into()
            },
            work_item_type: String::new(),
            epic_key: String::new(),
            project: project.into(),
            capitalizable,
            cap_rule: String::new(),
            fte_units: units,
            centi_hours: 0,
            evidence_commits: 0,
            evidence_prs: 0,
            evidence_reviews: 0,
            evidence_issue_days: 0,
            receipts: Vec::new(),
        }
    }

    #[test]
    fn bars_land_on_their_pixels_and_a_week_without_time_is_a_gap() {
        let weeks: Vec<IsoWeek> = ["2026-W46", "2026-W47", "2026-W48"]
            .iter()
            .map(|w| IsoWeek::parse("week", w).unwrap())
            .collect();
        let rows = [
            row("web", "Shop", "2026-11-09", 3_000, true),
            row("web", "Shop", "2026-11-09", 1_000, false),
            row("web", "", "2026-11-09", 6_000, false),
            row("web", "Shop", "2026-11-23", 10_000, true),
        ];
        let teams = team_bars(&weeks, &rows);
        assert_eq!(teams.len(), 1);
        let bars: Vec<(usize, usize, usize, &str)> = teams[0]
            .bars
            .iter()
            .map(|b| (b.x, b.y, b.height, b.label.as_str()))
            .collect();
        // W46: 3,000 of 10,000 units, 30% of 120 px; W47 no time: no bar; W48: 100%.
        assert_eq!(bars, [(0, 84, 36, "30%"), (36, 0, 120, "100%")]);
        // Per project, unattributed time is on no project: W46 is 3,000 of 4,000.
        let projects = project_bars(&weeks, &rows);
        assert_eq!(projects.len(), 1);
        assert_eq!(projects[0].team, "Shop");
        assert_eq!(projects[0].bars[0].label, "75%");
        assert_eq!(projects[0].bars[0].height, 90);
    }
}
