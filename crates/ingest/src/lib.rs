//! Flowmeter's connectors. Each one is a client that fetches pages, a pure `normalize` from a
//! raw payload to import-format records (plus warnings for what it could not read), and the
//! shared loop: retries with backoff, raw payloads archived under deterministic ids, records
//! written through the same store path as `flowmeter import`, and a cursor that moves only
//! after the records it covers are committed.

pub mod github;
pub mod http;
pub mod jira;
pub mod retry;
pub mod slack;

/// The records fitted to the import rules (see [`flowmeter_core::import::fit`]), and a warning
/// for each one that cannot be (it is not stored; its raw payload is kept).
pub(crate) fn fit_all(
    records: Vec<flowmeter_core::Record>,
) -> (Vec<flowmeter_core::Record>, Vec<String>) {
    use flowmeter_core::Record;
    let mut fitted = Vec::with_capacity(records.len());
    let mut warnings = Vec::new();
    for record in records {
        match flowmeter_core::import::fit(&record) {
            Ok(record) => fitted.push(record),
            Err(e) => {
                let what = match &record {
                    Record::Commit(c) => format!("commit {}@{}", c.repo, c.sha),
                    Record::PullRequest(p) => format!("pull request {}#{}", p.repo, p.number),
                    Record::Deployment(d) => format!("deployment {} of {}", d.id, d.repo),
                    Record::Incident(i) => format!("incident {}", i.id),
                    Record::Issue(i) => format!("issue {}", i.key),
                };
                let what: String = what.chars().take(120).collect();
                warnings.push(format!("{what} is not stored: {e}"));
            }
        }
    }
    (fitted, warnings)
}

/// What one resource's sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceOutcome {
    pub resource: String,
    pub pages: u64,
    pub records: u64,
    pub changed: u64,
    /// HTTP requests made (every attempt), where the connector counts them.
    pub requests: u64,
    /// Of those, conditional requests answered `304 Not Modified` (free of rate limit).
    pub not_modified: u64,
    /// Payloads (or parts) that could not be normalized; their raw bodies are kept.
    pub warnings: Vec<String>,
    /// Why the resource stopped before the end, if it did.
    pub error: Option<String>,
}

/// What a whole sync did; it succeeded when no resource failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    pub resources: Vec<ResourceOutcome>,
}

impl SyncOutcome {
    pub fn ok(&self) -> bool {
        self.resources.iter().all(|r| r.error.is_none())
    }
}

/// Where a sync reports progress: a bar on a terminal, log lines elsewhere.
pub trait Progress: Send + Sync {
    fn page(&self, resource: &str, pages: u64, records: u64);
    fn waiting(&self, resource: &str, why: &str, seconds: f64);
}

/// Progress as log lines.
#[derive(Debug, Default)]
pub struct LogProgress;

impl Progress for LogProgress {
    fn page(&self, resource: &str, pages: u64, records: u64) {
        tracing::info!(resource, pages, records, "synced a page");
    }

    fn waiting(&self, resource: &str, why: &str, seconds: f64) {
        tracing::warn!(resource, why, seconds, "waiting before retrying");
    }
}

/// Percent-encodes a path segment or query value.
pub(crate) fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
