//! Where a table's files go, as Iceberg's Java writers put them, so every engine opens them:
//!
//! - data files under `write.data.path` (else `write.folder-storage.path`, else
//!   `<location>/data`), in a folder per partition whose field names and values are
//!   URL-encoded as Java's `URLEncoder` does: a value with `/ ? # %`, spaces or non-ASCII
//!   characters is one folder level, and no reader takes its `?` or `#` for a query or fragment;
//! - metadata files (table metadata, manifest lists, manifests) under `write.metadata.path`,
//!   else `<location>/metadata`.

use std::fmt::Write;

use iceberg::spec::{PartitionKey, TableMetadata};
use iceberg::writer::file_writer::location_generator::LocationGenerator;

const DATA_PATH: &str = "write.data.path";
const OBJECT_STORAGE_PATH: &str = "write.folder-storage.path";
const METADATA_PATH: &str = "write.metadata.path";

/// The folder of new metadata files of a table.
pub fn metadata_dir(metadata: &TableMetadata) -> String {
    match metadata.properties().get(METADATA_PATH) {
        Some(path) => path.trim_end_matches('/').to_string(),
        None => format!("{}/metadata", metadata.location().trim_end_matches('/')),
    }
}

/// Locations of new data files of one table.
#[derive(Clone, Debug)]
pub struct DataLocations {
    data_dir: String,
}

impl DataLocations {
    /// Where `metadata`'s table writes its files.
    pub fn new(metadata: &TableMetadata) -> Self {
        let props = metadata.properties();
        let data_dir = match props.get(DATA_PATH).or_else(|| props.get(OBJECT_STORAGE_PATH)) {
            Some(path) => path.trim_end_matches('/').to_string(),
            None => format!("{}/data", metadata.location().trim_end_matches('/')),
        };
        DataLocations { data_dir }
    }
}

impl LocationGenerator for DataLocations {
    fn generate_location(&self, partition_key: Option<&PartitionKey>, file_name: &str) -> String {
        match partition_key.filter(|key| !PartitionKey::is_effectively_none(Some(key))) {
            Some(key) => format!("{}/{}/{file_name}", self.data_dir, partition_path(key)),
            None => format!("{}/{file_name}", self.data_dir),
        }
    }
}

/// `name=value/…` of a partition, each name and value (the transform's human string, as in
/// Java's `PartitionSpec.partitionToPath`) URL-encoded.
pub fn partition_path(key: &PartitionKey) -> String {
    let spec = key.spec();
    let types = spec.partition_type(key.schema()).ok();
    let mut path = String::new();
    for (i, field) in spec.fields().iter().enumerate() {
        let value = key.data().fields().get(i).and_then(Option::as_ref);
        let human = match types.as_ref().and_then(|t| t.fields().get(i)) {
            Some(ty) => field.transform.to_human_string(&ty.field_type, value),
            None => "null".to_string(),
        };
        if i > 0 {
            path.push('/');
        }
        path.push_str(&url_encode(&field.name));
        path.push('=');
        path.push_str(&url_encode(&human));
    }
    path
}

/// `application/x-www-form-urlencoded` encoding of UTF-8 text, as Java's
/// `URLEncoder.encode(s, UTF_8)`: letters, digits and `. - * _` stay, a space becomes `+`,
/// every other byte `%XY`.
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => out.push(byte as char),
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use iceberg::spec::{Literal, NestedField, PartitionSpec, PrimitiveType, Schema, Struct, Transform, Type};

    use super::*;

    #[test]
    fn values_are_encoded_as_javas_url_encoder_does() {
        assert_eq!(url_encode("a/b?c#d%e f"), "a%2Fb%3Fc%23d%25e+f");
        assert_eq!(url_encode("Zürich-1.5_*"), "Z%C3%BCrich-1.5_*");
        assert_eq!(url_encode("null"), "null");
    }

    #[test]
    fn partition_paths_encode_every_name_and_value() {
        let schema = Schema::builder()
            .with_fields(vec![
                NestedField::optional(1, "city name", Type::Primitive(PrimitiveType::String)).into(),
                NestedField::optional(2, "day", Type::Primitive(PrimitiveType::Date)).into(),
            ])
            .build()
            .expect("schema");
        let schema = Arc::new(schema);
        let spec = PartitionSpec::builder(schema.clone())
            .add_partition_field("city name", "city name", Transform::Identity)
            .and_then(|b| b.add_partition_field("day", "day_day", Transform::Day))
            .and_then(|b| b.build())
            .expect("spec");
        let data = Struct::from_iter([Some(Literal::string("a/b?c#d%é")), None]);
        let key = PartitionKey::new(spec, schema, data);
        assert_eq!(partition_path(&key), "city+name=a%2Fb%3Fc%23d%25%C3%A9/day_day=null");
    }
}
