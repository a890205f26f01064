//! `icefall-writer`: parse the command line, set up logging, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};
use icefall_writer::Config;
use icefall_writer::offset_control::{self, ChangeOptions, Target};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "icefall-writer", version, about = "Lands Kafka topics in Apache Iceberg tables exactly once")]
struct Cli {
    /// Config file (TOML).
    #[arg(long, short, global = true, env = "ICEFALL_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "ICEFALL_LOG_JSON", value_parser = BoolishValueParser::new())]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipelines until SIGTERM/SIGINT, then make a final checkpoint and exit.
    Run,
    /// Check the config, the catalog, storage, the schema registry and the brokers, then exit.
    Validate,
    /// Show or move the Kafka offsets a pipeline's table holds (where the writer reads on).
    #[command(subcommand)]
    Offsets(OffsetsCommand),
}

#[derive(Subcommand)]
enum OffsetsCommand {
    /// Each partition's offset in the table, the broker's log start and end, and the lag.
    Show {
        /// Only this pipeline (default: all).
        #[arg(long)]
        pipeline: Option<String>,
    },
    /// Move named partitions to named offsets, e.g. `events:0=1200 events:1=980`.
    Set {
        /// The pipeline (may be left out when the config has one).
        #[arg(long)]
        pipeline: Option<String>,
        /// `topic:partition=offset`, each within what the broker holds.
        #[arg(required = true, value_parser = parse_assignment)]
        offsets: Vec<((String, i32), i64)>,
        #[command(flatten)]
        apply: Apply,
    },
    /// Move every partition of the pipeline (or of --topic) to the log start, the log end or a time.
    Reset {
        #[arg(long)]
        pipeline: Option<String>,
        #[command(flatten)]
        to: ResetTo,
        /// Only this topic's partitions (repeatable).
        #[arg(long)]
        topic: Vec<String>,
        #[command(flatten)]
        apply: Apply,
    },
}

#[derive(Args)]
struct Apply {
    /// Commit the new offsets to the table (without it, only show them).
    #[arg(long)]
    execute: bool,
    /// Commit even while the pipeline's consumer group has members (a running writer is fenced
    /// at its next checkpoint and reads that checkpoint's records again from the new offsets).
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct ResetTo {
    /// The first offset the broker still holds.
    #[arg(long)]
    to_earliest: bool,
    /// The log end: skip everything produced so far.
    #[arg(long)]
    to_latest: bool,
    /// The first record at or after this time (RFC 3339, e.g. 2026-11-30T00:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = offset_control::plan::parse_datetime)]
    to_datetime: Option<i64>,
}

impl ResetTo {
    fn target(&self) -> Target {
        match (self.to_earliest, self.to_latest, self.to_datetime) {
            (true, _, _) => Target::Earliest,
            (_, true, _) => Target::Latest,
            (_, _, Some(millis)) => Target::Datetime(millis),
            // clap's group makes one of them required.
            _ => Target::Latest,
        }
    }
}

impl Apply {
    fn options(&self) -> ChangeOptions {
        ChangeOptions { execute: self.execute, force: self.force }
    }
}

fn parse_assignment(text: &str) -> Result<((String, i32), i64), String> {
    offset_control::plan::parse_assignment(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Run) {
        icefall_writer::malloc::pin_mmap_threshold();
    }
    let filter = EnvFilter::try_from_env("ICEFALL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if cli.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    // Writers take long CPU-bound turns (decode + encode a batch). Tokio checks its timers only
    // every `event_interval` turns (61 by default), which on one core delayed checkpoints by
    // seconds under load; checking after every turn costs nothing at this turn length.
    let runtime = match tokio::runtime::Builder::new_multi_thread().event_interval(1).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // `run` handles SIGTERM from here on, before the config is read: a stop that arrives while
    // the process comes up is a clean shutdown, not death by the signal.
    let shutdown = match cli.command {
        Command::Run => {
            let _in_runtime = runtime.enter(); // signal handlers register with the runtime
            Some(shutdown_signal())
        }
        _ => None,
    };
    let result = runtime.block_on(async {
        let Some(path) = cli.config else {
            return Err(icefall_writer::Error::Config(
                "no config file: pass --config <file.toml> or set ICEFALL_CONFIG".into(),
            ));
        };
        let config = Config::load(&path)?;
        match cli.command {
            Command::Run => match shutdown {
                Some(shutdown) => icefall_writer::run(config, shutdown).await,
                None => icefall_writer::run(config, shutdown_signal()).await,
            },
            Command::Validate => {
                for line in icefall_writer::validate::validate(&config).await? {
                    println!("{line}");
                }
                Ok(())
            }
            Command::Offsets(command) => {
                let report = match command {
                    OffsetsCommand::Show { pipeline } => offset_control::show(&config, pipeline.as_deref()).await?,
                    OffsetsCommand::Set { pipeline, offsets, apply } => {
                        let target = Target::Explicit(offsets.into_iter().collect());
                        offset_control::change(&config, pipeline.as_deref(), &target, &[], apply.options()).await?
                    }
                    OffsetsCommand::Reset { pipeline, to, topic, apply } => {
                        offset_control::change(&config, pipeline.as_deref(), &to.target(), &topic, apply.options())
                            .await?
                    }
                };
                print!("{report}");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "icefall-writer failed");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGTERM or SIGINT. The handlers are installed now, not when the future is first
/// polled: a SIGTERM that arrives while the catalog connects must still mean "shut down cleanly".
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate()).and_then(|term| Ok((term, signal(SignalKind::interrupt())?)))
    };
    async move {
        #[cfg(unix)]
        match signals {
            Ok((mut term, mut int)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested");
    }
}
