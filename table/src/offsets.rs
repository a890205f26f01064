//! The Kafka offsets a table holds: the offset map each writer snapshot records under
//! [`OFFSETS`], read from the writer-state snapshot ([`crate::state`]).

use std::collections::BTreeMap;

use iceberg::spec::TableMetadata;

use crate::state::state_snapshot;
use crate::{Error, Result};

pub use crate::contract::{CHECKPOINT, COMMIT_ID, OFFSETS, STATE_TAG, WRITER_ID, WRITER_INSTANCE};

/// topic → partition → next offset to read.
pub type OffsetMap = BTreeMap<String, BTreeMap<i32, i64>>;

/// The offsets recorded by the [`state_snapshot`] (empty when there is none).
pub fn committed_offsets(metadata: &TableMetadata) -> Result<OffsetMap> {
    let Some(snapshot) = state_snapshot(metadata) else { return Ok(OffsetMap::new()) };
    let text = snapshot.summary().additional_properties.get(OFFSETS).map_or("{}", String::as_str);
    decode(text).map_err(|message| Error::Metadata {
        table: metadata.location().to_string(),
        message: format!("snapshot {} has an unreadable {OFFSETS}: {message}", snapshot.snapshot_id()),
    })
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
