//! The records of the event store, one type per line kind of the import format.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// A commit [repo, sha]. A commit with at most one parent is a *change* (D2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    pub repo: String,
    pub sha: String,
    pub parents: Vec<String>,
    pub authored_at: Timestamp,
    pub committed_at: Timestamp,
    pub author: Option<String>,
    pub message: Option<String>,
}

impl Commit {
    /// Merge commits (two or more parents) are not changes.
    pub fn is_change(&self) -> bool {
        self.parents.len() <= 1
    }

    /// The first line of the message.
    pub fn subject(&self) -> &str {
        self.message
            .as_deref()
            .and_then(|m| m.lines().next())
            .unwrap_or("")
    }
}

/// A review of a pull request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub reviewer: String,
    pub state: String,
    pub submitted_at: Timestamp,
}

/// A pull request [repo, number] with its commits and reviews.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullRequest {
    pub repo: String,
    pub number: u64,
    pub created_at: Timestamp,
    pub title: Option<String>,
    pub author: Option<String>,
    pub draft: bool,
    pub ready_at: Option<Timestamp>,
    pub merged_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub base_branch: Option<String>,
    pub head_branch: Option<String>,
    pub head_sha: Option<String>,
    pub merge_commit_sha: Option<String>,
    /// The shas of its own commits; empty when they are unknown.
    pub commits: Vec<String>,
    pub additions: Option<u64>,
    pub deletions: Option<u64>,
    pub labels: Vec<String>,
    pub reviews: Vec<Review>,
}

/// The status of a deployment record. Only `success` can count as a deployment (D0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    Success,
    Failure,
    Error,
    InProgress,
    Queued,
    Inactive,
}

impl DeploymentStatus {
    pub const ALL: [DeploymentStatus; 6] = [
        DeploymentStatus::Success,
        DeploymentStatus::Failure,
        DeploymentStatus::Error,
        DeploymentStatus::InProgress,
        DeploymentStatus::Queued,
        DeploymentStatus::Inactive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Success => "success",
            DeploymentStatus::Failure => "failure",
            DeploymentStatus::Error => "error",
            DeploymentStatus::InProgress => "in_progress",
            DeploymentStatus::Queued => "queued",
            DeploymentStatus::Inactive => "inactive",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

/// A deployment record [repo, id]: an attempt, successful or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub repo: String,
    pub id: String,
    pub environment: String,
    pub sha: String,
    pub status: DeploymentStatus,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// The service it deploys when the import names one; otherwise resolved from configuration.
    pub service: Option<String>,
    pub url: Option<String>,
}

impl Deployment {
    /// D0: the time of a deployment is `finished_at`, or `created_at` when that is missing.
    pub fn time(&self) -> Timestamp {
        self.finished_at.unwrap_or(self.created_at)
    }
}

/// An incident [repo, id]; `repo` may be absent when `service` names where it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub repo: Option<String>,
    pub service: Option<String>,
    pub id: String,
    pub created_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    pub title: Option<String>,
    pub severity: Option<String>,
    pub deployment_id: Option<String>,
    pub url: Option<String>,
}

impl Incident {
    /// The first half of the natural key: `repo:<repo>`, or `service:<service>` when no repo is
    /// given. The prefix keeps a repository's incident and a service's incident with the same
    /// id apart even when the service is named like the repository.
    pub fn key_scope(&self) -> String {
        match (&self.repo, &self.service) {
            (Some(repo), _) => format!("repo:{repo}"),
            (None, Some(service)) => format!("service:{service}"),
            (None, None) => String::new(),
        }
    }
}

/// A status change of a tracker issue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub at: Timestamp,
    pub from: Option<String>,
    pub to: String,
}

/// A tracker issue [key] with its status history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    pub key: String,
    pub project: String,
    #[serde(rename = "type")]
    pub issue_type: String,
    pub created_at: Timestamp,
    pub summary: Option<String>,
    pub status: Option<String>,
    pub epic: Option<String>,
    pub parent: Option<String>,
    pub assignee: Option<String>,
    pub labels: Vec<String>,
    pub story_points: Option<f64>,
    pub resolved_at: Option<Timestamp>,
    pub transitions: Vec<Transition>,
}

/// One line of the import format, of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Commit(Commit),
    PullRequest(PullRequest),
    Deployment(Deployment),
    Incident(Incident),
    Issue(Issue),
}

/// Everything the store holds, as the engine reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    pub commits: Vec<Commit>,
    pub pull_requests: Vec<PullRequest>,
    pub deployments: Vec<Deployment>,
    pub incidents: Vec<Incident>,
    pub issues: Vec<Issue>,
    /// The tracker's category of each status, by status name (Jira's status categories: `new`,
    /// `indeterminate`, `done`), where a connector read them.
    pub status_categories: std::collections::BTreeMap<String, String>,
}

impl Dataset {
    /// Adds one record of any kind.
    pub fn push(&mut self, record: Record) {
        match record {
            Record::Commit(r) => self.commits.push(r),
            Record::PullRequest(r) => self.pull_requests.push(r),
            Record::Deployment(r) => self.deployments.push(r),
            Record::Incident(r) => self.incidents.push(r),
            Record::Issue(r) => self.issues.push(r),
        }
    }
}
