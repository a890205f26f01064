//! `icefall-dev`: the developers' tools, apart from the tests: produce sample events and inspect
//! a table (the quickstart), run the writer benchmark (`scripts/bench.sh`). It drives the
//! integration tests' harness (broker, producer, writer processes) without being a test.

mod bench;

use std::collections::BTreeMap;
use std::path::PathBuf;

use bench::BenchOptions;
use bench::reference::Format;
use clap::Parser;
use icefall_integration_tests::produce::{TestProducer, event_json};
use icefall_integration_tests::tables;
use icefall_table::catalog::parse_ident;

#[derive(Parser)]
#[command(name = "icefall-dev", about = "Quickstart helper: sample events and table inspection")]
enum Cli {
    /// Produce sample JSON events (ids `from..from+count`, round-robin over partitions).
    Produce {
        #[arg(long)]
        brokers: String,
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 10_000)]
        count: i64,
        #[arg(long, default_value_t = 0)]
        from: i64,
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        /// Make every Nth record malformed (0 = none), to show the dead-letter table.
        #[arg(long, default_value_t = 0)]
        bad_every: i64,
    },
    /// The writer benchmark: in-process ceiling, broker consume-only rate, end to end per core.
    /// Starts its own broker; build in release (`scripts/bench.sh` does).
    Bench {
        /// Records pre-produced per format for the end-to-end runs (a run ends at a checkpoint
        /// tick, so short runs measure the tick more than the writer).
        #[arg(long, default_value_t = 3_000_000)]
        records: usize,
        /// Records per format for the in-process ceiling.
        #[arg(long, default_value_t = 300_000)]
        ceiling_records: usize,
        /// Formats, comma-separated: json, protobuf, avro.
        #[arg(long, default_value = "json,protobuf,avro")]
        formats: String,
        /// Core counts to pin the writer to, comma-separated; `auto`: 1 and 2, or on 4 cores and
        /// more powers of two up to half the machine, the broker pinned to the other half.
        #[arg(long, default_value = "auto")]
        cores: String,
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        /// The writer's checkpoint interval.
        #[arg(long, default_value = "1s")]
        checkpoint: String,
        /// The pipeline's `max_buffered_bytes` (default: the writer's own default, 256 MiB).
        #[arg(long)]
        max_buffered_bytes: Option<u64>,
        /// The `icefall-writer` binary (default: beside this one).
        #[arg(long)]
        writer: Option<PathBuf>,
        /// Folder kept for each run's config, writer log, catalog and table.
        #[arg(long, default_value = "target/bench-runs")]
        out: PathBuf,
    },
    /// The in-process ceiling only (decode → Arrow → Parquet on one core), with the plain
    /// libraries on the same events. Build in release.
    Ceiling {
        #[arg(long, default_value_t = 300_000)]
        records: usize,
        /// Formats, comma-separated: json, protobuf, avro.
        #[arg(long, default_value = "json,protobuf,avro")]
        formats: String,
    },
    /// Data file formats only: Parquet (the baseline) and ORC writing the same Arrow batches.
    /// Build in release.
    BenchFiles {
        #[arg(long, default_value_t = 300_000)]
        records: usize,
        /// One format in this process, reported as a JSON line (how the parent measures each).
        #[arg(long, hide = true)]
        only: Option<String>,
        /// With `--only`: a table property `key=value` (repeatable).
        #[arg(long = "property", hide = true)]
        properties: Vec<String>,
        /// With `--only`: the table's partitioning instead of the usual one.
        #[arg(long, hide = true)]
        partition: Option<String>,
    },
    /// Build identical tables of small files (one append commit each, as a streaming writer
    /// makes them) in `<dir>/catalog.db` + `<dir>/warehouse`, to compact them with different
    /// engines (`scripts/bench-compaction.sh`). Build in release.
    SmallFiles {
        #[arg(long)]
        dir: PathBuf,
        /// Tables to build, comma-separated `<namespace>.<table>`.
        #[arg(long, value_delimiter = ',')]
        tables: Vec<String>,
        #[arg(long, default_value_t = 200)]
        files: usize,
        #[arg(long, default_value_t = 5_000)]
        rows_per_file: usize,
    },
    /// Print a table's snapshots, offsets and row count.
    Inspect {
        /// Folder holding catalog.db and warehouse/.
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        table: String,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    match Cli::parse() {
        Cli::Produce { brokers, topic, count, from, partitions, bad_every } => {
            let producer = TestProducer::new(&brokers, &topic);
            let mut per_partition: BTreeMap<i32, i64> = BTreeMap::new();
            for id in from..from + count {
                let partition = (id % i64::from(partitions)) as i32;
                let payload = if bad_every > 0 && id % bad_every == bad_every - 1 {
                    format!("{{\"id\": {id}, \"ts\": \"not a time\"}}")
                } else {
                    event_json(id)
                };
                producer.send(partition, &id.to_string(), payload.as_bytes());
                *per_partition.entry(partition).or_default() += 1;
            }
            producer.flush();
            println!("produced {count} events to {topic}: {per_partition:?}");
        }
        Cli::Ceiling { records, formats } => {
            bench::print_ceilings(&parse_formats(&formats), records).await;
        }
        Cli::Bench {
            records,
            ceiling_records,
            formats,
            cores,
            partitions,
            checkpoint,
            max_buffered_bytes,
            writer,
            out,
        } => {
            let formats = parse_formats(&formats);
            let cores = match cores.as_str() {
                "auto" => Vec::new(),
                list => list
                    .split(',')
                    .map(|c| c.trim().parse().unwrap_or_else(|_| fail(&format!("--cores: {c:?} is not a number"))))
                    .collect(),
            };
            let writer = writer.unwrap_or_else(|| {
                std::env::current_exe()
                    .ok()
                    .and_then(|exe| exe.parent().map(|dir| dir.join("icefall-writer")))
                    .unwrap_or_else(|| fail("cannot find icefall-writer; pass --writer"))
            });
            if !writer.exists() {
                fail(&format!("{} is missing: build it (scripts/bench.sh builds both in release)", writer.display()));
            }
            let options = BenchOptions {
                records,
                ceiling_records,
                formats,
                cores,
                partitions,
                checkpoint,
                max_buffered_bytes,
                writer,
                out,
            };
            bench::run(&options).await;
        }
        Cli::BenchFiles { records, only: Some(format), properties, partition } => {
            let properties: Vec<(String, String)> = properties
                .iter()
                .map(|p| {
                    let (key, value) =
                        p.split_once('=').unwrap_or_else(|| fail(&format!("--property {p:?}: key=value")));
                    (key.to_string(), value.to_string())
                })
                .collect();
            let run = bench::ceiling::file_format_run(records, &format, &properties, partition.as_deref()).await;
            println!("{}", run.to_json());
        }
        Cli::BenchFiles { records, only: None, .. } => bench::print_file_formats(records).await,
        Cli::SmallFiles { dir, tables, files, rows_per_file } => {
            let catalog = tables::catalog(&dir).await;
            for table in tables {
                let ident = parse_ident(&table).unwrap_or_else(|e| fail(&e.to_string()));
                let built = icefall_optimizer::bench::build_small_files(&catalog, &ident, files, rows_per_file)
                    .await
                    .unwrap_or_else(|e| fail(&e.to_string()));
                println!("{table}: {files} files of {rows_per_file} rows at {}", built.metadata_location);
            }
        }
        Cli::Inspect { dir, table } => {
            let catalog = tables::catalog(&dir).await;
            let loaded = match catalog.load(&parse_ident(&table).unwrap_or_else(|e| panic!("{e}"))).await {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            };
            println!("table {table} at {}", loaded.metadata_location);
            let mut snapshots: Vec<_> = loaded.metadata.snapshots().collect();
            snapshots.sort_by_key(|s| s.timestamp_ms());
            for s in snapshots {
                let summary = &s.summary().additional_properties;
                println!(
                    "  snapshot {:>20}  {:?}  +{} rows  +{} files  checkpoint {}  offsets {}",
                    s.snapshot_id(),
                    s.summary().operation,
                    summary.get("added-records").map_or("0", String::as_str),
                    summary.get("added-data-files").map_or("0", String::as_str),
                    summary.get("icefall.checkpoint").map_or("-", String::as_str),
                    summary.get("icefall.offsets").map_or("-", String::as_str),
                );
            }
            let rows: usize = tables::scan(&catalog, &table, &[]).await.iter().map(|b| b.num_rows()).sum();
            println!("rows: {rows}");
        }
    }
}

fn parse_formats(formats: &str) -> Vec<Format> {
    formats
        .split(',')
        .map(|f| Format::parse(f.trim()).unwrap_or_else(|| fail(&format!("--formats: unknown format {f:?}"))))
        .collect()
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2);
}
