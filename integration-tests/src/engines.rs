//! The same tables through other engines (Spark, PyIceberg, DuckDB), by the Python scripts in
//! `integration-tests/python/`, and the assertions that compare their answers with ours.

use std::path::Path;

use icefall_table::Catalog;

use crate::tables::scan;
use crate::tools_dir;

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

/// PyIceberg's report on a table of the SQLite catalog in `dir` whose warehouse is elsewhere
/// (`warehouse`, with storage `properties`); `filters` are counted through PyIceberg's own
/// pruning scan (`report["filtered"][filter]`).
pub fn pyiceberg_report_on(
    dir: &Path,
    table: &str,
    warehouse: &str,
    properties: &[(String, String)],
    filters: &[&str],
) -> serde_json::Value {
    let mut extra = vec!["--warehouse".to_string(), warehouse.to_string()];
    for (k, v) in properties {
        extra.extend(["--property".to_string(), format!("{k}={v}")]);
    }
    for filter in filters {
        extra.extend(["--count-filter".to_string(), filter.to_string()]);
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    run_table_script("read_table.py", dir, None, table, &extra)
}

/// Runs `integration-tests/python/<script>` with the venv's Python on `table` of the catalog
/// at `catalog_uri` (PostgreSQL), or of the SQLite catalog in `dir` when it is `None`, with the
/// warehouse in `dir`; returns the JSON it prints. `engines.py` runs in a long-lived server
/// (one Spark JVM for many readings).
fn run_table_script(
    script: &str,
    dir: &Path,
    catalog_uri: Option<&str>,
    table: &str,
    extra: &[&str],
) -> serde_json::Value {
    let catalog = match catalog_uri {
        Some(uri) => ["--catalog-uri".to_string(), uri.to_string()],
        None => ["--catalog-db".to_string(), format!("{}/catalog.db", dir.display())],
    };
    // The test dir's warehouse unless `extra` names another.
    let warehouse = match extra.contains(&"--warehouse") {
        true => vec![],
        false => vec!["--warehouse".to_string(), format!("{}/warehouse", dir.display())],
    };
    let mut args: Vec<String> = catalog.into_iter().chain(warehouse).collect();
    args.extend(["--table".to_string(), table.to_string()]);
    args.extend(extra.iter().map(|a| a.to_string()));
    if script == "engines.py" {
        return crate::engine_server::run_engines(&args);
    }
    let output = std::process::Command::new(tools_dir().join("venv/bin/python"))
        .arg(crate::repo_root().join("integration-tests/python").join(script))
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(output.status.success(), "{script} failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{script} printed no JSON: {e}"))
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

/// How many data files PyIceberg's scan planning keeps for each row filter (pruning by
/// partition values and column bounds), and how many the table has: `(kept, total)` each.
pub fn planned_files(dir: &Path, catalog_uri: Option<&str>, table: &str, filters: &[&str]) -> Vec<(u64, u64)> {
    let mut extra = vec!["--engines", ""];
    extra.extend(filters.iter().flat_map(|f| ["--plan-filter", *f]));
    let report = run_table_script("engines.py", dir, catalog_uri, table, &extra);
    filters
        .iter()
        .map(|f| {
            let planned = &report["planned"][*f];
            (planned["files"].as_u64().expect("files"), planned["total"].as_u64().expect("total"))
        })
        .collect()
}

/// The distinct counts Spark's cost-based optimizer gets from `table` (from the current
/// snapshot's statistics file), by column name.
pub fn spark_column_stats(dir: &Path, table: &str) -> std::collections::BTreeMap<String, i64> {
    let report = run_table_script("engines.py", dir, None, table, &["--engines", "", "--column-stats"]);
    serde_json::from_value(report["column_stats"].clone()).expect("column stats")
}

/// The theta sketches of a Puffin statistics file as Apache DataSketches' Python library reads
/// them: `(fields, ndv property, estimate)` per blob.
pub fn datasketches_read(path: &str) -> Vec<(Vec<i32>, i64, f64)> {
    let output = std::process::Command::new(crate::tools_dir().join("venv/bin/python"))
        .arg(crate::repo_root().join("integration-tests/python/theta.py"))
        .arg(path)
        .output()
        .expect("run theta.py");
    assert!(output.status.success(), "theta.py: {}", String::from_utf8_lossy(&output.stderr));
    let blobs: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).expect("theta.py JSON");
    blobs
        .iter()
        .map(|b| {
            let fields = serde_json::from_value(b["fields"].clone()).expect("fields");
            (fields, b["ndv"].as_i64().expect("ndv"), b["estimate"].as_f64().expect("estimate"))
        })
        .collect()
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
