//! S3 storage end to end, against an S3-protocol server on 127.0.0.1 (moto) behind a proxy the
//! test cuts: the writer rides out a storage outage in the middle of its checkpoints and a
//! kill -9, the optimizer compacts, expires and removes orphans on S3, and every record is in
//! the table exactly once throughout; `validate` probes write access where files go. A REST
//! catalog's vended keys are the only ones that write its tables on an S3 server enforcing IAM.

use std::collections::BTreeMap;
use std::time::Duration;

use icefall_integration_tests::optimizer;
use icefall_integration_tests::produce::TestProducer;
use icefall_integration_tests::rest::RestCatalogServer;
use icefall_integration_tests::s3::S3Server;
use icefall_integration_tests::scenario::{PARTITIONS, Scenario};
use icefall_integration_tests::tables;
use icefall_integration_tests::writer::WriterProcess;
use icefall_table::{Catalog, CatalogConfig, storage};

const WAIT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_and_optimizer_on_s3_ride_out_a_storage_outage_mid_checkpoint() {
    let s = Scenario::new("s3", "500ms");
    let s3 = S3Server::start();
    s3.create_bucket("lake");
    s3.move_warehouse(&s.writer_config, &s.dir, "lake");
    let catalog = Catalog::connect(&s3.catalog_config(&s.dir, "lake")).await.expect("catalog on S3");
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let mut landed = BTreeMap::new();
    producer.send_events(0, 2_000, PARTITIONS, &mut landed);
    let writer = WriterProcess::start(&s.writer_config, "writer-1");
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, WAIT).await;
    let loaded = catalog.load(&icefall_table::catalog::parse_ident(&s.table).expect("ident")).await.expect("load");
    assert!(loaded.metadata.location().starts_with("s3://lake/warehouse/"), "{}", loaded.metadata.location());

    // Outage while records arrive: several checkpoints fail to write files or to commit.
    for chunk in 0..6 {
        producer.send_events(2_000 + chunk * 500, 2_500 + chunk * 500, PARTITIONS, &mut landed);
        if chunk == 1 {
            s3.cut();
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    // Longer than the storage layer's own retries (1 + 2 + 4 s): the checkpoint itself fails.
    tokio::time::sleep(Duration::from_secs(8)).await;
    s3.restore();
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, WAIT).await;
    let log = std::fs::read_to_string(&writer.log).expect("writer log");
    assert!(
        log.contains("writing the checkpoint failed") || log.contains("commit failed; retrying"),
        "the outage did not reach the writer's checkpoint"
    );

    // A crash right after more records, then a restart.
    producer.send_events(5_000, 6_000, PARTITIONS, &mut landed);
    tokio::time::sleep(Duration::from_millis(800)).await;
    writer.kill9();
    let writer = WriterProcess::start(&s.writer_config, "writer-2");
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, WAIT).await;
    // The first writer may have committed everything before the kill: stop the second only
    // once it runs, so its clean shutdown is what is checked.
    writer.wait_for_log("partitions assigned", WAIT);
    let status = writer.stop(Duration::from_secs(60));
    assert!(status.success(), "{status}");
    tables::assert_exactly_once(&tables::long_column(&catalog, &s.table, "id").await, 6_000);

    // The optimizer on S3, with its credentials from the environment (none in its config).
    let optimizer_config = s.dir.join("optimizer.toml");
    std::fs::write(
        &optimizer_config,
        format!(
            "[catalog]\nuri = \"sqlite:{}/catalog.db\"\nname = \"icefall\"\nwarehouse = \"s3://lake/warehouse\"\n\
             storage = {{ \"s3.endpoint\" = \"{}\", \"s3.path-style-access\" = \"true\" }}\n\n\
             [compact]\nmin_input_files = 2\n",
            s.dir.display(),
            s3.endpoint()
        ),
    )
    .expect("write optimizer config");
    let env = [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_REGION", "us-east-1")];
    let optimize = |args: &[&str]| optimizer::run_with_env(&optimizer_config, &s.table, args, &env);
    let files_before = tables::data_file_count(&catalog, &s.table).await;
    let compacted = optimize(&["compact"]);
    assert!(compacted[0]["files_in"].as_u64().unwrap_or(0) > 1, "{compacted:?}");
    let expired = optimize(&["expire-snapshots", "--retain-last", "1", "--older-than", "0s"]);
    assert!(expired[0]["snapshots_expired"].as_u64().unwrap_or(0) > 0, "{expired:?}");
    assert!(expired[0]["files_deleted"].as_u64().unwrap_or(0) > 0, "expiry deletes the compacted-away files on S3");
    // Files of checkpoints the outage and the crash dropped are orphans: listed on S3 and deleted
    // (with one we plant, so the listing is proven whatever the writer cleaned up itself).
    let location = loaded.metadata.location().trim_start_matches("s3://").to_string();
    s3.put_object(&format!("{location}/data/planted-orphan.parquet"), b"left by a crashed writer");
    let orphans = optimize(&["remove-orphans", "--older-than", "0s", "--force"]);
    assert!(orphans[0]["files_deleted"].as_u64().unwrap_or(0) >= 1, "{orphans:?}");
    let again = optimize(&["remove-orphans", "--older-than", "0s", "--force"]);
    assert_eq!(again[0]["files_deleted"], 0, "nothing left after one pass: {orphans:?} then {again:?}");
    let files_after = tables::data_file_count(&catalog, &s.table).await;
    assert!(files_after < files_before, "{files_before} → {files_after}");
    tables::assert_exactly_once(&tables::long_column(&catalog, &s.table, "id").await, 6_000);
    assert_eq!(tables::offsets(&catalog, &s.table).await.get(&s.topic), Some(&landed));

    // `validate` writes and deletes a probe object where the files go: the table on S3 passes,
    // a new table in a bucket that does not exist fails, naming the location and what to check.
    let validate = |config: &std::path::Path| {
        let out = std::process::Command::new(icefall_integration_tests::writer::writer_binary())
            .args(["validate", "--config"])
            .arg(config)
            .output()
            .expect("run validate");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, stdout, stderr) = validate(&s.writer_config);
    assert!(ok && stdout.contains("s3://lake/warehouse/") && stdout.contains(": writable"), "{stdout}{stderr}");
    let text = std::fs::read_to_string(&s.writer_config).expect("config");
    let elsewhere = s.dir.join("writer-no-bucket.toml");
    let moved = text.replace("s3://lake/warehouse", "s3://no-such-bucket/warehouse").replace(&s.table, "ns.elsewhere");
    std::fs::write(&elsewhere, moved).expect("config");
    let (ok, _, stderr) = validate(&elsewhere);
    assert!(!ok, "a bucket that does not exist is not writable");
    assert!(stderr.contains("s3://no-such-bucket/warehouse") && stderr.contains("catalog.storage"), "{stderr}");
}

