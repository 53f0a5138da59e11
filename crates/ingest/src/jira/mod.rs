//! `flowmeter sync jira`: issues and their full status history through the connectors' HTTP
//! layer, with this module's own page types: their required fields are required, so an error
//! body that came with a success status is a fault and never an empty last page.
//!
//! Issues come from the enhanced search (`/rest/api/3/search/jql`, paged by `nextPageToken`)
//! ordered by `updated`; an issue whose changelog has more entries than the search returned is
//! completed from `/rest/api/3/issue/{key}/changelog` (paged by `startAt`). After each page is
//! committed, the cursor moves to the latest `updated` it held; the next sync asks for
//! `updated >= cursor - overlap`, and upserts make the overlap harmless. On Data Center
//! (`jira.edition`), issues come from `/rest/api/2/search`, paged by `startAt`, with whole
//! changelogs.

pub mod normalize;

use serde::Deserialize;
use serde_json::Value;

use flowmeter_core::Record;
use flowmeter_core::config::{JiraAuth, JiraConfig, JiraEdition};
use flowmeter_core::import::RecordKind;
use flowmeter_store::{Cursor, RawPayload, Store};

use crate::http::{Auth, Http, Limits, unreadable};
use crate::retry::{Fault, RetryPolicy};
use crate::{Progress, ResourceOutcome, SyncOutcome};

pub const SOURCE: &str = "jira";
const RESOURCE: &str = "issues";
const INCIDENTS: &str = "incidents";
/// Set on the archived body of an issue that `jira.incident_jql` selected.
pub const INCIDENT_MARK: &str = "flowmeterIncident";

