//! The writer's command line: bad config fails fast naming the key; `validate` checks the
//! catalog, storage write access, the schema registry, the brokers and the topics.

use std::process::Command;

use icefall_integration_tests::broker::Broker;
use icefall_integration_tests::unique;
use icefall_integration_tests::writer::{PipelineSpec, events_pipeline, writer_binary};

fn run(args: &[&str], config: &std::path::Path) -> (bool, String, String) {
    let output = Command::new(writer_binary()).args(args).arg("--config").arg(config).output().expect("run writer");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into(),
        String::from_utf8_lossy(&output.stderr).into(),
    )
}

/// A pipeline config whose bootstrap address nothing listens on.
fn config_without_broker(dir: &std::path::Path) -> std::path::PathBuf {
    let spec = PipelineSpec {
        bootstrap: "127.0.0.1:1",
        topic: "t",
        table: "ns.events",
        checkpoint: "1s",
        writers: 1,
        catalog_uri: None,
    };
    events_pipeline(dir, &spec)
}

#[test]
fn validate_checks_catalog_brokers_and_topics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start();
    let topic = unique("cli");
    broker.create_topic(&topic, 2);
    let bootstrap = broker.bootstrap();
    let spec = |topic| PipelineSpec {
        bootstrap: &bootstrap,
        topic,
        table: "ns.events",
        checkpoint: "1s",
        writers: 1,
        catalog_uri: None,
    };
    let config = events_pipeline(dir.path(), &spec(topic.as_str()));
    let (ok, stdout, stderr) = run(&["validate"], &config);
    assert!(ok, "{stderr}");
    assert!(stdout.contains(&format!("topic {topic}: 2 partition(s)")), "{stdout}");
    assert!(stdout.contains("table ns.events: will be created on start"), "{stdout}");
    assert!(stdout.contains("/warehouse: writable"), "the warehouse is probed: {stdout}");
    let probes = std::fs::read_dir(dir.path().join("warehouse")).expect("warehouse").count();
    assert_eq!(probes, 0, "the probe object is deleted");

    // The schema registry is asked for its subjects, with the credentials the config gives.
    let registry = icefall_integration_tests::registry::TestRegistry::start_with_basic_auth("sr-user", "sr-pass");
    let text = std::fs::read_to_string(&config).expect("config");
    let with_registry = |password: &str| {
        let path = dir.path().join(format!("with-registry-{password}.toml"));
        let section = format!(
            "\n[schema_registry]\nurl = \"{}\"\nusername = \"sr-user\"\npassword = \"{password}\"\n",
            registry.url
        );
        std::fs::write(&path, format!("{text}{section}")).expect("config");
        path
    };
    let (ok, stdout, stderr) = run(&["validate"], &with_registry("sr-pass"));
    assert!(ok && stdout.contains("schema registry: ok"), "{stdout}{stderr}");
    let (ok, _, stderr) = run(&["validate"], &with_registry("wrong"));
    assert!(!ok && stderr.contains("schema_registry.url") && stderr.contains("401"), "{stderr}");

    // A registry behind mutual TLS and OAuth2: the client certificate and the tokens get in;
    // without the certificate, or with a wrong client secret, validate names what failed.
    let certs = icefall_integration_tests::tls::Certificates::make(&dir.path().join("certs"));
    let tls = icefall_integration_tests::tls::TlsRegistry::start(
        &certs,
        "icefall-writer:tls-registry-secret",
        &dir.path().join("tls-registry.log"),
    );
    let with_tls = |name: &str, client_cert: bool, secret: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        let mut section = format!(
            "\n[schema_registry]\nurl = \"{url}\"\nca_file = \"{ca}\"\n",
            url = tls.url(),
            ca = certs.ca.display()
        );
        if client_cert {
            section.push_str(&format!(
                "client_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
                certs.client_cert.display(),
                certs.client_key.display()
            ));
        }
        section.push_str(&format!(
            "oauth = {{ token_endpoint = \"{}/oauth/token\", client_id = \"icefall-writer\", client_secret = \"{secret}\" }}\n",
            tls.url()
        ));
        std::fs::write(&path, format!("{text}{section}")).expect("config");
        path
    };
    let (ok, stdout, stderr) = run(&["validate"], &with_tls("tls-ok", true, "tls-registry-secret"));
    assert!(ok && stdout.contains("schema registry: ok (1 subject(s))"), "{stdout}{stderr}");
    let (ok, _, stderr) = run(&["validate"], &with_tls("tls-no-cert", false, "tls-registry-secret"));
    assert!(!ok && stderr.contains("schema_registry.url"), "{stderr}");
    let (ok, _, stderr) = run(&["validate"], &with_tls("tls-wrong-secret", true, "wrong"));
    assert!(!ok && stderr.contains("refused our OAuth2 client credentials"), "{stderr}");
    assert!(stderr.contains("schema_registry.oauth") && !stderr.contains("tls-registry-secret"), "{stderr}");

    let missing = events_pipeline(dir.path(), &spec("no_such_topic"));
    let (ok, _, stderr) = run(&["validate"], &missing);
    assert!(!ok);
    assert!(stderr.contains("topic \"no_such_topic\" does not exist"), "{stderr}");
}

