//! The PostgreSQL catalog, under outages: two writers with one config share a PostgreSQL
//! catalog (so their compare-and-swap commits conflict and rebase there) while the broker is
//! frozen and the catalog is restarted. Every record must land exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use icefall_integration_tests::produce::TestProducer;
use icefall_integration_tests::scenario::{PARTITIONS, Scenario};
use icefall_integration_tests::tables::{self, assert_exactly_once};
use icefall_integration_tests::writer::WriterProcess;

fn produce(producer: &TestProducer, from: i64, to: i64, landed: &mut BTreeMap<i32, i64>) {
    producer.send_events(from, to, PARTITIONS, landed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_catalog_with_broker_and_catalog_outages_loses_and_duplicates_nothing() {
    let s = Scenario::on_postgres("outage", "1s");
    let (broker, topic, table) = (&s.broker, &s.topic, &s.table);
    let postgres = s.postgres.as_ref().expect("a PostgreSQL scenario");
    let producer = TestProducer::new(&broker.bootstrap(), topic);
    let mut landed = BTreeMap::new();
    produce(&producer, 0, 5_000, &mut landed);
    let a = WriterProcess::start(&s.writer_config, "writer-a");
    let b = WriterProcess::start(&s.writer_config, "writer-b");
    let catalog = s.catalog().await;
    tables::wait_for_offsets(&catalog, table, topic, &landed, Duration::from_secs(120)).await;

    // Broker outage: frozen for 5 s while the writers run.
    produce(&producer, 5_000, 10_000, &mut landed);
    broker.pause();
    tokio::time::sleep(Duration::from_secs(5)).await;
    broker.resume();
    produce(&producer, 10_000, 15_000, &mut landed);

    // Catalog outage: PostgreSQL stopped for 8 s while records keep arriving.
    postgres.pause();
    produce(&producer, 15_000, 20_000, &mut landed);
    tokio::time::sleep(Duration::from_secs(8)).await;
    postgres.resume();
    produce(&producer, 20_000, 25_000, &mut landed);

    let catalog = s.catalog().await;
    tables::wait_for_offsets(&catalog, table, topic, &landed, Duration::from_secs(180)).await;
    let logs = [a.log.clone(), b.log.clone()];
    assert!(a.stop(Duration::from_secs(60)).success(), "writer a exits 0");
    assert!(b.stop(Duration::from_secs(60)).success(), "writer b exits 0");
    // The catalog outage was felt (and ridden out) by the writers.
    let text: String = logs.iter().map(|l| std::fs::read_to_string(l).unwrap_or_default()).collect();
    assert!(text.contains("retrying"), "no writer retried during the catalog outage");

    let ids = tables::long_column(&catalog, table, "id").await;
    assert_exactly_once(&ids, 25_000);
    assert_eq!(tables::offsets(&catalog, table).await.get(topic), Some(&landed));
}
