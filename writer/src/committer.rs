//! The single committer: one snapshot per table per checkpoint, holding the checkpoint's data
//! files *and* the table's full offset map, guarded by fencing.
//!
//! Fencing: inside the compare-and-swap retry, the offsets recorded in the table for the
//! checkpoint's partitions must be exactly those the checkpoint started from. If another
//! process (a zombie, a second copy) moved them, the commit is rejected and the caller drops
//! its files and re-reads from the table: two writers can never both commit a range.
//!
//! Dead letters go to `<table>_dlq` *before* the main commit. That table records its own
//! offsets: a dead letter below them is already there, so a re-read after a crash between the
//! two commits skips it instead of duplicating it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use iceberg::spec::DataFile;
use icefall_schemas::json::JsonDecoder;
use icefall_table::fault::{self, CrashPoint, Safeguard};
use icefall_table::freshness;
use icefall_table::offsets::{self, OffsetMap, committed_offsets, offset_of};
use icefall_table::retry::Replan;
use icefall_table::{Catalog, CommitOutcome, PendingCommit, RetryPolicy, TableIdent};

use crate::Result;
use crate::dead_letter::{self, DeadLetter};
use crate::freshness::CheckpointTimes;
use crate::record::TopicPartition;
use icefall_table::files::TableFiles;

/// The offsets one checkpoint covers for one partition: `[start, end)`; `start` is `None`
/// when the table had no offset for the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetRange {
    pub start: Option<i64>,
    pub end: i64,
}

/// Everything one checkpoint hands to the committer.
#[derive(Debug)]
pub struct Checkpoint {
    pub number: u64,
    pub data_files: Vec<DataFile>,
    /// The partition spec `data_files` were written with (one per checkpoint: the pipeline
    /// takes up a new spec only between checkpoints).
    pub spec_id: i32,
    pub dead_letters: Vec<DeadLetter>,
    pub ranges: BTreeMap<TopicPartition, OffsetRange>,
    pub rows: u64,
    /// Writers that wrote this checkpoint's files (summary `icefall.writers`).
    pub writers: usize,
    /// Newest event and arrival times per partition, and late records.
    pub times: CheckpointTimes,
    /// The checkpoint interval in force (longer than configured under backpressure).
    pub interval: std::time::Duration,
}

impl Checkpoint {
    /// The ends of the ranges as an offset map.
    pub fn end_offsets(&self) -> OffsetMap {
        let mut map = OffsetMap::new();
        for ((topic, partition), range) in &self.ranges {
            map.entry(topic.to_string()).or_default().insert(*partition, range.end);
        }
        map
    }
}

pub struct Committer {
    pub catalog: Catalog,
    pub table: TableIdent,
    pub dead_letter_table: TableIdent,
    pub dead_letter_files: TableFiles,
    pub dead_letter_decoder: Arc<JsonDecoder>,
    pub writer_id: String,
    pub instance: String,
    pub policy: RetryPolicy,
}

pub use icefall_table::contract::{CHECKPOINT_INTERVAL_MS, WRITERS};

impl Committer {
    /// The commit of a checkpoint's data; prepared once so every retry carries the same commit id.
    pub fn prepare(&self, checkpoint: &Checkpoint) -> PendingCommit {
        PendingCommit::append(checkpoint.data_files.clone(), checkpoint.spec_id, self.summary(checkpoint))
            .with_tag(offsets::STATE_TAG)
    }

    fn summary(&self, checkpoint: &Checkpoint) -> HashMap<String, String> {
        HashMap::from([
            (offsets::WRITER_ID.to_string(), self.writer_id.clone()),
            (offsets::WRITER_INSTANCE.to_string(), self.instance.clone()),
            (offsets::CHECKPOINT.to_string(), checkpoint.number.to_string()),
            (WRITERS.to_string(), checkpoint.writers.to_string()),
            (freshness::LATE_RECORDS.to_string(), checkpoint.times.late_records.to_string()),
            (CHECKPOINT_INTERVAL_MS.to_string(), checkpoint.interval.as_millis().to_string()),
        ])
    }

    /// Commits dead letters, then the data. `Rejected` means another writer owns the range.
    pub async fn commit(&self, checkpoint: &Checkpoint, pending: &PendingCommit) -> Result<CommitOutcome> {
        let base = self.catalog.load(&self.table).await?;
        // A zombie's dead letters are fenced like its data: a checkpoint whose range another
        // writer committed adds nothing anywhere. (Should a peer commit between this check and
        // the dead-letter commit, the dead-letter table's own offsets still keep each letter once.)
        let current = committed_offsets(&base.metadata)?;
        fence(&current, &checkpoint.ranges)
            .map_err(|reason| icefall_table::Error::Rejected { table: base.name(), reason })?;
        if self.commit_dead_letters(checkpoint).await? {
            fault::crash_point(CrashPoint::AfterDeadLetterCommit);
        }
        let ranges = checkpoint.ranges.clone();
        let times = checkpoint.times.clone();
        let check = move |metadata: &iceberg::spec::TableMetadata| {
            let current = committed_offsets(metadata).map_err(|e| e.to_string())?;
            fence(&current, &ranges)?;
            let mut merged = current;
            for ((topic, partition), range) in &ranges {
                merged.entry(topic.to_string()).or_default().insert(*partition, range.end);
            }
            // Offsets and watermarks are merged on the base actually committed on, so
            // concurrent writers of one table never step each other's state back.
            let mut summary = HashMap::from([(offsets::OFFSETS.to_string(), offsets::encode(&merged))]);
            summary.extend(freshness::summary_entries(metadata, &times.event, &times.arrival));
            Ok(summary)
        };
        Ok(self.catalog.commit(base, pending, check, &self.policy).await?)
    }

