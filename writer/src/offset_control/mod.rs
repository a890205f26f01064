//! `icefall-writer offsets show|set|reset`: a pipeline's offsets as its table holds them, and
//! moving them, like `kafka-consumer-groups --reset-offsets` but committed to the table.
//!
//! A move is one snapshot (no files) whose offset map the writer reads on its next start or
//! assignment. It is fenced like a checkpoint: if a writer commits those partitions between
//! our read and our commit, the move is rejected. A running writer would be fenced in turn at
//! its next checkpoint and re-read the new offsets, but the records of that checkpoint would be
//! read again; so while the pipeline's consumer group has members the move is refused unless
//! `--force`. Without `--execute` nothing is committed: the plan is only printed.

mod broker;
pub mod plan;

use std::collections::HashMap;

use icefall_table::catalog::{display_ident, parse_ident};
use icefall_table::contract::{OFFSETS, OFFSETS_RESET, OPERATION, STATE_TAG, WRITER_ID};
use icefall_table::offsets::{committed_offsets, encode, offset_of};
use icefall_table::{Catalog, PendingCommit, RetryPolicy};

use crate::config::PipelineConfig;
use crate::source::client::query_client;
use crate::{Config, Error, Result};
pub use plan::Target;
use plan::{Move, PartitionView};

/// What `set`/`reset` should do besides planning.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChangeOptions {
    /// Commit the moves (otherwise only print them).
    pub execute: bool,
    /// Commit even while the pipeline's consumer group has members.
    pub force: bool,
}

/// The offsets of every pipeline (or the one named): one table per pipeline.
pub async fn show(config: &Config, pipeline: Option<&str>) -> Result<String> {
    let config = &crate::routing::resolved_config(config).await?;
    let catalog = Catalog::connect(&config.catalog).await?;
    let mut out = String::new();
    for p in config.pipelines.iter().filter(|p| pipeline.is_none_or(|name| p.name == name)) {
        let views = views(config, &catalog, p).await?;
        out.push_str(&format!("pipeline {} → table {} (group {})\n", p.name, p.table, p.group_id(&config.kafka)));
        out.push_str(&plan::render(&views, None));
    }
    if out.is_empty() {
        return Err(unknown_pipeline(config, pipeline.unwrap_or_default()));
    }
    Ok(out)
}

/// Moves the named pipeline's partitions (the only one's, if `pipeline` is `None`) to `target`
/// (only `topics` if any are named).
pub async fn change(
    config: &Config,
    pipeline: Option<&str>,
    target: &Target,
    topics: &[String],
    options: ChangeOptions,
) -> Result<String> {
    let config = &crate::routing::resolved_config(config).await?;
    let p = match (pipeline, config.pipelines.as_slice()) {
        (None, [only]) => only,
        (None, _) => return Err(unknown_pipeline(config, "")),
        (Some(name), all) => all.iter().find(|p| p.name == name).ok_or_else(|| unknown_pipeline(config, name))?,
    };
    if let Some(topic) = topics.iter().find(|t| !p.topics.contains(t)) {
        return Err(Error::Config(format!("--topic {topic}: pipeline {} reads {:?}", p.name, p.topics)));
    }
    let catalog = Catalog::connect(&config.catalog).await?;
    let mut views = views(config, &catalog, p).await?;
    views.retain(|v| topics.is_empty() || topics.contains(&v.topic));
    let by_time = match target {
        Target::Datetime(millis) => {
            let (kafka, views, millis) = (config.kafka.clone(), views.clone(), *millis);
            blocking(move || broker::offsets_at(&query_client(&kafka)?, &views, millis)).await?
        }
        _ => Default::default(),
    };
    let moves = plan::plan(&views, target, &by_time).map_err(Error::Config)?;
    let mut out = format!("pipeline {} → table {} (group {})\n", p.name, p.table, p.group_id(&config.kafka));
    out.push_str(&plan::render(&views, Some(&moves)));
    if !options.execute {
        out.push_str("dry run: nothing committed; add --execute to commit these offsets to the table\n");
        return Ok(out);
    }
    let group = p.group_id(&config.kafka);
    let kafka = config.kafka.clone();
    let members = blocking({
        let group = group.clone();
        move || broker::group_members(&query_client(&kafka)?, &group)
    })
    .await?;
    if !members.is_empty() && !options.force {
        return Err(Error::Config(format!(
            "consumer group {group} has members ({}): a running writer holds these partitions; stop it first \
             (or add --force: it is fenced at its next checkpoint, drops that checkpoint and reads on from the \
             new offsets)",
            members.join(", ")
        )));
    }
    let snapshot_id = commit(&catalog, config, p, &moves).await?;
    out.push_str(&format!("committed as snapshot {snapshot_id}; the writer reads on from these offsets\n"));
    Ok(out)
}

