//! The source schemas of one pipeline's records: none (JSON, columns declared in config), one
//! fixed Protobuf/Avro schema, or every schema id seen so far in Confluent-framed records
//! (Protobuf, Avro, or JSON Schema: JSON records framed by a registry serializer).

use std::collections::BTreeMap;
use std::sync::Arc;

use iceberg::spec::Schema;
use icefall_schemas::avro::AvroSchema;
use icefall_schemas::decode::{BinaryDecoder, Decoder, SourceSchema};
use icefall_schemas::evolve::FieldIds;
use icefall_schemas::json::{JsonDecoder, JsonOptions};
use icefall_schemas::proto::{ProtoOptions, ProtoSchema};
use icefall_table::Backoff;
use tokio::sync::watch;

use crate::config::{Config, MissingSchema, PipelineConfig, ProtobufConfig, RecordFormat};
use crate::schema::registry::{LookupError, RegisteredSchema, RegistryClient};
use crate::{Error, Result};

pub enum SourceSchemas {
    /// Columns come from the config; no source schema.
    Json,
    /// Every record is written with this schema.
    Fixed(SourceSchema),
    /// Records name their schema by id.
    Registry(RegistrySchemas),
}

pub struct RegistrySchemas {
    client: Arc<RegistryClient>,
    format: RegistryFormat,
    /// Every id seen so far: its schema, or why it cannot be used (its records are dead-lettered).
    known: BTreeMap<u32, std::result::Result<SourceSchema, String>>,
    missing_schema: MissingSchema,
}

/// What the registry's schemas describe.
enum RegistryFormat {
    Avro,
    Protobuf(ProtobufConfig),
    /// JSON records: decoded by name with the table's schema whatever their id; a new id's
    /// JSON Schema only evolves the table.
    Json,
}

fn proto_options(config: &ProtobufConfig) -> ProtoOptions {
    ProtoOptions { timestamp_fields: config.timestamp_fields.clone(), timestamp_unit: config.timestamp_unit }
}

fn read(path: &std::path::Path, key: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Config(format!("{key}: cannot read {}: {e}", path.display())))
}

impl SourceSchemas {
    /// Reads and compiles fixed schemas; sets up the registry client otherwise.
    pub fn load(config: &Config, p: &PipelineConfig) -> Result<Self> {
        let at = format!("pipelines[{}]", p.name);
        let registry = |format: RegistryFormat| -> Result<Self> {
            let settings = config.schema_registry.as_ref().ok_or_else(|| {
                Error::Config(format!("{at}: records with schema ids need a [schema_registry] section"))
            })?;
            Ok(SourceSchemas::Registry(RegistrySchemas {
                client: Arc::new(RegistryClient::new(settings)?),
                format,
                known: BTreeMap::new(),
                missing_schema: settings.missing_schema,
            }))
        };
        match p.format {
            // JSON records framed by a registry serializer name their JSON Schema; unframed
            // ones never reach the registry.
            RecordFormat::Json if config.schema_registry.is_some() => registry(RegistryFormat::Json),
            RecordFormat::Json => Ok(SourceSchemas::Json),
            RecordFormat::Protobuf => {
                let proto = p.protobuf.clone().unwrap_or_default();
                let message = proto.message.clone().unwrap_or_default();
                let schema = if let Some(set) = &proto.descriptor_set {
                    let key = format!("{at}.protobuf.descriptor_set");
                    ProtoSchema::from_descriptor_set(&read(set, &key)?, &message, proto_options(&proto))
                        .map_err(|e| Error::Config(format!("{key}: {e}")))?
                } else if !proto.proto_files.is_empty() {
                    ProtoSchema::from_proto_files(
                        &proto.proto_files,
                        &proto.include_paths,
                        &message,
                        proto_options(&proto),
                    )
                    .map_err(|e| Error::Config(format!("{at}.protobuf.proto_files: {e}")))?
                } else {
                    return registry(RegistryFormat::Protobuf(proto));
                };
                Ok(SourceSchemas::Fixed(SourceSchema::Protobuf(schema)))
            }
            RecordFormat::Avro => match p.avro.as_ref().and_then(|a| a.schema_file.as_ref()) {
                Some(file) => {
                    let key = format!("{at}.avro.schema_file");
                    let text = String::from_utf8(read(file, &key)?)
                        .map_err(|_| Error::Config(format!("{key}: {} is not UTF-8 text", file.display())))?;
                    let schema = AvroSchema::parse(&text).map_err(|e| Error::Config(format!("{key}: {e}")))?;
                    Ok(SourceSchemas::Fixed(SourceSchema::Avro(schema)))
                }
                None => registry(RegistryFormat::Avro),
            },
        }
    }

