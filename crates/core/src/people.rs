//! People as code: `[[people]]` (who is who across GitHub, git and Jira, their team over time,
//! their FTE and absences) and `[capitalization]` (the weights, projects and rules of the
//! capitalization method, docs/capitalization.md). Validated with the rest of the
//! configuration; [`People`] is the resolved form the method reads.
//!
//! Apart from `config.rs` (already over 1,300 lines) so the configuration of people and of the
//! method lives in one place; over 600 lines with its validation tests.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, config_error};

/// `[[people]]`: one person and every identity that is them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonConfig {
    /// A stable id (an employee number, a handle); unique.
    pub id: String,
    pub name: String,
    /// GitHub logins, commit e-mails and names, Jira account ids, e-mails or display names;
    /// compared ignoring case. An identity belongs to one person only.
    #[serde(default)]
    pub identities: Vec<String>,
    /// The team, or the teams over time: `[{ team = "a" }, { team = "b", from = "2026-06-01" }]`.
    #[serde(default)]
    pub team: TeamHistory,
    #[serde(default)]
    pub cost_center: String,
    /// Contracted full-time equivalent, above 0 and at most 1 (default 1).
    #[serde(default = "one")]
    pub fte: f64,
    /// First day with the organisation (inclusive).
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// Last day with the organisation (inclusive).
    #[serde(default)]
    pub until: Option<NaiveDate>,
    #[serde(default)]
    pub absences: Vec<Absence>,
}

fn one() -> f64 {
    1.0
}

/// A person's team: one name for all time, or spans each starting on its `from` day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TeamHistory {
    Always(String),
    Spans(Vec<TeamSpan>),
}

impl Default for TeamHistory {
    fn default() -> Self {
        TeamHistory::Always(String::new())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamSpan {
    pub team: String,
    /// The first day in this team (absent: since always).
    #[serde(default)]
    pub from: Option<NaiveDate>,
}

/// Days away, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Absence {
    pub from: NaiveDate,
    pub until: NaiveDate,
}

/// `[capitalization]`: how effort is weighed and what is capitalizable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CapitalizationConfig {
    /// Hours of one FTE in one week, for `est_hours` (default 40).
    pub hours_per_week: f64,
    pub weights: Weights,
    /// Days nobody works (public holidays); they are not working days.
    pub holidays: Vec<NaiveDate>,
    /// A CSV of absences (`person_id,from,until`), relative to the configuration file; read
    /// by the command line and added to each person's `absences`.
    pub absences_file: String,
    pub projects: Vec<CapProject>,
    pub rules: Vec<CapRule>,
}

impl Default for CapitalizationConfig {
    fn default() -> Self {
        CapitalizationConfig {
            hours_per_week: 40.0,
            weights: Weights::default(),
            holidays: Vec::new(),
            absences_file: String::new(),
            projects: Vec::new(),
            rules: Vec::new(),
        }
    }
}

/// What one piece of evidence weighs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    /// A commit authored (merge commits are not authored work).
    pub commit: f64,
    /// A pull request opened, and again when merged.
    pub pull_request: f64,
    /// A review submitted.
    pub review: f64,
    /// A working day an issue assigned to the person sat in an in-progress status.
    pub issue_day: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            commit: 1.0,
            pull_request: 2.0,
            review: 1.0,
            issue_day: 2.0,
        }
    }
}

/// `[[capitalization.projects]]`: a capitalizable project, the tracker work that belongs to
/// it, and the dates between which its work is capitalizable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapProject {
    pub name: String,
    /// Jira project keys whose issues belong to it.
    #[serde(default)]
    pub jira_projects: Vec<String>,
    /// Epic keys whose issues (and the epics themselves) belong to it.
    #[serde(default)]
    pub epics: Vec<String>,
    /// Issue labels that put an issue in it.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Management authorized and committed funding and completion is probable: work from this
    /// day on is capitalizable.
    pub authorized_from: NaiveDate,
    /// The software went live: work from this day on is maintenance.
    #[serde(default)]
    pub ready_for_use: Option<NaiveDate>,
}

/// `[[capitalization.rules]]`: issues matching every condition given are (not) capitalizable.
/// Rules are tried in order; the first match decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapRule {
    /// What the `cap_rule` column says (default `rule <n>`).
    #[serde(default)]
    pub name: String,
    /// Jira project keys or `[[capitalization.projects]]` names.
    #[serde(default)]
    pub project: Vec<String>,
    #[serde(default)]
    pub epic: Vec<String>,
    /// Issue types, ignoring case.
    #[serde(default, rename = "type")]
    pub issue_type: Vec<String>,
    /// Issue labels, ignoring case.
    #[serde(default)]
    pub label: Vec<String>,
    pub capitalizable: bool,
}

