//! Iceberg spec conformance of what we write, through the reference engines: every engine gets
//! exactly the rows we produced, also for filtered queries (files pruned by their bounds), and
//! the table properties Iceberg defines for writers are honoured.

use std::collections::BTreeMap;
use std::time::Duration;

use icefall_integration_tests::broker::Broker;
use icefall_integration_tests::engines;
use icefall_integration_tests::optimizer;
use icefall_integration_tests::produce::TestProducer;
use icefall_integration_tests::tables;
use icefall_integration_tests::unique;
use icefall_integration_tests::writer::{WriterProcess, format_pipeline};
use icefall_table::catalog::parse_ident;
use serde_json::json;

/// The URL of record `id`: mostly short ones, every 37th longer than Parquet's 64-byte
/// statistics, and the smallest and largest values of all long too (each inside a row group of
/// short ones), with `/ ? # %` and non-ASCII characters.
fn url(id: i64) -> String {
    let tail = "/pfad/ä?q=%E2%82%AC#frag";
    match id {
        150 => format!("https://a.example{}", tail.repeat(5)),
        250 => format!("https://z.example/zé{}", tail.repeat(5)),
        _ if id % 37 == 0 => format!("https://m.example/long/{id:04}/{}", tail.repeat(4)),
        _ => format!("https://m.example/{id:04}?q=ü#f"),
    }
}

/// Parquet files of many row groups whose smallest and largest strings are longer than 64
/// bytes: every engine's filtered count equals the count over the values produced (bounds that
/// left such a value out made every engine prune its file). A column in metrics mode `none`
/// (`write.metadata.metrics.column.note`) has no counts or bounds in any file, as Spark sees
/// the files table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_strings_over_many_row_groups_are_found_by_every_engine_filter() {
    const N: i64 = 400;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let broker = Broker::start();
    let topic = unique("bounds");
    broker.create_topic(&topic, 1);
    let table = format!("{}.long_strings", unique("ns"));
    let config = format_pipeline(
        dir,
        &broker.bootstrap(),
        &topic,
        &table,
        r#"schema = [
  { name = "id", type = "long", required = true },
  { name = "url", type = "string" },
  { name = "note", type = "string" },
]
table_properties = { "write.parquet.row-group-limit" = "25", "write.metadata.metrics.column.note" = "none" }"#,
        "",
    );
    let producer = TestProducer::new(&broker.bootstrap(), &topic);
    let note = |id: i64| format!("n{}", id % 7);
    for id in 0..N {
        let record = json!({ "id": id, "url": url(id), "note": note(id) });
        producer.send(0, &id.to_string(), record.to_string().as_bytes());
    }
    producer.flush();
    let writer = WriterProcess::start(&config, "writer");
    let catalog = tables::catalog(dir).await;
    tables::wait_for_offsets(&catalog, &table, &topic, &BTreeMap::from([(0, N)]), Duration::from_secs(120)).await;
    assert!(writer.stop(Duration::from_secs(30)).success());

    let urls: Vec<String> = (0..N).map(url).collect();
    let count = |keep: &dyn Fn(i64, &str) -> bool| (0..N).filter(|id| keep(*id, &urls[*id as usize])).count() as i64;
    let (min, max, long) = (url(150), url(250), url(74));
    let filters = [
        (format!("url = '{min}'"), count(&|_, u| u == min)),
        (format!("url = '{max}'"), count(&|_, u| u == max)),
        (format!("url = '{long}'"), count(&|_, u| u == long)),
        ("url < 'https://b'".to_string(), count(&|_, u| u < "https://b")),
        ("url >= 'https://y'".to_string(), count(&|_, u| u >= "https://y")),
        ("url > 'https://m.example/long/0300'".to_string(), count(&|_, u| u > "https://m.example/long/0300")),
        ("note = 'n3'".to_string(), count(&|id, _| note(id) == "n3")),
        ("id >= 100 and id <= 120".to_string(), count(&|id, _| (100..=120).contains(&id))),
    ];
    assert_eq!(filters[0].1, 1, "{min} is in the data once");
    let predicates: Vec<&str> = filters.iter().map(|(p, _)| p.as_str()).collect();
    let expected: Vec<(&str, i64)> = filters.iter().map(|(p, n)| (p.as_str(), *n)).collect();
    let files =
        format!("select record_count, map_keys(value_counts), map_keys(lower_bounds) from icefall.{table}.files");
    let options = engines::EngineOptions { count_filters: &predicates, spark_sql: &[&files], ..Default::default() };
    let report = engines::engines_report(&catalog, dir, &table, &options).await;
    engines::assert_engines_agree(&report, &[], N);
    engines::assert_filtered_counts(&report, &expected);

    let groups = tables::parquet_row_groups(&catalog, &table).await;
    assert!(groups.iter().any(|g| *g > 1), "files of several row groups: {groups:?}");
    // `note` has no metrics at all; `url` has counts and bounds.
    let loaded = catalog.load(&parse_ident(&table).expect("ident")).await.expect("load");
    let note_id = loaded.metadata.current_schema().field_by_name("note").expect("note").id;
    let url_id = loaded.metadata.current_schema().field_by_name("url").expect("url").id;
    let rows = report["spark_sql"][0]["rows"].as_array().expect("files rows");
    assert!(!rows.is_empty());
    for row in rows {
        // Spark renders an array as `[1, 2, 3]`.
        let ids = |v: &serde_json::Value| -> Vec<i32> {
            let text = v.as_str().expect("text").trim_matches(['[', ']']);
            text.split(',').filter_map(|id| id.trim().parse().ok()).collect()
        };
        let (counted, bounded) = (ids(&row[1]), ids(&row[2]));
        assert!(!counted.contains(&note_id) && !bounded.contains(&note_id), "note has no metrics: {row:?}");
        assert!(counted.contains(&url_id) && bounded.contains(&url_id), "url keeps its metrics: {row:?}");
    }
}

