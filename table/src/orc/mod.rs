//! ORC data files: encoded by orc-rust, finished by us.
//!
//! orc-rust's writer encodes flat columns of booleans, integers, floats, strings and binaries,
//! uncompressed, and ends the file with a footer that has no Iceberg field ids and no statistics.
//! So orc-rust encodes those top-level columns of each stripe and everything else is ours
//! ([`write`]):
//! - columns go to orc-rust in a type it encodes with the bytes ORC expects (a date is an int on
//!   disk, a time a long, a uuid or fixed a binary; [`OrcLayout`]);
//! - timestamps, decimals and nested columns (structs, lists, maps, with whatever they hold),
//!   which orc-rust cannot encode, are encoded by us ([`encode`]) and spliced into orc-rust's
//!   stripes;
//! - streams and stripe footers are compressed (zstd by default), as the table's
//!   `write.orc.compression-codec` asks;
//! - the file footer is ours: the true ORC kind (DATE) and Iceberg's ORC type attributes
//!   (`iceberg.id`, `iceberg.required`, `iceberg.long-type`, `iceberg.binary-type`,
//!   `iceberg.length`), which Spark, Trino and PyIceberg resolve columns by;
//! - the data file's Iceberg metrics (counts, sizes, bounds) are computed from the batches
//!   ([`crate::column_stats`]), as for Parquet files, so readers prune both alike.
//!
//! Columns neither can encode (nanosecond timestamps, at any depth) are refused when the
//! table's files are set up, naming each one: never a panic, never a wrong file.

mod compression;
mod encode;
pub(crate) mod field_ids;
mod stripe;
mod write;

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema as ArrowSchema, SchemaRef as ArrowSchemaRef};
use iceberg::spec::{PrimitiveType, Schema, Type};
use orc_rust::proto;

use self::encode::OwnEncoder;

pub use compression::OrcCompression;
pub use write::{OrcWriter, OrcWriterBuilder};

/// The ORC type attribute holding a column's Iceberg field id (Iceberg's ORC mapping).
pub(crate) const ID: &str = "iceberg.id";
const REQUIRED: &str = "iceberg.required";
const LONG_TYPE: &str = "iceberg.long-type";
const BINARY_TYPE: &str = "iceberg.binary-type";
const LENGTH: &str = "iceberg.length";

