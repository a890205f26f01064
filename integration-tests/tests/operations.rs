//! What an operator watches: the writer's `/metrics`, `/healthz` and `/readyz` tell the truth
//! about records, dead letters, lag and commits, readiness follows the catalog, logs (human and
//! JSON, at debug level) never show a secret, and the optimizer leaves a textfile for Prometheus.
//! `icefall-writer offsets show|set|reset` moves a table's offsets as a snapshot the writer
//! honours, refused while a writer is in the pipeline's group.

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
    // The outage shows in the catalog request counts: probes that got no answer, next to the
    // loads and commits that went through.
    let (_, text) = http::get(port, "/metrics").expect("metrics");
    let requests = |labels: &[&str]| metric_sum(&text, "icefall_catalog_requests_total", labels).unwrap_or(0.0);
    assert!(requests(&["operation=\"commit\"", "outcome=\"ok\""]) >= 1.0, "{text}");
    assert!(requests(&["outcome=\"cancelled\""]) + requests(&["outcome=\"error\""]) >= 1.0, "{text}");
    assert!(
        metric_sum(&text, "icefall_catalog_request_seconds_total", &["operation=\"load\""]).is_some_and(|s| s > 0.0)
    );

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
/// reads them, and on a real Prometheus Pushgateway (which parses them as Prometheus does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_optimizer_writes_a_prometheus_textfile_and_pushes_to_a_pushgateway() {
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
    let gateway_port = free_port();
    let mut gateway = Command::new(icefall_integration_tests::tools_dir().join("bin/pushgateway"))
        .arg(format!("--web.listen-address=127.0.0.1:{gateway_port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the Pushgateway (scripts/setup.sh fetches it)");
    icefall_integration_tests::process::wait_for_port(gateway_port, "the Pushgateway", Duration::from_secs(30));
    let output = Command::new(optimizer::optimizer_binary())
        .args(["--config"])
        .arg(&config)
        .args(["--table", &s.table, "--metrics-file"])
        .arg(&textfile)
        .args(["--metrics-push", &format!("http://127.0.0.1:{gateway_port}")])
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
    let commits = ["operation=\"commit\"", "outcome=\"ok\""];
    assert!(metric_sum(&text, "icefall_optimizer_catalog_requests", &commits).is_some_and(|n| n >= 1.0), "{text}");
    assert!(metric_sum(&text, "icefall_optimizer_catalog_requests", &["operation=\"load\""]).is_some_and(|n| n >= 1.0));
    assert!(!s.dir.read_dir().expect("dir").flatten().any(|e| e.file_name().to_string_lossy().contains(".tmp.")));

    // The Pushgateway took the same figures under job icefall-optimizer.
    let (status, pushed) = http::get(gateway_port, "/metrics").expect("the Pushgateway answers");
    let _ = gateway.kill();
    let _ = gateway.wait();
    assert_eq!(status, 200);
    let job = "job=\"icefall-optimizer\"";
    assert_eq!(metric_sum(&pushed, "icefall_optimizer_rewritten_files", &[&table, job]), Some(rewritten), "{pushed}");
    assert_eq!(metric_sum(&pushed, "icefall_optimizer_last_run_success", &[job]), Some(1.0), "{pushed}");
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

/// `icefall-writer offsets …` on the scenario's config: (success, stdout + stderr).
fn offsets(s: &Scenario, args: &[&str]) -> (bool, String) {
    let output = Command::new(writer_binary())
        .arg("offsets")
        .args(args)
        .arg("--config")
        .arg(&s.writer_config)
        .output()
        .expect("run");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// The rows `show` prints for the topic: partition → (table offset, log end).
fn shown(text: &str, topic: &str) -> BTreeMap<i32, (String, i64)> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{topic} ")))
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            (cells[1].parse().expect("partition"), (cells[2].to_string(), cells[4].parse().expect("log end")))
        })
        .collect()
}

/// Sends events `from..to`, then one more per partition on its own: Tansu answers "latest" with
/// the last batch's first offset + 1, so a last batch of one record makes the log end exact.
fn produce(producer: &TestProducer, from: i64, to: i64, landed: &mut BTreeMap<i32, i64>) -> i64 {
    producer.send_events(from, to, PARTITIONS, landed);
    producer.send_events(to, to + i64::from(PARTITIONS), PARTITIONS, landed);
    to + i64::from(PARTITIONS)
}