impl CapRule {
    /// What the `cap_rule` column says for rule `i` (0-based).
    pub fn label_of(&self, i: usize) -> String {
        if self.name.is_empty() {
            format!("rule {}", i + 1)
        } else {
            self.name.clone()
        }
    }
}

/// Checks `[[people]]` and `[capitalization]` against themselves and the teams.
pub(crate) fn validate(
    people: &[PersonConfig],
    cap: &CapitalizationConfig,
    teams: &[crate::config::TeamConfig],
) -> Result<(), ConfigError> {
    let mut ids = HashMap::new();
    let mut identities: HashMap<String, &str> = HashMap::new();
    for (i, person) in people.iter().enumerate() {
        let key = |k: &str| format!("people[{i}].{k}");
        if person.id.trim().is_empty() {
            return Err(config_error(key("id"), "must not be empty"));
        }
        if ids.insert(person.id.as_str(), i).is_some() {
            return Err(config_error(
                key("id"),
                format!("'{}' is defined twice", person.id),
            ));
        }
        if person.name.trim().is_empty() {
            return Err(config_error(key("name"), "must not be empty"));
        }
        for identity in &person.identities {
            let folded = identity.trim().to_lowercase();
            if folded.is_empty() {
                return Err(config_error(key("identities"), "must not hold empty names"));
            }
            if let Some(other) = identities.insert(folded, &person.id) {
                return Err(config_error(
                    key("identities"),
                    format!(
                        "'{identity}' is mapped twice: to '{other}' and to '{}'",
                        person.id
                    ),
                ));
            }
        }
        if !(person.fte > 0.0 && person.fte <= 1.0) {
            return Err(config_error(key("fte"), "must be above 0 and at most 1"));
        }
        if let (Some(from), Some(until)) = (person.from, person.until)
            && until < from
        {
            return Err(config_error(key("until"), "is before from"));
        }
        match &person.team {
            TeamHistory::Always(team) => check_team(team, teams, &key("team"))?,
            TeamHistory::Spans(spans) => {
                if spans.is_empty() {
                    return Err(config_error(key("team"), "must name at least one team"));
                }
                for (j, span) in spans.iter().enumerate() {
                    check_team(&span.team, teams, &format!("people[{i}].team[{j}].team"))?;
                    if j > 0 && span.from.is_none() {
                        return Err(config_error(
                            format!("people[{i}].team[{j}].from"),
                            "every team after the first needs its from day",
                        ));
                    }
                    if j > 0 && span.from <= spans[j - 1].from {
                        return Err(config_error(
                            format!("people[{i}].team[{j}].from"),
                            "must be after the previous team's from day",
                        ));
                    }
                }
            }
        }
        let mut absences = person.absences.clone();
        absences.sort();
        for (j, absence) in absences.iter().enumerate() {
            if absence.until < absence.from {
                return Err(config_error(
                    key("absences"),
                    format!(
                        "{} .. {}: until is before from",
                        absence.from, absence.until
                    ),
                ));
            }
            if j > 0 && absence.from <= absences[j - 1].until {
                return Err(config_error(
                    key("absences"),
                    format!(
                        "{} .. {} overlaps {} .. {}",
                        absences[j - 1].from,
                        absences[j - 1].until,
                        absence.from,
                        absence.until
                    ),
                ));
            }
        }
    }
    if !(cap.hours_per_week > 0.0 && cap.hours_per_week <= 168.0) {
        return Err(config_error(
            "capitalization.hours_per_week",
            "must be above 0 and at most 168",
        ));
    }
    let w = cap.weights;
    let weights = [w.commit, w.pull_request, w.review, w.issue_day];
    if weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) || weights.iter().all(|w| *w == 0.0) {
        return Err(config_error(
            "capitalization.weights",
            "must be finite and not negative, and not all 0",
        ));
    }
    let mut names = HashMap::new();
    for (i, project) in cap.projects.iter().enumerate() {
        let key = |k: &str| format!("capitalization.projects[{i}].{k}");
        if project.name.trim().is_empty() {
            return Err(config_error(key("name"), "must not be empty"));
        }
        if names.insert(project.name.as_str(), i).is_some() {
            return Err(config_error(
                key("name"),
                format!("'{}' is defined twice", project.name),
            ));
        }
        if project.jira_projects.is_empty() && project.epics.is_empty() && project.labels.is_empty()
        {
            return Err(config_error(
                key("jira_projects"),
                "name at least one of jira_projects, epics and labels",
            ));
        }
        if let Some(live) = project.ready_for_use
            && live <= project.authorized_from
        {
            return Err(config_error(
                key("ready_for_use"),
                "must be after authorized_from",
            ));
        }
    }
    for (i, rule) in cap.rules.iter().enumerate() {
        if rule.project.is_empty()
            && rule.epic.is_empty()
            && rule.issue_type.is_empty()
            && rule.label.is_empty()
        {
            return Err(config_error(
                format!("capitalization.rules[{i}]"),
                "name at least one of project, epic, type and label",
            ));
        }
    }
    Ok(())
}

