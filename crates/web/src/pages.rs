//! The dashboard: server-rendered HTML (askama templates in `templates/`) that works without
//! JavaScript. Filters live in the URL with the API's parameter names, and every number links to
//! its receipt: the rows that produced it and the rule that was applied.
//!
//! Over 600 lines because every page handler still lives here; splitting it into one module
//! per page (with `Frame`, `Order` and `OutLinks` shared) is the open work of issue 14.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use flowmeter_core::Window;
use flowmeter_engine::{DoraReport, Tier};

use crate::error::ApiError;
use crate::params::{Filters, encode};
use crate::state::{AppState, View};
use crate::svg;

const STYLE: &str = include_str!("../../../static/style.css");

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

/// An option of a filter's select.
pub struct Choice {
    pub value: String,
    pub selected: bool,
}

/// What every page shows around its content: navigation and the filter form.
pub struct Frame {
    pub active: &'static str,
    pub query: String,
    pub from: String,
    pub to: String,
    pub days: String,
    pub repos: Vec<Choice>,
    pub services: Vec<Choice>,
    pub teams: Vec<Choice>,
    pub scope_label: String,
}

impl Frame {
    pub(crate) fn new(
        active: &'static str,
        view: &View,
        filters: &Filters,
        window: &Window,
    ) -> Frame {
        let scope = filters.scope();
        let choices = |values: Vec<String>, selected: &Option<String>| {
            values
                .into_iter()
                .map(|value| Choice {
                    selected: selected.as_deref() == Some(value.as_str()),
                    value,
                })
                .collect()
        };
        let p = &view.snapshot.prepared;
        let teams = view
            .snapshot
            .config()
            .teams
            .iter()
            .map(|t| t.name.clone())
            .collect();
        let mut label: Vec<String> = Vec::new();
        for (name, value) in [
            ("team", &scope.team),
            ("service", &scope.service),
            ("repository", &scope.repo),
        ] {
            if let Some(value) = value {
                label.push(format!("{name} {value}"));
            }
        }
        Frame {
            active,
            query: filters.query_for(window),
            from: window.from.to_string(),
            to: window.to.to_string(),
            days: window.days().to_string(),
            repos: choices(p.repos.iter().cloned().collect(), &scope.repo),
            services: choices(p.services.iter().cloned().collect(), &scope.service),
            teams: choices(teams, &scope.team),
            scope_label: if label.is_empty() {
                "the whole organisation".into()
            } else {
                label.join(", ")
            },
        }
    }
}

fn render(template: &impl Template) -> Result<Response, ApiError> {
    Ok(Html(template.render().map_err(ApiError::internal)?).into_response())
}

pub(crate) fn tier_name(tier: Option<Tier>) -> &'static str {
    match tier {
        Some(Tier::Elite) => "elite",
        Some(Tier::High) => "high",
        Some(Tier::Medium) => "medium",
        Some(Tier::Low) => "low",
        None => "no tier",
    }
}

pub(crate) fn hours(h: Option<f64>) -> String {
    match h {
        None => "no data".into(),
        Some(h) if h < 48.0 => format!("{h:.1} h"),
        Some(h) => format!("{:.1} days", h / 24.0),
    }
}

pub(crate) fn percent(r: Option<f64>) -> String {
    r.map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_else(|| "no data".into())
}