/// A REST catalog that vends per-table S3 keys (as Polaris, Unity and S3 Tables do), on an S3
/// server that enforces IAM: the writer and the optimizer hold no key that may write the table,
/// yet they land, compact and clean it with the keys vended with it; a table's keys cannot
/// write outside its prefix, and without them nothing writes there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vended_credentials_are_the_only_keys_that_write_a_table() {
    let s = Scenario::new("vended", "500ms");
    let s3 = S3Server::start_enforcing_iam_after(4);
    let server = RestCatalogServer::start_vending_s3(&s.dir, &s3.endpoint());
    // Our own storage settings name a key the S3 server never issued.
    let mut storage = s3.catalog_config(&s.dir, "lake").storage;
    storage.insert("s3.access-key-id".into(), "no-such-key".into());
    storage.insert("s3.secret-access-key".into(), "wrong".into());
    let storage_line = storage.iter().map(|(k, v)| format!("\"{k}\" = \"{v}\"")).collect::<Vec<_>>().join(", ");
    let text = std::fs::read_to_string(&s.writer_config).expect("config");
    let sqlite = format!("uri = \"sqlite:{}/catalog.db\"", s.dir.display());
    let local = format!("warehouse = \"{}/warehouse\"", s.dir.display());
    let moved = text
        .replace(&sqlite, &format!("uri = \"{}\"", server.uri()))
        .replace(&local, &format!("warehouse = \"s3://lake/warehouse\"\nstorage = {{ {storage_line} }}"));
    std::fs::write(&s.writer_config, moved).expect("write config");
    let rest_config = CatalogConfig {
        uri: server.uri(),
        warehouse: "s3://lake/warehouse".into(),
        storage: storage.clone(),
        ..CatalogConfig::default()
    };
    let catalog = Catalog::connect(&rest_config).await.expect("connect to the REST catalog");

    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let mut landed = BTreeMap::new();
    producer.send_events(0, 2_000, PARTITIONS, &mut landed);
    let writer = WriterProcess::start(&s.writer_config, "writer");
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, WAIT).await;
    producer.send_events(2_000, 3_000, PARTITIONS, &mut landed);
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, WAIT).await;
    let writer_log = writer.log.clone();
    assert!(writer.stop(Duration::from_secs(60)).success(), "clean shutdown");
    tables::assert_exactly_once(&tables::long_column(&catalog, &s.table, "id").await, 3_000);
    assert!(server.stats()["vended"].as_u64().unwrap_or(0) > 0, "{}", server.stats());

    // The keys vended with the table write under its location and nowhere else; the catalog's
    // own settings (no vending) write nowhere.
    let ident = icefall_table::catalog::parse_ident(&s.table).expect("ident");
    let location = catalog.load(&ident).await.expect("load").metadata.location().to_string();
    let vended = catalog.storage_properties(&location);
    assert_ne!(vended["s3.access-key-id"], "no-such-key", "the table's location has vended keys");
    let logged = std::fs::read_to_string(&writer_log).expect("writer log");
    assert!(!logged.contains(&vended["s3.secret-access-key"]), "a vended secret is in the writer's log");
    let with = |props: &BTreeMap<String, String>| {
        storage::file_io(&CatalogConfig { storage: props.clone(), ..rest_config.clone() }, &Default::default())
    };
    storage::probe_write(&with(&vended), &location).await.expect("vended keys write the table");
    let elsewhere = storage::probe_write(&with(&vended), "s3://lake/warehouse/another_table").await;
    assert!(format!("{:?}", elsewhere.expect_err("outside the prefix")).contains("AccessDenied"));
    let own = storage::probe_write(&with(&storage), &location).await;
    assert!(format!("{:?}", own.expect_err("no vended keys")).contains("InvalidAccessKeyId"));

    // The optimizer, with the same key-less settings, compacts with the vended keys. (Orphan
    // removal lists with them too, through the same per-location properties; moto cannot check
    // that here: it verifies list requests against botocore's canonical form, which leaves the
    // `/` in `prefix=` unencoded where the SigV4 spec and opendal's signer encode it.)
    let optimizer_config = s.dir.join("optimizer-vended.toml");
    std::fs::write(
        &optimizer_config,
        format!(
            "[catalog]\nuri = \"{}\"\nwarehouse = \"s3://lake/warehouse\"\nstorage = {{ {storage_line} }}\n\n\
             [compact]\nmin_input_files = 2\n",
            server.uri()
        ),
    )
    .expect("write optimizer config");
    let optimize = |args: &[&str]| optimizer::run_with_env(&optimizer_config, &s.table, args, &[]);
    let compacted = optimize(&["compact"]);
    assert!(compacted[0]["files_in"].as_u64().unwrap_or(0) > 1, "{compacted:?}");
    tables::assert_exactly_once(&tables::long_column(&catalog, &s.table, "id").await, 3_000);
}
