//! Which pipelines run: the config's pipelines with every `{topic}` template resolved against
//! the brokers' topics at start-up, and, for `topics_regex` pipelines, a watch that hands on
//! a new pipeline for each matching topic created while the writer runs.

use std::collections::HashSet;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::config::{Config, KafkaConfig, PipelineConfig};
use crate::source::client::query_client;
use crate::{Error, Result};

/// How long one metadata request may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The topics the brokers have.
pub async fn broker_topics(kafka: &KafkaConfig) -> Result<Vec<String>> {
    let kafka = kafka.clone();
    tokio::task::spawn_blocking(move || {
        let client = query_client(&kafka)?;
        let metadata = rdkafka::consumer::Consumer::fetch_metadata(&client, None, METADATA_TIMEOUT)
            .map_err(Error::kafka("list the brokers' topics (for topics_regex)"))?;
        Ok(metadata.topics().iter().map(|t| t.name().to_string()).collect())
    })
    .await
    .map_err(|e| Error::Internal(format!("listing topics: {e}")))?
}

/// The concrete pipelines of `config` now: the brokers are asked only when a pipeline has a
/// `topics_regex`.
pub async fn resolve_pipelines(config: &Config) -> Result<Vec<PipelineConfig>> {
    let topics = match config.pipelines.iter().any(|p| p.topics_regex.is_some()) {
        true => broker_topics(&config.kafka).await?,
        false => Vec::new(),
    };
    let mut out = Vec::new();
    for p in &config.pipelines {
        out.extend(p.resolve(&topics)?);
    }
    Ok(out)
}

/// `config` with its pipelines resolved (for the tools that act on concrete tables:
/// `validate`, `offsets`).
pub async fn resolved_config(config: &Config) -> Result<Config> {
    Ok(Config { pipelines: resolve_pipelines(config).await?, ..config.clone() })
}

/// Watches the brokers for topics of `config`'s `topics_regex` pipelines that have no pipeline
/// in `started` (by name) yet, and sends a pipeline for each. Topics whose table names clash
/// are logged and not taken up; an unreachable broker is asked again next time.
pub fn watch_new_topics(
    config: Config,
    mut started: HashSet<String>,
    found: mpsc::Sender<PipelineConfig>,
    mut stop: watch::Receiver<bool>,
) {
    let routed: Vec<PipelineConfig> = config.pipelines.iter().filter(|p| p.topics_regex.is_some()).cloned().collect();
    let Some(every) = routed.iter().map(|p| p.topics_refresh_interval).min() else { return };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let topics = match broker_topics(&config.kafka).await {
                Ok(topics) => topics,
                Err(e) => {
                    tracing::warn!(error = %e, "looking for new topics failed; trying again later");
                    continue;
                }
            };
            for p in &routed {
                let pipelines = match p.resolve(&topics) {
                    Ok(pipelines) => pipelines,
                    Err(e) => {
                        tracing::error!(pipeline = %p.name, error = %e, "new topics not taken up");
                        continue;
                    }
                };
                for pipeline in pipelines {
                    if started.contains(&pipeline.name) {
                        continue;
                    }
                    tracing::info!(pipeline = %pipeline.name, topic = %pipeline.topics[0], table = %pipeline.table,
                        "new topic matches topics_regex; starting its pipeline");
                    started.insert(pipeline.name.clone());
                    if found.send(pipeline).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
}