fn time(t: &flowmeter_core::Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

fn short(sha: &str) -> String {
    sha.chars().take(9).collect()
}

/// Where records link out: GitHub's pages for the commits, pull requests, deployments,
/// releases, runs and issues of the repositories the GitHub connector follows (GitHub
/// Enterprise Server included), and Jira's for issue keys when Jira is configured. Records of
/// other repositories (imported or pushed) link nowhere rather than somewhere wrong.
pub(crate) struct OutLinks {
    github: String,
    repos: Vec<String>,
    orgs: Vec<String>,
    jira: Option<String>,
}

impl OutLinks {
    pub(crate) fn of(config: &flowmeter_core::Config) -> OutLinks {
        let jira = config.jira.url.trim().trim_end_matches('/');
        OutLinks {
            github: crate::digest::Links::of(config, "").github,
            repos: config
                .github
                .repos
                .iter()
                .map(|r| r.to_lowercase())
                .collect(),
            orgs: config
                .github
                .orgs
                .iter()
                .map(|o| o.to_lowercase())
                .collect(),
            jira: (!jira.is_empty()).then(|| jira.to_string()),
        }
    }

    fn repo(&self, repo: &str) -> Option<String> {
        let lower = repo.to_lowercase();
        let owner = lower.split('/').next().unwrap_or_default();
        (self.repos.contains(&lower) || self.orgs.iter().any(|o| o == owner))
            .then(|| format!("{}/{repo}", self.github))
    }

    pub(crate) fn commit(&self, repo: &str, sha: &str) -> String {
        self.repo(repo)
            .map(|r| format!("{r}/commit/{}", encode(sha)))
            .unwrap_or_default()
    }

    pub(crate) fn pull(&self, repo: &str, number: u64) -> String {
        self.repo(repo)
            .map(|r| format!("{r}/pull/{number}"))
            .unwrap_or_default()
    }

    /// A workflow run (`run-<id>`), a release (a tag), or the repository's deployments page.
    pub(crate) fn deployment(&self, repo: &str, id: &str) -> String {
        let Some(r) = self.repo(repo) else {
            return String::new();
        };
        match id.strip_prefix("run-") {
            Some(run) if run.bytes().all(|b| b.is_ascii_digit()) => {
                format!("{r}/actions/runs/{run}")
            }
            _ if id.bytes().all(|b| b.is_ascii_digit()) => format!("{r}/deployments"),
            _ => format!("{r}/releases/tag/{}", encode(id)),
        }
    }

    /// A GitHub issue (`#12` of a followed repository) or a Jira issue key (`PAY-7`).
    pub(crate) fn incident(&self, repo: Option<&str>, id: &str) -> String {
        if let (Some(number), Some(repo)) = (id.strip_prefix('#'), repo)
            && number.bytes().all(|b| b.is_ascii_digit())
            && let Some(r) = self.repo(repo)
        {
            return format!("{r}/issues/{number}");
        }
        match &self.jira {
            Some(jira) if flowmeter_core::people::issue_keys(id).first() == Some(&id) => {
                format!("{jira}/browse/{}", encode(id))
            }
            _ => String::new(),
        }
    }
}

/// A list page's order: one of its columns (by `sort`) and a direction (by `order`).
pub(crate) struct Order {
    pub column: usize,
    pub descending: bool,
    name: &'static str,
    /// Whether the request asked for an order (else links keep the page's default URL).
    asked: bool,
}

impl Order {
    /// The order `filters` ask for among `columns` (name, title, whether it starts descending);
    /// the first column, in its own direction, when they ask for none.
    pub(crate) fn of(
        filters: &Filters,
        columns: &[(&'static str, &'static str, bool)],
    ) -> Result<Order, ApiError> {
        let name = crate::params::given(&filters.sort);
        let column = match &name {
            None => 0,
            Some(name) => columns
                .iter()
                .position(|(c, ..)| c == name)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "sort",
                        format!(
                            "'{}' is not a column here: {}",
                            encode(name),
                            columns.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
                        ),
                    )
                })?,
        };
        let descending = match crate::params::given(&filters.order).as_deref() {
            None => columns[column].2,
            Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(ApiError::bad_request(
                    "order",
                    format!("'{}' is not asc or desc", encode(other)),
                ));
            }
        };
        Ok(Order {
            column,
            descending,
            name: columns[column].0,
            asked: name.is_some() || crate::params::given(&filters.order).is_some(),
        })
    }

    /// The order as query parameters, for links that keep it (the pager's); nothing for the
    /// default order, so default URLs stay as they were.
    pub(crate) fn query(&self) -> String {
        if !self.asked {
            return String::new();
        }
        format!(
            "&sort={}&order={}",
            self.name,
            if self.descending { "desc" } else { "asc" }
        )
    }

    /// `ordering` in this order's direction.
    pub(crate) fn apply(&self, ordering: std::cmp::Ordering) -> std::cmp::Ordering {
        if self.descending {
            ordering.reverse()
        } else {
            ordering
        }
    }

    /// A link per column that sorts by it, the current one the other way round.
    pub(crate) fn links(
        &self,
        path: &str,
        query: &str,
        columns: &[(&'static str, &'static str, bool)],
    ) -> Vec<SortLink> {
        columns
            .iter()
            .enumerate()
            .map(|(i, (name, title, starts_descending))| {
                let current = i == self.column;
                let descending = if current {
                    !self.descending
                } else {
                    *starts_descending
                };
                SortLink {
                    title,
                    href: format!(
                        "{path}?{query}&sort={name}&order={}",
                        if descending { "desc" } else { "asc" }
                    ),
                    current: match (current, self.descending) {
                        (false, _) => "",
                        (true, false) => "ascending",
                        (true, true) => "descending",
                    },
                }
            })
            .collect()
    }
}

/// A link that sorts a list by one column.
pub struct SortLink {
    pub title: &'static str,
    pub href: String,
    /// `ascending` or `descending` when the list is sorted by it, else empty.
    pub current: &'static str,
}

/// Rows a list page shows at a time.
const PAGE_ROWS: usize = 100;

/// Where a list page is: which page of how many, with links that keep the window and filters.
pub struct Pager {
    pub page: usize,
    pub pages: usize,
    pub rows: usize,
    pub previous: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// The page `page` of `rows` rows, and the range of rows it shows.
    fn new(path: &str, query: &str, page: usize, rows: usize) -> (Pager, std::ops::Range<usize>) {
        let pages = rows.div_ceil(PAGE_ROWS).max(1);
        let page = page.min(pages);
        let link = |p: usize| format!("{path}?{query}&page={p}");
        let start = (page - 1) * PAGE_ROWS;
        (
            Pager {
                page,
                pages,
                rows,
                previous: (page > 1).then(|| link(page - 1)),
                next: (page < pages).then(|| link(page + 1)),
            },
            start..(start + PAGE_ROWS).min(rows),
        )
    }
}

/// One of the five numbers on the overview.
pub struct Card {
    pub slug: &'static str,
    pub title: &'static str,
    pub value: String,
    pub detail: String,
    pub tier: &'static str,
    pub trend: String,
    pub sparkline: String,
}

