//! Exactly-once against a real broker and catalog: end to end, crashes, zombies, bad input.
//! Every test counts every record: ids are unique per produced record, so "each id exactly
//! once" is "each (partition, offset) exactly once".

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use icefall_integration_tests::Lcg;
use icefall_integration_tests::engines;
use icefall_integration_tests::produce::{TestProducer, event_json};
use icefall_integration_tests::scenario::{PARTITIONS, Scenario};
use icefall_integration_tests::tables::{self, assert_exactly_once};
use icefall_integration_tests::writer::WriterProcess;

fn produce_range(producer: &TestProducer, from: i64, to: i64, landed: &mut BTreeMap<i32, i64>) {
    producer.send_events(from, to, PARTITIONS, landed);
}

fn setup(name: &str, checkpoint: &str) -> (Scenario, std::path::PathBuf) {
    let scenario = Scenario::new(name, checkpoint);
    let config = scenario.writer_config.clone();
    (scenario, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_100k_records_land_exactly_once_with_offsets_in_the_table() {
    let (s, config) = setup("e2e", "2s");
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let mut landed = BTreeMap::new();
    let n = 100_000;
    produce_range(&producer, 0, n, &mut landed);

    let writer = WriterProcess::start(&config, "writer");
    let catalog = tables::catalog(&s.dir).await;
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, Duration::from_secs(240)).await;
    let status = writer.stop(Duration::from_secs(60));
    assert!(status.success(), "SIGTERM → exit 0, got {status}");

    let ids = tables::long_column(&catalog, &s.table, "id").await;
    assert_exactly_once(&ids, n);
    // Metadata columns hold each record's own topic, key, timestamp and arrival time.
    let mut with_headers = 0;
    for batch in tables::scan(
        &catalog,
        &s.table,
        &["id", "kafka_topic", "kafka_key", "kafka_timestamp", "ingested_at", "kafka_headers"],
    )
    .await
    {
        use arrow_array::Array;
        use arrow_array::cast::AsArray;
        let ids = batch.column(0).as_primitive::<arrow_array::types::Int64Type>();
        let topics = batch.column(1).as_string::<i32>();
        let keys = batch.column(2).as_binary::<i64>();
        for row in 0..batch.num_rows() {
            assert_eq!(topics.value(row), s.topic);
            assert_eq!(keys.value(row), ids.value(row).to_string().as_bytes());
        }
        assert_eq!(batch.column(3).null_count(), 0, "every record has a timestamp");
        assert_eq!(batch.column(4).null_count(), 0, "every record has an arrival time");
        let headers = batch.column(5).as_map();
        for row in 0..batch.num_rows() {
            let entries = headers.value(row);
            let names = entries.column(0).as_string::<i32>();
            let values = entries.column(1).as_binary::<i64>();
            let got: Vec<(&str, Option<&[u8]>)> =
                (0..entries.len()).map(|i| (names.value(i), values.is_valid(i).then(|| values.value(i)))).collect();
            let want = icefall_integration_tests::produce::event_headers(ids.value(row)).unwrap_or_default();
            let want: Vec<(&str, Option<&[u8]>)> =
                want.iter().map(|(k, v)| (*k, v.as_deref().map(str::as_bytes))).collect();
            assert_eq!(got, want, "the headers of record {}", ids.value(row));
            with_headers += usize::from(!want.is_empty());
        }
    }
    assert_eq!(with_headers, n as usize / 1000, "records with headers");
    // Counted by Kafka coordinates too (metadata columns): every (partition, offset) once.
    tables::assert_offsets_exactly_once(&tables::partition_offsets(&catalog, &s.table).await, &landed);
    // The summary's offsets are the partitions' high watermarks.
    let offsets = tables::offsets(&catalog, &s.table).await;
    assert_eq!(offsets.get(&s.topic), Some(&landed));
    // The consumer group got the same offsets after the table commit (for lag tools).
    let group =
        icefall_integration_tests::produce::group_offsets(&s.broker.bootstrap(), "it.events", &s.topic, PARTITIONS);
    assert_eq!(group, landed);
    // PyIceberg reads the same table through the same catalog.
    let report = engines::pyiceberg_report(&s.dir, &s.table);
    assert_eq!(report["rows"], n);
    assert_eq!(report["distinct_ids"], n);
    let snapshots = report["snapshots"].as_array().expect("snapshots");
    assert!(snapshots.iter().all(|s| s["icefall"]["icefall.commit-id"].is_string()));
    // No dead letters for clean input: the DLQ table exists and is empty.
    let dlq = tables::long_column(&catalog, &format!("{}_dlq", s.table), "offset").await;
    assert!(dlq.is_empty());
}

/// ≥ 30 `kill -9` at random moments, every run living long enough to join the group and commit
/// at least once (asserted), while a producer keeps sending with 1% malformed records: every
/// (partition, offset) ends up exactly once in the table or in its dead-letter table.
async fn kill_loop(s: &Scenario, kills: usize) {
    // A short session, so a killed member leaves the group quickly and each run gets going.
    let text = std::fs::read_to_string(&s.writer_config).expect("config");
    std::fs::write(
        &s.writer_config,
        text.replace("\"session.timeout.ms\" = \"6000\"", "\"session.timeout.ms\" = \"3000\""),
    )
    .expect("config");
    let stop_producing = Arc::new(AtomicBool::new(false));
    let landed = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let producer_thread = {
        let (bootstrap, topic) = (s.broker.bootstrap(), s.topic.clone());
        let (stop, landed) = (stop_producing.clone(), landed.clone());
        std::thread::spawn(move || {
            let producer = TestProducer::new(&bootstrap, &topic);
            let mut local = BTreeMap::new();
            let mut id = 0;
            while !stop.load(Ordering::SeqCst) {
                producer.send_events_with_malformed(id, id + 300, PARTITIONS, &mut local);
                id += 300;
                std::thread::sleep(Duration::from_millis(200));
            }
            *landed.lock().expect("lock") = local;
        })
    };

    let catalog = s.catalog().await;
    let mut rng = Lcg::new(7);
    let started = Instant::now();
    for _ in 0..kills {
        let committed_before = tables::writer_instances(&catalog, &s.table).await.len();
        let mut writer = WriterProcess::start(&s.writer_config, "writer");
        // Kill at a random moment after this run's first commit: between or inside checkpoints
        // (one every 500 ms), in a dead-letter commit, a rebalance or a journal write.
        let deadline = Instant::now() + Duration::from_secs(60);
        while tables::writer_instances(&catalog, &s.table).await.len() <= committed_before {
            assert!(Instant::now() < deadline, "the writer never committed; see {}", writer.log.display());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.range(0, 1_500))).await;
        assert!(writer.is_running(), "the writer died by itself; see {}", writer.log.display());
        writer.kill9();
        assert!(started.elapsed() < Duration::from_secs(600), "crash loop took too long");
    }
    stop_producing.store(true, Ordering::SeqCst);
    producer_thread.join().expect("producer");
    let landed = landed.lock().expect("lock").clone();

    let runs_before =
        std::fs::read_to_string(s.dir.join("writer.log")).unwrap_or_default().matches("pipeline started").count();
    let writer = WriterProcess::start(&s.writer_config, "writer");
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, Duration::from_secs(240)).await;
    // The earlier runs may have landed everything: stop this one once it is up, so the stop is
    // the clean shutdown it is meant to check.
    writer.wait_for_log_count("pipeline started", runs_before + 1, Duration::from_secs(60));
    assert!(writer.stop(Duration::from_secs(60)).success());

    tables::assert_landed_exactly_once(&catalog, &s.table, &landed).await;
    assert_eq!(tables::offsets(&catalog, &s.table).await.get(&s.topic), Some(&landed));
    let instances = tables::writer_instances(&catalog, &s.table).await;
    // Every killed run committed (checked above); the last run may find nothing left to land.
    assert!(instances.len() >= kills, "only {} writer instances committed anything", instances.len());
    eprintln!("{kills} kills, each after its run committed; {} records exactly once", landed.values().sum::<i64>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_thirty_times_loses_and_duplicates_nothing_on_sqlite() {
    kill_loop(&Scenario::new("crash", "500ms"), 30).await;
}

/// The same on PostgreSQL, whose only difference is the catalog's compare-and-swap: fewer
/// kills (the heavy loop runs once, on SQLite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_ten_times_loses_and_duplicates_nothing_on_postgres() {
    kill_loop(&Scenario::on_postgres("crash-pg", "500ms"), 10).await;
}

