//! Exactly-once against a real broker and catalog: end to end, crashes, zombies, bad input.
//! Every test counts every record: ids are unique per produced record, so "each id exactly
//! once" is "each (partition, offset) exactly once".

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use icefall_integration_tests::Lcg;
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
    for batch in
        tables::scan(&catalog, &s.table, &["id", "kafka_topic", "kafka_key", "kafka_timestamp", "ingested_at"]).await
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
    }
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
    let report = tables::pyiceberg_report(&s.dir, &s.table);
    assert_eq!(report["rows"], n);
    assert_eq!(report["distinct_ids"], n);
    let snapshots = report["snapshots"].as_array().expect("snapshots");
    assert!(snapshots.iter().all(|s| s["icefall"]["icefall.commit-id"].is_string()));
    // No dead letters for clean input: the DLQ table exists and is empty.
    let dlq = tables::long_column(&catalog, &format!("{}_dlq", s.table), "offset").await;
    assert!(dlq.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_loses_and_duplicates_nothing() {
    let (s, config) = setup("crash", "1s");
    let stop_producing = Arc::new(AtomicBool::new(false));
    let produced = Arc::new(AtomicI64::new(0));
    let landed = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    // The producer keeps going for the whole kill loop, so every writer has data to commit.
    let producer_thread = {
        let (bootstrap, topic) = (s.broker.bootstrap(), s.topic.clone());
        let (stop, produced, landed) = (stop_producing.clone(), produced.clone(), landed.clone());
        std::thread::spawn(move || {
            let producer = TestProducer::new(&bootstrap, &topic);
            let mut local = BTreeMap::new();
            let mut id = 0;
            while !stop.load(Ordering::SeqCst) {
                produce_range(&producer, id, id + 500, &mut local);
                id += 500;
                produced.store(id, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(200));
            }
            *landed.lock().expect("lock") = local;
        })
    };

    let catalog = tables::catalog(&s.dir).await;
    let mut rng = Lcg::new(7);
    let started = Instant::now();
    let kills = 12;
    for round in 0..kills {
        let committed_before = tables::writer_instances(&catalog, &s.table).await.len();
        let mut writer = WriterProcess::start(&config, "writer");
        // Every other round: kill at a random moment after this instance's first commit, so the
        // kill lands between or inside checkpoints (one per second). Otherwise: anywhere,
        // including start-up and partition assignment.
        if round % 2 == 0 {
            let deadline = Instant::now() + Duration::from_secs(60);
            while tables::writer_instances(&catalog, &s.table).await.len() <= committed_before {
                assert!(Instant::now() < deadline, "the writer never committed; see {}", writer.log.display());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_millis(rng.range(0, 2_500))).await;
        } else {
            tokio::time::sleep(Duration::from_millis(rng.range(200, 5_000))).await;
        }
        assert!(writer.is_running(), "the writer died by itself; see {}", writer.log.display());
        writer.kill9();
        assert!(started.elapsed() < Duration::from_secs(600), "crash loop took too long");
    }
    stop_producing.store(true, Ordering::SeqCst);
    producer_thread.join().expect("producer");
    let landed = landed.lock().expect("lock").clone();
    let total = produced.load(Ordering::SeqCst);

    let writer = WriterProcess::start(&config, "writer");
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, Duration::from_secs(240)).await;
    assert!(writer.stop(Duration::from_secs(60)).success());

    let ids = tables::long_column(&catalog, &s.table, "id").await;
    assert_exactly_once(&ids, total);
    tables::assert_offsets_exactly_once(&tables::partition_offsets(&catalog, &s.table).await, &landed);
    assert_eq!(tables::offsets(&catalog, &s.table).await.get(&s.topic), Some(&landed));
    let instances = tables::writer_instances(&catalog, &s.table).await;
    assert!(instances.len() > kills / 2, "only {} writer instances committed anything", instances.len());
    eprintln!("{kills} kills; {} committing instances; {} rows exactly once", instances.len(), ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_with_one_config_never_duplicate() {
    let (s, config) = setup("zombie", "1s");
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let mut landed = BTreeMap::new();
    produce_range(&producer, 0, 10_000, &mut landed);

    let first = WriterProcess::start(&config, "writer-a");
    let second = WriterProcess::start(&config, "writer-b");
    // More data while both run, so both commit and rebalance under load.
    let n = 40_000;
    for chunk in (10_000..n).step_by(5_000) {
        produce_range(&producer, chunk, chunk + 5_000, &mut landed);
        std::thread::sleep(Duration::from_millis(700));
    }
    let catalog = tables::catalog(&s.dir).await;
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, Duration::from_secs(240)).await;
    assert!(first.stop(Duration::from_secs(60)).success());
    assert!(second.stop(Duration::from_secs(60)).success());

    let ids = tables::long_column(&catalog, &s.table, "id").await;
    assert_exactly_once(&ids, n);
    tables::assert_offsets_exactly_once(&tables::partition_offsets(&catalog, &s.table).await, &landed);
    assert_eq!(tables::offsets(&catalog, &s.table).await.get(&s.topic), Some(&landed));
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
