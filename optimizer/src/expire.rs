//! `expire-snapshots`: remove old snapshots from metadata, then delete the files no remaining
//! snapshot reaches. Never expires the current snapshot, a snapshot a branch or tag points at,
//! the newest `retain_last` snapshots of main, or the newest snapshot holding the writer's
//! offsets (its recovery state).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use iceberg::spec::TableMetadata;
use icefall_table::offsets::{OFFSETS, main_ancestry, refs};
use icefall_table::{Catalog, Change, PendingCommit, RetryPolicy, TableIdent};

use crate::Result;
use crate::report::Report;

/// Snapshots that must stay.
fn protected(metadata: &TableMetadata, retain_last: usize) -> BTreeSet<i64> {
    let mut keep: BTreeSet<i64> = main_ancestry(metadata).take(retain_last.max(1)).map(|s| s.snapshot_id()).collect();
    keep.extend(metadata.current_snapshot_id());
    keep.extend(refs(metadata).into_values());
    if let Some(with_offsets) =
        main_ancestry(metadata).find(|s| s.summary().additional_properties.contains_key(OFFSETS))
    {
        keep.insert(with_offsets.snapshot_id());
    }
    keep
}

/// The snapshots `expire-snapshots` would remove now.
pub fn expirable(metadata: &TableMetadata, older_than: Duration, retain_last: usize) -> BTreeSet<i64> {
    let cutoff = chrono::Utc::now().timestamp_millis() - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
    let keep = protected(metadata, retain_last);
    metadata
        .snapshots()
        .filter(|s| s.timestamp_ms() < cutoff && !keep.contains(&s.snapshot_id()))
        .map(|s| s.snapshot_id())
        .collect()
}

pub async fn expire_snapshots(
    catalog: &Catalog,
    ident: &TableIdent,
    older_than: Duration,
    retain_last: usize,
    dry_run: bool,
) -> Result<Report> {
    let started = Instant::now();
    let table = catalog.load(ident).await?;
    let mut report = Report::new("expire-snapshots", &table.name(), dry_run);
    let ids = expirable(&table.metadata, older_than, retain_last);
    report.snapshots_expired = ids.len() as u64;
    if ids.is_empty() || dry_run {
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }
    let before = catalog.reachable_from(&table).await?;
    let planned = ids.clone();
    // On every base: expire only what is still expirable there (a writer may have committed).
    let check = move |metadata: &TableMetadata| {
        let keep = protected(metadata, retain_last);
        match planned.iter().find(|id| keep.contains(id)) {
            Some(id) => Err(format!("snapshot {id} became protected")),
            None => Ok(Default::default()),
        }
    };
    let pending = PendingCommit::new(Change::Expire { snapshot_ids: ids }, Default::default());
    let outcome =
        catalog.commit(table, &pending, check, &RetryPolicy { max_attempts: 100, ..Default::default() }).await?;
    report.commits = 1;
    // Delete what the landed state no longer reaches. Commits after ours only add new files or
    // reuse what ours still references, so this difference is safe to delete.
    let after = catalog.reachable_from(&outcome.table).await?;
    let doomed: Vec<&String> = before.all().filter(|f| !after.contains(f)).collect();
    eprintln!("expire-snapshots {}: deleting {} unreachable file(s)", outcome.table.name(), doomed.len());
    for path in doomed {
        match catalog.file_io().delete(path).await {
            Ok(()) => report.files_deleted += 1,
            Err(e) => report.notes.push(format!("could not delete {path}: {e}")),
        }
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}