    /// The registry's schemas (`None` for unframed JSON or a fixed schema).
    pub fn registry(&self) -> Option<&RegistrySchemas> {
        if let SourceSchemas::Registry(r) = self { Some(r) } else { None }
    }

    /// The schema a new table is created from, and an existing one evolved to, at start-up:
    /// the fixed schema, or the latest version of `subject` in the registry (`None` when the
    /// subject has none yet, and for JSON: its declared columns make the table, the schema ids
    /// its records name evolve it).
    /// Returns the schema with its registry id (`None` for a fixed schema).
    pub async fn initial(
        &mut self,
        subject: &str,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<Option<(Option<u32>, SourceSchema)>> {
        match self {
            SourceSchemas::Json => Ok(None),
            SourceSchemas::Registry(RegistrySchemas { format: RegistryFormat::Json, .. }) => Ok(None),
            SourceSchemas::Fixed(s) => Ok(Some((None, s.clone()))),
            SourceSchemas::Registry(r) => {
                let client = r.client.clone();
                let found = retry(shutdown, || client.latest(subject)).await?;
                match found {
                    Some((id, registered)) => {
                        let parsed = r.parse(id, registered);
                        r.known.insert(id, parsed.clone());
                        Ok(parsed.ok().map(|s| (Some(id), s)))
                    }
                    None => Ok(None),
                }
            }
        }
    }

    /// Looks up a schema id not seen before. `None`: unusable (recorded; its records are
    /// dead-lettered with the reason). Only answers that stay the same on every read are
    /// recorded: a schema that does not parse or is of the wrong type, or (with
    /// `missing_schema = "dead_letter"`) one the registry does not have. An unavailable
    /// registry, and by default a missing schema, are waited for.
    pub async fn fetch(&mut self, id: u32, shutdown: &watch::Receiver<bool>) -> Result<Option<SourceSchema>> {
        let SourceSchemas::Registry(r) = self else { return Ok(None) };
        let client = r.client.clone();
        let found = match r.missing_schema {
            MissingSchema::DeadLetter => retry(shutdown, || client.schema_by_id(id)).await?,
            MissingSchema::Wait => Some(retry_until_found(shutdown, id, || client.schema_by_id(id)).await?),
        };
        let parsed = match found {
            Some(registered) => r.parse(id, registered),
            None => Err("not found in the schema registry".to_string()),
        };
        if let Err(reason) = &parsed {
            tracing::warn!(schema_id = id, reason, "records with this schema id go to the dead-letter table");
        }
        r.known.insert(id, parsed.clone());
        Ok(parsed.ok())
    }

    /// A decoder writing into `table` (routing source fields by `ids`).
    pub fn decoder(&self, table: &Schema, ids: &FieldIds, json: JsonOptions) -> Result<Decoder> {
        Ok(match self {
            SourceSchemas::Json => Decoder::Json(JsonDecoder::new(Arc::new(table.clone()), json)?),
            SourceSchemas::Fixed(s) => Decoder::Binary(BinaryDecoder::plain(table, ids, s)?),
            SourceSchemas::Registry(RegistrySchemas { format: RegistryFormat::Json, .. }) => {
                Decoder::Json(JsonDecoder::new(Arc::new(table.clone()), json)?)
            }
            SourceSchemas::Registry(r) => Decoder::Binary(BinaryDecoder::confluent(table, ids, &r.known)?),
        })
    }
}

impl RegistrySchemas {
    pub fn knows(&self, id: u32) -> bool {
        self.known.contains_key(&id)
    }

