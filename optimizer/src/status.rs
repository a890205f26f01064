//! `status`: what a table looks like to an operator or a batch scheduler, read from metadata
//! only — size, the writer's offsets, freshness watermarks, what was added since the last
//! compaction, and checkpoint journals left by crashed writers.

use icefall_table::freshness::{self, format_micros};
use icefall_table::health::{SinceCompaction, since_compaction};
use icefall_table::offsets::committed_offsets;
use icefall_table::state::state_property;
use icefall_table::{Catalog, TableIdent, journal};
use serde::Serialize;

use crate::policy::TablePolicy;
use crate::{Config, Result};

#[derive(Debug, Serialize)]
pub struct TableStatus {
    pub table: String,
    pub snapshots: usize,
    pub current_snapshot_id: Option<i64>,
    pub total_records: Option<u64>,
    pub total_data_files: Option<u64>,
    pub total_files_size: Option<u64>,
    /// Kafka partitions the table has offsets for, and the sum of those offsets.
    pub partitions: usize,
    pub offsets_sum: i64,
    /// Minimum over partitions of the newest committed event time (RFC 3339), if configured.
    pub event_watermark: Option<String>,
    /// Minimum over partitions of the newest committed Kafka timestamp (RFC 3339).
    pub arrival_watermark: Option<String>,
    pub since_compaction: SinceCompaction,
    /// Journals of checkpoints in flight or crashed (see `remove-orphans --journals`).
    pub journals_pending: usize,
    pub journals_settleable: usize,
    /// What `run` does to the table ([`TablePolicy`]).
    pub policy: TablePolicy,
}

pub async fn status(catalog: &Catalog, config: &Config, ident: &TableIdent) -> Result<TableStatus> {
    let table = catalog.load(ident).await?;
    let metadata = &table.metadata;
    let current = metadata.current_snapshot();
    let total = |key: &str| {
        current.and_then(|s| s.summary().additional_properties.get(key)).and_then(|v| v.parse::<u64>().ok())
    };
    let offsets = committed_offsets(metadata)?;
    let watermarks = freshness::table_watermarks(metadata);
    let journals = journal::settle(catalog, &table, true).await?;
    let policy = TablePolicy::for_table(metadata, config)?;
    Ok(TableStatus {
        table: table.name(),
        snapshots: metadata.snapshots().count(),
        current_snapshot_id: current.map(|s| s.snapshot_id()),
        total_records: total("total-records"),
        total_data_files: total("total-data-files"),
        total_files_size: total("total-files-size"),
        partitions: offsets.values().map(|p| p.len()).sum(),
        offsets_sum: offsets.values().flat_map(|p| p.values()).sum(),
        // The writer's own text when present (the same instant), else computed.
        event_watermark: state_property(metadata, freshness::EVENT_WATERMARK)
            .map(str::to_string)
            .or(watermarks.event.map(format_micros)),
        arrival_watermark: state_property(metadata, freshness::ARRIVAL_WATERMARK)
            .map(str::to_string)
            .or(watermarks.arrival.map(format_micros)),
        since_compaction: since_compaction(metadata),
        journals_pending: journals.journals_pending,
        journals_settleable: journals.journals_settled,
        policy,
    })
}

impl TableStatus {
    pub fn human(&self) -> String {
        let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        format!(
            "{}: {} snapshots, {} records in {} data files ({} bytes)\n  offsets: {} partitions, sum {}\n  \
             watermarks: event {}, arrival {}\n  since last compaction: {} snapshots, {} data files added\n  \
             journals: {} pending, {} settleable\n  run: {}",
            self.table,
            self.snapshots,
            self.total_records.unwrap_or(0),
            self.total_data_files.unwrap_or(0),
            self.total_files_size.unwrap_or(0),
            self.partitions,
            self.offsets_sum,
            or_none(&self.event_watermark),
            or_none(&self.arrival_watermark),
            self.since_compaction.snapshots,
            self.since_compaction.data_files_added,
            self.journals_pending,
            self.journals_settleable,
            self.policy.human(),
        )
    }
}
