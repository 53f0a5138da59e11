//! Integration tests: one binary, every store test on both backends.

mod support;

mod capitalization;
mod cli;
mod digest;
mod edge_records;
mod fuzz;
mod github;
mod hardening;
mod import;
mod incremental;
mod jira;
mod kill;
mod replicas;
mod rules;
mod soak;
mod stages;
mod store_contract;
mod web;
mod webhooks;
