//! What an operator watches: the writer's `/metrics`, `/healthz` and `/readyz` tell the truth
//! about records, dead letters, lag and commits, readiness follows the catalog, logs (human and
//! JSON, at debug level) never show a secret, and the optimizer leaves a textfile for Prometheus.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use icefall_integration_tests::broker::free_port;
use icefall_integration_tests::http::{self, metric_sum};
use icefall_integration_tests::optimizer;
use icefall_integration_tests::produce::TestProducer;
use icefall_integration_tests::scenario::{PARTITIONS, Scenario};
use icefall_integration_tests::tables;
use icefall_integration_tests::writer::{WriterProcess, writer_binary};

const WAIT: Duration = Duration::from_secs(120);

fn serve_metrics(config: &Path, port: u16) {
    let mut text = std::fs::read_to_string(config).expect("read config");
    text.push_str(&format!("\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    std::fs::write(config, text).expect("write config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_probes_show_records_dead_letters_lag_and_catalog_health() {
    let s = Scenario::on_postgres("metrics", "500ms");
    let postgres = s.postgres.as_ref().expect("a PostgreSQL scenario");
    let port = free_port();
    serve_metrics(&s.writer_config, port);
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let mut landed = BTreeMap::new();
    producer.send_events(0, 2_000, PARTITIONS, &mut landed);
    for i in 0..5 {
        producer.send(0, &format!("bad-{i}"), b"{ this is not json");
    }
    producer.flush();
    *landed.entry(0).or_default() += 5;

    let writer = WriterProcess::start(&s.writer_config, "writer");
    http::wait_for(port, "/healthz", WAIT, |status, body| status == 200 && body == "ok\n");
    let catalog = s.catalog().await;
    tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, WAIT).await;
    let ready = http::wait_for(port, "/readyz", WAIT, |status, _| status == 200);
    assert!(ready.contains("ok pipeline events: partitions assigned"), "{ready}");

    // Lag comes from librdkafka's statistics (every 5 s): it reaches 0 on every partition.
    let topic = format!("topic=\"{}\"", s.topic);
    let text = http::wait_for(port, "/metrics", Duration::from_secs(30), |_, text| {
        (0..PARTITIONS).all(|p| {
            let partition = format!("partition=\"{p}\"");
            metric_sum(text, "icefall_consumer_lag_records", &[&topic, &partition]) == Some(0.0)
        })
    });
    let pipeline = "pipeline=\"events\"";
    let sum = |name: &str, labels: &[&str]| metric_sum(&text, name, labels).unwrap_or_else(|| panic!("{name}: {text}"));
    assert_eq!(sum("icefall_consumed_records_total", &[pipeline, &topic]), 2_005.0);
    assert_eq!(sum("icefall_committed_records_total", &[pipeline]), 2_000.0, "every good record committed once");
    assert_eq!(sum("icefall_dead_letter_records_total", &[pipeline, &topic]), 5.0, "malformed records by reason");
    assert!(text.contains("icefall_dead_letter_records_total{pipeline=\"events\",topic="), "{text}");
    assert!(sum("icefall_commits_total", &[pipeline, "outcome=\"committed\""]) >= 1.0);
    assert!(sum("icefall_written_files_total", &[pipeline]) >= 1.0);
    assert!(sum("icefall_written_bytes_total", &[pipeline]) > 0.0);
    assert_eq!(sum("icefall_assigned_partitions", &[pipeline]), f64::from(PARTITIONS));
    assert!(sum("icefall_checkpoint_duration_seconds_count", &[pipeline]) >= 1.0);
    assert!(sum("icefall_writers", &[pipeline]) >= 1.0);
    // The standard events carry `ts` around 2026: the event watermark is a plausible Unix time.
    assert!(sum("icefall_event_watermark_timestamp_seconds", &[pipeline]) > 1.6e9);
    assert!(sum("icefall_last_commit_timestamp_seconds", &[pipeline]) > 1.6e9);

    // Catalog down: not ready, and it says why; back up: ready again. Alive all along.
    postgres.pause();
    let report = http::wait_for(port, "/readyz", WAIT, |status, _| status == 503);
    assert!(report.contains("fail pipeline events: catalog"), "{report}");
    assert_eq!(http::get(port, "/healthz").map(|(status, _)| status), Some(200));
    postgres.resume();
    http::wait_for(port, "/readyz", WAIT, |status, _| status == 200);

    assert!(writer.stop(Duration::from_secs(60)).success());
    let ids = tables::long_column(&catalog, &s.table, "id").await;
    tables::assert_exactly_once(&ids, 2_000);
}

/// Secrets go into the config; neither logs (human or JSON, debug level), nor `validate`'s
/// output, nor an error on an unreachable catalog, nor `/metrics` may show any of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_ever_logged() {
    let s = Scenario::on_postgres("secrets", "500ms");
    let secrets = ["s3cr3t-catalog-pw", "s3cr3t-sasl-pw", "s3cr3t-storage-key"];
    let port = free_port();
    let mut text = std::fs::read_to_string(&s.writer_config).expect("read config");
    text = text.replace("postgres://icefall@", &format!("postgres://icefall:{}@", secrets[0]));
    text = text.replace(
        "\"max.poll.interval.ms\" = \"15000\"",
        &format!(
            "\"max.poll.interval.ms\" = \"15000\", \"sasl.username\" = \"icefall\", \"sasl.password\" = \"{}\"",
            secrets[1]
        ),
    );
    text = text.replace(
        "name = \"icefall\"\nwarehouse",
        &format!("name = \"icefall\"\nstorage = {{ \"s3.secret-access-key\" = \"{}\" }}\nwarehouse", secrets[2]),
    );
    assert!(secrets.iter().all(|secret| text.contains(secret)), "the config carries every secret");
    std::fs::write(&s.writer_config, &text).expect("write config");
    serve_metrics(&s.writer_config, port);

    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let mut landed = BTreeMap::new();
    producer.send_events(0, 500, PARTITIONS, &mut landed);
    let mut outputs = Vec::new();
    for json in [false, true] {
        let log = s.dir.join(format!("writer-{json}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(writer_binary());
        command.env("ICEFALL_LOG", "debug").args(["run", "--config"]).arg(&s.writer_config);
        if json {
            command.arg("--log-json");
        }
        let mut child = command.stderr(file).stdout(std::process::Stdio::null()).spawn().expect("start writer");
        let catalog = s.catalog().await;
        tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, WAIT).await;
        outputs.push(http::wait_for(port, "/metrics", WAIT, |status, _| status == 200));
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        assert!(child.wait().expect("wait").success());
        outputs.push(std::fs::read_to_string(&log).expect("read log"));
        producer.send_events(500, 600, PARTITIONS, &mut landed);
    }
    assert!(outputs[3].lines().any(|l| l.starts_with('{')), "--log-json writes JSON lines");
    assert!(outputs[1].contains("checkpoint committed"), "the log has one line per checkpoint");

    // `validate`, and a catalog that cannot be reached (its error names the server, not the password).
    let validate = Command::new(writer_binary()).args(["validate", "--config"]).arg(&s.writer_config).output();
    let validate = validate.expect("run validate");
    outputs.push(String::from_utf8_lossy(&validate.stdout).into_owned() + &String::from_utf8_lossy(&validate.stderr));
    let closed = text.replace(
        &format!("127.0.0.1:{}", s.postgres.as_ref().expect("postgres").port),
        &format!("127.0.0.1:{}", free_port()),
    );
    let unreachable = s.dir.join("unreachable.toml");
    std::fs::write(&unreachable, closed).expect("write config");
    let failed = Command::new(writer_binary()).args(["validate", "--config"]).arg(&unreachable).output();
    let failed = failed.expect("run validate");
    assert!(!failed.status.success(), "an unreachable catalog fails validate");
    outputs.push(String::from_utf8_lossy(&failed.stdout).into_owned() + &String::from_utf8_lossy(&failed.stderr));

    for (i, output) in outputs.iter().enumerate() {
        assert!(!output.is_empty(), "output {i} is empty");
        for secret in secrets {
            assert!(!output.contains(secret), "output {i} shows {secret}:\n{output}");
        }
    }
    assert!(outputs[5].contains("***"), "the catalog URI is shown redacted: {}", outputs[5]);
}

/// The optimizer, run from cron, leaves its figures where node_exporter's textfile collector
/// reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_optimizer_writes_a_prometheus_textfile() {
    let s = Scenario::new("optmetrics", "300ms");
    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let mut landed = BTreeMap::new();
    let writer = WriterProcess::start(&s.writer_config, "writer");
    let catalog = s.catalog().await;
    for round in 0..3 {
        producer.send_events(round * 300, (round + 1) * 300, PARTITIONS, &mut landed);
        tables::wait_for_offsets(&catalog, &s.table, &s.topic, &landed, WAIT).await;
    }
    assert!(writer.stop(Duration::from_secs(60)).success());
    let files_before = tables::data_file_count(&catalog, &s.table).await;
    let config = optimizer::config(&s.dir, None);
    let textfile = s.dir.join("icefall-optimizer.prom");
    let output = Command::new(optimizer::optimizer_binary())
        .args(["--config"])
        .arg(&config)
        .args(["--table", &s.table, "--metrics-file"])
        .arg(&textfile)
        .arg("compact")
        .output()
        .expect("run the optimizer");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = std::fs::read_to_string(&textfile).expect("the textfile was written");
    let table = format!("table=\"{}\"", s.table);
    let rewritten = metric_sum(&text, "icefall_optimizer_rewritten_files", &[&table]).expect("rewritten files");
    assert_eq!(rewritten as u64, files_before, "every small file was compacted: {text}");
    assert!(metric_sum(&text, "icefall_optimizer_rewritten_bytes", &[&table]).is_some_and(|b| b > 0.0));
    assert_eq!(metric_sum(&text, "icefall_optimizer_last_run_success", &["command=\"compact\""]), Some(1.0));
    assert!(metric_sum(&text, "icefall_optimizer_run_duration_seconds", &[]).is_some_and(|d| d > 0.0));
    assert!(!s.dir.read_dir().expect("dir").flatten().any(|e| e.file_name().to_string_lossy().contains(".tmp.")));
}

/// A pipeline that stops with an error stops the process: the other pipeline makes its final
/// checkpoint and the process exits non-zero (so the orchestrator restarts it), instead of
/// living on with one pipeline dead and its topic lagging unseen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_pipeline_stops_the_process_non_zero() {
    use icefall_integration_tests::broker::Broker;
    use icefall_integration_tests::writer::{PipelineSpec, events_pipelines};
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let broker = Broker::start();
    let (topic_a, topic_b) = (icefall_integration_tests::unique("alive"), icefall_integration_tests::unique("dies"));
    broker.create_topic(&topic_a, 1);
    broker.create_topic(&topic_b, 1);
    let ns = icefall_integration_tests::unique("ns");
    let (table_a, table_b) = (format!("{ns}.alive"), format!("{ns}.dies"));
    let spec = PipelineSpec {
        bootstrap: &broker.bootstrap(),
        topic: "",
        table: "",
        checkpoint: "500ms",
        writers: 1,
        catalog_uri: None,
    };
    let config = events_pipelines(dir, &spec, &[("alive", &topic_a, &table_a), ("dies", &topic_b, &table_b)]);
    let (producer_a, producer_b) =
        (TestProducer::new(&broker.bootstrap(), &topic_a), TestProducer::new(&broker.bootstrap(), &topic_b));
    let mut landed = BTreeMap::new();
    producer_a.send_events(0, 100, 1, &mut landed);
    producer_b.send_events(0, 100, 1, &mut BTreeMap::new());
    let mut writer = WriterProcess::start(&config, "writer");
    let catalog = tables::catalog(dir).await;
    for table in [&table_a, &table_b] {
        tables::wait_for_offsets(
            &catalog,
            table,
            if table == &table_a { &topic_a } else { &topic_b },
            &landed,
            Duration::from_secs(120),
        )
        .await;
    }
    // Pipeline `dies` loses its table: its next commit fails for good.
    catalog.drop_table(&icefall_table::catalog::parse_ident(&table_b).expect("ident")).await.expect("drop");
    producer_b.send_events(100, 200, 1, &mut BTreeMap::new());
    producer_a.send_events(100, 150, 1, &mut landed);
    let status = writer.wait_exit(Duration::from_secs(90));
    assert!(!status.success(), "a dead pipeline makes the process exit non-zero");
    let log = std::fs::read_to_string(&writer.log).expect("log");
    assert!(log.contains("pipeline stopped; stopping the other pipelines") && log.contains("dies"), "{log}");
    // The live pipeline's rows are each in its table once, up to its committed offset.
    let ids = tables::long_column(&catalog, &table_a, "id").await;
    let offsets = tables::offsets(&catalog, &table_a).await;
    let committed = offsets.get(&topic_a).and_then(|p| p.get(&0)).copied().unwrap_or(0);
    assert!(committed >= 100, "{offsets:?}");
    tables::assert_exactly_once(&ids, committed);
}
