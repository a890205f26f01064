use std::time::Duration;

use super::*;
use crate::record::TopicPartition;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    (Arc::from(topic), partition)
}

#[test]
fn names_follow_namespace_name_unit() {
    let metrics = Metrics::new("acme");
    let p = metrics.pipeline("orders");
    p.records_consumed("orders-topic", 3, 120);
    p.partitions_assigned(&[(tp("orders-topic", 0), Some(10))], true, 1);
    p.partition_watermarks(&tp("orders-topic", 0), 0, 25);
    let text = metrics.encode();
    assert!(text.contains(r#"acme_consumed_records_total{pipeline="orders",topic="orders-topic"} 3"#), "{text}");
    assert!(text.contains(r#"acme_consumed_bytes_total{pipeline="orders",topic="orders-topic"} 120"#), "{text}");
    assert!(
        text.contains(r#"acme_consumer_lag_records{pipeline="orders",topic="orders-topic",partition="0"} 15"#),
        "{text}"
    );
    assert!(text.contains(r#"acme_assigned_partitions{pipeline="orders"} 1"#), "{text}");
}

#[test]
fn lag_follows_commits_and_revoked_partitions_leave() {
    let metrics = Metrics::new("icefall");
    let p = metrics.pipeline("t");
    p.partitions_assigned(&[(tp("a", 0), None), (tp("a", 1), Some(5))], true, 2);
    p.partition_watermarks(&tp("a", 0), 2, 10);
    p.partition_watermarks(&tp("a", 1), 0, 10);
    // An unassigned partition's statistics make no series.
    p.partition_watermarks(&tp("b", 0), 0, 99);
    let text = metrics.encode();
    assert!(text.contains(r#"icefall_consumer_lag_records{pipeline="t",topic="a",partition="0"} 8"#), "{text}");
    assert!(text.contains(r#"icefall_consumer_lag_records{pipeline="t",topic="a",partition="1"} 5"#), "{text}");
    assert!(!text.contains(r#"topic="b""#), "{text}");
    p.checkpoint_committed(&CommittedCheckpoint {
        rows: 13,
        files: 2,
        bytes: 2048,
        late_records: 1,
        dead_letters: &[],
        writers: 2,
        duration: Duration::from_millis(120),
        commit_duration: Duration::from_millis(30),
        conflicts: 1,
        offsets: vec![(tp("a", 0), 10), (tp("a", 1), 10)],
        event_watermark_us: Some(1_700_000_000_000_000),
        arrival_watermark_us: None,
    });
    p.partitions_revoked(&[tp("a", 1)], 1);
    let text = metrics.encode();
    assert!(text.contains(r#"icefall_consumer_lag_records{pipeline="t",topic="a",partition="0"} 0"#), "{text}");
    assert!(!text.contains(r#"partition="1""#), "a revoked partition keeps no series: {text}");
    assert!(text.contains(r#"icefall_committed_records_total{pipeline="t"} 13"#), "{text}");
    assert!(text.contains(r#"icefall_commit_conflicts_total{pipeline="t"} 1"#), "{text}");
    assert!(text.contains(r#"icefall_commits_total{pipeline="t",outcome="committed"} 1"#), "{text}");
    assert!(text.contains(r#"icefall_event_watermark_timestamp_seconds{pipeline="t"} 1700000000"#), "{text}");
    assert!(text.contains(r#"icefall_checkpoint_duration_seconds_count{pipeline="t"} 1"#), "{text}");
    assert!(p.is_assigned());
}
