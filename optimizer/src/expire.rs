//! `expire-snapshots`: remove old snapshots and refs from metadata by the spec's retention rules
//! ([`crate::retention`]: per ref, then the table's `history.expire.*`, then our flags), then
//! delete the files no remaining snapshot reaches. Refused on a table with `gc.enabled=false`:
//! its files may belong to another table.

use std::time::{Duration, Instant};

use iceberg::spec::TableMetadata;
use icefall_table::{Catalog, Change, PendingCommit, RetryPolicy, TableIdent};

use crate::report::Report;
use crate::retention::{self, Expiry, Retention};
use crate::{Error, Result};

/// `gc.enabled` (true unless set to false): whether files this table no longer references may
/// be deleted. Tables made by `migrate`/`snapshot` set it false, as their files are another
/// table's too.
pub fn gc_enabled(metadata: &TableMetadata) -> bool {
    !metadata.properties().get("gc.enabled").is_some_and(|v| v.trim().eq_ignore_ascii_case("false"))
}

/// Refuses a command that deletes files on a table whose files must not be deleted.
pub fn require_gc(metadata: &TableMetadata, table: &str, command: &str) -> Result<()> {
    if gc_enabled(metadata) {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "{command} on {table}: the table property gc.enabled is false (its files may belong to another table, \
         e.g. one it was migrated or snapshotted from); set gc.enabled=true only if this table owns its files"
    )))
}

/// What `expire-snapshots` would remove now, with `older_than` and `retain_last` as the
/// defaults of what the table does not set.
pub fn expirable(metadata: &TableMetadata, older_than: Duration, retain_last: usize) -> Result<Expiry> {
    let defaults = Retention { max_snapshot_age: older_than, min_snapshots_to_keep: retain_last, max_ref_age: None };
    let retention = Retention::for_table(metadata, defaults).map_err(Error::Refused)?;
    Ok(retention::plan(metadata, retention, chrono::Utc::now().timestamp_millis()))
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
    require_gc(&table.metadata, &table.name(), "expire-snapshots")?;
    let mut report = Report::new("expire-snapshots", &table.name(), dry_run);
    let expiry = expirable(&table.metadata, older_than, retain_last)?;
    report.snapshots_expired = expiry.snapshot_ids.len() as u64;
    if !expiry.refs.is_empty() {
        report.notes.push(format!(
            "refs past their max-ref-age: {}",
            expiry.refs.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if (expiry.snapshot_ids.is_empty() && expiry.refs.is_empty()) || dry_run {
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }
    let before = catalog.reachable_from(&table).await?;
    let planned = expiry.clone();
    // On every base: expire only what is still expirable there (a writer may have committed).
    let check = move |metadata: &TableMetadata| {
        let now = expirable(metadata, older_than, retain_last).map_err(|e| e.to_string())?;
        match planned.snapshot_ids.iter().find(|id| !now.snapshot_ids.contains(id)) {
            Some(id) => Err(format!("snapshot {id} became protected")),
            None => Ok(Default::default()),
        }
    };
    let change = Change::Expire { snapshot_ids: expiry.snapshot_ids, refs: expiry.refs };
    let pending = PendingCommit::new(change, Default::default());
    let outcome = catalog.commit(table, &pending, check, &RetryPolicy::maintenance()).await?;
    report.commits = 1;
    // Delete what the landed state no longer reaches. Commits after ours only add new files or
    // reuse what ours still references, so this difference is safe to delete.
    let after = catalog.reachable_from(&outcome.table).await?;
    let doomed: Vec<&String> = before.all().filter(|f| !after.contains(f)).collect();
    tracing::info!(table = %outcome.table.name(), files = doomed.len(), "expire-snapshots: deleting unreachable files");
    for path in doomed {
        match catalog.file_io().delete(path).await {
            Ok(()) => {
                report.files_deleted += 1;
                let kind = if before.content_files.contains(path) {
                    "deleted_data_files_count"
                } else if before.manifests.contains(path) {
                    "deleted_manifest_files_count"
                } else if before.manifest_lists.contains(path) {
                    "deleted_manifest_lists_count"
                } else {
                    "deleted_metadata_files_count"
                };
                *report.deleted_by_kind.entry(kind.to_string()).or_default() += 1;
            }
            Err(e) => report.notes.push(format!("could not delete {path}: {e}")),
        }
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}
