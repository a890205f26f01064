//! `rewrite-position-deletes` (Spark's `rewrite_position_delete_files`): plan (from
//! manifests) → rewrite (a partition's small position delete files merged into one, rows
//! whose data file is gone dropped) → commit (one validated replace per partition spec).
//! The table's rows never change: every delete that applies still applies.

mod plan;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use iceberg::spec::DataFile;
use icefall_table::position_deletes::{self, Positions};
use icefall_table::reachable::delete_uncommitted;
use icefall_table::{Catalog, Change, PendingCommit, TableIdent};

pub use self::plan::{DeleteFile, DeleteGroup, DeletePlan, DeleteRewriteOptions, plan};
use crate::Result;
use crate::report::Report;

/// The command's name in reports and snapshot summaries.
pub const COMMAND: &str = "rewrite-position-deletes";

/// Delete files read at the same time.
const READ_AHEAD: usize = 8;

/// Rewrites the position delete files of one table.
pub async fn rewrite_position_deletes(
    catalog: &Catalog,
    ident: &TableIdent,
    options: &DeleteRewriteOptions,
) -> Result<Report> {
    let started = Instant::now();
    let mut table = catalog.load(ident).await?;
    let mut report = Report::new(COMMAND, &table.name(), options.dry_run);
    let plan = plan(catalog, &table, options).await?;
    report.notes.extend(plan.notes.iter().cloned());
    report.groups = plan.groups.len() as u64;
    for file in plan.groups.iter().flat_map(|g| &g.files).chain(plan.dangling.values().flatten()) {
        report.files_in += 1;
        report.bytes_in += file.bytes;
    }
    let dangling_files: usize = plan.dangling.values().map(Vec::len).sum();
    if dangling_files > 0 {
        report.notes.push(format!("{dangling_files} delete files name no live data file: removed unread"));
    }
    if options.dry_run || (plan.groups.is_empty() && plan.dangling.is_empty()) {
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }

    // Per partition spec: the delete files that go and the ones written in their place.
    let mut by_spec: BTreeMap<i32, (BTreeSet<String>, Vec<DataFile>)> = BTreeMap::new();
    for (spec_id, files) in &plan.dangling {
        by_spec.entry(*spec_id).or_default().0.extend(files.iter().map(|f| f.path.clone()));
    }
    let mut dropped_rows = 0;
    for group in &plan.groups {
        tracing::info!(table = %table.name(), files = group.files.len(), partition = %group.label,
            "merging position delete files");
        let merged = async {
            let (rows, dropped) = merge(catalog, group, &plan.live_data).await?;
            let file = match rows.is_empty() {
                true => None,
                false => Some(
                    position_deletes::write(catalog.file_io(), &table.metadata, group.spec_id, &group.partition, &rows)
                        .await?,
                ),
            };
            Ok::<_, crate::Error>((file, dropped))
        }
        .await;
        let (file, dropped) = match merged {
            Ok(merged) => merged,
            Err(e) => {
                // Nothing is committed yet: every file written so far is garbage.
                let written = by_spec.values().flat_map(|(_, added)| added.iter().map(|f| f.file_path().to_string()));
                delete_uncommitted(catalog.file_io(), written).await;
                return Err(e);
            }
        };
        dropped_rows += dropped;
        let (removed, added) = by_spec.entry(group.spec_id).or_default();
        removed.extend(group.files.iter().map(|f| f.path.clone()));
        added.extend(file);
        report.partitions.push(group.label.clone());
    }
    if dropped_rows > 0 {
        report.notes.push(format!("{dropped_rows} position deletes of data files no longer live were dropped"));
    }

    for (spec_id, (removed, added)) in by_spec {
        let written: Vec<String> = added.iter().map(|f| f.file_path().to_string()).collect();
        let (files, bytes, rows) = (
            added.len() as u64,
            added.iter().map(DataFile::file_size_in_bytes).sum::<u64>(),
            added.iter().map(DataFile::record_count).sum::<u64>(),
        );
        let change = Change::RewriteDeletes { removed, added, spec_id };
        let summary = HashMap::from([(icefall_table::contract::OPERATION.to_string(), COMMAND.to_string())]);
        let pending = PendingCommit::new(change, summary);
        match crate::commit::commit_rewrite(catalog, ident, table.clone(), &pending, written).await {
            Ok(landed) => {
                table = landed;
                report.count_commit(files, bytes, rows);
            }
            Err(e) => {
                report.groups_failed += 1;
                report.notes.push(format!("partition spec {spec_id}: {e}"));
                tracing::warn!(table = %table.name(), error = %e, "position deletes not rewritten");
            }
        }
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// The rows of a group's files that still apply: their data file is live and no newer than
/// the delete file (a newer one was never deleted from, and the merged file is newer still).
/// Returns them normalised, and how many rows were dropped.
async fn merge(catalog: &Catalog, group: &DeleteGroup, live_data: &HashMap<String, i64>) -> Result<(Positions, u64)> {
    let mut reads = futures::stream::iter(group.files.iter().map(|file| async move {
        Ok::<_, crate::Error>((file.sequence, position_deletes::read(catalog.file_io(), &file.path).await?))
    }))
    .buffered(READ_AHEAD);
    let mut merged = Positions::new();
    let mut dropped = 0;
    while let Some((sequence, rows)) = reads.try_next().await? {
        for (data_file, positions) in rows {
            if still_applies(live_data, &data_file, sequence) {
                merged.entry(data_file).or_default().extend(positions);
            } else {
                dropped += positions.len() as u64;
            }
        }
    }
    position_deletes::normalise(&mut merged);
    Ok((merged, dropped))
}

/// Whether a delete row of data file `data_file`, in a delete file of data sequence number
/// `delete_sequence`, deletes anything: the data file is live and not newer than the delete
/// file. A row that never applied must not be carried: the merged file is newer and would
/// make it apply.
fn still_applies(live_data: &HashMap<String, i64>, data_file: &str, delete_sequence: i64) -> bool {
    live_data.get(data_file).is_some_and(|data_sequence| *data_sequence <= delete_sequence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delete_row_is_kept_only_while_it_applies() {
        let live = HashMap::from([("old.parquet".to_string(), 3), ("new.parquet".to_string(), 9)]);
        assert!(still_applies(&live, "old.parquet", 5));
        assert!(still_applies(&live, "old.parquet", 3), "same commit: applies, as the spec says");
        assert!(!still_applies(&live, "new.parquet", 5), "the data file came later: it never applied");
        assert!(!still_applies(&live, "gone.parquet", 5), "its data file is no longer live");
    }
}
