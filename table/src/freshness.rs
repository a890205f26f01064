//! Freshness watermarks, kept in the writer-state snapshot's summary.
//!
//! Per Kafka partition the writer records the newest event time and the newest arrival time
//! (the Kafka record timestamp) it has committed: `icefall.event-time-max` and
//! `icefall.arrival-time-max`, topic → partition → microseconds. A table's watermark is the
//! minimum of those over its partitions: every partition has committed its records up to at
//! least that time. Every writer snapshot carries both maps (merged with what the table had)
//! and both watermarks as RFC 3339 text, so a batch job reads one summary property.

use std::collections::BTreeMap;

use iceberg::spec::TableMetadata;

use crate::state::state_property;

/// topic → partition → newest committed time (µs since the epoch, UTC).
pub type TimeMap = BTreeMap<String, BTreeMap<i32, i64>>;

pub use crate::contract::{ARRIVAL_TIME_MAX, ARRIVAL_WATERMARK, EVENT_TIME_MAX, EVENT_WATERMARK, LATE_RECORDS};

/// A table's watermarks (µs since the epoch), `None` before any record carried the time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Watermarks {
    /// The event-time watermark, µs since the epoch.
    pub event: Option<i64>,
    /// The arrival-time watermark, µs since the epoch.
    pub arrival: Option<i64>,
}

/// One partition's times gathered while writing a checkpoint.
pub fn observe(map: &mut TimeMap, topic: &str, partition: i32, micros: i64) {
    // The topic's name is copied only the first time it is seen.
    let partitions = match map.get_mut(topic) {
        Some(partitions) => partitions,
        None => map.entry(topic.to_string()).or_default(),
    };
    let slot = partitions.entry(partition).or_insert(micros);
    *slot = (*slot).max(micros);
}

/// Adds `newer` into `into`, keeping the maximum per partition.
pub fn merge(into: &mut TimeMap, newer: &TimeMap) {
    for (topic, partitions) in newer {
        for (partition, micros) in partitions {
            observe(into, topic, *partition, *micros);
        }
    }
}

/// The minimum over partitions.
pub fn watermark(map: &TimeMap) -> Option<i64> {
    map.values().flat_map(|p| p.values().copied()).min()
}

/// What the table has committed so far under `key` ([`EVENT_TIME_MAX`] or [`ARRIVAL_TIME_MAX`]).
/// An unreadable value counts as none: watermarks are advisory and never block a commit.
pub fn committed(metadata: &TableMetadata, key: &str) -> TimeMap {
    state_property(metadata, key).and_then(|text| serde_json::from_str(text).ok()).unwrap_or_default()
}

/// The table's current watermarks.
pub fn table_watermarks(metadata: &TableMetadata) -> Watermarks {
    Watermarks {
        event: watermark(&committed(metadata, EVENT_TIME_MAX)),
        arrival: watermark(&committed(metadata, ARRIVAL_TIME_MAX)),
    }
}

/// Summary entries of a commit: the table's maps merged with this checkpoint's, and the
/// watermarks they give.
pub fn summary_entries(metadata: &TableMetadata, event: &TimeMap, arrival: &TimeMap) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (map_key, watermark_key, new) in
        [(EVENT_TIME_MAX, EVENT_WATERMARK, event), (ARRIVAL_TIME_MAX, ARRIVAL_WATERMARK, arrival)]
    {
        let mut merged = committed(metadata, map_key);
        merge(&mut merged, new);
        if let Some(mark) = watermark(&merged) {
            // A map of strings and integers always serialises.
            out.push((map_key.to_string(), serde_json::to_string(&merged).unwrap_or_default()));
            out.push((watermark_key.to_string(), format_micros(mark)));
        }
    }
    out
}

/// RFC 3339 in UTC with microseconds, e.g. `2026-11-22T10:00:00.000000Z`.
pub fn format_micros(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_else(|| micros.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_is_the_slowest_partitions_newest_time() {
        let mut committed = TimeMap::new();
        observe(&mut committed, "t", 0, 100);
        observe(&mut committed, "t", 1, 50);
        observe(&mut committed, "t", 1, 40); // out of order: the maximum stays
        assert_eq!(watermark(&committed), Some(50));
        let mut checkpoint = TimeMap::new();
        observe(&mut checkpoint, "t", 1, 70);
        observe(&mut checkpoint, "t", 0, 90); // older than committed: no step back
        merge(&mut committed, &checkpoint);
        assert_eq!(committed["t"][&0], 100);
        assert_eq!(watermark(&committed), Some(70));
        observe(&mut committed, "u", 0, 10); // a new partition holds the watermark back
        assert_eq!(watermark(&committed), Some(10));
        assert_eq!(watermark(&TimeMap::new()), None);
    }

    #[test]
    fn watermarks_read_as_rfc3339() {
        assert_eq!(format_micros(1_763_805_600_123_456), "2025-11-22T10:00:00.123456Z");
    }
}
