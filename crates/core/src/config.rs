//! `flowmeter.toml`: every key has a default (a fresh install needs no file) and an environment
//! override. Invalid configuration is an error that names the key.
//!
//! Environment overrides: `FLOWMETER_<SECTION>_<KEY>` for the keys of `[metrics]` and `[fix]`
//! (for example `FLOWMETER_METRICS_INCIDENT_WINDOW_DAYS=3`,
//! `FLOWMETER_METRICS_PRODUCTION_ENVIRONMENTS=production,live`), and `FLOWMETER_SERVICES` /
//! `FLOWMETER_TEAMS` holding the whole list as a TOML array of tables.

use serde::{Deserialize, Serialize};

use crate::glob;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub metrics: MetricsConfig,
    pub fix: FixConfig,
    pub services: Vec<ServiceConfig>,
    pub teams: Vec<TeamConfig>,
    pub server: ServerConfig,
    pub stages: StagesConfig,
    pub jira: JiraConfig,
    pub github: GithubConfig,
    pub digests: Vec<DigestConfig>,
    pub people: Vec<crate::people::PersonConfig>,
    pub capitalization: crate::people::CapitalizationConfig,
}

/// `[[digests]]`: a weekly Slack message with a team's numbers (`team = "all"`: the
/// organisation's).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    /// What the digest is recorded as (default: the team's name); unique.
    #[serde(default)]
    pub name: String,
    /// A `[[teams]]` name, or `"all"`.
    pub team: String,
    /// The Slack incoming-webhook URL: a secret, never logged or shown.
    #[serde(default)]
    pub webhook_url: String,
    /// An environment variable holding the webhook URL, instead of `webhook_url`.
    #[serde(default)]
    pub webhook_url_env: String,
    /// When to send, as a cron expression (default Mondays at 09:00).
    #[serde(default = "default_digest_schedule")]
    pub schedule: String,
    /// The IANA time zone of `schedule` (default UTC).
    #[serde(default = "default_digest_timezone")]
    pub timezone: String,
}

fn default_digest_schedule() -> String {
    "0 9 * * MON".into()
}

fn default_digest_timezone() -> String {
    "UTC".into()
}

impl DigestConfig {
    /// What the digest is recorded and named as.
    pub fn name(&self) -> &str {
        if self.name.is_empty() {
            &self.team
        } else {
            &self.name
        }
    }

    /// The team it reports on; `None`: the organisation.
    pub fn team(&self) -> Option<&str> {
        (self.team != "all").then_some(self.team.as_str())
    }

    pub fn schedule(&self) -> Result<crate::schedule::Schedule, crate::schedule::ScheduleError> {
        crate::schedule::Schedule::new(&self.schedule, &self.timezone)
    }

    /// The webhook URL, from the file or the named environment variable of digest `i`; the
    /// error names the key or the variable, never a URL.
    pub fn webhook(
        &self,
        i: usize,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<String, ConfigError> {
        if !self.webhook_url.is_empty() {
            return Ok(self.webhook_url.clone());
        }
        let var = &self.webhook_url_env;
        match env(var).filter(|v| !v.trim().is_empty()) {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => Ok(url),
            Some(_) => Err(config_error(
                format!("digests[{i}].webhook_url_env"),
                format!("{var} does not hold an http(s) URL (value not shown)"),
            )),
            None => Err(config_error(
                format!("digests[{i}].webhook_url_env"),
                format!("{var} is not set"),
            )),
        }
    }
}

impl std::fmt::Debug for DigestConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestConfig")
            .field("name", &self.name)
            .field("team", &self.team)
            .field(
                "webhook_url",
                &if self.webhook_url.is_empty() {
                    ""
                } else {
                    "***"
                },
            )
            .field("webhook_url_env", &self.webhook_url_env)
            .field("schedule", &self.schedule)
            .field("timezone", &self.timezone)
            .finish()
    }
}

/// How a repository's deployments are recognised on GitHub.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentSource {
    /// GitHub deployments and their statuses.
    #[default]
    Deployments,
    /// Published releases: each one is a successful deployment of its tag's commit.
    Releases,
    /// Runs of named GitHub Actions workflows: each completed run is a deployment.
    WorkflowRuns,
}

/// Which GitHub API reads the details of listed items: each pull request's commits, reviews
/// and ready-for-review time (`pull_details`), each deployment's statuses and each release's
/// commit (`deployment_details`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullDetails {
    /// Batched GraphQL queries (25 pull requests, or 100 deployments or releases, a query).
    #[default]
    Graphql,
    /// One REST request per item.
    Rest,
}

/// `[[github.deployment_sources]]`: how one repository's deployments are recognised (repositories
/// not listed use GitHub deployments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSourceConfig {
    /// `owner/name`, or a glob such as `acme/*`.
    pub repo: String,
    pub source: DeploymentSource,
    /// Workflow file names (such as `deploy.yml`) or ids, for `workflow_runs`.
    #[serde(default)]
    pub workflows: Vec<String>,
    /// The environment of the deployments: for `deployments`, only this environment is read;
    /// for releases and workflow runs, the environment they deploy to (default `production`).
    #[serde(default)]
    pub environment: Option<String>,
}

