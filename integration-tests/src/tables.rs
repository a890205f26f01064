//! Reading what landed: rows through iceberg-rust's scan, offsets from snapshot summaries,
//! and the same table through PyIceberg.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use futures::TryStreamExt;
use icefall_table::catalog::parse_ident;
use icefall_table::offsets::{OffsetMap, committed_offsets};
use icefall_table::{Catalog, CatalogConfig};

use crate::tools_dir;

pub async fn catalog(dir: &Path) -> Catalog {
    catalog_at(&format!("sqlite:{}/catalog.db", dir.display()), dir).await
}

/// A catalog on any database, with the warehouse in `dir`.
pub async fn catalog_at(uri: &str, dir: &Path) -> Catalog {
    let config = CatalogConfig {
        uri: uri.to_string(),
        name: "icefall".into(),
        warehouse: format!("{}/warehouse", dir.display()),
        storage: Default::default(),
        token: None,
    };
    Catalog::connect(&config).await.expect("catalog")
}

/// All rows of the given columns (all columns when `columns` is empty).
pub async fn scan(catalog: &Catalog, table: &str, columns: &[&str]) -> Vec<RecordBatch> {
    let loaded = catalog.load(&parse_ident(table).expect("ident")).await.expect("load");
    let table = loaded.to_table(catalog.file_io()).expect("table");
    let builder = table.scan();
    let builder = if columns.is_empty() { builder.select_all() } else { builder.select(columns.iter().copied()) };
    let scan = builder.build().expect("scan");
    let tasks: Vec<_> = scan.plan_files().await.expect("plan").try_collect().await.expect("plan");
    icefall_table::read::read_tasks(&table, tasks).try_collect().await.expect("read batches")
}

/// The values of a long column, over all rows.
pub async fn long_column(catalog: &Catalog, table: &str, column: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for batch in scan(catalog, table, &[column]).await {
        let values = batch.column(0).as_primitive::<Int64Type>();
        out.extend((0..values.len()).map(|i| values.value(i)));
    }
    out
}

pub async fn offsets(catalog: &Catalog, table: &str) -> OffsetMap {
    match catalog.load(&parse_ident(table).expect("ident")).await {
        Ok(loaded) => committed_offsets(&loaded.metadata).expect("offsets"),
        Err(_) => OffsetMap::new(),
    }
}

/// `icefall.writer-instance` of every snapshot still in the table's metadata (none before the
/// table exists).
pub async fn writer_instances(catalog: &Catalog, table: &str) -> std::collections::BTreeSet<String> {
    let Ok(loaded) = catalog.load(&parse_ident(table).expect("ident")).await else {
        return Default::default();
    };
    loaded
        .metadata
        .snapshots()
        .filter_map(|s| s.summary().additional_properties.get(icefall_table::offsets::WRITER_INSTANCE).cloned())
        .collect()
}

