//! A snapshot as bytes, so a cold process need not read every record nor prepare everything
//! again: the store keeps the bytes of the latest model and its prepared partitions (with the
//! generation they reflect) under a key naming the format, the definitions version and the
//! configuration that shaped the rows; a reader loads them, then applies only the records
//! written since.

use serde::{Deserialize, Serialize};

use flowmeter_core::{Config, DEFINITIONS_VERSION};

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::{Model, RepoModel, Sym};
use crate::prepare::Partition;
use crate::{Snapshot, on_every_core};

/// The layout of the bytes; a change to the model's or the rows' types changes it.
pub const FORMAT: u32 = 4;

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

/// One part of the kept bytes, compressed on its own so parts can be written and read on
/// every core: the model without its repositories, a repository, or a prepared partition.
#[derive(Serialize, Deserialize)]
enum Section {
    Shell(Model),
    Repo(Sym, Arc<RepoModel>),
    Partition(Sym, Arc<Partition>),
}

/// The bytes of a snapshot at a store generation: a header, then sections each compressed
/// with zstd's fastest level.
pub fn encode(snapshot: &Snapshot, generation: i64, config: &Config) -> Vec<u8> {
    let header = Header {
        format: FORMAT,
        definitions_version: DEFINITIONS_VERSION,
        key: key(config),
        generation,
    };
    let model = snapshot.model();
    let mut shell = model.clone();
    shell.repos.clear();
    let mut sections = vec![Section::Shell(shell)];
    sections.extend(
        model
            .repos
            .iter()
            .map(|(&r, m)| Section::Repo(r, m.clone())),
    );
    sections.extend(
        snapshot
            .prepared
            .partitions
            .iter()
            .map(|(&k, p)| Section::Partition(k, p.clone())),
    );
    let compressed = on_every_core(&sections, |section| {
        let mut encoder = zstd::Encoder::new(Vec::new(), 1).expect("a zstd encoder");
        bincode::serde::encode_into_std_write(section, &mut encoder, bincode_config())
            .expect("encodes");
        encoder.finish().expect("compresses")
    });
    let mut out = bincode::serde::encode_to_vec(&header, bincode_config()).expect("encodes");
    out.extend((compressed.len() as u64).to_le_bytes());
    for part in &compressed {
        out.extend((part.len() as u64).to_le_bytes());
    }
    for part in compressed {
        out.extend(part);
    }
    out
}

/// What a snapshot's bytes hold: its model, its prepared partitions and the generation.
pub struct Kept {
    pub model: Model,
    pub(crate) partitions: BTreeMap<Sym, Arc<Partition>>,
    pub generation: i64,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// The snapshot in some bytes, when they were written by this format for this configuration;
/// `None` otherwise (the caller reads the store instead).
pub fn decode(bytes: &[u8], config: &Config) -> Option<Kept> {
    match read(bytes, config) {
        Ok(kept) => Some(kept),
        Err(why) => {
            tracing::info!(%why, "the kept snapshot is not used");
            None
        }
    }
}

fn read(bytes: &[u8], config: &Config) -> Result<Kept, String> {
    let (header, mut at): (Header, usize) =
        bincode::serde::decode_from_slice(bytes, bincode_config()).map_err(|e| e.to_string())?;
    if header.format != FORMAT
        || header.definitions_version != DEFINITIONS_VERSION
        || header.key != key(config)
    {
        return Err(format!(
            "written as {}, this build reads {}",
            header.key,
            key(config)
        ));
    }
    let u64_at = |at: &mut usize| -> Result<usize, String> {
        let raw: [u8; 8] = bytes
            .get(*at..*at + 8)
            .and_then(|b| b.try_into().ok())
            .ok_or("the bytes end early")?;
        *at += 8;
        usize::try_from(u64::from_le_bytes(raw)).map_err(|e| e.to_string())
    };
    let count = u64_at(&mut at)?;
    let lengths = (0..count)
        .map(|_| u64_at(&mut at))
        .collect::<Result<Vec<usize>, String>>()?;
    let mut parts: Vec<&[u8]> = Vec::with_capacity(count);
    for length in lengths {
        parts.push(bytes.get(at..at + length).ok_or("the bytes end early")?);
        at += length;
    }
    let sections = on_every_core(&parts, |part| -> Result<Section, String> {
        let decompressed = zstd::Decoder::new(*part).map_err(|e| e.to_string())?;
        let mut reader = std::io::BufReader::with_capacity(1 << 16, decompressed);
        bincode::serde::decode_from_std_read(&mut reader, bincode_config())
            .map_err(|e| e.to_string())
    });
    let mut model = None;
    let mut repos = BTreeMap::new();
    let mut partitions = BTreeMap::new();
    for section in sections {
        match section? {
            Section::Shell(shell) => model = Some(shell),
            Section::Repo(sym, repo) => {
                repos.insert(sym, repo);
            }
            Section::Partition(key, partition) => {
                partitions.insert(key, partition);
            }
        }
    }
    let mut model = model.ok_or("no model in the bytes")?;
    model.repos = repos;
    model.reindex();
    Ok(Kept {
        model,
        partitions,
        generation: header.generation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_reads_back_only_under_the_configuration_that_wrote_it() {
        let config = Config::default();
        let snapshot = Snapshot::build(&flowmeter_core::Dataset::default(), &config).unwrap();
        let bytes = encode(&snapshot, 42, &config);
        assert_eq!(decode(&bytes, &config).unwrap().generation, 42);
        let other = Config::from_toml("[metrics]\nincident_window_days = 3", |_| None).unwrap();
        assert!(decode(&bytes, &other).is_none());
        assert!(decode(&bytes[..bytes.len() / 2], &config).is_none() || bytes.len() < 4);
        assert!(decode(b"not a snapshot", &config).is_none());
    }
}
