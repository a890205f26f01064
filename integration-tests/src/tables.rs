//! Reading what landed with our own code: rows through iceberg-rust's scan, offsets from
//! snapshot summaries, files and their footers. Other engines read it in [`crate::engines`].

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

/// The embedded catalog (SQLite) and warehouse in `dir`, as the writer's tests configure it.
pub async fn catalog(dir: &Path) -> Catalog {
    Catalog::connect(&CatalogConfig::embedded_in(dir)).await.expect("catalog")
}

/// A catalog on any database, with the warehouse in `dir`.
pub async fn catalog_at(uri: &str, dir: &Path) -> Catalog {
    let config = CatalogConfig { uri: uri.to_string(), ..CatalogConfig::embedded_in(dir) };
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