/// `[github]`: the repositories `flowmeter sync github` reads. The token comes from this file,
/// `FLOWMETER_GITHUB_TOKEN` or `GITHUB_TOKEN`, and never appears in logs or errors.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GithubConfig {
    /// API base URL: `https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise
    /// Server.
    pub url: String,
    pub token: String,
    /// Repositories to follow, as `owner/name`.
    pub repos: Vec<String>,
    /// Organisations whose repositories are all followed (archived ones and forks skipped).
    pub orgs: Vec<String>,
    /// Issues carrying any of these labels are incidents.
    pub incident_labels: Vec<String>,
    pub deployment_sources: Vec<DeploymentSourceConfig>,
    /// How pull request details are read: `graphql` (batched) or `rest` (a timeline each).
    pub pull_details: PullDetails,
    /// How deployment statuses and release commits are read: `graphql` (100 a query) or `rest`
    /// (one request per deployment or release).
    pub deployment_details: PullDetails,
    /// Repositories synced at the same time (each one's resources one after the other).
    pub concurrency: u32,
    /// Hours of default-branch history re-read before the cursor on each incremental sync.
    pub overlap_hours: u32,
    pub page_size: u32,
    /// First retry delay in milliseconds (doubling, with jitter).
    pub retry_base_ms: u64,
    pub max_attempts: u32,
    /// The longest wait for a primary rate limit to reset before the resource fails.
    pub max_rate_limit_wait_seconds: u64,
    /// The secrets webhook deliveries are signed with (`POST /hooks/github`): one, or several
    /// accepted at once while a secret is rotated. Also `FLOWMETER_GITHUB_WEBHOOK_SECRET`
    /// (several separated by commas). Empty: webhooks are off. Never logged or shown.
    #[serde(deserialize_with = "one_or_many")]
    pub webhook_secret: Vec<String>,
    /// Secrets of repositories whose webhooks are signed with their own (accepted besides
    /// `webhook_secret` for deliveries about those repositories).
    pub webhook_repo_secrets: Vec<WebhookRepoSecret>,
}

/// `[[github.webhook_repo_secrets]]`: the secret(s) one repository's webhook is signed with.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookRepoSecret {
    /// `owner/name`, or a glob such as `acme/*`.
    pub repo: String,
    #[serde(deserialize_with = "one_or_many")]
    pub secret: Vec<String>,
}

impl std::fmt::Debug for WebhookRepoSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRepoSecret")
            .field("repo", &self.repo)
            .field("secret", &format!("{} secret(s)", self.secret.len()))
            .finish()
    }
}

/// A string or a list of strings.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

impl Default for GithubConfig {
    fn default() -> Self {
        GithubConfig {
            url: "https://api.github.com".into(),
            token: String::new(),
            repos: Vec::new(),
            orgs: Vec::new(),
            incident_labels: vec!["incident".into()],
            deployment_sources: Vec::new(),
            pull_details: PullDetails::Graphql,
            deployment_details: PullDetails::Graphql,
            concurrency: 4,
            overlap_hours: 24,
            page_size: 100,
            retry_base_ms: 1000,
            max_attempts: 6,
            max_rate_limit_wait_seconds: 3900,
            webhook_secret: Vec::new(),
            webhook_repo_secrets: Vec::new(),
        }
    }
}

impl GithubConfig {
    /// The secrets a webhook delivery about `repo` may be signed with: `webhook_secret`, and
    /// those of the `webhook_repo_secrets` entries naming it.
    pub fn webhook_secrets(&self, repo: Option<&str>) -> Vec<&str> {
        let mut secrets: Vec<&str> = self.webhook_secret.iter().map(String::as_str).collect();
        if let Some(repo) = repo {
            for entry in &self.webhook_repo_secrets {
                if entry.repo.eq_ignore_ascii_case(repo)
                    || glob::matches_ignore_case(&entry.repo, repo)
                {
                    secrets.extend(entry.secret.iter().map(String::as_str));
                }
            }
        }
        secrets
    }

    /// Whether any webhook secret is configured (webhooks are on).
    pub fn webhooks_on(&self) -> bool {
        !self.webhook_secret.is_empty() || !self.webhook_repo_secrets.is_empty()
    }

    /// How a repository's deployments are recognised: the first matching
    /// `[[github.deployment_sources]]` entry, else GitHub deployments of every environment.
    pub fn deployment_source(&self, repo: &str) -> DeploymentSourceConfig {
        self.deployment_sources
            .iter()
            .find(|d| d.repo == repo || glob::matches_ignore_case(&d.repo, repo))
            .cloned()
            .unwrap_or(DeploymentSourceConfig {
                repo: repo.to_string(),
                source: DeploymentSource::Deployments,
                workflows: Vec::new(),
                environment: None,
            })
    }
}

impl std::fmt::Debug for GithubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubConfig")
            .field("url", &self.url)
            .field("token", &if self.token.is_empty() { "" } else { "***" })
            .field("repos", &self.repos)
            .field("orgs", &self.orgs)
            .field("incident_labels", &self.incident_labels)
            .field("deployment_sources", &self.deployment_sources)
            .field(
                "webhook_secret",
                &format!("{} secret(s)", self.webhook_secret.len()),
            )
            .finish_non_exhaustive()
    }
}

/// How Flowmeter authenticates to Jira.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JiraAuth {
    /// Email and API token (Jira Cloud), or user name and password / personal access token.
    #[default]
    Basic,
    /// A bearer token (Jira Data Center personal access tokens, OAuth 2.0 access tokens).
    Bearer,
}

/// Which Jira a site runs: the REST API and search it offers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JiraEdition {
    /// Jira Cloud: REST API 3 and the enhanced search (`/rest/api/3/search/jql`).
    #[default]
    Cloud,
    /// Jira Data Center or Server: REST API 2 and its search (`/rest/api/2/search`).
    DataCenter,
}

