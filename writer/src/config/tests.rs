use super::*;

const MINIMAL: &str = r#"
[kafka]
brokers = "127.0.0.1:9092"

[[pipelines]]
name = "events"
topics = ["events"]
table = "analytics.events"
checkpoint_interval = "5s"
partition = ["day(ts)"]
schema = [
  { name = "id", type = "long", required = true },
  { name = "ts", type = "timestamptz" },
]
"#;

#[test]
fn minimal_config_gets_documented_defaults() {
    let config = Config::parse(MINIMAL).expect("parses");
    config.validate().expect("valid");
    let p = &config.pipelines[0];
    assert_eq!(p.checkpoint_interval, Duration::from_secs(5));
    assert_eq!(p.group_id(&config.kafka), "icefall.events");
    assert_eq!(p.dead_letter_table(), "analytics.events_dlq");
    assert_eq!(config.catalog.uri, "sqlite:icefall-warehouse/catalog.db");
}

fn expect_error(text: &str, needle: &str) {
    let err = Config::parse(text).and_then(|c| c.validate()).expect_err("must fail");
    assert!(err.to_string().contains(needle), "{err} should mention {needle}");
}

#[test]
fn bad_configs_fail_naming_the_key() {
    expect_error(
        &MINIMAL.replace("checkpoint_interval = \"5s\"", "checkpoint_interval = \"5ms\""),
        "checkpoint_interval",
    );
    expect_error(&MINIMAL.replace("table = \"analytics.events\"", "table = \"events\""), "pipelines[events].table");
    expect_error(&MINIMAL.replace("day(ts)", "day(nope)"), "pipelines[events].partition");
    expect_error(&MINIMAL.replace("type = \"long\"", "type = \"lng\""), "pipelines[events].schema");
    expect_error(
        &MINIMAL.replace("[kafka]", "[kafka]\nproperties = { \"enable.auto.commit\" = \"true\" }"),
        "enable.auto.commit",
    );
    expect_error(&MINIMAL.replace("name = \"events\"", "name = \"events\"\ntopcs = [\"x\"]"), "unknown field `topcs`");
    expect_error(
        &MINIMAL.replace("brokers = \"127.0.0.1:9092\"", "brokers = \"${ICEFALL_TEST_UNSET_VAR}\""),
        "ICEFALL_TEST_UNSET_VAR",
    );
}

#[test]
fn environment_variables_fill_secrets() {
    // PATH is set in every test environment; a real deployment would use e.g. ${KAFKA_PASSWORD}.
    let path = std::env::var("PATH").expect("PATH is set");
    let text = MINIMAL.replace("[kafka]", "[kafka]\nproperties = { \"sasl.password\" = \"${PATH}\" }");
    let config = Config::parse(&text).expect("parses");
    assert_eq!(config.kafka.properties.get("sasl.password"), Some(&path));
    assert_eq!(interpolate_env("a $${literal} b").ok().as_deref(), Some("a ${literal} b"));
}
