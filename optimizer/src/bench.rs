//! `icefall-optimizer bench`: builds a table of N small files (one commit each, like a
//! streaming writer) in a temporary SQLite catalog and measures compaction against a baseline
//! measured in the same run: a full read of the same table (the read side's ceiling).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use futures::TryStreamExt;
use iceberg::spec::{NestedField, PrimitiveType, Schema, Type};
use icefall_table::catalog::parse_ident;
use icefall_table::create::TableLayout;
use icefall_table::files::TableFiles;
use icefall_table::{Catalog, CatalogConfig, LoadedTable, PendingCommit, RetryPolicy};
use serde::Serialize;

use crate::compact::{CompactOptions, compact};
use crate::{Error, Result};

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub files: usize,
    pub rows_per_file: usize,
    pub input_bytes: u64,
    pub output_files: u64,
    pub scan_seconds: f64,
    pub scan_mb_per_s: f64,
    pub compact_seconds: f64,
    pub compact_mb_per_s: f64,
    pub compact_files_per_s: f64,
    /// Compaction throughput as a share of the read-only scan of the same data.
    pub compact_to_scan_ratio: f64,
    pub peak_rss_mib: f64,
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

pub async fn bench(files: usize, rows_per_file: usize) -> Result<BenchReport> {
    let dir = std::env::temp_dir().join(format!("icefall-bench-{}", uuid::Uuid::now_v7().simple()));
    let config = CatalogConfig::embedded_in(&dir);
    let result = run(&config, files, rows_per_file).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(config: &CatalogConfig, files: usize, rows_per_file: usize) -> Result<BenchReport> {
    let catalog = Catalog::connect(config).await?;
    let ident = parse_ident("bench.events")?;
    let table = build_small_files(&catalog, &ident, files, rows_per_file).await?;
    let input_bytes: u64 = table
        .metadata
        .current_snapshot()
        .and_then(|s| s.summary().additional_properties.get("total-files-size").and_then(|v| v.parse().ok()))
        .unwrap_or(0);
    let mb = input_bytes as f64 / 1e6;

    // Baseline: read every row of the same files.
    let started = Instant::now();
    let scan = table.to_table(catalog.file_io())?.scan().select_all().build().map_err(Error::iceberg("scan"))?;
    let batches: Vec<RecordBatch> =
        scan.to_arrow().await.map_err(Error::iceberg("scan"))?.try_collect().await.map_err(Error::iceberg("scan"))?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    drop(batches);
    let scan_seconds = started.elapsed().as_secs_f64();
    if rows != files * rows_per_file {
        return Err(Error::Config(format!("bench table has {rows} rows, expected {}", files * rows_per_file)));
    }

    let started = Instant::now();
    let options = CompactOptions { min_input_files: 2, ..Default::default() };
    let report = compact(&catalog, &ident, &options).await?;
    let compact_seconds = started.elapsed().as_secs_f64();
    Ok(BenchReport {
        files,
        rows_per_file,
        input_bytes,
        output_files: report.files_out,
        scan_seconds,
        scan_mb_per_s: mb / scan_seconds,
        compact_seconds,
        compact_mb_per_s: mb / compact_seconds,
        compact_files_per_s: files as f64 / compact_seconds,
        compact_to_scan_ratio: scan_seconds / compact_seconds,
        peak_rss_mib: peak_rss_mib(),
    })
}

/// Creates `ident` and fills it with `files` small files of `rows_per_file` rows (4 columns:
/// long, timestamptz, string, double), one append commit each, as a streaming writer does.
/// The rows depend only on `files` and `rows_per_file`: two tables built alike hold the same.
pub async fn build_small_files(
    catalog: &Catalog,
    ident: &iceberg::TableIdent,
    files: usize,
    rows_per_file: usize,
) -> Result<LoadedTable> {
    let schema = Schema::builder()
        .with_fields(vec![
            NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::required(2, "ts", Type::Primitive(PrimitiveType::Timestamptz)).into(),
            NestedField::optional(3, "user", Type::Primitive(PrimitiveType::String)).into(),
            NestedField::optional(4, "amount", Type::Primitive(PrimitiveType::Double)).into(),
        ])
        .build()
        .map_err(Error::iceberg("bench schema"))?;
    let mut table = catalog
        .load_or_create(
            ident,
            &TableLayout { schema, partition: vec![], properties: HashMap::new(), sort_order: vec![] },
        )
        .await?;
    let arrow_schema = Arc::new(
        iceberg::arrow::schema_to_arrow_schema(table.metadata.current_schema())
            .map_err(Error::iceberg("arrow schema"))?,
    );
    eprintln!("bench: writing {files} files of {rows_per_file} rows");
    for f in 0..files {
        let start = (f * rows_per_file) as i64;
        let ids: Vec<i64> = (start..start + rows_per_file as i64).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(
                TimestampMicrosecondArray::from(
                    ids.iter().map(|i| 1_700_000_000_000_000 + i * 1_000).collect::<Vec<_>>(),
                )
                .with_timezone("+00:00"),
            ),
            Arc::new(StringArray::from(ids.iter().map(|i| format!("user-{}", i % 5000)).collect::<Vec<_>>())),
            Arc::new(Float64Array::from(ids.iter().map(|i| (*i % 10_000) as f64 / 100.0).collect::<Vec<_>>())),
        ];
        let batch = RecordBatch::try_new(arrow_schema.clone(), columns).map_err(|e| Error::Config(e.to_string()))?;
        let writer_files = TableFiles::new(table.name(), table.metadata.clone(), catalog.file_io().clone(), None)?;
        let mut writer = writer_files.open(format!("bench-{f:06}"))?;
        writer.write(batch).await?;
        let data = writer.close().await?;
        let pending = PendingCommit::append(data, writer_files.spec_id(), HashMap::new());
        table = catalog.commit(table, &pending, |_| Ok(HashMap::new()), &RetryPolicy::default()).await?.table;
    }
    Ok(table)
}
