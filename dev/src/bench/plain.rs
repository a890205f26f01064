//! The path a user would wire up by hand from the plain libraries: arrow-json's decoder →
//! parquet's `ArrowWriter` (zstd level 3), the same JSON events on the same thread, with no
//! partitioning, no Iceberg metrics and no dead letters. Our ceiling is measured against it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::ceiling::BATCH;

/// One run of the plain libraries.
#[derive(Debug, Clone)]
pub struct PlainRun {
    pub records: usize,
    pub elapsed: Duration,
    /// Time in arrow-json's decoder.
    pub decode: Duration,
    pub file_bytes: u64,
}

impl PlainRun {
    pub fn records_per_sec(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
}

/// Decodes `payloads` (one JSON object each) with arrow-json into `schema` and writes them with
/// `ArrowWriter` into one Parquet file in `dir`. An error says what the plain path could not do.
pub fn measure(
    payloads: &[Vec<u8>],
    schema: &iceberg::spec::Schema,
    dir: &std::path::Path,
) -> Result<PlainRun, String> {
    let arrow_schema = Arc::new(iceberg::arrow::schema_to_arrow_schema(schema).map_err(|e| e.to_string())?);
    // Newline-delimited chunks, made before the clock starts: the input a user's consumer holds.
    let chunks: Vec<Vec<u8>> =
        payloads.chunks(BATCH).map(|c| c.iter().flat_map(|p| p.iter().copied().chain([b'\n'])).collect()).collect();
    let path = dir.join("plain.parquet");
    let started = Instant::now();
    let file = std::fs::File::create(&path).map_err(|e| e.to_string())?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).map_err(|e| e.to_string())?))
        .build();
    let mut writer = ArrowWriter::try_new(file, arrow_schema.clone(), Some(properties)).map_err(|e| e.to_string())?;
    let mut records = 0;
    let mut decode = Duration::ZERO;
    for chunk in &chunks {
        let decoding = Instant::now();
        let mut decoder = arrow_json::ReaderBuilder::new(arrow_schema.clone())
            .with_batch_size(BATCH)
            .build_decoder()
            .map_err(|e| e.to_string())?;
        decoder.decode(chunk).map_err(|e| format!("arrow-json: {e}"))?;
        let flushed = decoder.flush().map_err(|e| format!("arrow-json: {e}"))?;
        decode += decoding.elapsed();
        if let Some(batch) = flushed {
            records += batch.num_rows();
            writer.write(&batch).map_err(|e| e.to_string())?;
        }
    }
    writer.close().map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    let file_bytes = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
    Ok(PlainRun { records, elapsed, decode, file_bytes })
}