fn check_team(
    team: &str,
    teams: &[crate::config::TeamConfig],
    key: &str,
) -> Result<(), ConfigError> {
    if !team.is_empty() && !teams.is_empty() && !teams.iter().any(|t| t.name == team) {
        return Err(config_error(
            key,
            format!("'{team}' is not a [[teams]] name"),
        ));
    }
    Ok(())
}

/// Reads an absences CSV (`person_id,from,until`, a header line first) into `people`; errors
/// name the line. `source` names the file in errors.
pub fn add_absences(
    people: &mut [PersonConfig],
    text: &str,
    source: &str,
) -> Result<(), ConfigError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header = lines.next().map(|(_, l)| l.trim().to_lowercase());
    if header.as_deref() != Some("person_id,from,until") {
        return Err(config_error(
            source,
            "must start with the header person_id,from,until",
        ));
    }
    for (n, line) in lines {
        let at = || format!("{source} line {}", n + 1);
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let [id, from, until] = cells[..] else {
            return Err(config_error(
                at(),
                "needs three cells: person_id,from,until",
            ));
        };
        let day = |s: &str| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| config_error(at(), format!("'{s}' is not a date (YYYY-MM-DD)")))
        };
        let absence = Absence {
            from: day(from)?,
            until: day(until)?,
        };
        let person = people
            .iter_mut()
            .find(|p| p.id == id)
            .ok_or_else(|| config_error(at(), format!("'{id}' is not a [[people]] id")))?;
        person.absences.push(absence);
    }
    Ok(())
}

/// The people of the configuration, resolved for lookups.
#[derive(Debug, Clone, Default)]
pub struct People {
    pub people: Vec<PersonConfig>,
    identities: HashMap<String, usize>,
    bots: Vec<String>,
    holidays: std::collections::BTreeSet<NaiveDate>,
}

impl People {
    pub fn new(config: &crate::Config) -> People {
        let mut identities = HashMap::new();
        for (i, person) in config.people.iter().enumerate() {
            for identity in &person.identities {
                identities.insert(identity.trim().to_lowercase(), i);
            }
        }
        People {
            people: config.people.clone(),
            identities,
            bots: config.metrics.bot_logins.clone(),
            holidays: config.capitalization.holidays.iter().copied().collect(),
        }
    }

    /// Whether an author is a bot (`metrics.bot_logins`); bots are never people.
    pub fn is_bot(&self, author: &str) -> bool {
        let login = author.split(" <").next().unwrap_or(author).trim();
        self.bots
            .iter()
            .any(|b| crate::glob::matches_ignore_case(b, login))
    }

    /// The person an author is: a login, an account id, or `Name <email>` (matched by the whole
    /// text, then the e-mail, then the name).
    pub fn person_of(&self, author: &str) -> Option<usize> {
        if author.trim().is_empty() || self.is_bot(author) {
            return None;
        }
        let folded = author.trim().to_lowercase();
        if let Some(&p) = self.identities.get(&folded) {
            return Some(p);
        }
        let (name, email) = split_signature(&folded)?;
        self.identities
            .get(email)
            .or_else(|| self.identities.get(name))
            .copied()
    }

    /// The person's team on `day` ("" when none).
    pub fn team_on(&self, person: usize, day: NaiveDate) -> &str {
        match &self.people[person].team {
            TeamHistory::Always(team) => team,
            TeamHistory::Spans(spans) => spans
                .iter()
                .rev()
                .find(|s| s.from.is_none_or(|f| f <= day))
                .or(spans.first())
                .map_or("", |s| s.team.as_str()),
        }
    }

    /// Whether `day` is a working day (Monday to Friday, not a holiday).
    pub fn working_day(&self, day: NaiveDate) -> bool {
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&day)
    }

    /// Whether the person works on `day`: a working day within from/until and not absent.
    pub fn present(&self, person: usize, day: NaiveDate) -> bool {
        let p = &self.people[person];
        self.working_day(day)
            && p.from.is_none_or(|f| f <= day)
            && p.until.is_none_or(|u| day <= u)
            && !p.absences.iter().any(|a| a.from <= day && day <= a.until)
    }

    /// People by id, for reports.
    pub fn by_id(&self) -> BTreeMap<&str, usize> {
        self.people
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.as_str(), i))
            .collect()
    }
}

