//! `icefall-optimizer`: parse the command line, set up logging, run one command on each table.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Parser, Subcommand};
use icefall_optimizer::compact::{CompactOptions, Shard, Strategy};
use icefall_optimizer::{Command, Config};
use icefall_table::Catalog;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "icefall-optimizer",
    version,
    about = "Compaction, snapshot expiry, orphan removal and manifest rewrite for Iceberg tables, safe beside a live writer"
)]
struct Cli {
    /// Config file (TOML) with `[catalog]` and optionally `tables`/`namespaces` and defaults
    /// (or ICEFALL_CONFIG; ICEFALL_OPTIMIZER_CONFIG is still read).
    #[arg(long, short, global = true, env = "ICEFALL_CONFIG")]
    config: Option<PathBuf>,
    /// Table to maintain, `<namespace>.<table>` (repeatable); default: the config's tables.
    #[arg(long = "table", global = true)]
    tables: Vec<String>,
    /// Print the report as JSON lines on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Log as JSON lines (stderr) instead of human-readable text.
    #[arg(long, global = true, env = "ICEFALL_LOG_JSON", value_parser = BoolishValueParser::new())]
    log_json: bool,
    /// After the run, replace this file with the run's figures in Prometheus text format
    /// (for node_exporter's textfile collector), e.g. /var/lib/node_exporter/icefall.prom.
    #[arg(long, global = true, env = "ICEFALL_METRICS_FILE")]
    metrics_file: Option<PathBuf>,
    /// After the run, push its figures to this Prometheus Pushgateway (job `icefall-optimizer`,
    /// replacing the previous run's), e.g. http://pushgateway.monitoring:9091.
    #[arg(long, global = true, env = "ICEFALL_METRICS_PUSH")]
    metrics_push: Option<String>,
    /// First part of the metric names in --metrics-file.
    #[arg(long, global = true, default_value = "icefall")]
    metrics_namespace: String,
    #[command(subcommand)]
    command: Sub,
}

