//! `icefall-writer validate`: checks the config, the catalog and the brokers before a deploy.

use std::time::Duration;

use icefall_table::Catalog;
use icefall_table::catalog::parse_ident;
use rdkafka::consumer::Consumer;

use crate::{Config, Error, Result};

/// One line per check; the first failure is returned as the error.
pub async fn validate(config: &Config) -> Result<Vec<String>> {
    // `{topic}` templates stand for one table per topic: check those.
    let config = &crate::routing::resolved_config(config).await?;
    let mut report = vec![format!("config: ok ({} pipeline(s))", config.pipelines.len())];
    let catalog = Catalog::connect(&config.catalog).await?;
    report.push(format!(
        "catalog: ok ({}, warehouse {})",
        icefall_table::catalog::redact(&config.catalog.uri),
        catalog.warehouse()
    ));
    let mut probed = std::collections::BTreeSet::new();
    for p in &config.pipelines {
        let ident = parse_ident(&p.table)?;
        // Where its files go: the table's location, or for a table still to be created the
        // warehouse (a REST server places new tables itself: nothing to probe yet).
        let (state, location) = match catalog.load(&ident).await {
            Ok(table) => ("exists", Some(table.metadata.location().to_string())),
            Err(icefall_table::Error::TableNotFound(_)) => {
                ("will be created on start", (!config.catalog.is_rest()).then(|| catalog.warehouse().to_string()))
            }
            Err(e) => return Err(e.into()),
        };
        report.push(format!("table {}: {state}", p.table));
        if let Some(location) = location.filter(|l| probed.insert(l.clone())) {
            icefall_table::storage::probe_write(catalog.file_io(), &location).await?;
            report.push(format!("storage {location}: writable"));
        }
    }
    if let Some(registry) = &config.schema_registry {
        let client = crate::schema::registry::RegistryClient::new(registry)?;
        let subjects = client.subjects().await.map_err(|e| {
            Error::Config(format!("schema_registry.url {}: {e}; check the URL and its credentials", registry.url))
        })?;
        report.push(format!("schema registry: ok ({} subject(s))", subjects.len()));
    }
    let consumer = crate::source::client::query_client(&config.kafka)?;
    let brokers = config.kafka.brokers.clone();
    let topics: Vec<String> = config.pipelines.iter().flat_map(|p| p.topics.clone()).collect();
    let metadata = tokio::task::spawn_blocking(move || consumer.fetch_metadata(None, Duration::from_secs(10)))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(Error::kafka(format!("reach brokers {brokers} (kafka.brokers)")))?;
    report.push(format!("kafka: ok ({} broker(s))", metadata.brokers().len()));
    for topic in topics {
        match metadata.topics().iter().find(|t| t.name() == topic) {
            Some(t) if t.error().is_none() => {
                report.push(format!("topic {topic}: {} partition(s)", t.partitions().len()))
            }
            _ => {
                return Err(Error::Config(format!(
                    "topic {topic:?} does not exist on {}: create it or fix pipelines.topics",
                    config.kafka.brokers
                )));
            }
        }
    }
    Ok(report)
}
