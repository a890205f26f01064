//! Dead letters: records that failed to decode, kept whole with the reason, in the table
//! `<table>_dlq`. Their offsets count as consumed, so bad data never stops a pipeline.

use std::sync::Arc;

use base64::Engine;
use icefall_schemas::declare::{FieldDecl, schema_from_decls};
use icefall_schemas::json::{EpochUnit, JsonDecoder, JsonOptions};
use icefall_schemas::{Reason, RecordError};
use icefall_table::create::TableLayout;
use serde_json::json;

use crate::record::SourceRecord;
use crate::{Error, Result};

/// One record that could not be decoded.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub error: String,
    pub error_kind: &'static str,
    /// The record's Kafka headers, when the pipeline reads them (`metadata_columns.headers`).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl DeadLetter {
    pub fn new(record: &SourceRecord, error: RecordError) -> Self {
        DeadLetter {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
            // Copies: a dead letter outlives its batch and must not keep the batch's buffer.
            key: record.key.as_deref().map(<[u8]>::to_vec),
            value: record.payload.as_deref().map(<[u8]>::to_vec),
            error: error.message,
            error_kind: error.kind,
            headers: record.headers.clone(),
        }
    }
}

/// The columns of every dead-letter table.
pub fn layout() -> TableLayout {
    let field = |name: &str, ty: &str, required: bool, doc: &str| FieldDecl {
        name: name.into(),
        type_name: ty.into(),
        required,
        doc: Some(doc.into()),
    };
    let schema = schema_from_decls(&[
        field("topic", "string", true, "Kafka topic of the record"),
        field("partition", "int", true, "Kafka partition of the record"),
        field("offset", "long", true, "Kafka offset of the record"),
        field("timestamp", "timestamptz", false, "Kafka record timestamp"),
        field("key", "binary", false, "raw record key"),
        field("value", "binary", false, "raw record value"),
        field("error", "string", true, "why the record could not be decoded"),
        field(
            "error_kind",
            "string",
            true,
            &format!("class of the error: {}", Reason::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")),
        ),
        field("ingested_at", "timestamptz", true, "when the writer dead-lettered the record"),
        field(
            "headers",
            "list<struct<key: string not null, value: binary>>",
            false,
            "the record's Kafka headers, in order (when the pipeline reads headers: metadata_columns.headers)",
        ),
    ]);
    TableLayout {
        // A fixed, valid declaration: building it cannot fail.
        schema: schema.unwrap_or_else(|e| panic!("dead-letter schema: {e}")),
        partition: vec!["day(ingested_at)".into()],
        properties: Default::default(),
        sort_order: Vec::new(),
    }
}

/// Turns dead letters into an Arrow batch of the dead-letter table's schema. Goes through the
/// same JSON decoder as user records, so the table's own schema decides the column types.
pub fn to_batch(decoder: &JsonDecoder, letters: &[&DeadLetter]) -> Result<arrow_array::RecordBatch> {
    let now = chrono::Utc::now().timestamp_micros();
    let b64 = |b: &Option<Vec<u8>>| b.as_ref().map(|v| base64::engine::general_purpose::STANDARD.encode(v));
    let rows: Vec<Vec<u8>> = letters
        .iter()
        .map(|d| {
            json!({
                "topic": &*d.topic,
                "partition": d.partition,
                "offset": d.offset,
                "timestamp": d.timestamp_ms.map(|ms| ms * 1000),
                "key": b64(&d.key),
                "value": b64(&d.value),
                "error": d.error,
                "error_kind": d.error_kind,
                "ingested_at": now,
                "headers": d.headers.iter().map(|(k, v)| json!({"key": k, "value": b64(v)})).collect::<Vec<_>>(),
            })
            .to_string()
            .into_bytes()
        })
        .collect();
    let decoded = decoder.decode(rows.iter().map(|r| Some(r.as_slice())))?;
    if let Some((_, e)) = decoded.errors.first() {
        return Err(Error::Internal(format!("dead-letter table schema does not fit dead letters: {e}")));
    }
    Ok(decoded.batch)
}

pub fn decoder(schema: Arc<iceberg::spec::Schema>) -> Result<JsonDecoder> {
    Ok(JsonDecoder::new(schema, JsonOptions { epoch_unit: EpochUnit::Micros, ..Default::default() })?)
}
