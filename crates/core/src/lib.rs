//! Flowmeter's domain: the records it stores (commits, pull requests, deployments, incidents,
//! tracker issues), the import format that carries them, windows, scopes and configuration.
//!
//! This crate does no IO and knows nothing of databases, HTTP or dataframes, so every other
//! layer can share one vocabulary and one parser of the import format.

pub mod config;
pub mod csv;
pub mod glob;
pub mod import;
pub mod model;
pub mod people;
pub mod schedule;
pub mod window;

pub use config::Config;
pub use model::{
    Commit, Dataset, Deployment, DeploymentStatus, Incident, Issue, PullRequest, Record, Review,
    Transition,
};
pub use window::{IsoWeek, Scope, Window};

/// Every timestamp Flowmeter handles is UTC.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// The version of the metric definitions this build implements; every report names it.
pub const DEFINITIONS_VERSION: u32 = 2;