/// Waits for the table's offsets to reach `expected`; on a timeout shows the writer's log.
async fn wait_or_show(s: &Scenario, expected: &BTreeMap<i32, i64>, writer: &WriterProcess) {
    let catalog = s.catalog().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let got = tables::offsets(&catalog, &s.table).await.get(&s.topic).cloned().unwrap_or_default();
        if expected.iter().all(|(p, o)| got.get(p).is_some_and(|g| g >= o)) {
            return;
        }
        if std::time::Instant::now() > deadline {
            let log = std::fs::read_to_string(&writer.log).unwrap_or_default();
            panic!("offsets did not reach {expected:?}; table has {got:?}; writer log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Everything from `from` (per partition) up to `to`, once.
fn expected_pairs(from: &BTreeMap<i32, i64>, to: &BTreeMap<i32, i64>) -> Vec<(i32, i64)> {
    (0..PARTITIONS).flat_map(|p| (from.get(&p).copied().unwrap_or(0)..to[&p]).map(move |o| (p, o))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_reset_to_a_time_latest_and_explicit_then_the_table_holds_what_the_broker_holds_after_them() {
    let s = Scenario::new("offsets", "1s");
    let catalog = s.catalog().await;
    // The writer creates the table on its first start; nothing to read yet. (It leaves after
    // its assignment: the test broker's group does not recover from a member that leaves
    // half-way through joining.)
    let writer = WriterProcess::start(&s.writer_config, "writer-0");
    writer.wait_for_log("partitions assigned at table offsets", Duration::from_secs(60));
    assert!(writer.stop(Duration::from_secs(60)).success());

    let producer = TestProducer::new(&s.broker.bootstrap(), &s.topic);
    let mut old = BTreeMap::new();
    let next = produce(&producer, 0, 2_000, &mut old);
    std::thread::sleep(Duration::from_millis(1_100));
    let cut = chrono::Utc::now();
    std::thread::sleep(Duration::from_millis(1_100));
    let mut all = old.clone();
    let next = produce(&producer, next, next + 2_000, &mut all);

    // show: no table offsets yet, the broker's log ends.
    let (ok, text) = offsets(&s, &["show"]);
    assert!(ok, "{text}");
    let rows = shown(&text, &s.topic);
    assert_eq!(rows.len(), PARTITIONS as usize, "{text}");
    assert!(rows.iter().all(|(p, (table, end))| table == "-" && *end == all[p]), "{text}");

    // A dry run commits nothing.
    let time = cut.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (ok, text) = offsets(&s, &["reset", "--to-datetime", &time]);
    assert!(ok && text.contains("dry run"), "{text}");
    assert!(tables::offsets(&catalog, &s.table).await.is_empty());
    // Executed: every partition at its first record after the cut, which is where the old ones end.
    let (ok, text) = offsets(&s, &["reset", "--to-datetime", &time, "--execute"]);
    assert!(ok && text.contains("committed as snapshot"), "{text}");
    assert_eq!(tables::offsets(&catalog, &s.table).await.get(&s.topic), Some(&old));

    // The writer honours them: only the records after the cut land, each once.
    let writer = WriterProcess::start(&s.writer_config, "writer-1");
    wait_or_show(&s, &all, &writer).await;
    // While it runs (it is in the group) a move is refused, naming the way out.
    let (ok, text) = offsets(&s, &["reset", "--to-latest", "--execute"]);
    assert!(!ok && text.contains("has members") && text.contains("--force"), "{text}");
    assert!(writer.stop(Duration::from_secs(60)).success());
    let mut pairs = tables::partition_offsets(&catalog, &s.table).await;
    pairs.sort_unstable();
    assert_eq!(pairs, expected_pairs(&old, &all), "the table holds exactly the records after the cut");

    // To the latest: what was produced while stopped is skipped; explicit: partition 0 reads
    // its last 10 records again. Out of the log is refused.
    let mut skipped = all.clone();
    let next = produce(&producer, next, next + 400, &mut skipped);
    let (ok, text) = offsets(&s, &["reset", "--to-latest", "--execute"]);
    assert!(ok, "{text}");
    assert_eq!(tables::offsets(&catalog, &s.table).await.get(&s.topic), Some(&skipped));
    let past = format!("{}:0={}", s.topic, skipped[&0] + 1);
    let (ok, text) = offsets(&s, &["set", &past, "--execute"]);
    assert!(!ok && text.contains("outside what the broker holds"), "{text}");
    let replay = format!("{}:0={}", s.topic, skipped[&0] - 10);
    let (ok, text) = offsets(&s, &["set", &replay, "--execute"]);
    assert!(ok, "{text}");
    let mut after = skipped.clone();
    produce(&producer, next, next + 400, &mut after);
    let writer = WriterProcess::start(&s.writer_config, "writer-2");
    wait_or_show(&s, &after, &writer).await;
    assert!(writer.stop(Duration::from_secs(60)).success());
    let mut pairs = tables::partition_offsets(&catalog, &s.table).await;
    pairs.sort_unstable();
    let mut expected = expected_pairs(&old, &all);
    let mut from = skipped.clone();
    from.insert(0, skipped[&0] - 10);
    expected.extend(expected_pairs(&from, &after));
    expected.sort_unstable();
    assert_eq!(pairs, expected, "nothing produced while stopped, then partition 0's last 10 again");

    // The snapshots say what was moved.
    let (ok, text) = offsets(&s, &["show"]);
    assert!(ok, "{text}");
    assert!(shown(&text, &s.topic).iter().all(|(p, (table, _))| table == &after[p].to_string()), "{text}");
    let loaded = catalog.load(&icefall_table::catalog::parse_ident(&s.table).expect("ident")).await.expect("load");
    let resets: Vec<&String> = loaded
        .metadata
        .snapshots()
        .filter_map(|s| s.summary().additional_properties.get(icefall_table::contract::OFFSETS_RESET))
        .collect();
    assert_eq!(resets.len(), 3, "one snapshot per executed move: {resets:?}");
}
