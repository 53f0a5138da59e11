//! `flowmeter sync jira`: issues and their full status history through gouqi's generic
//! `get_versioned`, with this module's own types and paging, because gouqi's typed issue drops
//! `expand=changelog` and its `changelog()` reads one page.
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

#[derive(Debug, Deserialize)]
struct SearchPage {
    #[serde(default)]
    issues: Vec<Value>,
    #[serde(rename = "nextPageToken")]
    next_page_token: Option<String>,
    #[serde(rename = "isLast")]
    is_last: Option<bool>,
    /// Data Center's search pages by offset.
    #[serde(rename = "startAt")]
    start_at: Option<u64>,
    total: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct ChangelogPage {
    #[serde(default)]
    values: Vec<Value>,
    #[serde(rename = "startAt", default)]
    start_at: u64,
    #[serde(default)]
    total: Option<u64>,
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

fn classify(e: gouqi::Error) -> Fault {
    match &e {
        gouqi::Error::Fault { code, .. } if code.as_u16() == 429 || code.is_server_error() => {
            Fault::Transient {
                message: format!("Jira answered {}", code.as_u16()),
                retry_after: None,
            }
        }
        gouqi::Error::Http(_) => Fault::Transient {
            message: format!("connection to Jira failed: {e}"),
            retry_after: None,
        },
        // An error page instead of JSON (a 5xx from a proxy) or a truncated answer.
        gouqi::Error::Serde(_) => Fault::Transient {
            message: format!("unreadable answer from Jira: {e}"),
            retry_after: None,
        },
        gouqi::Error::Unauthorized => {
            Fault::Permanent("Jira rejected the credentials (401)".into())
        }
        _ => Fault::Permanent(format!("Jira request failed: {e}")),
    }
}

/// The Jira client: gouqi for every request, and a plain reqwest request with the same
/// credentials when gouqi reports a 429, because gouqi does not expose response headers and a
/// 429's `Retry-After` says how long to wait.
struct Client {
    jira: gouqi::r#async::Jira,
    /// The REST API version: 3 on Jira Cloud, 2 on Data Center.
    version: &'static str,
    edition: JiraEdition,
    http: reqwest::Client,
    base: String,
    auth: JiraAuth,
    email: String,
    token: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// `GET /rest/api/{3|2}{endpoint}`, one attempt.
    async fn get<T: serde::de::DeserializeOwned>(&self, endpoint: &str) -> Result<T, Fault> {
        match self
            .jira
            .get_versioned("api", Some(self.version), endpoint)
            .await
        {
            Ok(value) => Ok(value),
            Err(gouqi::Error::Fault { code, .. }) if code.as_u16() == 429 => {
                self.after_rate_limit(endpoint).await
            }
            Err(e) => Err(classify(e)),
        }
    }

    /// Asks again with reqwest to read the rate limit's `Retry-After`: a 429 becomes a wait of
    /// exactly that long, and an answer that got through is used as it is.
    async fn after_rate_limit<T: serde::de::DeserializeOwned>(
        &self,
        endpoint: &str,
    ) -> Result<T, Fault> {
        let url = format!("{}/rest/api/{}{endpoint}", self.base, self.version);
        let request = match self.auth {
            JiraAuth::Basic => self
                .http
                .get(&url)
                .basic_auth(&self.email, Some(&self.token)),
            JiraAuth::Bearer => self.http.get(&url).bearer_auth(&self.token),
        };
        let response = request.send().await.map_err(|e| Fault::Transient {
            message: format!("connection to Jira failed: {}", e.without_url()),
            retry_after: None,
        })?;
        let status = response.status();
        if status.as_u16() == 429 {
            let wait = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            return Err(match wait {
                Some(seconds) => Fault::RateLimited {
                    message: "Jira answered 429".into(),
                    wait: std::time::Duration::from_secs(seconds),
                },
                None => Fault::Transient {
                    message: "Jira answered 429".into(),
                    retry_after: None,
                },
            });
        }
        if !status.is_success() {
            return Err(if status.is_server_error() {
                Fault::Transient {
                    message: format!("Jira answered {}", status.as_u16()),
                    retry_after: None,
                }
            } else if status.as_u16() == 401 {
                Fault::Permanent("Jira rejected the credentials (401)".into())
            } else {
                Fault::Permanent(format!("Jira answered {}", status.as_u16()))
            });
        }
        let body = response.text().await.map_err(|e| Fault::Transient {
            message: format!("reading Jira's answer failed: {}", e.without_url()),
            retry_after: None,
        })?;
        serde_json::from_str(&body).map_err(|e| Fault::Transient {
            message: format!("unreadable answer from Jira: {e}"),
            retry_after: None,
        })
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
    let credentials = match config.auth {
        JiraAuth::Basic if config.email.is_empty() => {
            return Err(JiraError::Missing("email (for basic auth)"));
        }
        JiraAuth::Basic => gouqi::Credentials::Basic(config.email.clone(), config.token.clone()),
        JiraAuth::Bearer => gouqi::Credentials::Bearer(config.token.clone()),
    };
    let base = config.url.trim_end_matches('/').to_string();
    let client_error = |message: String| JiraError::Client {
        url: config.url.clone(),
        // The error of building a client names the URL at most, never the credentials.
        message,
    };
    let jira = gouqi::r#async::Jira::new(base.as_str(), credentials)
        .map_err(|e| client_error(e.to_string()))?;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .map_err(|e| client_error(e.without_url().to_string()))?;
    Ok(Client {
        jira,
        version: match config.edition {
            JiraEdition::Cloud => "3",
            JiraEdition::DataCenter => "2",
        },
        edition: config.edition,
        http,
        base,
        auth: config.auth,
        email: config.email.clone(),
        token: config.token.clone(),
    })
}

/// Fetches every page of an issue's changelog past what the search returned.
async fn complete_changelog(
    jira: &Client,
    policy: &RetryPolicy,
    progress: &dyn Progress,
    raw: &mut Value,
) -> Result<(), String> {
    let have = raw
        .pointer("/changelog/histories")
        .and_then(Value::as_array)
        .map_or(0, Vec::len) as u64;
    let total = raw
        .pointer("/changelog/total")
        .and_then(Value::as_u64)
        .unwrap_or(have);
    if have >= total {
        return Ok(());
    }
    let key = raw
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut histories = Vec::new();
    let mut start_at = 0u64;
    loop {
        let endpoint = format!(
            "/issue/{}/changelog?startAt={start_at}&maxResults=100",
            encode(&key)
        );
        let page: ChangelogPage = policy
            .run(RESOURCE, progress, || async { jira.get(&endpoint).await })
            .await?;
        let got = page.values.len() as u64;
        histories.extend(page.values);
        let next = page.start_at + got;
        if got > 0 && next <= start_at {
            return Err(format!(
                "Jira sent the changelog of {key} from {} again",
                page.start_at
            ));
        }
        start_at = next;
        let done =
            page.is_last.unwrap_or(false) || got == 0 || page.total.is_some_and(|t| start_at >= t);
        if done {
            break;
        }
    }
    raw["changelog"] = serde_json::json!({"startAt": 0, "maxResults": histories.len(), "total": histories.len(), "histories": histories});
    Ok(())
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
            let endpoint = match self.jira.edition {
                JiraEdition::Cloud => {
                    let mut endpoint = format!(
                        "/search/jql?jql={}&maxResults={}&fields={}&expand=changelog",
                        encode(jql),
                        config.page_size,
                        encode(&fields)
                    );
                    if let Some(token) = &next {
                        endpoint.push_str(&format!("&nextPageToken={}", encode(token)));
                    }
                    endpoint
                }
                JiraEdition::DataCenter => format!(
                    "/search?jql={}&startAt={}&maxResults={}&fields={}&expand=changelog",
                    encode(jql),
                    next.as_deref().unwrap_or("0"),
                    config.page_size,
                    encode(&fields)
                ),
            };
            let page: Result<SearchPage, String> = self
                .policy
                .run(resource, progress, || async {
                    self.jira.get(&endpoint).await
                })
                .await;
            let page = match page {
                Ok(page) => page,
                Err(error) => {
                    outcome.error = Some(error);
                    break;
                }
            };
            let mut raws = page.issues;
            let mut failed = None;
            for raw in &mut raws {
                // Data Center's search returns the whole changelog; Cloud's at most a page.
                if self.jira.edition == JiraEdition::Cloud
                    && let Err(error) =
                        complete_changelog(self.jira, &self.policy, progress, raw).await
                {
                    failed = Some(error);
                    break;
                }
                if incidents && let Some(map) = raw.as_object_mut() {
                    map.insert(INCIDENT_MARK.into(), Value::Bool(true));
                }
            }
            if let Some(error) = failed {
                outcome.error = Some(error);
                break;
            }
            let got = raws.len() as u64;
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
            let previous = next.take();
            match self.jira.edition {
                JiraEdition::Cloud => {
                    next = page.next_page_token.filter(|t| !t.is_empty());
                    if next.is_some() && next == previous {
                        outcome.error = Some("Jira sent the same page token twice".into());
                        break;
                    }
                    if page.is_last.unwrap_or(next.is_none()) || next.is_none() {
                        break;
                    }
                }
                JiraEdition::DataCenter => {
                    let asked: u64 = previous.as_deref().unwrap_or("0").parse().unwrap_or(0);
                    let after = page.start_at.unwrap_or(asked) + got;
                    if got == 0 || page.total.is_none_or(|total| after >= total) {
                        break;
                    }
                    next = Some(after.to_string());
                }
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
