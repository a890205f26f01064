//! Kafka metadata columns: the record's topic, partition, offset, timestamp, key, headers and
//! arrival time written into columns of the user's choosing. Format-agnostic: a decoder leaves
//! these columns to [`MetadataColumns::fill`], which sets them on the decoded batch.

use std::collections::BTreeMap;

use arrow_array::RecordBatch;
use iceberg::spec::{PrimitiveType, Schema, Type};
use serde::{Deserialize, Serialize};

use crate::value::{Val, build_array};
use crate::{Error, Result};

/// What a metadata column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetaField {
    /// The record's topic.
    Topic,
    /// The record's partition.
    Partition,
    /// The record's offset.
    Offset,
    /// The record's Kafka timestamp.
    Timestamp,
    /// The record's key bytes.
    Key,
    /// The record's headers.
    Headers,
    /// When the writer received the record.
    IngestedAt,
}

impl MetaField {
    /// The type a new table gets for this column.
    pub fn default_type(self) -> &'static str {
        match self {
            MetaField::Topic => "string",
            MetaField::Partition => "int",
            MetaField::Offset => "long",
            MetaField::Timestamp | MetaField::IngestedAt => "timestamptz",
            MetaField::Key => "binary",
            MetaField::Headers => "map<string, binary>",
        }
    }

    fn accepts(self, ty: &Type) -> bool {
        use PrimitiveType as P;
        let text_or_bytes = |t: &Type| matches!(t, Type::Primitive(P::String | P::Binary));
        match (self, ty) {
            (MetaField::Topic, Type::Primitive(P::String)) => true,
            (MetaField::Partition, Type::Primitive(P::Int | P::Long)) => true,
            (MetaField::Offset, Type::Primitive(P::Long)) => true,
            (MetaField::Timestamp | MetaField::IngestedAt, Type::Primitive(P::Timestamp | P::Timestamptz)) => true,
            (MetaField::Key, t) => text_or_bytes(t),
            (MetaField::Headers, Type::Map(m)) => {
                matches!(*m.key_field.field_type, Type::Primitive(P::String))
                    && text_or_bytes(&m.value_field.field_type)
            }
            _ => false,
        }
    }
}

/// One record's metadata.
#[derive(Debug, Clone, Copy)]
pub struct RecordMeta<'a> {
    /// The record's topic.
    pub topic: &'a str,
    /// The record's partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The record's Kafka timestamp, epoch milliseconds.
    pub timestamp_ms: Option<i64>,
    /// The record's key.
    pub key: Option<&'a [u8]>,
    /// The record's headers (name, value).
    pub headers: &'a [(String, Option<Vec<u8>>)],
    /// When the writer received the record, microseconds since the epoch.
    pub ingested_at_us: i64,
}

/// The metadata columns of one table, resolved against its schema.
#[derive(Debug, Clone, Default)]
pub struct MetadataColumns {
    /// (column index in the batch, what it holds, its Iceberg type)
    columns: Vec<(usize, MetaField, Type)>,
}

impl MetadataColumns {
    /// `mapping`: column name → what it holds. Every column must exist at the top level of the
    /// schema with a fitting type; errors name the column and the fix.
    pub fn new(schema: &Schema, mapping: &BTreeMap<String, MetaField>) -> Result<Self> {
        let mut columns = Vec::new();
        for (name, field) in mapping {
            let index = schema.as_struct().fields().iter().position(|f| &f.name == name).ok_or_else(|| {
                Error::Schema(format!(
                    "metadata column {name:?} is not a top-level column of the table: add it or drop the setting"
                ))
            })?;
            let ty = schema.as_struct().fields()[index].field_type.as_ref().clone();
            if !field.accepts(&ty) {
                return Err(Error::Schema(format!(
                    "metadata column {name:?} has type {ty}, which cannot hold the {field:?}; use {}",
                    field.default_type()
                )));
            }
            columns.push((index, *field, ty));
        }
        Ok(MetadataColumns { columns })
    }

    /// True when no metadata column is configured.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Top-level column names a payload decoder must leave alone.
    pub fn names(schema: &Schema, mapping: &BTreeMap<String, MetaField>) -> Vec<String> {
        mapping.keys().filter(|n| schema.field_by_name(n).is_some()).cloned().collect()
    }

