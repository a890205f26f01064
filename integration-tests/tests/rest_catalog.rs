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
        rest: Default::default(),
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

/// A REST catalog that hands out 3 s OAuth2 tokens: the writer obtains them with its client
/// credentials, renews them before they expire and once more when the server drops them all,
/// and every record lands once over several token lifetimes. A revoked credential then stops
/// it with an error that names the setting; the secret is in no log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_renews_its_oauth2_tokens_and_a_revoked_credential_stops_it_clearly() {
    const SECRET: &str = "s3cr3t-0f-the-test";
    let credential = format!("icefall-writer:{SECRET}");
    let s = Scenario::new("oauth", "500ms");
    let server = RestCatalogServer::start_with_oauth(&s.dir, &credential, Duration::from_secs(3));
    let config = std::fs::read_to_string(&s.writer_config).expect("config");
    let sqlite = format!("uri = \"sqlite:{}/catalog.db\"", s.dir.display());
    let rest = format!("uri = \"{}\"\nrest = {{ credential = \"${{ICEFALL_TEST_CREDENTIAL}}\" }}", server.uri());
    std::fs::write(&s.writer_config, config.replace(&sqlite, &rest)).expect("config");
    let catalog = Catalog::connect(&CatalogConfig {
        uri: server.uri(),
        rest: [("credential".to_string(), credential.clone())].into(),
        ..CatalogConfig::embedded_in(&s.dir)
    })
    .await
    .expect("connect with client credentials");
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let mut landed = BTreeMap::new();
    let env = [("ICEFALL_TEST_CREDENTIAL", credential.as_str())];

    let writer = WriterProcess::start_with_env(&s.writer_config, "writer", &env);
    for chunk in 0..10 {
        // From the middle on: every token void (a server restart, a key rotation) until the
        // writer has been refused once. Voiding right after one of its own renewals leaves
        // nothing to refuse, so it is repeated.
        if chunk >= 5 && server.stats()["refused"] == 0 {
            server.tokens("expire-tokens");
        }
        producer.send_events(chunk * 500, (chunk + 1) * 500, PARTITIONS, &mut landed);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, WAIT).await;
    let log = writer.log.clone();
    assert!(writer.stop(Duration::from_secs(60)).success());
    tables::assert_offsets_exactly_once(&tables::partition_offsets(&catalog, &s.table).await, &landed);
    let stats = server.stats();
    assert!(stats["tokens"].as_u64().unwrap_or(0) >= 4, "tokens renewed over ~10 s of 3 s tokens: {stats}");
    assert!(stats["refused"].as_u64().unwrap_or(0) >= 1, "the voided tokens were refused once: {stats}");
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(!text.contains(SECRET), "the client secret appears in the writer's log");

    // Revoked: the writer's next request is refused, and so is its next token request.
    let mut writer = WriterProcess::start_with_env(&s.writer_config, "writer-revoked", &env);
    producer.send_events(5_000, 5_500, PARTITIONS, &mut landed);
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, WAIT).await;
    server.tokens("revoke");
    producer.send_events(5_500, 6_000, PARTITIONS, &mut landed);
    let status = writer.wait_exit(Duration::from_secs(60));
    assert!(!status.success(), "a revoked credential stops the writer");
    let text = std::fs::read_to_string(&writer.log).expect("log");
    assert!(
        text.contains("refused our OAuth2 client credentials") && text.contains("catalog.rest.credential"),
        "the error names the setting: {}",
        text.lines().rev().take(5).collect::<Vec<_>>().join("\n")
    );
    assert!(!text.contains(SECRET), "the client secret appears in the writer's log");
}

/// A REST catalog that takes only SigV4-signed requests (as AWS Glue's Iceberg endpoint and S3
/// Tables do), verified by botocore's signer: the writer signs with credentials from the
/// environment and lands every record once, in a table whose path needs percent-encoding too
/// (services other than S3 sign the path encoded twice); a wrong secret is refused with an
/// error naming what to check, and the secret is in no log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_signed_requests_pass_an_independent_verifier_and_a_wrong_secret_is_refused() {
    const SECRET: &str = "sigv4-secret-of-the-test";
    let s = Scenario::new("sigv4", "500ms");
    let server = RestCatalogServer::start_with_sigv4(&s.dir, &format!("AKIDICEFALLTEST:{SECRET}:eu-central-1:glue"));
    let config = std::fs::read_to_string(&s.writer_config).expect("config");
    let sqlite = format!("uri = \"sqlite:{}/catalog.db\"", s.dir.display());
    let signed = format!(
        "uri = \"{}\"\nrest = {{ \"rest.sigv4-enabled\" = \"true\", \"rest.signing-region\" = \"eu-central-1\", \
         \"rest.signing-name\" = \"glue\" }}",
        server.uri()
    );
    std::fs::write(&s.writer_config, config.replace(&sqlite, &signed)).expect("config");
    let odd = s.dir.join("writer-odd-name.toml");
    let odd_table = "ns.sub.events"; // a two-level namespace: `ns%1Fsub` on the wire
    std::fs::write(&odd, std::fs::read_to_string(&s.writer_config).expect("config").replace(&s.table, odd_table))
        .expect("config");
    let catalog = tables::catalog_at(&RestCatalogServer::sqlite_uri(&s.dir), &s.dir).await;
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let mut landed = BTreeMap::new();
    let env = [("AWS_ACCESS_KEY_ID", "AKIDICEFALLTEST"), ("AWS_SECRET_ACCESS_KEY", SECRET)];

    producer.send_events(0, 2_000, PARTITIONS, &mut landed);
    for (config, table, log) in [(&s.writer_config, s.table.as_str(), "writer"), (&odd, odd_table, "writer-odd")] {
        let writer = WriterProcess::start_with_env(config, log, &env);
        tables::wait_for_offsets(&catalog, table, &s.topic, &landed, WAIT).await;
        let log = writer.log.clone();
        assert!(writer.stop(Duration::from_secs(60)).success());
        tables::assert_offsets_exactly_once(&tables::partition_offsets(&catalog, table).await, &landed);
        assert!(!std::fs::read_to_string(log).expect("log").contains(SECRET), "the secret is in a log");
    }
    let stats = server.stats();
    assert!(stats["signed"].as_u64().unwrap_or(0) >= 10, "requests verified by botocore: {stats}");
    assert_eq!(stats["refused"], 0, "no signature of ours was refused: {stats}");

    let wrong = [("AWS_ACCESS_KEY_ID", "AKIDICEFALLTEST"), ("AWS_SECRET_ACCESS_KEY", "not-the-secret")];
    let mut writer = WriterProcess::start_with_env(&s.writer_config, "writer-wrong-secret", &wrong);
    assert!(!writer.wait_exit(Duration::from_secs(60)).success(), "a wrong secret stops the writer");
    let text = std::fs::read_to_string(&writer.log).expect("log");
    assert!(
        text.contains("signature mismatch") && text.contains("AWS_SECRET_ACCESS_KEY"),
        "the error says what was refused and what to check: {}",
        text.lines().rev().take(5).collect::<Vec<_>>().join("\n")
    );
}