#[derive(Debug, thiserror::Error)]
pub enum JiraError {
    #[error("jira.{0} is not configured")]
    Missing(&'static str),
    #[error("cannot set up the Jira client for {url}: {message}")]
    Client { url: String, message: String },
    #[error(transparent)]
    Store(#[from] flowmeter_store::StoreError),
}

/// A search page of Jira Cloud's enhanced search. `issues` and `isLast` are required: a body
/// without them (an error object that got through with a success status) is not a page.
#[derive(Debug, Deserialize)]
struct CloudPage {
    issues: Vec<Value>,
    #[serde(rename = "nextPageToken")]
    next_page_token: Option<String>,
    #[serde(rename = "isLast")]
    is_last: bool,
}

/// A search page of Data Center's search, paged by offset.
#[derive(Debug, Deserialize)]
struct OffsetPage {
    issues: Vec<Value>,
    #[serde(rename = "startAt")]
    start_at: u64,
    total: u64,
}

/// A page of an issue's changelog (`PageBeanChangelog`).
#[derive(Debug, Deserialize)]
struct ChangelogPage {
    values: Vec<Value>,
    #[serde(rename = "startAt")]
    start_at: u64,
    total: u64,
    #[serde(rename = "isLast")]
    is_last: Option<bool>,
}

use crate::encode;

/// The JQL of a sync: the configured selection, narrowed to what changed since the cursor.
pub fn jql(
    config: &JiraConfig,
    since: Option<flowmeter_core::Timestamp>,
) -> Result<String, JiraError> {
    let base = if !config.jql.trim().is_empty() {
        config.jql.trim().to_string()
    } else if !config.projects.is_empty() {
        let projects: Vec<String> = config
            .projects
            .iter()
            .map(|p| format!("\"{}\"", p.replace('"', "")))
            .collect();
        format!("project in ({})", projects.join(", "))
    } else {
        return Err(JiraError::Missing("projects (or jira.jql)"));
    };
    Ok(narrowed(config, &base, since))
}

/// A selection narrowed to what changed since the cursor (less the overlap), in update order.
fn narrowed(config: &JiraConfig, base: &str, since: Option<flowmeter_core::Timestamp>) -> String {
    let narrowed = match since {
        Some(since) => {
            let from = since - chrono::Duration::minutes(i64::from(config.overlap_minutes));
            format!(
                "({base}) AND updated >= \"{}\"",
                from.format("%Y/%m/%d %H:%M")
            )
        }
        None => format!("({base})"),
    };
    format!("{narrowed} ORDER BY updated ASC, key ASC")
}

/// The Jira client: the connectors' HTTP layer with this site's credentials and API version.
#[derive(Debug)]
struct Client {
    http: Http,
    /// `https://site/rest/api/3` on Jira Cloud, `.../rest/api/2` on Data Center.
    api: String,
    edition: JiraEdition,
}

impl Client {
    /// `GET /rest/api/{3|2}{endpoint}`, one attempt, decoded into the page type `T`: an error
    /// status or a body that is not a `T` is a fault, never an empty page.
    async fn get<T: serde::de::DeserializeOwned>(&self, endpoint: &str) -> Result<T, Fault> {
        let path = endpoint.split('?').next().unwrap_or(endpoint);
        let answer = self
            .http
            .get(&format!("{}{endpoint}", self.api), path)
            .await?;
        serde_json::from_str(&answer.body).map_err(|e| unreadable("Jira", path, e))
    }
}

/// A Jira client with this configuration's credentials.
fn client(config: &JiraConfig) -> Result<Client, JiraError> {
    if config.url.is_empty() {
        return Err(JiraError::Missing("url"));
    }
    if config.token.is_empty() {
        return Err(JiraError::Missing(
            "token (or FLOWMETER_JIRA_TOKEN / JIRA_API_TOKEN)",
        ));
    }
    let auth = match config.auth {
        JiraAuth::Basic if config.email.is_empty() => {
            return Err(JiraError::Missing("email (for basic auth)"));
        }
        JiraAuth::Basic => Auth::Basic {
            user: config.email.clone(),
            secret: config.token.clone(),
        },
        JiraAuth::Bearer => Auth::Bearer(config.token.clone()),
    };
    let base = config.url.trim_end_matches('/').to_string();
    if !base.starts_with("http://") && !base.starts_with("https://") {
        return Err(JiraError::Client {
            url: base,
            message: "jira.url must be an http:// or https:// URL".into(),
        });
    }
    let limits = Limits {
        connect: std::time::Duration::from_secs(30),
        total: std::time::Duration::from_secs(120),
        max_wait: std::time::Duration::from_secs(config.max_rate_limit_wait_seconds),
    };
    // The error of building a client names the URL at most, never the credentials.
    let http = Http::new("Jira", &auth, limits).map_err(|message| JiraError::Client {
        url: base.clone(),
        message,
    })?;
    let version = match config.edition {
        JiraEdition::Cloud => "3",
        JiraEdition::DataCenter => "2",
    };
    Ok(Client {
        http,
        api: format!("{base}/rest/api/{version}"),
        edition: config.edition,
    })
}

/// Whether an issue of a search answer holds its whole changelog: the changelog is there, with
/// its total, and every entry of it.
fn changelog_is_whole(raw: &Value) -> bool {
    let have = raw
        .pointer("/changelog/histories")
        .and_then(Value::as_array)
        .map(Vec::len);
    let total = raw.pointer("/changelog/total").and_then(Value::as_u64);
    matches!((have, total), (Some(have), Some(total)) if have as u64 >= total)
}

/// Completes an issue's changelog when the search did not return all of it: on Jira Cloud page
/// by page from `/issue/{key}/changelog`, on Data Center from the issue itself. A changelog
/// that cannot be read whole is an error, and the issue is then not written at all.
async fn complete_changelog(
    jira: &Client,
    policy: &RetryPolicy,
    progress: &dyn Progress,
    raw: &mut Value,
) -> Result<(), String> {
    if changelog_is_whole(raw) {
        return Ok(());
    }
    let Some(key) = raw.get("key").and_then(Value::as_str).map(String::from) else {
        // Not an issue: normalizing it gives the warning.
        return Ok(());
    };
    let histories = match jira.edition {
        JiraEdition::Cloud => changelog_pages(jira, policy, progress, &key).await?,
        JiraEdition::DataCenter => {
            #[derive(Deserialize)]
            struct WithChangelog {
                changelog: Changelog,
            }
            #[derive(Deserialize)]
            struct Changelog {
                histories: Vec<Value>,
                total: u64,
            }
            let endpoint = format!("/issue/{}?fields=status&expand=changelog", encode(&key));
            let issue: WithChangelog = policy
                .run(RESOURCE, progress, || async { jira.get(&endpoint).await })
                .await?;
            let changelog = issue.changelog;
            if (changelog.histories.len() as u64) < changelog.total {
                return Err(format!(
                    "Jira returned {} of the {} changelog entries of {key}",
                    changelog.histories.len(),
                    changelog.total
                ));
            }
            changelog.histories
        }
    };
    raw["changelog"] = serde_json::json!({"startAt": 0, "maxResults": histories.len(), "total": histories.len(), "histories": histories});
    Ok(())
}

/// Every page of an issue's changelog on Jira Cloud, checked: each page starts where it was
/// asked to, and the pages together hold `total` entries.
async fn changelog_pages(
    jira: &Client,
    policy: &RetryPolicy,
    progress: &dyn Progress,
    key: &str,
) -> Result<Vec<Value>, String> {
    let mut histories = Vec::new();
    loop {
        let start_at = histories.len() as u64;
        let endpoint = format!(
            "/issue/{}/changelog?startAt={start_at}&maxResults=100",
            encode(key)
        );
        let page: ChangelogPage = policy
            .run(RESOURCE, progress, || async { jira.get(&endpoint).await })
            .await?;
        if page.start_at != start_at {
            return Err(format!(
                "Jira sent the changelog of {key} from entry {} when asked from {start_at}",
                page.start_at
            ));
        }
        let got = page.values.len() as u64;
        histories.extend(page.values);
        let read = histories.len() as u64;
        if read >= page.total {
            return Ok(histories);
        }
        if got == 0 || page.is_last == Some(true) {
            return Err(format!(
                "Jira ended the changelog of {key} after {read} of its {} entries",
                page.total
            ));
        }
    }
}

/// Normalizes raw issues and writes their records; returns (records, changed, warnings, latest
/// updated).
async fn write_issues(
    store: &Store,
    config: &JiraConfig,
    raws: &[Value],
) -> Result<(u64, u64, Vec<String>, Option<flowmeter_core::Timestamp>), flowmeter_store::StoreError>
{
    let mut issues = Vec::new();
    let mut incidents = Vec::new();
    let mut warnings = Vec::new();
    let mut latest = None;
    for raw in raws {
        match normalize::normalize(raw, config) {
            Ok(n) => {
                warnings.extend(n.warnings);
                latest = latest.max(n.updated);
                issues.push(Record::Issue(n.issue));
                incidents.extend(n.incident.map(Record::Incident));
            }
            Err(warning) => warnings.push(warning),
        }
    }
    let (issues, unfit) = crate::fit_all(issues);
    warnings.extend(unfit);
    let (incidents, unfit) = crate::fit_all(incidents);
    warnings.extend(unfit);
    let written = store.write(RecordKind::Issues, &issues).await?;
    let incidents_written = store.write(RecordKind::Incidents, &incidents).await?;
    Ok((
        written.received + incidents_written.received,
        written.changed + incidents_written.changed,
        warnings,
        latest,
    ))
}

/// One search's pass: its pages, each issue's full changelog, raw bodies archived, records
/// written, and the cursor moved after each committed page.
struct Search<'a> {
    jira: &'a Client,
    store: &'a Store,
    config: &'a JiraConfig,
    policy: RetryPolicy,
    progress: &'a dyn Progress,
    scope: String,
}

impl Search<'_> {
    async fn since(&self, resource: &str) -> Result<Option<flowmeter_core::Timestamp>, JiraError> {
        Ok(self
            .store
            .cursor(SOURCE, &self.scope, resource)
            .await?
            .and_then(|c| c.cursor)
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(&c).ok())
            .map(|t| t.to_utc()))
    }

    /// One search page: its issues and the token (Cloud) or offset (Data Center) of the next
    /// page, `None` after the last. A page that does not continue where it was asked to, or
    /// ends the search before its total, is an error: the pass stops there.
    async fn page(
        &self,
        jql: &str,
        fields: &str,
        next: Option<&str>,
        resource: &str,
    ) -> Result<(Vec<Value>, Option<String>), String> {
        let config = self.config;
        match self.jira.edition {
            JiraEdition::Cloud => {
                let mut endpoint = format!(
                    "/search/jql?jql={}&maxResults={}&fields={}&expand=changelog",
                    encode(jql),
                    config.page_size,
                    encode(fields)
                );
                if let Some(token) = next {
                    endpoint.push_str(&format!("&nextPageToken={}", encode(token)));
                }
                let page: CloudPage = self
                    .policy
                    .run(resource, self.progress, || async {
                        self.jira.get(&endpoint).await
                    })
                    .await?;
                if page.is_last {
                    return Ok((page.issues, None));
                }
                match page.next_page_token.filter(|t| !t.is_empty()) {
                    None => Err("Jira said more search pages follow but sent no page token".into()),
                    Some(token) if Some(token.as_str()) == next => {
                        Err("Jira sent the same page token twice".into())
                    }
                    Some(token) => Ok((page.issues, Some(token))),
                }
            }
            JiraEdition::DataCenter => {
                let asked: u64 = next.and_then(|n| n.parse().ok()).unwrap_or(0);
                let endpoint = format!(
                    "/search?jql={}&startAt={asked}&maxResults={}&fields={}&expand=changelog",
                    encode(jql),
                    config.page_size,
                    encode(fields)
                );
                let page: OffsetPage = self
                    .policy
                    .run(resource, self.progress, || async {
                        self.jira.get(&endpoint).await
                    })
                    .await?;
                if page.start_at != asked {
                    return Err(format!(
                        "Jira sent search results from {} when asked from {asked}",
                        page.start_at
                    ));
                }
                let after = asked + page.issues.len() as u64;
                if after >= page.total {
                    Ok((page.issues, None))
                } else if page.issues.is_empty() {
                    Err(format!(
                        "Jira ended the search after {after} of its {} issues",
                        page.total
                    ))
                } else {
                    Ok((page.issues, Some(after.to_string())))
                }
            }
        }
    }

    /// Runs the search `jql`; `incidents` marks every issue it finds as an incident.
    async fn pass(
        &self,
        resource: &str,
        jql: &str,
        incidents: bool,
    ) -> Result<ResourceOutcome, JiraError> {
        let (store, config, progress, scope) =
            (self.store, self.config, self.progress, self.scope.as_str());
        tracing::info!(%jql, resource, "syncing Jira issues");
        let mut fields = "summary,status,issuetype,project,created,updated,resolutiondate,assignee,labels,parent,priority".to_string();
        if !config.story_points_field.is_empty() {
            fields.push(',');
            fields.push_str(&config.story_points_field);
        }
        let mut outcome = ResourceOutcome {
            resource: resource.into(),
            ..ResourceOutcome::default()
        };
        // Cloud's enhanced search pages by token; Data Center's search by offset.
        let mut next: Option<String> = None;
        loop {
            let (mut raws, following) =
                match self.page(jql, &fields, next.as_deref(), resource).await {
                    Ok(page) => page,
                    Err(error) => {
                        outcome.error = Some(error);
                        break;
                    }
                };
            let mut failed = None;
            for raw in &mut raws {
                // Data Center's search returns whole changelogs, Cloud's at most a page.
                if let Err(error) = complete_changelog(self.jira, &self.policy, progress, raw).await
                {
                    failed = Some(error);
                    break;
                }
                if incidents && let Some(map) = raw.as_object_mut() {
                    map.insert(INCIDENT_MARK.into(), Value::Bool(true));
                }
            }
            if let Some(error) = failed {
                // Nothing of this page is written, and the cursor stays before it.
                outcome.error = Some(error);
                break;
            }
            let fetched_at = chrono::Utc::now();
            let kind = if incidents { "incident" } else { "issue" };
            for raw in &raws {
                let id = match raw.get("key").and_then(Value::as_str) {
                    Some(key) => format!("jira:{kind}:{scope}:{key}"),
                    None => format!("jira:unreadable:{scope}:{resource}:{}", outcome.pages),
                };
                store
                    .put_raw(&RawPayload {
                        id,
                        source: SOURCE.into(),
                        resource: resource.into(),
                        fetched_at,
                        etag: None,
                        body: raw.to_string(),
                    })
                    .await?;
            }
            let (records, changed, warnings, latest) = write_issues(store, config, &raws).await?;
            for warning in &warnings {
                tracing::warn!(warning = %warning, "Jira payload not fully readable; raw body kept");
            }
            outcome.pages += 1;
            outcome.records += records;
            outcome.changed += changed;
            outcome.warnings.extend(warnings);
            // The records of this page are committed: the cursor may move past them.
            if let Some(latest) = latest
                && self.since(resource).await?.is_none_or(|c| c < latest)
            {
                store
                    .set_cursor(
                        SOURCE,
                        scope,
                        resource,
                        &Cursor {
                            cursor: Some(latest.to_rfc3339()),
                            etag: None,
                        },
                    )
                    .await?;
            }
            progress.page(resource, outcome.pages, outcome.records);
            match following {
                Some(token) => next = Some(token),
                None => break,
            }
        }
        Ok(outcome)
    }
}

