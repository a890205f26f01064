//! The Iceberg REST catalog as the table's catalog: our commit path sends requests with
//! requirements to a REST server (PyIceberg's SqlCatalog behind the REST protocol); a 409
//! rebases, a 5xx leaves the outcome unknown and we find our own commit id before trying again.
//! Then the writer and the optimizer run on it with faults injected, exactly once throughout,
//! and Spark, PyIceberg and DuckDB read the result through the same REST catalog.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use iceberg::spec::{NestedField, PrimitiveType, Schema, Type};
use icefall_integration_tests::engines;
use icefall_integration_tests::optimizer;
use icefall_integration_tests::produce::TestProducer;
use icefall_integration_tests::rest::RestCatalogServer;
use icefall_integration_tests::scenario::{PARTITIONS, Scenario};
use icefall_integration_tests::tables;
use icefall_integration_tests::writer::WriterProcess;
use icefall_table::catalog::parse_ident;
use icefall_table::create::TableLayout;
use icefall_table::offsets::{self, OffsetMap, committed_offsets};
use icefall_table::state::main_ancestry;
use icefall_table::{Catalog, CatalogConfig, PendingCommit, RetryPolicy};

const WAIT: Duration = Duration::from_secs(180);

fn offsets_to(offset: i64) -> impl Fn(&iceberg::spec::TableMetadata) -> Result<HashMap<String, String>, String> {
    move |metadata| {
        let mut map: OffsetMap = committed_offsets(metadata).map_err(|e| e.to_string())?;
        map.entry("t".into()).or_default().insert(0, offset);
        Ok(HashMap::from([(offsets::OFFSETS.to_string(), offsets::encode(&map))]))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_commits_rebase_on_409_and_find_their_commit_after_a_5xx() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = RestCatalogServer::start(dir.path());
    let catalog = Catalog::connect(&CatalogConfig {
        uri: server.uri(),
        name: "icefall".into(),
        warehouse: format!("{}/warehouse", dir.path().display()),
        storage: Default::default(),
        token: None,
    })
    .await
    .expect("connect to the REST catalog");
    let ident = parse_ident("ns.events").expect("ident");
    let schema = Schema::builder()
        .with_fields(vec![NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into()])
        .build()
        .expect("schema");
    let layout = TableLayout { schema, partition: vec![], properties: HashMap::new(), sort_order: vec![] };
    let base = catalog.load_or_create(&ident, &layout).await.expect("create through REST");
    assert_eq!(catalog.list_tables(ident.namespace()).await.expect("list"), vec![ident.clone()]);
    let policy = RetryPolicy::default();
    let commit = |n: i64| PendingCommit::append(vec![], 0, HashMap::from([("test.n".to_string(), n.to_string())]));

    let first = catalog.commit(base.clone(), &commit(1), offsets_to(10), &policy).await.expect("first");
    assert_eq!((first.attempts, first.conflicts), (1, 0));
    // From the same (now stale) base: the server answers 409, we rebase and land.
    let second = catalog.commit(base, &commit(2), offsets_to(20), &policy).await.expect("second");
    assert_eq!((second.attempts, second.conflicts), (2, 1), "one 409, one rebase");
    assert_eq!(server.stats()["conflicts"], 1);

    // Applied, then 500: the retry finds our commit id and does not commit twice.
    server.fail_next_commits(&["after-500"]);
    let third = catalog.commit(second.table.clone(), &commit(3), offsets_to(30), &policy).await.expect("third");
    assert!(third.already_committed, "the retry found the commit the 500 hid");
    // Refused with 503 before applying: the retry commits it.
    server.fail_next_commits(&["before-503"]);
    let fourth = catalog.commit(third.table.clone(), &commit(4), offsets_to(40), &policy).await.expect("fourth");
    assert_eq!(fourth.attempts, 2);
    assert!(!fourth.already_committed);
    assert_eq!(server.stats()["faults"], 2);

    let table = catalog.load(&ident).await.expect("load");
    let chain: Vec<_> = main_ancestry(&table.metadata).collect();
    let ns: Vec<String> = chain
        .iter()
        .rev()
        .map(|s| s.summary().additional_properties.get("test.n").cloned().unwrap_or_default())
        .collect();
    assert_eq!(ns, vec!["1", "2", "3", "4"], "each commit landed exactly once, in order");
    assert_eq!(committed_offsets(&table.metadata).expect("offsets")["t"].get(&0), Some(&40));
    assert!(table.metadata_location.starts_with("file:") || table.metadata_location.starts_with('/'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_and_optimizer_on_a_rest_catalog_with_commit_faults_lose_and_duplicate_nothing() {
    let s = Scenario::new("rest", "400ms");
    let server = RestCatalogServer::start(&s.dir);
    let config = std::fs::read_to_string(&s.writer_config).expect("config");
    let sqlite = format!("uri = \"sqlite:{}/catalog.db\"", s.dir.display());
    assert!(config.contains(&sqlite));
    std::fs::write(&s.writer_config, config.replace(&sqlite, &format!("uri = \"{}\"", server.uri()))).expect("config");
    let catalog = tables::catalog_at(&server.uri(), &s.dir).await;
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let mut landed = BTreeMap::new();

    // Two writers share the table: their commits race (409s) while the server fails some.
    let a = WriterProcess::start(&s.writer_config, "writer-a");
    let b = WriterProcess::start(&s.writer_config, "writer-b");
    for chunk in 0..6 {
        if chunk == 2 {
            server.fail_next_commits(&["after-500", "before-503", "after-500"]);
        }
        producer.send_events(chunk * 1_000, (chunk + 1) * 1_000, PARTITIONS, &mut landed);
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, WAIT).await;
    a.kill9();
    producer.send_events(6_000, 7_000, PARTITIONS, &mut landed);
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, WAIT).await;
    assert!(b.stop(Duration::from_secs(60)).success());
    let stats = server.stats();
    assert_eq!(stats["faults"], 3, "every injected fault was served: {stats}");
    assert!(stats["commits"].as_u64().unwrap_or(0) >= 2, "the writers committed through REST: {stats}");
    tables::assert_exactly_once(&tables::long_column(&catalog, &s.table, "id").await, 7_000);

    // The optimizer commits through the same REST catalog.
    let optimizer_config = s.dir.join("optimizer.toml");
    std::fs::write(
        &optimizer_config,
        format!(
            "[catalog]\nuri = \"{}\"\nname = \"icefall\"\nwarehouse = \"{}/warehouse\"\n\n[compact]\nmin_input_files = 2\n",
            server.uri(),
            s.dir.display()
        ),
    )
    .expect("optimizer config");
    let files_before = tables::data_file_count(&catalog, &s.table).await;
    server.fail_next_commits(&["after-500"]);
    let compacted = optimizer::run(&optimizer_config, &s.table, &["compact"]);
    assert!(compacted[0]["files_in"].as_u64().unwrap_or(0) > 1, "{compacted:?}");
    optimizer::run(&optimizer_config, &s.table, &["expire-snapshots", "--retain-last", "2", "--older-than", "0s"]);
    assert!(tables::data_file_count(&catalog, &s.table).await < files_before);
    tables::assert_exactly_once(&tables::long_column(&catalog, &s.table, "id").await, 7_000);
    assert_eq!(tables::offsets(&catalog, &s.table).await.get(&s.topic), Some(&landed));

    // Engines read the table through the same REST catalog: Spark (Iceberg's Java REST client),
    // PyIceberg's REST client and DuckDB see every row and value our own scan sees.
    let options = engines::EngineOptions { catalog_uri: Some(&server.uri()), ..Default::default() };
    let report = engines::engines_report(&catalog, &s.dir, &s.table, &options).await;
    engines::assert_engines_agree(&report, &[], 7_000);
}
