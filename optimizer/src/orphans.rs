//! `remove-orphans`: files under the table location that no snapshot or metadata references
//! and that are older than a threshold (younger ones may belong to a commit in flight). Listing
//! goes through opendal; paths are normalised so a live file is never taken for an orphan.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use futures::TryStreamExt;
use icefall_table::{Catalog, CatalogConfig, TableIdent};
use opendal::{Operator, services};

use crate::report::Report;
use crate::{Error, Result};

/// Below this age a file may belong to a commit in flight.
pub const MIN_SAFE_AGE: Duration = Duration::from_secs(3600);

/// One spelling per file: `file:/x`, `file:///x` and `/x` are `/x`; `s3a://`/`s3n://` are `s3://`.
pub fn normalize(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("file:") {
        return format!("/{}", rest.trim_start_matches('/'));
    }
    for scheme in ["s3a://", "s3n://"] {
        if let Some(rest) = path.strip_prefix(scheme) {
            return format!("s3://{rest}");
        }
    }
    path.to_string()
}

/// An operator rooted at the table location, and how to turn its relative paths back into
/// normalised absolute ones.
fn operator(location: &str, catalog: &CatalogConfig) -> Result<(Operator, String)> {
    let normalized = normalize(location);
    if let Some(rest) = normalized.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let props = &catalog.storage;
        let mut builder = services::S3::default().bucket(bucket).root(&format!("/{prefix}"));
        if let Some(v) = props.get("s3.endpoint") {
            builder = builder.endpoint(v);
        }
        builder = builder.region(props.get("s3.region").map_or("us-east-1", String::as_str));
        if let Some(v) = props.get("s3.access-key-id") {
            builder = builder.access_key_id(v);
        }
        if let Some(v) = props.get("s3.secret-access-key") {
            builder = builder.secret_access_key(v);
        }
        let op = Operator::new(builder).map_err(Error::storage("configure S3 listing"))?.finish();
        return Ok((op, format!("s3://{bucket}/{prefix}")));
    }
    if normalized.starts_with('/') {
        let op = Operator::new(services::Fs::default().root(&normalized))
            .map_err(Error::storage("configure listing"))?
            .finish();
        return Ok((op, normalized));
    }
    Err(Error::Config(format!("cannot list table location {location}: only local paths and s3:// are supported")))
}

pub async fn remove_orphans(
    catalog: &Catalog,
    config: &CatalogConfig,
    ident: &TableIdent,
    older_than: Duration,
    force: bool,
    dry_run: bool,
) -> Result<Report> {
    let started = Instant::now();
    if older_than < MIN_SAFE_AGE && !force {
        return Err(Error::Refused(format!(
            "--older-than {} is below 1 hour: files of commits in flight could be deleted; pass --force if no writer or optimizer is running",
            humantime::format_duration(older_than)
        )));
    }
    let table = catalog.load(ident).await?;
    let mut report = Report::new("remove-orphans", &table.name(), dry_run);
    let (op, root) = operator(table.metadata.location(), config)?;
    let cutoff = SystemTime::now() - older_than;
    let mut candidates = Vec::new();
    let mut lister = op.lister_with("/").recursive(true).await.map_err(Error::storage("list the table location"))?;
    while let Some(entry) = lister.try_next().await.map_err(Error::storage("list the table location"))? {
        if !entry.metadata().is_file() {
            continue;
        }
        let relative = entry.path().trim_start_matches('/').to_string();
        let meta = op.stat(entry.path()).await.map_err(Error::storage(format!("stat {relative}")))?;
        let old = meta.last_modified().map(SystemTime::from).is_some_and(|t| t < cutoff);
        if old {
            candidates.push(format!("{}/{relative}", root.trim_end_matches('/')));
        }
    }
    // Reachability is read after listing, so anything committed meanwhile counts as live.
    let table = catalog.load(ident).await?;
    let live: BTreeSet<String> = catalog.reachable_from(&table).await?.all().map(|p| normalize(p)).collect();
    for path in candidates {
        if live.contains(&path) || is_checksum_of_live(&path, &live) {
            continue;
        }
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
    fn every_spelling_of_a_path_is_one() {
        assert_eq!(normalize("file:/w/t/data/a.parquet"), "/w/t/data/a.parquet");
        assert_eq!(normalize("file:///w/t/data/a.parquet"), "/w/t/data/a.parquet");
        assert_eq!(normalize("/w/t/data/a.parquet"), "/w/t/data/a.parquet");
        assert_eq!(normalize("s3a://b/t/a.parquet"), "s3://b/t/a.parquet");
        assert_eq!(normalize("s3://b/t/a.parquet"), "s3://b/t/a.parquet");
    }

    #[test]
    fn checksums_of_live_files_are_kept() {
        let live = BTreeSet::from(["/w/t/metadata/v1.metadata.json".to_string()]);
        assert!(is_checksum_of_live("/w/t/metadata/.v1.metadata.json.crc", &live));
        assert!(!is_checksum_of_live("/w/t/metadata/.v0.metadata.json.crc", &live));
    }
}