/// Waits until the table's offsets for `topic` reach `expected` (partition → next offset).
pub async fn wait_for_offsets(
    catalog: &Catalog,
    table: &str,
    topic: &str,
    expected: &BTreeMap<i32, i64>,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let current = offsets(catalog, table).await;
        let got = current.get(topic).cloned().unwrap_or_default();
        if expected.iter().all(|(p, o)| got.get(p).is_some_and(|g| g >= o)) {
            return;
        }
        assert!(Instant::now() < deadline, "offsets did not reach {expected:?} within {timeout:?}; table has {got:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// (partition, offset) of every row, from the `kafka_partition` and `kafka_offset` metadata columns.
pub async fn partition_offsets(catalog: &Catalog, table: &str) -> Vec<(i32, i64)> {
    use arrow_array::types::Int32Type;
    let mut out = Vec::new();
    for batch in scan(catalog, table, &["kafka_partition", "kafka_offset"]).await {
        let partitions = batch.column(0).as_primitive::<Int32Type>();
        let offsets = batch.column(1).as_primitive::<Int64Type>();
        out.extend((0..batch.num_rows()).map(|i| (partitions.value(i), offsets.value(i))));
    }
    out
}

/// (partition, offset) of every dead letter of `table` (in `<table>_dlq`).
pub async fn dead_letter_offsets(catalog: &Catalog, table: &str) -> Vec<(i32, i64)> {
    use arrow_array::types::Int32Type;
    let mut out = Vec::new();
    for batch in scan(catalog, &format!("{table}_dlq"), &["partition", "offset"]).await {
        let partitions = batch.column(0).as_primitive::<Int32Type>();
        let offsets = batch.column(1).as_primitive::<Int64Type>();
        out.extend((0..batch.num_rows()).map(|i| (partitions.value(i), offsets.value(i))));
    }
    out
}

/// Every offset of every partition exactly once in the table *or* its dead-letter table (never
/// both), and each dead letter is a record [`crate::produce::malformed`] picked.
pub async fn assert_landed_exactly_once(catalog: &Catalog, table: &str, landed: &BTreeMap<i32, i64>) {
    let mut pairs = partition_offsets(catalog, table).await;
    let letters = dead_letter_offsets(catalog, table).await;
    assert!(!letters.is_empty(), "the malformed records are in the dead-letter table");
    pairs.extend(letters);
    assert_offsets_exactly_once(&pairs, landed);
    let keys = scan(catalog, &format!("{table}_dlq"), &["key"]).await;
    for batch in keys {
        let keys = batch.column(0).as_binary::<i64>();
        for row in 0..batch.num_rows() {
            let id: i64 = String::from_utf8_lossy(keys.value(row)).parse().expect("key is the id");
            assert!(crate::produce::malformed(id), "record {id} is good but went to the dead-letter table");
        }
    }
}

/// Every offset `0..landed[p]` of every partition exactly once: the Kafka-level count.
pub fn assert_offsets_exactly_once(pairs: &[(i32, i64)], landed: &BTreeMap<i32, i64>) {
    let mut seen: BTreeMap<(i32, i64), u32> = BTreeMap::new();
    for pair in pairs {
        *seen.entry(*pair).or_default() += 1;
    }
    let dupes: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(10).collect();
    assert!(dupes.is_empty(), "(partition, offset) twice: {dupes:?}");
    for (partition, end) in landed {
        let missing: Vec<i64> = (0..*end).filter(|o| !seen.contains_key(&(*partition, *o))).take(10).collect();
        assert!(missing.is_empty(), "partition {partition}: missing offsets {missing:?}");
    }
    assert_eq!(pairs.len() as i64, landed.values().sum::<i64>());
}

/// Every id of `ids` exactly once, compared with `0..n`.
pub fn assert_exactly_once(ids: &[i64], n: i64) {
    let mut counts: BTreeMap<i64, u32> = BTreeMap::new();
    for id in ids {
        *counts.entry(*id).or_default() += 1;
    }
    let dupes: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).take(10).collect();
    let missing: Vec<i64> = (0..n).filter(|i| !counts.contains_key(i)).take(10).collect();
    assert!(dupes.is_empty(), "duplicated ids (first 10): {dupes:?}; {} rows for {n} records", ids.len());
    assert!(missing.is_empty(), "missing ids (first 10): {missing:?}; {} rows for {n} records", ids.len());
    assert_eq!(ids.len() as i64, n);
}

/// Reads a table with PyIceberg over the same SQLite catalog; returns its JSON report.
pub fn pyiceberg_report(dir: &Path, table: &str) -> serde_json::Value {
    pyiceberg_read(dir, table, &[])
}

/// Every row as PyIceberg reads it (`data`, ordered by `order_by`) and the schema (`schema`:
/// `[id, name, type]`), besides the usual report.
pub fn pyiceberg_rows(dir: &Path, table: &str, order_by: &str) -> serde_json::Value {
    pyiceberg_read(dir, table, &["--dump-rows", order_by])
}

fn pyiceberg_read(dir: &Path, table: &str, extra: &[&str]) -> serde_json::Value {
    run_table_script("read_table.py", dir, None, table, extra)
}

/// Runs `integration-tests/python/<script>` with the venv's Python on `table` of the catalog
/// at `catalog_uri` (PostgreSQL), or of the SQLite catalog in `dir` when it is `None`, with the
/// warehouse in `dir`; returns the JSON it prints.
fn run_table_script(
    script: &str,
    dir: &Path,
    catalog_uri: Option<&str>,
    table: &str,
    extra: &[&str],
) -> serde_json::Value {
    let python = tools_dir().join("venv/bin/python");
    let catalog = match catalog_uri {
        Some(uri) => ["--catalog-uri".to_string(), uri.to_string()],
        None => ["--catalog-db".to_string(), format!("{}/catalog.db", dir.display())],
    };
    let output = std::process::Command::new(python)
        .arg(crate::repo_root().join("integration-tests/python").join(script))
        .args(catalog)
        .args(["--warehouse", &format!("{}/warehouse", dir.display())])
        .args(["--table", table])
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(output.status.success(), "{script} failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{script} printed no JSON: {e}"))
}

