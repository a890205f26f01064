//! Planning a compaction from metadata only: the current snapshot's files grouped by
//! partition, small files (and files with deletes) bin-packed into groups of about the target
//! size, bounded per run.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::TryStreamExt;
use iceberg::scan::FileScanTask;
use icefall_table::partition_values;
use icefall_table::{Catalog, LoadedTable};

use crate::{Error, Result};

const DEFAULT_TARGET: u64 = 512 * 1024 * 1024;

/// Settings of one compaction run.
#[derive(Debug, Clone, Default)]
pub struct CompactOptions {
    pub target_file_size_bytes: Option<u64>,
    pub min_file_size_bytes: Option<u64>,
    pub min_input_files: usize,
    /// Only partitions this predicate selects (`day(ts) < '2026-11-01'`, see [`super::filter`]).
    pub partition_filter: Option<String>,
    pub max_bytes: Option<u64>,
    pub max_groups: Option<usize>,
    /// Groups rewritten at the same time (Spark's `max-concurrent-file-group-rewrites`); 0 or 1:
    /// one after the other.
    pub max_concurrent_group_rewrites: usize,
    /// Only the partitions of this shard (`--shard I/N`).
    pub shard: Option<super::Shard>,
    /// How rows are ordered; `None`: the table's default ([`super::Strategy::for_table`]).
    pub strategy: Option<super::Strategy>,
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
    /// The strategy in force.
    pub strategy: super::Strategy,
    pub sequence_number: i64,
    pub notes: Vec<String>,
}

pub(super) fn target_size(table: &LoadedTable, options: &CompactOptions) -> u64 {
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
    let strategy = super::Strategy::for_table(options.strategy.as_ref(), &table.metadata)?;
    // Z-order rewrites a partition's files together: its output files split one sequence.
    let group_bytes = match strategy {
        super::Strategy::ZOrder(_) => super::strategy::ZORDER_GROUP_BYTES.max(target),
        super::Strategy::BinPack => target,
    };
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
    let filter = match &options.partition_filter {
        Some(text) => Some(
            super::filter::PartitionFilter::parse(text)
                .and_then(|f| f.bind(&spec, &schema))
                .map_err(|e| Error::Config(format!("{e} ({})", table.name())))?,
        ),
        None => None,
    };

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
                let values = partition_values::promote(values, ty);
                if filter.as_ref().is_some_and(|f| !f.matches(&values)) {
                    continue;
                }
                spec.partition_to_path(&values, schema.clone())
            }
            // Files of another spec: a predicate on the default spec cannot select them.
            _ if filter.is_some() => continue,
            (Some(values), _) if !values.fields().is_empty() => format!("{values:?}"),
            _ => String::new(),
        };
        by_partition.entry(path).or_default().push(task);
    }

    let mut groups = Vec::new();
    for (partition, tasks) in by_partition {
        if options.shard.is_some_and(|shard| !shard.owns(&partition)) {
            continue;
        }
        let candidates: Vec<FileScanTask> =
            tasks.into_iter().filter(|t| t.file_size_in_bytes < min_size || !t.deletes.is_empty()).collect();
        let has_deletes = candidates.iter().any(|t| !t.deletes.is_empty());
        if candidates.len() < options.min_input_files && !has_deletes {
            continue;
        }
        for (bytes, tasks) in pack(candidates, |t| t.file_size_in_bytes, group_bytes) {
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
    let groups = within_budget(groups, |g| g.bytes, options.max_bytes, options.max_groups);
    Ok(Plan { groups, strategy, sequence_number: snapshot.sequence_number(), notes })
}

/// First-fit decreasing: `items` into bins of at most `target` bytes (an item larger than
/// `target` gets a bin of its own), each bin with its total size, largest items first.
pub(crate) fn pack<T>(mut items: Vec<T>, size: impl Fn(&T) -> u64, target: u64) -> Vec<(u64, Vec<T>)> {
    items.sort_by_key(|item| std::cmp::Reverse(size(item)));
    let mut bins: Vec<(u64, Vec<T>)> = Vec::new();
    for item in items {
        let bytes = size(&item);
        match bins.iter_mut().find(|(used, _)| used + bytes <= target) {
            Some((used, members)) => {
                *used += bytes;
                members.push(item);
            }
            None => bins.push((bytes, vec![item])),
        }
    }
    bins
}

/// The groups one run rewrites: in plan order, skipping any that would take the run past
/// `max_bytes`, at most `max_groups`.
pub(crate) fn within_budget<T>(
    groups: Vec<T>,
    size: impl Fn(&T) -> u64,
    max_bytes: Option<u64>,
    max_groups: Option<usize>,
) -> Vec<T> {
    let mut budget = max_bytes.unwrap_or(u64::MAX);
    let mut kept: Vec<T> = groups
        .into_iter()
        .filter(|g| {
            let bytes = size(g);
            if bytes > budget {
                return false;
            }
            budget -= bytes;
            true
        })
        .collect();
    if let Some(max) = max_groups {
        kept.truncate(max);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_packed_first_fit_decreasing_up_to_the_target() {
        let bins = pack(vec![10, 70, 30, 60, 20, 90, 150], |s| *s, 100);
        let shown: Vec<(u64, Vec<u64>)> = bins.into_iter().collect();
        assert_eq!(
            shown,
            vec![(150, vec![150]), (100, vec![90, 10]), (100, vec![70, 30]), (80, vec![60, 20])],
            "an oversized file stands alone; every other bin stays within the target"
        );
        assert!(pack(Vec::<u64>::new(), |s| *s, 100).is_empty());
    }

    #[test]
    fn one_run_stays_within_its_byte_and_group_budget() {
        let groups = vec![40, 80, 30, 20, 10];
        assert_eq!(within_budget(groups.clone(), |g| *g, Some(100), None), vec![40, 30, 20, 10]);
        assert_eq!(within_budget(groups.clone(), |g| *g, Some(100), Some(2)), vec![40, 30]);
        assert_eq!(within_budget(groups.clone(), |g| *g, None, None), groups);
    }
}
