//! `compact`: plan (from metadata) → rewrite (streaming, deletes applied) → commit (one
//! validated `replace` snapshot per group).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use futures::TryStreamExt;
use iceberg::scan::FileScanTask;
use icefall_table::files::TableFiles;
use icefall_table::partition_values;
use icefall_table::reachable::delete_uncommitted;
use icefall_table::{Catalog, Change, Error as TableError, LoadedTable, PendingCommit, RetryPolicy, TableIdent};

use crate::report::Report;
use crate::sort::{RUN_ROWS, Sorter};
use crate::{Error, Result};
use arrow_array::RecordBatch;

const DEFAULT_TARGET: u64 = 512 * 1024 * 1024;

/// Settings of one compaction run.
#[derive(Debug, Clone, Default)]
pub struct CompactOptions {
    pub target_file_size_bytes: Option<u64>,
    pub min_file_size_bytes: Option<u64>,
    pub min_input_files: usize,
    /// Only partitions whose path (`ts_day=2026-11-01/id_bucket=3`) contains this text.
    pub partition_filter: Option<String>,
    pub max_bytes: Option<u64>,
    pub max_groups: Option<usize>,
    pub dry_run: bool,
}

/// Files of one partition rewritten together.
#[derive(Debug, Clone)]
pub struct Group {
    pub partition: String,
    pub tasks: Vec<FileScanTask>,
    pub bytes: u64,
    /// Delete files that apply only to this group's data files: dropped with them.
    pub dangling_deletes: BTreeSet<String>,
}

/// What to rewrite, read from the current snapshot's manifests.
#[derive(Debug, Default)]
pub struct Plan {
    pub groups: Vec<Group>,
    pub sequence_number: i64,
    pub notes: Vec<String>,
}

fn target_size(table: &LoadedTable, options: &CompactOptions) -> u64 {
    options
        .target_file_size_bytes
        .or_else(|| table.metadata.properties().get("write.target-file-size-bytes").and_then(|v| v.parse().ok()))
        .unwrap_or(DEFAULT_TARGET)
}

