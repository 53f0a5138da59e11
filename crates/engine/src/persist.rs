//! A snapshot's model as bytes, so a cold process need not read every record again: the store
//! keeps the bytes of the latest model (with the generation they reflect) under a key naming
//! the format, the definitions version and the configuration that shaped the rows; a reader
//! loads them, then applies only the records written since.

use serde::{Deserialize, Serialize};

use flowmeter_core::{Config, DEFINITIONS_VERSION};

use crate::model::Model;

/// The layout of the bytes; a change to the model's types changes it.
pub const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: u32,
    definitions_version: u32,
    key: String,
    generation: i64,
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// The key a model is kept under: the format, the definitions version and a digest of the
/// configuration the engine reads (never the secrets, which it does not read).
pub fn key(config: &Config) -> String {
    let shaping = serde_json::json!({
        "metrics": config.metrics,
        "fix": config.fix,
        "services": config.services,
        "teams": config.teams,
        "stages": config.stages,
        "incident_labels": config.github.incident_labels,
        "incident_types": config.jira.incident_types,
    });
    // FNV-1a: a cache key, not a secret.
    let digest = shaping
        .to_string()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("engine-v{FORMAT}-d{DEFINITIONS_VERSION}-{digest:016x}")
}

/// The bytes of a model at a store generation.
pub fn encode(model: &Model, generation: i64, config: &Config) -> Vec<u8> {
    let header = Header {
        format: FORMAT,
        definitions_version: DEFINITIONS_VERSION,
        key: key(config),
        generation,
    };
    let mut out = bincode::serde::encode_to_vec(&header, bincode_config()).expect("encodes");
    bincode::serde::encode_into_std_write(model, &mut out, bincode_config()).expect("encodes");
    out
}

/// The model in some bytes and the generation it reflects, when they were written by this
/// format for this configuration; `None` otherwise (the caller reads the store instead).
pub fn decode(bytes: &[u8], config: &Config) -> Option<(Model, i64)> {
    let (header, used): (Header, usize) =
        bincode::serde::decode_from_slice(bytes, bincode_config()).ok()?;
    if header.format != FORMAT
        || header.definitions_version != DEFINITIONS_VERSION
        || header.key != key(config)
    {
        return None;
    }
    let (mut model, _): (Model, usize) =
        bincode::serde::decode_from_slice(&bytes[used..], bincode_config()).ok()?;
    model.reindex();
    Some((model, header.generation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_reads_back_only_under_the_configuration_that_wrote_it() {
        let config = Config::default();
        let bytes = encode(&Model::default(), 42, &config);
        let (_, generation) = decode(&bytes, &config).unwrap();
        assert_eq!(generation, 42);
        let other = Config::from_toml("[metrics]\nincident_window_days = 3", |_| None).unwrap();
        assert!(decode(&bytes, &other).is_none());
        assert!(decode(&bytes[..bytes.len() / 2], &config).is_none() || bytes.len() < 4);
        assert!(decode(b"not a snapshot", &config).is_none());
    }
}
