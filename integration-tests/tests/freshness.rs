//! Freshness and table health, end to end: watermarks in the writer's snapshot summaries follow
//! their definition with out-of-order and late events (and `icefall-optimizer status` prints
//! them); a table that waits for compaction makes the writer lengthen its checkpoints until the
//! optimizer compacts it, losing nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use icefall_integration_tests::broker::Broker;
use icefall_integration_tests::optimizer;
use icefall_integration_tests::produce::{BackgroundProducer, TestProducer};
use icefall_integration_tests::tables;
use icefall_integration_tests::unique;
use icefall_integration_tests::writer::{WriterProcess, format_pipeline};
use icefall_table::catalog::parse_ident;
use icefall_table::freshness;

const WAIT: Duration = Duration::from_secs(120);

fn micros(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).expect("a timestamp").timestamp_micros()
}

/// Summary properties of every writer snapshot, oldest first (none before the table exists).
async fn writer_summaries(catalog: &icefall_table::Catalog, table: &str) -> Vec<BTreeMap<String, String>> {
    let Ok(loaded) = catalog.load(&parse_ident(table).expect("ident")).await else { return Vec::new() };
    let mut snapshots: Vec<_> = loaded.metadata.snapshots().collect();
    snapshots.sort_by_key(|s| s.sequence_number());
    snapshots
        .iter()
        .map(|s| s.summary().additional_properties.clone().into_iter().collect::<BTreeMap<_, _>>())
        .filter(|p| p.contains_key(icefall_table::offsets::OFFSETS))
        .collect()
}

/// A 2-partition topic and a writer config for `{id, ts}` records with `extra` pipeline keys.
struct World {
    dir: tempfile::TempDir,
    broker: Broker,
    topic: String,
    table: String,
    config: std::path::PathBuf,
}

