//! The in-process ceiling: what one writer can do at best on one core. Decode → Arrow →
//! Parquet (zstd) through the same `TableFiles` writers the pipeline uses, into a table
//! partitioned like the end-to-end runs' table; no Kafka, no commit, on the calling (single)
//! thread.

use std::time::{Duration, Instant};

use icefall_schemas::decode::Decoder;
use icefall_table::create::TableLayout;
use icefall_table::files::TableFiles;

use super::reference::{self, Format};

pub(super) const BATCH: usize = 4096;
/// Runs per measurement; the fastest counts.
const REPEATS: usize = 3;

#[derive(Debug, Clone)]
pub struct Ceiling {
    pub format: Format,
    pub records: usize,
    pub input_bytes: usize,
    pub elapsed: Duration,
    pub decode: Duration,
    pub files: usize,
    pub file_bytes: u64,
    /// The plain libraries on the same events (JSON only; an error says why not).
    pub plain: Option<Result<super::plain::PlainRun, String>>,
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
    let catalog = icefall_integration_tests::tables::catalog(dir.path()).await;
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
        // Best of a few runs, ours and the plain libraries taking turns, so a noisy neighbour
        // on the machine skews neither side.
        let mut best: Option<Ceiling> = None;
        let mut plain: Option<Result<super::plain::PlainRun, String>> = None;
        for attempt in 0..REPEATS {
            let ceiling = run(*format, &decoder, &files, &payloads, &format!("{}-{attempt}", format.name())).await;
            if best.as_ref().is_none_or(|b| ceiling.elapsed < b.elapsed) {
                best = Some(ceiling);
            }
            if *format == Format::Json {
                let next = super::plain::measure(&payloads, &schema, dir.path());
                let faster = match (&plain, &next) {
                    (Some(Ok(old)), Ok(new)) => new.elapsed < old.elapsed,
                    (Some(Err(_)), _) => false,
                    _ => true,
                };
                if faster {
                    plain = Some(next);
                }
            }
        }
        if let Some(mut ceiling) = best {
            ceiling.plain = plain;
            out.push(ceiling);
        }
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
        plain: None,
    }
}

/// One data file format writing the same batches (see [`file_formats`]).
#[derive(Debug, Clone)]
pub struct FileFormatRun {
    pub format: iceberg::spec::DataFileFormat,
    pub records: usize,
    pub elapsed: Duration,
    pub files: usize,
    pub file_bytes: u64,
    /// Resident memory once the batches were decoded, before writing.
    pub rss_before_write: u64,
    /// Peak resident memory of the process by the end of writing.
    pub peak_rss: u64,
}

impl FileFormatRun {
    /// What writing added to the process's memory at its peak.
    pub fn writer_memory(&self) -> u64 {
        self.peak_rss.saturating_sub(self.rss_before_write)
    }

    /// One JSON line (a child process reports its run this way).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "format": format!("{:?}", self.format), "records": self.records, "seconds": self.elapsed.as_secs_f64(),
            "files": self.files, "file_bytes": self.file_bytes, "rss_before_write": self.rss_before_write,
            "peak_rss": self.peak_rss,
        })
    }

    pub fn from_json(value: &serde_json::Value) -> Option<Self> {
        use iceberg::spec::DataFileFormat;
        let format = match value["format"].as_str()? {
            "Orc" => DataFileFormat::Orc,
            _ => DataFileFormat::Parquet,
        };
        Some(FileFormatRun {
            format,
            records: value["records"].as_u64()? as usize,
            elapsed: Duration::from_secs_f64(value["seconds"].as_f64()?),
            files: value["files"].as_u64()? as usize,
            file_bytes: value["file_bytes"].as_u64()?,
            rss_before_write: value["rss_before_write"].as_u64()?,
            peak_rss: value["peak_rss"].as_u64()?,
        })
    }
}

/// Arrow → data files only (decoding done before the clock starts) in `format` ("parquet" or
/// "orc"), zstd, the reference event partitioned like the other runs, on the calling thread;
/// `properties` are extra table properties (e.g. `write.orc.stripe-size-bytes`), `partition`
/// replaces the usual partitioning. Run one format per process: the peak RSS is the process's.
pub async fn file_format_run(
    records: usize,
    name: &str,
    properties: &[(String, String)],
    partition: Option<&str>,
) -> FileFormatRun {
    use iceberg::spec::DataFileFormat;
    let format = if name == "orc" { DataFileFormat::Orc } else { DataFileFormat::Parquet };
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = icefall_integration_tests::tables::catalog(dir.path()).await;
    let schema = icefall_schemas::declare::schema_from_decls(&reference::field_decls()).expect("schema");
    let layout = TableLayout {
        schema,
        partition: vec![partition.unwrap_or(super::PARTITION).to_string()],
        properties: properties
            .iter()
            .cloned()
            .chain([("write.format.default".to_string(), name.to_string())])
            .collect(),
        sort_order: vec![],
    };
    let ident = icefall_table::catalog::parse_ident(&format!("bench.files_{name}")).expect("ident");
    let table = catalog.load_or_create(&ident, &layout).await.expect("table");
    let table_schema = table.metadata.current_schema().clone();
    let decoder = reference::decoder(Format::Json, &table_schema);
    let encoder = reference::Encoder::new(Format::Json);
    let batches: Vec<_> = (0..records)
        .collect::<Vec<_>>()
        .chunks(BATCH)
        .map(|ids| {
            let payloads: Vec<Vec<u8>> = ids.iter().map(|i| encoder.encode(*i)).collect();
            let decoded = decoder.decode(payloads.iter().map(|p| Some(p.as_slice()))).expect("decodes");
            decoded.batch
        })
        .collect();
    let files = TableFiles::new(table.name(), table.metadata.clone(), catalog.file_io().clone(), None).expect("files");
    assert_eq!(files.format(), format);
    let pid = std::process::id();
    let rss_before_write = icefall_integration_tests::process::rss(pid).unwrap_or(0);
    let mut out = None;
    for attempt in ["warm-up", "measured"] {
        let started = Instant::now();
        let mut writer = files.open(format!("{name}-{attempt}")).expect("open files");
        let take = if attempt == "warm-up" { 4 } else { batches.len() };
        for batch in batches.iter().take(take) {
            writer.write(batch.clone()).await.expect("writes");
        }
        let written = writer.close().await.expect("closes");
        if attempt == "measured" {
            let rows: u64 = written.iter().map(|f| f.record_count()).sum();
            assert_eq!(rows, records as u64, "{name}: every record in a file");
            out = Some(FileFormatRun {
                format,
                records,
                elapsed: started.elapsed(),
                files: written.len(),
                file_bytes: written.iter().map(|f| f.file_size_in_bytes()).sum(),
                rss_before_write,
                peak_rss: icefall_integration_tests::process::peak_rss(pid).unwrap_or(0),
            });
        }
    }
    out.expect("a measured run")
}
