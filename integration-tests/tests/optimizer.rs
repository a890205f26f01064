//! icefall-optimizer on tables the writer fills: values survive compaction, compaction races
//! a live writer without losing or duplicating a record, expiry and orphan removal never
//! delete a live file and the writer resumes afterwards, and a crash mid-compaction leaves the
//! table unchanged with debris that orphan removal cleans.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use icefall_integration_tests::engines;
use icefall_integration_tests::optimizer;
use icefall_integration_tests::produce::TestProducer;
use icefall_integration_tests::scenario::{PARTITIONS, Scenario};
use icefall_integration_tests::tables::{self, assert_exactly_once};
use icefall_integration_tests::writer::WriterProcess;

/// Fills the table through the writer with `n` events (checkpoints every 300 ms: small files).
async fn fill(s: &Scenario, n: i64, chunks: i64) -> BTreeMap<i32, i64> {
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let writer = WriterProcess::start(&s.writer_config, "writer");
    let catalog = tables::catalog(&s.dir).await;
    let mut landed = BTreeMap::new();
    let step = n / chunks;
    for i in 0..chunks {
        producer.send_events(i * step, (i + 1) * step, PARTITIONS, &mut landed);
        tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, Duration::from_secs(120)).await;
    }
    assert!(writer.stop(Duration::from_secs(60)).success());
    landed
}

