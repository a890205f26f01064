//! The in-process ceiling: what one writer can do at best on one core. Decode → Arrow →
//! Parquet (zstd) through the same `TableFiles` writers the pipeline uses, into a table
//! partitioned like the end-to-end runs' table; no Kafka, no commit, on the calling (single)
//! thread.

use std::time::{Duration, Instant};

use icefall_schemas::decode::Decoder;
use icefall_table::create::TableLayout;
use icefall_table::files::TableFiles;

use super::reference::{self, Format};

const BATCH: usize = 4096;

#[derive(Debug, Clone)]
pub struct Ceiling {
    pub format: Format,
    pub records: usize,
    pub input_bytes: usize,
    pub elapsed: Duration,
    pub decode: Duration,
    pub files: usize,
    pub file_bytes: u64,
}

impl Ceiling {
    pub fn records_per_sec(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
    pub fn mb_per_sec(&self) -> f64 {
        self.input_bytes as f64 / self.elapsed.as_secs_f64() / 1e6
    }
}

/// Measures the ceiling of each format on `records` reference events (after a warm-up).
/// Call it on a current-thread runtime so it uses one core.
pub async fn measure(formats: &[Format], records: usize) -> Vec<Ceiling> {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = crate::tables::catalog(dir.path()).await;
    let layout = TableLayout {
        schema: icefall_schemas::declare::schema_from_decls(&reference::field_decls()).expect("schema"),
        partition: vec![super::PARTITION.to_string()],
        properties: Default::default(),
        sort_order: vec![],
    };
    let ident = icefall_table::catalog::parse_ident("bench.ceiling").expect("ident");
    let table = catalog.load_or_create(&ident, &layout).await.expect("table");
    let files = TableFiles::new(table.name(), table.metadata.clone(), catalog.file_io().clone(), None).expect("files");
    let schema = table.metadata.current_schema().clone();
    let mut out = Vec::new();
    for format in formats {
        let encoder = reference::Encoder::new(*format);
        let payloads: Vec<Vec<u8>> = (0..records).map(|i| encoder.encode(i)).collect();
        let decoder = reference::decoder(*format, &schema);
        run(*format, &decoder, &files, &payloads[..(BATCH * 4).min(records)], "warm-up").await;
        out.push(run(*format, &decoder, &files, &payloads, format.name()).await);
    }
    out
}

async fn run(format: Format, decoder: &Decoder, files: &TableFiles, payloads: &[Vec<u8>], prefix: &str) -> Ceiling {
    let started = Instant::now();
    let mut decode = Duration::ZERO;
    let mut writer = files.open(prefix.to_string()).expect("open files");
    for chunk in payloads.chunks(BATCH) {
        let t = Instant::now();
        let decoded = decoder.decode(chunk.iter().map(|p| Some(p.as_slice()))).expect("decodes");
        decode += t.elapsed();
        assert!(decoded.errors.is_empty(), "{:?}", decoded.errors.first());
        writer.write(decoded.batch).await.expect("writes");
    }
    let written = writer.close().await.expect("closes");
    Ceiling {
        format,
        records: payloads.len(),
        input_bytes: payloads.iter().map(Vec::len).sum(),
        elapsed: started.elapsed(),
        decode,
        files: written.len(),
        file_bytes: written.iter().map(|f| f.file_size_in_bytes()).sum(),
    }
}
