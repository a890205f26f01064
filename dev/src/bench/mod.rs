//! `icefall-dev bench`: the writer's benchmark in one run on one machine: the in-process
//! ceiling per format, the broker's consume-only rate, and the writer end to end on 1..N cores
//! against the ceiling, with peak RSS, files, bytes and writer count over time.
//! `scripts/bench.sh` builds in release and runs it; figures go to `docs/benchmarks.md`.

pub mod ceiling;
pub mod end_to_end;
mod plain;
pub mod reference;

use std::path::PathBuf;

use reference::Format;

/// Hidden partitioning of the benchmark tables (ceiling and end to end alike).
pub const PARTITION: &str = "day(event_time)";

pub struct BenchOptions {
    /// Records pre-produced per format for the end-to-end runs.
    pub records: usize,
    /// Records per format for the in-process ceiling.
    pub ceiling_records: usize,
    pub formats: Vec<Format>,
    /// Core counts to run the writer on (pinned to CPUs `0..n`); empty: 1 and 2, or on 4 cores
    /// and more powers of two up to half the machine (the broker on the other half).
    pub cores: Vec<usize>,
    pub partitions: i32,
    pub checkpoint: String,
    /// The pipeline's `max_buffered_bytes` (`None`: the writer's default).
    pub max_buffered_bytes: Option<u64>,
    /// The `icefall-writer` binary (a release build).
    pub writer: PathBuf,
    /// Folder for each run's config, log, catalog and table.
    pub out: PathBuf,
}

/// One measured way of writing files: a child process of this binary
/// (`icefall-dev bench-files --only <format> …`), so each has its own peak RSS.
struct FileVariant {
    label: &'static str,
    format: &'static str,
    properties: &'static [&'static str],
    partition: Option<&'static str>,
    records: usize,
}

impl FileVariant {
    fn run(&self) -> ceiling::FileFormatRun {
        let exe = std::env::current_exe().expect("this binary");
        let mut command = std::process::Command::new(exe);
        command.args(["bench-files", "--records", &self.records.to_string(), "--only", self.format]);
        for property in self.properties {
            command.args(["--property", property]);
        }
        if let Some(partition) = self.partition {
            command.args(["--partition", partition]);
        }
        let output = command.output().expect("run a file format child");
        assert!(output.status.success(), "{}: {}", self.label, String::from_utf8_lossy(&output.stderr));
        let line = String::from_utf8_lossy(&output.stdout).lines().last().unwrap_or_default().to_string();
        serde_json::from_str(&line)
            .ok()
            .and_then(|v| ceiling::FileFormatRun::from_json(&v))
            .unwrap_or_else(|| panic!("{}: no run report in {line:?}", self.label))
    }
}