#[test]
fn a_bad_config_fails_at_start_naming_the_key_and_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_without_broker(dir.path());
    let text = std::fs::read_to_string(&config).expect("read").replace("bucket(4, id)", "bucket(4, no_such_column)");
    std::fs::write(&config, text).expect("write");
    let (ok, _, stderr) = run(&["run"], &config);
    assert!(!ok, "start-up must fail");
    assert!(stderr.contains("pipelines[events].partition"), "{stderr}");
    assert!(stderr.contains("no_such_column"), "{stderr}");
}

/// A SIGTERM that arrives while the writer is still starting (connecting to the catalog,
/// creating its table) is a clean shutdown, not a kill: the process exits 0.
#[test]
fn a_sigterm_during_start_up_is_a_clean_shutdown() {
    let s = icefall_integration_tests::scenario::Scenario::new("early-stop", "1s");
    // From the moment main runs (a signal before that ends any process), at several points of start-up.
    for delay_ms in [100, 300, 700] {
        let writer = icefall_integration_tests::writer::WriterProcess::start(&s.writer_config, "writer");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let status = writer.stop(std::time::Duration::from_secs(60));
        assert!(status.success(), "stopped {delay_ms} ms after start: {status}");
    }
}

/// Kafka over SASL/OAUTHBEARER with tokens from an OIDC token endpoint (Confluent Cloud,
/// Redpanda, Strimzi with Keycloak): librdkafka, built with libcurl, asks the endpoint for a
/// token with the client credentials before it connects. The test's broker speaks no SASL, so
/// the connection itself is not exercised: that the token is requested, with the client
/// credentials the server checks, is. (A librdkafka built without libcurl refuses the method.)
#[test]
fn kafka_oauthbearer_oidc_and_kerberos_are_built_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = icefall_integration_tests::rest::RestCatalogServer::start_with_oauth(
        dir.path(),
        "icefall-kafka:kafka-oidc-secret",
        std::time::Duration::from_secs(300),
    );
    let config = config_without_broker(dir.path());
    let text = std::fs::read_to_string(&config).expect("read");
    let oidc = format!(
        "\"security.protocol\" = \"SASL_PLAINTEXT\", \"sasl.mechanism\" = \"OAUTHBEARER\", \
         \"sasl.oauthbearer.method\" = \"oidc\", \"sasl.oauthbearer.client.id\" = \"icefall-kafka\", \
         \"sasl.oauthbearer.client.secret\" = \"kafka-oidc-secret\", \
         \"sasl.oauthbearer.token.endpoint.url\" = \"{}/v1/oauth/tokens\", ",
        server.uri()
    );
    std::fs::write(&config, text.replacen("properties = { ", &format!("properties = {{ {oidc}"), 1)).expect("write");
    let (ok, stdout, stderr) = run(&["validate"], &config);
    assert!(!ok, "nothing listens on the bootstrap address: {stdout}");
    let tokens = server.stats()["tokens"].as_u64().unwrap_or(0);
    assert!(tokens >= 1, "librdkafka asked the OIDC endpoint for a token: {stderr}");
    assert!(stderr.contains("reach brokers"), "it got as far as the brokers: {stderr}");

    // Kerberos: librdkafka takes the GSSAPI mechanism (without libsasl2 it refuses it: "No
    // provider for SASL mechanism GSSAPI") and gets as far as the brokers.
    let gssapi = "\"security.protocol\" = \"SASL_PLAINTEXT\", \"sasl.mechanism\" = \"GSSAPI\", \
                  \"sasl.kerberos.service.name\" = \"kafka\", \"sasl.kerberos.kinit.cmd\" = \"true\", ";
    std::fs::write(&config, text.replacen("properties = { ", &format!("properties = {{ {gssapi}"), 1)).expect("write");
    let (ok, _, stderr) = run(&["validate"], &config);
    assert!(!ok && stderr.contains("reach brokers") && !stderr.contains("No provider"), "{stderr}");
}