/// Plans from table metadata only: manifests, partition values, sizes, attached delete files.
pub async fn plan(catalog: &Catalog, table: &LoadedTable, options: &CompactOptions) -> Result<Plan> {
    let Some(snapshot) = table.metadata.current_snapshot() else {
        return Ok(Plan::default());
    };
    let target = target_size(table, options);
    let min_size = options.min_file_size_bytes.unwrap_or(target / 4 * 3);
    let scan_table = table.to_table(catalog.file_io())?;
    let scan = scan_table.scan().select_all().build().map_err(Error::iceberg("plan the scan"))?;
    let tasks: Vec<FileScanTask> = scan
        .plan_files()
        .await
        .map_err(Error::iceberg("plan files"))?
        .try_collect()
        .await
        .map_err(Error::iceberg("plan files"))?;
    // iceberg-rust fills a task's partition values but not its spec: files are grouped by their
    // values and the output is partitioned by the default spec (the writer always uses it).
    let spec = table.metadata.default_partition_spec().clone();
    let schema = table.metadata.current_schema().clone();
    // Files of other specs, or from before a partition source was widened, have tuples of
    // other types: rendered only when they fit (promoted), else grouped by their raw values.
    let partition_type = spec.partition_type(&schema).ok();

    // Which data files each delete file applies to, over the whole table.
    let mut delete_targets: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut by_partition: BTreeMap<String, Vec<FileScanTask>> = BTreeMap::new();
    let notes = Vec::new();
    for task in tasks {
        for delete in &task.deletes {
            delete_targets.entry(delete.file_path.clone()).or_default().insert(task.data_file_path.clone());
        }
        let path = match (&task.partition, &partition_type) {
            (Some(values), Some(ty)) if !spec.is_unpartitioned() && partition_values::fits(values, ty) => {
                spec.partition_to_path(&partition_values::promote(values, ty), schema.clone())
            }
            (Some(values), _) if !values.fields().is_empty() => format!("{values:?}"),
            _ => String::new(),
        };
        by_partition.entry(path).or_default().push(task);
    }

    let mut groups = Vec::new();
    for (partition, tasks) in by_partition {
        if let Some(filter) = &options.partition_filter
            && !partition.contains(filter.as_str())
        {
            continue;
        }
        let mut candidates: Vec<FileScanTask> =
            tasks.into_iter().filter(|t| t.file_size_in_bytes < min_size || !t.deletes.is_empty()).collect();
        let has_deletes = candidates.iter().any(|t| !t.deletes.is_empty());
        if candidates.len() < options.min_input_files && !has_deletes {
            continue;
        }
        // First-fit decreasing into groups of at most `target` bytes.
        candidates.sort_by_key(|t| std::cmp::Reverse(t.file_size_in_bytes));
        let mut bins: Vec<(u64, Vec<FileScanTask>)> = Vec::new();
        for task in candidates {
            let size = task.file_size_in_bytes;
            match bins.iter_mut().find(|(used, _)| used + size <= target) {
                Some((used, members)) => {
                    *used += size;
                    members.push(task);
                }
                None => bins.push((size, vec![task])),
            }
        }
        for (bytes, tasks) in bins {
            let with_deletes = tasks.iter().any(|t| !t.deletes.is_empty());
            if tasks.len() < 2 && !with_deletes {
                continue; // rewriting one clean file gains nothing
            }
            let members: BTreeSet<&str> = tasks.iter().map(|t| t.data_file_path.as_str()).collect();
            let dangling = tasks
                .iter()
                .flat_map(|t| t.deletes.iter().map(|d| d.file_path.clone()))
                .filter(|d| {
                    delete_targets.get(d).is_some_and(|targets| targets.iter().all(|t| members.contains(t.as_str())))
                })
                .collect();
            groups.push(Group { partition: partition.clone(), tasks, bytes, dangling_deletes: dangling });
        }
    }
    // Bound one run.
    let mut budget = options.max_bytes.unwrap_or(u64::MAX);
    groups.retain(|g| {
        if g.bytes > budget {
            return false;
        }
        budget -= g.bytes;
        true
    });
    if let Some(max) = options.max_groups {
        groups.truncate(max);
    }
    Ok(Plan { groups, sequence_number: snapshot.sequence_number(), notes })
}

