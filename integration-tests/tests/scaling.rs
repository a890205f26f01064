//! Load against a real broker: a step load (low → high → low) makes the adaptive writer pool
//! grow and shrink again, a backlog far larger than the memory budget is ingested within it,
//! checkpoints keep their interval on one core under full load, a slow commit does not stop
//! the writers, and every record lands exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use icefall_integration_tests::process;
use icefall_integration_tests::produce::TestProducer;
use icefall_integration_tests::scenario::{PARTITIONS, Scenario};
use icefall_integration_tests::tables::{self, assert_exactly_once, assert_offsets_exactly_once};
use icefall_integration_tests::writer::{WriterProcess, writer_binary};

/// Sends `rounds` × 10 records, one round every 200 ms (a trickle).
fn trickle(producer: &TestProducer, next: &mut i64, rounds: usize, landed: &mut BTreeMap<i32, i64>) {
    for _ in 0..rounds {
        producer.send_events(*next, *next + 10, PARTITIONS, landed);
        *next += 10;
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_pool_follows_a_step_load_and_every_record_lands_once() {
    let s = Scenario::new("step", "1s");
    let config = std::fs::read_to_string(&s.writer_config).expect("config");
    assert!(config.contains("writers = 2"));
    std::fs::write(&s.writer_config, config.replace("writers = 2", "min_writers = 1\nmax_writers = 3"))
        .expect("config");
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let catalog = tables::catalog(&s.dir).await;
    let mut landed = BTreeMap::new();
    let mut next = 0i64;

    let writer = WriterProcess::start(&s.writer_config, "writer");
    trickle(&producer, &mut next, 20, &mut landed); // low
    producer.send_events(next, next + 150_000, PARTITIONS, &mut landed); // high: a burst
    next += 150_000;
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, Duration::from_secs(300)).await;
    trickle(&producer, &mut next, 75, &mut landed); // low again
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, Duration::from_secs(60)).await;
    let log = writer.log.clone();
    assert!(writer.stop(Duration::from_secs(60)).success());

    let ids = tables::long_column(&catalog, &s.table, "id").await;
    assert_exactly_once(&ids, next);
    assert_offsets_exactly_once(&tables::partition_offsets(&catalog, &s.table).await, &landed);

    let counts = tables::writer_counts(&catalog, &s.table).await;
    let log = std::fs::read_to_string(log).expect("log");
    println!("writers per checkpoint: {counts:?}");
    let peak = counts.iter().copied().max().unwrap_or(0);
    assert!(peak > 1, "the pool grew under the burst; writers per checkpoint: {counts:?}");
    assert!(log.contains("writer pool grown") && log.contains("writer pool shrunk"), "pool changes are logged");
    let tail = &counts[counts.len().saturating_sub(3)..];
    assert!(
        tail.iter().all(|w| *w == 1),
        "back to one writer (as few files as a single writer) at low load; writers per checkpoint: {counts:?}"
    );
}

/// Ingests a backlog of `n` records with `max_buffered_bytes = budget`; returns the writer's
/// peak RSS.
async fn ingest_backlog(name: &str, n: i64, budget: Option<u64>) -> u64 {
    let s = Scenario::new(name, "2s");
    if let Some(budget) = budget {
        let config = std::fs::read_to_string(&s.writer_config).expect("config");
        let config = config.replace("writers = 2", &format!("writers = 2\nmax_buffered_bytes = {budget}"));
        std::fs::write(&s.writer_config, config).expect("config");
    }
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let mut landed = BTreeMap::new();
    producer.send_events(0, n, PARTITIONS, &mut landed);
    let catalog = tables::catalog(&s.dir).await;
    let writer = WriterProcess::start(&s.writer_config, "writer");
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, Duration::from_secs(300)).await;
    let peak = process::peak_rss(writer.pid()).expect("the writer's VmHWM");
    // The process re-executed itself with glibc's mmap threshold pinned (writer/src/malloc.rs):
    // the same pid now runs with it in its environment.
    let environ = std::fs::read(format!("/proc/{}/environ", writer.pid())).expect("the writer's environment");
    assert!(
        environ.split(|b| *b == 0).any(|v| v == b"MALLOC_MMAP_THRESHOLD_=1048576"),
        "the writer runs with MALLOC_MMAP_THRESHOLD_ pinned"
    );
    assert!(writer.stop(Duration::from_secs(60)).success());
    assert_exactly_once(&tables::long_column(&catalog, &s.table, "id").await, n);
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_larger_than_the_memory_budget_is_ingested_within_it() {
    const MIB: u64 = 1024 * 1024;
    // ~300 B per record: a 60 MB backlog against an 8 MiB budget.
    let budget = 8 * MIB;
    let peak = ingest_backlog("backlog", 200_000, Some(budget)).await;
    let unbounded = ingest_backlog("backlog_unbounded", 200_000, Some(1024 * MIB)).await;
    println!("peak RSS: {} MiB with an 8 MiB budget, {} MiB with 1 GiB", peak / MIB, unbounded / MIB);
    assert!(peak + 20 * MIB < unbounded, "the budget is what bounds memory");
    // The constant: the process itself (binary, runtime, librdkafka, catalog pool) and the
    // writers' open Parquet files, independent of the backlog.
    assert!(peak < budget + 160 * MIB, "peak RSS {} MiB is above the budget + 160 MiB", peak / MIB);
}

