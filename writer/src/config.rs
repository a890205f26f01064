//! The writer's TOML configuration. Every struct denies unknown keys so a typo fails start-up
//! instead of being ignored. String values may reference environment variables as `${NAME}` or
//! `${NAME:-default}` (for secrets: passwords, SASL credentials); an unset variable without a
//! default is an error naming it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use icefall_schemas::declare::FieldDecl;
use icefall_schemas::json::EpochUnit;
use icefall_table::CatalogConfig;
use serde::Deserialize;

use crate::{Error, Result};

mod formats;
mod layout;
mod metrics;
mod pipeline_sections;
mod routing;
mod validation;

pub use formats::{
    AvroConfig, FileFormat, MissingSchema, ProtobufConfig, RecordFormat, RegistryOAuthConfig, SchemaRegistryConfig,
};
pub use metrics::MetricsConfig;
pub use pipeline_sections::{BackpressureConfig, MetadataColumnsConfig};
pub use routing::{DeadLetterPolicy, RouteFilter, TOPIC_PLACEHOLDER, table_name_of};

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Name of this writer, written into every snapshot it makes (`icefall.writer-id`).
    #[serde(default = "default_writer_id")]
    pub writer_id: String,
    /// Catalog and storage of the tables.
    #[serde(default)]
    pub catalog: CatalogConfig,
    /// Kafka connection shared by all pipelines.
    pub kafka: KafkaConfig,
    /// What to ingest: each pipeline reads some topics into one table.
    #[serde(default)]
    pub pipelines: Vec<PipelineConfig>,
    /// Confluent Schema Registry for Avro and Protobuf records framed with a schema id.
    #[serde(default)]
    pub schema_registry: Option<SchemaRegistryConfig>,
    /// Prometheus metrics and health probes over HTTP.
    #[serde(default)]
    pub metrics: MetricsConfig,
}

fn default_writer_id() -> String {
    "icefall-writer".into()
}

/// Kafka client settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    /// Consumer group; each pipeline joins `<group_id>.<pipeline name>` unless it sets its own.
    #[serde(default = "default_group")]
    pub group_id: String,
    /// Extra librdkafka properties passed through as-is (security, timeouts, fetch sizes), e.g.
    /// `"security.protocol" = "SASL_SSL"`, `"sasl.password" = "${KAFKA_PASSWORD}"`.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Amazon MSK's IAM access control: SASL/OAUTHBEARER (over TLS unless `properties` say
    /// otherwise) with tokens signed by AWS credentials from the usual chain.
    #[serde(default)]
    pub msk_iam: Option<MskIamConfig>,
}

/// `[kafka.msk_iam]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MskIamConfig {
    /// The cluster's AWS region, e.g. `"eu-west-1"`.
    pub region: String,
}

impl KafkaConfig {
    /// librdkafka properties for every client: what `msk_iam` implies, then the user's own.
    pub fn client_properties(&self) -> BTreeMap<String, String> {
        let mut properties = BTreeMap::new();
        if self.msk_iam.is_some() {
            properties.insert("security.protocol".to_string(), "SASL_SSL".to_string());
            properties.insert("sasl.mechanism".to_string(), "OAUTHBEARER".to_string());
        }
        properties.extend(self.properties.iter().map(|(k, v)| (k.clone(), v.clone())));
        properties
    }
}

fn default_group() -> String {
    "icefall".into()
}

