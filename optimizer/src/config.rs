//! The optimizer's config file: the same `[catalog]` as the writer, which tables to maintain,
//! and the defaults of each command (flags override them).

use std::path::Path;
use std::time::Duration;

use icefall_table::CatalogConfig;
use serde::Deserialize;

use crate::{Error, Result};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Catalog and storage, exactly as in the writer's config.
    #[serde(default)]
    pub catalog: CatalogConfig,
    /// Tables to maintain, `<namespace>.<table>`.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Maintain every table of these namespaces too.
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub compact: CompactConfig,
    #[serde(default)]
    pub expire: ExpireConfig,
    #[serde(default)]
    pub orphans: OrphanConfig,
    #[serde(default)]
    pub manifests: ManifestConfig,
    #[serde(default)]
    pub stats: StatsConfig,
}

/// Compaction (bin-pack) settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactConfig {
    /// Size of output files; default: the table's `write.target-file-size-bytes`, else 512 MiB.
    pub target_file_size_bytes: Option<u64>,
    /// Files below this size are candidates; default 75% of the target (like Spark).
    pub min_file_size_bytes: Option<u64>,
    /// A partition is compacted when it has at least this many candidates (or any delete file).
    #[serde(default = "default_min_input_files")]
    pub min_input_files: usize,
    /// Groups rewritten at the same time (each holds a batch and its open files in memory).
    #[serde(default = "default_concurrent_rewrites")]
    pub max_concurrent_file_group_rewrites: usize,
}

fn default_concurrent_rewrites() -> usize {
    1
}

fn default_min_input_files() -> usize {
    5
}

impl Default for CompactConfig {
    fn default() -> Self {
        CompactConfig {
            target_file_size_bytes: None,
            min_file_size_bytes: None,
            min_input_files: default_min_input_files(),
            max_concurrent_file_group_rewrites: default_concurrent_rewrites(),
        }
    }
}

/// Snapshot expiry settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpireConfig {
    /// Snapshots older than this may be expired.
    #[serde(default = "default_expire_age", with = "humantime_serde")]
    pub older_than: Duration,
    /// The newest snapshots of main kept whatever their age.
    #[serde(default = "default_retain_last")]
    pub retain_last: usize,
}

fn default_expire_age() -> Duration {
    Duration::from_secs(5 * 24 * 3600)
}
fn default_retain_last() -> usize {
    1
}

impl Default for ExpireConfig {
    fn default() -> Self {
        ExpireConfig { older_than: default_expire_age(), retain_last: default_retain_last() }
    }
}

/// Orphan removal settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrphanConfig {
    /// Only files older than this are orphans (younger ones may belong to a commit in flight).
    #[serde(default = "default_orphan_age", with = "humantime_serde")]
    pub older_than: Duration,
    /// A listed file the table references under another scheme or authority: `error` (refuse,
    /// delete nothing), `ignore` (keep it) or `delete`.
    #[serde(default)]
    pub prefix_mismatch: crate::orphans::PrefixMismatch,
}

fn default_orphan_age() -> Duration {
    Duration::from_secs(3 * 24 * 3600)
}

impl Default for OrphanConfig {
    fn default() -> Self {
        OrphanConfig { older_than: default_orphan_age(), prefix_mismatch: Default::default() }
    }
}

/// Manifest rewrite settings.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ManifestConfig {
    /// Target manifest size; default: the table's `commit.manifest.target-size-bytes`, else 8 MiB.
    pub target_size_bytes: Option<u64>,
}

/// NDV statistics settings (the `stats` step of `run`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsConfig {
    /// `run` skips (with a note) statistics that would read more than this many bytes from
    /// scratch: the first run over a large table is a job to start on purpose, with
    /// `icefall-optimizer stats --full`. Incremental runs (files appended since) are never
    /// skipped.
    #[serde(default = "default_stats_max_full_bytes")]
    pub max_full_bytes: u64,
}

fn default_stats_max_full_bytes() -> u64 {
    10 * 1024 * 1024 * 1024
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig { max_full_bytes: default_stats_max_full_bytes() }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        // `${VAR}`s in values: secrets (the catalog password, storage keys) stay in the environment.
        let mut config: Config = icefall_table::config::from_toml_with_env(&text).map_err(Error::Config)?;
        config.catalog.resolve_relative_to(path.parent().unwrap_or(Path::new(".")));
        config.catalog.validate()?;
        for table in &config.tables {
            icefall_table::catalog::parse_ident(table).map_err(|e| Error::Config(format!("tables: {e}")))?;
        }
        if config.compact.min_input_files == 0 {
            return Err(Error::Config("compact.min_input_files must be at least 1".into()));
        }
        Ok(config)
    }
}