/// A checksum over every value of every row, independent of file layout and row order.
pub async fn checksum(catalog: &Catalog, table: &str) -> (usize, u64) {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut rows: Vec<String> = Vec::new();
    for batch in scan(catalog, table, &[]).await {
        let options = arrow_cast::display::FormatOptions::default();
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| arrow_cast::display::ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
            .collect();
        for row in 0..batch.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(row).to_string()).collect::<Vec<_>>().join("|"));
        }
    }
    rows.sort_unstable();
    let mut hasher = DefaultHasher::new();
    rows.hash(&mut hasher);
    (rows.len(), hasher.finish())
}

/// Live data files of the current snapshot (from its summary).
pub async fn data_file_count(catalog: &Catalog, table: &str) -> u64 {
    summary_total(catalog, table, "total-data-files").await
}

/// Live delete files (position and equality) of the current snapshot (from its summary).
pub async fn delete_file_count(catalog: &Catalog, table: &str) -> u64 {
    summary_total(catalog, table, "total-delete-files").await
}

/// A `total-…` count of the current snapshot's summary (0 when absent).
async fn summary_total(catalog: &Catalog, table: &str, key: &str) -> u64 {
    let loaded = catalog.load(&parse_ident(table).expect("ident")).await.expect("load");
    loaded
        .metadata
        .current_snapshot()
        .and_then(|s| s.summary().additional_properties.get(key).cloned())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The file format (`Parquet`, `Orc`) of every live data file, by count.
pub async fn data_file_formats(catalog: &Catalog, table: &str) -> BTreeMap<String, usize> {
    let loaded = catalog.load(&parse_ident(table).expect("ident")).await.expect("load");
    let table = loaded.to_table(catalog.file_io()).expect("table");
    let scan = table.scan().select_all().build().expect("scan");
    let tasks: Vec<_> = scan.plan_files().await.expect("plan").try_collect().await.expect("plan");
    let mut out = BTreeMap::new();
    for task in tasks {
        *out.entry(format!("{:?}", task.data_file_format)).or_default() += 1;
    }
    out
}

/// Files under a table's folder (data and metadata), skipping nothing.
pub fn files_on_disk(dir: &Path, table: &str) -> Vec<std::path::PathBuf> {
    let (ns, name) = table.rsplit_once('.').expect("ns.table");
    let root = dir.join("warehouse").join(ns.replace('.', "/")).join(name);
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(path) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&path) {
            for entry in entries.flatten() {
                let p = entry.path();
                if p.is_dir() { stack.push(p) } else { out.push(p) }
            }
        }
    }
    out
}

/// `icefall.writers` of every snapshot that has it, oldest first: the writer pool's size at
/// each checkpoint.
pub async fn writer_counts(catalog: &Catalog, table: &str) -> Vec<usize> {
    let Ok(loaded) = catalog.load(&parse_ident(table).expect("ident")).await else {
        return Vec::new();
    };
    let mut snapshots: Vec<_> = loaded.metadata.snapshots().collect();
    snapshots.sort_by_key(|s| s.sequence_number());
    snapshots
        .iter()
        .filter_map(|s| s.summary().additional_properties.get("icefall.writers").and_then(|w| w.parse().ok()))
        .collect()
}