/// Compacts one table. A failed group loses only itself: its files are deleted and the next
/// group goes on.
pub async fn compact(catalog: &Catalog, ident: &TableIdent, options: &CompactOptions) -> Result<Report> {
    let started = Instant::now();
    let table = catalog.load(ident).await?;
    let mut report = Report::new("compact", &table.name(), options.dry_run);
    let plan = plan(catalog, &table, options).await?;
    report.notes.extend(plan.notes.iter().cloned());
    let total = plan.groups.len();
    for (i, group) in plan.groups.iter().enumerate() {
        report.groups += 1;
        report.files_in += group.tasks.len() as u64;
        report.bytes_in += group.bytes;
        if options.dry_run {
            continue;
        }
        eprintln!(
            "compact {}: group {}/{total} ({} files, {} bytes) {}",
            table.name(),
            i + 1,
            group.tasks.len(),
            group.bytes,
            group.partition
        );
        match rewrite_and_commit(catalog, ident, group, plan.sequence_number, target_size(&table, options)).await {
            Ok((files, bytes, rows)) => {
                report.files_out += files;
                report.bytes_out += bytes;
                report.rows += rows;
                report.commits += 1;
            }
            Err(e) => {
                report.groups_failed += 1;
                report.notes.push(format!("group {} ({}): {e}", i + 1, group.partition));
                tracing::warn!(table = %table.name(), partition = %group.partition, error = %e, "group not compacted");
            }
        }
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

async fn rewrite_and_commit(
    catalog: &Catalog,
    ident: &TableIdent,
    group: &Group,
    planned_sequence_number: i64,
    target: u64,
) -> Result<(u64, u64, u64)> {
    // Reload: the table may have moved on since planning; the rewrite reads files by path.
    let table = catalog.load(ident).await?;
    let scan_table = table.to_table(catalog.file_io())?;
    // Read into the current schema: a scan task carries its snapshot's schema, which misses
    // what changed since (a widened column, one added) and would not match the files written.
    let current = table.metadata.current_schema().clone();
    let columns: Vec<i32> = current.as_struct().fields().iter().map(|f| f.id).collect();
    let tasks = group.tasks.iter().cloned().map(|mut task| {
        task.schema = current.clone();
        task.project_field_ids = columns.clone();
        task
    });
    let mut batches = icefall_table::read::read_tasks(&scan_table, tasks.collect());
    let mut files = TableFiles::new(table.name(), table.metadata.clone(), catalog.file_io().clone(), Some(target))?;
    let sorter = Sorter::new(&table.metadata, &files.arrow_schema()?);
    // Each output file is a slice of one sorted run only when the group fits in one run and
    // every sort field was applied: only then do the files say they follow the sort order.
    let group_rows: u64 = group.tasks.iter().filter_map(|t| t.record_count).sum();
    if sorter.as_ref().is_some_and(|s| s.complete) && group_rows <= RUN_ROWS as u64 {
        files = files.sorted_by(i32::try_from(table.metadata.default_sort_order_id()).unwrap_or_default());
    }
    let prefix = format!("compact-{}", uuid::Uuid::now_v7());
    let mut writer = files.open(prefix)?;
    let written = async {
        let mut run: Vec<RecordBatch> = Vec::new();
        let mut run_rows = 0;
        while let Some(batch) = batches.try_next().await? {
            match &sorter {
                None => writer.write(batch).await?,
                Some(sorter) => {
                    run_rows += batch.num_rows();
                    run.push(batch);
                    if run_rows >= RUN_ROWS {
                        writer.write(sorter.sort(&std::mem::take(&mut run))?).await?;
                        run_rows = 0;
                    }
                }
            }
        }
        if let (Some(sorter), false) = (&sorter, run.is_empty()) {
            writer.write(sorter.sort(&run)?).await?;
        }
        let rows = writer.rows();
        Ok::<_, Error>((writer.close().await?, rows))
    }
    .await;
    let (added, rows) = written?;
    let bytes: u64 = added.iter().map(|f| f.file_size_in_bytes()).sum();
    let count = added.len() as u64;
    let change = Change::Replace {
        removed_data_files: group.tasks.iter().map(|t| t.data_file_path.clone()).collect(),
        removed_delete_files: group.dangling_deletes.clone(),
        added: added.clone(),
        spec_id: files.spec_id(),
        planned_sequence_number,
    };
    let pending = PendingCommit::new(
        change,
        HashMap::from([(icefall_table::contract::OPERATION.to_string(), "compact".to_string())]),
    );
    let result = catalog.commit(table, &pending, |_| Ok(HashMap::new()), &RetryPolicy::maintenance()).await;
    match result {
        Ok(_) => Ok((count, bytes, rows)),
        Err(e) => {
            // A rejected commit never landed: its files go now. After an unknown outcome the
            // commit may have landed, so only files no snapshot references go (none if the
            // table cannot be read: orphan removal decides later).
            let paths: Vec<String> = added.iter().map(|f| f.file_path().to_string()).collect();
            match &e {
                TableError::Rejected { .. } | TableError::ConflictRetriesExhausted { .. } => {
                    delete_uncommitted(catalog.file_io(), paths).await;
                }
                _ => {
                    if let Err(check) = catalog.delete_unreferenced(ident, &paths).await {
                        tracing::warn!(error = %check, "cannot tell whether the rewrite landed; its files stay for remove-orphans");
                    }
                }
            }
            Err(e.into())
        }
    }
}
