//! Broker and end-to-end measurements: how fast the broker serves a pre-produced topic to a
//! bare consumer, and how long `icefall-writer` takes from its start until the table holds
//! the topic's last offset, with the writer's CPU time, peak RSS, files and writer count.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use icefall_table::catalog::parse_ident;
use icefall_table::offsets::committed_offsets;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::reference::{Encoder, Format};
use icefall_integration_tests::process;
use icefall_integration_tests::produce::{Landed, TestProducer};
use icefall_integration_tests::writer::WriterProcess;

const TABLE: &str = "bench.events";

/// What was produced to a topic.
pub struct Produced {
    pub topic: String,
    pub landed: Landed,
    pub records: usize,
    pub bytes: usize,
    pub elapsed: Duration,
}

/// Produces `records` reference events round-robin over `partitions` partitions.
pub fn produce(bootstrap: &str, topic: &str, partitions: i32, format: Format, records: usize) -> Produced {
    let started = Instant::now();
    let producer = TestProducer::new(bootstrap, topic);
    let encoder = Encoder::new(format);
    let mut landed = Landed::new();
    let mut bytes = 0;
    for i in 0..records {
        let partition = (i % partitions as usize) as i32;
        let payload = encoder.encode(i);
        bytes += payload.len();
        producer.send(partition, &i.to_string(), &payload);
        *landed.entry(partition).or_default() += 1;
    }
    producer.flush();
    Produced { topic: topic.to_string(), landed, records, bytes, elapsed: started.elapsed() }
}

/// A bare consumer reading the whole topic: the broker's serving rate, and what librdkafka's
/// own per-message work costs (the writer pays it too, whatever it does with the records).
pub struct ConsumeOnly {
    pub records: usize,
    pub bytes: usize,
    pub elapsed: Duration,
    /// CPU time this process used meanwhile: the consumer's threads (librdkafka's broker
    /// thread fetching and parsing, this one polling); the broker runs in its own process.
    pub cpu: Option<Duration>,
}

impl ConsumeOnly {
    /// CPU-seconds librdkafka alone spends per record.
    pub fn cpu_per_record(&self) -> Option<f64> {
        self.cpu.map(|cpu| cpu.as_secs_f64() / self.records.max(1) as f64)
    }
}

pub fn consume_only(bootstrap: &str, produced: &Produced) -> ConsumeOnly {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", icefall_integration_tests::unique("bench-consume-only"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        // As the writer sets it (see `writer/src/source/mod.rs`), so both fetch alike.
        .set("fetch.queue.backoff.ms", "50")
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for partition in produced.landed.keys() {
        tpl.add_partition_offset(&produced.topic, *partition, rdkafka::Offset::Beginning).expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let cpu_before = process::cpu_time(std::process::id());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    let (mut records, mut bytes) = (0, 0);
    while records < produced.records {
        assert!(Instant::now() < deadline, "the consumer read {records} of {} records in 10 minutes", produced.records);
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("consume");
            records += 1;
            bytes += message.payload_len();
        }
    }
    let elapsed = started.elapsed();
    let cpu = match (cpu_before, process::cpu_time(std::process::id())) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    ConsumeOnly { records, bytes, elapsed, cpu }
}

/// One writer run from start to the topic's last offset in the table.
pub struct EndToEnd {
    /// CPUs the writer was pinned to (`taskset -c`).
    pub cpus: String,
    pub cores: usize,
    /// From spawning the writer until the table's offsets reached the topic's end.
    pub elapsed: Duration,
    /// From spawning the writer until its partitions were assigned (the broker's group join).
    pub joined: Option<Duration>,
    /// CPU time (user + system) the writer process used until then.
    pub writer_cpu: Duration,
    /// CPU time the broker used meanwhile.
    pub broker_cpu: Duration,
    pub peak_rss_bytes: u64,
    pub rows: u64,
    pub files: u64,
    pub file_bytes: u64,
    pub snapshots: usize,
    /// (seconds since the writer started, writers) per checkpoint.
    pub writers_over_time: Vec<(f64, usize)>,
    /// Time the pipeline took no records for checkpoints (`icefall_checkpoint_stall_seconds_total`).
    pub stalled: Option<Duration>,
}