/// What [`engines_report`] runs against and checks besides reading.
#[derive(Default)]
pub struct EngineOptions<'a> {
    /// The catalog: a PostgreSQL URI or a REST catalog's `http://…`; `None` = the SQLite catalog in the test's dir.
    pub catalog_uri: Option<&'a str>,
    /// SQL predicates Spark counts with file pruning and on a plain copy of the rows.
    pub spark_filters: &'a [&'a str],
    /// SQL predicates every engine counts through its own Iceberg scan (`report["filtered"]`;
    /// see [`assert_filtered_counts`]).
    pub count_filters: &'a [&'a str],
    /// Spark SQL statements run before anything is read (`report["spark_sql"]`).
    pub spark_sql: &'a [&'a str],
    /// Engines that read, comma-separated; `None` = all (`pyiceberg,duckdb,spark`). DuckDB reads
    /// Parquet data files only.
    pub engines: Option<&'a str>,
}

/// Every engine's reading of a table (Spark, PyIceberg, DuckDB, and our own scan written as
/// Arrow IPC), each as `{rows, checksum, first}` keyed by engine (`integration-tests/python/engines.py`).
/// `spark_checks.filters` maps each of `options.spark_filters` to `[pruned, plain]` counts;
/// `spark_checks.snapshots` holds each snapshot's operation, `total-records`, Spark's count
/// `VERSION AS OF` it, and our writer id and offsets.
pub async fn engines_report(
    catalog: &Catalog,
    dir: &Path,
    table: &str,
    options: &EngineOptions<'_>,
) -> serde_json::Value {
    let batches = scan(catalog, table, &[]).await;
    let ipc = dir.join(format!("{table}.icefall.arrow"));
    let file = std::fs::File::create(&ipc).expect("ipc file");
    let schema = batches.first().map(|b| b.schema()).expect("the table has rows");
    let mut writer = arrow_ipc::writer::FileWriter::try_new(file, &schema).expect("ipc writer");
    for batch in &batches {
        writer.write(batch).expect("ipc batch");
    }
    writer.finish().expect("ipc finish");
    let ipc = ipc.display().to_string();
    let mut extra = vec!["--icefall-ipc", ipc.as_str()];
    if let Some(engines) = options.engines {
        extra.extend(["--engines", engines]);
    }
    extra.extend(options.spark_filters.iter().flat_map(|f| ["--spark-filter", *f]));
    extra.extend(options.count_filters.iter().flat_map(|f| ["--count-filter", *f]));
    extra.extend(options.spark_sql.iter().flat_map(|s| ["--spark-sql", *s]));
    run_table_script("engines.py", dir, options.catalog_uri, table, &extra)
}

/// Runs Spark SQL statements on the catalog (nothing is read); returns, per statement, its
/// rows as text (`[{sql, rows, seconds}]`). Panics with Spark's error if one fails.
pub fn spark_sql(dir: &Path, catalog_uri: Option<&str>, table: &str, statements: &[&str]) -> serde_json::Value {
    let mut extra = vec!["--engines", ""];
    extra.extend(statements.iter().flat_map(|s| ["--spark-sql", *s]));
    run_table_script("engines.py", dir, catalog_uri, table, &extra)["spark_sql"].clone()
}

/// Asserts every engine of an [`engines_report`] read what our scan read (`rows` rows, the
/// same checksum and column names), that Spark's pruned counts of `filters` equal the plain
/// ones (each selecting some rows but not all), and that time travel to every snapshot sees its
/// `total-records` less its `total-position-deletes` (fewer when it has equality deletes).
/// Returns our checksum.
pub fn assert_engines_agree(report: &serde_json::Value, filters: &[&str], rows: i64) -> String {
    let icefall = &report["icefall"];
    assert_eq!(icefall["rows"], rows, "{report:#}");
    for engine in ["spark", "pyiceberg", "duckdb"] {
        if engine == "duckdb" && report[engine].is_null() {
            continue; // left out by `EngineOptions::engines`
        }
        assert_eq!(report[engine]["rows"], icefall["rows"], "{engine} row count; {report:#}");
        assert_eq!(report[engine]["columns"], report["pyiceberg"]["columns"], "{engine} columns; {report:#}");
        assert_eq!(report[engine]["checksum"], icefall["checksum"], "{engine} values; {report:#}");
    }
    let checks = &report["spark_checks"];
    for filter in filters {
        let [pruned, plain] = [&checks["filters"][filter][0], &checks["filters"][filter][1]];
        assert_eq!(pruned, plain, "Spark with pruning vs a plain copy for `{filter}`: {checks:#}");
        assert!(plain.as_i64().is_some_and(|n| n > 0 && n < rows), "`{filter}` selects some rows, not all: {checks:#}");
    }
    for s in checks["snapshots"].as_array().expect("snapshots") {
        let live = s["total_records"].as_i64().zip(s["position_deletes"].as_i64()).map(|(r, d)| r - d);
        if s["equality_deletes"].as_i64().is_some_and(|d| d > 0) {
            // An equality delete removes any number of rows: the summary only bounds the count.
            let count = s["count_as_of"].as_i64().expect("count");
            assert!(live.is_some_and(|live| count < live), "time travel to {} sees fewer rows: {checks:#}", s["id"]);
        } else {
            assert_eq!(s["count_as_of"].as_i64(), live, "time travel to {} sees its rows: {checks:#}", s["id"]);
        }
    }
    icefall["checksum"].as_str().expect("checksum").to_string()
}

