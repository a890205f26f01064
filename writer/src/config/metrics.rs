//! `[metrics]`: the HTTP endpoint with Prometheus metrics and the health probes.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::PipelineConfig;
use crate::{Error, Result};

/// Where `/metrics`, `/healthz` and `/readyz` are served. Without `listen` nothing is served.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the HTTP endpoint, e.g. `"0.0.0.0:9464"` (in a container) or `"127.0.0.1:9464"`.
    pub listen: Option<SocketAddr>,
    /// First part of every metric name (`<namespace>_<name>_<unit>`).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// `/readyz` fails when a pipeline has neither committed a checkpoint nor found nothing to
    /// commit for this long (a stuck commit: catalog or storage down). Must exceed every
    /// pipeline's `backpressure.max_checkpoint_interval`.
    #[serde(default = "default_max_checkpoint_age", with = "humantime_serde")]
    pub readiness_max_checkpoint_age: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: None,
            namespace: default_namespace(),
            readiness_max_checkpoint_age: default_max_checkpoint_age(),
        }
    }
}

fn default_namespace() -> String {
    "icefall".into()
}

fn default_max_checkpoint_age() -> Duration {
    Duration::from_secs(15 * 60)
}

impl MetricsConfig {
    pub fn validate(&self, pipelines: &[PipelineConfig]) -> Result<()> {
        let ns = &self.namespace;
        let valid = ns.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && ns.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(Error::Config(format!(
                "metrics.namespace = {ns:?}: use letters, digits and '_' (not starting with a digit), e.g. \"icefall\""
            )));
        }
        for p in pipelines {
            let longest = p.backpressure.max_checkpoint_interval.max(p.checkpoint_interval);
            if self.readiness_max_checkpoint_age <= longest {
                return Err(Error::Config(format!(
                    "metrics.readiness_max_checkpoint_age = {} is not longer than pipeline {}'s longest checkpoint \
                     interval ({}): /readyz would fail between checkpoints; raise it above that",
                    humantime::format_duration(self.readiness_max_checkpoint_age),
                    p.name,
                    humantime::format_duration(longest),
                )));
            }
        }
        Ok(())
    }
}
