//! One ORC data file: stripes spliced from orc-rust's and our own column encodings, framed
//! (compressed) by us, ended by our footer.
//!
//! A stripe's batches are kept (in Arrow) until the stripe is full. Then a fresh orc-rust
//! writer encodes orc-rust's columns into memory as a complete one-stripe file, whose own footer
//! tells exactly where each column's streams lie (orc-rust's writer is not `Send`, so it never
//! lives across an await); [`OwnEncoder`](super::encode) encodes the rest. We lay the streams out
//! in column order, compress each and the stripe footer (ORC's chunked framing), append the
//! stripe to the data file, and after the last one write a footer that lists our stripes and
//! carries the Iceberg type attributes. Implements iceberg-rust's `FileWriterBuilder`, so ORC
//! files go through the same rolling, data-file and partitioning writers as Parquet ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::RecordBatch;
use bytes::Bytes;
use iceberg::io::{FileWrite, OutputFile};
use iceberg::spec::{DataContentType, DataFileBuilder, DataFileFormat, Struct};
use iceberg::writer::CurrentFileStatus;
use iceberg::writer::file_writer::{FileWriter, FileWriterBuilder};
use iceberg::{Error as IcebergError, ErrorKind};
use orc_prost::Message;
use orc_rust::proto;

use super::OrcLayout;
use super::compression::{CHUNK, OrcCompression};
use super::stripe::StripeBatches;
use crate::column_stats::{FileMetrics, MetricsConfig};

/// Our writer has no registered ORC writer code: readers treat an unknown one as current.
const WRITER_ID: u32 = u32::MAX;
/// The first version a non-Java ORC writer may use.
const WRITER_VERSION: u32 = 6;

/// Opens [`OrcWriter`]s for one table schema.
#[derive(Clone)]
pub struct OrcWriterBuilder {
    layout: Arc<OrcLayout>,
    stripe_bytes: usize,
    compression: OrcCompression,
    metrics: Arc<MetricsConfig>,
    open: OpenFiles,
}

impl OrcWriterBuilder {
    /// A writer of one ORC file.
    pub fn new(
        layout: Arc<OrcLayout>,
        stripe_bytes: usize,
        compression: OrcCompression,
        metrics: Arc<MetricsConfig>,
    ) -> Self {
        OrcWriterBuilder { layout, stripe_bytes: stripe_bytes.max(1), compression, metrics, open: OpenFiles::default() }
    }

    /// The same builder for another set of files: its writers share a stripe budget of their
    /// own (see [`OpenFiles`]).
    pub fn for_new_file_set(&self) -> Self {
        OrcWriterBuilder { open: OpenFiles::default(), ..self.clone() }
    }
}

/// Stripes smaller than this are not worth their footers and seeks (the budget's floor).
const MIN_STRIPE_BYTES: usize = 1024 * 1024;

/// The open files of one file set (one writer's files of one checkpoint). An open file keeps
/// its stripe as Arrow batches until the stripe closes, so n open files could hold n stripes;
/// instead they share one stripe budget: with n open, each closes its stripe at 1/n of the
/// stripe size (at least [`MIN_STRIPE_BYTES`]) — the way ORC Java's memory manager scales
/// stripes down when many writers are open.
#[derive(Clone, Default)]
struct OpenFiles(Arc<AtomicUsize>);

impl OpenFiles {
    fn opened(&self) -> OpenFile {
        self.0.fetch_add(1, Ordering::Relaxed);
        OpenFile(Arc::clone(&self.0))
    }
}

/// One open file's place in its [`OpenFiles`], given back when the file is dropped.
struct OpenFile(Arc<AtomicUsize>);

impl OpenFile {
    /// Arrow bytes at which this file closes its stripe, of a stripe size of `stripe_bytes`.
    fn stripe_limit(&self, stripe_bytes: usize) -> usize {
        let open = self.0.load(Ordering::Relaxed).max(1);
        (stripe_bytes / open).max(MIN_STRIPE_BYTES).min(stripe_bytes)
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl FileWriterBuilder for OrcWriterBuilder {
    type R = OrcWriter;

    async fn build(&self, output: OutputFile) -> iceberg::Result<OrcWriter> {
        let metrics = FileMetrics::for_schema(&self.layout.schema, &self.metrics);
        Ok(OrcWriter {
            layout: Arc::clone(&self.layout),
            stripe_bytes: self.stripe_bytes,
            open: self.open.opened(),
            compression: self.compression,
            output,
            sink: None,
            stripe: None,
            written: 0,
            stripes: Vec::new(),
            column_sizes: vec![0; self.layout.types.len()],
            rows: 0,
            metrics,
        })
    }
}

/// Writes one ORC data file; the file is created by the first row.
pub struct OrcWriter {
    layout: Arc<OrcLayout>,
    stripe_bytes: usize,
    /// Shares the stripe budget with the other open files of its set.
    open: OpenFile,
    compression: OrcCompression,
    output: OutputFile,
    sink: Option<Box<dyn FileWrite>>,
    stripe: Option<StripeBatches>,
    /// Bytes in the file so far.
    written: u64,
    stripes: Vec<proto::StripeInformation>,
    /// Bytes on disk per ORC column (0 is the root).
    column_sizes: Vec<u64>,
    rows: usize,
    metrics: FileMetrics,
}

fn failed(what: &str) -> impl Fn(String) -> IcebergError + '_ {
    move |message| IcebergError::new(ErrorKind::DataInvalid, format!("ORC: {what}: {message}"))
}

impl OrcWriter {
    async fn flush_stripe(&mut self) -> iceberg::Result<()> {
        let Some(stripe) = self.stripe.take() else { return Ok(()) };
        let encoded = stripe.encode(&self.layout, self.compression).map_err(failed("encode a stripe"))?;
        let Some(sink) = self.sink.as_mut() else { return Ok(()) };
        let info = proto::StripeInformation {
            offset: Some(self.written),
            index_length: Some(encoded.index_length),
            data_length: Some(encoded.data_length),
            footer_length: Some(encoded.footer_length),
            number_of_rows: Some(encoded.rows),
            ..Default::default()
        };
        self.written += encoded.bytes.len() as u64;
        sink.write(Bytes::from(encoded.bytes)).await?;
        for (total, size) in self.column_sizes.iter_mut().zip(encoded.column_sizes) {
            *total += size;
        }
        self.stripes.push(info);
        Ok(())
    }
}

impl FileWriter for OrcWriter {
    async fn write(&mut self, batch: &RecordBatch) -> iceberg::Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.metrics.update(batch.columns());
        if self.sink.is_none() {
            let mut sink = self.output.writer().await?;
            sink.write(Bytes::from_static(b"ORC")).await?;
            self.sink = Some(sink);
            self.written = 3;
        }
        let stripe = self.stripe.get_or_insert_with(StripeBatches::default);
        stripe.rows += batch.num_rows() as u64;
        stripe.arrow_bytes += batch.get_array_memory_size();
        stripe.batches.push(batch.clone());
        self.rows += batch.num_rows();
        if stripe.arrow_bytes >= self.open.stripe_limit(self.stripe_bytes) {
            self.flush_stripe().await?;
        }
        Ok(())
    }