    /// Commits the checkpoint's dead letters not yet in the dead-letter table; true when a
    /// commit landed.
    async fn commit_dead_letters(&self, checkpoint: &Checkpoint) -> Result<bool> {
        if checkpoint.dead_letters.is_empty() {
            return Ok(false);
        }
        // Partitions with dead letters and how far this checkpoint read them.
        let mut covered: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for letter in &checkpoint.dead_letters {
            let tp = (letter.topic.clone(), letter.partition);
            let end = checkpoint.ranges.get(&tp).map_or(letter.offset + 1, |r| r.end);
            covered.insert(tp, end);
        }
        let mut replan = Replan::new(icefall_table::catalog::display_ident(&self.dead_letter_table));
        loop {
            let base = self.catalog.load(&self.dead_letter_table).await?;
            let floor = committed_offsets(&base.metadata)?;
            // Below the dead-letter table's offset a letter is already there.
            let letters: Vec<&DeadLetter> = checkpoint
                .dead_letters
                .iter()
                .filter(|d| {
                    offset_of(&floor, &d.topic, d.partition).is_none_or(|f| d.offset >= f)
                        || !fault::enabled(Safeguard::DeadLetterFloor)
                })
                .collect();
            if letters.is_empty() {
                return Ok(false);
            }
            let batch = dead_letter::to_batch(&self.dead_letter_decoder, &letters)?;
            let prefix = format!("{}-{:06}-dlq-{}", self.instance, checkpoint.number, uuid::Uuid::now_v7().simple());
            let mut writer = self.dead_letter_files.open(prefix)?;
            writer.write(batch).await?;
            let files = writer.close().await?;
            let pending =
                PendingCommit::append(files.clone(), self.dead_letter_files.spec_id(), self.summary(checkpoint))
                    .with_tag(offsets::STATE_TAG);
            let covered = covered.clone();
            let expected = floor.clone();
            let check = move |metadata: &iceberg::spec::TableMetadata| {
                let current = committed_offsets(metadata).map_err(|e| e.to_string())?;
                let mut merged = current.clone();
                for ((topic, partition), end) in &covered {
                    let now = offset_of(&current, topic, *partition);
                    if now != offset_of(&expected, topic, *partition) {
                        return Err(format!("dead letters of {topic}/{partition} were committed meanwhile"));
                    }
                    merged.entry(topic.to_string()).or_default().insert(*partition, now.map_or(*end, |n| n.max(*end)));
                }
                Ok(HashMap::from([(offsets::OFFSETS.to_string(), offsets::encode(&merged))]))
            };
            match self.catalog.commit(base, &pending, check, &self.policy).await {
                Ok(outcome) => {
                    tracing::info!(table = %icefall_table::catalog::display_ident(&self.dead_letter_table),
                        snapshot_id = outcome.snapshot_id, records = letters.len(), "dead letters committed");
                    return Ok(true);
                }
                Err(e) => {
                    // Rejected: another writer added dead letters of these partitions; this
                    // attempt's files go (only those no snapshot references: an earlier attempt
                    // may have landed), also when the plans run out, then filter again.
                    if matches!(e, icefall_table::Error::Rejected { .. }) {
                        let paths: Vec<String> = files.iter().map(|f| f.file_path().to_string()).collect();
                        self.catalog.delete_unreferenced(&self.dead_letter_table, &paths).await?;
                    }
                    replan.again(e)?;
                }
            }
        }
    }
}

/// The fencing rule: the table must still be where the checkpoint started, partition by partition.
pub fn fence(current: &OffsetMap, ranges: &BTreeMap<TopicPartition, OffsetRange>) -> std::result::Result<(), String> {
    if !fault::enabled(Safeguard::Fence) {
        return Ok(());
    }
    for ((topic, partition), range) in ranges {
        let now = offset_of(current, topic, *partition);
        if now != range.start {
            return Err(format!(
                "{topic}/{partition} is at offset {} in the table but this checkpoint started at {}: \
                 another writer committed this range (fenced)",
                now.map_or("none".into(), |o| o.to_string()),
                range.start.map_or("none".into(), |o| o.to_string()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_schemas_crate_names_the_field_ids_property_as_the_contract_does() {
        assert_eq!(icefall_schemas::evolve::FIELD_IDS_PROPERTY, icefall_table::contract::FIELD_IDS);
    }

    use super::*;

    fn tp(topic: &str, p: i32) -> TopicPartition {
        (Arc::from(topic), p)
    }

    #[test]
    fn fencing_accepts_only_the_exact_start() {
        let mut current = OffsetMap::new();
        current.entry("t".into()).or_default().insert(0, 100);
        let ok = BTreeMap::from([(tp("t", 0), OffsetRange { start: Some(100), end: 150 })]);
        assert!(fence(&current, &ok).is_ok());
        let behind = BTreeMap::from([(tp("t", 0), OffsetRange { start: Some(50), end: 150 })]);
        assert!(fence(&current, &behind).is_err(), "a zombie that started earlier is fenced");
        let fresh = BTreeMap::from([(tp("t", 1), OffsetRange { start: None, end: 10 })]);
        assert!(fence(&current, &fresh).is_ok(), "a partition never committed starts from none");
        let raced = BTreeMap::from([(tp("t", 0), OffsetRange { start: None, end: 10 })]);
        assert!(fence(&current, &raced).is_err(), "someone committed the partition first");
    }
}