/// Syncs the configured issues into the store, then the issues `jira.incident_jql` selects as
/// incidents.
pub async fn sync(
    store: &Store,
    config: &JiraConfig,
    progress: &dyn Progress,
) -> Result<SyncOutcome, JiraError> {
    let jira = client(config)?;
    let search = Search {
        jira: &jira,
        store,
        config,
        policy: RetryPolicy {
            base: std::time::Duration::from_millis(config.retry_base_ms),
            max_delay: std::time::Duration::from_secs(60),
            max_attempts: config.max_attempts,
        },
        progress,
        scope: config.url.trim_end_matches('/').to_string(),
    };
    let issues_jql = jql(config, search.since(RESOURCE).await?)?;
    let mut resources = vec![search.pass(RESOURCE, &issues_jql, false).await?];
    let incident_jql = config.incident_jql.trim();
    if !incident_jql.is_empty() {
        let since = search.since(INCIDENTS).await?;
        let jql = narrowed(config, incident_jql, since);
        resources.push(search.pass(INCIDENTS, &jql, true).await?);
    }
    resources.push(statuses(&search).await?);
    Ok(SyncOutcome { resources })
}

#[derive(Debug, Deserialize)]
struct Status {
    name: String,
    #[serde(rename = "statusCategory")]
    category: Option<StatusCategory>,
}

