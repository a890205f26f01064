//! The sub-tables of a pipeline: `[pipelines.backpressure]` and `[pipelines.metadata_columns]`.

use std::collections::BTreeMap;
use std::time::Duration;

use icefall_schemas::metadata::MetaField;
use serde::Deserialize;

/// Table-health backpressure: while the table has more than these since its last compaction,
/// the checkpoint interval doubles at every checkpoint (up to `max_checkpoint_interval`; no
/// record is ever dropped), and drops back once the optimizer has compacted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackpressureConfig {
    /// Snapshots on main since the last compaction (0: no limit).
    #[serde(default = "default_max_snapshots_since_compaction")]
    pub max_snapshots_since_compaction: u64,
    /// Data files added since the last compaction (0: no limit).
    #[serde(default = "default_max_files_since_compaction")]
    pub max_files_since_compaction: u64,
    /// The longest the checkpoint interval grows to.
    #[serde(default = "default_max_checkpoint_interval", with = "humantime_serde")]
    pub max_checkpoint_interval: Duration,
}

impl Default for BackpressureConfig {
    fn default() -> Self {
        BackpressureConfig {
            max_snapshots_since_compaction: default_max_snapshots_since_compaction(),
            max_files_since_compaction: default_max_files_since_compaction(),
            max_checkpoint_interval: default_max_checkpoint_interval(),
        }
    }
}

fn default_max_snapshots_since_compaction() -> u64 {
    2_000
}

fn default_max_files_since_compaction() -> u64 {
    20_000
}

fn default_max_checkpoint_interval() -> Duration {
    Duration::from_secs(600)
}

/// Column names for Kafka metadata; unset = not written. A new table gets these columns
/// (after the declared ones); an existing table must already have them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataColumnsConfig {
    /// The record's topic (`string`).
    pub topic: Option<String>,
    /// The record's partition (`int`).
    pub partition: Option<String>,
    /// The record's offset (`long`).
    pub offset: Option<String>,
    /// The record's timestamp (`timestamptz`).
    pub timestamp: Option<String>,
    /// The record's key (`binary`, or `string` if the table column is a string).
    pub key: Option<String>,
    /// The record's headers (`map<string, binary>`).
    pub headers: Option<String>,
    /// When the writer received the record (`timestamptz`).
    pub ingested_at: Option<String>,
}

impl MetadataColumnsConfig {
    /// Column name → what it holds.
    pub fn mapping(&self) -> BTreeMap<String, MetaField> {
        [
            (&self.topic, MetaField::Topic),
            (&self.partition, MetaField::Partition),
            (&self.offset, MetaField::Offset),
            (&self.timestamp, MetaField::Timestamp),
            (&self.key, MetaField::Key),
            (&self.headers, MetaField::Headers),
            (&self.ingested_at, MetaField::IngestedAt),
        ]
        .into_iter()
        .filter_map(|(name, field)| name.clone().map(|n| (n, field)))
        .collect()
    }
}