/// `[jira]`: the Jira site `flowmeter sync jira` reads. The token comes from this file,
/// `FLOWMETER_JIRA_TOKEN` or `JIRA_API_TOKEN`, and never appears in logs or errors.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JiraConfig {
    /// Site URL, such as `https://your-domain.atlassian.net`.
    pub url: String,
    pub email: String,
    pub token: String,
    pub auth: JiraAuth,
    pub edition: JiraEdition,
    /// Projects to follow; the default JQL is `project in (...)`.
    pub projects: Vec<String>,
    /// JQL selecting the issues (overrides `projects`); `updated` and ordering are added.
    pub jql: String,
    /// The field id holding story points, such as `customfield_10016`.
    pub story_points_field: String,
    /// Issue types that are incidents.
    pub incident_types: Vec<String>,
    /// JQL selecting further issues that are incidents (any project), such as
    /// `labels = outage`; `updated` and ordering are added.
    pub incident_jql: String,
    /// The service an incident of a project belongs to (default: the project key).
    pub project_services: std::collections::BTreeMap<String, String>,
    pub page_size: u32,
    /// Minutes re-read before the cursor on each incremental sync (clock skew, late writes).
    pub overlap_minutes: u32,
    /// First retry delay in milliseconds (doubling, with jitter).
    pub retry_base_ms: u64,
    pub max_attempts: u32,
    /// The longest `Retry-After` a sync waits out; a longer one fails the resource.
    pub max_rate_limit_wait_seconds: u64,
}

impl Default for JiraConfig {
    fn default() -> Self {
        JiraConfig {
            url: String::new(),
            email: String::new(),
            token: String::new(),
            auth: JiraAuth::Basic,
            edition: JiraEdition::Cloud,
            projects: Vec::new(),
            jql: String::new(),
            story_points_field: String::new(),
            incident_types: vec!["Incident".into()],
            incident_jql: String::new(),
            project_services: Default::default(),
            page_size: 100,
            // JQL dates are read in the Jira user's time zone: a day of overlap covers any.
            overlap_minutes: 1440,
            retry_base_ms: 1000,
            max_attempts: 6,
            max_rate_limit_wait_seconds: 600,
        }
    }
}

impl std::fmt::Debug for JiraConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JiraConfig")
            .field("url", &self.url)
            .field("email", &self.email)
            .field("token", &if self.token.is_empty() { "" } else { "***" })
            .field("auth", &self.auth)
            .field("projects", &self.projects)
            .field("jql", &self.jql)
            .finish_non_exhaustive()
    }
}

/// The groups tracker statuses fall into for the value stream's tracker stages (rule S).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusGroup {
    Backlog,
    InProgress,
    Review,
    Done,
}

/// `[stages]`: how tracker statuses map to groups. Statuses not listed fall into a group by
/// their name: containing "review" is review; done, closed, resolved, released, cancelled are
/// done; to do, open, backlog, new, selected for development are backlog; anything else is in
/// progress. Compared ignoring case.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StagesConfig {
    pub status_groups: std::collections::BTreeMap<String, StatusGroup>,
}

impl StagesConfig {
    /// The group of a status: its `[stages.status_groups]` entry, else by the tracker's status
    /// category when known (`new` is backlog, `done` is done, `indeterminate` is review when
    /// named like review and in progress otherwise), else by its name (see the type's doc).
    pub fn group_with_category(&self, status: &str, category: Option<&str>) -> StatusGroup {
        if let Some(group) = self.configured(status) {
            return group;
        }
        match category {
            Some("new") => StatusGroup::Backlog,
            Some("done") => StatusGroup::Done,
            Some("indeterminate") if status.to_lowercase().contains("review") => {
                StatusGroup::Review
            }
            Some("indeterminate") => StatusGroup::InProgress,
            _ => self.group_of(status),
        }
    }

    fn configured(&self, status: &str) -> Option<StatusGroup> {
        self.status_groups
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(status))
            .map(|(_, group)| *group)
    }

    /// The group of a status by configuration, else by its name.
    pub fn group_of(&self, status: &str) -> StatusGroup {
        if let Some(group) = self.configured(status) {
            return group;
        }
        let lower = status.trim().to_lowercase();
        if lower.contains("review") {
            StatusGroup::Review
        } else if [
            "done",
            "closed",
            "resolved",
            "released",
            "cancelled",
            "canceled",
            "won't do",
        ]
        .contains(&lower.as_str())
        {
            StatusGroup::Done
        } else if [
            "to do",
            "todo",
            "open",
            "backlog",
            "new",
            "selected for development",
            "ready for development",
        ]
        .contains(&lower.as_str())
        {
            StatusGroup::Backlog
        } else {
            StatusGroup::InProgress
        }
    }
}

/// `flowmeter serve`: API tokens and how often the in-memory snapshot checks the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Seconds between checks of the store for changes (the snapshot is rebuilt only when the
    /// store changed).
    pub refresh_seconds: u32,
    /// Tokens for `/api` and `/export`; once any is configured, every request there needs one.
    pub tokens: Vec<TokenConfig>,
    /// Minutes between syncs of the configured connectors (`[github]`, `[jira]`) while serving;
    /// 0 (the default) leaves syncing to `flowmeter sync`.
    pub sync_minutes: u32,
    /// Seconds between syncs, for schedules finer than a minute; overrides `sync_minutes` when
    /// not 0.
    pub sync_seconds: u32,
    /// Keep the dashboard's pages open when tokens are configured (the API stays guarded).
    pub public_dashboard: bool,
    /// The dashboard's address as people reach it (`https://flowmeter.example.com`): the base
    /// of links in digests; `https` marks session cookies Secure.
    pub public_url: String,
    /// Names besides this machine's that a loopback listener answers (a proxy's `Host`).
    pub allowed_hosts: Vec<String>,
    /// Serve `/metrics` unguarded on this address too (`127.0.0.1:9100`), for a scraper
    /// without a token; empty: only on the main address.
    pub metrics_listen: String,
    /// Connections served at once; more wait for one to close.
    pub max_connections: u32,
}

impl ServerConfig {
    /// The period of scheduled syncs, if any.
    pub fn sync_period(&self) -> Option<std::time::Duration> {
        match (self.sync_seconds, self.sync_minutes) {
            (0, 0) => None,
            (0, minutes) => Some(std::time::Duration::from_secs(u64::from(minutes) * 60)),
            (seconds, _) => Some(std::time::Duration::from_secs(u64::from(seconds))),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            refresh_seconds: 5,
            tokens: Vec::new(),
            sync_minutes: 0,
            sync_seconds: 0,
            public_dashboard: false,
            public_url: String::new(),
            allowed_hosts: Vec::new(),
            metrics_listen: String::new(),
            max_connections: 1024,
        }
    }
}

