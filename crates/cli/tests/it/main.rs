//! Integration tests: one binary, every store test on both backends.

mod support;

mod cli;
mod github;
mod import;
mod incremental;
mod jira;
mod replicas;
mod rules;
mod soak;
mod stages;
mod store_contract;
mod web;
