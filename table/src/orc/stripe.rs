//! One stripe of an ORC data file: the batches it holds until it is full, then its encoding —
//! orc-rust's columns through a fresh in-memory orc-rust writer (whose one-stripe file's footer
//! says where each column's streams are), ours through [`super::encode`] — laid out in column
//! order, each stream and the stripe footer framed by our compression.

use std::io::Write;
use std::sync::{Arc, Mutex};

use arrow_array::{ArrayRef, RecordBatch};
use orc_prost::Message;
use orc_rust::proto;

use super::compression::OrcCompression;
use super::encode::ColumnStreams;
use super::{Encoding, OrcLayout};

/// An in-memory sink orc-rust writes into while we keep a handle to take the bytes out.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The batches of the stripe being filled (in the table's Arrow schema).
#[derive(Default)]
pub(super) struct StripeBatches {
    pub(super) batches: Vec<RecordBatch>,
    pub(super) rows: u64,
    pub(super) arrow_bytes: usize,
}

/// A finished stripe, framed and ready to append.
pub(super) struct EncodedStripe {
    pub(super) bytes: Vec<u8>,
    pub(super) index_length: u64,
    pub(super) data_length: u64,
    pub(super) footer_length: u64,
    pub(super) rows: u64,
    /// Bytes per ORC column (0 is the root).
    pub(super) column_sizes: Vec<u64>,
}

impl StripeBatches {
    /// Encodes the stripe: orc-rust's columns through a one-stripe orc-rust file (taken apart
    /// by its own footer), ours by [`OwnEncoder`]; every stream framed by `compression`.
    pub(super) fn encode(
        self,
        layout: &OrcLayout,
        compression: OrcCompression,
    ) -> std::result::Result<EncodedStripe, String> {
        let mut by_orc_rust = match &layout.encoded {
            Some(schema) => orc_rust_streams(layout, schema, &self.batches)?.into_iter(),
            None => Vec::new().into_iter(),
        };
        // Streams in ORC column order (pre-order), each under its column index (0 is the root).
        let mut streams: Vec<(u32, proto::stream::Kind, Vec<u8>)> = Vec::new();
        let mut encodings = vec![direct()];
        for (i, column) in layout.columns.iter().enumerate() {
            let columns = match &column.encoding {
                Encoding::OrcRust(_) => {
                    vec![by_orc_rust.next().ok_or("orc-rust wrote fewer columns than it was given")?]
                }
                Encoding::Own(encoder) => {
                    let arrays: Vec<&ArrayRef> = self.batches.iter().map(|b| b.column(i)).collect();
                    encoder.encode(&arrays).map_err(|e| format!("column {}: {e}", column.name))?
                }
            };
            for ColumnStreams { streams: column_streams, encoding } in columns {
                let index = encodings.len() as u32;
                streams.extend(column_streams.into_iter().map(|(kind, bytes)| (index, kind, bytes)));
                encodings.push(encoding);
            }
        }
        if encodings.len() != layout.types.len() {
            return Err(format!("encoded {} ORC columns, the schema has {}", encodings.len(), layout.types.len()));
        }
        let mut out = EncodedStripe {
            bytes: Vec::new(),
            index_length: 0,
            data_length: 0,
            footer_length: 0,
            rows: self.rows,
            column_sizes: vec![0; layout.types.len()],
        };
        let mut footer_streams = Vec::with_capacity(streams.len());
        for (column, kind, bytes) in streams {
            let framed = compression.frame(&bytes).map_err(|e| e.to_string())?;
            match kind {
                proto::stream::Kind::RowIndex
                | proto::stream::Kind::BloomFilter
                | proto::stream::Kind::BloomFilterUtf8 => out.index_length += framed.len() as u64,
                _ => out.data_length += framed.len() as u64,
            }
            out.column_sizes[column as usize] += framed.len() as u64;
            footer_streams.push(proto::Stream {
                kind: Some(kind as i32),
                column: Some(column),
                length: Some(framed.len() as u64),
            });
            out.bytes.extend_from_slice(&framed);
        }
        let stripe_footer = proto::StripeFooter {
            streams: footer_streams,
            columns: encodings,
            // Timestamps are written in UTC: readers must not shift them.
            writer_timezone: Some("UTC".to_string()),
            ..Default::default()
        };
        let footer_bytes = compression.frame(&stripe_footer.encode_to_vec()).map_err(|e| e.to_string())?;
        out.footer_length = footer_bytes.len() as u64;
        out.bytes.extend_from_slice(&footer_bytes);
        Ok(out)
    }
}

