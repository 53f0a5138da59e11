//! The weekly digest of a team (or the organisation): its numbers for the week and the last four
//! weeks, the bottleneck, the pull requests waiting longest for review, deployments and
//! incidents. One wording, [`Lines`], is rendered twice: as a Slack Block Kit message and as
//! the `/digest` page, so the message and the page its link opens agree.

use flowmeter_core::{IsoWeek, Scope, Timestamp};
use flowmeter_engine::report::DoraReport;
use flowmeter_engine::stages::StagesReport;
use flowmeter_engine::{EngineError, Snapshot};
use serde_json::{Value, json};

use crate::pages::{hours, percent, tier_name, trend};
use crate::params::encode;

/// The numbers of one team's week.
#[derive(Debug, Clone)]
pub struct Digest {
    /// `None`: the organisation.
    pub team: Option<String>,
    pub week: IsoWeek,
    pub week_now: DoraReport,
    pub week_before: DoraReport,
    pub four_now: DoraReport,
    pub four_before: DoraReport,
    pub stages: StagesReport,
    /// Incidents of the scope created during the week.
    pub incidents_opened: u64,
}

impl Digest {
    pub fn build(
        snapshot: &Snapshot,
        team: Option<&str>,
        week: IsoWeek,
        now: Timestamp,
    ) -> Result<Digest, EngineError> {
        let scope = Scope {
            team: team.map(String::from),
            ..Scope::default()
        };
        let window = week.window();
        let four = week.trailing(4);
        let resolved = snapshot.resolve(&scope)?;
        let incidents_opened = snapshot
            .prepared
            .incidents
            .iter()
            .filter(|i| {
                window.contains(i.created_at)
                    && resolved.matches(i.service.as_deref(), i.repo.as_deref())
            })
            .count() as u64;
        Ok(Digest {
            team: team.map(String::from),
            week,
            week_now: snapshot.dora(window, &scope)?,
            week_before: snapshot.dora(window.previous(), &scope)?,
            four_now: snapshot.dora(four, &scope)?,
            four_before: snapshot.dora(four.previous(), &scope)?,
            stages: snapshot.stages(window, &scope, now)?,
            incidents_opened,
        })
    }

    /// No deployments, and no pull request merged or waiting for review.
    pub fn quiet(&self) -> bool {
        self.week_now.deployment_frequency.deployments == 0
            && self.stages.pull_requests.merged == 0
            && self.stages.work_in_progress.waiting_for_review.is_empty()
    }
}

/// Where links point: `base` is the dashboard's public address (empty on the dashboard
/// itself), `github` the web address pull requests are linked to.
#[derive(Debug, Clone)]
pub struct Links {
    pub base: String,
    pub github: String,
}

impl Links {
    /// Links from the configuration: `server.public_url`, and GitHub's web address derived from
    /// its API address (`api.github.com` -> `github.com`, an Enterprise server without
    /// `/api/v3`).
    pub fn of(config: &flowmeter_core::Config, base: &str) -> Links {
        let api = config.github.url.trim_end_matches('/');
        let github = if api.is_empty() || api == "https://api.github.com" {
            "https://github.com".to_string()
        } else {
            api.trim_end_matches("/api/v3").to_string()
        };
        Links {
            base: base.trim_end_matches('/').to_string(),
            github,
        }
    }
}

/// A number with its tier, its change and the receipt it links to.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub value: String,
    pub tier: &'static str,
    pub trend: String,
    pub link: String,
}

/// One metric for the week and for the last four weeks.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricLine {
    pub title: &'static str,
    pub week: Figure,
    pub four: Figure,
}

/// A pull request waiting for its first review.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub label: String,
    pub author: String,
    pub age: String,
    pub link: String,
}

/// The digest in words, with its links: what both the message and the page show.
#[derive(Debug, Clone, PartialEq)]
pub struct Lines {
    pub title: String,
    pub dates: String,
    /// The one line of a quiet week, instead of the numbers.
    pub quiet: Option<String>,
    pub metrics: Vec<MetricLine>,
    pub bottleneck: String,
    pub bottleneck_link: String,
    pub waiting: Vec<Waiting>,
    pub waiting_total: usize,
    pub waiting_link: String,
    pub deployments: u64,
    pub deployments_link: String,
    pub failed: u64,
    pub failed_link: String,
    pub incidents_opened: u64,
    pub incidents_resolved: u64,
    pub incidents_resolved_link: String,
    pub incidents_open: u64,
    pub incidents_link: String,
    pub dashboard: String,
}

impl Lines {
    /// The deployments line, in plain words.
    pub fn deployments_words(&self) -> String {
        format!("{} deployments, {} failed", self.deployments, self.failed)
    }

    /// The incidents line, in plain words.
    pub fn incidents_words(&self) -> String {
        format!(
            "{} opened, {} resolved, {} still open",
            self.incidents_opened, self.incidents_resolved, self.incidents_open
        )
    }

    pub fn any_incident(&self) -> bool {
        self.incidents_opened + self.incidents_resolved + self.incidents_open > 0
    }
}

fn short_date(d: chrono::NaiveDate) -> String {
    d.format("%-d %b %Y").to_string()
}

