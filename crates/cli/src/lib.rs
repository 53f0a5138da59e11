//! The `flowmeter` command's building blocks, shared by the binary and its tests.

pub mod capitalization;
pub mod config;
pub mod demo;
pub mod digest;
pub mod import;
pub mod report;
pub mod serve;
pub mod sync;
