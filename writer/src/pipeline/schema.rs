//! Schema and partition-spec changes while the pipeline runs: a new source schema id, JSON
//! fields the table lacks (`evolve = true`), a new default spec made by another engine.

use icefall_schemas::decode::confluent_schema_id;
use icefall_schemas::json::infer::{NewShape, ShapeProbe};
use icefall_table::LoadedTable;

use super::Pipeline;
use super::setup::write_setup;
use crate::Result;
use crate::config::PipelineConfig;
use crate::record::SourceRecord;
use crate::schema::evolution::{commit_schema_change, fit_table, plan_evolution, plan_json_evolution};

/// With `evolve = true`, a probe for what JSON records bring that `table` lacks.
pub(super) fn json_probe(p: &PipelineConfig, table: &LoadedTable) -> Option<ShapeProbe> {
    let metadata: Vec<String> = p.metadata_columns.mapping().into_keys().collect();
    p.evolve.then(|| ShapeProbe::new(table.metadata.current_schema().as_struct(), &metadata))
}

impl Pipeline {
    /// The schema id of a Confluent-framed record the pipeline has not seen yet.
    pub(super) fn unknown_schema_id(&self, record: &SourceRecord) -> Option<u32> {
        let registry = self.sources.registry()?;
        let id = confluent_schema_id(record.payload.as_deref()?)?;
        (!registry.knows(id)).then_some(id)
    }

    /// Looks up a new schema id; if the table must change to hold its records, commits what
    /// was written so far, then the schema change, and writes on with the new schema.
    pub(super) async fn adopt_schema(&mut self, id: u32) -> Result<()> {
        let source = self.sources.fetch(id, &self.shutdown).await?;
        if let Some(source) = source {
            let current = self.catalog.load(&self.table.ident).await?;
            let plan = match plan_evolution(&current, &source, Some(id), &self.config) {
                Ok(plan) => plan,
                Err(e) => {
                    // Keep what came before; the record of the new shape and all after it stay
                    // unread until the producer or the config is fixed.
                    self.checkpoint_now().await?;
                    return Err(e);
                }
            };
            let new_spec = current.metadata.default_partition_spec_id() != self.spec_id();
            if plan.is_some() || new_spec {
                // Data of the old shape (or partition spec) is committed before the writers
                // take up the new one: a checkpoint's files share one spec.
                self.checkpoint_now().await?;
                if self.splitter.repositioning() {
                    return Ok(());
                }
            }
            self.table = match plan {
                Some(_) => fit_table(&self.catalog, current, &source, Some(id), &self.config).await?,
                None => current,
            };
            tracing::info!(pipeline = %self.name, schema_id = id, table_schema_id = self.table.metadata.current_schema_id(),
                "new source schema adopted");
        }
        self.take_up_table().await
    }

    /// What `record` brings that the table lacks (`evolve = true`), merged with what the
    /// records after it in the same poll bring, so one schema change serves them all.
    pub(super) fn new_json_fields(&self, record: &SourceRecord, after: &[SourceRecord]) -> Option<NewShape> {
        let probe = self.json_probe.as_ref()?;
        let mut shape = NewShape::default();
        if !probe.probe(record.payload.as_deref()?, &mut shape) {
            return None;
        }
        for later in after {
            if let Some(payload) = later.payload.as_deref() {
                probe.probe(payload, &mut shape);
            }
        }
        Some(shape)
    }

    /// Makes the table hold `shape` (new optional columns, ints widened to long): commits what
    /// was written so far, then the schema change, and writes on with the new schema. As with
    /// a new source schema id, the records from this one on wait until it is done.
    pub(super) async fn adopt_json_fields(&mut self, shape: NewShape) -> Result<()> {
        let current = self.catalog.load(&self.table.ident).await?;
        let plan = match plan_json_evolution(&current, &shape, &self.config) {
            Ok(plan) => plan,
            Err(e) => {
                self.checkpoint_now().await?;
                return Err(e);
            }
        };
        let changed_elsewhere = current.metadata.current_schema_id() != self.table.metadata.current_schema_id()
            || current.metadata.default_partition_spec_id() != self.spec_id();
        if plan.is_some() || changed_elsewhere {
            // A checkpoint's files share one schema and one spec.
            self.checkpoint_now().await?;
            if self.splitter.repositioning() {
                return Ok(());
            }
        }
        self.table = match plan {
            Some(_) => {
                let config = self.config.clone();
                commit_schema_change(&self.catalog, current, &config, |t| plan_json_evolution(t, &shape, &config))
                    .await?
            }
            None => current,
        };
        tracing::info!(pipeline = %self.name, table_schema_id = self.table.metadata.current_schema_id(),
            added = ?shape.additions.iter().map(|(_, name, _)| name).collect::<Vec<_>>(),
            "JSON fields taken up as columns");
        self.take_up_table().await
    }

    /// Sets the writers (decoder, files) and the JSON probe up for `self.table` as it is now.
    async fn take_up_table(&mut self) -> Result<()> {
        self.json_probe = json_probe(&self.config, &self.table);
        let setup = write_setup(&self.config, &self.sources, &self.table, &self.file_io, &self.late_before)?;
        self.pool.reconfigure(setup).await
    }

    /// The partition spec the writers write with: the default spec of the table they were set
    /// up for.
    pub(super) fn spec_id(&self) -> i32 {
        self.table.metadata.default_partition_spec_id()
    }

    /// Takes up a partition spec another engine made the table's default (Spark's `ALTER TABLE
    /// … PARTITION FIELD`), seen in a commit; call only while the writers hold no open file.
    /// Files written before keep their own spec, which stays valid.
    pub(super) async fn adopt_next_spec(&mut self) -> Result<()> {
        let Some(table) = self.next_spec.take() else {
            return Ok(());
        };
        if table.metadata.default_partition_spec_id() == self.spec_id() {
            return Ok(());
        }
        tracing::info!(pipeline = %self.name, from = self.spec_id(), to = table.metadata.default_partition_spec_id(),
            "the table has a new partition spec; new files follow it");
        self.table = table;
        self.take_up_table().await
    }
}