/// One topics → table flow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Short name for logs, metrics and the default consumer group.
    pub name: String,
    /// Topics read into the table.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Instead of `topics`: every topic whose whole name matches this regular expression,
    /// topics created later included (looked for every `topics_refresh_interval`). Needs a
    /// `{topic}` table template.
    #[serde(default)]
    pub topics_regex: Option<String>,
    /// How often the brokers are asked for new topics matching `topics_regex`.
    #[serde(default = "default_topics_refresh", with = "humantime_serde")]
    pub topics_refresh_interval: Duration,
    /// Target table, `<namespace>.<table>`; created on first start if missing. With `{topic}`
    /// in it (`"raw.{topic}"`), each topic gets its own table, named after the topic in
    /// lowercase with every character but letters, digits and `_` made `_`.
    #[serde(default)]
    pub table: String,
    /// Instead of `table`: route each JSON record by this top-level field to the table of
    /// `routes` whose pattern matches its value.
    #[serde(default)]
    pub route_field: Option<String>,
    /// With `route_field`: table → regular expression of the field's values (whole value).
    /// A record no pattern matches lands in no table.
    #[serde(default)]
    pub routes: BTreeMap<String, String>,
    /// Set on the pipeline of one route (never in the file).
    #[serde(skip)]
    pub route: Option<RouteFilter>,
    /// Create the table (and its dead-letter table) when it is missing. Off: a missing table
    /// stops the pipeline with an error naming it.
    #[serde(default = "default_true")]
    pub auto_create: bool,
    /// Records that cannot be decoded: `"table"` (the dead-letter table), `"drop"` (counted and
    /// logged only) or `"fail"` (stop the pipeline before committing them).
    #[serde(default)]
    pub dead_letter_policy: DeadLetterPolicy,
    /// Consumer group of this pipeline (default `<kafka.group_id>.<name>`).
    #[serde(default)]
    pub group_id: Option<String>,
    /// Record payload format.
    #[serde(default)]
    pub format: RecordFormat,
    /// Data file format of new files: `"parquet"` or `"orc"`. Unset: the table's
    /// `write.format.default` (Parquet for a table Icefall creates). Set on a new table, it
    /// becomes that table's `write.format.default`, so Spark and the optimizer write it too.
    #[serde(default)]
    pub file_format: Option<FileFormat>,
    /// Protobuf settings (`format = "protobuf"`).
    #[serde(default)]
    pub protobuf: Option<ProtobufConfig>,
    /// Avro settings (`format = "avro"`).
    #[serde(default)]
    pub avro: Option<AvroConfig>,
    /// When a field disappears from the source schema, drop its column (default: keep it;
    /// it reads null from then on).
    #[serde(default)]
    pub drop_removed_fields: bool,
    /// JSON only: fields the table does not have become optional columns as records bring
    /// them (types inferred from the values; an int column given a value past the int range
    /// becomes long), committed while the writer runs. Off: such fields are ignored.
    #[serde(default)]
    pub evolve: bool,
    /// JSON only: columns of the table (used to create it, and to check it when it exists).
    /// Protobuf and Avro tables take their columns from the source schema.
    #[serde(default)]
    pub schema: Vec<FieldDecl>,
    /// Instead of `schema`: a file holding `[[fields]]` declarations (TOML), an Iceberg schema
    /// (JSON), or a JSON Schema document (JSON with `properties`). Relative paths are resolved
    /// from the config file's folder.
    #[serde(default)]
    pub schema_file: Option<PathBuf>,
    /// Hidden partitioning of a new table, e.g. `["day(ts)", "bucket(16, user_id)"]`.
    #[serde(default)]
    pub partition: Vec<String>,
    /// Sort order of a new table, e.g. `["user_id", "ts desc"]`. The writer writes files as
    /// they come; compaction writes them sorted.
    #[serde(default)]
    pub sort_order: Vec<String>,
    /// Extra table properties for a new table.
    #[serde(default)]
    pub table_properties: BTreeMap<String, String>,
    /// How often writers close their files and the committer makes a snapshot.
    #[serde(default = "default_checkpoint", with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// Roll to a new data file past this size (bytes). Default: the table's
    /// `write.target-file-size-bytes`, else 512 MiB.
    #[serde(default)]
    pub target_file_size_bytes: Option<u64>,
    /// A fixed number of parallel writers (decode + encode). Unset: the pool adapts between
    /// `min_writers` and `max_writers` to the throughput.
    #[serde(default)]
    pub writers: Option<usize>,
    /// Memory for records read from Kafka but not yet written (bytes), librdkafka's prefetch
    /// queue included (a quarter of it, at most 64 MiB). When it is used up the source pauses
    /// its partitions until writers catch up, whatever the backlog.
    #[serde(default = "default_max_buffered_bytes")]
    pub max_buffered_bytes: u64,
    /// Fewest writers when load is low (fewer, larger files). Default 1.
    #[serde(default)]
    pub min_writers: Option<usize>,
    /// Most writers when load is high. Default: the number of cores.
    #[serde(default)]
    pub max_writers: Option<usize>,
    /// Unit of timestamps given as numbers in JSON.
    #[serde(default)]
    pub epoch_unit: EpochUnit,
    /// Table that receives records that fail to decode (default `<table>_dlq`).
    #[serde(default)]
    pub dead_letter_table: Option<String>,
    /// Kafka metadata written into columns (each optional; the value is the column name).
    #[serde(default)]
    pub metadata_columns: MetadataColumnsConfig,
    /// The column holding each record's event time (timestamp, timestamptz or date). Set, every
    /// snapshot carries the table's event-time watermark (see docs/freshness.md).
    #[serde(default)]
    pub event_time_column: Option<String>,
    /// Records whose event time is behind the table's event-time watermark by more than this
    /// are counted as late (`icefall.late-records`); they are still written to their
    /// event-time partition.
    #[serde(default = "default_allowed_lateness", with = "humantime_serde")]
    pub allowed_lateness: Duration,
    /// Most data files one writer keeps open at once (one per table partition it writes to in
    /// a checkpoint; each buffers a row group in memory). Past it the writer closes its files
    /// early, so memory stays bounded with many partitions × tables.
    #[serde(default = "default_max_open_files")]
    pub max_open_files_per_writer: usize,
    /// Slowing checkpoints down while the table waits for compaction.
    #[serde(default)]
    pub backpressure: BackpressureConfig,
}

