//! Start-up: the table (created or fitted), its dead-letter table, the writers and the source.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::{Duration, Instant};

use icefall_table::catalog::parse_ident;
use icefall_table::files::TableFiles;
use icefall_table::offsets::committed_offsets;
use icefall_table::{Catalog, RetryPolicy};
use tokio::sync::watch;

use super::Pipeline;
use super::commit::CommitContext;
use super::journal::settle_journals;
use super::schema::json_probe;
use super::setup::{late_bound, load_or_create, warn_on_format_drift, warn_on_schema_drift, write_setup};
use super::split::Splitter;
use crate::budget::{BufferShares, MemoryBudget};
use crate::committer::Committer;
use crate::config::{Config, PipelineConfig, RecordFormat};
use crate::metrics::PipelineMetrics;
use crate::pool::WriterPool;
use crate::scaling::Scaler;
use crate::schema::evolution::fit_table;
use crate::schema::sources::SourceSchemas;
use crate::source::{KafkaSource, OffsetLoader, SourceSettings};
use crate::{Error, Result, dead_letter};

impl Pipeline {
    pub async fn start(
        config: &Config,
        p: &PipelineConfig,
        catalog: Catalog,
        instance: &str,
        metrics: PipelineMetrics,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self> {
        let ident = parse_ident(&p.table)?;
        let mut sources = SourceSchemas::load(config, p)?;
        // Topic-name strategy: the first topic's value subject describes new tables.
        let subject = format!("{}-value", p.topics[0]);
        let initial = sources.initial(&subject, &shutdown).await?;
        let mut table = match &initial {
            Some((_, source)) => {
                load_or_create(&catalog, &ident, &p.source_layout(&source.fields()?)?, p, &shutdown).await?
            }
            None if sources.registry().is_some() && p.format != RecordFormat::Json => {
                catalog.load(&ident).await.map_err(|e| {
                    Error::Config(format!(
                        "pipelines[{}]: table {} cannot be loaded ({e}) and subject {subject} has no schema in the \
                     registry to create it from; register the schema first",
                        p.name, p.table
                    ))
                })?
            }
            None => load_or_create(&catalog, &ident, &p.layout()?, p, &shutdown).await?,
        };
        if let Some((schema_id, source)) = &initial {
            table = fit_table(&catalog, table, source, *schema_id, p).await?;
        }
        let dlq_ident = parse_ident(&p.dead_letter_table())?;
        let dlq = load_or_create(&catalog, &dlq_ident, &dead_letter::layout(), p, &shutdown).await?;

        if initial.is_none() {
            warn_on_schema_drift(p, table.metadata.current_schema());
        }
        warn_on_format_drift(p, &table);
        // Journals of a crash whose partitions have moved on are settled now; those still
        // pending (ours, before the crash) right after our first commit moves them.
        let next_journal_settle = settle_journals(&catalog, &table, &p.name).await.map(|_| Instant::now());
        let late_before = Arc::new(AtomicI64::new(late_bound(p, &table)));
        let setup = write_setup(p, &sources, &table, catalog.file_io(), &late_before)?;
        let (min_writers, max_writers) = p.writer_bounds();
        let pool = WriterPool::start(min_writers, setup, instance, 1);
        let committer = Committer {
            catalog: catalog.clone(),
            table: ident.clone(),
            dead_letter_table: dlq_ident,
            dead_letter_files: TableFiles::new(dlq.name(), dlq.metadata.clone(), catalog.file_io().clone(), None)?,
            dead_letter_decoder: Arc::new(dead_letter::decoder(dlq.metadata.current_schema().clone())?),
            writer_id: config.writer_id.clone(),
            instance: instance.to_string(),
            policy: RetryPolicy::default(),
        };

        let loader_catalog = catalog.clone();
        let handle = tokio::runtime::Handle::current();
        let loader_ident = ident.clone();
        let loader: OffsetLoader = Arc::new(move || {
            handle.block_on(async {
                let table = loader_catalog.load(&loader_ident).await.map_err(|e| e.to_string())?;
                committed_offsets(&table.metadata).map_err(|e| e.to_string())
            })
        });
        let shares = BufferShares::of(p.max_buffered_bytes as usize);
        let source = KafkaSource::start(
            SourceSettings {
                pipeline: p.name.clone(),
                brokers: config.kafka.brokers.clone(),
                group_id: p.group_id(&config.kafka),
                topics: p.topics.clone(),
                properties: config.kafka.client_properties(),
                msk_iam: config.kafka.msk_iam.clone(),
                max_batch: 4096,
                linger: Duration::from_millis(50),
                budget: MemoryBudget::new(shares.records),
                kafka_queue_kbytes: shares.kafka_queue_kbytes,
                metrics: metrics.clone(),
                read_headers: p.metadata_columns.headers.is_some(),
            },
            loader,
        )?;
        metrics.writers_changed(min_writers);
        metrics.interval_changed(p.checkpoint_interval);
        tracing::info!(pipeline = %p.name, table = %table.name(), topics = ?p.topics, min_writers, max_writers,
            checkpoint_interval = ?p.checkpoint_interval, "pipeline started");
        let json_probe = json_probe(p, &table);
        Ok(Pipeline {
            name: p.name.clone(),
            config: p.clone(),
            catalog: catalog.clone(),
            table,
            sources,
            interval: p.checkpoint_interval,
            file_io: catalog.file_io().clone(),
            source,
            pool,
            scaler: Scaler::new(min_writers, max_writers),
            pending_shrink: None,
            commits: Arc::new(CommitContext {
                committer,
                pipeline: p.name.clone(),
                file_io: catalog.file_io().clone(),
                metrics: metrics.clone(),
                shutdown: shutdown.clone(),
            }),
            in_flight: None,
            next_spec: None,
            splitter: Splitter::default(),
            json_probe,
            checkpoint: 0,
            next_journal_settle,
            lost_ranges: Vec::new(),
            late_before,
            metrics,
            shutdown,
        })
    }
}
