//! Loading settings: defaults, then an optional TOML file, then `BUGBANE_SECTION__KEY`
//! environment variables.

use std::path::Path;

use anyhow::{Context, Result};
use bugbane_server::Config;

/// The annotated example configuration, printed by `bugbane config example`.
pub const EXAMPLE: &str = include_str!("../../../config.example.toml");

/// Reads the configuration.
pub fn load(file: Option<&Path>) -> Result<Config> {
    let mut table = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str::<toml::Table>(&text)
                .with_context(|| format!("parsing {}", path.display()))?
        }
        None => toml::Table::new(),
    };
    for (name, value) in std::env::vars() {
        let Some(rest) = name.strip_prefix("BUGBANE_") else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            continue;
        };
        let section = table
            .entry(section.to_ascii_lowercase())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(section) = section.as_table_mut() else {
            continue;
        };
        section.insert(key.to_ascii_lowercase(), env_value(&value));
    }
    toml::Value::Table(table)
        .try_into()
        .context("invalid configuration")
}

/// Environment values are typed by their look: integers, floats and booleans, else strings.
fn env_value(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(f) = raw.parse::<f64>() {
        toml::Value::Float(f)
    } else if let Ok(b) = raw.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(raw.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_to_the_defaults() {
        let c: Config = toml::from_str(EXAMPLE).expect("example parses");
        let d = Config::default();
        assert_eq!(c.server.bind, d.server.bind);
        assert_eq!(c.ingest.max_event_bytes, d.ingest.max_event_bytes);
        assert_eq!(c.ingest.max_backlog, d.ingest.max_backlog);
        assert_eq!(c.retention.days, d.retention.days);
        assert_eq!(c.storage.spool_queue, d.storage.spool_queue);
        assert_eq!(c.storage.spool_lease_seconds, d.storage.spool_lease_seconds);
        assert_eq!(c.storage.database_url, d.storage.database_url);
        assert_eq!(c.server.role, d.server.role);
        assert_eq!(c.alerts.max_attempts, d.alerts.max_attempts);
        assert_eq!(c.alerts.smtp_security, d.alerts.smtp_security);
        assert_eq!(c.alerts.from, d.alerts.from);
    }
}
