//! `icefall-writer`: parse the command line, set up logging, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use icefall_writer::Config;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "icefall-writer", version, about = "Lands Kafka topics in Apache Iceberg tables exactly once")]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "ICEFALL_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipelines until SIGTERM/SIGINT, then make a final checkpoint and exit.
    Run {
        /// Config file (TOML).
        #[arg(long, short, env = "ICEFALL_CONFIG")]
        config: PathBuf,
    },
    /// Check the config, the catalog and the brokers, then exit.
    Validate {
        #[arg(long, short, env = "ICEFALL_CONFIG")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run { config } => {
                let shutdown = shutdown_signal();
                let config = Config::load(&config)?;
                icefall_writer::run(config, shutdown).await
            }
            Command::Validate { config } => {
                let config = Config::load(&config)?;
                for line in icefall_writer::validate::validate(&config).await? {
                    println!("{line}");
                }
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
