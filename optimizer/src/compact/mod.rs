//! `compact`: plan (from metadata) → rewrite (streaming, deletes applied) → commit (one
//! validated `replace` snapshot per group).

use std::collections::HashMap;
use std::time::Instant;

use futures::TryStreamExt;
use icefall_table::files::TableFiles;
use icefall_table::{Catalog, Change, PendingCommit, TableIdent};

use crate::report::Report;
use crate::sort::{RUN_ROWS, Sorter};
use crate::{Error, Result};
use arrow_array::RecordBatch;

mod filter;
mod plan;
mod shard;
mod strategy;

use plan::target_size;
pub use plan::{CompactOptions, Group, Plan, plan};
pub(crate) use plan::{pack, within_budget};
pub use shard::Shard;
pub use strategy::Strategy;

/// A group's index in the plan and what its rewrite gave: (files, bytes, rows) written.
type GroupOutcome = (usize, Result<(u64, u64, u64)>);

/// Compacts one table. A failed group loses only itself: its files are deleted and the next
/// group goes on.
pub async fn compact(catalog: &Catalog, ident: &TableIdent, options: &CompactOptions) -> Result<Report> {
    let started = Instant::now();
    let table = catalog.load(ident).await?;
    let mut report = Report::new("compact", &table.name(), options.dry_run);
    let plan = plan(catalog, &table, options).await?;
    report.notes.extend(plan.notes.iter().cloned());
    if plan.strategy != Strategy::BinPack {
        report.notes.push(plan.strategy.human());
    }
    let total = plan.groups.len();
    let target = target_size(&table, options);
    // Groups rewrite side by side up to the limit (each commits on its own; concurrent
    // commits of disjoint groups rebase on each other like any other).
    let limit = options.max_concurrent_group_rewrites.max(1);
    let mut running = tokio::task::JoinSet::new();
    let mut outcomes = Vec::new();
    for (i, group) in plan.groups.iter().enumerate() {
        report.groups += 1;
        report.files_in += group.tasks.len() as u64;
        report.bytes_in += group.bytes;
        if options.dry_run {
            continue;
        }
        while running.len() >= limit {
            outcomes.extend(running.join_next().await);
        }
        tracing::info!(table = %table.name(), group = i + 1, groups = total, files = group.tasks.len(),
            bytes = group.bytes, partition = %group.partition, "compacting a group");
        let (catalog, ident, group, sequence_number, strategy) =
            (catalog.clone(), ident.clone(), group.clone(), plan.sequence_number, plan.strategy.clone());
        running.spawn(async move {
            let result = rewrite_and_commit(&catalog, &ident, &group, sequence_number, target, &strategy).await;
            (i, result)
        });
    }
    while let Some(outcome) = running.join_next().await {
        outcomes.push(outcome);
    }
    let mut outcomes: Vec<GroupOutcome> = outcomes
        .into_iter()
        .map(|joined| {
            joined.unwrap_or_else(|e| (usize::MAX, Err(Error::Refused(format!("a group's task failed: {e}")))))
        })
        .collect();
    outcomes.sort_by_key(|(i, _)| *i);
    for (i, result) in outcomes {
        let partition = plan.groups.get(i).map_or("?", |g| g.partition.as_str());
        match result {
            Ok((files, bytes, rows)) => {
                report.partitions.push(partition.to_string());
                report.count_commit(files, bytes, rows);
            }
            Err(e) => {
                report.groups_failed += 1;
                report.failed_files += plan.groups.get(i).map_or(0, |g| g.tasks.len() as u64);
                report.notes.push(format!("group {} ({partition}): {e}", i.saturating_add(1)));
                tracing::warn!(table = %table.name(), partition = %partition, error = %e, "group not compacted");
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
    strategy: &Strategy,
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
    let sorter = match strategy {
        Strategy::ZOrder(columns) => Some(Sorter::zorder(&files.arrow_schema()?, columns)?),
        Strategy::BinPack => Sorter::new(&table.metadata, &files.arrow_schema()?),
    };
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
    let written = added.iter().map(|f| f.file_path().to_string()).collect();
    crate::commit::commit_rewrite(catalog, ident, table, &pending, written).await?;
    Ok((count, bytes, rows))
}
