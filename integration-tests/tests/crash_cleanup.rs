//! Crashes at chosen moments: precise cleanup and exact counts after each.
//!
//! A writer killed while its checkpoint's commit hangs (the PostgreSQL catalog frozen) leaves a
//! journal naming exactly that checkpoint's files. The optimizer leaves a journal alone while
//! its checkpoint could still commit; the restarted writer, once it has moved those partitions
//! on, deletes exactly the journal's files — and every data file left under the table is one
//! the table references, or one the killed process was writing into its next checkpoint while
//! the commit hung (no journal covers a checkpoint before it closes: like any file of a crash
//! mid-interval, `remove-orphans` ages those out). No listing of the table.
//!
//! Then every step of a commit, crashed at deterministically by a test build's fault hook
//! (`icefall_table::fault`), and the mutation check that the count catches a missing safeguard.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use icefall_integration_tests::optimizer;
use icefall_integration_tests::produce::{BackgroundProducer, TestProducer};
use icefall_integration_tests::scenario::{PARTITIONS, Scenario};
use icefall_integration_tests::tables;
use icefall_integration_tests::writer::WriterProcess;
use icefall_table::catalog::parse_ident;
use icefall_table::journal::Journal;

const WAIT: Duration = Duration::from_secs(120);

/// The table's journal directory on disk.
async fn journal_dir(s: &Scenario) -> PathBuf {
    let loaded = s.catalog().await.load(&parse_ident(&s.table).expect("ident")).await.expect("load");
    let location = icefall_table::storage::local_path(loaded.metadata.location()).expect("a local table");
    PathBuf::from(location).join(icefall_table::journal::DIR)
}

fn journals_in(dir: &PathBuf) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect()
        })
        .unwrap_or_default()
}

