//! `remove-orphans`: files under the table location that no snapshot or metadata references
//! and that are older than a threshold (younger ones may belong to a commit in flight). Listing
//! goes through opendal; paths are normalised so a live file is never taken for an orphan.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

use futures::TryStreamExt;
use icefall_table::journal;
use icefall_table::storage::{location_operator, normalize_path as normalize};
use icefall_table::{Catalog, TableIdent};

use crate::report::Report;
use crate::{Error, Result};

/// Below this age a file may belong to a commit in flight.
pub const MIN_SAFE_AGE: Duration = Duration::from_secs(3600);

/// What to do with a listed file that the table references under another scheme or authority
/// (`s3://a/x` listed, `s3://b/x` referenced): as Spark's `prefix_mismatch_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrefixMismatch {
    /// Refuse the whole run, deleting nothing (the default): the table's locations need a look.
    #[default]
    Error,
    /// Keep such files: they are the referenced ones under another name.
    Ignore,
    /// Delete such files: they are distinct from the referenced ones.
    Delete,
}

#[allow(clippy::too_many_arguments)]
pub async fn remove_orphans(
    catalog: &Catalog,
    ident: &TableIdent,
    older_than: Duration,
    force: bool,
    dry_run: bool,
    prefix_mismatch: PrefixMismatch,
) -> Result<Report> {
    let started = Instant::now();
    let loaded = catalog.load(ident).await?;
    crate::expire::require_gc(&loaded.metadata, &loaded.name(), "remove-orphans")?;
    if older_than < MIN_SAFE_AGE && !force {
        return Err(Error::Refused(format!(
            "--older-than {} is below 1 hour: files of commits in flight could be deleted; pass --force if no writer or optimizer is running",
            humantime::format_duration(older_than)
        )));
    }
    // Journals first: they name crashed checkpoints' files exactly, whatever their age, and the
    // files of checkpoints that may still land, which are never orphans.
    let (mut report, settled) = settle(catalog, ident, dry_run).await?;
    let pending: BTreeSet<String> = settled.files_pending.iter().map(|p| normalize(p)).collect();
    let unreadable_journals: BTreeSet<String> = settled.journals_unreadable.iter().map(|p| normalize(p)).collect();
    let table = catalog.load(ident).await?;
    let location = table.metadata.location();
    let (op, root) = location_operator(location, &catalog.storage_properties(location))?;
    let cutoff = SystemTime::now() - older_than;
    let mut candidates = Vec::new();
    let mut lister = op.lister_with("/").recursive(true).await.map_err(Error::storage("list the table location"))?;
    while let Some(entry) = lister.try_next().await.map_err(Error::storage("list the table location"))? {
        if !entry.metadata().is_file() {
            continue;
        }
        let relative = entry.path().trim_start_matches('/').to_string();
        let path = format!("{}/{relative}", root.trim_end_matches('/'));
        if relative.starts_with(&format!("{}/", journal::DIR)) && !unreadable_journals.contains(&normalize(&path)) {
            continue; // journals are settled by their own rule, above; an unreadable one ages out
        }
        let meta = op.stat(entry.path()).await.map_err(Error::storage(format!("stat {relative}")))?;
        let old = meta.last_modified().map(SystemTime::from).is_some_and(|t| t < cutoff);
        if old {
            candidates.push(path);
        }
    }
    // Reachability is read after listing, so anything committed meanwhile counts as live.
    let table = catalog.load(ident).await?;
    let live: BTreeSet<String> = catalog.reachable_from(&table).await?.all().map(|p| normalize(p)).collect();
    let mut orphans = Vec::new();
    let mut mismatched = Vec::new();
    let live_by_path: BTreeMap<&str, &str> = live.iter().map(|p| (without_prefix(p), p.as_str())).collect();
    for path in candidates {
        if live.contains(&path) || pending.contains(&path) || is_checksum_of_live(&path, &live) {
            continue;
        }
        match live_by_path.get(without_prefix(&path)) {
            Some(referenced) if prefix_mismatch != PrefixMismatch::Delete => {
                mismatched.push(format!("{path} (referenced as {referenced})"))
            }
            _ => orphans.push(path),
        }
    }
    if !mismatched.is_empty() && prefix_mismatch == PrefixMismatch::Error {
        return Err(Error::Refused(format!(
            "remove-orphans on {}: {} listed file(s) are referenced under another scheme or authority, e.g. {}; \
             nothing was deleted. Pass --prefix-mismatch ignore to keep them or --prefix-mismatch delete to delete them",
            table.name(),
            mismatched.len(),
            mismatched[0]
        )));
    }
    report.notes.extend(mismatched.iter().map(|m| format!("kept, referenced under another prefix: {m}")));
    for path in orphans {
        report.files_in += 1;
        if dry_run {
            report.notes.push(format!("orphan: {path}"));
            continue;
        }
        let relative = path.strip_prefix(root.trim_end_matches('/')).unwrap_or(&path).to_string();
        match op.delete(&relative).await {
            Ok(()) => report.files_deleted += 1,
            Err(e) => report.notes.push(format!("could not delete {path}: {e}")),
        }
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// `remove-orphans --journals`: deletes the files of checkpoints that crashed writers journaled
/// and that will never commit (see [`icefall_table::journal`]); lists only the journal directory.
pub async fn settle_journals(catalog: &Catalog, ident: &TableIdent, dry_run: bool) -> Result<Report> {
    Ok(settle(catalog, ident, dry_run).await?.0)
}

/// Settles the journals; also returns what settling found (files of journals whose checkpoint
/// may still land, unreadable journals).
async fn settle(catalog: &Catalog, ident: &TableIdent, dry_run: bool) -> Result<(Report, journal::Settled)> {
    let started = Instant::now();
    let table = catalog.load(ident).await?;
    let mut report = Report::new("remove-orphans", &table.name(), dry_run);
    let settled = journal::settle(catalog, &table, dry_run).await?;
    report.files_in += settled.files_deleted.len() as u64;
    if dry_run {
        report.notes.extend(settled.files_deleted.iter().map(|f| format!("uncommitted (journal): {f}")));
    } else {
        report.files_deleted += settled.files_deleted.len() as u64;
    }
    if settled.journals_settled + settled.journals_pending + settled.journals_unreadable.len() > 0 {
        report.notes.push(format!(
            "checkpoint journals: {} settled, {} pending (their checkpoints may still commit), {} unreadable",
            settled.journals_settled,
            settled.journals_pending,
            settled.journals_unreadable.len()
        ));
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok((report, settled))
}

/// A path without its `scheme://authority` (the path alone for local paths).
fn without_prefix(path: &str) -> &str {
    match path.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => path,
    }
}

/// Spark writes `.<name>.crc` beside files it writes; keep those of live files.
fn is_checksum_of_live(path: &str, live: &BTreeSet<String>) -> bool {
    let Some((dir, name)) = path.rsplit_once('/') else { return false };
    match name.strip_prefix('.').and_then(|n| n.strip_suffix(".crc")) {
        Some(base) => live.contains(&format!("{dir}/{base}")),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_scheme_and_authority() {
        assert_eq!(without_prefix("s3://bucket-a/w/t/data/f.parquet"), "/w/t/data/f.parquet");
        assert_eq!(without_prefix("/w/t/data/f.parquet"), "/w/t/data/f.parquet");
        assert_eq!(without_prefix("gs://bucket"), "");
    }

    #[test]
    fn checksums_of_live_files_are_kept() {
        let live = BTreeSet::from(["/w/t/metadata/v1.metadata.json".to_string()]);
        assert!(is_checksum_of_live("/w/t/metadata/.v1.metadata.json.crc", &live));
        assert!(!is_checksum_of_live("/w/t/metadata/.v0.metadata.json.crc", &live));
    }
}