/// Partition values as users have them: `/ ? # %`, spaces, non-ASCII.
const CATEGORIES: [&str; 6] = ["plain", "a/b", "q?x=1", "h#1", "p%20c", "Zürich ö"];

/// Spark replaces the partition field (`ALTER TABLE … REPLACE PARTITION FIELD`) while the
/// writer runs: the files written before under the old spec are committed under it, the writer
/// takes up the new spec at the next checkpoint, and every engine's filtered counts (on the old
/// and the new partition source) equal the values produced, before and after our compaction.
/// Identity-partition values with special characters make paths every engine opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_spec_replaced_by_spark_while_the_writer_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let broker = Broker::start();
    let topic = unique("spec");
    broker.create_topic(&topic, 1);
    let table = format!("{}.spec_change", unique("ns"));
    let config = format_pipeline(
        dir,
        &broker.bootstrap(),
        &topic,
        &table,
        r#"partition = ["category"]
schema = [
  { name = "id", type = "long", required = true },
  { name = "category", type = "string" },
  { name = "name", type = "string" },
]"#,
        "",
    );
    let category = |id: i64| CATEGORIES[(id % CATEGORIES.len() as i64) as usize];
    let producer = TestProducer::new(&broker.bootstrap(), &topic);
    let produce = |ids: std::ops::Range<i64>| {
        for id in ids {
            let record = json!({ "id": id, "category": category(id), "name": format!("name-{id}") });
            producer.send(0, &id.to_string(), record.to_string().as_bytes());
        }
        producer.flush();
    };
    let catalog = tables::catalog(dir).await;
    let offsets = |n: i64| BTreeMap::from([(0, n)]);
    let timeout = Duration::from_secs(120);

    produce(0..200);
    let writer = WriterProcess::start(&config, "writer");
    tables::wait_for_offsets(&catalog, &table, &topic, &offsets(200), timeout).await;
    engines::spark_sql(
        dir,
        None,
        &table,
        &[&format!("alter table icefall.{table} replace partition field category with bucket(4, id)")],
    );
    // Written with the old spec (the writer has not committed since the change), then with the new.
    produce(200..300);
    tables::wait_for_offsets(&catalog, &table, &topic, &offsets(300), timeout).await;
    produce(300..400);
    tables::wait_for_offsets(&catalog, &table, &topic, &offsets(400), timeout).await;
    assert!(writer.stop(Duration::from_secs(30)).success());

    const N: i64 = 400;
    let count = |keep: &dyn Fn(i64) -> bool| (0..N).filter(|id| keep(*id)).count() as i64;
    let filters: Vec<(String, i64)> = CATEGORIES
        .iter()
        .map(|c| (format!("category = '{c}'"), count(&|id| category(id) == *c)))
        .chain([
            ("id = 42".to_string(), 1),
            ("id = 350".to_string(), 1),
            ("id >= 190 and id < 310".to_string(), 120),
            ("category = 'a/b' and id > 250".to_string(), count(&|id| category(id) == "a/b" && id > 250)),
        ])
        .collect();
    let predicates: Vec<&str> = filters.iter().map(|(p, _)| p.as_str()).collect();
    let expected: Vec<(&str, i64)> = filters.iter().map(|(p, n)| (p.as_str(), *n)).collect();
    let specs = format!("select spec_id, count(*) from icefall.{table}.files group by spec_id order by spec_id");
    let options = engines::EngineOptions { count_filters: &predicates, spark_sql: &[&specs], ..Default::default() };
    let report = engines::engines_report(&catalog, dir, &table, &options).await;
    engines::assert_engines_agree(&report, &[], N);
    engines::assert_filtered_counts(&report, &expected);
    let spec_ids: Vec<&str> =
        report["spark_sql"][0]["rows"].as_array().expect("rows").iter().filter_map(|r| r[0].as_str()).collect();
    assert_eq!(spec_ids, ["0", "1"], "files of both specs: {:#}", report["spark_sql"]);
    let paths = tables::files_on_disk(dir, &table);
    assert!(paths.iter().any(|p| p.to_string_lossy().contains("category=a%2Fb/")), "{paths:?}");

    // Compaction rewrites files of both specs into the current one; the rows stay.
    optimizer::run(&optimizer::config(dir, None), &table, &["compact"]);
    let options =
        engines::EngineOptions { count_filters: &predicates, engines: Some("pyiceberg,duckdb"), ..Default::default() };
    let report = engines::engines_report(&catalog, dir, &table, &options).await;
    assert_eq!(report["pyiceberg"]["checksum"], report["icefall"]["checksum"], "{report:#}");
    assert_eq!(report["duckdb"]["checksum"], report["icefall"]["checksum"], "{report:#}");
    engines::assert_filtered_counts(&report, &expected);
}