/// One snapshot with no files holding the moved offsets, fenced on the offsets it was planned from.
async fn commit(catalog: &Catalog, config: &Config, p: &PipelineConfig, moves: &[Move]) -> Result<i64> {
    let ident = parse_ident(&p.table)?;
    let base = catalog.load(&ident).await?;
    let summary = HashMap::from([
        (WRITER_ID.to_string(), config.writer_id.clone()),
        (OPERATION.to_string(), "offsets-reset".to_string()),
        (OFFSETS_RESET.to_string(), plan::audit(moves)),
    ]);
    let spec_id = base.metadata.default_partition_spec_id();
    let pending = PendingCommit::append(Vec::new(), spec_id, summary).with_tag(STATE_TAG);
    let moved = moves.len();
    let moves = moves.to_vec();
    let check = move |metadata: &iceberg::spec::TableMetadata| {
        let mut offsets = committed_offsets(metadata).map_err(|e| e.to_string())?;
        for m in &moves {
            let now = offset_of(&offsets, &m.view.topic, m.view.partition);
            if now != m.view.table {
                return Err(format!(
                    "{}/{} moved from {:?} to {:?} meanwhile (a writer committed): look again and run again",
                    m.view.topic, m.view.partition, m.view.table, now
                ));
            }
            offsets.entry(m.view.topic.clone()).or_default().insert(m.view.partition, m.to);
        }
        Ok(HashMap::from([(OFFSETS.to_string(), encode(&offsets))]))
    };
    let outcome = catalog.commit(base, &pending, check, &RetryPolicy::default()).await?;
    tracing::info!(table = %display_ident(&ident), snapshot_id = outcome.snapshot_id, moved,
        "offsets committed");
    Ok(outcome.snapshot_id)
}

/// The pipeline's partitions with the table's offsets and the broker's log bounds.
async fn views(config: &Config, catalog: &Catalog, p: &PipelineConfig) -> Result<Vec<PartitionView>> {
    let ident = parse_ident(&p.table)?;
    let table = match catalog.load(&ident).await {
        Ok(table) => table,
        Err(icefall_table::Error::TableNotFound(_)) => {
            return Err(Error::Config(format!(
                "table {} of pipeline {} does not exist yet: the writer creates it on its first start; \
                 start it once (with auto.offset.reset = \"latest\" it reads nothing old), then set the offsets",
                p.table, p.name
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let offsets = committed_offsets(&table.metadata)?;
    let (kafka, topics) = (config.kafka.clone(), p.topics.clone());
    blocking(move || broker::partition_views(&query_client(&kafka)?, &topics, &offsets)).await
}

fn unknown_pipeline(config: &Config, name: &str) -> Error {
    let names: Vec<&str> = config.pipelines.iter().map(|p| p.name.as_str()).collect();
    let names = names.join(", ");
    if name.is_empty() {
        return Error::Config(format!("name the pipeline with --pipeline (the config has: {names})"));
    }
    Error::Config(format!("no pipeline named {name:?} in the config (pipelines: {names})"))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Internal(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use icefall_table::CatalogConfig;
    use icefall_table::offsets::OffsetMap;

    use super::*;

    /// A move planned on offsets a writer has since moved is rejected, not laid over them.
    #[tokio::test]
    async fn a_move_planned_before_a_writer_commit_is_fenced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = "[kafka]\nbrokers = \"127.0.0.1:1\"\n\n[[pipelines]]\nname = \"events\"\ntopics = [\"events\"]\n\
                    table = \"ns.events\"\nschema = [{ name = \"id\", type = \"long\" }]\n";
        let mut config = Config::parse(text).expect("config");
        config.catalog = CatalogConfig::embedded_in(dir.path());
        let catalog = Catalog::connect(&config.catalog).await.expect("catalog");
        let p = &config.pipelines[0];
        let ident = parse_ident(&p.table).expect("ident");
        let table = catalog.load_or_create(&ident, &p.layout().expect("layout")).await.expect("table");
        // The operator planned partition 0 from 100 to 40 …
        let view = PartitionView { topic: "events".into(), partition: 0, table: Some(100), log_start: 0, log_end: 500 };
        let moves = [Move { view, to: 40 }];
        // … while a writer committed 100 → 180.
        let writer_offsets: OffsetMap = BTreeMap::from([("events".to_string(), BTreeMap::from([(0, 180)]))]);
        let summary = HashMap::from([(OFFSETS.to_string(), encode(&writer_offsets))]);
        let pending = PendingCommit::append(Vec::new(), 0, summary).with_tag(STATE_TAG);
        catalog.commit(table, &pending, |_| Ok(HashMap::new()), &RetryPolicy::default()).await.expect("writer");

        let e = commit(&catalog, &config, p, &moves).await.expect_err("fenced");
        assert!(e.to_string().contains("meanwhile"), "{e}");
        let table = catalog.load(&ident).await.expect("load");
        assert_eq!(committed_offsets(&table.metadata).expect("offsets"), writer_offsets, "the writer's offsets stand");

        // Planned from where the table is, the same move lands.
        let view = PartitionView { topic: "events".into(), partition: 0, table: Some(180), log_start: 0, log_end: 500 };
        commit(&catalog, &config, p, &[Move { view, to: 40 }]).await.expect("move");
        let table = catalog.load(&ident).await.expect("load");
        assert_eq!(offset_of(&committed_offsets(&table.metadata).expect("offsets"), "events", 0), Some(40));
    }
}