/// Amazon MSK IAM tokens are SigV4-presigned `kafka-cluster:Connect` requests: botocore's own
/// presigner (independent of ours) computes the same signature from the same key; with another
/// secret it does not. (No MSK cluster is part of the suite.)
#[test]
fn msk_iam_tokens_carry_a_signature_botocore_computes_too() {
    use icefall_writer::MskIamTokens;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let tokens = MskIamTokens::with_static_credentials("eu-west-1", "AKIDMSKEXAMPLE", "msk-test-secret");
    let (token, _) = runtime.block_on(tokens.token()).expect("token");
    let verify = |secret: &str| {
        Command::new(icefall_integration_tests::tools_dir().join("venv/bin/python"))
            .arg(icefall_integration_tests::repo_root().join("integration-tests/python/verify_msk_token.py"))
            .args(["--token", &token, "--key", "AKIDMSKEXAMPLE", "--secret", secret, "--region", "eu-west-1"])
            .output()
            .expect("run verify_msk_token.py")
    };
    let out = verify("msk-test-secret");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = verify("another-secret");
    assert!(!out.status.success(), "a token signed with another secret must not verify");
    assert!(String::from_utf8_lossy(&out.stderr).contains("signature mismatch"));
}

/// Both binaries take `--config` anywhere on the line or `ICEFALL_CONFIG`; without either they
/// say so and create nothing (the optimizer once made a SQLite catalog in the working directory).
#[test]
fn without_a_config_both_binaries_say_so_and_create_nothing() {
    use icefall_integration_tests::optimizer::{self, optimizer_binary};
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).expect("cwd");
    for (binary, args) in [(writer_binary(), ["validate"]), (optimizer_binary(), ["status"])] {
        let output = Command::new(&binary)
            .args(args)
            .current_dir(&cwd)
            .env_remove("ICEFALL_CONFIG")
            .env_remove("ICEFALL_OPTIMIZER_CONFIG")
            .env("ICEFALL_LOG_JSON", "1")
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains("no config file"), "{}: {stderr}", binary.display());
        assert!(stderr.contains("--config") && stderr.contains("ICEFALL_CONFIG"), "{stderr}");
    }
    assert_eq!(std::fs::read_dir(&cwd).expect("cwd").count(), 0, "nothing was created in the working directory");

    // ICEFALL_CONFIG is read by both (here they get as far as what the config lacks).
    let config = optimizer::config(dir.path(), None);
    let output = Command::new(optimizer_binary()).arg("status").env("ICEFALL_CONFIG", &config).output().expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no table to maintain"), "{stderr}");
    let writer_config = config_without_broker(dir.path());
    let output = Command::new(writer_binary())
        .args(["offsets", "show"])
        .env("ICEFALL_CONFIG", &writer_config)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ns.events of pipeline events does not exist yet"), "{stderr}");
}
