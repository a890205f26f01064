//! Summary-key conventions: how a snapshot records the Kafka offsets its data covers.
//!
//! Every writer snapshot carries the table's *full* offset map (every topic-partition the table
//! has ever covered, not only those of this checkpoint), so the newest such snapshot in the main
//! branch's ancestry is the whole recovery state. Snapshots made by others (the optimizer,
//! Spark) carry no offsets and are skipped by the walk.

use std::collections::BTreeMap;

use iceberg::spec::{MAIN_BRANCH, SnapshotRef, TableMetadata};

use crate::{Error, Result};

pub use crate::contract::{CHECKPOINT, COMMIT_ID, OFFSETS, STATE_TAG, WRITER_ID, WRITER_INSTANCE};

/// topic → partition → next offset to read.
pub type OffsetMap = BTreeMap<String, BTreeMap<i32, i64>>;

/// Snapshots of the main branch from newest to oldest, as far back as metadata still has them.
pub fn main_ancestry(metadata: &TableMetadata) -> impl Iterator<Item = &SnapshotRef> {
    let mut next = metadata.snapshot_for_ref(MAIN_BRANCH);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.parent_snapshot_id().and_then(|id| metadata.snapshot_by_id(id));
        Some(current)
    })
}

/// Every branch and tag with the snapshot it points at. (iceberg-rust keeps `refs` private;
/// its serialized form is the spec's, so read it from there.)
pub fn refs(metadata: &TableMetadata) -> BTreeMap<String, i64> {
    let Ok(value) = serde_json::to_value(metadata) else { return BTreeMap::new() };
    value
        .get("refs")
        .and_then(|r| r.as_object())
        .map(|refs| {
            refs.iter()
                .filter_map(|(name, r)| r.get("snapshot-id").and_then(|id| id.as_i64()).map(|id| (name.clone(), id)))
                .collect()
        })
        .unwrap_or_default()
}

/// The writer-state snapshot: the newest snapshot on main holding offsets, or (if main's
/// ancestry holds none: an engine expired them while the tag was removed, or a rollback) the
/// snapshot of [`STATE_TAG`]. Every writer snapshot carries the whole state (offsets,
/// freshness), so this one snapshot is where recovery and watermarks read it.
pub fn state_snapshot(metadata: &TableMetadata) -> Option<&SnapshotRef> {
    let tagged = refs(metadata).get(STATE_TAG).and_then(|id| metadata.snapshot_by_id(*id));
    main_ancestry(metadata).chain(tagged).find(|s| s.summary().additional_properties.contains_key(OFFSETS))
}

/// A summary property of the [`state_snapshot`].
pub fn state_property<'a>(metadata: &'a TableMetadata, key: &str) -> Option<&'a str> {
    state_snapshot(metadata).and_then(|s| s.summary().additional_properties.get(key)).map(String::as_str)
}

/// Summary keys that make up the writer state (offsets and freshness), carried whole.
pub fn state_keys() -> [&'static str; 5] {
    use crate::contract::{ARRIVAL_TIME_MAX, ARRIVAL_WATERMARK, EVENT_TIME_MAX, EVENT_WATERMARK};
    [OFFSETS, EVENT_TIME_MAX, ARRIVAL_TIME_MAX, EVENT_WATERMARK, ARRIVAL_WATERMARK]
}

/// The writer state of the [`state_snapshot`], for a snapshot made by someone else (the
/// optimizer) to carry forward unchanged: the newest snapshot then still holds all of it.
pub fn carried_state(metadata: &TableMetadata) -> std::collections::HashMap<String, String> {
    let Some(snapshot) = state_snapshot(metadata) else { return Default::default() };
    let properties = &snapshot.summary().additional_properties;
    state_keys().iter().filter_map(|k| properties.get(*k).map(|v| (k.to_string(), v.clone()))).collect()
}

/// The offsets recorded by the [`state_snapshot`] (empty when there is none).
pub fn committed_offsets(metadata: &TableMetadata) -> Result<OffsetMap> {
    let Some(snapshot) = state_snapshot(metadata) else { return Ok(OffsetMap::new()) };
    let text = snapshot.summary().additional_properties.get(OFFSETS).map_or("{}", String::as_str);
    decode(text).map_err(|message| Error::Metadata {
        table: metadata.location().to_string(),
        message: format!("snapshot {} has an unreadable {OFFSETS}: {message}", snapshot.snapshot_id()),
    })
}

/// The snapshot on main that carries this commit id, if any.
pub fn find_commit(metadata: &TableMetadata, commit_id: &str) -> Option<i64> {
    main_ancestry(metadata)
        .find(|s| s.summary().additional_properties.get(COMMIT_ID).map(String::as_str) == Some(commit_id))
        .map(|s| s.snapshot_id())
}

/// The JSON text of an offset map.
pub fn encode(offsets: &OffsetMap) -> String {
    // A map of strings and integers always serialises.
    serde_json::to_string(offsets).unwrap_or_default()
}

/// Parses the JSON text of an offset map.
pub fn decode(text: &str) -> std::result::Result<OffsetMap, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// The offset recorded for one partition.
pub fn offset_of(offsets: &OffsetMap, topic: &str, partition: i32) -> Option<i64> {
    offsets.get(topic).and_then(|p| p.get(&partition)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_through_summary_text() {
        let mut map = OffsetMap::new();
        map.entry("events".into()).or_default().insert(3, 42);
        map.entry("events".into()).or_default().insert(0, 7);
        let text = encode(&map);
        assert_eq!(text, r#"{"events":{"0":7,"3":42}}"#);
        assert_eq!(decode(&text).ok(), Some(map.clone()));
        assert_eq!(offset_of(&map, "events", 3), Some(42));
        assert_eq!(offset_of(&map, "events", 1), None);
    }
}
