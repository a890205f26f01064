//! Position delete files as rows: read one into `data file → positions`, write such rows as
//! one Parquet position delete file of a partition, with the metrics engines need to tell
//! which data files it applies to (exact `file_path` bounds, `referenced_data_file` when it
//! names one file).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema as ArrowSchema};
use iceberg::io::FileIO;
use iceberg::spec::{
    DataContentType, DataFile, DataFileBuilder, DataFileFormat, Datum, PartitionKey, PrimitiveLiteral, Struct,
    TableMetadata,
};
use iceberg::writer::file_writer::location_generator::LocationGenerator;
use parquet::arrow::{ArrowWriter, PARQUET_FIELD_ID_META_KEY};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::locations::DataLocations;
use crate::read::deletes::{FILE_PATH, POS, column, read_delete_file};
use crate::{Error, Result};

/// Deleted row positions by data file path; each file's positions sorted, without duplicates
/// once [`normalise`]d.
pub type Positions = BTreeMap<String, Vec<i64>>;

/// Every (data file, position) row of the position delete file at `path` (Parquet or ORC).
pub async fn read(file_io: &FileIO, path: &str) -> Result<Positions> {
    let failed = |message: String| Error::Metadata { table: path.to_string(), message };
    let mut rows = Positions::new();
    for batch in read_delete_file(file_io, path).await? {
        let paths = column(&batch, FILE_PATH).map_err(failed)?;
        let paths = arrow_cast::cast(&paths, &DataType::Utf8).map_err(|e| failed(e.to_string()))?;
        let positions = column(&batch, POS).map_err(failed)?;
        let positions = arrow_cast::cast(&positions, &DataType::Int64).map_err(|e| failed(e.to_string()))?;
        let (paths, positions) = (paths.as_string::<i32>(), positions.as_primitive::<Int64Type>());
        for row in 0..batch.num_rows() {
            if paths.is_null(row) || positions.is_null(row) {
                return Err(failed("a position delete row without file_path or pos".into()));
            }
            rows.entry(paths.value(row).to_string()).or_default().push(positions.value(row));
        }
    }
    Ok(rows)
}

/// Sorts each file's positions and drops repeats (the order the spec asks files to be in).
pub fn normalise(rows: &mut Positions) {
    for positions in rows.values_mut() {
        positions.sort_unstable();
        positions.dedup();
    }
    rows.retain(|_, positions| !positions.is_empty());
}

/// Writes `rows` (normalised, not empty) as one Parquet position delete file of partition
/// `partition` of spec `spec_id`, next to the partition's data files.
pub async fn write(
    file_io: &FileIO,
    metadata: &TableMetadata,
    spec_id: i32,
    partition: &Struct,
    rows: &Positions,
) -> Result<DataFile> {
    let table = metadata.location().to_string();
    let failed = |message: String| Error::Metadata { table: table.clone(), message };
    let (Some((first, _)), Some((last, _))) = (rows.first_key_value(), rows.last_key_value()) else {
        return Err(failed("no position delete rows to write".into()));
    };
    let spec = metadata
        .partition_spec_by_id(spec_id)
        .ok_or_else(|| failed(format!("partition spec {spec_id} is not in the table")))?;
    let key = PartitionKey::new(spec.as_ref().clone(), metadata.current_schema().clone(), partition.clone());
    let name = format!("delete-{}.parquet", uuid::Uuid::now_v7());
    let path = DataLocations::new(metadata).generate_location(Some(&key), &name);

    let count: usize = rows.values().map(Vec::len).sum();
    let mut paths = Vec::with_capacity(count);
    let mut positions = Vec::with_capacity(count);
    for (file, file_positions) in rows {
        paths.extend(std::iter::repeat_n(file.as_str(), file_positions.len()));
        positions.extend_from_slice(file_positions);
    }
    let (min_pos, max_pos) = (positions.iter().min().copied(), positions.iter().max().copied());
    let field = |(id, name): (i32, &str), ty: DataType| {
        Field::new(name, ty, false).with_metadata(HashMap::from([(PARQUET_FIELD_ID_META_KEY.into(), id.to_string())]))
    };
    let schema = Arc::new(ArrowSchema::new(vec![field(FILE_PATH, DataType::Utf8), field(POS, DataType::Int64)]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(paths)), Arc::new(Int64Array::from(positions))],
    )
    .map_err(|e| failed(e.to_string()))?;
    let properties = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, schema, Some(properties)).map_err(|e| failed(e.to_string()))?;
    writer.write(&batch).map_err(|e| failed(e.to_string()))?;
    writer.close().map_err(|e| failed(e.to_string()))?;
    let size = buffer.len() as u64;
    let output = file_io.new_output(&path).map_err(Error::iceberg(format!("create {path}")))?;
    output.write(buffer.into()).await.map_err(Error::iceberg(format!("write {path}")))?;

    // Full (never truncated) file_path bounds: readers skip a delete file for every data file
    // outside them.
    let mut lower = HashMap::from([(FILE_PATH.0, Datum::string(first))]);
    let mut upper = HashMap::from([(FILE_PATH.0, Datum::string(last))]);
    if let (Some(min), Some(max)) = (min_pos, max_pos) {
        lower.insert(POS.0, Datum::long(min));
        upper.insert(POS.0, Datum::long(max));
    }
    DataFileBuilder::default()
        .content(DataContentType::PositionDeletes)
        .file_path(path)
        .file_format(DataFileFormat::Parquet)
        .partition(partition.clone())
        .partition_spec_id(spec_id)
        .record_count(count as u64)
        .file_size_in_bytes(size)
        .value_counts(HashMap::from([(FILE_PATH.0, count as u64), (POS.0, count as u64)]))
        .null_value_counts(HashMap::from([(FILE_PATH.0, 0), (POS.0, 0)]))
        .lower_bounds(lower)
        .upper_bounds(upper)
        .referenced_data_file((rows.len() == 1).then(|| first.clone()))
        .build()
        .map_err(|e| failed(format!("describe the position delete file: {e}")))
}

