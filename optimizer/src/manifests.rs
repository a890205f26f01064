//! `rewrite-manifests`: streaming appends add one manifest per commit; merge the small ones
//! into manifests of about the target size, clustered by partition.

use std::collections::BTreeSet;
use std::time::Instant;

use iceberg::spec::ManifestContentType;
use icefall_table::retry::Replan;
use icefall_table::{Catalog, Change, PendingCommit, RetryPolicy, TableIdent};

use crate::Result;
use crate::report::Report;

const DEFAULT_TARGET: u64 = 8 * 1024 * 1024;

pub async fn rewrite_manifests(
    catalog: &Catalog,
    ident: &TableIdent,
    target: Option<u64>,
    dry_run: bool,
) -> Result<Report> {
    let started = Instant::now();
    let mut report = Report::new("rewrite-manifests", &icefall_table::catalog::display_ident(ident), dry_run);
    // The plan is tied to one snapshot; if a writer commits first, plan again.
    let mut replan = Replan::new(report.table.clone());
    loop {
        let table = catalog.load(ident).await?;
        let Some(snapshot) = table.metadata.current_snapshot() else { break };
        let target = target
            .or_else(|| {
                table.metadata.properties().get("commit.manifest.target-size-bytes").and_then(|v| v.parse().ok())
            })
            .unwrap_or(DEFAULT_TARGET);
        let list = catalog.manifest_list(&table.metadata, snapshot).await?;
        let small: Vec<_> = list
            .entries()
            .iter()
            .filter(|m| m.content == ManifestContentType::Data && (m.manifest_length as u64) < target)
            .collect();
        if small.len() < 2 {
            break;
        }
        let bytes: u64 = small.iter().map(|m| m.manifest_length as u64).sum();
        let entries: u64 = small
            .iter()
            .map(|m| u64::from(m.added_files_count.unwrap_or(0)) + u64::from(m.existing_files_count.unwrap_or(0)))
            .sum();
        let per_entry = (bytes / entries.max(1)).max(1);
        let entries_per_manifest = usize::try_from((target / per_entry).max(1)).unwrap_or(usize::MAX);
        report.files_in = small.len() as u64;
        report.bytes_in = bytes;
        report.files_out = entries.div_ceil(entries_per_manifest as u64).max(1);
        if dry_run {
            break;
        }
        let replaced: BTreeSet<String> = small.iter().map(|m| m.manifest_path.clone()).collect();
        let change =
            Change::RewriteManifests { based_on_snapshot: snapshot.snapshot_id(), replaced, entries_per_manifest };
        let pending = PendingCommit::new(change, Default::default());
        match catalog.commit(table, &pending, |_| Ok(Default::default()), &RetryPolicy::default()).await {
            Ok(_) => {
                report.commits = 1;
                break;
            }
            Err(e) => {
                replan.again(e)?;
            }
        }
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}
