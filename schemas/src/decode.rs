//! One decoder type for every payload format: JSON (declared schema), Protobuf and Avro (a
//! fixed schema, or schemas named by a Confluent schema id in each record).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_schema::SchemaRef as ArrowSchemaRef;
use iceberg::spec::Schema;

use crate::avro::{AvroSchema, RecordPlan, decode_record};
use crate::columns::{Column, decode_batch};
use crate::decoded::Decoded;
use crate::error::Reason;
use crate::evolve::{FieldIds, SourceField};
use crate::json::JsonDecoder;
use crate::proto::{MessagePlan, ProtoSchema, Scratch, decode_message};
use crate::{Error, RecordError, Result};

/// A parsed source schema of a binary format.
#[derive(Debug, Clone)]
pub enum SourceSchema {
    /// A Protobuf message schema.
    Protobuf(ProtoSchema),
    /// An Avro writer schema.
    Avro(AvroSchema),
    /// A JSON Schema document's fields (records are decoded by the JSON decoder, by name).
    JsonSchema(Vec<SourceField>),
}

impl SourceSchema {
    /// A JSON Schema document (as the registry holds it) as a source schema.
    pub fn json_schema(text: &str) -> Result<Self> {
        let document: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::Schema(format!("the JSON Schema is not JSON: {e}")))?;
        let table = crate::declare::schema_from_decls(&crate::json_schema::decls_from_json_schema(&document)?)?;
        Ok(SourceSchema::JsonSchema(crate::json::infer::source_fields_of(table.as_struct())))
    }

    /// The schema as format-neutral fields (for table creation and evolution).
    pub fn fields(&self) -> Result<Vec<SourceField>> {
        match self {
            SourceSchema::Protobuf(p) => p.fields(),
            SourceSchema::Avro(a) => a.fields(),
            SourceSchema::JsonSchema(fields) => Ok(fields.clone()),
        }
    }

    fn plan(&self, table: &Schema, ids: &FieldIds) -> Result<Plan> {
        Ok(match self {
            SourceSchema::Protobuf(p) => Plan::Protobuf(p.plan(table, ids)?, p.message_indexes()),
            SourceSchema::Avro(a) => Plan::Avro(a.plan(table, ids)?),
            SourceSchema::JsonSchema(_) => {
                return Err(Error::Schema("JSON Schema records are decoded by the JSON decoder".into()));
            }
        })
    }
}

#[derive(Debug)]
enum Plan {
    /// The message plan and its Confluent message-index path.
    Protobuf(MessagePlan, Vec<i64>),
    Avro(RecordPlan),
}