#[derive(Debug, Deserialize)]
struct StatusCategory {
    key: Option<String>,
    name: Option<String>,
}

/// Jira's status category key (`new`, `indeterminate`, `done`) of a status; the category's
/// name where its key is not one of those.
pub fn category_of(key: Option<&str>, name: Option<&str>) -> Option<&'static str> {
    let by_key = match key? {
        "new" => Some("new"),
        "indeterminate" => Some("indeterminate"),
        "done" => Some("done"),
        _ => None,
    };
    by_key.or(match name.map(str::to_lowercase).as_deref() {
        Some("to do") => Some("new"),
        Some("in progress") => Some("indeterminate"),
        Some("done") => Some("done"),
        _ => None,
    })
}

/// Every status of the site with its category (`GET /rest/api/3/status`), for the value stream's
/// default grouping of statuses.
async fn statuses(search: &Search<'_>) -> Result<ResourceOutcome, JiraError> {
    let mut outcome = ResourceOutcome {
        resource: "statuses".into(),
        ..ResourceOutcome::default()
    };
    let listed: Result<Vec<Status>, String> = search
        .policy
        .run("statuses", search.progress, || async {
            search.jira.get("/status").await
        })
        .await;
    match listed {
        Ok(listed) => {
            let mut categories = Vec::new();
            for status in listed {
                let category = status
                    .category
                    .as_ref()
                    .and_then(|c| category_of(c.key.as_deref().or(Some("")), c.name.as_deref()));
                match category {
                    Some(category) => categories.push((status.name, category.to_string())),
                    None => outcome.warnings.push(format!(
                        "status '{}' has no category Flowmeter knows; it is grouped by its name",
                        status.name
                    )),
                }
            }
            outcome.pages = 1;
            outcome.records = categories.len() as u64;
            outcome.changed = search.store.put_status_categories(&categories).await?;
        }
        Err(error) => outcome.error = Some(error),
    }
    Ok(outcome)
}

