//! The Iceberg field ids of an ORC file's columns: from the `iceberg.id` type attributes in
//! the footer (ours, Spark's, Trino's), or from the table's name mapping for files written
//! without them (Hive), attached to the Arrow fields as our by-id reading expects.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, ListArray, MapArray, RecordBatch, StructArray};
use arrow_schema::{DataType, Field, FieldRef, Fields};
use bytes::Bytes;
use iceberg::spec::{MappedField, NameMapping};
use orc_prost::Message;
use orc_rust::proto;
use parquet::arrow::PARQUET_FIELD_ID_META_KEY;

use super::ID;

/// Every row of an ORC file (a delete file), its columns tagged with their `iceberg.id`s.
pub(crate) fn read_all(bytes: Bytes) -> std::result::Result<Vec<RecordBatch>, String> {
    let builder = orc_rust::ArrowReaderBuilder::try_new(bytes.clone()).map_err(|e| format!("unreadable ORC: {e}"))?;
    let types = footer_types(&bytes, builder.file_metadata().compression())?;
    let ids = orc_field_ids(&types, None);
    let indexes: Vec<usize> =
        builder.file_metadata().root_data_type().children().iter().map(|c| c.data_type().column_index()).collect();
    let mut out = Vec::new();
    for batch in builder.build() {
        let batch = batch.map_err(|e| format!("unreadable ORC: {e}"))?;
        let columns = batch
            .columns()
            .iter()
            .zip(&indexes)
            .map(|(column, index)| with_field_ids(column, &types, &ids, *index))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let fields: Vec<FieldRef> = batch
            .schema()
            .fields()
            .iter()
            .zip(&columns)
            .zip(&indexes)
            .map(|((field, column), index)| with_id(field, column.data_type().clone(), &ids, *index))
            .collect();
        let schema = Arc::new(arrow_schema::Schema::new(fields));
        out.push(RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// `field` with the Iceberg field id of ORC column `index` ([`orc_field_ids`]), as our
/// reader's by-id matching expects it.
pub(crate) fn with_id(field: &Field, data_type: DataType, ids: &HashMap<usize, i32>, index: usize) -> FieldRef {
    let mut field = field.clone().with_data_type(data_type);
    if let Some(id) = ids.get(&index) {
        field = field.with_metadata(HashMap::from([(PARQUET_FIELD_ID_META_KEY.to_string(), id.to_string())]));
    }
    Arc::new(field)
}

/// Whether the file's columns carry Iceberg's `iceberg.id` attributes (ours, Spark's, Trino's).
pub(crate) fn has_attributes(types: &[proto::Type]) -> bool {
    types.iter().any(|t| t.attributes.iter().any(|a| a.key() == ID))
}

/// The Iceberg field id of every ORC column (by column index): from the `iceberg.id`
/// attributes, else from the name mapping by field names at every level (list elements under
/// `element`, map keys and values under `key` and `value`), as Iceberg's Java ORC reader does
/// for files written by Hive.
pub(crate) fn orc_field_ids(types: &[proto::Type], mapping: Option<&NameMapping>) -> HashMap<usize, i32> {
    if has_attributes(types) {
        return types
            .iter()
            .enumerate()
            .filter_map(|(index, t)| {
                let id = t.attributes.iter().find(|a| a.key() == ID)?.value().parse().ok()?;
                Some((index, id))
            })
            .collect();
    }
    fn walk(types: &[proto::Type], index: usize, mapped: &[&MappedField], out: &mut HashMap<usize, i32>) {
        let Some(t) = types.get(index) else { return };
        let children: Vec<(String, usize)> = match t.kind() {
            proto::r#type::Kind::Struct => {
                t.field_names.iter().cloned().zip(t.subtypes.iter().map(|s| *s as usize)).collect()
            }
            proto::r#type::Kind::List => t.subtypes.iter().map(|s| ("element".to_string(), *s as usize)).collect(),
            proto::r#type::Kind::Map => {
                ["key", "value"].iter().zip(&t.subtypes).map(|(name, s)| (name.to_string(), *s as usize)).collect()
            }
            _ => Vec::new(),
        };
        for (name, child) in children {
            let Some(entry) = mapped.iter().find(|m| m.names().contains(&name)) else { continue };
            if let Some(id) = entry.field_id() {
                out.insert(child, id);
            }
            let grandchildren: Vec<&MappedField> = entry.fields().iter().map(Arc::as_ref).collect();
            walk(types, child, &grandchildren, out);
        }
    }
    let mut out = HashMap::new();
    if let Some(mapping) = mapping {
        walk(types, 0, &mapping.fields().iter().collect::<Vec<_>>(), &mut out);
    }
    out
}

/// `array` (ORC column `index` as orc-rust read it) with the Iceberg field id of every nested
/// field in its Arrow fields, so it is rebuilt into the current schema by id, not by position.
pub(crate) fn with_field_ids(
    array: &ArrayRef,
    types: &[proto::Type],
    ids: &HashMap<usize, i32>,
    index: usize,
) -> std::result::Result<ArrayRef, String> {
    let subtypes: Vec<usize> =
        types.get(index).map(|t| t.subtypes.iter().map(|s| *s as usize).collect()).unwrap_or_default();
    let failed = |e: arrow_schema::ArrowError| format!("ORC column {index}: {e}");
    Ok(match array.data_type() {
        DataType::Struct(fields) => {
            let strukt = array.as_struct();
            let mut tagged = Vec::new();
            let mut children = Vec::new();
            for ((field, child), sub) in fields.iter().zip(strukt.columns()).zip(subtypes) {
                let child = with_field_ids(child, types, ids, sub)?;
                tagged.push(with_id(field, child.data_type().clone(), ids, sub));
                children.push(child);
            }
            Arc::new(StructArray::try_new(tagged.into(), children, strukt.nulls().cloned()).map_err(failed)?)
        }
        DataType::List(element) => {
            let list = array.as_list::<i32>();
            let sub = subtypes.first().copied().ok_or("a list without an element type")?;
            let values = with_field_ids(list.values(), types, ids, sub)?;
            let element = with_id(element, values.data_type().clone(), ids, sub);
            Arc::new(
                ListArray::try_new(element, list.offsets().clone(), values, list.nulls().cloned()).map_err(failed)?,
            )
        }
        DataType::Map(entries_field, sorted) => {
            let map = array.as_map();
            let [key_type, value_type] = subtypes[..] else { return Err("a map without key and value types".into()) };
            let entries = map.entries();
            let DataType::Struct(kv) = entries_field.data_type() else {
                return Err("map entries are not a struct".into());
            };
            let key = with_field_ids(entries.column(0), types, ids, key_type)?;
            let value = with_field_ids(entries.column(1), types, ids, value_type)?;
            let fields = Fields::from(vec![
                with_id(&kv[0], key.data_type().clone(), ids, key_type),
                with_id(&kv[1], value.data_type().clone(), ids, value_type),
            ]);
            let entries =
                StructArray::try_new(fields.clone(), vec![key, value], entries.nulls().cloned()).map_err(failed)?;
            let entries_field = Arc::new(entries_field.as_ref().clone().with_data_type(DataType::Struct(fields)));
            Arc::new(
                MapArray::try_new(entries_field, map.offsets().clone(), entries, map.nulls().cloned(), *sorted)
                    .map_err(failed)?,
            )
        }
        _ => Arc::clone(array),
    })
}

/// The footer's type tree (orc-rust's metadata leaves out the attributes).
pub(crate) fn footer_types(
    file: &Bytes,
    compression: Option<orc_rust::compression::Compression>,
) -> std::result::Result<Vec<proto::Type>, String> {
    let (&postscript_length, rest) = file.split_last().ok_or("empty file")?;
    let postscript_start = rest.len().checked_sub(postscript_length as usize).ok_or("short postscript")?;
    let postscript = proto::PostScript::decode(&rest[postscript_start..]).map_err(|e| e.to_string())?;
    let footer_start = postscript_start.checked_sub(postscript.footer_length() as usize).ok_or("short footer")?;
    let mut footer = Vec::new();
    orc_rust::compression::Decompressor::new(file.slice(footer_start..postscript_start), compression, Vec::new())
        .read_to_end(&mut footer)
        .map_err(|e| format!("footer: {e}"))?;
    Ok(proto::Footer::decode(footer.as_slice()).map_err(|e| e.to_string())?.types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_without_attributes_get_ids_from_the_name_mapping_at_every_level() {
        use proto::r#type::Kind;
        let ty = |kind: Kind, subtypes: &[u32], names: &[&str]| proto::Type {
            kind: Some(kind as i32),
            subtypes: subtypes.to_vec(),
            field_names: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        };
        // struct<id: bigint, geo: struct<lat: double, city: string>, tags: array<string>, m: map<string, int>>
        let types = vec![
            ty(Kind::Struct, &[1, 2, 5, 7], &["id", "geo", "tags", "m"]),
            ty(Kind::Long, &[], &[]),
            ty(Kind::Struct, &[3, 4], &["lat", "city"]),
            ty(Kind::Double, &[], &[]),
            ty(Kind::String, &[], &[]),
            ty(Kind::List, &[6], &[]),
            ty(Kind::String, &[], &[]),
            ty(Kind::Map, &[8, 9], &[]),
            ty(Kind::String, &[], &[]),
            ty(Kind::Int, &[], &[]),
        ];
        let mapping: NameMapping = serde_json::from_str(
            r#"[{"field-id": 1, "names": ["id"]},
                {"field-id": 2, "names": ["geo"], "fields": [{"field-id": 3, "names": ["lat"]}, {"field-id": 4, "names": ["city", "town"]}]},
                {"field-id": 5, "names": ["tags"], "fields": [{"field-id": 6, "names": ["element"]}]},
                {"field-id": 7, "names": ["m"], "fields": [{"field-id": 8, "names": ["key"]}, {"field-id": 9, "names": ["value"]}]}]"#,
        )
        .expect("mapping");
        let ids = orc_field_ids(&types, Some(&mapping));
        let expected: HashMap<usize, i32> = (1..=9).map(|i| (i, i as i32)).collect();
        assert_eq!(ids, expected);
        assert!(orc_field_ids(&types, None).is_empty());
    }
}