/// Files another engine wrote, added by Spark's `add_files` (Hive-style Parquet and ORC: no
/// field ids, the identity partition column only in the folder names, nested columns with nulls
/// at every level), then compacted by us: every engine reads exactly the values produced,
/// through the table's name mapping; nothing turns into nulls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_added_by_spark_without_field_ids_compact_value_for_value() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let hive = dir.join("hive");
    let produced = engines::hive_style_files(dir, &hive)["produced"].clone();
    let ns = unique("ns");
    let table = format!("{ns}.migrated");
    engines::spark_sql(
        dir,
        None,
        &table,
        &[
            &format!("create namespace if not exists icefall.{ns}"),
            &format!(
                "create table icefall.{table} (id bigint, name string, geo struct<lat: double, city: string>, \
                 tags array<string>, attrs map<string, string>, region string) using iceberg partitioned by (region)"
            ),
            &format!(
                "call icefall.system.add_files(table => '{table}', source_table => '`parquet`.`{}/parquet`')",
                hive.display()
            ),
            &format!(
                "call icefall.system.add_files(table => '{table}', source_table => '`orc`.`{}/orc`')",
                hive.display()
            ),
        ],
    );
    let catalog = tables::catalog(dir).await;
    let before = tables::data_file_count(&catalog, &table).await;
    assert_eq!(before, 4);
    let report = optimizer::run(&optimizer::config(dir, None), &table, &["compact"]);
    assert_eq!(tables::data_file_count(&catalog, &table).await, 2, "one file per region: {report:?}");

    // As hive_files.py makes them: `geo` is null for ids ≡ 0 (mod 7), `city` for odd ids.
    let no_city = (0..200).filter(|i| i % 7 == 0 || i % 2 == 1).count() as i64;
    let filters = [("region = 'eu'", 100), ("id = 7", 1), ("geo.city is null", no_city)];
    let predicates: Vec<&str> = filters.iter().map(|(p, _)| *p).collect();
    let options = engines::EngineOptions { count_filters: &predicates, ..Default::default() };
    let engines = engines::engines_report(&catalog, dir, &table, &options).await;
    for engine in ["icefall", "spark", "pyiceberg", "duckdb"] {
        assert_eq!(engines[engine]["rows"], produced["rows"], "{engine}: {engines:#}");
        assert_eq!(
            engines[engine]["checksum"], produced["checksum"],
            "{engine} reads the values produced: {engines:#} {produced:#}"
        );
    }
    engines::assert_filtered_counts(&engines, &filters);
}

