//! `icefall-optimizer`: keeps Icefall's tables fast while the writer keeps committing.
//!
//! compact: plan (from metadata) → rewrite (deletes applied) → commit (validated replace);
//! rewrite-position-deletes, expire-snapshots, remove-orphans, rewrite-manifests; `run` does
//! all in order.
//! Every change goes through `icefall_table`'s commit path.

pub mod bench;
mod commit;
pub mod compact;
pub mod config;
mod error;
pub mod expire;
pub mod manifests;
pub mod metrics;
pub mod orphans;
pub mod policy;
pub mod position_deletes;
pub mod report;
pub mod retention;
mod sort;
pub mod stats;
pub mod status;
mod zorder;

use std::time::Duration;

pub use config::Config;
pub use error::{Error, Result};
use iceberg::NamespaceIdent;
use icefall_table::catalog::parse_ident;
use icefall_table::{Catalog, TableIdent};
use report::Report;

/// What to do, as parsed from the command line.
#[derive(Debug, Clone)]
pub enum Command {
    Compact(compact::CompactOptions),
    ExpireSnapshots {
        older_than: Duration,
        retain_last: usize,
        dry_run: bool,
    },
    RemoveOrphans {
        older_than: Duration,
        force: bool,
        dry_run: bool,
        prefix_mismatch: orphans::PrefixMismatch,
        /// Only settle checkpoint journals (no listing of the table).
        journals: bool,
    },
    RewriteManifests {
        target_size_bytes: Option<u64>,
        dry_run: bool,
    },
    RewritePositionDeletes(position_deletes::DeleteRewriteOptions),
    Stats(stats::StatsOptions),
    /// compact → rewrite-position-deletes → stats → rewrite-manifests → expire-snapshots → remove-orphans, as each table's policy says.
    Run {
        dry_run: bool,
    },
}

/// The tables a run covers: `--table` flags, else the config's tables and namespaces.
pub async fn tables(catalog: &Catalog, config: &Config, flags: &[String]) -> Result<Vec<TableIdent>> {
    let mut out = Vec::new();
    let names = if flags.is_empty() { &config.tables } else { flags };
    for name in names {
        out.push(parse_ident(name)?);
    }
    if flags.is_empty() {
        for ns in &config.namespaces {
            let namespace =
                NamespaceIdent::from_strs(ns.split('.')).map_err(Error::iceberg(format!("namespace {ns}")))?;
            out.extend(catalog.list_tables(&namespace).await?);
        }
    }
    if out.is_empty() {
        return Err(Error::Config(
            "no table to maintain: pass --table <ns.table> or set `tables`/`namespaces` in the config".into(),
        ));
    }
    Ok(out)
}

/// Runs one command on one table.
pub async fn execute(catalog: &Catalog, config: &Config, table: &TableIdent, command: &Command) -> Result<Vec<Report>> {
    Ok(match command {
        Command::Compact(options) => vec![compact::compact(catalog, table, options).await?],
        Command::ExpireSnapshots { older_than, retain_last, dry_run } => {
            vec![expire::expire_snapshots(catalog, table, *older_than, *retain_last, *dry_run).await?]
        }
        Command::RemoveOrphans { journals: true, dry_run, .. } => {
            vec![orphans::settle_journals(catalog, table, *dry_run).await?]
        }
        Command::RemoveOrphans { older_than, force, dry_run, journals: false, prefix_mismatch } => {
            vec![orphans::remove_orphans(catalog, table, *older_than, *force, *dry_run, *prefix_mismatch).await?]
        }
        Command::RewriteManifests { target_size_bytes, dry_run } => {
            vec![manifests::rewrite_manifests(catalog, table, *target_size_bytes, *dry_run).await?]
        }
        Command::RewritePositionDeletes(options) => {
            vec![position_deletes::rewrite_position_deletes(catalog, table, options).await?]
        }
        Command::Stats(options) => vec![stats::compute_stats(catalog, table, options).await?],
        Command::Run { dry_run } => run(catalog, config, table, *dry_run).await?,
    })
}

/// `run` on one table, as its [`policy::TablePolicy`] says: compact → rewrite-position-deletes
/// (what compaction left: delete files of data files it did not rewrite) → stats (NDV of the
/// snapshot compaction left, incremental) → rewrite-manifests →
/// expire-snapshots → remove-orphans. A step the policy turns off is reported as skipped.
async fn run(catalog: &Catalog, config: &Config, table: &TableIdent, dry_run: bool) -> Result<Vec<Report>> {
    let loaded = catalog.load(table).await?;
    let policy = policy::TablePolicy::for_table(&loaded.metadata, config)?;
    let skipped = |command: &str, why: &str| {
        let mut report = Report::new(command, &loaded.name(), dry_run);
        report.notes.push(format!("skipped: {why}"));
        report
    };
    let mut reports = Vec::new();
    if policy.compact {
        let options = compact::CompactOptions {
            target_file_size_bytes: config.compact.target_file_size_bytes,
            min_file_size_bytes: policy.min_file_size_bytes,
            min_input_files: policy.min_input_files,
            max_concurrent_group_rewrites: config.compact.max_concurrent_file_group_rewrites,
            dry_run,
            ..Default::default()
        };
        reports.push(compact::compact(catalog, table, &options).await?);
    } else {
        reports.push(skipped("compact", "the table property icefall.optimizer.compact.enabled is false"));
    }
    if policy.rewrite_position_deletes {
        let options = position_deletes::DeleteRewriteOptions {
            min_input_files: policy.min_input_files,
            dry_run,
            ..Default::default()
        };
        reports.push(position_deletes::rewrite_position_deletes(catalog, table, &options).await?);
    } else {
        let why = "the table property icefall.optimizer.rewrite-position-deletes.enabled is false";
        reports.push(skipped(position_deletes::COMMAND, why));
    }
    if policy.stats {
        let options =
            stats::StatsOptions { dry_run, max_full_bytes: Some(config.stats.max_full_bytes), ..Default::default() };
        reports.push(stats::compute_stats(catalog, table, &options).await?);
    } else {
        reports.push(skipped(stats::COMMAND, "the table property icefall.optimizer.stats.enabled is false"));
    }
    reports.push(manifests::rewrite_manifests(catalog, table, config.manifests.target_size_bytes, dry_run).await?);
    if !expire::gc_enabled(&loaded.metadata) {
        // Its files may be another table's: nothing is deleted, as Spark's procedures refuse.
        for command in ["expire-snapshots", "remove-orphans"] {
            reports.push(skipped(command, "the table property gc.enabled is false"));
        }
        return Ok(reports);
    }
    if policy.expire {
        let expire = &config.expire;
        reports.push(expire::expire_snapshots(catalog, table, expire.older_than, expire.retain_last, dry_run).await?);
    } else {
        reports.push(skipped("expire-snapshots", "the table property icefall.optimizer.expire.enabled is false"));
    }
    if policy.remove_orphans {
        let mismatch = config.orphans.prefix_mismatch;
        reports
            .push(orphans::remove_orphans(catalog, table, policy.orphans_older_than, false, dry_run, mismatch).await?);
    } else {
        reports.push(skipped("remove-orphans", "the table property icefall.optimizer.remove-orphans.enabled is false"));
    }
    Ok(reports)
}
