//! Integration tests: one binary, every store test on both backends.

mod support;

mod cli;
mod github;
mod import;
mod incremental;
mod jira;
mod rules;
mod stages;
mod store_contract;
mod web;