/// The data files a position delete file can name, from its metadata: the one it references,
/// else the range of its `file_path` bounds (a superset even when the bounds were truncated).
/// `None`: unknown (no bounds).
pub fn referenced_range(file: &DataFile) -> Option<(String, String)> {
    if let Some(path) = file.referenced_data_file() {
        return Some((path.clone(), path));
    }
    let text = |datum: Option<&Datum>| match datum.map(Datum::literal) {
        Some(PrimitiveLiteral::String(s)) => Some(s.clone()),
        _ => None,
    };
    Some((text(file.lower_bounds().get(&FILE_PATH.0))?, text(file.upper_bounds().get(&FILE_PATH.0))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rows_written_read_back_sorted_with_exact_bounds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file_io = FileIO::new_with_fs();
        let json = serde_json::json!({
            "format-version": 2, "table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1",
            "location": format!("file://{}", dir.path().display()), "last-sequence-number": 0,
            "last-updated-ms": 0, "last-column-id": 1, "current-schema-id": 0,
            "schemas": [{"type": "struct", "schema-id": 0, "fields": [
                {"id": 1, "name": "id", "required": true, "type": "long"}]}],
            "default-spec-id": 0, "partition-specs": [{"spec-id": 0, "fields": []}], "last-partition-id": 999,
            "default-sort-order-id": 0, "sort-orders": [{"order-id": 0, "fields": []}],
        });
        let metadata: TableMetadata = serde_json::from_value(json).expect("metadata");
        let long = format!("{}/data/ünïcode %2F ? # {}.parquet", dir.path().display(), "x".repeat(80));
        let mut rows = Positions::from([("a.parquet".to_string(), vec![9, 1, 9, 4]), (long.clone(), vec![0])]);
        normalise(&mut rows);
        assert_eq!(rows["a.parquet"], vec![1, 4, 9]);
        let file = write(&file_io, &metadata, 0, &Struct::empty(), &rows).await.expect("write");
        assert_eq!(file.record_count(), 4);
        assert_eq!(file.referenced_data_file(), None, "two data files");
        assert_eq!(referenced_range(&file), Some((long.clone(), "a.parquet".to_string())), "untruncated bounds");
        assert_eq!(read(&file_io, file.file_path()).await.expect("read"), rows);

        let one = Positions::from([(long.clone(), vec![3])]);
        let file = write(&file_io, &metadata, 0, &Struct::empty(), &one).await.expect("write");
        assert_eq!(file.referenced_data_file(), Some(long.clone()));
        assert_eq!(referenced_range(&file), Some((long.clone(), long)));
    }
}