    fn parse(&self, id: u32, registered: RegisteredSchema) -> std::result::Result<SourceSchema, String> {
        match (registered.schema_type.as_str(), &self.format) {
            ("PROTOBUF", RegistryFormat::Protobuf(config)) => ProtoSchema::from_source(
                &format!("schema-{id}.proto"),
                &registered.schema,
                config.message.as_deref(),
                proto_options(config),
            )
            .map(SourceSchema::Protobuf)
            .map_err(|e| e.to_string()),
            ("AVRO", RegistryFormat::Avro) => {
                AvroSchema::parse(&registered.schema).map(SourceSchema::Avro).map_err(|e| e.to_string())
            }
            ("JSON", RegistryFormat::Json) => SourceSchema::json_schema(&registered.schema).map_err(|e| e.to_string()),
            (other, format) => Err(format!(
                "schema id {id} is a {other} schema, but this pipeline reads {}",
                match format {
                    RegistryFormat::Avro => "Avro",
                    RegistryFormat::Protobuf(_) => "Protobuf",
                    RegistryFormat::Json => "JSON (JSON Schema)",
                }
            )),
        }
    }
}

/// Retries a lookup while the registry is unavailable *or* does not have schema `id` yet
/// (`missing_schema = "wait"`): the records stay unread meanwhile, so each lands where it would
/// on any other read.
async fn retry_until_found<T, F, Fut>(shutdown: &watch::Receiver<bool>, id: u32, lookup: F) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, LookupError>>,
{
    let mut backoff = Backoff::unavailable();
    loop {
        match retry(shutdown, &lookup).await? {
            Some(found) => return Ok(found),
            None if *shutdown.borrow() => {
                return Err(Error::Registry(format!("schema id {id} is not in the registry; stopped while waiting")));
            }
            None => {
                let delay = backoff.next_delay();
                tracing::warn!(schema_id = id, retry_in = ?delay,
                    "a record names a schema id the registry does not have; waiting for it (records stay unread). \
                     Set schema_registry.missing_schema = \"dead_letter\" to dead-letter such records instead");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Retries a registry lookup while the registry is unavailable. `Ok(None)`: not found.
async fn retry<T, F, Fut>(shutdown: &watch::Receiver<bool>, lookup: F) -> Result<Option<T>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, LookupError>>,
{
    let mut backoff = Backoff::unavailable();
    loop {
        match lookup().await {
            Ok(found) => return Ok(Some(found)),
            Err(LookupError::NotFound(_)) => return Ok(None),
            Err(LookupError::Unavailable(reason)) if !*shutdown.borrow() => {
                let delay = backoff.next_delay();
                tracing::warn!(reason, retry_in = ?delay, "schema registry unavailable; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(Error::Registry(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A lookup answering 404 `misses` times, then the schema.
    fn lookup(
        misses: u32,
        calls: &AtomicU32,
    ) -> impl std::future::Future<Output = std::result::Result<u32, LookupError>> {
        let call = calls.fetch_add(1, Ordering::SeqCst);
        async move { if call < misses { Err(LookupError::NotFound("schema id 7".into())) } else { Ok(7) } }
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_schema_is_waited_for_never_recorded_as_bad() {
        let (_stop, shutdown) = watch::channel(false);
        let calls = AtomicU32::new(0);
        let found = retry_until_found(&shutdown, 7, || lookup(3, &calls)).await.expect("found");
        assert_eq!((found, calls.load(Ordering::SeqCst)), (7, 4), "three 404s waited out");
        // With `dead_letter` the first 404 is the answer.
        let calls = AtomicU32::new(0);
        assert!(retry(&shutdown, || lookup(3, &calls)).await.expect("answered").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn an_unavailable_registry_is_waited_for_and_shutdown_ends_the_wait() {
        let (stop, shutdown) = watch::channel(false);
        let calls = AtomicU32::new(0);
        let flaky = || {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            async move { if call < 2 { Err(LookupError::Unavailable("503".into())) } else { Ok(1u32) } }
        };
        assert_eq!(retry(&shutdown, flaky).await.expect("answered"), Some(1));
        stop.send(true).expect("send");
        let calls = AtomicU32::new(0);
        let err = retry_until_found(&shutdown, 7, || lookup(u32::MAX, &calls)).await.expect_err("stopped");
        assert!(err.to_string().contains("schema id 7"), "{err}");
    }
}