fn local(path: &str) -> PathBuf {
    PathBuf::from(icefall_table::storage::local_path(path).unwrap_or_else(|| path.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_checkpoint_leaves_a_journal_whose_files_the_restart_deletes() {
    let s = Scenario::on_postgres("journal", "500ms");
    let postgres = s.postgres.as_ref().expect("a PostgreSQL scenario");
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let mut landed = BTreeMap::new();
    producer.send_events(0, 2_000, PARTITIONS, &mut landed);
    let writer = WriterProcess::start(&s.writer_config, "writer-1");
    let catalog = s.catalog().await;
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, WAIT).await;
    let dir = journal_dir(&s).await;
    assert!(journals_in(&dir).is_empty(), "committed checkpoints leave no journal");

    // Freeze the catalog while the writer is idle: the next checkpoint writes its files and
    // its journal, then its commit hangs. Kill the writer there.
    tokio::time::sleep(Duration::from_secs(1)).await;
    postgres.pause();
    producer.send_events(2_000, 4_000, PARTITIONS, &mut landed);
    let deadline = Instant::now() + Duration::from_secs(60);
    let journal_path = loop {
        if let Some(path) = journals_in(&dir).into_iter().next() {
            break path;
        }
        assert!(Instant::now() < deadline, "no journal appeared while the commit hung");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Let the journal's write finish before reading it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    writer.kill9();
    postgres.resume();
    let journal = read_journal(&journal_path);
    assert!(!journal.files.is_empty());
    for file in &journal.files {
        assert!(local(file).exists(), "{file} was written before the journal");
    }

    // The optimizer must not touch it: the checkpoint could still commit as far as it knows.
    let config = optimizer::config(&s.dir, s.catalog_uri().as_deref());
    let report = optimizer::run(&config, &s.table, &["remove-orphans", "--journals"]);
    assert_eq!(report[0]["files_deleted"], 0, "{report:?}");
    assert!(format!("{report:?}").contains("1 pending"), "{report:?}");
    assert!(journal_path.exists());

    // The restart re-reads those records, commits them, and then settles the journal.
    let writer = WriterProcess::start(&s.writer_config, "writer-2");
    let catalog = s.catalog().await;
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, WAIT).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while journal_path.exists() {
        assert!(Instant::now() < deadline, "the restarted writer did not settle the journal");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(writer.stop(Duration::from_secs(60)).success());

    let loaded = catalog.load(&parse_ident(&s.table).expect("ident")).await.expect("load");
    let referenced: BTreeSet<PathBuf> =
        catalog.reachable_from(&loaded).await.expect("reachable").content_files.iter().map(|p| local(p)).collect();
    for file in &journal.files {
        assert!(!referenced.contains(&local(file)), "{file} was never committed");
        assert!(!local(file).exists(), "{file} (named by the journal) was deleted");
    }
    let data_files: Vec<PathBuf> = tables::files_on_disk(&s.dir, &s.table)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    assert!(!data_files.is_empty());
    let meanwhile = written_meanwhile(&journal);
    for file in &data_files {
        let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        assert!(
            referenced.contains(file) || name.starts_with(&meanwhile),
            "{} is on disk but not in the table",
            file.display()
        );
    }
    let pairs = tables::partition_offsets(&catalog, &s.table).await;
    tables::assert_offsets_exactly_once(&pairs, &landed);
}

/// The name prefix of files the crashed process was writing into the checkpoint after the
/// journal's while that one's commit was in flight. No journal names them yet (a journal covers
/// a checkpoint from its close on), so like any file of a checkpoint still being written at a
/// crash they are orphans for `remove-orphans`.
fn written_meanwhile(journal: &Journal) -> String {
    format!("{}-{:06}-", journal.instance, journal.checkpoint + 1)
}

fn read_journal(path: &std::path::Path) -> Journal {
    serde_json::from_slice(&std::fs::read(path).expect("read journal")).expect("parse journal")
}

/// Unreferenced data files other than those written meanwhile behind `journals` (which
/// `remove-orphans` then removes, as it would after any crash mid-interval).
async fn uncovered_files(s: &Scenario, journals: &[Journal]) -> Vec<PathBuf> {
    let prefixes: Vec<String> = journals.iter().map(written_meanwhile).collect();
    let (meanwhile, uncovered): (Vec<PathBuf>, Vec<PathBuf>) =
        unreferenced_data_files(s).await.into_iter().partition(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            prefixes.iter().any(|prefix| name.starts_with(prefix))
        });
    if !meanwhile.is_empty() {
        let config = optimizer::config(&s.dir, s.catalog_uri().as_deref());
        optimizer::run(&config, &s.table, &["remove-orphans", "--older-than", "0s", "--force"]);
        assert!(meanwhile.iter().all(|p| !p.exists()), "remove-orphans removed what was written meanwhile");
    }
    uncovered
}

/// Starts a writer that crashes (aborts, like `kill -9`) at `point`; waits for the crash.
fn crash_at(s: &Scenario, point: &str, disable: &str) -> PathBuf {
    let env = [("ICEFALL_TEST_CRASH_AT", point), ("ICEFALL_TEST_DISABLE", disable)];
    let mut writer = WriterProcess::start_with_env(&s.writer_config, &format!("crash-{point}"), &env);
    let status = writer.wait_exit(Duration::from_secs(120));
    assert!(!status.success(), "the writer crashed at {point}: {status}");
    let log = std::fs::read_to_string(&writer.log).expect("log");
    assert!(log.contains(&format!("crashing at {point}")), "crashed where asked; see {}", writer.log.display());
    writer.log.clone()
}

/// Restarts the writer until it has landed everything produced, stops it, and counts.
async fn recover(s: &Scenario, landed: &BTreeMap<i32, i64>, disable: &str) {
    let log = format!("recover-{}", icefall_integration_tests::unique("run"));
    let writer = WriterProcess::start_with_env(&s.writer_config, &log, &[("ICEFALL_TEST_DISABLE", disable)]);
    // Started: journals whose partitions moved on are settled by now.
    writer.wait_for_log("pipeline started", WAIT);
    let catalog = s.catalog().await;
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, landed, WAIT).await;
    assert!(writer.stop(Duration::from_secs(60)).success());
    tables::assert_landed_exactly_once(&catalog, &s.table, landed).await;
}

/// Data files on disk that no snapshot of the table references.
async fn unreferenced_data_files(s: &Scenario) -> Vec<PathBuf> {
    let catalog = s.catalog().await;
    let loaded = catalog.load(&parse_ident(&s.table).expect("ident")).await.expect("load");
    let referenced: BTreeSet<PathBuf> =
        catalog.reachable_from(&loaded).await.expect("reachable").content_files.iter().map(|p| local(p)).collect();
    for file in &referenced {
        assert!(file.exists(), "{} is referenced by a snapshot but missing", file.display());
    }
    let unreferenced: Vec<PathBuf> = tables::files_on_disk(&s.dir, &s.table)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "parquet") && !referenced.contains(p))
        .collect();
    // What the writers said about them, should a test fail.
    for file in &unreferenced {
        let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        eprintln!("unreferenced: {}", file.display());
        for log in std::fs::read_dir(&s.dir)
            .expect("dir")
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        {
            let text = std::fs::read_to_string(log.path()).unwrap_or_default();
            let prefix = name.split('-').take(2).collect::<Vec<_>>().join("-");
            for line in text.lines().filter(|l| l.contains(&prefix) || l.contains("ERROR") || l.contains("WARN")) {
                eprintln!("  {}: {line}", log.path().display());
            }
        }
    }
    unreferenced
}

