//! Which snapshots and refs `expire-snapshots` removes, by the Iceberg spec's retention rules:
//!
//! - a branch keeps the newest `min-snapshots-to-keep` snapshots of its history and every one
//!   younger than `max-snapshot-age-ms`; a tag keeps its snapshot;
//! - a branch or tag older than `max-ref-age-ms` is removed (never `main`);
//! - a snapshot no branch or tag reaches is removed once older than `max-snapshot-age-ms`.
//!
//! Each value comes from the ref itself, else from the table (`history.expire.*`), else from the
//! optimizer's configuration or flags, which are defaults only. Whatever the rules say, the
//! current snapshot, the writer's state tag and the newest snapshot holding the writer's offsets
//! stay: they are the table's recovery state.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use iceberg::spec::TableMetadata;
use icefall_table::offsets::{OFFSETS, STATE_TAG};
use icefall_table::state::main_ancestry;

const MAX_SNAPSHOT_AGE: &str = "history.expire.max-snapshot-age-ms";
const MIN_SNAPSHOTS_TO_KEEP: &str = "history.expire.min-snapshots-to-keep";
const MAX_REF_AGE: &str = "history.expire.max-ref-age-ms";
const MAIN: &str = "main";

/// The retention that applies where a ref says nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    pub max_snapshot_age: Duration,
    pub min_snapshots_to_keep: usize,
    /// `None`: refs never expire by age.
    pub max_ref_age: Option<Duration>,
}

impl Retention {
    /// The table's `history.expire.*` properties over `defaults`; the error names a property
    /// that is not a number.
    pub fn for_table(metadata: &TableMetadata, defaults: Retention) -> Result<Retention, String> {
        let props = metadata.properties();
        let number = |key: &str| -> Result<Option<u64>, String> {
            props
                .get(key)
                .map(|v| v.trim().parse::<u64>().map_err(|_| format!("table property {key} = {v:?} is not a number")))
                .transpose()
        };
        Ok(Retention {
            max_snapshot_age: number(MAX_SNAPSHOT_AGE)?.map_or(defaults.max_snapshot_age, Duration::from_millis),
            min_snapshots_to_keep: number(MIN_SNAPSHOTS_TO_KEEP)?
                .map_or(defaults.min_snapshots_to_keep, |n| usize::try_from(n).unwrap_or(usize::MAX))
                .max(1),
            max_ref_age: number(MAX_REF_AGE)?.map(Duration::from_millis).or(defaults.max_ref_age),
        })
    }
}

/// A branch or tag with its own retention settings (from the metadata's serialized refs:
/// iceberg-rust keeps them private).
#[derive(Debug, Clone, PartialEq)]
struct Ref {
    snapshot_id: i64,
    branch: bool,
    min_snapshots_to_keep: Option<usize>,
    max_snapshot_age_ms: Option<u64>,
    max_ref_age_ms: Option<u64>,
}

fn refs(metadata: &TableMetadata) -> BTreeMap<String, Ref> {
    let Ok(value) = serde_json::to_value(metadata) else { return BTreeMap::new() };
    let Some(refs) = value.get("refs").and_then(|r| r.as_object()) else { return BTreeMap::new() };
    refs.iter()
        .filter_map(|(name, r)| {
            let number = |key: &str| r.get(key).and_then(serde_json::Value::as_u64);
            Some((
                name.clone(),
                Ref {
                    snapshot_id: r.get("snapshot-id")?.as_i64()?,
                    branch: r.get("type").and_then(|t| t.as_str()) != Some("tag"),
                    min_snapshots_to_keep: number("min-snapshots-to-keep").and_then(|n| usize::try_from(n).ok()),
                    max_snapshot_age_ms: number("max-snapshot-age-ms"),
                    max_ref_age_ms: number("max-ref-age-ms"),
                },
            ))
        })
        .collect()
}

/// What an expiry removes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expiry {
    pub snapshot_ids: BTreeSet<i64>,
    pub refs: BTreeSet<String>,
}

/// The snapshots and refs to remove at `now_ms` under `retention` (the table's).
pub fn plan(metadata: &TableMetadata, retention: Retention, now_ms: i64) -> Expiry {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let timestamp = |id: i64| metadata.snapshot_by_id(id).map_or(i64::MAX, |s| s.timestamp_ms());
    let ancestry = |id: i64| {
        let mut next = metadata.snapshot_by_id(id);
        std::iter::from_fn(move || {
            let current = next?;
            next = current.parent_snapshot_id().and_then(|p| metadata.snapshot_by_id(p));
            Some(current)
        })
    };
    let mut expiry = Expiry::default();
    let mut keep: BTreeSet<i64> = BTreeSet::new();
    let mut reached: BTreeSet<i64> = BTreeSet::new();
    for (name, r) in refs(metadata) {
        let max_ref_age = r.max_ref_age_ms.map(|v| v as i64).or(retention.max_ref_age.map(ms));
        let too_old = max_ref_age.is_some_and(|age| now_ms.saturating_sub(timestamp(r.snapshot_id)) > age);
        if too_old && name != MAIN && name != STATE_TAG {
            expiry.refs.insert(name);
            continue;
        }
        if !r.branch {
            keep.insert(r.snapshot_id);
            reached.insert(r.snapshot_id);
            continue;
        }
        let min_keep = r.min_snapshots_to_keep.unwrap_or(retention.min_snapshots_to_keep).max(1);
        let cutoff = now_ms.saturating_sub(r.max_snapshot_age_ms.map_or(ms(retention.max_snapshot_age), |v| v as i64));
        for (i, snapshot) in ancestry(r.snapshot_id).enumerate() {
            reached.insert(snapshot.snapshot_id());
            if i < min_keep || snapshot.timestamp_ms() >= cutoff {
                keep.insert(snapshot.snapshot_id());
            }
        }
    }
    // The table's recovery state.
    keep.extend(metadata.current_snapshot_id());
    if let Some(with_offsets) =
        main_ancestry(metadata).find(|s| s.summary().additional_properties.contains_key(OFFSETS))
    {
        keep.insert(with_offsets.snapshot_id());
    }
    let cutoff = now_ms.saturating_sub(ms(retention.max_snapshot_age));
    for snapshot in metadata.snapshots() {
        let id = snapshot.snapshot_id();
        let unreferenced_but_young = !reached.contains(&id) && snapshot.timestamp_ms() >= cutoff;
        if !keep.contains(&id) && !unreferenced_but_young {
            expiry.snapshot_ids.insert(id);
        }
    }
    expiry
}

#[cfg(test)]
mod tests;