/// What a token may do: `read` the API and exports, or also `write` (push deployments and
/// incidents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    Read,
    Write,
}

/// An API token. Its secret never appears in `Debug` output, logs or errors.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub token: String,
    pub scope: TokenScope,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("token", &"***")
            .field("scope", &self.scope)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Environments whose successful deployments count (D0), compared ignoring case.
    pub production_environments: Vec<String>,
    /// How old a deployment may be and still have an incident attributed to it (D3).
    pub incident_window_days: u32,
    /// Which DORA report's tier table to use (D6).
    pub tier_year: u32,
    /// Logins whose reviews do not count (S), as globs.
    pub bot_logins: Vec<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            production_environments: vec!["production".into(), "prod".into(), "live".into()],
            incident_window_days: 7,
            tier_year: 2023,
            bot_logins: vec!["*[bot]".into(), "*-bot".into()],
        }
    }
}

/// How a change is classified as a fix (D5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FixConfig {
    /// Pull request labels, compared ignoring case.
    pub labels: Vec<String>,
    /// Head branch globs.
    pub head_branches: Vec<String>,
    /// Commit subject prefixes.
    pub subject_prefixes: Vec<String>,
    /// Words a commit subject may contain, compared ignoring case.
    pub subject_contains: Vec<String>,
    /// Types of linked tracker issues, compared ignoring case.
    pub issue_types: Vec<String>,
}

impl Default for FixConfig {
    fn default() -> Self {
        FixConfig {
            labels: ["bug", "hotfix", "incident", "revert"]
                .map(String::from)
                .to_vec(),
            head_branches: ["hotfix/*", "revert-*"].map(String::from).to_vec(),
            subject_prefixes: vec!["Revert \"".into()],
            subject_contains: vec!["hotfix".into()],
            issue_types: ["Bug", "Incident"].map(String::from).to_vec(),
        }
    }
}

/// A service other than "one repository, one service": several services in one repository
/// (each selected by a deployment id prefix glob) or one service over several repositories.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub name: String,
    pub repos: Vec<String>,
    /// Globs on the deployment id (or tag) that select this service's deployments in its
    /// repositories, such as `axum-core-v*`. Empty: every deployment of the repositories.
    #[serde(default)]
    pub deployments: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    pub name: String,
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default)]
    pub repos: Vec<String>,
    #[serde(default)]
    pub services: Vec<String>,
}

/// A configuration problem, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

pub(crate) fn config_error(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}

/// The tier years this build has tables for.
pub const TIER_YEARS: [u32; 1] = [2023];

