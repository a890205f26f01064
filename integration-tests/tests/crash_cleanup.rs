//! Precise cleanup after a crash: a writer killed while its checkpoint's commit hangs (the
//! PostgreSQL catalog frozen) leaves a journal naming exactly that checkpoint's files. The
//! optimizer leaves a journal alone while its checkpoint could still commit; the restarted
//! writer, once it has moved those partitions on, deletes exactly the journal's files — and
//! every data file left under the table is one the table references. No listing of the table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use icefall_integration_tests::optimizer;
use icefall_integration_tests::produce::TestProducer;
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
    let journal: Journal =
        serde_json::from_slice(&std::fs::read(&journal_path).expect("read journal")).expect("parse journal");
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
    for file in &data_files {
        assert!(referenced.contains(file), "{} is on disk but not in the table", file.display());
    }
    let pairs = tables::partition_offsets(&catalog, &s.table).await;
    tables::assert_offsets_exactly_once(&pairs, &landed);
}