/// Normalizes the archived raw issues again and writes them, without calling Jira.
pub async fn replay(store: &Store, config: &JiraConfig) -> Result<SyncOutcome, JiraError> {
    let raws: Vec<Value> = store
        .raw_payloads(SOURCE)
        .await?
        .into_iter()
        .filter_map(|p| serde_json::from_str(&p.body).ok())
        .collect();
    let mut outcome = ResourceOutcome {
        resource: RESOURCE.into(),
        pages: 1,
        ..ResourceOutcome::default()
    };
    for chunk in raws.chunks(1000) {
        let (records, changed, warnings, _) = write_issues(store, config, chunk).await?;
        outcome.records += records;
        outcome.changed += changed;
        outcome.warnings.extend(warnings);
    }
    Ok(SyncOutcome {
        resources: vec![outcome],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jql_narrows_to_changes_since_the_cursor_with_overlap() {
        let config = JiraConfig {
            projects: vec!["PAY".into(), "OPS".into()],
            overlap_minutes: 1440,
            ..JiraConfig::default()
        };
        assert_eq!(
            jql(&config, None).unwrap(),
            "(project in (\"PAY\", \"OPS\")) ORDER BY updated ASC, key ASC"
        );
        let since = "2024-03-02T10:30:00Z".parse().unwrap();
        assert_eq!(
            jql(&config, Some(since)).unwrap(),
            "(project in (\"PAY\", \"OPS\")) AND updated >= \"2024/03/01 10:30\" ORDER BY updated ASC, key ASC"
        );
        assert!(matches!(
            jql(&JiraConfig::default(), None),
            Err(JiraError::Missing(_))
        ));
        assert_eq!(encode("a b=\"c\""), "a%20b%3D%22c%22");
    }
}
