//! Tables on Google Cloud Storage (gcp-storage-emulator) and on Azure (ADLS paths served by
//! Azurite's Blob API), end to end: the writer lands records and survives a kill -9, the
//! optimizer compacts, expires and removes orphans it finds by listing the store, and PyIceberg,
//! with its own storage clients (pyarrow's for GCS, adlfs for Azure), reads back exactly the rows we produced (a filtered scan too).

use std::collections::BTreeMap;
use std::time::Duration;

use icefall_integration_tests::cloud::{Kind, ObjectStore};
use icefall_integration_tests::engines::pyiceberg_report_on;
use icefall_integration_tests::optimizer;
use icefall_integration_tests::produce::TestProducer;
use icefall_integration_tests::scenario::{PARTITIONS, Scenario};
use icefall_integration_tests::tables;
use icefall_integration_tests::writer::WriterProcess;
use icefall_table::{Catalog, CatalogConfig};

const WAIT: Duration = Duration::from_secs(180);
const PER_STORE: i64 = 3_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_optimizer_and_pyiceberg_on_gcs_and_azure() {
    // One broker and topic for both stores; each store gets its own table and consumer group,
    // and each table takes the whole topic from the start.
    let s = Scenario::new("cloud", "500ms");
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let mut landed = BTreeMap::new();
    for (round, kind) in [Kind::Gcs, Kind::Azure].into_iter().enumerate() {
        let store = ObjectStore::start(kind);
        let first = round as i64 * PER_STORE;
        lands_and_is_maintained(&s, &store, &producer, &mut landed, first).await;
    }
}

async fn lands_and_is_maintained(
    s: &Scenario,
    store: &ObjectStore,
    producer: &TestProducer,
    landed: &mut BTreeMap<i32, i64>,
    first: i64,
) {
    let name = format!("{:?}", store.kind).to_lowercase();
    let table = s.table.replace(".events", &format!(".events_{name}"));
    let warehouse = store.warehouse();
    let config = s.dir.join(format!("writer-{name}.toml"));
    let text = std::fs::read_to_string(&s.writer_config).expect("config");
    let local = format!("warehouse = \"{}/warehouse\"", s.dir.display());
    assert!(text.contains(&local), "the scenario's config has a local warehouse");
    let moved = text
        .replace(&local, &format!("warehouse = \"{warehouse}\"\n{}", store.storage_line()))
        .replace(&s.table, &table)
        .replace("group_id = \"it\"", &format!("group_id = \"it-{name}\""));
    std::fs::write(&config, moved).expect("write config");
    let catalog_config = CatalogConfig {
        uri: format!("sqlite:{}/catalog.db", s.dir.display()),
        name: "icefall".into(),
        warehouse: warehouse.clone(),
        storage: store.properties().into_iter().collect(),
        ..CatalogConfig::default()
    };
    let catalog = Catalog::connect(&catalog_config).await.expect("catalog");

    // Records, a kill -9 while more arrive, a restart: every record once.
    let half = first + PER_STORE / 2;
    producer.send_events(first, half, PARTITIONS, landed);
    let writer = WriterProcess::start(&config, &format!("{name}-1"));
    tables::wait_for_offsets(&catalog, &table, &s.topic, landed, WAIT).await;
    let loaded = catalog.load(&icefall_table::catalog::parse_ident(&table).expect("ident")).await.expect("load");
    assert!(loaded.metadata.location().starts_with(&warehouse), "{}", loaded.metadata.location());
    producer.send_events(half, first + PER_STORE, PARTITIONS, landed);
    tokio::time::sleep(Duration::from_millis(700)).await;
    writer.kill9();
    let writer = WriterProcess::start(&config, &format!("{name}-2"));
    tables::wait_for_offsets(&catalog, &table, &s.topic, landed, WAIT).await;
    writer.wait_for_log("partitions assigned", WAIT);
    assert!(writer.stop(Duration::from_secs(60)).success(), "{name}: clean shutdown");
    let total = first + PER_STORE;
    tables::assert_exactly_once(&tables::long_column(&catalog, &table, "id").await, total);

    // The optimizer: compaction, expiry deleting files on the store, and orphans found by listing.
    let optimizer_config = s.dir.join(format!("optimizer-{name}.toml"));
    std::fs::write(
        &optimizer_config,
        format!(
            "[catalog]\nuri = \"sqlite:{}/catalog.db\"\nname = \"icefall\"\nwarehouse = \"{warehouse}\"\n{}\n\n\
             [compact]\nmin_input_files = 2\n",
            s.dir.display(),
            store.storage_line()
        ),
    )
    .expect("write optimizer config");
    let optimize = |args: &[&str]| optimizer::run_with_env(&optimizer_config, &table, args, &[]);
    let files_before = tables::data_file_count(&catalog, &table).await;
    let compacted = optimize(&["compact"]);
    assert!(compacted[0]["files_in"].as_u64().unwrap_or(0) > 1, "{name}: {compacted:?}");
    let expired = optimize(&["expire-snapshots", "--retain-last", "1", "--older-than", "0s"]);
    assert!(expired[0]["files_deleted"].as_u64().unwrap_or(0) > 0, "{name}: {expired:?}");
    let location = loaded.metadata.location();
    let key = &location[location.find("/warehouse/").expect("under the warehouse") + 1..];
    let planted = format!("{key}/data/planted-orphan.parquet");
    store.put_object(&planted, b"left by a crashed writer");
    assert!(store.list(key).contains(&planted), "{name}: the planted file is there");
    let orphans = optimize(&["remove-orphans", "--older-than", "0s", "--force"]);
    assert!(orphans[0]["files_deleted"].as_u64().unwrap_or(0) >= 1, "{name}: {orphans:?}");
    let left = store.list(key);
    assert!(!left.contains(&planted), "{name}: the orphan is gone");
    assert!(left.iter().any(|k| k.ends_with(".parquet")), "{name}: the table's files stay");
    let again = optimize(&["remove-orphans", "--older-than", "0s", "--force"]);
    assert_eq!(again[0]["files_deleted"], 0, "{name}: nothing left after one pass");
    assert!(tables::data_file_count(&catalog, &table).await < files_before, "{name}: compacted");
    tables::assert_exactly_once(&tables::long_column(&catalog, &table, "id").await, total);
    assert_eq!(tables::offsets(&catalog, &table).await.get(&s.topic), Some(&*landed));

    // PyIceberg, through pyarrow's own GCS / Azure clients: the rows we produced, and a
    // filtered scan that prunes by the files' bounds.
    let filter = format!("id < {}", total / 3);
    let report = pyiceberg_report_on(&s.dir, &table, &warehouse, &store.properties(), &[&filter]);
    assert_eq!(report["rows"], total, "{name}: {report}");
    assert_eq!(report["distinct_ids"], total, "{name}: {report}");
    assert_eq!((report["min_id"].as_i64(), report["max_id"].as_i64()), (Some(0), Some(total - 1)), "{name}");
    assert_eq!(report["filtered"][&filter], total / 3, "{name}: {report}");
}