impl Config {
    /// Parses a configuration file's text and applies the environment overrides found by `env`
    /// (a function so tests need not touch the process environment).
    pub fn from_toml(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut doc: toml::Table = toml::from_str(text).map_err(|e| {
            config_error(
                "flowmeter.toml",
                e.message().to_string() + &span_hint(text, e.span()),
            )
        })?;
        apply_env(&mut doc, &env)?;
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(doc)).map_err(|e| {
                let key = match e.path().to_string() {
                    path if path == "." => "flowmeter.toml".to_string(),
                    path => path,
                };
                // Serde's messages may quote the value; under secrets they must not.
                let secret = key.starts_with("server.tokens")
                    || key.starts_with("jira.token")
                    || key.starts_with("github.token")
                    || key.starts_with("github.webhook")
                    || (key.starts_with("digests") && key.contains("webhook_url"));
                let message = if secret {
                    "is not valid here (value not shown)".to_string()
                } else {
                    e.inner().message().to_string()
                };
                config_error(key, message)
            })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let m = &self.metrics;
        if m.production_environments.is_empty() {
            return Err(config_error(
                "metrics.production_environments",
                "must name at least one environment",
            ));
        }
        if m.incident_window_days == 0 {
            return Err(config_error(
                "metrics.incident_window_days",
                "must be at least 1",
            ));
        }
        if !TIER_YEARS.contains(&m.tier_year) {
            return Err(config_error(
                "metrics.tier_year",
                format!("no tier table for {}; known: {:?}", m.tier_year, TIER_YEARS),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, service) in self.services.iter().enumerate() {
            if service.name.trim().is_empty() {
                return Err(config_error(
                    format!("services[{i}].name"),
                    "must not be empty",
                ));
            }
            if !names.insert(service.name.as_str()) {
                return Err(config_error(
                    format!("services[{i}].name"),
                    format!("'{}' is defined twice", service.name),
                ));
            }
            if service.repos.is_empty() {
                return Err(config_error(
                    format!("services[{i}].repos"),
                    "must name at least one repository",
                ));
            }
            for repo in &service.repos {
                if repo.split('/').count() != 2 {
                    return Err(config_error(
                        format!("services[{i}].repos"),
                        format!("'{repo}' is not of the form owner/name"),
                    ));
                }
            }
        }
        let mut token_names = std::collections::HashSet::new();
        for (i, token) in self.server.tokens.iter().enumerate() {
            if !token_names.insert(token.name.as_str()) {
                return Err(config_error(
                    format!("server.tokens[{i}].name"),
                    format!("'{}' is defined twice", token.name),
                ));
            }
            if token.token.len() < 16 {
                return Err(config_error(
                    format!("server.tokens[{i}].token"),
                    "must be at least 16 characters",
                ));
            }
        }
        if self.jira.page_size == 0 || self.jira.page_size > 1000 {
            return Err(config_error("jira.page_size", "must be from 1 to 1000"));
        }
        if self.jira.max_attempts == 0 {
            return Err(config_error("jira.max_attempts", "must be at least 1"));
        }
        let github = &self.github;
        if github.page_size == 0 || github.page_size > 100 {
            return Err(config_error("github.page_size", "must be from 1 to 100"));
        }
        if github.concurrency == 0 || github.concurrency > 16 {
            return Err(config_error("github.concurrency", "must be from 1 to 16"));
        }
        if github.max_attempts == 0 {
            return Err(config_error("github.max_attempts", "must be at least 1"));
        }
        if let Some(i) = github.webhook_secret.iter().position(|s| s.is_empty()) {
            return Err(config_error(
                format!("github.webhook_secret[{i}]"),
                "must not be empty",
            ));
        }
        for (i, entry) in github.webhook_repo_secrets.iter().enumerate() {
            if entry.repo.split('/').count() != 2 {
                return Err(config_error(
                    format!("github.webhook_repo_secrets[{i}].repo"),
                    format!("'{}' is not of the form owner/name", entry.repo),
                ));
            }
            if entry.secret.is_empty() || entry.secret.iter().any(String::is_empty) {
                return Err(config_error(
                    format!("github.webhook_repo_secrets[{i}].secret"),
                    "must name at least one secret, none empty",
                ));
            }
        }
        if !github.url.starts_with("http://") && !github.url.starts_with("https://") {
            return Err(config_error(
                "github.url",
                "must be an http:// or https:// URL",
            ));
        }
        for repo in &github.repos {
            let parts: Vec<&str> = repo.split('/').collect();
            if parts.len() != 2 || parts.iter().any(|p| p.trim().is_empty()) {
                return Err(config_error(
                    "github.repos",
                    format!("'{repo}' is not of the form owner/name"),
                ));
            }
        }
        for (i, source) in github.deployment_sources.iter().enumerate() {
            if source.source == DeploymentSource::WorkflowRuns && source.workflows.is_empty() {
                return Err(config_error(
                    format!("github.deployment_sources[{i}].workflows"),
                    "must name at least one workflow for source = \"workflow_runs\"",
                ));
            }
        }
        if self.server.refresh_seconds == 0 {
            return Err(config_error("server.refresh_seconds", "must be at least 1"));
        }
        if self.server.max_connections == 0 {
            return Err(config_error("server.max_connections", "must be at least 1"));
        }
        let url = &self.server.public_url;
        if !url.is_empty() && !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(config_error(
                "server.public_url",
                "must be an http:// or https:// URL",
            ));
        }
        if !self.server.metrics_listen.is_empty()
            && self
                .server
                .metrics_listen
                .parse::<std::net::SocketAddr>()
                .is_err()
        {
            return Err(config_error(
                "server.metrics_listen",
                "must be an address and port, such as 127.0.0.1:9100",
            ));
        }
        let mut team_names = std::collections::HashSet::new();
        for (i, team) in self.teams.iter().enumerate() {
            if team.name.trim().is_empty() {
                return Err(config_error(
                    format!("teams[{i}].name"),
                    "must not be empty",
                ));
            }
            if !team_names.insert(team.name.as_str()) {
                return Err(config_error(
                    format!("teams[{i}].name"),
                    format!("'{}' is defined twice", team.name),
                ));
            }
        }
        self.validate_digests()?;
        crate::people::validate(&self.people, &self.capitalization, &self.teams)
    }

    fn validate_digests(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::HashSet::new();
        for (i, digest) in self.digests.iter().enumerate() {
            let key = |k: &str| format!("digests[{i}].{k}");
            if digest.team != "all" && self.team(&digest.team).is_none() {
                return Err(config_error(
                    key("team"),
                    format!(
                        "'{}' is not a [[teams]] name (or \"all\" for the organisation)",
                        digest.team
                    ),
                ));
            }
            match (
                digest.webhook_url.is_empty(),
                digest.webhook_url_env.is_empty(),
            ) {
                (true, true) | (false, false) => {
                    return Err(config_error(
                        key("webhook_url"),
                        "set exactly one of webhook_url and webhook_url_env",
                    ));
                }
                (false, true)
                    if !digest.webhook_url.starts_with("https://")
                        && !digest.webhook_url.starts_with("http://") =>
                {
                    return Err(config_error(
                        key("webhook_url"),
                        "must be an http(s) URL (value not shown)",
                    ));
                }
                (true, false)
                    if !digest
                        .webhook_url_env
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
                        || digest
                            .webhook_url_env
                            .starts_with(|c: char| c.is_ascii_digit()) =>
                {
                    return Err(config_error(
                        key("webhook_url_env"),
                        format!(
                            "'{}' is not an environment variable name",
                            digest.webhook_url_env
                        ),
                    ));
                }
                _ => {}
            }
            if let Err(e) = digest.schedule() {
                let which = match e {
                    crate::schedule::ScheduleError::Cron(_) => "schedule",
                    crate::schedule::ScheduleError::Zone(_) => "timezone",
                };
                return Err(config_error(key(which), e.to_string()));
            }
            if !names.insert(digest.name()) {
                return Err(config_error(
                    key("name"),
                    format!("'{}' is configured twice; give one a name", digest.name()),
                ));
            }
        }
        if !self.digests.is_empty() && self.server.public_url.is_empty() {
            return Err(config_error(
                "server.public_url",
                "must be set when [[digests]] are configured: it is the base of their links",
            ));
        }
        Ok(())
    }

    /// Whether an environment is a production environment (D0).
    pub fn is_production(&self, environment: &str) -> bool {
        self.metrics
            .production_environments
            .iter()
            .any(|p| p.eq_ignore_ascii_case(environment))
    }

    /// Whether a login is a bot's (S).
    pub fn is_bot(&self, login: &str) -> bool {
        self.metrics
            .bot_logins
            .iter()
            .any(|pattern| glob::matches_ignore_case(pattern, login))
    }

