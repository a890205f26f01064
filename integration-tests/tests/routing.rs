//! Many topics, many tables: `topics_regex` with a `{topic}` table template (topics created
//! while the writer runs included) through `kill -9`s, counted per (topic, partition, offset);
//! `auto_create = false`; the dead-letter policies `drop` and `fail`, and headers kept with
//! dead letters.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use icefall_integration_tests::broker::Broker;
use icefall_integration_tests::engines::pyiceberg_rows;
use icefall_integration_tests::produce::{Landed, TestProducer};
use icefall_integration_tests::tables;
use icefall_integration_tests::unique;
use icefall_integration_tests::writer::{WriterProcess, pipeline_config};
use rdkafka::message::{Header, OwnedHeaders};

const WAIT: Duration = Duration::from_secs(120);

/// One pipeline (`pipeline`: its keys; `metadata`: more metadata columns) over a SQLite
/// catalog in `dir`.
fn routing_config(dir: &Path, bootstrap: &str, pipeline: &str, metadata: &str) -> std::path::PathBuf {
    let keys = format!(
        "name = \"raw\"\nwriters = 1\n\
         schema = [{{ name = \"id\", type = \"long\", required = true }}, {{ name = \"note\", type = \"string\" }}]\n{pipeline}"
    );
    pipeline_config(dir, bootstrap, &keys, "", metadata)
}

