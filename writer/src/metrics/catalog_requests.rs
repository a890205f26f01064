//! The catalog's request counts (`icefall_table::catalog::requests`) as Prometheus counters,
//! read from the process's catalog connection at each scrape.

use std::fmt;
use std::sync::{Arc, OnceLock};

use icefall_table::Catalog;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::registry::Unit;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    outcome: String,
}

/// Reads the catalog once it is connected (before that, the counters have no samples).
pub(super) struct CatalogRequestsCollector {
    pub(super) catalog: Arc<OnceLock<Catalog>>,
}

impl fmt::Debug for CatalogRequestsCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CatalogRequestsCollector")
    }
}

impl Collector for CatalogRequestsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let counts = self.catalog.get().map(|c| c.requests().counts()).unwrap_or_default();
        let labels = |c: &icefall_table::catalog::requests::RequestCount| RequestLabels {
            operation: c.operation.to_string(),
            outcome: c.outcome.to_string(),
        };
        {
            let mut family = encoder.encode_descriptor(
                "catalog_requests",
                "Catalog requests by operation (load, commit, create, list_tables, ensure_namespace, drop_table) and \
                 outcome (ok, not_found, conflict, error, cancelled)",
                None,
                MetricType::Counter,
            )?;
            for c in &counts {
                ConstCounter::new(c.count).encode(family.encode_family(&labels(c))?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "catalog_request",
            "Time spent in catalog requests, by operation and outcome (divide by catalog_requests_total for the mean)",
            Some(&Unit::Seconds),
            MetricType::Counter,
        )?;
        for c in &counts {
            ConstCounter::new(c.seconds).encode(family.encode_family(&labels(c))?)?;
        }
        Ok(())
    }
}