    /// The service a deployment record belongs to: the record's own `service`, else the first
    /// configured service of its repository whose id globs match (or that has none), else the
    /// repository itself.
    pub fn service_of_deployment(&self, repo: &str, id: &str, explicit: Option<&str>) -> String {
        if let Some(service) = explicit {
            return service.to_string();
        }
        self.services
            .iter()
            .find(|s| {
                s.repos.iter().any(|r| r == repo)
                    && (s.deployments.is_empty()
                        || s.deployments.iter().any(|g| glob::matches(g, id)))
            })
            .map(|s| s.name.clone())
            .unwrap_or_else(|| repo.to_string())
    }

    /// The services an incident of a repository may belong to when it names no service: the
    /// configured services of that repository, or the repository itself.
    pub fn services_of_repo(&self, repo: &str) -> Vec<String> {
        let configured: Vec<String> = self
            .services
            .iter()
            .filter(|s| s.repos.iter().any(|r| r == repo))
            .map(|s| s.name.clone())
            .collect();
        if configured.is_empty() {
            vec![repo.to_string()]
        } else {
            configured
        }
    }

    pub fn team(&self, name: &str) -> Option<&TeamConfig> {
        self.teams.iter().find(|t| t.name == name)
    }
}

/// Applies `FLOWMETER_*` overrides onto the parsed document.
fn apply_env(
    doc: &mut toml::Table,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let defaults = toml::Table::try_from(Config::default()).expect("defaults serialize");
    for section in ["metrics", "fix", "server", "jira", "github"] {
        let Some(toml::Value::Table(keys)) = defaults.get(section) else {
            continue;
        };
        for (key, default) in keys {
            if key == "tokens"
                || key == "deployment_sources"
                || key == "webhook_repo_secrets"
                || matches!(default, toml::Value::Table(_))
            {
                continue;
            }
            let var = format!("FLOWMETER_{}_{}", section, key).to_ascii_uppercase();
            let Some(raw) = env(&var) else { continue };
            let value = match default {
                toml::Value::Integer(_) => raw
                    .trim()
                    .parse::<i64>()
                    .map(toml::Value::Integer)
                    .map_err(|_| {
                        config_error(
                            format!("{section}.{key}"),
                            format!("{var}='{raw}' is not a whole number"),
                        )
                    })?,
                toml::Value::Array(_) => toml::Value::Array(
                    raw.split(',')
                        .map(|s| s.trim())
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.to_string()))
                        .collect(),
                ),
                _ => toml::Value::String(raw),
            };
            let table = doc
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match table {
                toml::Value::Table(t) => {
                    t.insert(key.clone(), value);
                }
                _ => return Err(config_error(section, "must be a table")),
            }
        }
    }
    for list in ["services", "teams", "server.tokens", "digests"] {
        let var = format!("FLOWMETER_{}", list.replace('.', "_").to_ascii_uppercase());
        // Set but empty (`FLOWMETER_SERVER_TOKENS=`) is the same as not set.
        let Some(raw) = env(&var).filter(|raw| !raw.trim().is_empty()) else {
            continue;
        };
        // The error names the variable, never its value: it may hold secrets.
        let parsed: toml::Table = toml::from_str(&format!("list = {raw}"))
            .map_err(|_| config_error(list, format!("{var} is not a TOML array of tables")))?;
        let (table, key) = match list.split_once('.') {
            Some((section, key)) => {
                let entry = doc
                    .entry(section.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                match entry {
                    toml::Value::Table(t) => (t, key),
                    _ => return Err(config_error(section, "must be a table")),
                }
            }
            None => (&mut *doc, list),
        };
        table.insert(key.to_string(), parsed["list"].clone());
    }
    Ok(())
}