/// Iceberg type attributes of an ORC type, besides the id and `iceberg.required`.
type Attributes = Vec<(&'static str, String)>;

/// How one top-level column of the table is laid out in our ORC files.
#[derive(Debug, Clone)]
struct OrcColumn {
    name: String,
    encoding: Encoding,
}

/// Who encodes a column, as what ORC type.
#[derive(Debug, Clone)]
struct OrcType {
    encoding: Encoding,
    kind: proto::r#type::Kind,
    attributes: Attributes,
    /// Decimals: precision and scale.
    decimal: Option<(u32, u32)>,
}

#[derive(Debug, Clone)]
enum Encoding {
    /// orc-rust, given the column as this Arrow type (it writes the bytes `kind` expects).
    OrcRust(DataType),
    Own(OwnEncoder),
}

/// The ORC layout of a table schema: the top-level columns, and the ORC type tree (columns
/// numbered in pre-order, 0 the root).
#[derive(Debug)]
pub struct OrcLayout {
    columns: Vec<OrcColumn>,
    types: Vec<proto::Type>,
    /// Field id of each ORC column that holds values (primitives), by ORC column index.
    leaf_ids: Vec<Option<i32>>,
    /// What orc-rust encodes: its columns under their encoded types (`None`: no column is
    /// orc-rust's).
    encoded: Option<ArrowSchemaRef>,
    /// The table schema the layout is for (metrics walk its fields).
    schema: Schema,
}

impl OrcLayout {
    /// The layout of `schema`, or the list of columns ORC files cannot hold (each as
    /// "`name` (type)").
    pub fn new(schema: &Schema) -> std::result::Result<Self, Vec<String>> {
        let mut columns = Vec::new();
        let mut unsupported = Vec::new();
        for field in schema.as_struct().fields() {
            let encoding = match field.field_type.as_ref() {
                Type::Primitive(p) => orc_type(p).map(|t| t.encoding),
                nested => own_encoder(nested).map(Encoding::Own),
            };
            match encoding {
                Some(encoding) => columns.push(OrcColumn { name: field.name.clone(), encoding }),
                None => unsupported.push(format!("`{}` ({})", field.name, field.field_type)),
            }
        }
        if !unsupported.is_empty() {
            return Err(unsupported);
        }
        let mut types = vec![proto::Type {
            kind: Some(proto::r#type::Kind::Struct as i32),
            field_names: schema.as_struct().fields().iter().map(|f| f.name.clone()).collect(),
            ..Default::default()
        }];
        let mut leaf_ids = vec![None];
        for field in schema.as_struct().fields() {
            let index = types.len() as u32;
            types[0].subtypes.push(index);
            push_types(&mut types, &mut leaf_ids, &field.field_type, field.id, field.required);
        }
        let encoded: Vec<Field> = columns
            .iter()
            .filter_map(|c| match &c.encoding {
                Encoding::OrcRust(ty) => Some(Field::new(&c.name, ty.clone(), true)),
                Encoding::Own(_) => None,
            })
            .collect();
        let encoded = (!encoded.is_empty()).then(|| Arc::new(ArrowSchema::new(encoded)));
        Ok(OrcLayout { columns, types, leaf_ids, encoded, schema: schema.clone() })
    }

    /// orc-rust's columns of `batch` (in the table's Arrow schema), as orc-rust takes them
    /// (`schema` is `self.encoded`).
    fn encode(&self, batch: &RecordBatch, schema: &ArrowSchemaRef) -> std::result::Result<RecordBatch, String> {
        if batch.num_columns() != self.columns.len() {
            return Err(format!("batch has {} columns, the table {}", batch.num_columns(), self.columns.len()));
        }
        let arrays = self
            .columns
            .iter()
            .zip(batch.columns())
            .filter_map(|(column, array)| match &column.encoding {
                Encoding::OrcRust(ty) => {
                    Some(encode_array(array, ty).map_err(|e| format!("column {}: {e}", column.name)))
                }
                Encoding::Own(_) => None,
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        RecordBatch::try_new(Arc::clone(schema), arrays).map_err(|e| e.to_string())
    }

    /// The footer's type tree.
    fn types(&self) -> Vec<proto::Type> {
        self.types.clone()
    }
}

/// Appends the ORC types of a field (pre-order: the field, then its children), with Iceberg's
/// attributes, and each one's field id if it holds values.
fn push_types(types: &mut Vec<proto::Type>, leaf_ids: &mut Vec<Option<i32>>, ty: &Type, id: i32, required: bool) {
    use proto::r#type::Kind;
    let index = types.len();
    types.push(proto::Type::default());
    leaf_ids.push(None);
    let mut attributes: Attributes = vec![(ID, id.to_string()), (REQUIRED, required.to_string())];
    let mut t = proto::Type::default();
    match ty {
        Type::Primitive(p) => {
            // Checked by `OrcLayout::new`: every primitive here has an ORC type.
            if let Some(orc) = orc_type(p) {
                t.kind = Some(orc.kind as i32);
                t.precision = orc.decimal.map(|(p, _)| p);
                t.scale = orc.decimal.map(|(_, s)| s);
                attributes.extend(orc.attributes);
            }
            leaf_ids[index] = Some(id);
        }
        Type::Struct(strukt) => {
            t.kind = Some(Kind::Struct as i32);
            for child in strukt.fields() {
                t.subtypes.push(types.len() as u32);
                t.field_names.push(child.name.clone());
                push_types(types, leaf_ids, &child.field_type, child.id, child.required);
            }
        }
        Type::List(list) => {
            t.kind = Some(Kind::List as i32);
            t.subtypes.push(types.len() as u32);
            let element = &list.element_field;
            push_types(types, leaf_ids, &element.field_type, element.id, element.required);
        }
        Type::Map(map) => {
            t.kind = Some(Kind::Map as i32);
            for entry in [&map.key_field, &map.value_field] {
                t.subtypes.push(types.len() as u32);
                push_types(types, leaf_ids, &entry.field_type, entry.id, entry.required);
            }
        }
    }
    t.attributes =
        attributes.into_iter().map(|(k, v)| proto::StringPair { key: Some(k.to_string()), value: Some(v) }).collect();
    types[index] = t;
}

/// Our encoder for a column of type `ty` (any depth); `None` when ORC files cannot hold it.
fn own_encoder(ty: &Type) -> Option<OwnEncoder> {
    Some(match ty {
        Type::Primitive(p) => match p {
            PrimitiveType::Boolean => OwnEncoder::Boolean,
            PrimitiveType::Int | PrimitiveType::Long | PrimitiveType::Date | PrimitiveType::Time => OwnEncoder::Integer,
            PrimitiveType::Float => OwnEncoder::Float,
            PrimitiveType::Double => OwnEncoder::Double,
            PrimitiveType::String | PrimitiveType::Binary | PrimitiveType::Uuid | PrimitiveType::Fixed(_) => {
                OwnEncoder::Bytes
            }
            PrimitiveType::Timestamp | PrimitiveType::Timestamptz => OwnEncoder::TimestampMicros,
            PrimitiveType::Decimal { scale, .. } => OwnEncoder::Decimal { scale: *scale },
            PrimitiveType::TimestampNs | PrimitiveType::TimestamptzNs => return None,
        },
        Type::Struct(strukt) => {
            OwnEncoder::Struct(strukt.fields().iter().map(|f| own_encoder(&f.field_type)).collect::<Option<_>>()?)
        }
        Type::List(list) => OwnEncoder::List(Box::new(own_encoder(&list.element_field.field_type)?)),
        Type::Map(map) => OwnEncoder::Map(
            Box::new(own_encoder(&map.key_field.field_type)?),
            Box::new(own_encoder(&map.value_field.field_type)?),
        ),
    })
}

fn encode_array(array: &ArrayRef, encoded: &DataType) -> std::result::Result<ArrayRef, arrow_schema::ArrowError> {
    if array.data_type() == encoded {
        return Ok(Arc::clone(array));
    }
    arrow_cast::cast(array, encoded)
}

/// How a primitive column is written; `None` when it cannot be.
fn orc_type(p: &PrimitiveType) -> Option<OrcType> {
    use proto::r#type::Kind;
    let by_orc_rust = |ty: DataType, kind: Kind, attributes: Attributes| OrcType {
        encoding: Encoding::OrcRust(ty),
        kind,
        attributes,
        decimal: None,
    };
    let own = |encoder: OwnEncoder, kind: Kind, decimal: Option<(u32, u32)>| OrcType {
        encoding: Encoding::Own(encoder),
        kind,
        attributes: vec![],
        decimal,
    };
    Some(match p {
        PrimitiveType::Boolean => by_orc_rust(DataType::Boolean, Kind::Boolean, vec![]),
        PrimitiveType::Int => by_orc_rust(DataType::Int32, Kind::Int, vec![]),
        PrimitiveType::Long => by_orc_rust(DataType::Int64, Kind::Long, vec![(LONG_TYPE, "LONG".into())]),
        PrimitiveType::Float => by_orc_rust(DataType::Float32, Kind::Float, vec![]),
        PrimitiveType::Double => by_orc_rust(DataType::Float64, Kind::Double, vec![]),
        // ORC dates and ints are both signed integer runs: days since the epoch.
        PrimitiveType::Date => by_orc_rust(DataType::Int32, Kind::Date, vec![]),
        // Iceberg's ORC mapping: a time is a long of microseconds, told apart by the attribute.
        PrimitiveType::Time => by_orc_rust(DataType::Int64, Kind::Long, vec![(LONG_TYPE, "TIME".into())]),
        PrimitiveType::String => by_orc_rust(DataType::Utf8, Kind::String, vec![]),
        PrimitiveType::Binary => by_orc_rust(DataType::LargeBinary, Kind::Binary, vec![(BINARY_TYPE, "BINARY".into())]),
        PrimitiveType::Uuid => by_orc_rust(DataType::Binary, Kind::Binary, vec![(BINARY_TYPE, "UUID".into())]),
        PrimitiveType::Fixed(len) => {
            by_orc_rust(DataType::Binary, Kind::Binary, vec![(BINARY_TYPE, "FIXED".into()), (LENGTH, len.to_string())])
        }
        PrimitiveType::Timestamp => own(OwnEncoder::TimestampMicros, Kind::Timestamp, None),
        PrimitiveType::Timestamptz => own(OwnEncoder::TimestampMicros, Kind::TimestampInstant, None),
        PrimitiveType::Decimal { precision, scale } => {
            own(OwnEncoder::Decimal { scale: *scale }, Kind::Decimal, Some((*precision, *scale)))
        }
        PrimitiveType::TimestampNs | PrimitiveType::TimestamptzNs => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use iceberg::spec::{ListType, NestedField, StructType};

    #[test]
    fn unsupported_columns_are_each_named_with_their_type() {
        let ns = |id, name: &str| NestedField::optional(id, name, Type::Primitive(PrimitiveType::TimestamptzNs));
        let schema = Schema::builder()
            .with_fields(vec![
                NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
                ns(2, "ts").into(),
                NestedField::optional(
                    3,
                    "events",
                    Type::List(ListType::new(
                        NestedField::list_element(4, Type::Struct(StructType::new(vec![ns(5, "at").into()])), false)
                            .into(),
                    )),
                )
                .into(),
                NestedField::optional(
                    6,
                    "geo",
                    Type::Struct(StructType::new(vec![
                        NestedField::optional(7, "lat", Type::Primitive(PrimitiveType::Double)).into(),
                    ])),
                )
                .into(),
            ])
            .build()
            .expect("schema");
        let err = OrcLayout::new(&schema).expect_err("unsupported");
        assert_eq!(err, ["`ts` (timestamptz_ns)", "`events` (list)"], "nanoseconds at any depth; `geo` is fine");
    }

    #[test]
    fn types_carry_iceberg_attributes() {
        let schema = Schema::builder()
            .with_fields(vec![
                NestedField::required(1, "day", Type::Primitive(PrimitiveType::Date)).into(),
                NestedField::optional(2, "at", Type::Primitive(PrimitiveType::Time)).into(),
                NestedField::optional(3, "key", Type::Primitive(PrimitiveType::Fixed(4))).into(),
            ])
            .build()
            .expect("schema");
        let types = OrcLayout::new(&schema).expect("layout").types();
        assert_eq!(types[0].field_names, ["day", "at", "key"]);
        let attributes = |t: &proto::Type| -> Vec<(String, String)> {
            t.attributes.iter().map(|a| (a.key().to_string(), a.value().to_string())).collect()
        };
        assert_eq!(types[1].kind(), proto::r#type::Kind::Date);
        assert_eq!(
            attributes(&types[1]),
            [("iceberg.id".into(), "1".into()), ("iceberg.required".into(), "true".into())]
        );
        assert_eq!(types[2].kind(), proto::r#type::Kind::Long);
        assert!(attributes(&types[2]).contains(&("iceberg.long-type".into(), "TIME".into())));
        assert!(attributes(&types[3]).contains(&("iceberg.length".into(), "4".into())));
    }
}