/// Cuts `text` to `max` characters, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Slack's escaping of user text: `&`, `<` and `>`.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One metric of a report: its value in words, its tier, and the number its trend compares.
type Pick = dyn Fn(&DoraReport) -> (String, &'static str, Option<f64>);

/// The pull requests listed by name.
const WAITING_SHOWN: usize = 3;

impl Digest {
    pub fn lines(&self, links: &Links) -> Lines {
        let who = self
            .team
            .clone()
            .unwrap_or_else(|| "The organisation".into());
        let window = self.week.window();
        let four = self.week.trailing(4);
        let team = self
            .team
            .as_ref()
            .map(|t| format!("&team={}", encode(t)))
            .unwrap_or_default();
        let query = |w: flowmeter_core::Window| format!("from={}&to={}{team}", w.from, w.to);
        let link =
            |path: &str, w: flowmeter_core::Window| format!("{}{path}?{}", links.base, query(w));
        let (n, b, fn_, fb) = (
            &self.week_now,
            &self.week_before,
            &self.four_now,
            &self.four_before,
        );
        let figure = |slug: &str,
                      value: String,
                      tier: &'static str,
                      trend: String,
                      w: flowmeter_core::Window| Figure {
            value,
            tier,
            trend,
            link: link(&format!("/receipts/{slug}"), w),
        };
        let metric = |title, slug: &str, pick: &Pick, lower: bool| {
            let (wv, wt, wn) = pick(n);
            let (_, _, wb) = pick(b);
            let (fv, ft, f_n) = pick(fn_);
            let (_, _, f_b) = pick(fb);
            MetricLine {
                title,
                week: figure(slug, wv, wt, trend(wn, wb, lower, 7), window),
                four: figure(slug, fv, ft, trend(f_n, f_b, lower, 28), four),
            }
        };
        let metrics = vec![
            metric(
                "Deployment frequency",
                "deployment-frequency",
                &|r| {
                    let d = &r.deployment_frequency;
                    (
                        format!("{:.2} / week", d.per_week),
                        tier_name(d.tier),
                        Some(d.per_week),
                    )
                },
                false,
            ),
            metric(
                "Lead time for changes",
                "lead-time",
                &|r| {
                    (
                        hours(r.lead_time.median_hours),
                        tier_name(r.lead_time.tier),
                        r.lead_time.median_hours,
                    )
                },
                true,
            ),
            metric(
                "Change failure rate",
                "change-failure-rate",
                &|r| {
                    let c = &r.change_failure_rate;
                    (percent(c.rate), tier_name(c.tier), c.rate)
                },
                true,
            ),
            metric(
                "Recovery time",
                "recovery-time",
                &|r| {
                    let t = &r.recovery_time;
                    (hours(t.median_hours), tier_name(t.tier), t.median_hours)
                },
                true,
            ),
            metric(
                "Rework rate",
                "rework-rate",
                &|r| {
                    (
                        percent(r.rework_rate.rate),
                        "no tier table",
                        r.rework_rate.rate,
                    )
                },
                true,
            ),
        ];
        let bottleneck = match &self.stages.bottleneck {
            Some(bn) => {
                let label = flowmeter_engine::stages::Stage::of_id(bn.stage)
                    .map(|s| s.label())
                    .unwrap_or(bn.stage);
                let before = bn
                    .previous_share
                    .map(|p| format!(" (previous week: {:.1}%)", p * 100.0))
                    .unwrap_or_default();
                format!(
                    "{label}: {:.1}% of the time of the {} pull requests merged this week{before}",
                    bn.share * 100.0,
                    self.stages.pull_requests.merged
                )
            }
            None => {
                "No pull request was merged this week, so there is no bottleneck to name".into()
            }
        };
        let waiting_all = &self.stages.work_in_progress.waiting_for_review;
        let waiting = waiting_all
            .iter()
            .take(WAITING_SHOWN)
            .map(|w| Waiting {
                label: truncate(
                    &format!(
                        "{}#{} {}",
                        w.repo,
                        w.number,
                        w.title.as_deref().unwrap_or("(no title)")
                    ),
                    120,
                ),
                author: w.author.clone().unwrap_or_else(|| "unknown".into()),
                age: hours(Some(w.age_hours)),
                link: format!("{}/{}/pull/{}", links.github, w.repo, w.number),
            })
            .collect();
        let quiet = self.quiet().then(|| {
            format!("A quiet week for {who}: no deployments, and no pull request merged or waiting for review")
        });
        Lines {
            title: format!("{who} · week {}", self.week),
            dates: format!(
                "{} to {} (UTC days) · this week, then the last 4 weeks ({} to {}) · definitions v{}",
                short_date(window.from),
                short_date(window.to - chrono::Days::new(1)),
                short_date(four.from),
                short_date(four.to - chrono::Days::new(1)),
                n.definitions_version
            ),
            quiet,
            metrics,
            bottleneck,
            bottleneck_link: link("/value-stream", window),
            waiting,
            waiting_total: waiting_all.len(),
            waiting_link: link("/pull-requests", window),
            deployments: n.deployment_frequency.deployments,
            deployments_link: link("/deployments", window),
            failed: n.change_failure_rate.failed,
            failed_link: link("/receipts/change-failure-rate", window),
            incidents_opened: self.incidents_opened,
            incidents_resolved: n.recovery_time.incidents,
            incidents_resolved_link: link("/receipts/recovery-time", window),
            incidents_open: n.recovery_time.open,
            incidents_link: link("/incidents", window),
            dashboard: format!(
                "{}/digest?team={}&week={}",
                links.base,
                encode(self.team.as_deref().unwrap_or("all")),
                self.week
            ),
        }
    }
}

/// Slack's limits on what this message uses.
pub const MAX_BLOCKS: usize = 50;
pub const MAX_TEXT: usize = 3000;
pub const MAX_FIELD: usize = 2000;
pub const MAX_HEADER: usize = 150;

fn mrkdwn(text: String, max: usize) -> Value {
    json!({"type": "mrkdwn", "text": truncate(&text, max)})
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": mrkdwn(text, MAX_TEXT)})
}

fn context(text: String) -> Value {
    json!({"type": "context", "elements": [mrkdwn(text, MAX_TEXT)]})
}

/// `<url|label>`, the label escaped.
fn linked(url: &str, label: &str) -> String {
    format!("<{url}|{}>", escape(label))
}

impl Lines {
    /// The Slack message: Block Kit blocks and a plain-text fallback (`text`), within Slack's
    /// limits, user text escaped.
    pub fn slack_message(&self) -> Value {
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&self.title, MAX_HEADER)}}),
            context(escape(&self.dates)),
        ];
        let incidents = format!(
            "*Incidents*\n{} opened, {}, {}",
            self.incidents_opened,
            linked(
                &self.incidents_resolved_link,
                &format!("{} resolved", self.incidents_resolved)
            ),
            linked(
                &self.incidents_link,
                &format!("{} still open", self.incidents_open)
            ),
        );
        let text;
        if let Some(quiet) = &self.quiet {
            blocks.push(section(escape(quiet) + "."));
            if self.any_incident() {
                blocks.push(json!({"type": "section", "fields": [mrkdwn(incidents, MAX_FIELD)]}));
            }
            text = format!("{}: {quiet}. {}", self.title, self.dashboard);
        } else {
            let fields: Vec<Value> = self
                .metrics
                .iter()
                .flat_map(|m| {
                    [
                        (m.title.to_string(), &m.week),
                        (format!("{}, 4 weeks", m.title), &m.four),
                    ]
                })
                .map(|(title, f)| {
                    mrkdwn(
                        format!(
                            "*{title}*\n{} · {}\n{}",
                            linked(&f.link, &f.value),
                            f.tier,
                            escape(&f.trend)
                        ),
                        MAX_FIELD,
                    )
                })
                .collect();
            blocks.push(json!({"type": "section", "fields": fields}));
            blocks.push(json!({"type": "divider"}));
            blocks.push(section(format!(
                "*Bottleneck:* {}.",
                linked(&self.bottleneck_link, &self.bottleneck)
            )));
            let waiting = if self.waiting.is_empty() {
                "No pull request is waiting for a first review.".to_string()
            } else {
                let items: Vec<String> = self
                    .waiting
                    .iter()
                    .map(|w| {
                        format!(
                            "• {} by {}, waiting {}",
                            linked(&w.link, &w.label),
                            escape(&w.author),
                            w.age
                        )
                    })
                    .collect();
                format!(
                    "*Waiting longest for a first review* ({})\n{}",
                    linked(
                        &self.waiting_link,
                        &format!("{} in all", self.waiting_total)
                    ),
                    items.join("\n")
                )
            };
            blocks.push(section(waiting));
            blocks.push(json!({"type": "section", "fields": [
                mrkdwn(format!(
                    "*Deployments*\n{}, {}",
                    linked(&self.deployments_link, &format!("{} deployments", self.deployments)),
                    linked(&self.failed_link, &format!("{} failed", self.failed)),
                ), MAX_FIELD),
                mrkdwn(incidents, MAX_FIELD),
            ]}));
            let numbers: Vec<String> = self
                .metrics
                .iter()
                .map(|m| {
                    format!(
                        "{} {} ({})",
                        m.title.to_lowercase(),
                        m.week.value,
                        m.week.tier
                    )
                })
                .collect();
            text = format!(
                "{}: {}; {}. Bottleneck: {}. {}",
                self.title,
                self.deployments_words(),
                numbers.join(", "),
                self.bottleneck,
                self.dashboard
            );
        }
        blocks.push(context(linked(
            &self.dashboard,
            "Open this week on the dashboard",
        )));
        debug_assert!(blocks.len() <= MAX_BLOCKS);
        json!({"text": truncate(&escape(&text), MAX_TEXT), "blocks": blocks})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped_and_cut() {
        assert_eq!(escape("<b> & co"), "&lt;b&gt; &amp; co");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(
            linked("https://x/?a=1&b=2", "a|<b>"),
            "<https://x/?a=1&b=2|a|&lt;b&gt;>"
        );
    }
}