/// Deterministic crash points (a test build's `ICEFALL_TEST_CRASH_AT`), each followed by a
/// restart and an exact count of every (partition, offset) in the table or its dead-letter
/// table, with 1% malformed records so every checkpoint has dead letters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_at_every_commit_step_lose_and_duplicate_nothing() {
    let s = Scenario::new("crash-points", "500ms");
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let mut landed = BTreeMap::new();
    let mut next = 0;
    let mut produce = |landed: &mut BTreeMap<i32, i64>| {
        producer.send_events_with_malformed(next, next + 3_000, PARTITIONS, landed);
        next += 3_000;
    };

    // Between the dead-letter commit and the main commit: the re-read must not add the dead
    // letters again, and the checkpoint's data files (journaled) are deleted.
    produce(&mut landed);
    crash_at(&s, "after-dead-letter-commit", "");
    let dir = journal_dir(&s).await;
    assert_eq!(journals_in(&dir).len(), 1, "the crash left the checkpoint's journal");
    let journals: Vec<Journal> = journals_in(&dir).iter().map(|p| read_journal(p)).collect();
    recover(&s, &landed, "").await;
    assert_eq!(uncovered_files(&s, &journals).await, Vec::<PathBuf>::new(), "the journal's files were deleted");

    // After the commit, before the journal is removed: the journal names committed files; the
    // restart settles it without deleting them.
    produce(&mut landed);
    crash_at(&s, "after-commit-before-journal-removed", "");
    let left = journals_in(&dir);
    assert_eq!(left.len(), 1, "the crash left the committed checkpoint's journal");
    let journals: Vec<Journal> = left.iter().map(|p| read_journal(p)).collect();
    recover(&s, &landed, "").await;
    assert!(journals_in(&dir).is_empty(), "the restart settled it");
    assert_eq!(uncovered_files(&s, &journals).await, Vec::<PathBuf>::new(), "committed files were kept");

    // A torn journal write (storage without atomic writes): nobody can tell which files it
    // meant, so it is left alone and its files are orphans that remove-orphans ages out.
    produce(&mut landed);
    crash_at(&s, "during-journal-write", "");
    recover(&s, &landed, "").await;
    let torn = journals_in(&dir);
    assert_eq!(torn.len(), 1, "the torn journal is left for remove-orphans");
    assert!(!unreferenced_data_files(&s).await.is_empty(), "the torn journal's files are orphans");
    let config = optimizer::config(&s.dir, s.catalog_uri().as_deref());
    let report = optimizer::run(&config, &s.table, &["remove-orphans", "--older-than", "0s", "--force"]);
    assert!(format!("{report:?}").contains("1 unreadable"), "{report:?}");
    assert!(journals_in(&dir).is_empty(), "remove-orphans deleted the torn journal once old enough");
    assert_eq!(unreferenced_data_files(&s).await, Vec::<PathBuf>::new(), "and the orphans");

    // During a rebase: two writers race on the table; the first commit of the crashing one to
    // lose a race stages its rebased attempt and dies before publishing it.
    let racing = BackgroundProducer::start(&s.broker.bootstrap(), &s.topic, next, PARTITIONS, 100);
    let peer = WriterProcess::start(&s.writer_config, "peer");
    crash_at(&s, "during-rebase", "");
    let journals: Vec<Journal> = journals_in(&dir).iter().map(|p| read_journal(p)).collect();
    let (_, raced) = racing.finish();
    assert!(peer.stop(Duration::from_secs(60)).success());
    for (partition, n) in raced {
        *landed.entry(partition).or_default() += n;
    }
    recover(&s, &landed, "").await;
    assert_eq!(uncovered_files(&s, &journals).await, Vec::<PathBuf>::new(), "the journal's files were deleted");
    assert!(journals_in(&dir).is_empty());
}

