//! Statistics files: one Puffin file per run holding a theta sketch blob per column (with the
//! `ndv` property engines read without opening the file), described as the table metadata's
//! `statistics` entry; and the sketches of an earlier file, for an incremental run.

use std::collections::HashMap;

use datasketches::theta::CompactThetaSketch;
use iceberg::io::FileIO;
use iceberg::puffin::{APACHE_DATASKETCHES_THETA_V1, Blob, CompressionCodec, PuffinReader, PuffinWriter};
use iceberg::spec::{BlobMetadata, StatisticsFile};

use crate::{Error, Result};

/// The blob property holding the estimate (Spark's and Trino's name).
pub const NDV_PROPERTY: &str = "ndv";
/// Our blob property: log2 of the sketch's nominal entries. Only sketches carrying ours are
/// merged into (another engine's smaller sketch would cap the precision).
pub const LG_K_PROPERTY: &str = "icefall.lg-k";

/// One column's sketch for a statistics file.
pub struct ColumnBlob {
    pub field_id: i32,
    pub sketch: CompactThetaSketch,
}

/// Writes `blobs` as a Puffin file at `path`, for snapshot `snapshot_id` (sequence number
/// `sequence_number`), and returns its metadata entry.
pub async fn write(
    file_io: &FileIO,
    path: &str,
    snapshot_id: i64,
    sequence_number: i64,
    blobs: &[ColumnBlob],
) -> Result<StatisticsFile> {
    let failed =
        |e: iceberg::Error| Error::Iceberg { context: format!("write statistics file {path}"), source: Box::new(e) };
    let output = file_io.new_output(path).map_err(failed)?;
    let created_by = format!("icefall-optimizer {}", env!("CARGO_PKG_VERSION"));
    let mut writer = PuffinWriter::new(&output, HashMap::from([("created-by".to_string(), created_by)]), false)
        .await
        .map_err(failed)?;
    let mut blob_metadata = Vec::new();
    for blob in blobs {
        let properties = HashMap::from([
            (NDV_PROPERTY.to_string(), (blob.sketch.estimate().round() as i64).to_string()),
            (LG_K_PROPERTY.to_string(), super::sketch::LG_K.to_string()),
        ]);
        let puffin_blob = Blob::builder()
            .r#type(APACHE_DATASKETCHES_THETA_V1.to_string())
            .fields(vec![blob.field_id])
            .snapshot_id(snapshot_id)
            .sequence_number(sequence_number)
            .data(blob.sketch.serialize())
            .properties(properties.clone())
            .build();
        writer.add(puffin_blob, CompressionCodec::None).await.map_err(failed)?;
        blob_metadata.push(BlobMetadata {
            r#type: APACHE_DATASKETCHES_THETA_V1.to_string(),
            snapshot_id,
            sequence_number,
            fields: vec![blob.field_id],
            properties,
        });
    }
    writer.close().await.map_err(failed)?;
    let bytes = file_io.new_input(path).map_err(failed)?.read().await.map_err(failed)?;
    // Footer: magic, payload, payload size (u32 LE), flags (4 bytes), magic.
    let footer_payload = bytes
        .len()
        .checked_sub(12)
        .and_then(|at| bytes.get(at..at + 4))
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| Error::Statistics(format!("{path} has no Puffin footer")))?;
    Ok(StatisticsFile {
        snapshot_id,
        statistics_path: path.to_string(),
        file_size_in_bytes: bytes.len() as i64,
        file_footer_size_in_bytes: i64::from(footer_payload) + 16,
        key_metadata: None,
        blob_metadata,
    })
}

/// The theta sketches of `file` by field id (blobs of one field each).
pub async fn read_sketches(file_io: &FileIO, file: &StatisticsFile) -> Result<HashMap<i32, CompactThetaSketch>> {
    let path = &file.statistics_path;
    let failed =
        |e: iceberg::Error| Error::Iceberg { context: format!("read statistics file {path}"), source: Box::new(e) };
    let reader = PuffinReader::new(file_io.new_input(path).map_err(failed)?);
    let metadata = reader.file_metadata().await.map_err(failed)?.clone();
    let mut sketches = HashMap::new();
    for blob in metadata.blobs() {
        let [field_id] = blob.fields() else { continue };
        if blob.blob_type() != APACHE_DATASKETCHES_THETA_V1 {
            continue;
        }
        let data = reader.blob(blob).await.map_err(failed)?;
        let sketch = CompactThetaSketch::deserialize(data.data())
            .map_err(|e| Error::Statistics(format!("{path}: the sketch of field {field_id}: {e}")))?;
        sketches.insert(*field_id, sketch);
    }
    Ok(sketches)
}