/// How a number moved against the previous window, in words.
pub(crate) fn trend(
    now: Option<f64>,
    before: Option<f64>,
    lower_is_better: bool,
    days: i64,
) -> String {
    match (now, before) {
        (Some(now), Some(before)) if before != 0.0 => {
            let change = (now - before) / before * 100.0;
            if change.abs() < 0.5 {
                return format!("unchanged against the previous {days} days");
            }
            let better = (change < 0.0) == lower_is_better;
            format!(
                "{} {:.0}% against the previous {days} days ({})",
                if change > 0.0 { "up" } else { "down" },
                change.abs(),
                if better { "better" } else { "worse" }
            )
        }
        (Some(_), Some(_)) => format!("previous {days} days: 0"),
        _ => format!("no data to compare in the previous {days} days"),
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    frame: Frame,
    cards: Vec<Card>,
    weeks: usize,
}

fn cards(
    now: &DoraReport,
    before: &DoraReport,
    weekly: &[flowmeter_engine::metrics::Point],
    days: i64,
) -> Vec<Card> {
    use flowmeter_engine::metrics::Point;
    let series = |f: &dyn Fn(&Point) -> Option<f64>| weekly.iter().map(f).collect::<Vec<_>>();
    let (df, lt, cfr, rt, rw) = (
        &now.deployment_frequency,
        &now.lead_time,
        &now.change_failure_rate,
        &now.recovery_time,
        &now.rework_rate,
    );
    vec![
        Card {
            slug: "deployment-frequency",
            title: "Deployment frequency",
            value: format!("{:.2} / week", df.per_week),
            detail: format!(
                "{} deployments; deploy days per week (median) {}",
                df.deployments,
                df.deploy_days_per_week_median
                    .map(|d| format!("{d:.1}"))
                    .unwrap_or_else(|| "no data".into())
            ),
            tier: tier_name(df.tier),
            trend: trend(
                Some(df.per_week),
                Some(before.deployment_frequency.per_week),
                false,
                days,
            ),
            sparkline: svg::sparkline(
                &series(&|p| Some(p.deployments as f64)),
                "deployments per week",
            ),
        },
        Card {
            slug: "lead-time",
            title: "Lead time for changes",
            value: hours(lt.median_hours),
            detail: format!(
                "median over {} changes; p90 {}",
                lt.changes,
                hours(lt.p90_hours)
            ),
            tier: tier_name(lt.tier),
            trend: trend(lt.median_hours, before.lead_time.median_hours, true, days),
            sparkline: svg::sparkline(
                &series(&|p| p.lead_time_median_hours),
                "median lead time per week, hours",
            ),
        },
        Card {
            slug: "change-failure-rate",
            title: "Change failure rate",
            value: percent(cfr.rate),
            detail: format!("{} of {} deployments failed", cfr.failed, cfr.deployments),
            tier: tier_name(cfr.tier),
            trend: trend(cfr.rate, before.change_failure_rate.rate, true, days),
            sparkline: svg::sparkline(
                &series(&|p| p.change_failure_rate()),
                "change failure rate per week",
            ),
        },
        Card {
            slug: "recovery-time",
            title: "Recovery time",
            value: hours(rt.median_hours),
            detail: format!(
                "median over {} resolved incidents; {} open",
                rt.incidents, rt.open
            ),
            tier: tier_name(rt.tier),
            trend: trend(
                rt.median_hours,
                before.recovery_time.median_hours,
                true,
                days,
            ),
            sparkline: svg::sparkline(
                &series(&|p| p.recovery_median_hours),
                "median recovery time per week, hours",
            ),
        },
        Card {
            slug: "rework-rate",
            title: "Rework rate",
            value: percent(rw.rate),
            detail: format!(
                "{} of {} deployments were rework",
                rw.rework, rw.deployments
            ),
            tier: "no tier table",
            trend: trend(rw.rate, before.rework_rate.rate, true, days),
            sparkline: svg::sparkline(&series(&|p| p.rework_rate()), "rework rate per week"),
        },
    ]
}

pub async fn overview(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Result<Response, ApiError> {
    let view = state.view();
    let window = filters.window(&view, false)?;
    let key = format!("/?{}", filters.query_for(&window));
    if let Some(html) = view.cached(&key) {
        return Ok(Html(html).into_response());
    }
    state
        .clone()
        .heavy(move || {
            let scope = filters.scope();
            let s = &view.snapshot;
            let now = s.dora(window, &scope)?;
            let before = s.dora(window.previous(), &scope)?;
            // At most the last two years of weeks in a sparkline, in one aggregation.
            let whole_weeks = window.days() / 7;
            let first = whole_weeks.saturating_sub(104);
            let weekly = s.series(
                window.from + chrono::Duration::days(first * 7),
                whole_weeks - first,
                7,
                &scope,
            )?;
            let page = OverviewPage {
                frame: Frame::new("overview", &view, &filters, &window),
                cards: cards(&now, &before, &weekly, window.days()),
                weeks: weekly.len(),
            };
            let html = page.render().map_err(ApiError::internal)?;
            view.remember(key, html.clone());
            Ok(Html(html).into_response())
        })
        .await
}

pub struct DeploymentLine {
    pub time: String,
    pub service: String,
    pub repo: String,
    pub id: String,
    pub sha: String,
    pub changes: u32,
    pub baseline: bool,
    pub failed: bool,
    pub rework: bool,
    /// Why it is rework, in words.
    pub why: String,
    pub incidents: String,
    /// Links out (empty: none).
    pub id_url: String,
    pub sha_url: String,
}

pub struct AttemptLine {
    pub time: String,
    pub repo: String,
    pub id: String,
    pub environment: String,
    pub status: &'static str,
    pub sha: String,
    pub id_url: String,
    pub sha_url: String,
}

/// The orders of the deployments list.
const DEPLOYMENT_ORDERS: [(&str, &str, bool); 3] = [
    ("time", "finished", true),
    ("changes", "changes delivered", true),
    ("service", "service", false),
];

#[derive(Template)]
#[template(path = "deployments.html")]
struct DeploymentsPage {
    frame: Frame,
    pager: Pager,
    sorter: Vec<SortLink>,
    deployments: Vec<DeploymentLine>,
    attempts: Vec<AttemptLine>,
    attempt_count: usize,
}

fn incidents_by_deployment(view: &View) -> HashMap<(String, String), Vec<String>> {
    let mut map: HashMap<(String, String), Vec<String>> = HashMap::new();
    for i in &view.snapshot.prepared.incidents {
        if let (Some(service), Some(id)) = (&i.service, &i.deployment_id) {
            map.entry((service.clone(), id.clone()))
                .or_default()
                .push(i.id.clone());
        }
    }
    map
}

fn deployment_lines(view: &View, rows: &[&flowmeter_engine::DeploymentRow]) -> Vec<DeploymentLine> {
    let incidents = incidents_by_deployment(view);
    let links = OutLinks::of(view.snapshot.config());
    rows.iter()
        .rev()
        .map(|d| DeploymentLine {
            id_url: links.deployment(&d.repo, &d.id),
            sha_url: links.commit(&d.repo, &d.sha),
            time: time(&d.time),
            service: d.service.clone(),
            repo: d.repo.clone(),
            id: d.id.clone(),
            sha: short(&d.sha),
            changes: d.changes,
            baseline: d.baseline,
            failed: d.failed,
            rework: d.rework,
            why: d
                .rework_reasons
                .iter()
                .map(flowmeter_engine::ReworkReason::describe)
                .collect::<Vec<_>>()
                .join("; "),
            incidents: incidents
                .get(&(d.service.clone(), d.id.clone()))
                .map(|v| v.join(", "))
                .unwrap_or_default(),
        })
        .collect()
}

/// The window's deployments newest first, a page at a time, and the newest attempts that are
/// not deployments.
pub async fn deployments(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Result<Response, ApiError> {
    let view = state.view();
    let window = filters.window(&view, false)?;
    let page = filters.page()?;
    let order = Order::of(&filters, &DEPLOYMENT_ORDERS)?;
    state
        .heavy(move || {
            let receipts = view.snapshot.receipts(window, &filters.scope())?;
            let query = filters.query_for(&window);
            let mut sorted: Vec<&flowmeter_engine::DeploymentRow> = receipts.deployments.to_vec();
            // Stable: ties keep the time order.
            sorted.sort_by(|a, b| {
                order.apply(match order.column {
                    0 => a.time.cmp(&b.time),
                    1 => a.changes.cmp(&b.changes),
                    _ => a.service.cmp(&b.service),
                })
            });
            let (pager, shown) = Pager::new(
                "/deployments",
                &format!("{query}{}", order.query()),
                page,
                sorted.len(),
            );
            // Lines are written newest first from time order: hand them over reversed.
            let mut shown: Vec<&flowmeter_engine::DeploymentRow> = sorted[shown].to_vec();
            shown.reverse();
            let attempt_count = receipts.attempts.len();
            let links = OutLinks::of(view.snapshot.config());
            let attempts = receipts
                .attempts
                .iter()
                .rev()
                .take(PAGE_ROWS)
                .map(|d| AttemptLine {
                    time: time(&d.time()),
                    repo: d.repo.clone(),
                    id: d.id.clone(),
                    environment: d.environment.clone(),
                    status: d.status.as_str(),
                    sha: short(&d.sha),
                    id_url: links.deployment(&d.repo, &d.id),
                    sha_url: links.commit(&d.repo, &d.sha),
                })
                .collect();
            render(&DeploymentsPage {
                frame: Frame::new("deployments", &view, &filters, &window),
                sorter: order.links("/deployments", &query, &DEPLOYMENT_ORDERS),
                pager,
                deployments: deployment_lines(&view, &shown),
                attempts,
                attempt_count,
            })
        })
        .await
}

pub struct ChangeLine {
    pub service: String,
    pub sha: String,
    pub sha_url: String,
    pub deployment_url: String,
    /// The pull request a squash or rebase merge came from, linked.
    pub pull_url: String,
    pub deployment: String,
    pub deployed: String,
    pub start: String,
    pub lead: String,
    pub note: String,
}

fn change_lines(view: &View, rows: &[&flowmeter_engine::ChangeRow]) -> Vec<ChangeLine> {
    let links = OutLinks::of(view.snapshot.config());
    rows.iter()
        .map(|c| view.snapshot.change(c))
        .map(|c| ChangeLine {
            sha_url: links.commit(c.repo, c.sha),
            deployment_url: links.deployment(c.repo, c.deployment_id),
            pull_url: c
                .squash_of
                .map(|n| links.pull(c.repo, n))
                .unwrap_or_default(),
            service: c.service.to_string(),
            sha: short(c.sha),
            deployment: c.deployment_id.to_string(),
            deployed: time(&c.deployed_at),
            start: time(&c.start),
            lead: hours(Some(c.lead_hours)),
            note: match (c.squash_of, c.fix) {
                (Some(pr), true) => {
                    format!("squash or rebase of #{pr}, starts at its first commit; a fix")
                }
                (Some(pr), false) => {
                    format!("squash or rebase of #{pr}, starts at its first commit")
                }
                (None, true) => "a fix".into(),
                (None, false) => String::new(),
            },
        })
        .collect()
}

#[derive(Template)]
#[template(path = "lead_time.html")]
struct LeadTimePage {
    frame: Frame,
    median: String,
    p90: String,
    change_count: u64,
    histogram: String,
    slowest: Vec<ChangeLine>,
}

pub async fn lead_time(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Result<Response, ApiError> {
    let view = state.view();
    let window = filters.window(&view, false)?;
    state
        .heavy(move || {
            let scope = filters.scope();
            let report = view.snapshot.dora(window, &scope)?;
            let receipts = view.snapshot.receipts(window, &scope)?;
            let limits = [
                (1.0, "under 1 hour"),
                (24.0, "1 to 24 hours"),
                (168.0, "1 to 7 days"),
                (720.0, "7 to 30 days"),
                (f64::INFINITY, "30 days or more"),
            ];
            let mut counts = vec![0u64; limits.len()];
            for c in &receipts.changes {
                let i = limits
                    .iter()
                    .position(|(limit, _)| c.lead_hours < *limit)
                    .unwrap_or(limits.len() - 1);
                counts[i] += 1;
            }
            let buckets: Vec<(String, u64)> = limits
                .iter()
                .zip(counts)
                .map(|((_, label), n)| (label.to_string(), n))
                .collect();
            let mut slowest = receipts.changes.clone();
            slowest.sort_by(|a, b| b.lead_hours.total_cmp(&a.lead_hours));
            slowest.truncate(20);
            render(&LeadTimePage {
                frame: Frame::new("lead-time", &view, &filters, &window),
                median: hours(report.lead_time.median_hours),
                p90: hours(report.lead_time.p90_hours),
                change_count: report.lead_time.changes,
                histogram: svg::bars(&buckets, "changes", "changes by lead time"),
                slowest: change_lines(&view, &slowest),
            })
        })
        .await
}

pub struct IncidentLine {
    pub id: String,
    pub url: String,
    pub service: String,
    pub created: String,
    pub resolved: String,
    pub recovery: String,
    pub deployment: String,
}

fn incident_lines(view: &View, rows: &[&flowmeter_engine::IncidentRow]) -> Vec<IncidentLine> {
    let links = OutLinks::of(view.snapshot.config());
    rows.iter()
        .map(|i| IncidentLine {
            url: links.incident(i.repo.as_deref(), &i.id),
            id: i.id.clone(),
            service: i
                .service
                .clone()
                .or_else(|| i.repo.clone())
                .unwrap_or_default(),
            created: time(&i.created_at),
            resolved: i
                .resolved_at
                .as_ref()
                .map(time)
                .unwrap_or_else(|| "open".into()),
            recovery: i
                .recovery_hours
                .map(|h| hours(Some(h)))
                .unwrap_or_else(|| "open".into()),
            deployment: i.deployment_id.clone().unwrap_or_else(|| "none".into()),
        })
        .collect()
}

/// The orders of the resolved incidents.
const INCIDENT_ORDERS: [(&str, &str, bool); 3] = [
    ("resolved", "resolved", false),
    ("recovery", "recovery time", true),
    ("service", "service", false),
];

#[derive(Template)]
#[template(path = "incidents.html")]
struct IncidentsPage {
    frame: Frame,
    pager: Pager,
    sorter: Vec<SortLink>,
    resolved: Vec<IncidentLine>,
    open: Vec<IncidentLine>,
    open_count: usize,
}

/// The incidents resolved in the window, a page at a time, and the newest still open.
pub async fn incidents(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Result<Response, ApiError> {
    let view = state.view();
    let window = filters.window(&view, false)?;
    let page = filters.page()?;
    let order = Order::of(&filters, &INCIDENT_ORDERS)?;
    state
        .heavy(move || {
            let receipts = view.snapshot.receipts(window, &filters.scope())?;
            let query = filters.query_for(&window);
            let mut resolved: Vec<&flowmeter_engine::IncidentRow> = receipts.incidents.to_vec();
            resolved.sort_by(|a, b| {
                order.apply(match order.column {
                    0 => a.resolved_at.cmp(&b.resolved_at),
                    1 => a
                        .recovery_hours
                        .unwrap_or(f64::INFINITY)
                        .total_cmp(&b.recovery_hours.unwrap_or(f64::INFINITY)),
                    _ => a.service.cmp(&b.service),
                })
            });
            let (pager, shown) = Pager::new(
                "/incidents",
                &format!("{query}{}", order.query()),
                page,
                resolved.len(),
            );
            let open: Vec<&flowmeter_engine::IncidentRow> = receipts
                .open_incidents
                .iter()
                .rev()
                .take(PAGE_ROWS)
                .copied()
                .collect();
            render(&IncidentsPage {
                frame: Frame::new("incidents", &view, &filters, &window),
                pager,
                sorter: order.links("/incidents", &query, &INCIDENT_ORDERS),
                resolved: incident_lines(&view, &resolved[shown]),
                open: incident_lines(&view, &open),
                open_count: receipts.open_incidents.len(),
            })
        })
        .await
}

pub struct PullLine {
    pub repo: String,
    pub number: u64,
    pub url: String,
    pub title: String,
    pub author: String,
    pub waiting: String,
}

/// The orders of the pull requests waiting for review.
const PULL_ORDERS: [(&str, &str, bool); 3] = [
    ("waiting", "waiting", true),
    ("repo", "repository", false),
    ("author", "author", false),
];

#[derive(Template)]
#[template(path = "pull_requests.html")]
struct PullRequestsPage {
    frame: Frame,
    pager: Pager,
    sorter: Vec<SortLink>,
    waiting: Vec<PullLine>,
}

pub struct CursorLine {
    pub source: String,
    pub scope: String,
    pub resource: String,
    pub moved: String,
    pub age: String,
}

#[derive(Template)]
#[template(path = "sources.html")]
struct SourcesPage {
    frame: Frame,
    counts: Vec<(&'static str, u64)>,
    generation: i64,
    built: String,
    cursors: Vec<CursorLine>,
    deliveries: Vec<DeliveryLine>,
}

/// The latest webhook delivery of one repository and event.
pub struct DeliveryLine {
    pub repo: String,
    pub event: String,
    pub received: String,
    pub age: String,
    pub outcome: String,
    pub count: i64,
}

/// Where the data comes from and how fresh it is: the store's records, the snapshot the pages
/// show, each connector cursor with when it last moved, and the last webhook delivery per
/// repository and event.
pub async fn sources(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Result<Response, ApiError> {
    let view = state.view();
    let window = filters.window(&view, false)?;
    // What the snapshot holds (the store as of its generation): no count of the store's
    // tables per request.
    let (commits, pull_requests, deployments, incidents, issues) = view.snapshot.model().counts();
    let now = chrono::Utc::now();
    let cursors = state
        .cursors()
        .await
        .iter()
        .map(|c| CursorLine {
            age: hours(Some(
                (now - c.updated_at).num_seconds().max(0) as f64 / 3600.0,
            )),
            moved: c.updated_at.format("%Y-%m-%d %H:%M").to_string(),
            source: c.source.clone(),
            scope: c.scope.clone(),
            resource: c.resource.clone(),
        })
        .collect();
    let deliveries = match state.store().last_deliveries().await {
        Ok(deliveries) => deliveries,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the last webhook deliveries");
            Vec::new()
        }
    };
    let deliveries = deliveries
        .into_iter()
        .map(|d| DeliveryLine {
            age: hours(Some(
                (now - d.received_at).num_seconds().max(0) as f64 / 3600.0,
            )),
            received: d.received_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            repo: d.repo,
            event: match d.action {
                Some(action) => format!("{} ({action})", d.event),
                None => d.event,
            },
            outcome: d.outcome.unwrap_or_else(|| "not processed yet".to_string()),
            count: d.count,
        })
        .collect();
    render(&SourcesPage {
        frame: Frame::new("sources", &view, &filters, &window),
        deliveries,
        counts: vec![
            ("commits", commits),
            ("pull requests", pull_requests),
            ("deployment records", deployments),
            ("incidents", incidents),
            ("tracker issues", issues),
        ],
        generation: view.generation,
        built: format!(
            "{:.0} s ago, in {:.2} s",
            view.built_at.elapsed().as_secs_f64(),
            view.build_seconds
        ),
        cursors,
    })
}

/// Open, ready pull requests that no one but their author (or a bot) has reviewed yet, oldest
/// first, as of the window's end, a page at a time.
pub async fn pull_requests(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Result<Response, ApiError> {
    let view = state.view();
    let window = filters.window(&view, false)?;
    let page = filters.page()?;
    let order = Order::of(&filters, &PULL_ORDERS)?;
    state
        .heavy(move || {
            let scope = view.snapshot.resolve(&filters.scope())?;
            let config = view.snapshot.config();
            let at = window.end();
            let mut in_scope: HashMap<&str, bool> = HashMap::new();
            let mut waiting: Vec<flowmeter_engine::PullView> = view
                .snapshot
                .pull_views()
                .filter(|p| {
                    p.created_at < at
                        && p.merged_at.is_none_or(|t| t >= at)
                        && p.closed_at.is_none_or(|t| t >= at)
                })
                .filter(|p| !p.draft || p.ready_at.is_some_and(|t| t < at))
                .filter(|p| {
                    *in_scope.entry(p.repo).or_insert_with(|| {
                        view.snapshot
                            .prepared
                            .services_of_repo(p.repo, config)
                            .iter()
                            .any(|s| scope.matches(Some(s), Some(p.repo)))
                    })
                })
                .filter(|p| !p.reviewed_before(at, config))
                .collect();
            let ready = |p: &flowmeter_engine::PullView| p.ready_at.unwrap_or(p.created_at);
            waiting.sort_by_key(|p| (ready(p), p.repo, p.number));
            // Stable: ties keep the oldest first.
            waiting.sort_by(|a, b| {
                order.apply(match order.column {
                    // Waiting longer is being ready earlier.
                    0 => ready(b).cmp(&ready(a)),
                    1 => a.repo.cmp(b.repo),
                    _ => a.author.cmp(&b.author),
                })
            });
            let query = filters.query_for(&window);
            let (pager, shown) = Pager::new(
                "/pull-requests",
                &format!("{query}{}", order.query()),
                page,
                waiting.len(),
            );
            let links = OutLinks::of(config);
            let lines = waiting[shown]
                .iter()
                .map(|p| PullLine {
                    url: links.pull(p.repo, p.number),
                    repo: p.repo.to_string(),
                    number: p.number,
                    title: p.title.unwrap_or_default().to_string(),
                    author: p.author.unwrap_or_default().to_string(),
                    waiting: hours(Some((at - ready(p)).num_minutes() as f64 / 60.0)),
                })
                .collect();
            render(&PullRequestsPage {
                frame: Frame::new("pull-requests", &view, &filters, &window),
                sorter: order.links("/pull-requests", &query, &PULL_ORDERS),
                pager,
                waiting: lines,
            })
        })
        .await
}

/// The numbers that have receipts, by the name their URLs use.
const METRICS: [&str; 5] = [
    "deployment-frequency",
    "lead-time",
    "change-failure-rate",
    "recovery-time",
    "rework-rate",
];

#[derive(Template)]
#[template(path = "receipts.html")]
struct ReceiptsPage {
    frame: Frame,
    title: &'static str,
    number: String,
    rule: &'static str,
    deployments: Vec<DeploymentLine>,
    changes: Vec<ChangeLine>,
    incidents: Vec<IncidentLine>,
    api: String,
}

/// The rows behind one number, with the rule of docs/metrics.md that was applied.
pub async fn receipts(
    State(state): State<AppState>,
    Path(metric): Path<String>,
    Query(filters): Query<Filters>,
) -> Result<Response, ApiError> {
    // An unknown metric is refused before any work is done for it.
    if !METRICS.contains(&metric.as_str()) {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            param: Some("metric".into()),
            message: format!("unknown metric '{}'", encode(&metric)),
        });
    }
    let view = state.view();
    let window = filters.window(&view, false)?;
    state
        .heavy(move || receipt_page(&view, &metric, &filters, window))
        .await
}

fn receipt_page(
    view: &View,
    metric: &str,
    filters: &Filters,
    window: Window,
) -> Result<Response, ApiError> {
    let scope = filters.scope();
    let report = view.snapshot.dora(window, &scope)?;
    let r = view.snapshot.receipts(window, &scope)?;
    let query = filters.query_for(&window);
    let (title, number, rule, deployments, changes, incidents, api) = match metric {
        "deployment-frequency" => (
            "Deployment frequency",
            format!(
                "{} deployments, {:.2} per week",
                report.deployment_frequency.deployments, report.deployment_frequency.per_week
            ),
            "D1: the successful production deployments (D0) in the window; per week = deployments x 7 / days.",
            deployment_lines(view, &r.deployments),
            Vec::new(),
            Vec::new(),
            format!("/api/v1/deployments?{query}"),
        ),
        "lead-time" => (
            "Lead time for changes",
            format!(
                "median {} over {} changes",
                hours(report.lead_time.median_hours),
                report.lead_time.changes
            ),
            "D2: each change (a commit with at most one parent) delivered by a deployment in the window, from its authored time (squash and rebase merges: the pull request's first commit) to the deployment.",
            Vec::new(),
            change_lines(view, &r.changes),
            Vec::new(),
            format!("/api/v1/changes?{query}"),
        ),
        "change-failure-rate" => (
            "Change failure rate",
            format!(
                "{} ({} of {})",
                percent(report.change_failure_rate.rate),
                report.change_failure_rate.failed,
                report.change_failure_rate.deployments
            ),
            "D3: a deployment failed when an incident names it, or is the latest deployment of the incident's service at most 7 days before it.",
            deployment_lines(view, &r.deployments),
            Vec::new(),
            Vec::new(),
            format!("/api/v1/deployments?{query}"),
        ),
        "recovery-time" => (
            "Recovery time",
            format!(
                "median {} over {} incidents",
                hours(report.recovery_time.median_hours),
                report.recovery_time.incidents
            ),
            "D4: every incident resolved in the window, from created to resolved; open incidents are listed, not averaged.",
            Vec::new(),
            Vec::new(),
            incident_lines(
                view,
                &r.incidents
                    .iter()
                    .chain(r.open_incidents.iter())
                    .copied()
                    .collect::<Vec<_>>(),
            ),
            format!("/api/v1/incidents?{query}"),
        ),
        "rework-rate" => (
            "Rework rate",
            format!(
                "{} ({} of {})",
                percent(report.rework_rate.rate),
                report.rework_rate.rework,
                report.rework_rate.deployments
            ),
            "D5: a deployment (never a baseline) is rework when it was caused by a failure in production: it reverts the previous deployment's commit; it rolls back to the commit of an earlier deployment; it delivers a fix within the incident window after an incident of its service; or it delivers a change that names an incident (an incident label, a linked incident issue). Each rework deployment below says which.",
            deployment_lines(view, &r.deployments),
            Vec::new(),
            Vec::new(),
            format!("/api/v1/deployments?{query}"),
        ),
        other => {
            return Err(ApiError {
                status: StatusCode::NOT_FOUND,
                param: Some("metric".into()),
                message: format!("unknown metric '{}'", encode(other)),
            });
        }
    };
    render(&ReceiptsPage {
        frame: Frame::new("overview", view, filters, &window),
        title,
        number,
        rule,
        deployments,
        changes,
        incidents,
        api,
    })
}

/// A stage as people say it ("Waiting for review"), from its document name.
pub(crate) fn stage_label(id: &str) -> &'static str {
    flowmeter_engine::stages::Stage::of_id(id).map_or("an unknown stage", |s| s.label())
}

pub struct StageLine {
    pub stage: &'static str,
    pub label: &'static str,
    pub count: u64,
    pub median: String,
    pub p90: String,
    pub share: String,
}

pub struct WipGroup {
    pub title: &'static str,
    pub count: usize,
    pub items: Vec<PullLine>,
}

#[derive(Template)]
#[template(path = "value_stream.html")]
struct ValueStreamPage {
    frame: Frame,
    merged: u64,
    unreviewed: u64,
    unlinked: u64,
    stages: Vec<StageLine>,
    chart: String,
    bottleneck: String,
    wip_at: String,
    wip: Vec<WipGroup>,
}

/// Rule S: where merged pull requests spent their time, the bottleneck, and what waits now.
pub async fn value_stream(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Result<Response, ApiError> {
    let view = state.view();
    let window = filters.window(&view, false)?;
    let now = chrono::Utc::now();
    state.heavy(move || {
        let r = view.snapshot.stages(window, &filters.scope(), now)?;
        let share = |s: Option<f64>| s.map(|s| format!("{:.1}%", s * 100.0)).unwrap_or_else(|| "no data".into());
        let stages = r
            .stages
            .iter()
            .map(|s| StageLine { stage: s.stage, label: stage_label(s.stage), count: s.count, median: hours(s.median_hours), p90: hours(s.p90_hours), share: share(s.share) })
            .collect();
        let chart = svg::labelled_bars(
            &r.stages.iter().map(|s| (stage_label(s.stage).to_string(), s.share.unwrap_or(0.0), share(s.share))).collect::<Vec<_>>(),
            "share of the merged pull requests' time spent in each stage, in percent",
        );
        let bottleneck = match &r.bottleneck {
            Some(b) => format!(
                "The bottleneck is {}: {:.1}% of the time of the pull requests merged in this window (previous window: {}).",
                stage_label(b.stage),
                b.share * 100.0,
                share(b.previous_share)
            ),
            None => "No pull request was merged in this window, so there is no bottleneck to name.".into(),
        };
        let links = OutLinks::of(view.snapshot.config());
        let group = |title: &'static str, items: &[flowmeter_engine::stages::WipItem]| WipGroup {
            title,
            count: items.len(),
            items: items
                .iter()
                .take(20)
                .map(|i| PullLine {
                    url: links.pull(&i.repo, i.number),
                    repo: i.repo.clone(),
                    number: i.number,
                    title: i.title.clone().unwrap_or_default(),
                    author: i.author.clone().unwrap_or_default(),
                    waiting: hours(Some(i.age_hours)),
                })
                .collect(),
        };
        let w = &r.work_in_progress;
        render(&ValueStreamPage {
            frame: Frame::new("value-stream", &view, &filters, &window),
            merged: r.pull_requests.merged,
            unreviewed: r.pull_requests.unreviewed,
            unlinked: r.pull_requests.unlinked,
            stages,
            chart,
            bottleneck,
            wip_at: time(&w.at),
            wip: vec![
                group("Waiting for a first review", &w.waiting_for_review),
                group("In review", &w.in_review),
                group("Merged, not deployed", &w.merged_not_deployed),
            ],
        })
    })
    .await
}

#[derive(Template)]
#[template(path = "digest.html")]
struct DigestPage {
    frame: Frame,
    lines: crate::digest::Lines,
}

/// A team's weekly digest: what its Slack message says, with the same links.
pub async fn digest(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Result<Response, ApiError> {
    use flowmeter_core::IsoWeek;
    let view = state.view();
    let week = match filters
        .week
        .as_deref()
        .map(str::trim)
        .filter(|w| !w.is_empty())
    {
        Some(w) => IsoWeek::parse("week", w)?,
        None => IsoWeek::completed_before(chrono::Utc::now()),
    };
    let team = filters
        .team
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty() && *t != "all")
        .map(String::from);
    let window = week.window();
    let key = format!(
        "/digest?team={}&week={week}",
        crate::params::encode(team.as_deref().unwrap_or("all"))
    );
    if let Some(html) = view.cached(&key) {
        return Ok(Html(html).into_response());
    }
    let now = chrono::Utc::now();
    state
        .clone()
        .heavy(move || {
            let digest = crate::digest::Digest::build(&view.snapshot, team.as_deref(), week, now)?;
            let lines = digest.lines(&crate::digest::Links::of(view.snapshot.config(), ""));
            let frame_filters = Filters {
                from: Some(window.from.to_string()),
                to: Some(window.to.to_string()),
                team,
                ..Filters::default()
            };
            let page = DigestPage {
                frame: Frame::new("digest", &view, &frame_filters, &window),
                lines,
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

    #[test]
    fn records_of_followed_repositories_link_to_github_and_keys_to_jira() {
        let mut config = flowmeter_core::Config::default();
        config.github.url = "https://ghe.acme.example/api/v3".into();
        config.github.repos = vec!["acme/api".into()];
        config.github.orgs = vec!["tools".into()];
        config.jira.url = "https://acme.atlassian.net/".into();
        let links = OutLinks::of(&config);
        let ghe = "https://ghe.acme.example";
        assert_eq!(
            links.commit("acme/api", "abc123"),
            format!("{ghe}/acme/api/commit/abc123")
        );
        assert_eq!(
            links.pull("Tools/cli", 7),
            format!("{ghe}/Tools/cli/pull/7")
        );
        assert_eq!(
            links.deployment("acme/api", "run-42"),
            format!("{ghe}/acme/api/actions/runs/42")
        );
        assert_eq!(
            links.deployment("acme/api", "1004"),
            format!("{ghe}/acme/api/deployments")
        );
        assert_eq!(
            links.deployment("acme/api", "v1.2.0"),
            format!("{ghe}/acme/api/releases/tag/v1.2.0")
        );
        assert_eq!(
            links.incident(Some("acme/api"), "#12"),
            format!("{ghe}/acme/api/issues/12")
        );
        assert_eq!(
            links.incident(None, "PAY-7"),
            "https://acme.atlassian.net/browse/PAY-7"
        );
        // Not followed, not a key: no link rather than a wrong one.
        assert_eq!(links.commit("other/repo", "abc123"), "");
        assert_eq!(links.incident(Some("other/repo"), "#12"), "");
        assert_eq!(links.incident(None, "pager-991"), "");
        let plain = OutLinks::of(&flowmeter_core::Config::default());
        assert_eq!(plain.commit("acme/api", "abc"), "");
        assert_eq!(plain.incident(None, "PAY-7"), "");
    }
}