/// A real zombie: writer A reads records, then freezes (SIGSTOP) past its session timeout while
/// B takes its partitions and commits them; A thaws holding its stale checkpoint and commits
/// it. Returns the table's rows' (partition, offset) pairs, what was produced, A's fenced
/// commits (from its `/metrics`) and A's log.
async fn zombie(name: &str, env: &[(&str, &str)]) -> (Vec<(i32, i64)>, BTreeMap<i32, i64>, f64, String) {
    let s = Scenario::new(name, "1s");
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let mut landed = BTreeMap::new();
    produce_range(&producer, 0, 10_000, &mut landed);
    // A checkpoints rarely, so what it read is still in flight when it freezes.
    let port = icefall_integration_tests::broker::free_port();
    let text = std::fs::read_to_string(&s.writer_config).expect("config");
    let config_a = s.dir.join("writer-a.toml");
    let text_a = text.replace("checkpoint_interval = \"1s\"", "checkpoint_interval = \"60s\"");
    std::fs::write(&config_a, format!("{text_a}\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n")).expect("config");

    let a = WriterProcess::start_with_env(&config_a, "writer-a", env);
    let consumed = |_: u16, text: &str| {
        icefall_integration_tests::http::metric_sum(text, "icefall_consumed_records_total", &[])
            .is_some_and(|n| n >= 10_000.0)
    };
    icefall_integration_tests::http::wait_for(port, "/metrics", Duration::from_secs(60), consumed);
    a.freeze();
    let b = WriterProcess::start(&s.writer_config, "writer-b");
    let catalog = s.catalog().await;
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, Duration::from_secs(120)).await;
    a.thaw();
    // A's commit of its stale range: on its revocation, or at its next checkpoint.
    let fenced_or_landed = |_: u16, text: &str| {
        let commits = icefall_integration_tests::http::metric_sum(text, "icefall_commits_total", &[]);
        commits.is_some_and(|c| c >= 1.0)
    };
    let metrics =
        icefall_integration_tests::http::wait_for(port, "/metrics", Duration::from_secs(90), fenced_or_landed);
    let fenced =
        icefall_integration_tests::http::metric_sum(&metrics, "icefall_commits_total", &["outcome=\"fenced\""])
            .unwrap_or(0.0);
    // Both go on: more records, then a clean stop.
    produce_range(&producer, 10_000, 12_000, &mut landed);
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, Duration::from_secs(120)).await;
    let log_a = a.log.clone();
    assert!(a.stop(Duration::from_secs(60)).success());
    assert!(b.stop(Duration::from_secs(60)).success());
    let log = std::fs::read_to_string(log_a).expect("log of A");
    (tables::partition_offsets(&catalog, &s.table).await, landed, fenced, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_zombie_is_fenced_and_every_offset_lands_once() {
    let (pairs, landed, fenced, log) = zombie("zombie", &[]).await;
    assert!(fenced >= 1.0, "A's stale commit was fenced (icefall_commits_total{{outcome=\"fenced\"}} = {fenced})");
    assert!(log.contains("commit fenced"), "A logged its fenced commit");
    tables::assert_offsets_exactly_once(&pairs, &landed);
}

/// The mutation check of the test above: with the fence disabled (a test build's switch), the
/// same zombie duplicates what B committed, and the count catches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_fence_the_same_zombie_duplicates_records() {
    let (pairs, landed, fenced, log) = zombie("zombie-unfenced", &[("ICEFALL_TEST_DISABLE", "fence")]).await;
    assert!(log.contains("safeguard disabled"), "the test build honoured the switch");
    assert_eq!(fenced, 0.0);
    let total: i64 = landed.values().sum();
    assert!(
        pairs.len() as i64 > total,
        "without the fence the zombie's commit must land twice-read records: {} rows for {total} records",
        pairs.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_go_to_the_dead_letter_table_with_reasons() {
    let (s, config) = setup("dlq", "1s");
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let n = 20_000i64;
    let mut landed = BTreeMap::new();
    let mut bad = BTreeMap::new(); // id → expected error kind
    for id in 0..n {
        let partition = (id % i64::from(PARTITIONS)) as i32;
        let payload = match id % 100 {
            13 => {
                bad.insert(id, "not_json");
                format!("{{\"id\": {id}, broken")
            }
            57 => {
                bad.insert(id, "wrong_type");
                event_json(id).replace(&format!("\"id\": {id}"), &format!("\"id\": \"{id}\""))
            }
            _ => event_json(id),
        };
        producer.send(partition, &id.to_string(), payload.as_bytes());
        *landed.entry(partition).or_default() += 1;
    }
    producer.flush();

    let writer = WriterProcess::start(&config, "writer");
    let catalog = tables::catalog(&s.dir).await;
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, Duration::from_secs(240)).await;
    assert!(writer.stop(Duration::from_secs(60)).success());

    let good: Vec<i64> = (0..n).filter(|i| !bad.contains_key(i)).collect();
    let mut ids = tables::long_column(&catalog, &s.table, "id").await;
    ids.sort_unstable();
    assert_eq!(ids, good, "every good record exactly once");

    let dlq = format!("{}_dlq", s.table);
    let batches = tables::scan(&catalog, &dlq, &["partition", "offset", "key", "error", "error_kind"]).await;
    let mut seen = BTreeMap::new();
    for batch in &batches {
        use arrow_array::Array;
        use arrow_array::cast::AsArray;
        let keys = batch.column(2).as_binary::<i64>();
        let errors = batch.column(3).as_string::<i32>();
        let kinds = batch.column(4).as_string::<i32>();
        for row in 0..batch.num_rows() {
            let id: i64 = String::from_utf8_lossy(keys.value(row)).parse().expect("key is the id");
            assert!(!errors.value(row).is_empty() && !errors.is_null(row));
            assert!(seen.insert(id, kinds.value(row).to_string()).is_none(), "dead letter {id} twice");
        }
    }
    let expected: BTreeMap<i64, String> = bad.iter().map(|(k, v)| (*k, v.to_string())).collect();
    assert_eq!(seen, expected, "every bad record in the DLQ once, with its reason");
}