/// The mutation check of the journal and of the dead-letter ordering: with both safeguards
/// off (a test build's switch), the same crash between the dead-letter commit and the main
/// commit leaves dead letters twice and data files no snapshot references.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_journal_and_the_dead_letter_floor_the_same_crash_is_caught() {
    let s = Scenario::new("crash-unsafe", "500ms");
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let mut landed = BTreeMap::new();
    producer.send_events_with_malformed(0, 3_000, PARTITIONS, &mut landed);
    let disabled = "journal,dead-letter-floor";
    crash_at(&s, "after-dead-letter-commit", disabled);
    let writer = WriterProcess::start_with_env(&s.writer_config, "recover", &[("ICEFALL_TEST_DISABLE", disabled)]);
    let catalog = s.catalog().await;
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, WAIT).await;
    assert!(writer.stop(Duration::from_secs(60)).success());
    let letters = tables::dead_letter_offsets(&catalog, &s.table).await;
    let distinct: BTreeSet<&(i32, i64)> = letters.iter().collect();
    assert!(
        letters.len() > distinct.len(),
        "dead letters twice without the floor: {} for {}",
        letters.len(),
        distinct.len()
    );
    assert!(!unreferenced_data_files(&s).await.is_empty(), "uncommitted files stay without the journal");
}

/// Two writers on one table, cleanup forced at its worst moment (a test build's hooks): A
/// settles journals after every commit and pauses 1 s between settling's two steps (listing
/// the journals, loading the table); B keeps each journal live for 150 ms before committing
/// it. So A keeps judging B's live journals by a table view B moves on from. Returns the
/// files some snapshot references that are missing on disk (every snapshot, not only the
/// current one).
async fn peer_race(s: &Scenario, disable: &str) -> (Vec<PathBuf>, BTreeMap<i32, i64>) {
    let producer = BackgroundProducer::start(&s.broker.bootstrap(), &s.topic, 0, PARTITIONS, 100);
    let env_a = [("ICEFALL_TEST_SETTLE_PAUSE_MS", "1000"), ("ICEFALL_TEST_DISABLE", disable)];
    let a = WriterProcess::start_with_env(&s.writer_config, "peer-a", &env_a);
    let b = WriterProcess::start_with_env(&s.writer_config, "peer-b", &[("ICEFALL_TEST_COMMIT_PAUSE_MS", "150")]);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let (_, landed) = producer.finish();
    let catalog = s.catalog().await;
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, WAIT).await;
    let log_a = a.log.clone();
    for writer in [a, b] {
        assert!(writer.stop(Duration::from_secs(60)).success());
    }
    let settles = std::fs::read_to_string(log_a).unwrap_or_default().matches("settling paused").count();
    assert!(settles >= 5, "A settled at its worst moment {settles} times");
    let loaded = catalog.load(&parse_ident(&s.table).expect("ident")).await.expect("load");
    assert!(loaded.metadata.snapshots().count() > 20, "both writers committed many times");
    let referenced = catalog.reachable_from(&loaded).await.expect("reachable").content_files;
    (referenced.iter().map(|p| local(p)).filter(|p| !p.exists()).collect(), landed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_settling_each_others_journals_never_delete_a_committed_file() {
    let s = Scenario::new("peer-race", "200ms");
    let (missing, landed) = peer_race(&s, "").await;
    assert_eq!(missing, Vec::<PathBuf>::new(), "every file a snapshot references exists");
    let catalog = s.catalog().await;
    tables::assert_offsets_exactly_once(&tables::partition_offsets(&catalog, &s.table).await, &landed);
}

/// The mutation check: settling by a table view loaded before the journals were listed (the
/// old order) deletes files a peer then commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settling_by_an_older_table_view_deletes_a_peers_files() {
    let s = Scenario::new("peer-race-unsafe", "200ms");
    let (missing, _) = peer_race(&s, "settle-order").await;
    assert!(!missing.is_empty(), "the old order must delete files a snapshot then references");
}