    /// Sets the metadata columns of `batch`, whose row `i` came from `metas[rows[i]]`.
    pub fn fill(&self, batch: RecordBatch, rows: &[usize], metas: &[RecordMeta<'_>]) -> Result<RecordBatch> {
        if self.columns.is_empty() {
            return Ok(batch);
        }
        let schema = batch.schema();
        let mut arrays = batch.columns().to_vec();
        for (index, field, ty) in &self.columns {
            let values: Vec<Val> = rows.iter().map(|r| value(*field, ty, &metas[*r])).collect();
            let refs: Vec<&Val> = values.iter().collect();
            arrays[*index] = build_array(schema.field(*index).data_type(), &refs)?;
        }
        Ok(RecordBatch::try_new(schema, arrays)?)
    }
}

fn bytes_as(ty: &Type, bytes: &[u8]) -> Val {
    match ty {
        Type::Primitive(PrimitiveType::String) => Val::Str(String::from_utf8_lossy(bytes).into_owned()),
        _ => Val::Bytes(bytes.to_vec()),
    }
}

fn value(field: MetaField, ty: &Type, meta: &RecordMeta<'_>) -> Val {
    match field {
        MetaField::Topic => Val::Str(meta.topic.to_string()),
        MetaField::Partition => match ty {
            Type::Primitive(PrimitiveType::Long) => Val::Long(i64::from(meta.partition)),
            _ => Val::Int(meta.partition),
        },
        MetaField::Offset => Val::Long(meta.offset),
        MetaField::Timestamp => meta.timestamp_ms.map_or(Val::Null, |ms| Val::Long(ms.saturating_mul(1000))),
        MetaField::IngestedAt => Val::Long(meta.ingested_at_us),
        MetaField::Key => meta.key.map_or(Val::Null, |k| bytes_as(ty, k)),
        MetaField::Headers => {
            let value_type = match ty {
                Type::Map(m) => m.value_field.field_type.as_ref().clone(),
                _ => Type::Primitive(PrimitiveType::Binary),
            };
            Val::Map(
                meta.headers
                    .iter()
                    .map(|(k, v)| (Val::Str(k.clone()), v.as_deref().map_or(Val::Null, |b| bytes_as(&value_type, b))))
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};

    use super::*;
    use crate::declare::{FieldDecl, schema_from_decls};
    use crate::json::{JsonDecoder, JsonOptions};

    fn decl(name: &str, ty: &str) -> FieldDecl {
        FieldDecl { name: name.into(), type_name: ty.into(), required: false, doc: None }
    }

    #[test]
    fn fills_every_metadata_column_next_to_the_payload() {
        let schema = schema_from_decls(&[
            decl("id", "long"),
            decl("kafka_topic", "string"),
            decl("kafka_partition", "int"),
            decl("kafka_offset", "long"),
            decl("kafka_ts", "timestamptz"),
            decl("kafka_key", "string"),
            decl("kafka_headers", "map<string, binary>"),
            decl("ingested", "timestamptz"),
        ])
        .expect("schema");
        let mapping = BTreeMap::from([
            ("kafka_topic".to_string(), MetaField::Topic),
            ("kafka_partition".to_string(), MetaField::Partition),
            ("kafka_offset".to_string(), MetaField::Offset),
            ("kafka_ts".to_string(), MetaField::Timestamp),
            ("kafka_key".to_string(), MetaField::Key),
            ("kafka_headers".to_string(), MetaField::Headers),
            ("ingested".to_string(), MetaField::IngestedAt),
        ]);
        let options = JsonOptions { metadata_fields: MetadataColumns::names(&schema, &mapping), ..Default::default() };
        let decoder = JsonDecoder::new(Arc::new(schema.clone()), options).expect("decoder");
        let metadata = MetadataColumns::new(&schema, &mapping).expect("metadata");
        let headers = vec![("trace".to_string(), Some(b"abc".to_vec()))];
        let metas: Vec<RecordMeta> = (0..3)
            .map(|i| RecordMeta {
                topic: "events",
                partition: 2,
                offset: 100 + i,
                timestamp_ms: Some(1_700_000_000_000 + i),
                key: Some(b"k"),
                headers: &headers,
                ingested_at_us: 42,
            })
            .collect();
        // A payload that also has a field named like a metadata column: the metadata wins.
        let payloads = [r#"{"id": 1, "kafka_offset": 999}"#, "broken", r#"{"id": 3}"#];
        let decoded = decoder.decode(payloads.iter().map(|p| Some(p.as_bytes()))).expect("decode");
        let batch = metadata.fill(decoded.batch, &decoded.rows, &metas).expect("fill");
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(1).as_string::<i32>().value(0), "events");
        assert_eq!(batch.column(2).as_primitive::<Int32Type>().value(1), 2);
        let offsets = batch.column(3).as_primitive::<Int64Type>();
        assert_eq!((offsets.value(0), offsets.value(1)), (100, 102), "rows keep their own record's offset");
        assert_eq!(batch.column(4).as_primitive::<TimestampMicrosecondType>().value(1), 1_700_000_000_002_000);
        assert_eq!(batch.column(5).as_string::<i32>().value(0), "k");
        assert_eq!(batch.column(6).as_map().value(0).len(), 1);
        assert!(batch.column(7).is_valid(0));
    }

    #[test]
    fn wrong_types_and_missing_columns_are_refused_by_name() {
        let schema = schema_from_decls(&[decl("id", "long"), decl("kafka_offset", "string")]).expect("schema");
        let wrong = BTreeMap::from([("kafka_offset".to_string(), MetaField::Offset)]);
        let err = MetadataColumns::new(&schema, &wrong).expect_err("wrong type");
        assert!(err.to_string().contains("\"kafka_offset\"") && err.to_string().contains("long"), "{err}");
        let missing = BTreeMap::from([("kafka_topic".to_string(), MetaField::Topic)]);
        assert!(MetadataColumns::new(&schema, &missing).is_err());
    }
}