fn direct() -> proto::ColumnEncoding {
    proto::ColumnEncoding { kind: Some(proto::column_encoding::Kind::Direct as i32), ..Default::default() }
}

/// orc-rust's encoding of its columns of `batches`: per column (in order), its streams and
/// encoding, taken out of the one-stripe file orc-rust writes.
fn orc_rust_streams(
    layout: &OrcLayout,
    schema: &arrow_schema::SchemaRef,
    batches: &[RecordBatch],
) -> std::result::Result<Vec<ColumnStreams>, String> {
    let buffer = Buffer::default();
    let mut encoder = orc_rust::ArrowWriterBuilder::new(buffer.clone(), Arc::clone(schema))
        // One stripe per encoder: we decide where stripes end.
        .with_stripe_byte_size(usize::MAX)
        .try_build()
        .map_err(|e| e.to_string())?;
    for batch in batches {
        encoder.write(&layout.encode(batch, schema)?).map_err(|e| e.to_string())?;
    }
    encoder.close().map_err(|e| e.to_string())?;
    let file = buffer.take();
    let stripe = one_stripe(&file)?;
    let start = stripe.offset() as usize;
    let footer_start = start + (stripe.index_length() + stripe.data_length()) as usize;
    let footer_end = footer_start + stripe.footer_length() as usize;
    if footer_end > file.len() {
        return Err(format!("stripe ends at {footer_end}, past the file's {} bytes", file.len()));
    }
    let footer = proto::StripeFooter::decode(&file[footer_start..footer_end]).map_err(|e| e.to_string())?;
    // Column 0 is orc-rust's root; its columns are 1..=n in schema order.
    let mut out: Vec<ColumnStreams> = footer
        .columns
        .iter()
        .skip(1)
        .map(|encoding| ColumnStreams { streams: Vec::new(), encoding: encoding.clone() })
        .collect();
    let mut at = start;
    for stream in &footer.streams {
        let end = at + stream.length() as usize;
        if end > footer_start {
            return Err("a stream runs past its stripe".into());
        }
        let column = (stream.column() as usize).checked_sub(1).and_then(|c| out.get_mut(c));
        let column = column.ok_or_else(|| format!("a stream of unknown column {}", stream.column()))?;
        column.streams.push((stream.kind(), file[at..end].to_vec()));
        at = end;
    }
    Ok(out)
}

/// The stripe of a one-stripe, uncompressed ORC file (as orc-rust writes it).
fn one_stripe(file: &[u8]) -> std::result::Result<proto::StripeInformation, String> {
    let (&postscript_length, rest) = file.split_last().ok_or("empty file")?;
    let postscript_start = rest.len().checked_sub(postscript_length as usize).ok_or("short postscript")?;
    let postscript = proto::PostScript::decode(&rest[postscript_start..]).map_err(|e| e.to_string())?;
    let footer_start = postscript_start.checked_sub(postscript.footer_length() as usize).ok_or("short footer")?;
    let footer = proto::Footer::decode(&rest[footer_start..postscript_start]).map_err(|e| e.to_string())?;
    match footer.stripes.as_slice() {
        [stripe] => Ok(stripe.clone()),
        stripes => Err(format!("expected one stripe, orc-rust wrote {}", stripes.len())),
    }
}
