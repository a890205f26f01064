//! `icefall-writer`: lands Kafka topics in Iceberg tables exactly once.
//!
//! The path of one record: `source` (Kafka) → split (`pipeline`'s splitter) → decode and
//! write (`pool`: `icefall_schemas` decoders, source schemas from `schema`) → checkpoint
//! (`pipeline`) → commit (`committer`: one snapshot holding the files and the offsets they
//! cover). A new source schema first passes `schema::evolution`, which commits the table
//! change it needs.

pub(crate) mod budget;
pub(crate) mod committer;
pub mod config;
pub(crate) mod dead_letter;
mod error;
pub(crate) mod freshness;
pub(crate) mod http;
pub mod malloc;
pub(crate) mod metrics;
pub mod offset_control;
pub(crate) mod offset_reset;
pub(crate) mod pipeline;
pub(crate) mod pool;
pub(crate) mod record;
pub(crate) mod routing;
pub(crate) mod scaling;
pub(crate) mod schema;
pub(crate) mod source;
pub mod validate;

use std::future::Future;
use std::sync::Arc;

pub use config::Config;
use config::PipelineConfig;
pub use error::{Error, Result};
use icefall_table::Catalog;
/// Amazon MSK IAM token signing (public for the tests that check tokens independently).
pub use source::msk_iam::MskIamTokens;
use tokio::sync::watch;

/// Runs every pipeline of `config` until `shutdown` completes, then makes a final checkpoint
/// per pipeline and returns.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    let instance = uuid::Uuid::now_v7().to_string();
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let on_signal = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = on_signal.send(true);
    });
    // Bound first: a taken port fails start-up, and `/healthz` answers while the catalog and
    // the pipelines come up (`/readyz` says what is still missing).
    let listener = match config.metrics.listen {
        Some(addr) => Some(http::bind(addr).await?),
        None => None,
    };
    let metrics = Arc::new(metrics::Metrics::new(&config.metrics.namespace));
    let connected = metrics.catalog().clone();
    let started = Arc::new(std::sync::RwLock::new(Vec::new()));
    if let Some(listener) = listener {
        tracing::info!(address = %config.metrics.listen.map(|a| a.to_string()).unwrap_or_default(),
            "serving /metrics, /healthz and /readyz");
        let probes = http::Probes {
            metrics: metrics.clone(),
            pipelines: started.clone(),
            catalog: connected.clone(),
            max_checkpoint_age: config.metrics.readiness_max_checkpoint_age,
        };
        tokio::spawn(http::serve(listener, Arc::new(probes), stop_rx.clone()));
    }
    let pipelines = routing::resolve_pipelines(&config).await?;
    let catalog = connect_with_retry(&config, &stop_rx).await?;
    let _ = connected.set(catalog.clone());
    tracing::info!(writer_id = %config.writer_id, instance = %instance, catalog = %icefall_table::catalog::redact(&config.catalog.uri), "writer starting");
    let (found_tx, mut found) = tokio::sync::mpsc::channel(16);
    routing::watch_new_topics(
        config.clone(),
        pipelines.iter().map(|p| p.name.clone()).collect(),
        found_tx,
        stop_rx.clone(),
    );
    let mut tasks = tokio::task::JoinSet::new();
    let start = |p: PipelineConfig| {
        let (config, catalog, instance, stop_rx) = (&config, catalog.clone(), instance.clone(), stop_rx.clone());
        let (metrics, started) = (metrics.clone(), started.clone());
        async move {
            let events = metrics.pipeline(&p.name);
            let ident = icefall_table::catalog::parse_ident(&p.table)?;
            if let Ok(mut started) = started.write() {
                started.push((events.clone(), ident));
            }
            let pipeline = pipeline::Pipeline::start(config, &p, catalog, &instance, events, stop_rx).await?;
            Ok::<_, Error>((p.name.clone(), pipeline))
        }
    };
    for p in pipelines {
        let (name, pipeline) = start(p).await?;
        tasks.spawn(async move { (name, pipeline.run().await) });
    }
    // One pipeline that stops with an error stops the process: the others make their final
    // checkpoint and the process exits non-zero, so the orchestrator restarts it (a process
    // with a dead pipeline would otherwise look alive while that pipeline's topics lag).
    let mut result = Ok(());
    let mut stopping = stop_rx.clone();
    loop {
        // With topics_regex the process waits for matching topics even while it runs no pipeline.
        let done = tokio::select! {
            Some(done) = tasks.join_next() => done,
            Ok(_) = stopping.wait_for(|stop| *stop), if tasks.is_empty() => break,
            Some(p) = found.recv(), if result.is_ok() && !*stop_rx.borrow() => {
                let name = p.name.clone();
                match start(p).await {
                    Ok((name, pipeline)) => {
                        tasks.spawn(async move { (name, pipeline.run().await) });
                    }
                    Err(e) => {
                        tracing::error!(pipeline = %name, error = %e,
                            "the new topic's pipeline could not start; stopping the other pipelines, then exiting non-zero");
                        let _ = stop_tx.send(true);
                        result = Err(e);
                    }
                }
                continue;
            }
            else => break,
        };
        let (name, outcome) = match done {
            Ok((name, outcome)) => (name, outcome),
            Err(e) => ("?".to_string(), Err(Error::Internal(format!("a pipeline task failed: {e}")))),
        };
        if let Err(e) = outcome {
            tracing::error!(pipeline = %name, error = %e,
                "pipeline stopped; stopping the other pipelines (each makes its final checkpoint), then exiting non-zero");
            let _ = stop_tx.send(true);
            if result.is_ok() {
                result = Err(e);
            }
        }
    }
    result
}

async fn connect_with_retry(config: &Config, stop: &watch::Receiver<bool>) -> Result<Catalog> {
    let mut backoff = icefall_table::Backoff::unavailable();
    loop {
        match Catalog::connect(&config.catalog).await {
            Ok(c) => return Ok(c),
            Err(e) if e.is_retryable() && !*stop.borrow() => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "catalog unreachable; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}