    async fn close(mut self) -> iceberg::Result<Vec<DataFileBuilder>> {
        if self.sink.is_none() {
            return Ok(vec![]); // no row: no file
        }
        self.flush_stripe().await?;
        let footer = proto::Footer {
            header_length: Some(3),
            content_length: Some(self.written),
            stripes: self.stripes.clone(),
            types: self.layout.types(),
            number_of_rows: Some(self.rows as u64),
            writer: Some(WRITER_ID),
            software_version: Some(format!("Icefall {}", env!("CARGO_PKG_VERSION"))),
            ..Default::default()
        };
        let footer = self
            .compression
            .frame(&footer.encode_to_vec())
            .map_err(|e| failed("compress the footer")(e.to_string()))?;
        let postscript = proto::PostScript {
            footer_length: Some(footer.len() as u64),
            compression: Some(self.compression.kind() as i32),
            compression_block_size: (self.compression != OrcCompression::None).then_some(CHUNK as u64),
            version: vec![0, 12],
            metadata_length: Some(0),
            writer_version: Some(WRITER_VERSION),
            magic: Some("ORC".to_string()),
            ..Default::default()
        }
        .encode_to_vec();
        // A postscript is a handful of small fields: its length always fits the last byte.
        let postscript_length =
            u8::try_from(postscript.len()).map_err(|_| failed("write the postscript")("too long".into()))?;
        let mut tail = footer;
        tail.extend_from_slice(&postscript);
        tail.push(postscript_length);
        let size = self.written + tail.len() as u64;
        let Some(mut sink) = self.sink.take() else { return Ok(vec![]) };
        sink.write(Bytes::from(tail)).await?;
        sink.close().await?;

        let metrics = self.metrics.finish();
        let column_sizes = self
            .layout
            .leaf_ids
            .iter()
            .zip(&self.column_sizes)
            .filter_map(|(id, size)| id.map(|id| (id, *size)))
            .collect();
        let mut builder = DataFileBuilder::default();
        builder
            .content(DataContentType::Data)
            .file_path(self.output.location().to_string())
            .file_format(DataFileFormat::Orc)
            .partition(Struct::empty())
            .record_count(self.rows as u64)
            .file_size_in_bytes(size)
            .column_sizes(column_sizes)
            .split_offsets(Some(self.stripes.iter().map(|s| s.offset() as i64).collect()));
        metrics.set_on(&mut builder);
        Ok(vec![builder])
    }
}

impl CurrentFileStatus for OrcWriter {
    fn current_file_path(&self) -> String {
        self.output.location().to_string()
    }

    fn current_row_num(&self) -> usize {
        self.rows
    }

    fn current_written_size(&self) -> usize {
        // The open stripe counts at its Arrow size: compressed, it is smaller, so files roll
        // a little early rather than late.
        self.written as usize + self.stripe.as_ref().map_or(0, |s| s.arrow_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_files_of_a_set_share_one_stripe_budget() {
        const MIB: usize = 1024 * 1024;
        let set = OpenFiles::default();
        let first = set.opened();
        assert_eq!(first.stripe_limit(64 * MIB), 64 * MIB, "one file: the whole stripe size");
        let others: Vec<OpenFile> = (0..3).map(|_| set.opened()).collect();
        assert_eq!(first.stripe_limit(64 * MIB), 16 * MIB, "four files: a quarter each");
        let many: Vec<OpenFile> = (0..196).map(|_| set.opened()).collect();
        assert_eq!(first.stripe_limit(64 * MIB), MIB, "never below the floor");
        assert_eq!(first.stripe_limit(20_000), 20_000, "nor above the stripe size");
        drop(many);
        drop(others);
        assert_eq!(first.stripe_limit(64 * MIB), 64 * MIB, "closed files give their share back");
        let other_set = OpenFiles::default().opened();
        assert_eq!(other_set.stripe_limit(64 * MIB), 64 * MIB, "another set has its own budget");
    }
}