fn world(name: &str, extra: &str) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start();
    let topic = unique(name);
    broker.create_topic(&topic, 2);
    let table = format!("{}.events", unique("ns"));
    let keys = format!(
        "schema = [ {{ name = \"id\", type = \"long\", required = true }}, {{ name = \"ts\", type = \"timestamptz\" }} ]\n{extra}"
    );
    let config = format_pipeline(dir.path(), &broker.bootstrap(), &topic, &table, &keys, "");
    World { dir, broker, topic, table, config }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermarks_follow_the_slowest_partition_and_late_events_are_counted_and_kept() {
    let w = world(
        "fresh",
        r#"partition = ["hour(ts)"]
event_time_column = "ts"
allowed_lateness = "10m"
max_open_files_per_writer = 1"#,
    );
    let (dir, broker, topic, table, config) = (&w.dir, &w.broker, &w.topic, &w.table, &w.config);
    let producer = TestProducer::new(&broker.bootstrap(), topic);
    let send = |id: i64, partition: i32, time: &str| {
        producer.send(
            partition,
            &id.to_string(),
            format!(r#"{{"id": {id}, "ts": "2026-11-22T{time}:00Z"}}"#).as_bytes(),
        );
    };
    let produced_from = chrono::Utc::now().timestamp_micros() - 1_000_000;
    // Partition 0 out of order (10:00, 10:05, 10:02); partition 1 behind (09:50, 09:55).
    for (id, partition, time) in [(0, 0, "10:00"), (1, 0, "10:05"), (2, 0, "10:02"), (3, 1, "09:50"), (4, 1, "09:55")] {
        send(id, partition, time);
    }
    producer.flush();
    let writer = WriterProcess::start(config, "writer");
    let catalog = tables::catalog(dir.path()).await;
    tables::wait_for_offsets(&catalog, table, topic, &BTreeMap::from([(0, 3), (1, 2)]), WAIT).await;

    let state = writer_summaries(&catalog, table).await.pop().expect("a writer snapshot");
    assert_eq!(state[freshness::EVENT_WATERMARK], "2026-11-22T09:55:00.000000Z", "partition 1 is the slowest");
    let maxima: freshness::TimeMap = serde_json::from_str(&state[freshness::EVENT_TIME_MAX]).expect("map");
    assert_eq!(maxima[topic][&0], micros("2026-11-22T10:05:00Z"), "out of order: the newest counts");
    assert_eq!(maxima[topic][&1], micros("2026-11-22T09:55:00Z"));
    let arrival = micros(&state[freshness::ARRIVAL_WATERMARK]);
    assert!(arrival >= produced_from && arrival <= chrono::Utc::now().timestamp_micros(), "{state:?}");

    // 09:00 is behind the watermark (09:55) by more than 10 minutes: late. 09:50 is not.
    // Partition 1 moves to 10:30, so partition 0 (10:05) is now the slowest.
    for (id, partition, time) in [(5, 0, "09:00"), (6, 0, "09:50"), (7, 1, "10:30")] {
        send(id, partition, time);
    }
    producer.flush();
    tables::wait_for_offsets(&catalog, table, topic, &BTreeMap::from([(0, 5), (1, 3)]), WAIT).await;
    let summaries = writer_summaries(&catalog, table).await;
    let state = summaries.last().expect("a writer snapshot");
    assert_eq!(state[freshness::EVENT_WATERMARK], "2026-11-22T10:05:00.000000Z");
    let late: u64 = summaries.iter().filter_map(|s| s.get(freshness::LATE_RECORDS)?.parse::<u64>().ok()).sum();
    assert_eq!(late, 1, "exactly the 09:00 event was late");
    assert!(writer.stop(Duration::from_secs(60)).success());

    // The late event is in the table like any other (in its own hour's partition); with one
    // open file per writer allowed, files were closed early and none was lost or overwritten.
    let mut ids = tables::long_column(&catalog, table, "id").await;
    ids.sort_unstable();
    assert_eq!(ids, (0..8).collect::<Vec<i64>>());
    // Compaction (a snapshot of the optimizer's, now the newest) carries the watermarks on.
    let optimizer_config = optimizer::config(dir.path(), None);
    let compacted = optimizer::run(&optimizer_config, table, &["compact"]);
    assert!(compacted[0]["commits"].as_u64().unwrap_or(0) >= 1, "{compacted:?}");
    let status = optimizer::run(&optimizer_config, table, &["status"]);
    assert_eq!(status[0]["event_watermark"], "2026-11-22T10:05:00.000000Z", "{status:?}");
    assert_eq!(status[0]["arrival_watermark"], state[freshness::ARRIVAL_WATERMARK].as_str(), "{status:?}");
    assert_eq!(status[0]["offsets_sum"], 8, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_waiting_for_compaction_slows_checkpoints_until_the_optimizer_catches_up() {
    let w = world("health", r#"backpressure = { max_snapshots_since_compaction = 3, max_checkpoint_interval = "4s" }"#);
    let (dir, broker, topic, table, config) = (&w.dir, &w.broker, &w.topic, &w.table, &w.config);
    let background = BackgroundProducer::start(&broker.bootstrap(), topic, 0, 2, 20);
    let writer = WriterProcess::start(config, "writer");
    let catalog = tables::catalog(dir.path()).await;
    let interval_of = |s: &BTreeMap<String, String>| {
        s.get("icefall.checkpoint-interval-ms").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    };

    // Commits every 500 ms pile up snapshots: the interval doubles up to its 4 s cap.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !writer_summaries(&catalog, table).await.iter().any(|s| interval_of(s) == 4_000) {
        assert!(Instant::now() < deadline, "the checkpoint interval never reached its cap");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let before = writer_summaries(&catalog, table).await.len();

    // Compaction resets the count: the configured 500 ms comes back.
    let report = optimizer::run(&optimizer::config(dir.path(), None), table, &["compact"]);
    assert!(report[0]["commits"].as_u64().unwrap_or(0) >= 1, "{report:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !writer_summaries(&catalog, table).await[before..].iter().any(|s| interval_of(s) == 500) {
        assert!(Instant::now() < deadline, "the checkpoint interval did not come back after compaction");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let (produced, landed) = background.finish();
    tables::wait_for_offsets(&catalog, table, topic, &landed, WAIT).await;
    assert!(writer.stop(Duration::from_secs(60)).success());
    let log = std::fs::read_to_string(dir.path().join("writer.log")).unwrap_or_default();
    assert!(log.contains("checkpoint interval lengthened"), "the slowdown is reported");
    let ids = tables::long_column(&catalog, table, "id").await;
    tables::assert_exactly_once(&ids, produced);
}