pub struct WriterRun<'a> {
    pub binary: &'a Path,
    pub bootstrap: &'a str,
    pub broker_pid: u32,
    pub format: Format,
    pub produced: &'a Produced,
    pub cpus: &'a str,
    pub checkpoint: &'a str,
    pub max_buffered_bytes: Option<u64>,
}

/// Runs the writer pinned to `cpus` on a fresh catalog in `dir` until every produced record
/// is committed, then stops it (SIGTERM) and reads what the snapshots say.
pub async fn run_writer(run: &WriterRun<'_>, dir: &Path) -> EndToEnd {
    let config = dir.join("writer.toml");
    let metrics_port = icefall_integration_tests::broker::free_port();
    let text = format!("{}\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n", writer_config(run, dir));
    std::fs::write(&config, text).expect("write config");
    let catalog = icefall_integration_tests::tables::catalog(dir).await;
    let ident = parse_ident(TABLE).expect("ident");
    let broker_cpu_before = process::cpu_time(run.broker_pid);
    let wall_start = SystemTime::now();
    let started = Instant::now();
    let mut writer = WriterProcess::start_pinned(run.binary, run.cpus, &config, "writer");
    let pid = writer.pid();
    let deadline = started + Duration::from_secs(1800);
    let (mut peak_rss_bytes, mut writer_cpu) = (0, Duration::ZERO);
    let elapsed = loop {
        peak_rss_bytes = process::peak_rss(pid).unwrap_or(peak_rss_bytes);
        writer_cpu = process::cpu_time(pid).unwrap_or(writer_cpu);
        if let Ok(loaded) = catalog.load(&ident).await {
            let offsets = committed_offsets(&loaded.metadata).expect("offsets");
            let got = offsets.get(&run.produced.topic).cloned().unwrap_or_default();
            if run.produced.landed.iter().all(|(p, end)| got.get(p).is_some_and(|o| o >= end)) {
                break started.elapsed();
            }
        }
        assert!(writer.is_running(), "the writer exited; log: {}", writer.log.display());
        assert!(Instant::now() < deadline, "the writer did not catch up in 30 minutes; log: {}", writer.log.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let broker_cpu = match (broker_cpu_before, process::cpu_time(run.broker_pid)) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => Duration::ZERO,
    };
    let stalled = icefall_integration_tests::http::get(metrics_port, "/metrics")
        .and_then(|(_, text)| {
            icefall_integration_tests::http::metric_sum(&text, "icefall_checkpoint_stall_seconds_total", &[])
        })
        .map(Duration::from_secs_f64);
    let log = writer.log.clone();
    let status = writer.stop(Duration::from_secs(60));
    assert!(status.success(), "the writer failed; log: {}", log.display());

    let loaded = catalog.load(&ident).await.expect("load");
    let mut snapshots: Vec<_> = loaded.metadata.snapshots().collect();
    snapshots.sort_by_key(|s| s.timestamp_ms());
    let start_ms = wall_start.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default();
    let number = |s: &iceberg::spec::Snapshot, key: &str| -> u64 {
        s.summary().additional_properties.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let data: Vec<_> = snapshots.iter().filter(|s| number(s, "added-records") > 0).collect();
    EndToEnd {
        cpus: run.cpus.to_string(),
        cores: cpu_count(run.cpus),
        elapsed,
        joined: first_assignment(&log, start_ms),
        writer_cpu,
        broker_cpu,
        peak_rss_bytes,
        rows: snapshots.last().map(|s| number(s, "total-records")).unwrap_or(0),
        files: data.iter().map(|s| number(s, "added-data-files")).sum(),
        file_bytes: data.iter().map(|s| number(s, "added-files-size")).sum(),
        snapshots: data.len(),
        writers_over_time: data
            .iter()
            .filter_map(|s| {
                let writers = s.summary().additional_properties.get("icefall.writers")?.parse().ok()?;
                Some(((s.timestamp_ms() - start_ms) as f64 / 1000.0, writers))
            })
            .collect(),
        stalled,
    }
}

fn writer_config(run: &WriterRun<'_>, dir: &Path) -> String {
    format!(
        r#"writer_id = "bench"

[catalog]
uri = "sqlite:{dir}/catalog.db"
name = "icefall"
warehouse = "{dir}/warehouse"

[kafka]
brokers = "{bootstrap}"
group_id = "bench"
properties = {{ "session.timeout.ms" = "6000", "heartbeat.interval.ms" = "500" }}

[[pipelines]]
name = "bench"
topics = ["{topic}"]
table = "{TABLE}"
checkpoint_interval = "{checkpoint}"
partition = ["{partition}"]
{budget}{format_keys}"#,
        dir = dir.display(),
        bootstrap = run.bootstrap,
        topic = run.produced.topic,
        checkpoint = run.checkpoint,
        budget = run.max_buffered_bytes.map(|b| format!("max_buffered_bytes = {b}\n")).unwrap_or_default(),
        partition = super::PARTITION,
        format_keys = super::reference::pipeline_keys(run.format, dir),
    )
}

/// When the writer's first partitions were assigned, from its JSON log.
fn first_assignment(log: &Path, start_ms: i64) -> Option<Duration> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().find(|l| l.contains("partitions assigned"))?;
    let entry: serde_json::Value = serde_json::from_str(line).ok()?;
    let at = chrono::DateTime::parse_from_rfc3339(entry["timestamp"].as_str()?).ok()?;
    Some(Duration::from_millis((at.timestamp_millis() - start_ms).max(0) as u64))
}

/// Number of CPUs in a `taskset` list such as `0`, `0-1` or `0,2-3`.
pub fn cpu_count(list: &str) -> usize {
    list.split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => b.trim().parse::<usize>().unwrap_or(0).saturating_sub(a.trim().parse().unwrap_or(0)) + 1,
            None => 1,
        })
        .sum()
}