/// `name <email>` split into its name and e-mail, both as given.
pub fn split_signature(author: &str) -> Option<(&str, &str)> {
    let (name, rest) = author.split_once(" <")?;
    Some((name.trim(), rest.strip_suffix('>')?.trim()))
}

/// The tracker issue keys (`PAY-12`) a text names, in order, each once.
pub fn issue_keys(text: &str) -> Vec<&str> {
    static KEY: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?:^|[^A-Za-z0-9_-])([A-Z][A-Z0-9_]{0,19}-[1-9][0-9]{0,9})(?:$|[^A-Za-z0-9_])",
        )
        .expect("valid pattern")
    });
    let mut keys: Vec<&str> = Vec::new();
    let mut at = 0;
    while let Some(found) = KEY.captures_at(text, at) {
        let key = found.get(1).expect("group 1");
        if !keys.contains(&key.as_str()) {
            keys.push(key.as_str());
        }
        at = key.end();
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_keys_are_found_in_messages_branches_and_titles() {
        assert_eq!(
            issue_keys("PAY-12: fix the thing (PAY-3)"),
            ["PAY-12", "PAY-3"]
        );
        assert_eq!(issue_keys("feature/PAY-12-refunds"), ["PAY-12"]);
        assert_eq!(issue_keys("PAY-12 and PAY-12 again"), ["PAY-12"]);
        assert!(issue_keys("UTF-8 is not a key? it has the shape").contains(&"UTF-8"));
        assert!(issue_keys("pay-12 lower case, X-0, PAY-").is_empty());
        assert!(issue_keys("xPAY-12 glued").is_empty());
    }

    fn config(text: &str) -> Result<crate::Config, ConfigError> {
        crate::Config::from_toml(text, |_| None)
    }

    #[test]
    fn an_identity_mapped_twice_names_both_people() {
        let err = config(
            "[[people]]\nid = \"a\"\nname = \"A\"\nidentities = [\"ann\"]\n\
             [[people]]\nid = \"b\"\nname = \"B\"\nidentities = [\"Ann\"]\n",
        )
        .unwrap_err();
        assert_eq!(err.key, "people[1].identities");
        assert!(
            err.message.contains("'a'") && err.message.contains("'b'"),
            "{err}"
        );
    }

    #[test]
    fn overlapping_absences_and_unknown_rule_fields_are_refused_by_key() {
        let err = config(
            "[[people]]\nid = \"a\"\nname = \"A\"\nabsences = [{ from = 2026-11-16, until = 2026-11-18 }, { from = 2026-11-18, until = 2026-11-19 }]\n",
        )
        .unwrap_err();
        assert_eq!(err.key, "people[0].absences");
        assert!(err.message.contains("overlaps"), "{err}");
        let err = config("[[capitalization.rules]]\ncomponent = [\"x\"]\ncapitalizable = false\n")
            .unwrap_err();
        assert!(err.key.starts_with("capitalization.rules"), "{err}");
        assert!(err.message.contains("component"), "{err}");
    }

    #[test]
    fn people_are_found_by_login_email_or_name_and_bots_never() {
        let config = config(
            "[[people]]\nid = \"a\"\nname = \"Ann Lee\"\nidentities = [\"ann\", \"ann@x.dev\", \"Ann Lee\"]\n\
             team = [{ team = \"core\" }, { team = \"web\", from = 2026-06-01 }]\n",
        )
        .unwrap();
        let people = People::new(&config);
        assert_eq!(people.person_of("ANN"), Some(0));
        assert_eq!(people.person_of("Someone <ann@x.dev>"), Some(0));
        assert_eq!(people.person_of("Ann Lee <other@x.dev>"), Some(0));
        assert_eq!(people.person_of("dependabot[bot]"), None);
        assert_eq!(people.person_of("bob"), None);
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(people.team_on(0, day("2026-05-31")), "core");
        assert_eq!(people.team_on(0, day("2026-06-01")), "web");
    }

    #[test]
    fn an_absences_file_names_its_bad_line() {
        let mut people = vec![PersonConfig {
            id: "a".into(),
            name: "A".into(),
            identities: vec![],
            team: TeamHistory::default(),
            cost_center: String::new(),
            fte: 1.0,
            from: None,
            until: None,
            absences: vec![],
        }];
        add_absences(
            &mut people,
            "person_id,from,until\na,2026-11-16,2026-11-17\n",
            "f.csv",
        )
        .unwrap();
        assert_eq!(people[0].absences.len(), 1);
        let err = add_absences(
            &mut people,
            "person_id,from,until\nz,2026-11-16,2026-11-17\n",
            "f.csv",
        )
        .unwrap_err();
        assert_eq!(err.key, "f.csv line 2");
    }
}