/// On one core the writers' long CPU-bound turns must not starve the checkpoint timer: a
/// backlog lands in several checkpoints while it drains, not in one when the writer goes idle
/// (which is what happened before the runtime polled its timers after every task turn).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_one_core_checkpoints_keep_their_interval_through_a_backlog() {
    const N: i64 = 200_000;
    let s = Scenario::new("one_core", "300ms");
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let mut landed = BTreeMap::new();
    producer.send_events(0, N, PARTITIONS, &mut landed);
    let catalog = tables::catalog(&s.dir).await;
    let writer = WriterProcess::start_pinned(&writer_binary(), "0", &s.writer_config, "writer");
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, Duration::from_secs(300)).await;
    assert!(writer.stop(Duration::from_secs(60)).success());
    assert_exactly_once(&tables::long_column(&catalog, &s.table, "id").await, N);
    let loaded = catalog.load(&icefall_table::catalog::parse_ident(&s.table).expect("ident")).await.expect("table");
    let mut snapshots: Vec<_> = loaded.metadata.snapshots().collect();
    snapshots.sort_by_key(|s| s.timestamp_ms());
    let added: Vec<u64> = snapshots
        .iter()
        .filter_map(|s| s.summary().additional_properties.get("added-records")?.parse().ok())
        .filter(|n| *n > 0)
        .collect();
    println!("records per snapshot: {added:?}");
    // Each checkpoint waits for what the memory budget let in (~78k records here) to be
    // written, so 200k records need at least three; a starved timer gives one.
    assert!(added.len() >= 3, "the backlog drained through several checkpoints; records per snapshot: {added:?}");
}

/// A steady stream (1,000 records a second, until five checkpoints have committed) through a
/// writer whose every commit takes 1 s (a slow remote catalog, here a test build's pause): how long the pipeline stopped taking records per checkpoint, how
/// many checkpoints committed, and every (partition, offset) exactly once.
async fn stall_per_commit(name: &str, env: &[(&str, &str)]) -> (f64, f64) {
    let s = Scenario::new(name, "2s");
    let port = icefall_integration_tests::broker::free_port();
    let text = std::fs::read_to_string(&s.writer_config).expect("config");
    std::fs::write(&s.writer_config, format!("{text}\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n")).expect("config");
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let catalog = tables::catalog(&s.dir).await;
    let mut landed = BTreeMap::new();
    let mut env = env.to_vec();
    env.push(("ICEFALL_TEST_COMMIT_PAUSE_MS", "1000"));
    let writer = WriterProcess::start_with_env(&s.writer_config, "writer", &env);
    let committed = |port| {
        let (_, text) = icefall_integration_tests::http::get(port, "/metrics")?;
        icefall_integration_tests::http::metric_sum(&text, "icefall_commits_total", &["outcome=\"committed\""])
    };
    // The stream goes on until the writer has committed several checkpoints under it: on a
    // loaded machine a slow start would otherwise fold a fixed-length stream into two or three.
    let mut next = 0;
    for _ in 0..120 {
        producer.send_events(next, next + 500, PARTITIONS, &mut landed);
        next += 500;
        std::thread::sleep(Duration::from_millis(500));
        if committed(port).is_some_and(|n| n >= 5.0) {
            break;
        }
    }
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, Duration::from_secs(120)).await;
    let metrics = icefall_integration_tests::http::wait_for(port, "/metrics", Duration::from_secs(10), |_, _| true);
    let metric = |name: &str, labels: &[&str]| icefall_integration_tests::http::metric_sum(&metrics, name, labels);
    let stall = metric("icefall_checkpoint_stall_seconds_total", &[]).expect("the stall metric");
    let commits = metric("icefall_commits_total", &["outcome=\"committed\""]).expect("commits");
    assert!(writer.stop(Duration::from_secs(60)).success());
    assert_offsets_exactly_once(&tables::partition_offsets(&catalog, &s.table).await, &landed);
    println!("{name}: {commits} commits of {next} records, pipeline stalled {stall:.2} s");
    assert!(commits >= 5.0, "a stream through 2 s checkpoints until five committed: {commits} commits");
    (stall / commits, commits)
}

/// Commits run beside the writers: while a checkpoint's 1 s commit is in flight the pipeline
/// goes on taking records, so it stops only to close files. Without it (a test build's switch)
/// the same stream stops the pipeline for every commit, and the figure shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writers_go_on_while_a_checkpoint_commits() {
    let (pipelined, _) = stall_per_commit("pipelined", &[]).await;
    assert!(pipelined < 0.5, "stalled {pipelined:.2} s per 1 s commit: commits must not stop the pipeline");
    let (waiting, _) = stall_per_commit("waiting", &[("ICEFALL_TEST_DISABLE", "pipelined-commit")]).await;
    assert!(waiting >= 1.0, "the switch off: each commit stops the pipeline ({waiting:.2} s per commit)");
}