fn pyiceberg_rows(s: &Scenario) -> (u64, u64) {
    let report = engines::pyiceberg_report(&s.dir, &s.table);
    (report["rows"].as_u64().unwrap_or(0), report["distinct_ids"].as_u64().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_every_value_and_cuts_the_file_count() {
    let s = Scenario::new("compact", "300ms");
    let n = 8_000;
    fill(&s, n, 8).await;
    let catalog = tables::catalog(&s.dir).await;
    let before = tables::checksum(&catalog, &s.table).await;
    let files_before = tables::data_file_count(&catalog, &s.table).await;
    let config = optimizer::config(&s.dir, None);

    let dry = optimizer::run(&config, &s.table, &["compact", "--dry-run"]);
    assert!(dry[0]["groups"].as_u64().unwrap_or(0) > 0, "{dry:?}");
    assert_eq!(tables::data_file_count(&catalog, &s.table).await, files_before, "a dry run changes nothing");

    let report = optimizer::run(&config, &s.table, &["compact"]);
    assert_eq!(report[0]["groups_failed"], 0, "{report:?}");
    // Spark's `rewrite_data_files` output names carry the same figures.
    assert_eq!(report[0]["rewritten_data_files_count"], report[0]["files_in"], "{report:?}");
    assert_eq!(report[0]["added_data_files_count"], report[0]["files_out"], "{report:?}");
    assert_eq!(report[0]["failed_data_files_count"], 0, "{report:?}");
    let files_after = tables::data_file_count(&catalog, &s.table).await;
    assert!(files_after < files_before / 2, "{files_before} files → {files_after}");
    assert_eq!(tables::checksum(&catalog, &s.table).await, before, "every value of every row is unchanged");
    assert_eq!(pyiceberg_rows(&s), (n as u64, n as u64));

    // Manifests: one per commit → merged.
    let report = optimizer::run(&config, &s.table, &["rewrite-manifests"]);
    assert_eq!(report[0]["commits"], 1, "{report:?}");
    assert!(report[0]["rewritten_manifests_count"].as_u64().is_some_and(|n| n > 1), "{report:?}");
    assert_eq!(tables::checksum(&catalog, &s.table).await, before);
    assert_eq!(pyiceberg_rows(&s), (n as u64, n as u64));

    // `run` (what cron calls): every step reports, nothing changes in the rows.
    let reports = optimizer::run(&config, &s.table, &["run"]);
    let steps: Vec<&str> = reports.iter().filter_map(|r| r["command"].as_str()).collect();
    assert_eq!(
        steps,
        ["compact", "rewrite-position-deletes", "stats", "rewrite-manifests", "expire-snapshots", "remove-orphans"]
    );
    assert_eq!(tables::checksum(&catalog, &s.table).await, before);
    assert_eq!(pyiceberg_rows(&s), (n as u64, n as u64));
}

/// The writer commits every second while, round after round, three `compact --shard I/3`
/// processes run at once on the table (what three cron entries or a Kubernetes Indexed Job do):
/// every record lands exactly once, each round's shards rewrite disjoint partitions, every
/// shard gets work, and both the writer and the compactions make progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_compaction_beside_a_live_writer_keeps_every_record_exactly_once() {
    let s = Scenario::new("race", "1s");
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let writer = WriterProcess::start(&s.writer_config, "writer");
    let catalog = tables::catalog(&s.dir).await;
    let config = optimizer::config(&s.dir, None);
    let mut landed = BTreeMap::new();
    let mut id = 0;
    let mut compactions = 0;
    let mut worked = [false; 3];
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        producer.send_events(id, id + 1_000, PARTITIONS, &mut landed);
        id += 1_000;
        if tables::writer_instances(&catalog, &s.table).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let shards: Vec<_> = (0..3)
            .map(|i| {
                let (config, table) = (config.clone(), s.table.clone());
                std::thread::spawn(move || optimizer::run(&config, &table, &["compact", "--shard", &format!("{i}/3")]))
            })
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        for (i, shard) in shards.into_iter().enumerate() {
            let report = shard.join().expect("shard");
            compactions += report[0]["commits"].as_u64().unwrap_or(0);
            for partition in report[0]["partitions"].as_array().into_iter().flatten() {
                worked[i] = true;
                assert!(seen.insert(partition.to_string()), "two shards rewrote {partition} in one round");
            }
        }
    }
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, Duration::from_secs(120)).await;
    assert!(writer.stop(Duration::from_secs(60)).success());

    let ids = tables::long_column(&catalog, &s.table, "id").await;
    assert_exactly_once(&ids, id);
    assert!(compactions >= 3, "compaction made progress: {compactions} commits");
    assert_eq!(worked, [true; 3], "every shard had partitions to compact");
    let loaded = catalog.load(&icefall_table::catalog::parse_ident(&s.table).expect("ident")).await.expect("load");
    let writer_commits = loaded
        .metadata
        .snapshots()
        .filter(|s| s.summary().additional_properties.contains_key("icefall.checkpoint"))
        .count();
    assert!(writer_commits >= 10, "the writer made progress: {writer_commits} commits");
    assert_eq!(pyiceberg_rows(&s), (id as u64, id as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggressive_expiry_and_orphan_removal_keep_live_files_and_the_writer_resumes() {
    let s = Scenario::new("expire", "300ms");
    let mut landed = fill(&s, 6_000, 6).await;
    let catalog = tables::catalog(&s.dir).await;
    let config = optimizer::config(&s.dir, None);
    optimizer::run(&config, &s.table, &["compact"]);
    let before = tables::checksum(&catalog, &s.table).await;

    let expired = optimizer::run(&config, &s.table, &["expire-snapshots", "--retain-last", "1", "--older-than", "0s"]);
    assert!(expired[0]["snapshots_expired"].as_u64().unwrap_or(0) > 5, "{expired:?}");
    assert!(expired[0]["files_deleted"].as_u64().unwrap_or(0) > 0, "{expired:?}");
    // Spark's `expire_snapshots` output names: the expired snapshots' manifest lists went.
    assert!(expired[0]["deleted_manifest_lists_count"].as_u64().unwrap_or(0) > 5, "{expired:?}");
    assert_eq!(tables::checksum(&catalog, &s.table).await, before, "no live file was deleted");
    assert_eq!(pyiceberg_rows(&s), (6_000, 6_000));

    // Below an hour without --force: refused.
    let refused = std::process::Command::new(optimizer::optimizer_binary())
        .arg("--config")
        .arg(&config)
        .args(["--table", &s.table, "remove-orphans", "--older-than", "0s"])
        .output()
        .expect("run");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));

    // Debris of a crashed checkpoint: a file nothing references.
    let orphan = s.dir.join("warehouse").join(s.table.replace('.', "/")).join("data/crashed-writer-000001.parquet");
    std::fs::write(&orphan, b"not referenced").expect("write orphan");
    let removed = optimizer::run(&config, &s.table, &["remove-orphans", "--older-than", "0s", "--force"]);
    assert!(removed[0]["files_deleted"].as_u64().unwrap_or(0) >= 1, "{removed:?}");
    assert!(!orphan.exists());
    assert_eq!(tables::checksum(&catalog, &s.table).await, before, "no live file was deleted");
    assert_eq!(pyiceberg_rows(&s), (6_000, 6_000));

    // The writer resumes from the offsets the (compacted, expired) table still holds.
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    producer.send_events(6_000, 9_000, PARTITIONS, &mut landed);
    let writer = WriterProcess::start(&s.writer_config, "writer-2");
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, Duration::from_secs(120)).await;
    assert!(writer.stop(Duration::from_secs(60)).success());
    assert_exactly_once(&tables::long_column(&catalog, &s.table, "id").await, 9_000);
}