/// The writer's core counts when none are asked for: 1 and 2 on a small machine (the broker
/// shares them); on 4 cores or more, powers of two up to half the machine, so the broker always
/// has the other half to itself and the 1→N scaling measures the writer alone.
pub fn default_core_counts(machine_cores: usize) -> Vec<usize> {
    if machine_cores < 4 {
        return (1..=machine_cores.min(2)).collect();
    }
    let half = machine_cores / 2;
    let mut counts: Vec<usize> = std::iter::successors(Some(1), |n| Some(n * 2)).take_while(|n| *n <= half).collect();
    if counts.last() != Some(&half) {
        counts.push(half);
    }
    counts
}

/// The CPUs of a writer on `cores` cores (`0..cores`) and of the broker beside it: the rest of
/// the machine when some is left, else all of it (shared).
pub fn cpu_lists(cores: usize, machine_cores: usize) -> (String, String) {
    let writer = if cores == 1 { "0".to_string() } else { format!("0-{}", cores - 1) };
    let broker = if cores < machine_cores {
        format!("{cores}-{}", machine_cores - 1)
    } else {
        format!("0-{}", machine_cores - 1)
    };
    (writer, broker)
}

/// Pins every thread of a running process to `cpus`.
pub fn pin(pid: u32, cpus: &str) {
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run taskset");
    assert!(status.success(), "taskset -a -p -c {cpus} {pid} failed");
}

/// Per-partition end offsets as text, for the report.
pub fn describe(landed: &BTreeMap<i32, i64>) -> String {
    landed.iter().map(|(p, n)| format!("{p}:{n}")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count_cores() {
        assert_eq!(cpu_count("0"), 1);
        assert_eq!(cpu_count("0-1"), 2);
        assert_eq!(cpu_count("0,2-3"), 3);
    }

    #[test]
    fn the_broker_gets_the_cores_the_writer_does_not_use() {
        assert_eq!(default_core_counts(1), [1]);
        assert_eq!(default_core_counts(2), [1, 2]);
        assert_eq!(default_core_counts(4), [1, 2]);
        assert_eq!(default_core_counts(6), [1, 2, 3]);
        assert_eq!(default_core_counts(16), [1, 2, 4, 8]);
        assert_eq!(cpu_lists(1, 2), ("0".to_string(), "1-1".to_string()));
        assert_eq!(cpu_lists(2, 2), ("0-1".to_string(), "0-1".to_string()), "shared on a 2-core machine");
        assert_eq!(cpu_lists(4, 8), ("0-3".to_string(), "4-7".to_string()));
    }
}