/// The schema id of a Confluent-framed record (magic byte 0, then 4 bytes big-endian).
pub fn confluent_schema_id(payload: &[u8]) -> Option<u32> {
    match payload {
        [0, a, b, c, d, ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// Reads the message-index path that follows the schema id in Confluent Protobuf framing.
fn message_indexes(input: &mut &[u8]) -> std::result::Result<Vec<i64>, RecordError> {
    let count = read_zigzag(input)?;
    if count == 0 {
        return Ok(vec![0]); // the common case, written as a single 0
    }
    if !(0..=64).contains(&count) {
        return Err(RecordError::new(Reason::BadFraming, format!("message-index count {count} is not plausible")));
    }
    (0..count).map(|_| read_zigzag(input)).collect()
}

fn read_zigzag(input: &mut &[u8]) -> std::result::Result<i64, RecordError> {
    let mut value = 0u64;
    for shift in 0..10 {
        let Some((&byte, rest)) = input.split_first() else {
            return Err(RecordError::new(Reason::BadFraming, "the record ends inside its message indexes"));
        };
        *input = rest;
        value |= u64::from(byte & 0x7f) << (shift * 7);
        if byte < 0x80 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err(RecordError::new(Reason::BadFraming, "a message index is longer than 10 bytes"))
}

/// Decodes Protobuf or Avro records into rows of one table schema.
#[derive(Debug)]
pub struct BinaryDecoder {
    arrow_schema: ArrowSchemaRef,
    source: Sources,
}

#[derive(Debug)]
enum Sources {
    /// Every record is written with this schema, unframed.
    Plain(Plan),
    /// Records carry a schema id; ids whose schema could not be used map to the reason.
    Confluent(HashMap<u32, std::result::Result<Plan, String>>),
}

impl BinaryDecoder {
    /// Records of one fixed schema.
    pub fn plain(table: &Schema, ids: &FieldIds, source: &SourceSchema) -> Result<Self> {
        Ok(BinaryDecoder { arrow_schema: arrow_schema(table)?, source: Sources::Plain(source.plan(table, ids)?) })
    }

    /// Confluent-framed records; `sources` holds every schema id seen so far (or why it is unusable).
    pub fn confluent(
        table: &Schema,
        ids: &FieldIds,
        sources: &BTreeMap<u32, std::result::Result<SourceSchema, String>>,
    ) -> Result<Self> {
        let mut plans = HashMap::new();
        for (id, source) in sources {
            let plan = match source {
                Ok(s) => Ok(s.plan(table, ids)?),
                Err(reason) => Err(reason.clone()),
            };
            plans.insert(*id, plan);
        }
        Ok(BinaryDecoder { arrow_schema: arrow_schema(table)?, source: Sources::Confluent(plans) })
    }

    /// The Arrow schema of the batches this decoder makes.
    pub fn arrow_schema(&self) -> &ArrowSchemaRef {
        &self.arrow_schema
    }

    /// Decodes a batch of payloads (`None` = a record without value).
    pub fn decode<'a>(&self, payloads: impl IntoIterator<Item = Option<&'a [u8]>>) -> Result<Decoded> {
        let mut scratch = Scratch::default();
        decode_batch(&self.arrow_schema, payloads, |payload, columns| {
            let result = self.decode_one(payload, columns, &mut scratch);
            if result.is_err() {
                scratch.clear();
            }
            result
        })
    }

    fn decode_one<'a>(
        &self,
        payload: &'a [u8],
        columns: &mut [Column],
        scratch: &mut Scratch<'a>,
    ) -> std::result::Result<(), RecordError> {
        let (plan, mut body) = match &self.source {
            Sources::Plain(plan) => (plan, payload),
            Sources::Confluent(plans) => {
                let id = confluent_schema_id(payload).ok_or_else(|| {
                    RecordError::new(
                        Reason::BadFraming,
                        "the record does not start with the Confluent magic byte 0 and a 4-byte schema id",
                    )
                })?;
                match plans.get(&id) {
                    Some(Ok(plan)) => (plan, &payload[5..]),
                    Some(Err(reason)) => {
                        return Err(RecordError::new(Reason::UnknownSchema, format!("schema id {id}: {reason}")));
                    }
                    None => {
                        return Err(RecordError::new(
                            Reason::UnknownSchema,
                            format!("schema id {id} was not resolved"),
                        ));
                    }
                }
            }
        };
        match plan {
            Plan::Protobuf(message, indexes) => {
                if matches!(self.source, Sources::Confluent(_)) {
                    let got = message_indexes(&mut body)?;
                    if &got != indexes {
                        return Err(RecordError::new(
                            Reason::WrongMessage,
                            format!("the record is message {got:?} of its schema; this pipeline reads {indexes:?}"),
                        ));
                    }
                }
                decode_message(message, body, columns, scratch)
            }
            Plan::Avro(record) => {
                decode_record(record, &mut body, Some(columns))?;
                if body.is_empty() {
                    Ok(())
                } else {
                    Err(RecordError::new(
                        Reason::BadAvro,
                        format!("{} bytes are left after the record (written with another schema?)", body.len()),
                    ))
                }
            }
        }
    }
}

fn arrow_schema(table: &Schema) -> Result<ArrowSchemaRef> {
    iceberg::arrow::schema_to_arrow_schema(table)
        .map(Arc::new)
        .map_err(|e| Error::Iceberg { context: "convert table schema to Arrow".into(), source: Box::new(e) })
}

/// The decoder a pipeline uses, whatever the format.
#[derive(Debug)]
pub enum Decoder {
    /// JSON records, by field name.
    Json(JsonDecoder),
    /// Protobuf or Avro records, by a plan per source schema.
    Binary(BinaryDecoder),
}

impl Decoder {
    /// Decodes a batch of payloads (`None`: a record without a value); bad records are returned as errors beside the batch, never fail it.
    pub fn decode<'a>(&self, payloads: impl IntoIterator<Item = Option<&'a [u8]>>) -> Result<Decoded> {
        match self {
            Decoder::Json(d) => d.decode(payloads),
            Decoder::Binary(d) => d.decode(payloads),
        }
    }

    /// The Arrow schema of the batches this decoder makes.
    pub fn arrow_schema(&self) -> &ArrowSchemaRef {
        match self {
            Decoder::Json(d) => d.arrow_schema(),
            Decoder::Binary(d) => d.arrow_schema(),
        }
    }
}

#[cfg(test)]
mod tests;