/// Asserts every engine that read counted, for each predicate, the rows we know match it (from
/// the values produced, not from another engine). A file pruned by a bound tighter than its
/// data shows here as missing rows.
pub fn assert_filtered_counts(report: &serde_json::Value, expected: &[(&str, i64)]) {
    for (predicate, rows) in expected {
        let counts = report["filtered"][predicate]
            .as_object()
            .unwrap_or_else(|| panic!("no counts for {predicate}: {report:#}"));
        assert!(!counts.is_empty(), "no engine counted `{predicate}`");
        for (engine, count) in counts {
            assert_eq!(count.as_i64(), Some(*rows), "{engine} counts `{predicate}`: {:#}", report["filtered"]);
        }
    }
}

/// Writes Hive-style Parquet files into `out` (`integration-tests/python/hive_files.py`: no
/// field ids, `region=…` folders, nested columns with nulls at every level, long strings) and
/// returns `{"produced": {rows, checksum, …}}` of the values written.
pub fn hive_style_files(dir: &Path, out: &Path) -> serde_json::Value {
    let out = out.display().to_string();
    run_table_script("hive_files.py", dir, None, "unused.table", &["--out", out.as_str()])
}

/// Creates the test events table with PyIceberg (`integration-tests/python/create_table.py`:
/// its own field ids, `month(ts)` + `truncate(4, user)`, sort by `id`, gzip) in the SQLite
/// catalog in `dir`.
pub fn pyiceberg_create_events_table(dir: &Path, table: &str) -> serde_json::Value {
    run_table_script("create_table.py", dir, None, table, &[])
}

/// The compression codecs of every column chunk of the table's live data files (e.g. `ZSTD`,
/// `SNAPPY`, `GZIP`), from their Parquet footers.
pub async fn data_file_codecs(catalog: &Catalog, table: &str) -> std::collections::BTreeSet<String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let loaded = catalog.load(&parse_ident(table).expect("ident")).await.expect("load");
    let scan = loaded.to_table(catalog.file_io()).expect("table").scan().build().expect("scan");
    let tasks: Vec<_> = scan.plan_files().await.expect("plan").try_collect().await.expect("plan");
    let mut codecs = std::collections::BTreeSet::new();
    for task in tasks {
        let bytes = catalog.file_io().new_input(&task.data_file_path).expect("input").read().await.expect("read");
        let reader = SerializedFileReader::new(bytes).expect("parquet footer");
        for group in reader.metadata().row_groups() {
            for column in group.columns() {
                let codec = format!("{:?}", column.compression());
                codecs.insert(codec.split('(').next().unwrap_or_default().to_string());
            }
        }
    }
    codecs
}

/// The number of row groups of each live Parquet data file of the table, from its footer.
pub async fn parquet_row_groups(catalog: &Catalog, table: &str) -> Vec<usize> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let loaded = catalog.load(&parse_ident(table).expect("ident")).await.expect("load");
    let scan = loaded.to_table(catalog.file_io()).expect("table").scan().build().expect("scan");
    let tasks: Vec<_> = scan.plan_files().await.expect("plan").try_collect().await.expect("plan");
    let mut groups = Vec::new();
    for task in tasks {
        let bytes = catalog.file_io().new_input(&task.data_file_path).expect("input").read().await.expect("read");
        groups.push(SerializedFileReader::new(bytes).expect("parquet footer").metadata().num_row_groups());
    }
    groups
}
