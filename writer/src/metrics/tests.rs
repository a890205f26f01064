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
    assert!(text.contains(&format!(r#"acme_build_info{{version="{}"}} 1"#, env!("CARGO_PKG_VERSION"))), "{text}");
    p.readiness_checked(false);
    p.partitions_paused(2);
    p.buffered(4096);
    let text = metrics.encode();
    assert!(text.contains(r#"acme_pipeline_ready{pipeline="orders"} 0"#), "{text}");
    assert!(text.contains(r#"acme_paused_partitions{pipeline="orders"} 2"#), "{text}");
    assert!(text.contains(r#"acme_buffered_bytes{pipeline="orders"} 4096"#), "{text}");
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

#[test]
fn every_metric_is_in_the_operations_guide_and_no_other() {
    // Every named event once, so every family has a series to show.
    let metrics = Metrics::new("icefall");
    let p = metrics.pipeline("t");
    let letter = crate::dead_letter::DeadLetter {
        topic: Arc::from("a"),
        partition: 0,
        offset: 3,
        timestamp_ms: None,
        key: None,
        value: None,
        error: "bad".into(),
        error_kind: "malformed",
        headers: Vec::new(),
    };
    p.records_consumed("a", 3, 120);
    p.offsets_lost("a", 2);
    p.partitions_assigned(&[(tp("a", 0), Some(1))], true, 1);
    p.partition_watermarks(&tp("a", 0), 0, 10);
    p.checkpoint_committed(&CommittedCheckpoint {
        rows: 2,
        files: 1,
        bytes: 10,
        late_records: 1,
        dead_letters: std::slice::from_ref(&letter),
        writers: 1,
        duration: Duration::from_millis(5),
        commit_duration: Duration::from_millis(2),
        conflicts: 1,
        offsets: vec![(tp("a", 0), 4)],
        event_watermark_us: Some(1),
        arrival_watermark_us: Some(1),
    });
    p.commit_fenced();
    p.commit_retried();
    p.checkpoint_stalled(Duration::from_millis(20));
    p.checkpoint_dropped("fenced");
    p.writers_changed(2);
    p.interval_changed(Duration::from_secs(2));
    p.readiness_checked(true);
    p.partitions_paused(4);
    p.buffered(1024);
    let text = metrics.encode();
    let registered: std::collections::BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operations.md");
    let guide = std::fs::read_to_string(path).expect("docs/operations.md");
    let table = guide.split("| metric | type | what it tells you |").nth(1).expect("the metrics table");
    let table = table.split("\n\n").next().unwrap_or_default();
    let documented: std::collections::BTreeSet<String> = table
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|code| code.split('{').next())
        .filter(|name| name.starts_with("icefall_"))
        .map(|name| name.strip_suffix("_total").unwrap_or(name).to_string())
        .collect();
    assert_eq!(documented, registered, "docs/operations.md's metrics table and writer/src/metrics differ");
}

#[tokio::test]
async fn catalog_requests_are_counted_by_operation_and_outcome() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog =
        icefall_table::Catalog::connect(&icefall_table::CatalogConfig::embedded_in(dir.path())).await.expect("catalog");
    let metrics = Metrics::new("icefall");
    let connected = metrics.catalog().clone();
    assert!(!metrics.encode().contains("icefall_catalog_requests_total{"), "no samples before the catalog is there");
    let _ = connected.set(catalog.clone());
    let missing = icefall_table::catalog::parse_ident("ns.missing").expect("ident");
    for _ in 0..2 {
        assert!(catalog.load(&missing).await.is_err());
    }
    let text = metrics.encode();
    assert!(text.contains(r#"icefall_catalog_requests_total{operation="load",outcome="not_found"} 2"#), "{text}");
    assert!(text.contains(r#"icefall_catalog_request_seconds_total{operation="load",outcome="not_found"} "#), "{text}");
}