fn default_max_open_files() -> usize {
    64
}

fn default_allowed_lateness() -> Duration {
    Duration::from_secs(3600)
}

fn default_true() -> bool {
    true
}

fn default_topics_refresh() -> Duration {
    Duration::from_secs(30)
}

fn default_max_buffered_bytes() -> u64 {
    256 * 1024 * 1024
}

fn default_checkpoint() -> Duration {
    Duration::from_secs(60)
}

/// Keys the writer sets itself; users must not pass them through.
const MANAGED_KAFKA_KEYS: &[(&str, &str)] = &[
    ("bootstrap.servers", "set kafka.brokers instead"),
    ("group.id", "set kafka.group_id or pipelines.group_id instead"),
    ("enable.auto.commit", "offsets live in the table; the writer commits group offsets itself after each snapshot"),
    ("enable.auto.offset.store", "the writer manages offsets itself"),
];

impl Config {
    /// Reads, interpolates `${VAR}`s, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        let mut config = Self::parse(&text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.catalog.resolve_relative_to(base);
        let resolve = |file: &mut PathBuf| {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        };
        for pipeline in &mut config.pipelines {
            pipeline.schema_file.iter_mut().for_each(resolve);
            if let Some(proto) = &mut pipeline.protobuf {
                proto.descriptor_set.iter_mut().for_each(resolve);
                proto.proto_files.iter_mut().for_each(resolve);
                proto.include_paths.iter_mut().for_each(resolve);
            }
            if let Some(avro) = &mut pipeline.avro {
                avro.schema_file.iter_mut().for_each(resolve);
            }
        }
        if let Some(registry) = &mut config.schema_registry {
            registry.ca_file.iter_mut().for_each(resolve);
            registry.client_cert_file.iter_mut().for_each(resolve);
            registry.client_key_file.iter_mut().for_each(resolve);
        }
        config.validate()?;
        Ok(config)
    }

    /// Parses config text (`${VAR}`s substituted in its values) without validating.
    pub fn parse(text: &str) -> Result<Self> {
        icefall_table::config::from_toml_with_env(text).map_err(Error::Config)
    }
}

impl PipelineConfig {
    pub fn group_id(&self, kafka: &KafkaConfig) -> String {
        self.group_id.clone().unwrap_or_else(|| format!("{}.{}", kafka.group_id, self.name))
    }

    pub fn dead_letter_table(&self) -> String {
        self.dead_letter_table.clone().unwrap_or_else(|| format!("{}_dlq", self.table))
    }

    /// Fewest and most writers of the pool (equal for a fixed pool).
    pub fn writer_bounds(&self) -> (usize, usize) {
        match self.writers {
            Some(fixed) => (fixed, fixed),
            None => {
                let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
                let min = self.min_writers.unwrap_or(1);
                (min, self.max_writers.unwrap_or(cores.max(min)))
            }
        }
    }
}

#[cfg(test)]
mod docs_sync;
#[cfg(test)]
mod tests;