fn span_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let line = text[..span.start.min(text.len())].lines().count().max(1);
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn an_empty_file_is_the_default() {
        assert_eq!(Config::from_toml("", no_env).unwrap(), Config::default());
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                "[metrics]\nincident_window_days = \"seven\"",
                "metrics.incident_window_days",
            ),
            ("[metrics]\ntier_year = 1999", "metrics.tier_year"),
            ("[metrics]\nprodution_environments = []", "metrics"),
            (
                "[[services]]\nname = \"api\"\nrepos = []",
                "services[0].repos",
            ),
            (
                "[[teams]]\nname = \"a\"\n[[teams]]\nname = \"a\"",
                "teams[1].name",
            ),
        ];
        for (text, key) in cases {
            let err = Config::from_toml(text, no_env).unwrap_err();
            assert!(err.key.starts_with(key), "{text}: {err}");
        }
    }

    #[test]
    fn digest_errors_name_the_key_and_never_the_url() {
        let base = "[server]\npublic_url = \"https://fm.example.com\"\n[[teams]]\nname = \"platform\"\nrepos = [\"acme/api\"]\n";
        let secret = "https://hooks.slack.com/services/T000/B000/SECRETxyz";
        let cases = [
            (
                format!("[[digests]]\nteam = \"nobody\"\nwebhook_url = \"{secret}\""),
                "digests[0].team",
            ),
            (
                "[[digests]]\nteam = \"all\"".to_string(),
                "digests[0].webhook_url",
            ),
            (
                format!(
                    "[[digests]]\nteam = \"all\"\nwebhook_url = \"{secret}\"\nwebhook_url_env = \"X\""
                ),
                "digests[0].webhook_url",
            ),
            (
                "[[digests]]\nteam = \"all\"\nwebhook_url = \"SECRETxyz\"".to_string(),
                "digests[0].webhook_url",
            ),
            (
                "[[digests]]\nteam = \"all\"\nwebhook_url = 7".to_string(),
                "digests[0].webhook_url",
            ),
            (
                "[[digests]]\nteam = \"all\"\nwebhook_url_env = \"SLACK URL\"".to_string(),
                "digests[0].webhook_url_env",
            ),
            (
                format!(
                    "[[digests]]\nteam = \"all\"\nwebhook_url = \"{secret}\"\nschedule = \"9 * * MON\""
                ),
                "digests[0].schedule",
            ),
            (
                format!(
                    "[[digests]]\nteam = \"all\"\nwebhook_url = \"{secret}\"\ntimezone = \"Europe/Berln\""
                ),
                "digests[0].timezone",
            ),
            (
                format!(
                    "[[digests]]\nteam = \"all\"\nwebhook_url = \"{secret}\"\n[[digests]]\nteam = \"all\"\nwebhook_url = \"{secret}\""
                ),
                "digests[1].name",
            ),
        ];
        for (digests, key) in cases {
            let text = format!("{base}{digests}");
            let err = Config::from_toml(&text, no_env).unwrap_err();
            assert_eq!(err.key, key, "{text}: {err}");
            assert!(!err.to_string().contains("SECRET"), "{err}");
        }
        let no_public_url = format!("[[digests]]\nteam = \"all\"\nwebhook_url = \"{secret}\"");
        assert_eq!(
            Config::from_toml(&no_public_url, no_env).unwrap_err().key,
            "server.public_url"
        );

        let text = format!(
            "{base}[[digests]]\nteam = \"platform\"\nwebhook_url = \"{secret}\"\ntimezone = \"Europe/Berlin\"\n[[digests]]\nname = \"org\"\nteam = \"all\"\nwebhook_url_env = \"SLACK_ORG\""
        );
        let config = Config::from_toml(&text, no_env).unwrap();
        assert!(!format!("{config:?}").contains("SECRET"));
        let [platform, org] = &config.digests[..] else {
            panic!()
        };
        assert_eq!(
            (platform.name(), platform.team()),
            ("platform", Some("platform"))
        );
        assert_eq!((org.name(), org.team()), ("org", None));
        assert_eq!(platform.webhook(0, no_env).unwrap(), secret);
        let unset = org.webhook(1, no_env).unwrap_err();
        assert_eq!(unset.key, "digests[1].webhook_url_env");
        assert!(unset.message.contains("SLACK_ORG"), "{unset}");
        let env = |v: &str| (v == "SLACK_ORG").then(|| secret.to_string());
        assert_eq!(org.webhook(1, env).unwrap(), secret);
        let wrong = |v: &str| (v == "SLACK_ORG").then(|| "SECRETxyz".to_string());
        assert!(
            !org.webhook(1, wrong)
                .unwrap_err()
                .to_string()
                .contains("SECRET")
        );

        // The whole list from the environment.
        let env = |v: &str| {
            (v == "FLOWMETER_DIGESTS")
                .then(|| format!("[{{team = \"all\", webhook_url = \"{secret}\"}}]"))
        };
        let config =
            Config::from_toml("[server]\npublic_url = \"https://fm.example.com\"", env).unwrap();
        assert_eq!(config.digests.len(), 1);
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = |var: &str| match var {
            "FLOWMETER_METRICS_INCIDENT_WINDOW_DAYS" => Some("3".to_string()),
            "FLOWMETER_METRICS_PRODUCTION_ENVIRONMENTS" => Some("live, edge".to_string()),
            "FLOWMETER_SERVICES" => {
                Some(r#"[{name = "core", repos = ["a/b"], deployments = ["core-v*"]}]"#.into())
            }
            _ => None,
        };
        let config = Config::from_toml("[metrics]\nincident_window_days = 5", env).unwrap();
        assert_eq!(config.metrics.incident_window_days, 3);
        assert_eq!(config.metrics.production_environments, vec!["live", "edge"]);
        assert_eq!(
            config.service_of_deployment("a/b", "core-v1.2", None),
            "core"
        );
        assert_eq!(config.service_of_deployment("a/b", "web-v1.2", None), "a/b");
        let bad = |var: &str| (var == "FLOWMETER_METRICS_TIER_YEAR").then(|| "soon".to_string());
        let err = Config::from_toml("", bad).unwrap_err();
        assert_eq!(err.key, "metrics.tier_year");
    }

    #[test]
    fn tokens_come_from_the_environment_and_never_show() {
        let env = |var: &str| {
            (var == "FLOWMETER_SERVER_TOKENS").then(|| {
                r#"[{name = "ci", token = "s3cret-s3cret-s3cret", scope = "write"}]"#.to_string()
            })
        };
        let config = Config::from_toml("", env).unwrap();
        assert_eq!(config.server.tokens[0].scope, TokenScope::Write);
        assert!(!format!("{config:?}").contains("s3cret"));
        let short = |var: &str| {
            (var == "FLOWMETER_SERVER_TOKENS")
                .then(|| r#"[{name = "ci", token = "short", scope = "read"}]"#.to_string())
        };
        let err = Config::from_toml("", short).unwrap_err();
        assert_eq!(err.key, "server.tokens[0].token");
        assert!(!err.to_string().contains("short\""));
        let bad = |var: &str| {
            (var == "FLOWMETER_SERVER_TOKENS").then(|| "[{token = \"leaky\"".to_string())
        };
        let err = Config::from_toml("", bad).unwrap_err();
        assert!(!err.to_string().contains("leaky"), "{err}");
    }

    #[test]
    fn statuses_fall_into_groups_by_name_unless_configured() {
        use super::StatusGroup::*;
        let config = Config::from_toml(
            "[stages.status_groups]\nQA = \"review\"\n\"Ready\" = \"backlog\"",
            |_| None,
        )
        .unwrap();
        let cases = [
            ("To Do", Backlog),
            ("Backlog", Backlog),
            ("In Progress", InProgress),
            ("Doing", InProgress),
            ("In Review", Review),
            ("Code review", Review),
            ("qa", Review),
            ("Ready", Backlog),
            ("Done", Done),
            ("Closed", Done),
        ];
        for (status, group) in cases {
            assert_eq!(config.stages.group_of(status), group, "{status}");
        }
        // The tracker's category decides where configuration does not: "Triage" is a to-do
        // status and "Won't fix" a done one, whatever their names suggest.
        let stages = &config.stages;
        assert_eq!(stages.group_with_category("Triage", Some("new")), Backlog);
        assert_eq!(stages.group_with_category("Triage", None), InProgress);
        assert_eq!(stages.group_with_category("Won't fix", Some("done")), Done);
        assert_eq!(
            stages.group_with_category("Peer review", Some("indeterminate")),
            Review
        );
        assert_eq!(
            stages.group_with_category("Building", Some("indeterminate")),
            InProgress
        );
        assert_eq!(
            stages.group_with_category("QA", Some("indeterminate")),
            Review
        );
        let err =
            Config::from_toml("[stages.status_groups]\nQA = \"testing\"", |_| None).unwrap_err();
        assert!(err.key.starts_with("stages.status_groups"), "{err}");
    }

    #[test]
    fn github_repositories_deployment_sources_and_token() {
        let text = r#"
[github]
url = "https://ghe.acme.example/api/v3"
repos = ["acme/api", "acme/web"]
orgs = ["acme-labs"]

[[github.deployment_sources]]
repo = "acme/web"
source = "workflow_runs"
workflows = ["deploy.yml"]
environment = "live"

[[github.deployment_sources]]
repo = "acme-labs/*"
source = "releases"
"#;
        let env = |var: &str| (var == "FLOWMETER_GITHUB_TOKEN").then(|| "ghp_s3cret".to_string());
        let config = Config::from_toml(text, env).unwrap();
        let github = &config.github;
        assert_eq!(github.token, "ghp_s3cret");
        assert!(!format!("{config:?}").contains("ghp_s3cret"));
        assert_eq!(github.incident_labels, ["incident"]);
        let web = github.deployment_source("acme/web");
        assert_eq!(
            (web.source, web.environment.as_deref()),
            (DeploymentSource::WorkflowRuns, Some("live"))
        );
        assert_eq!(
            github.deployment_source("acme-labs/tool").source,
            DeploymentSource::Releases
        );
        assert_eq!(
            github.deployment_source("acme/api").source,
            DeploymentSource::Deployments
        );
        let cases = [
            ("[github]\nrepos = [\"acme\"]", "github.repos"),
            ("[github]\npage_size = 500", "github.page_size"),
            ("[github]\nurl = \"api.github.com\"", "github.url"),
            (
                "[[github.deployment_sources]]\nrepo = \"a/b\"\nsource = \"workflow_runs\"",
                "github.deployment_sources[0].workflows",
            ),
            (
                "[[github.deployment_sources]]\nrepo = \"a/b\"\nsource = \"tags\"",
                "github.deployment_sources[0].source",
            ),
        ];
        for (text, key) in cases {
            let err = Config::from_toml(text, |_| None).unwrap_err();
            assert_eq!(err.key, key, "{text}: {err}");
        }
        let err = Config::from_toml("[github]\ntoken = 7", |_| None).unwrap_err();
        assert_eq!(err.key, "github.token");
        assert!(err.to_string().contains("value not shown"), "{err}");
    }

    #[test]
    fn webhook_secrets_are_one_or_several_and_never_shown() {
        let one = Config::from_toml(
            "[github]\nwebhook_secret = \"It's a Secret to Everybody\"",
            |_| None,
        )
        .unwrap();
        assert_eq!(one.github.webhook_secret, ["It's a Secret to Everybody"]);
        assert!(!format!("{one:?}").contains("Everybody"));
        let rotating = Config::from_toml(
            "[github]\nwebhook_secret = [\"new-one\", \"old-one\"]",
            |_| None,
        )
        .unwrap();
        assert_eq!(rotating.github.webhook_secret, ["new-one", "old-one"]);
        let env = |var: &str| {
            (var == "FLOWMETER_GITHUB_WEBHOOK_SECRET").then(|| "env-new, env-old".to_string())
        };
        let from_env = Config::from_toml("", env).unwrap();
        assert_eq!(from_env.github.webhook_secret, ["env-new", "env-old"]);
        assert!(Config::default().github.webhook_secret.is_empty());
        let err =
            Config::from_toml("[github]\nwebhook_secret = [\"ok\", \"\"]", |_| None).unwrap_err();
        assert_eq!(err.key, "github.webhook_secret[1]");
        let err = Config::from_toml("[github]\nwebhook_secret = 7", |_| None).unwrap_err();
        assert_eq!(err.key, "github.webhook_secret");
        assert!(err.to_string().contains("value not shown"), "{err}");
        let per_repo = Config::from_toml(
            "[github]\nwebhook_secret = \"org-wide\"\n[[github.webhook_repo_secrets]]\nrepo = \"acme/pay*\"\nsecret = [\"pay-new\", \"pay-old\"]\n",
            |_| None,
        )
        .unwrap();
        let github = &per_repo.github;
        assert_eq!(
            github.webhook_secrets(Some("acme/payments")),
            ["org-wide", "pay-new", "pay-old"]
        );
        assert_eq!(github.webhook_secrets(Some("acme/web")), ["org-wide"]);
        assert_eq!(github.webhook_secrets(None), ["org-wide"]);
        assert!(!format!("{per_repo:?}").contains("pay-new"));
        let err = Config::from_toml(
            "[[github.webhook_repo_secrets]]\nrepo = \"acme/api\"\nsecret = []\n",
            |_| None,
        )
        .unwrap_err();
        assert_eq!(err.key, "github.webhook_repo_secrets[0].secret");
        let err = Config::from_toml(
            "[[github.webhook_repo_secrets]]\nrepo = \"acme/api\"\nsecret = 7\n",
            |_| None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("value not shown"), "{err}");
    }

    #[test]
    fn production_and_bots() {
        let config = Config::default();
        assert!(config.is_production("PROD"));
        assert!(!config.is_production("staging"));
        assert!(config.is_bot("dependabot[bot]"));
        assert!(config.is_bot("release-bot"));
        assert!(!config.is_bot("robot"));
    }
}
