//! `stats`: column NDV for query planners (Spark's `compute_table_stats`): plan (which
//! columns; full, or incremental from the last statistics file) → read (only the files
//! appended since, when it can) → sketch (theta, per column) → write one Puffin statistics
//! file → commit it as the current snapshot's `statistics` entry.

mod basis;
mod puffin;
mod sketch;

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use futures::TryStreamExt;
use iceberg::scan::FileScanTask;
use icefall_table::{Catalog, Change, PendingCommit, TableIdent};

pub use self::basis::{Basis, StatsColumn};
use self::puffin::ColumnBlob;
pub use self::puffin::NDV_PROPERTY;
use self::sketch::ColumnSketch;
use crate::report::Report;
use crate::{Error, Result};

/// The command's name in reports.
pub const COMMAND: &str = "stats";

/// Settings of one statistics run.
#[derive(Debug, Clone, Default)]
pub struct StatsOptions {
    /// Columns to sketch; default the table property, else every suitable column.
    pub columns: Option<Vec<String>>,
    /// Read every file even when the last statistics could be carried forward.
    pub full: bool,
    /// Skip (with a note) a full computation that would read more than this (`run`'s guard).
    pub max_full_bytes: Option<u64>,
    pub dry_run: bool,
}

/// Computes and registers the NDV statistics of one table's current snapshot.
pub async fn compute_stats(catalog: &Catalog, ident: &TableIdent, options: &StatsOptions) -> Result<Report> {
    let started = Instant::now();
    let table = catalog.load(ident).await?;
    let mut report = Report::new(COMMAND, &table.name(), options.dry_run);
    let Some(snapshot) = table.metadata.current_snapshot().cloned() else {
        report.notes.push("the table has no snapshot: nothing to compute".into());
        return Ok(report);
    };
    let named = basis::named_columns(options.columns.as_deref(), &table.metadata);
    // Value sizes decide the default columns only: named ones need no manifest read.
    let average = match named {
        Some(_) => HashMap::new(),
        None => basis::average_value_bytes(catalog, &table).await?,
    };
    let schema = table.metadata.current_schema().clone();
    let (columns, notes) = basis::columns(&schema, named, &average)?;
    report.notes.extend(notes);
    if columns.is_empty() {
        report.notes.push("no column to compute statistics of".into());
        return Ok(report);
    }
    let mut basis = match options.full {
        true => Basis::Full { why: "--full".into() },
        false => basis::basis(catalog, &table, &columns).await?,
    };
    if matches!(basis, Basis::UpToDate) {
        report.notes.push(format!("snapshot {} already has these statistics", snapshot.snapshot_id()));
        return Ok(report);
    }

    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let scan_table = table.to_table(catalog.file_io())?;
    let scan = scan_table.scan().select(names.clone()).build().map_err(Error::iceberg("plan the statistics scan"))?;
    let mut tasks: Vec<FileScanTask> = scan
        .plan_files()
        .await
        .map_err(Error::iceberg("plan the statistics scan"))?
        .try_collect()
        .await
        .map_err(Error::iceberg("plan the statistics scan"))?;
    if let Basis::Incremental { added, .. } = &basis {
        let live: BTreeSet<&str> = tasks.iter().map(|t| t.data_file_path.as_str()).collect();
        if added.iter().all(|path| live.contains(path.as_str())) {
            tasks.retain(|t| added.contains(&t.data_file_path));
        } else {
            basis = Basis::Full { why: "files appended since the last statistics were rewritten".into() };
        }
    }
    let previous = match &basis {
        Basis::Incremental { previous, .. } => {
            report.notes.push(format!(
                "incremental: {} files appended since snapshot {}",
                tasks.len(),
                previous.snapshot_id
            ));
            Some(puffin::read_sketches(catalog.file_io(), previous).await?)
        }
        Basis::Full { why } => {
            report.notes.push(format!("full: {why}"));
            None
        }
        Basis::UpToDate => None,
    };
    report.files_in = tasks.len() as u64;
    report.bytes_in = tasks.iter().map(|t| t.file_size_in_bytes).sum();
    if let (Basis::Full { .. }, Some(limit)) = (&basis, options.max_full_bytes)
        && report.bytes_in > limit
    {
        report.notes.push(format!(
            "skipped: a full computation would read {} bytes, over stats.max_full_bytes ({limit}); run \
             `icefall-optimizer --table {} stats --full` once, later runs read only what is appended",
            report.bytes_in,
            table.name()
        ));
        report.files_in = 0;
        report.bytes_in = 0;
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }
    if options.dry_run {
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }

    let mut sketches: Vec<ColumnSketch> = columns.iter().map(|c| ColumnSketch::new(&c.ty)).collect::<Result<_>>()?;
    let mut batches = icefall_table::read::read_tasks(&scan_table, tasks);
    while let Some(batch) = batches.try_next().await? {
        report.rows += batch.num_rows() as u64;
        for (column, sketch) in columns.iter().zip(&mut sketches) {
            let array = batch.column_by_name(&column.name).ok_or_else(|| {
                Error::Statistics(format!("the scan returned no column {} ({})", column.name, table.name()))
            })?;
            sketch.add(array)?;
        }
    }
    let mut blobs = Vec::new();
    for (column, sketch) in columns.iter().zip(&sketches) {
        let earlier = previous.as_ref().and_then(|p| p.get(&column.field_id));
        let sketch = sketch.finish(earlier)?;
        report.notes.push(format!("{} ndv {}", column.name, sketch.estimate().round() as i64));
        blobs.push(ColumnBlob { field_id: column.field_id, sketch });
    }
    let path = format!(
        "{}/{}-{}.stats",
        icefall_table::locations::metadata_dir(&table.metadata),
        snapshot.snapshot_id(),
        uuid::Uuid::now_v7()
    );
    let statistics =
        puffin::write(catalog.file_io(), &path, snapshot.snapshot_id(), snapshot.sequence_number(), &blobs).await?;
    report.files_out = 1;
    report.bytes_out = statistics.file_size_in_bytes as u64;
    report.statistics_file = Some(path.clone());
    let pending = PendingCommit::new(Change::SetStatistics { statistics: Box::new(statistics) }, HashMap::new());
    crate::commit::commit_rewrite(catalog, ident, table, &pending, vec![path]).await?;
    report.commits = 1;
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}