/// `count` records to each partition of `topic`, ids from `from`; counted into `landed`.
fn produce(producer: &TestProducer, from: i64, count: i64, landed: &mut Landed) {
    for id in from..from + count {
        let partition = (id % 2) as i32;
        let note = format!("{id}: https://example.com/ä/?q=#%{}", "x".repeat(60));
        producer.send(partition, &id.to_string(), serde_json::json!({"id": id, "note": note}).to_string().as_bytes());
        *landed.entry(partition).or_default() += 1;
    }
    producer.flush();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_topics_by_regex_land_in_fifty_tables_exactly_once_through_kills_and_new_topics() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let broker = Broker::start();
    let prefix = unique("route");
    let ns = unique("raw");
    // Topic names with `.` and `-`, which the table names turn into `_`.
    let topics: Vec<String> = (0..50).map(|i| format!("{prefix}.orders-{i:02}")).collect();
    for topic in &topics {
        broker.create_topic(topic, 2);
    }
    broker.create_topic(&format!("{prefix}_other"), 1); // does not match
    let config = routing_config(
        dir,
        &broker.bootstrap(),
        &format!(
            "topics_regex = '{prefix}\\.orders-\\d+'\ntopics_refresh_interval = \"1s\"\ntable = \"{ns}.{{topic}}\""
        ),
        "",
    );
    let table_of = |topic: &str| format!("{ns}.{}", topic.replace(['.', '-'], "_"));
    let producers: Vec<TestProducer> = topics.iter().map(|t| TestProducer::new(&broker.bootstrap(), t)).collect();
    let mut landed: BTreeMap<String, Landed> = BTreeMap::new();
    let mut next_id = 0;
    for (topic, producer) in topics.iter().zip(&producers) {
        produce(producer, next_id, 10, landed.entry(topic.clone()).or_default());
        next_id += 10;
    }
    let mut writer = WriterProcess::start(&config, "writer");
    let catalog = tables::catalog(dir).await;
    for (topic, offsets) in &landed {
        tables::wait_for_offsets(&catalog, &table_of(topic), topic, offsets, WAIT).await;
    }

    // A topic created while the writer runs is picked up without a restart.
    let late = format!("{prefix}.orders-99");
    broker.create_topic(&late, 2);
    let late_producer = TestProducer::new(&broker.bootstrap(), &late);
    produce(&late_producer, next_id, 10, landed.entry(late.clone()).or_default());
    next_id += 10;
    tables::wait_for_offsets(&catalog, &table_of(&late), &late, &landed[&late], WAIT).await;

    // kill -9 while records arrive on every topic, three times.
    for round in 0..3 {
        for (topic, producer) in topics.iter().zip(&producers).skip(round * 10).take(20) {
            produce(producer, next_id, 6, landed.entry(topic.clone()).or_default());
            next_id += 6;
        }
        tokio::time::sleep(Duration::from_millis(700 + 300 * round as u64)).await;
        writer.kill9();
        writer = WriterProcess::start(&config, "writer");
    }
    produce(&late_producer, next_id, 4, landed.entry(late.clone()).or_default());
    for (topic, offsets) in &landed {
        tables::wait_for_offsets(&catalog, &table_of(topic), topic, offsets, WAIT).await;
    }
    assert!(writer.stop(Duration::from_secs(60)).success());

    // Every (topic, partition, offset) exactly once, each in its own table; nothing else routed.
    for (topic, offsets) in &landed {
        let pairs = tables::partition_offsets(&catalog, &table_of(topic)).await;
        tables::assert_offsets_exactly_once(&pairs, offsets);
    }
    // The offsets tool sees each topic's pipeline and table.
    let late_table = table_of(&late);
    let late_name = format!("raw.{}", late_table.split('.').nth(1).unwrap_or_default());
    let shown = std::process::Command::new(icefall_integration_tests::writer::writer_binary())
        .args(["offsets", "show", "--pipeline", &late_name, "--config"])
        .arg(&config)
        .output()
        .expect("offsets show");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success() && text.contains(&format!("→ table {late_table}")), "{text}");
    let ident = icefall_table::catalog::parse_ident(&format!("{ns}.x")).expect("ident");
    let names = catalog.list_tables(ident.namespace()).await.expect("tables");
    assert_eq!(names.len(), 2 * landed.len(), "a table and a dead-letter table per matching topic: {names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_create_off_names_the_missing_table_and_dead_letter_policies_drop_or_stop() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let broker = Broker::start();
    let topic = unique("policy");
    broker.create_topic(&topic, 2);
    let table = format!("{}.events", unique("ns"));
    let producer = TestProducer::new(&broker.bootstrap(), &topic);
    let mut landed = Landed::new();
    produce(&producer, 0, 10, &mut landed);
    // Offset 5 of partition 0 (the 11th record): not JSON, with headers.
    let headers = OwnedHeaders::new()
        .insert(Header { key: "trace-id", value: Some("abc/é?#%") })
        .insert(Header { key: "empty", value: None::<&str> });
    producer.send_with_headers(0, "bad", b"{not json", Some(headers));
    *landed.entry(0).or_default() += 1;
    produce(&producer, 10, 10, &mut landed);

    // auto_create = false: the missing table is named, nothing is created.
    let pipeline = |extra: &str| format!("topics = [\"{topic}\"]\ntable = \"{table}\"\n{extra}");
    let no_create = routing_config(dir, &broker.bootstrap(), &pipeline("auto_create = false"), "");
    let mut writer = WriterProcess::start(&no_create, "no-create");
    assert!(!writer.wait_exit(Duration::from_secs(60)).success());
    let log = std::fs::read_to_string(&writer.log).expect("log");
    assert!(log.contains(&format!("table {table} does not exist and auto_create = false")), "{log}");
    let catalog = tables::catalog(dir).await;
    assert!(catalog.load(&icefall_table::catalog::parse_ident(&table).expect("ident")).await.is_err());

    // fail: the pipeline stops at the bad record and commits nothing of its checkpoint.
    let fail = routing_config(dir, &broker.bootstrap(), &pipeline("dead_letter_policy = \"fail\""), "");
    let mut writer = WriterProcess::start(&fail, "fail");
    assert!(!writer.wait_exit(Duration::from_secs(60)).success());
    let log = std::fs::read_to_string(&writer.log).expect("log");
    assert!(log.contains(&format!("{topic}:0 offset 5 cannot be decoded")), "{log}");
    let after_it: Vec<(i32, i64)> =
        tables::partition_offsets(&catalog, &table).await.into_iter().filter(|(p, o)| *p == 0 && *o > 5).collect();
    assert!(after_it.is_empty(), "nothing after the bad record is committed: {after_it:?}");

    // drop: every good record lands, the bad one is only counted.
    let drop = routing_config(dir, &broker.bootstrap(), &pipeline("dead_letter_policy = \"drop\""), "");
    let writer = WriterProcess::start(&drop, "drop");
    tables::wait_for_offsets(&catalog, &table, &topic, &landed, WAIT).await;
    assert!(writer.stop(Duration::from_secs(30)).success());
    let mut rows = tables::partition_offsets(&catalog, &table).await;
    rows.sort();
    let good: Vec<(i32, i64)> = (0..11).filter(|o| *o != 5).map(|o| (0, o)).chain((0..10).map(|o| (1, o))).collect();
    assert_eq!(rows, good, "every good record once, the bad one dropped");
    assert!(tables::dead_letter_offsets(&catalog, &table).await.is_empty());

    // table (the default), on a second topic whose pipeline reads headers: the dead letter
    // keeps them.
    let topic2 = unique("headers");
    broker.create_topic(&topic2, 1);
    let table2 = format!("{}.events", unique("ns"));
    let producer2 = TestProducer::new(&broker.bootstrap(), &topic2);
    let headers = OwnedHeaders::new().insert(Header { key: "trace-id", value: Some("abc/é?#%") });
    producer2.send_with_headers(0, "bad", b"{not json", Some(headers));
    producer2.flush();
    let keep = routing_config(
        dir,
        &broker.bootstrap(),
        &format!("topics = [\"{topic2}\"]\ntable = \"{table2}\""),
        "headers = \"kafka_headers\"",
    );
    let writer = WriterProcess::start(&keep, "table");
    tables::wait_for_offsets(&catalog, &table2, &topic2, &BTreeMap::from([(0, 1)]), WAIT).await;
    assert!(writer.stop(Duration::from_secs(30)).success());
    let letters = pyiceberg_rows(dir, &format!("{table2}_dlq"), "offset");
    let headers = &letters["data"][0]["headers"];
    assert_eq!(headers[0]["key"], "trace-id", "{letters}");
    assert_eq!(headers[0]["value"], hex("abc/é?#%"), "{letters}");
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The kind of record `id` (what `route_field = "kind"` routes by).
fn kind(id: i64) -> &'static str {
    ["click", "tap", "view", "buy", "other"][(id % 5) as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_routed_by_a_field_land_in_three_tables_exactly_once_through_kills() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let broker = Broker::start();
    let topic = unique("routed");
    broker.create_topic(&topic, 2);
    let ns = unique("web");
    let routes = [("clicks", "click|tap"), ("views", "view"), ("buys", "buy")];
    let routes_toml: Vec<String> = routes.iter().map(|(t, p)| format!("\"{ns}.{t}\" = \"{p}\"")).collect();
    let config = routing_config(
        dir,
        &broker.bootstrap(),
        &format!("topics = [\"{topic}\"]\nroute_field = \"kind\"\nroutes = {{ {} }}", routes_toml.join(", ")),
        "",
    );
    let producer = TestProducer::new(&broker.bootstrap(), &topic);
    // (partition, offset) of every record, by kind.
    let mut sent: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    let mut next_offset = [0i64; 2];
    let mut send = |from: i64, to: i64| {
        for id in from..to {
            let partition = (id % 2) as usize;
            let record = serde_json::json!({"note": format!("{id} ü/?#%"), "kind": kind(id), "id": id});
            producer.send(partition as i32, &id.to_string(), record.to_string().as_bytes());
            sent.entry(kind(id)).or_default().push((partition as i32, next_offset[partition]));
            next_offset[partition] += 1;
        }
        producer.flush();
    };
    send(0, 500);
    let mut writer = WriterProcess::start(&config, "writer");
    for (id, rounds) in [(500, 700), (700, 900)] {
        send(id, rounds);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        writer.kill9();
        writer = WriterProcess::start(&config, "writer");
    }
    send(900, 1000);
    let catalog = tables::catalog(dir).await;
    // Every route's table reads past every record, its own or not.
    let end = BTreeMap::from([(0, next_offset[0]), (1, next_offset[1])]);
    for (table, _) in routes {
        tables::wait_for_offsets(&catalog, &format!("{ns}.{table}"), &topic, &end, WAIT).await;
    }
    assert!(writer.stop(Duration::from_secs(30)).success());
    for (table, pattern) in routes {
        let mut rows = tables::partition_offsets(&catalog, &format!("{ns}.{table}")).await;
        rows.sort();
        let mut expected: Vec<(i32, i64)> =
            pattern.split('|').flat_map(|k| sent.get(k).cloned().unwrap_or_default()).collect();
        expected.sort();
        assert_eq!(rows.len(), expected.len(), "{table}: each of its records once");
        assert_eq!(rows, expected, "{table}: exactly the records of kinds {pattern}");
    }
}
