use serde_json::json;

use super::*;

const DAY: i64 = 86_400_000;
const NOW: i64 = 100 * DAY;

/// Metadata whose main branch is snapshots 1 → 2 → … → `main_len` (snapshot n made
/// `main_len - n + 1` days ago, the first holding writer offsets), plus `extra` snapshots
/// `(id, parent, days ago)` and `refs`.
fn metadata(
    main_len: i64,
    extra: &[(i64, Option<i64>, i64)],
    refs: serde_json::Value,
    props: serde_json::Value,
) -> TableMetadata {
    let mut snapshots: Vec<serde_json::Value> = (1..=main_len)
        .map(|n| {
            let mut summary = json!({"operation": "append"});
            if n == 1 {
                summary[OFFSETS] = json!("t:0:10");
            }
            json!({"snapshot-id": n, "parent-snapshot-id": if n > 1 { json!(n - 1) } else { json!(null) },
                   "sequence-number": n, "timestamp-ms": NOW - (main_len - n + 1) * DAY,
                   "manifest-list": format!("/t/metadata/snap-{n}.avro"), "summary": summary, "schema-id": 0})
        })
        .collect();
    for (id, parent, days) in extra {
        snapshots.push(json!({"snapshot-id": id, "parent-snapshot-id": parent, "sequence-number": id,
            "timestamp-ms": NOW - days * DAY, "manifest-list": format!("/t/metadata/snap-{id}.avro"),
            "summary": {"operation": "append"}, "schema-id": 0}));
    }
    let mut all_refs = json!({"main": {"snapshot-id": main_len, "type": "branch"}});
    for (name, r) in refs.as_object().expect("refs") {
        all_refs[name] = r.clone();
    }
    let value = json!({
        "format-version": 2, "table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1", "location": "/t",
        "last-sequence-number": 100, "last-updated-ms": NOW, "last-column-id": 1, "current-schema-id": 0,
        "schemas": [{"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "x", "required": false, "type": "long"}]}],
        "default-spec-id": 0, "partition-specs": [{"spec-id": 0, "fields": []}], "last-partition-id": 999,
        "default-sort-order-id": 0, "sort-orders": [{"order-id": 0, "fields": []}],
        "properties": props, "current-snapshot-id": main_len, "snapshots": snapshots, "refs": all_refs,
        "snapshot-log": [], "metadata-log": []
    });
    serde_json::from_value(value).expect("metadata")
}

fn defaults(days: u64, keep: usize) -> Retention {
    Retention { max_snapshot_age: Duration::from_secs(days * 86_400), min_snapshots_to_keep: keep, max_ref_age: None }
}

fn expired(m: &TableMetadata, defaults: Retention) -> Vec<i64> {
    let retention = Retention::for_table(m, defaults).expect("retention");
    plan(m, retention, NOW).snapshot_ids.into_iter().collect()
}

#[test]
fn main_keeps_young_snapshots_and_the_recovery_state() {
    // Snapshots 1..=6, made 6..=1 days ago; 1 holds the offsets.
    let m = metadata(6, &[], json!({}), json!({}));
    assert_eq!(expired(&m, defaults(3, 1)), [2, 3], "older than 3 days, but not the snapshot with offsets");
    assert_eq!(expired(&m, defaults(3, 5)), Vec::<i64>::new(), "the newest five stay");
}

#[test]
fn table_properties_win_over_the_optimizers_defaults() {
    let m = metadata(6, &[], json!({}), json!({"history.expire.min-snapshots-to-keep": "5"}));
    assert_eq!(expired(&m, defaults(0, 1)), Vec::<i64>::new());
    let m = metadata(6, &[], json!({}), json!({"history.expire.max-snapshot-age-ms": (DAY * 5).to_string()}));
    assert_eq!(expired(&m, defaults(0, 1)), Vec::<i64>::new());
    let bad = metadata(2, &[], json!({}), json!({"history.expire.min-snapshots-to-keep": "many"}));
    let err = Retention::for_table(&bad, defaults(1, 1)).expect_err("not a number");
    assert!(err.contains("history.expire.min-snapshots-to-keep"), "{err}");
}

#[test]
fn branches_keep_their_own_history_and_old_refs_go() {
    // A branch `audit` at 12 (parent 11, parent 2), a tag on 3, the writer's state tag on 4.
    let refs = json!({
        "audit": {"snapshot-id": 12, "type": "branch", "min-snapshots-to-keep": 2},
        "v1": {"snapshot-id": 3, "type": "tag"},
        STATE_TAG: {"snapshot-id": 4, "type": "tag"},
    });
    let m = metadata(6, &[(11, Some(2), 8), (12, Some(11), 7)], refs.clone(), json!({}));
    // audit keeps 12 and 11; its ancestor 2 is only kept by nothing; tags keep 3 and 4.
    assert_eq!(expired(&m, defaults(0, 1)), [2, 5]);
    // Refs expire after 5 days: audit (at a 7-day-old snapshot) goes, v1 (4 days) stays.
    let m = metadata(
        6,
        &[(11, Some(2), 8), (12, Some(11), 7)],
        refs,
        json!({"history.expire.max-ref-age-ms": (DAY * 5).to_string()}),
    );
    let retention = Retention::for_table(&m, defaults(0, 1)).expect("retention");
    let expiry = plan(&m, retention, NOW);
    assert_eq!(expiry.refs.into_iter().collect::<Vec<_>>(), ["audit"], "the state tag never expires; v1 is young");
    assert_eq!(expiry.snapshot_ids.into_iter().collect::<Vec<_>>(), [2, 5, 11, 12]);
}

#[test]
fn unreferenced_snapshots_go_only_when_old() {
    let m = metadata(3, &[(20, None, 10), (21, None, 1)], json!({}), json!({}));
    assert_eq!(expired(&m, defaults(2, 1)), [20]);
}
