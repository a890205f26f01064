//! Scale-out: several `icefall-writer` processes share one consumer group, each with two
//! pipelines (two topics → two tables), on one PostgreSQL catalog. While producers keep
//! sending, processes are killed (SIGKILL), stopped (SIGTERM) and added again and again; every
//! change is a rebalance. At the end every (partition, offset) of both topics is in its table
//! exactly once.

use std::time::Duration;

use icefall_integration_tests::broker::Broker;
use icefall_integration_tests::postgres::Postgres;
use icefall_integration_tests::produce::BackgroundProducer;
use icefall_integration_tests::tables;
use icefall_integration_tests::unique;
use icefall_integration_tests::writer::{PipelineSpec, WriterProcess, events_pipelines};

const PARTITIONS: i32 = 6;
const WAIT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_joining_leaving_and_crashing_twenty_times_keep_two_tables_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let postgres = Postgres::start();
    let broker = Broker::start();
    let ns = unique("ns");
    let streams: Vec<(String, String, String)> =
        ["clicks", "orders"].iter().map(|name| (name.to_string(), unique(name), format!("{ns}.{name}"))).collect();
    for (_, topic, _) in &streams {
        broker.create_topic(topic, PARTITIONS as u32);
    }
    let pipelines: Vec<(&str, &str, &str)> =
        streams.iter().map(|(n, t, table)| (n.as_str(), t.as_str(), table.as_str())).collect();
    let config = events_pipelines(
        dir.path(),
        &PipelineSpec {
            bootstrap: &broker.bootstrap(),
            topic: "",
            table: "",
            checkpoint: "500ms",
            writers: 2,
            catalog_uri: Some(postgres.url()),
        },
        &pipelines,
    );
    let producers: Vec<BackgroundProducer> = streams
        .iter()
        .map(|(_, topic, _)| BackgroundProducer::start(&broker.bootstrap(), topic, 0, PARTITIONS, 60))
        .collect();

    let mut started = 0;
    let start = |started: &mut usize| {
        *started += 1;
        WriterProcess::start(&config, &format!("writer-{started}"))
    };
    let mut running: Vec<WriterProcess> = (0..3).map(|_| start(&mut started)).collect();
    let mut logs: Vec<std::path::PathBuf> = running.iter().map(|w| w.log.clone()).collect();
    tokio::time::sleep(Duration::from_secs(5)).await;

    // Each step changes the group's membership once: kill, stop or add a process. A process
    // goes only after it has committed, so every one of them took part. (The test broker,
    // Tansu, sometimes keeps a killed member in the group's assignment and gives a newcomer
    // no partitions at all: such a process cannot commit. It is counted, and must be rare; a
    // process that got partitions and never committed fails the test.)
    let mut starved = 0;
    let mut committed = |writer: &WriterProcess| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let log = std::fs::read_to_string(&writer.log).unwrap_or_default();
            if log.contains("checkpoint committed") {
                return;
            }
            if std::time::Instant::now() > deadline {
                assert!(
                    !log.contains("partitions assigned"),
                    "{} got partitions but never committed",
                    writer.log.display()
                );
                starved += 1;
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let mut changes = 0;
    for step in 0..24 {
        match step % 3 {
            0 if running.len() > 1 => {
                let writer = running.remove(step % running.len());
                committed(&writer);
                writer.kill9();
            }
            1 if running.len() > 1 => {
                let writer = running.remove(0);
                committed(&writer);
                assert!(writer.stop(Duration::from_secs(60)).success(), "a stopped writer exits cleanly");
            }
            _ => {
                let writer = start(&mut started);
                logs.push(writer.log.clone());
                running.push(writer);
            }
        }
        if running.len() < 3 {
            let writer = start(&mut started);
            logs.push(writer.log.clone());
            running.push(writer);
            changes += 1;
        }
        changes += 1;
        tokio::time::sleep(Duration::from_millis(2_500)).await;
    }
    assert!(changes >= 20, "{changes} membership changes");

    // The last processes commit while records still arrive: one that joined at the very end
    // may be given only partitions whose records were all read already.
    for writer in &running {
        committed(writer);
    }
    let produced: Vec<(i64, _)> = producers.into_iter().map(BackgroundProducer::finish).collect();
    for writer in running {
        assert!(writer.stop(Duration::from_secs(60)).success(), "a stopped writer exits cleanly");
    }
    let committing = logs
        .iter()
        .filter(|log| std::fs::read_to_string(log).unwrap_or_default().contains("checkpoint committed"))
        .count();
    // How often the test broker starves a newcomer grows with the machine's load (7 of 20 once,
    // with Spark tests beside it on 2 cores): a majority starved would be our fault, not its.
    assert!(
        starved * 2 < logs.len(),
        "{starved} of {} processes were never given partitions by the broker",
        logs.len()
    );
    assert_eq!(committing + starved, logs.len(), "every process given partitions committed");
    // What the churning processes committed, before any drain: each partition's offsets
    // exactly once up to the table's offset.
    let catalog = tables::catalog_at(&postgres.url(), dir.path()).await;
    for (_, topic, table) in &streams {
        let offsets = tables::offsets(&catalog, table).await.get(topic.as_str()).cloned().unwrap_or_default();
        assert!(!offsets.is_empty(), "{table}: the churning processes committed");
        tables::assert_offsets_exactly_once(&tables::partition_offsets(&catalog, table).await, &offsets);
    }

    // Drain what is left with one process in a fresh consumer group: positions come from the
    // table, never from the group, so this changes nothing about what is read — and it does
    // not depend on the test broker (Tansu) forgetting members killed mid-rebalance, which it
    // sometimes keeps assigning partitions to.
    let text = std::fs::read_to_string(&config).expect("config");
    let drain_config = dir.path().join("drain.toml");
    std::fs::write(&drain_config, text.replace("group_id = \"it\"", "group_id = \"it-drain\"")).expect("config");
    let drain = WriterProcess::start(&drain_config, "drain");
    for ((_, topic, table), (_, landed)) in streams.iter().zip(&produced) {
        tables::wait_for_offsets(&catalog, table, topic, landed, WAIT).await;
    }
    assert!(drain.stop(Duration::from_secs(60)).success());
    for ((_, _, table), (count, landed)) in streams.iter().zip(&produced) {
        let pairs = tables::partition_offsets(&catalog, table).await;
        assert_eq!(pairs.len() as i64, *count, "{table}: every produced record, once");
        tables::assert_offsets_exactly_once(&pairs, landed);
    }
    // The group really moved partitions around: count assignments across every process.
    let text: String = logs.iter().map(|l| std::fs::read_to_string(l).unwrap_or_default()).collect();
    // (A broker merges changes that come while a rebalance is still running into it, so there
    // are fewer completed assignments than changes.)
    let assignments = text.matches("partitions assigned at table offsets").count();
    assert!(assignments >= 15, "only {assignments} assignments were logged");
}
