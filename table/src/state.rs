//! The writer state a table carries, and where to find it.
//!
//! Every writer snapshot carries the table's *full* state (the offset map of every
//! topic-partition the table has ever covered, and the freshness keys), not only what its own
//! checkpoint changed, so the newest such snapshot in the main branch's ancestry is the whole
//! recovery state. Snapshots made by others (the optimizer, Spark) carry none and are skipped by
//! the walk; [`STATE_TAG`] keeps the state snapshot reachable when engines expire snapshots.

use std::collections::BTreeMap;

use iceberg::spec::{MAIN_BRANCH, SnapshotRef, TableMetadata};

use crate::contract::{COMMIT_ID, OFFSETS, STATE_TAG};

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

/// The snapshot on main that carries this commit id, if any.
pub fn find_commit(metadata: &TableMetadata, commit_id: &str) -> Option<i64> {
    main_ancestry(metadata)
        .find(|s| s.summary().additional_properties.get(COMMIT_ID).map(String::as_str) == Some(commit_id))
        .map(|s| s.snapshot_id())
}