/// Prints the data file formats section: Parquet (the baseline) and ORC writing the same
/// batches, into one partition and into 16 at once (4× the records), each in its own process.
pub async fn print_file_formats(records: usize) {
    println!("## Data file formats: Arrow → files, one core, the reference event");
    let many = Some("bucket(16, user_id)");
    let variants = [
        FileVariant { label: "Parquet", format: "parquet", properties: &[], partition: None, records },
        FileVariant { label: "ORC", format: "orc", properties: &[], partition: None, records },
        FileVariant {
            label: "ORC, 8 MiB stripes",
            format: "orc",
            properties: &["write.orc.stripe-size-bytes=8388608"],
            partition: None,
            records,
        },
        FileVariant {
            label: "Parquet, 16 partitions",
            format: "parquet",
            properties: &[],
            partition: many,
            records: 4 * records,
        },
        FileVariant {
            label: "ORC, 16 partitions",
            format: "orc",
            properties: &[],
            partition: many,
            records: 4 * records,
        },
    ];
    println!(
        "| variant | records | records/s | vs Parquet | written | vs Parquet | writer memory (peak RSS above the batches) | vs Parquet |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut base: Option<ceiling::FileFormatRun> = None;
    for variant in &variants {
        let run = variant.run();
        // Each Parquet row is the baseline of the ORC rows after it.
        let base = match &base {
            Some(b) if variant.format != "parquet" => b.clone(),
            _ => {
                base = Some(run.clone());
                run.clone()
            }
        };
        println!(
            "| {} | {} | {:.0} | {:.2} | {} file(s), {:.1} MB | {:.2} | {:.0} MiB | {:.2} |",
            variant.label,
            run.records,
            run.records as f64 / run.elapsed.as_secs_f64(),
            base.elapsed.as_secs_f64() / run.elapsed.as_secs_f64(),
            run.files,
            run.file_bytes as f64 / 1e6,
            run.file_bytes as f64 / base.file_bytes as f64,
            run.writer_memory() as f64 / 1048576.0,
            run.writer_memory() as f64 / base.writer_memory().max(1) as f64,
        );
    }
    println!();
}

pub async fn run(options: &BenchOptions) {
    let machine_cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("# icefall writer benchmark");
    println!("machine: {machine_cores} cores ({}), writer {}", cpu_model(), options.writer.display());
    println!();

    print_file_formats(options.ceiling_records).await;

    let ceilings = print_ceilings(&options.formats, options.ceiling_records).await;

    let broker = icefall_integration_tests::broker::Broker::start();
    let bootstrap = broker.bootstrap();
    let mut rows = Vec::new();
    for (format, ceiling) in options.formats.iter().zip(&ceilings) {
        let topic = icefall_integration_tests::unique(&format!("bench_{}", format.name()));
        broker.create_topic(&topic, options.partitions as u32);
        let produced = end_to_end::produce(&bootstrap, &topic, options.partitions, *format, options.records);
        println!(
            "{}: produced {} records ({:.1} MB) in {:.1}s; per partition {}",
            format.name(),
            produced.records,
            produced.bytes as f64 / 1e6,
            produced.elapsed.as_secs_f64(),
            end_to_end::describe(&produced.landed)
        );
        let consumed = end_to_end::consume_only(&bootstrap, &produced);
        println!(
            "{}: consume-only (a bare librdkafka consumer, all cores): {:.0} records/s, {:.1} MB/s, {}",
            format.name(),
            consumed.records as f64 / consumed.elapsed.as_secs_f64(),
            consumed.bytes as f64 / consumed.elapsed.as_secs_f64() / 1e6,
            consumed
                .cpu_per_record()
                .map_or("CPU time unknown".into(), |s| format!("{:.0} records per CPU-second", 1.0 / s)),
        );
        let core_counts = if options.cores.is_empty() {
            end_to_end::default_core_counts(machine_cores)
        } else {
            options.cores.clone()
        };
        for cores in &core_counts {
            // With spare CPUs the broker gets them, so the writer's cores are its own.
            let (cpus, broker_cpus) = end_to_end::cpu_lists(*cores, machine_cores);
            let shared = if *cores < machine_cores { "its own" } else { "shared with the writer" };
            println!("{}: writer on CPUs {cpus}, broker on CPUs {broker_cpus} ({shared})", format.name());
            end_to_end::pin(broker.pid(), &broker_cpus);
            // Kept after the run (logs, catalog, table) for a look; replaced by the next run.
            let dir = std::path::absolute(options.out.join(format!("{}-{}core", format.name(), cores)))
                .expect("absolute bench folder");
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("bench run folder");
            let run = end_to_end::WriterRun {
                binary: &options.writer,
                bootstrap: &bootstrap,
                broker_pid: broker.pid(),
                format: *format,
                produced: &produced,
                cpus: &cpus,
                checkpoint: &options.checkpoint,
                max_buffered_bytes: options.max_buffered_bytes,
            };
            let result = end_to_end::run_writer(&run, &dir).await;
            assert_eq!(result.rows, produced.records as u64, "the table must hold every record once");
            println!(
                "{} on {} core(s): {:.1}s start → last offset committed ({:.2}s of it stalled for checkpoints); \
                 writers over time (s:count) {}",
                format.name(),
                cores,
                result.elapsed.as_secs_f64(),
                result.stalled.unwrap_or_default().as_secs_f64(),
                result.writers_over_time.iter().map(|(t, n)| format!("{t:.1}:{n}")).collect::<Vec<_>>().join(" ")
            );
            let kafka_cpu_per_record = consumed.cpu_per_record();
            rows.push(Row {
                format: *format,
                ceiling: ceiling.clone(),
                bytes: produced.bytes,
                result,
                kafka_cpu_per_record,
            });
        }
    }
    println!();
    println!(
        "## End to end: {} pre-produced records per format, broker → table, checkpoint {}",
        options.records, options.checkpoint
    );
    println!("Rates count from the partition assignment (the broker's group join, a fixed delay, is shown apart).");
    println!(
        "| format | cores | start → last offset | group join | records/s | MB/s | records/s per core | \
         vs ceiling per core | records per writer CPU-s | writer CPU s | broker CPU s | peak RSS | files | \
         MB written | snapshots |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut one_core: std::collections::BTreeMap<&str, f64> = Default::default();
    for row in &rows {
        let r = &row.result;
        let joined = r.joined.unwrap_or_default();
        let ingest = r.elapsed.saturating_sub(joined).as_secs_f64();
        let rate = r.rows as f64 / ingest;
        let per_core = rate / r.cores as f64;
        if r.cores == 1 {
            one_core.insert(row.format.name(), rate);
        }
        println!(
            "| {} | {} (cpus {}) | {:.1} s | {:.1} s | {:.0} | {:.1} | {:.0} | {:.2} | {:.0} | {:.1} | {:.1} | {:.0} MiB | {} | {:.1} | {} |",
            row.format.name(),
            r.cores,
            r.cpus,
            r.elapsed.as_secs_f64(),
            joined.as_secs_f64(),
            rate,
            row.bytes as f64 / ingest / 1e6,
            per_core,
            per_core / row.ceiling.records_per_sec(),
            r.rows as f64 / r.writer_cpu.as_secs_f64().max(1e-3),
            r.writer_cpu.as_secs_f64(),
            r.broker_cpu.as_secs_f64(),
            r.peak_rss_bytes as f64 / 1048576.0,
            r.files,
            r.file_bytes as f64 / 1e6,
            r.snapshots,
        );
    }
    for row in &rows {
        print_kafka_bound(row);
    }
    for row in &rows {
        let r = &row.result;
        if let (true, Some(base)) = (r.cores > 1, one_core.get(row.format.name())) {
            let rate = r.rows as f64 / r.elapsed.saturating_sub(r.joined.unwrap_or_default()).as_secs_f64();
            println!(
                "{}: {} cores run {:.2}× the 1-core rate (linear = {}×)",
                row.format.name(),
                r.cores,
                rate / base,
                r.cores
            );
        }
    }
}

/// The in-process ceiling of each format, and the plain libraries against it, as a table.
pub async fn print_ceilings(formats: &[Format], records: usize) -> Vec<ceiling::Ceiling> {
    println!("## In-process ceiling: decode → Arrow → Parquet (zstd), one core, {} events", records);
    let ceilings = ceiling::measure(formats, records).await;
    println!("| format | records/s | MB/s in | B/record | decode share | Parquet written |");
    println!("|---|---|---|---|---|---|");
    for c in &ceilings {
        println!(
            "| {} | {:.0} | {:.1} | {:.0} | {:.0}% | {} file(s), {:.1} MB |",
            c.format.name(),
            c.records_per_sec(),
            c.mb_per_sec(),
            c.input_bytes as f64 / c.records as f64,
            c.decode.as_secs_f64() / c.elapsed.as_secs_f64() * 100.0,
            c.files,
            c.file_bytes as f64 / 1e6
        );
    }
    for c in &ceilings {
        match &c.plain {
            Some(Ok(plain)) => println!(
                "{}: the plain libraries (arrow-json → parquet ArrowWriter, zstd 3, one unpartitioned file, no \
                 Iceberg metrics) on the same events: {:.0} records/s ({:.0}% decoding), {:.1} MB written; our \
                 ceiling runs {:.2}× it (decoding {:.2}× as fast, the rest {:.2}× as fast)",
                c.format.name(),
                plain.records_per_sec(),
                plain.decode.as_secs_f64() / plain.elapsed.as_secs_f64() * 100.0,
                plain.file_bytes as f64 / 1e6,
                c.records_per_sec() / plain.records_per_sec(),
                plain.decode.as_secs_f64() / c.decode.as_secs_f64(),
                (plain.elapsed - plain.decode).as_secs_f64() / (c.elapsed - c.decode).as_secs_f64(),
            ),
            Some(Err(e)) => println!("{}: the plain libraries could not run: {e}", c.format.name()),
            None => {}
        }
    }
    println!();
    ceilings
}

/// One end-to-end run with what it is compared against.
struct Row {
    format: Format,
    ceiling: ceiling::Ceiling,
    /// Bytes of the records produced.
    bytes: usize,
    result: end_to_end::EndToEnd,
    /// CPU-seconds per record of the bare consumer on the same topic (librdkafka's own work).
    kafka_cpu_per_record: Option<f64>,
}

/// What records per writer CPU-second can reach at best: the ceiling's work plus librdkafka's
/// own per-message work (the bare consumer's), which any writer on librdkafka pays. What the
/// writer spends beyond both is its own Kafka-side and checkpoint work.
fn print_kafka_bound(row: &Row) {
    let r = &row.result;
    let Some(kafka) = row.kafka_cpu_per_record else { return };
    let ceiling = 1.0 / row.ceiling.records_per_sec();
    let writer = r.writer_cpu.as_secs_f64() / r.rows.max(1) as f64;
    let bound = 1.0 / (ceiling + kafka);
    println!(
        "{} on {} core(s): librdkafka alone spends {:.2} µs of CPU per record and the ceiling {:.2} µs, so records \
         per writer CPU-second can reach {:.0} ({:.2} of the ceiling); the writer reached {:.0} ({:.2} of that \
         bound), spending {:.2} µs per record beyond both",
        row.format.name(),
        r.cores,
        kafka * 1e6,
        ceiling * 1e6,
        bound,
        bound * ceiling,
        1.0 / writer,
        bound.recip() / writer,
        (writer - ceiling - kafka) * 1e6,
    );
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
