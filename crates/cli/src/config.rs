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
    let mut config = Config::from_toml(&text, env)?;
    let absences = &config.capitalization.absences_file;
    if !absences.is_empty() {
        // Relative to the configuration file.
        let base = path
            .and_then(Path::parent)
            .unwrap_or(Path::new("."))
            .join(absences);
        let text = std::fs::read_to_string(&base)
            .with_context(|| format!("read capitalization.absences_file {}", base.display()))?;
        let name = format!("capitalization.absences_file {}", base.display());
        flowmeter_core::people::add_absences(&mut config.people, &text, &name)?;
        config.validate()?;
    }
    Ok(config)
}
