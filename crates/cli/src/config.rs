//! Finding and reading `flowmeter.toml`, with `FLOWMETER_*` environment overrides.

use std::path::Path;

use anyhow::Context as _;
use flowmeter_core::Config;

/// Reads the configuration at `path`, or `./flowmeter.toml` when it exists, or the defaults.
pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    let env = |name: &str| std::env::var(name).ok();
    let text = match path {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("read configuration {}", path.display()))?,
        None => match std::fs::read_to_string("flowmeter.toml") {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).context("read configuration flowmeter.toml"),
        },
    };
    Ok(Config::from_toml(&text, env)?)
}