/// A table of `commits` empty appends (one snapshot each) with `properties`, in the SQLite
/// catalog in `dir`.
/// The optimizer follows the table: `gc.enabled=false` (files that may be another table's)
/// refuses expiry and orphan removal, and `run` skips both; `history.expire.min-snapshots-to-keep`
/// keeps that many snapshots whatever `--retain-last` says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_and_orphan_removal_follow_the_table_properties() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let ns = unique("ns");
    let (no_gc, keep_three) = (format!("{ns}.no_gc"), format!("{ns}.keep_three"));
    optimizer::table_with_commits(dir, &no_gc, &[("gc.enabled", "false")], 4, 0).await;
    optimizer::table_with_commits(dir, &keep_three, &[("history.expire.min-snapshots-to-keep", "3")], 6, 0).await;
    let config = optimizer::config(dir, None);

    for args in [&["expire-snapshots", "--older-than", "0s"][..], &["remove-orphans", "--older-than", "0s", "--force"]]
    {
        let output = std::process::Command::new(optimizer::optimizer_binary())
            .arg("--config")
            .arg(&config)
            .args(["--table", &no_gc])
            .args(args)
            .output()
            .expect("run the optimizer");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains("gc.enabled is false"), "{args:?}: {stderr}");
    }
    let catalog = tables::catalog(dir).await;
    let snapshots = |name: String| {
        let catalog = &catalog;
        async move { catalog.load(&parse_ident(&name).expect("ident")).await.expect("load").metadata.snapshots().count() }
    };
    assert_eq!(snapshots(no_gc.clone()).await, 4, "nothing expired");
    let reports = optimizer::run(&config, &no_gc, &["run"]);
    let skipped: Vec<&serde_json::Value> =
        reports.iter().filter(|r| r.to_string().contains("gc.enabled is false")).collect();
    assert_eq!(skipped.len(), 2, "run skips expiry and orphan removal: {reports:?}");

    // Over both tables: the refusal on one does not stop the other; the run fails at the end,
    // naming the table that failed.
    let output = std::process::Command::new(optimizer::optimizer_binary())
        .arg("--config")
        .arg(&config)
        .args(["--table", &no_gc, "--table", &keep_three])
        .args(["expire-snapshots", "--older-than", "0s", "--retain-last", "1"])
        .output()
        .expect("run the optimizer");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("1 of 2 tables failed") && stderr.contains(&no_gc), "{stderr}");
    assert_eq!(snapshots(keep_three).await, 3, "history.expire.min-snapshots-to-keep wins over --retain-last");
}

/// Spark widens the source of an identity partition (`int` → `bigint`) after files were
/// written: our compaction and manifest rewrite carry the old partition values promoted to the
/// new type, and every engine's filtered counts on the widened column equal the values written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_widened_partition_source_compacts_and_rewrites_manifests() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let ns = unique("ns");
    let table = format!("{ns}.widened");
    let mut statements = vec![
        format!("create namespace if not exists icefall.{ns}"),
        format!(
            "create table icefall.{table} (id bigint, small int, ratio float) using iceberg partitioned by (small)"
        ),
    ];
    // Four small files per partition: something to compact.
    for part in 0..4 {
        statements.push(format!(
            "insert into icefall.{table} select id, cast(id % 5 as int), cast(id as float) / 4 from range({}, {})",
            part * 50,
            (part + 1) * 50
        ));
    }
    statements.push(format!("alter table icefall.{table} alter column small type bigint"));
    statements.push(format!("alter table icefall.{table} alter column ratio type double"));
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    engines::spark_sql(dir, None, &table, &statements);

    let config = optimizer::config(dir, None);
    let catalog = tables::catalog(dir).await;
    assert_eq!(tables::data_file_count(&catalog, &table).await, 20);
    optimizer::run(&config, &table, &["compact"]);
    assert_eq!(tables::data_file_count(&catalog, &table).await, 5, "one file per partition");
    optimizer::run(&config, &table, &["rewrite-manifests"]);

    let filters = [("small = 3", 40), ("small > 2", 80), ("id = 7", 1), ("ratio >= 40.0", 40)];
    let predicates: Vec<&str> = filters.iter().map(|(p, _)| *p).collect();
    let options = engines::EngineOptions { count_filters: &predicates, ..Default::default() };
    let report = engines::engines_report(&catalog, dir, &table, &options).await;
    engines::assert_engines_agree(&report, &[], 200);
    engines::assert_filtered_counts(&report, &filters);
}