#[derive(Subcommand)]
enum Sub {
    /// Bin-pack small files (and files with deletes) into files of the target size.
    Compact {
        #[arg(long)]
        dry_run: bool,
        /// Output file size (bytes); default the table's write.target-file-size-bytes or 512 MiB.
        #[arg(long)]
        target_file_size: Option<u64>,
        /// Files below this size are candidates (bytes); default 75% of the target.
        #[arg(long)]
        min_file_size: Option<u64>,
        /// Compact a partition only with at least this many candidates (or any delete file).
        #[arg(long)]
        min_input_files: Option<usize>,
        /// Only partitions this predicate selects, e.g. `day(ts) < '2026-11-01'` or
        /// `ts_day >= '2026-11-01' and id_bucket = 3` (partition fields, =, !=, <, <=, >, >=, and).
        #[arg(long = "where")]
        partition_filter: Option<String>,
        /// At most this many input bytes in one run.
        #[arg(long)]
        max_bytes: Option<u64>,
        /// At most this many groups in one run.
        #[arg(long)]
        max_groups: Option<usize>,
        /// Rewrite this many groups at the same time (default: the config's, 1).
        #[arg(long)]
        max_concurrent_file_group_rewrites: Option<usize>,
        /// Only this shard's partitions: `I/N` (0 <= I < N), for N workers that split the table.
        #[arg(long, value_parser = Shard::parse, conflicts_with = "shard_count")]
        shard: Option<Shard>,
        /// N workers of a Kubernetes Indexed Job: this one is shard JOB_COMPLETION_INDEX of N.
        #[arg(long)]
        shard_count: Option<u32>,
        /// `binpack`, or `zorder` (a partition's files rewritten together, rows in the z-order of
        /// --columns); default: the table property icefall.optimizer.compact.zorder-columns, else binpack.
        #[arg(long)]
        strategy: Option<String>,
        /// The columns to z-order by, e.g. `--columns user_id,ts` (2 to 8 top-level columns).
        #[arg(long)]
        columns: Option<String>,
    },
    /// Expire old snapshots and delete the files no remaining snapshot reaches.
    ExpireSnapshots {
        #[arg(long)]
        dry_run: bool,
        /// e.g. `5d`, `12h`, `0s`.
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: Option<Duration>,
        #[arg(long)]
        retain_last: Option<usize>,
    },
    /// Delete files under the table location that nothing references.
    RemoveOrphans {
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: Option<Duration>,
        /// Allow --older-than below 1 hour (only when nothing else writes the table).
        #[arg(long)]
        force: bool,
        /// Only delete the files of crashed writers' checkpoints, named by their journals:
        /// no listing of the table, safe at any time.
        #[arg(long)]
        journals: bool,
        /// A listed file the table references under another scheme or authority: refuse the
        /// run (`error`, the default), keep it (`ignore`) or delete it (`delete`).
        #[arg(long, value_enum)]
        prefix_mismatch: Option<icefall_optimizer::orphans::PrefixMismatch>,
    },
    /// Merge small manifests into ones of the target size, clustered by partition.
    RewriteManifests {
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        target_size: Option<u64>,
    },
    /// Merge each partition's small position delete files into one and drop deletes of data
    /// files no longer live (Spark's rewrite_position_delete_files); rows never change.
    RewritePositionDeletes {
        #[arg(long)]
        dry_run: bool,
        /// Output file size (bytes); default the table's write.delete.target-file-size-bytes or 64 MiB.
        #[arg(long)]
        target_file_size: Option<u64>,
        /// Merge a partition's delete files only when it has at least this many (default: the
        /// config's compact.min_input_files; at least 2).
        #[arg(long)]
        min_input_files: Option<usize>,
        /// At most this many groups in one run.
        #[arg(long)]
        max_groups: Option<usize>,
    },
    /// NDV statistics for query planners (Spark's compute_table_stats): a theta sketch per
    /// column in a Puffin file registered for the current snapshot; incremental after appends.
    Stats {
        #[arg(long)]
        dry_run: bool,
        /// Columns, e.g. `--columns user_id,country`; default the table property
        /// icefall.optimizer.stats.columns, else every primitive column but wide strings/binaries.
        #[arg(long, value_delimiter = ',')]
        columns: Option<Vec<String>>,
        /// Read every file, even when the last statistics could be carried forward.
        #[arg(long)]
        full: bool,
    },
    /// Print each table's size, writer offsets, freshness watermarks, what was added since the
    /// last compaction and pending checkpoint journals (read-only).
    Status,
    /// Everything, in order: compact, rewrite-position-deletes, stats, rewrite-manifests,
    /// expire-snapshots, remove-orphans.
    Run {
        #[arg(long)]
        dry_run: bool,
    },
    /// Benchmark compaction on a generated table of small files (a temporary SQLite catalog).
    Bench {
        #[arg(long, default_value_t = 200)]
        files: usize,
        #[arg(long, default_value_t = 5_000)]
        rows_per_file: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Progress (each compaction group, files deleted) at info; other crates only warn.
    let filter =
        EnvFilter::try_from_env("ICEFALL_LOG").unwrap_or_else(|_| EnvFilter::new("warn,icefall_optimizer=info"));
    if cli.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = std::time::Instant::now();
    let metrics_file = cli.metrics_file.clone();
    let namespace = cli.metrics_namespace.clone();
    let command_name = command_name(&cli.command);
    let mut reports = Vec::new();
    let mut catalog_requests = Vec::new();
    let metrics_push = cli.metrics_push.clone();
    let mut outcome = runtime.block_on(run(cli, &mut reports, &mut catalog_requests));
    if metrics_file.is_some() || metrics_push.is_some() {
        let text = icefall_optimizer::metrics::render(
            &namespace,
            command_name,
            &reports,
            &catalog_requests,
            started.elapsed(),
            matches!(outcome, Ok(true)),
        );
        if let Some(path) = metrics_file
            && let Err(e) = icefall_optimizer::metrics::write_textfile(&path, &text)
        {
            eprintln!("error: {e}");
        }
        if let Some(url) = metrics_push
            && let Err(e) = runtime.block_on(icefall_optimizer::metrics::push(&url, "icefall-optimizer", &text))
        {
            // Unseen figures would hide the run from its alerts: fail the run (after the work).
            eprintln!("error: {e}");
            if matches!(outcome, Ok(true)) {
                outcome = Ok(false);
            }
        }
    }
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Ok(false): the command ran but some work failed (see the report's notes).
/// Runs the command; its reports and the catalog requests it made go to `reports` and
/// `catalog_requests` (for the run's metrics), whatever the outcome.
async fn run(
    cli: Cli,
    reports: &mut Vec<icefall_optimizer::report::Report>,
    catalog_requests: &mut Vec<icefall_table::catalog::requests::RequestCount>,
) -> icefall_optimizer::Result<bool> {
    if let Sub::Bench { files, rows_per_file } = cli.command {
        let report = icefall_optimizer::bench::bench(files, rows_per_file).await?;
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
        return Ok(true);
    }
    // Without a config the catalog would be a fresh SQLite file in the working directory: a
    // run that maintains nothing and says nothing. Refuse instead.
    let path = cli.config.clone().or_else(|| std::env::var_os("ICEFALL_OPTIMIZER_CONFIG").map(Into::into));
    let Some(path) = path else {
        return Err(icefall_optimizer::Error::Config(
            "no config file: pass --config <file.toml> (or set ICEFALL_CONFIG) with the [catalog] of the tables".into(),
        ));
    };
    let config = Config::load(&path)?;
    let command = match cli.command {
        Sub::Compact {
            dry_run,
            target_file_size,
            min_file_size,
            min_input_files,
            partition_filter,
            max_bytes,
            max_groups,
            max_concurrent_file_group_rewrites,
            shard,
            shard_count,
            strategy,
            columns,
        } => Command::Compact(CompactOptions {
            strategy: Strategy::from_flags(strategy.as_deref(), columns.as_deref())?,
            target_file_size_bytes: target_file_size.or(config.compact.target_file_size_bytes),
            min_file_size_bytes: min_file_size.or(config.compact.min_file_size_bytes),
            min_input_files: min_input_files.unwrap_or(config.compact.min_input_files).max(1),
            partition_filter,
            max_bytes,
            max_groups,
            max_concurrent_group_rewrites: max_concurrent_file_group_rewrites
                .unwrap_or(config.compact.max_concurrent_file_group_rewrites),
            shard: match shard_count {
                Some(count) => Some(Shard::from_job_index(count).map_err(icefall_optimizer::Error::Config)?),
                None => shard,
            },
            dry_run,
        }),
        Sub::ExpireSnapshots { dry_run, older_than, retain_last } => Command::ExpireSnapshots {
            older_than: older_than.unwrap_or(config.expire.older_than),
            retain_last: retain_last.unwrap_or(config.expire.retain_last),
            dry_run,
        },
        Sub::RemoveOrphans { dry_run, older_than, force, journals, prefix_mismatch } => Command::RemoveOrphans {
            older_than: older_than.unwrap_or(config.orphans.older_than),
            force,
            dry_run,
            journals,
            prefix_mismatch: prefix_mismatch.unwrap_or(config.orphans.prefix_mismatch),
        },
        Sub::RewriteManifests { dry_run, target_size } => {
            Command::RewriteManifests { target_size_bytes: target_size.or(config.manifests.target_size_bytes), dry_run }
        }
        Sub::RewritePositionDeletes { dry_run, target_file_size, min_input_files, max_groups } => {
            Command::RewritePositionDeletes(icefall_optimizer::position_deletes::DeleteRewriteOptions {
                min_input_files: min_input_files.unwrap_or(config.compact.min_input_files),
                target_file_size_bytes: target_file_size,
                max_groups,
                dry_run,
            })
        }
        Sub::Stats { dry_run, columns, full } => {
            Command::Stats(icefall_optimizer::stats::StatsOptions { columns, full, dry_run, max_full_bytes: None })
        }
        Sub::Run { dry_run } => Command::Run { dry_run },
        Sub::Status => {
            let catalog = Catalog::connect(&config.catalog).await?;
            for table in icefall_optimizer::tables(&catalog, &config, &cli.tables).await? {
                let status = icefall_optimizer::status::status(&catalog, &config, &table).await?;
                if cli.json {
                    println!("{}", serde_json::to_string(&status).unwrap_or_default());
                } else {
                    println!("{}", status.human());
                }
            }
            return Ok(true);
        }
        Sub::Bench { .. } => return Ok(true),
    };
    let catalog = Catalog::connect(&config.catalog).await?;
    let tables = icefall_optimizer::tables(&catalog, &config, &cli.tables).await;
    let tables = tables.inspect_err(|_| *catalog_requests = catalog.requests().counts())?;
    let mut clean = true;
    // One table's failure does not stop the others; the run fails at the end, naming each.
    let mut failed: Vec<(String, icefall_optimizer::Error)> = Vec::new();
    for table in &tables {
        let table_reports = match icefall_optimizer::execute(&catalog, &config, table, &command).await {
            Ok(reports) => reports,
            Err(e) => {
                let name = icefall_table::catalog::display_ident(table);
                tracing::error!(table = %name, error = %e, "table failed; going on with the others");
                failed.push((name, e));
                continue;
            }
        };
        for report in table_reports {
            clean &= report.groups_failed == 0;
            if cli.json {
                println!("{}", report.json());
            } else {
                println!("{}", report.human());
            }
            reports.push(report);
        }
    }
    *catalog_requests = catalog.requests().counts();
    match failed.len() {
        0 => Ok(clean),
        1 if tables.len() == 1 => Err(failed.remove(0).1),
        _ => Err(icefall_optimizer::Error::TablesFailed {
            total: tables.len(),
            failed: failed.into_iter().map(|(t, e)| (t, e.to_string())).collect(),
        }),
    }
}

/// The command's name as the metrics label.
fn command_name(command: &Sub) -> &'static str {
    match command {
        Sub::Compact { .. } => "compact",
        Sub::ExpireSnapshots { .. } => "expire-snapshots",
        Sub::RemoveOrphans { .. } => "remove-orphans",
        Sub::RewriteManifests { .. } => "rewrite-manifests",
        Sub::RewritePositionDeletes { .. } => icefall_optimizer::position_deletes::COMMAND,
        Sub::Stats { .. } => icefall_optimizer::stats::COMMAND,
        Sub::Run { .. } => "run",
        Sub::Status => "status",
        Sub::Bench { .. } => "bench",
    }
}