/// A compaction whose commit landed but whose reply was lost (a test build's
/// `ICEFALL_TEST_LOSE_COMMIT_REPLY`) must not delete the files it wrote: the table references
/// them. (Deleting a failed rewrite's files unconditionally loses those rows.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_of_unknown_outcome_keeps_the_files_it_may_have_committed() {
    let s = Scenario::new("lostreply", "300ms");
    fill(&s, 4_000, 4).await;
    let catalog = tables::catalog(&s.dir).await;
    let config = optimizer::config(&s.dir, None);
    let before = tables::checksum(&catalog, &s.table).await;
    let report = optimizer::run_failing(
        &config,
        &s.table,
        &["compact", "--max-groups", "1"],
        &[("ICEFALL_TEST_LOSE_COMMIT_REPLY", "1")],
    );
    assert_eq!(report[0]["groups_failed"], 1, "the lost reply is reported: {report:?}");
    let loaded = catalog.load(&icefall_table::catalog::parse_ident(&s.table).expect("ident")).await.expect("load");
    assert!(
        loaded.metadata.snapshots().any(|s| s
            .summary()
            .additional_properties
            .get("icefall.operation")
            .map(String::as_str)
            == Some("compact")),
        "the compaction landed"
    );
    for file in catalog.reachable_from(&loaded).await.expect("reachable").content_files {
        let path = file.trim_start_matches("file://");
        assert!(std::path::Path::new(path).exists(), "{path} is referenced but was deleted");
    }
    assert_eq!(tables::checksum(&catalog, &s.table).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_compaction_leaves_rows_unchanged_and_orphan_removal_cleans_the_debris() {
    let s = Scenario::new("crashcompact", "300ms");
    fill(&s, 8_000, 8).await;
    let catalog = tables::catalog(&s.dir).await;
    let config = optimizer::config(&s.dir, None);
    let before = tables::checksum(&catalog, &s.table).await;
    let mut killed_mid_way = 0;
    for delay in [40u64, 80, 120, 160, 200, 260] {
        let mut child = optimizer::spawn(&config, &s.table, &["compact", "--max-groups", "4"]);
        std::thread::sleep(Duration::from_millis(delay));
        if child.try_wait().expect("wait").is_none() {
            killed_mid_way += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(tables::checksum(&catalog, &s.table).await, before, "rows unchanged after a kill at {delay} ms");
    }
    assert!(killed_mid_way > 0, "no kill landed while compaction ran");
    // Whatever the kills left behind (files of groups in flight) goes with remove-orphans.
    optimizer::run(&config, &s.table, &["remove-orphans", "--older-than", "0s", "--force"]);
    let loaded = catalog.load(&icefall_table::catalog::parse_ident(&s.table).expect("ident")).await.expect("load");
    let live: std::collections::BTreeSet<String> = catalog
        .reachable_from(&loaded)
        .await
        .expect("reachable")
        .all()
        .map(|p| p.trim_start_matches("file://").to_string())
        .collect();
    for file in tables::files_on_disk(&s.dir, &s.table) {
        let path = file.to_string_lossy().to_string();
        assert!(live.contains(&path), "{path} is neither referenced nor removed");
    }
    assert_eq!(tables::checksum(&catalog, &s.table).await, before);
    assert_eq!(pyiceberg_rows(&s), (8_000, 8_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equality_and_position_deleted_rows_stay_deleted_after_compaction() {
    let s = Scenario::new("deletes", "300ms");
    let n = 4_000i64;
    fill(&s, n, 4).await;
    let catalog = tables::catalog(&s.dir).await;
    let doomed: std::collections::BTreeSet<i64> = (0..n).filter(|id| id % 10 == 3).collect();
    let delete_files = icefall_integration_tests::deletes::delete_ids(&catalog, &s.table, &doomed).await;
    assert!(delete_files > 1, "one equality-delete file per partition");
    let expected: Vec<i64> = (0..n).filter(|id| !doomed.contains(id)).collect();
    let mut ids = tables::long_column(&catalog, &s.table, "id").await;
    ids.sort_unstable();
    assert_eq!(ids, expected, "the deletes apply before compaction");

    // Position deletes too: the first two rows of every data file.
    let first_rows = icefall_integration_tests::deletes::delete_first_rows(&catalog, &s.table, 2).await;
    assert!(first_rows.len() > 2);
    let expected: Vec<i64> = expected.into_iter().filter(|id| !first_rows.contains(id)).collect();
    let mut ids = tables::long_column(&catalog, &s.table, "id").await;
    ids.sort_unstable();
    assert_eq!(ids, expected, "position deletes apply before compaction");

    let config = optimizer::config(&s.dir, None);
    let report = optimizer::run(&config, &s.table, &["compact"]);
    assert_eq!(report[0]["groups_failed"], 0, "{report:?}");
    let mut ids = tables::long_column(&catalog, &s.table, "id").await;
    ids.sort_unstable();
    assert_eq!(ids, expected, "no deleted row came back");
    let loaded = catalog.load(&icefall_table::catalog::parse_ident(&s.table).expect("ident")).await.expect("load");
    let summary = &loaded.metadata.current_snapshot().expect("snapshot").summary().additional_properties;
    assert_eq!(summary.get("total-delete-files").map(String::as_str), Some("0"), "dangling deletes were dropped");
    // With no delete file left, PyIceberg reads the same rows.
    assert_eq!(pyiceberg_rows(&s), (expected.len() as u64, expected.len() as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_state_survives_an_engine_expiry_that_knows_nothing_of_icefall() {
    use icefall_table::offsets::{STATE_TAG, committed_offsets};
    use icefall_table::state::refs;
    use icefall_table::{Change, PendingCommit, RetryPolicy};
    let s = Scenario::new("tagged", "300ms");
    let mut landed = fill(&s, 3_000, 3).await;
    let catalog = tables::catalog(&s.dir).await;
    let ident = icefall_table::catalog::parse_ident(&s.table).expect("ident");

    // Another engine commits on top (no icefall.* keys), then expires like Spark's
    // `expire_snapshots(retain_last => 1)`: everything but the current snapshot and refs.
    let table = catalog.load(&ident).await.expect("load");
    let foreign = PendingCommit::append(Vec::new(), 0, Default::default());
    let table = catalog
        .commit(table, &foreign, |_| Ok(Default::default()), &RetryPolicy::default())
        .await
        .expect("foreign")
        .table;
    let keep: std::collections::BTreeSet<i64> =
        refs(&table.metadata).into_values().chain(table.metadata.current_snapshot_id()).collect();
    assert!(refs(&table.metadata).contains_key(STATE_TAG), "writer commits move the state tag");
    let doomed = table.metadata.snapshots().map(|s| s.snapshot_id()).filter(|id| !keep.contains(id)).collect();
    let expire =
        PendingCommit::new(Change::Expire { snapshot_ids: doomed, refs: Default::default() }, Default::default());
    let table = catalog
        .commit(table, &expire, |_| Ok(Default::default()), &RetryPolicy::default())
        .await
        .expect("expire")
        .table;
    assert_eq!(table.metadata.snapshots().count(), 2, "the foreign snapshot and the tagged writer snapshot");
    assert_eq!(committed_offsets(&table.metadata).expect("offsets").get(&s.topic), Some(&landed));

    // The writer resumes from the tagged state: nothing read twice.
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    producer.send_events(3_000, 5_000, PARTITIONS, &mut landed);
    let writer = WriterProcess::start(&s.writer_config, "writer-2");
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, Duration::from_secs(120)).await;
    assert!(writer.stop(Duration::from_secs(60)).success());
    assert_exactly_once(&tables::long_column(&catalog, &s.table, "id").await, 5_000);
    assert_eq!(pyiceberg_rows(&s), (5_000, 5_000));
}

/// One `run` over a namespace serves tables with different policies, set as table properties:
/// one that opts out of compaction, one that compacts from 2 files (the config says 10), and
/// one whose policy does not parse. The first two are maintained as they ask; the third fails
/// naming its property, and the exit code says the run failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_follows_each_tables_own_policy_and_names_the_table_that_failed() {
    use icefall_table::contract::{OPTIMIZER_COMPACT_ENABLED, OPTIMIZER_MIN_INPUT_FILES};
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let ns = icefall_integration_tests::unique("ns");
    let (quiet, eager, broken) = (format!("{ns}.quiet"), format!("{ns}.eager"), format!("{ns}.broken"));
    optimizer::table_with_commits(dir, &quiet, &[(OPTIMIZER_COMPACT_ENABLED, "false")], 4, 100).await;
    optimizer::table_with_commits(dir, &eager, &[(OPTIMIZER_MIN_INPUT_FILES, "2")], 4, 100).await;
    optimizer::table_with_commits(dir, &broken, &[(OPTIMIZER_MIN_INPUT_FILES, "lots")], 4, 100).await;
    let config = optimizer::config(dir, None);
    let text = std::fs::read_to_string(&config).expect("config").replace("min_input_files = 2", "min_input_files = 10");
    std::fs::write(&config, format!("namespaces = [\"{ns}\"]\n{text}")).expect("config");

    let status = std::process::Command::new(optimizer::optimizer_binary())
        .arg("--config")
        .arg(&config)
        .args(["--table", &eager, "status"])
        .output()
        .expect("status");
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(
        shown.contains("run: compact on (min 2 input files)") && shown.contains(OPTIMIZER_MIN_INPUT_FILES),
        "{shown}"
    );

    let output = std::process::Command::new(optimizer::optimizer_binary())
        .arg("--config")
        .arg(&config)
        .args(["--json", "run"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("1 of 3 tables failed") && stderr.contains(&broken), "{stderr}");
    assert!(stderr.contains(OPTIMIZER_MIN_INPUT_FILES) && stderr.contains("\"lots\""), "{stderr}");
    let catalog = tables::catalog(dir).await;
    assert_eq!(tables::data_file_count(&catalog, &quiet).await, 4, "compaction is off for this table");
    assert_eq!(tables::data_file_count(&catalog, &eager).await, 1, "2 input files are enough for this one");
    assert_eq!(tables::data_file_count(&catalog, &broken).await, 4, "a table that failed is left as it was");
    let reports: Vec<serde_json::Value> =
        String::from_utf8_lossy(&output.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let skipped = reports.iter().find(|r| r["table"] == quiet.as_str() && r["command"] == "compact").expect("report");
    assert!(skipped.to_string().contains(OPTIMIZER_COMPACT_ENABLED), "{skipped}");
    let expired = reports.iter().filter(|r| r["table"] == quiet.as_str() && r["command"] == "expire-snapshots");
    assert_eq!(expired.count(), 1, "the rest of run still maintains the quiet table");
}
