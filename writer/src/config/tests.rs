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
        &MINIMAL.replace("checkpoint_interval", "min_writers = 3\nmax_writers = 2\ncheckpoint_interval"),
        "min_writers = 3 is above max_writers = 2",
    );
    expect_error(
        &MINIMAL.replace("checkpoint_interval", "max_buffered_bytes = 1000\ncheckpoint_interval"),
        "pipelines[events].max_buffered_bytes = 1000",
    );
    expect_error(
        &MINIMAL.replace("checkpoint_interval", "writers = 2\nmax_writers = 4\ncheckpoint_interval"),
        "either writers (a fixed pool) or min_writers/max_writers",
    );
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
    assert_eq!(icefall_table::config::interpolate_env("a $${literal} b").ok().as_deref(), Some("a ${literal} b"));
}

const BINARY: &str = r#"
[kafka]
brokers = "127.0.0.1:9092"

[[pipelines]]
name = "events"
topics = ["events"]
table = "analytics.events"
FORMAT
"#;

fn binary(format: &str) -> String {
    BINARY.replace("FORMAT", format)
}

#[test]
fn binary_formats_fail_fast_naming_the_missing_piece() {
    expect_error(&binary("format = \"protobuf\""), "needs a [pipelines.protobuf] section");
    expect_error(
        &binary("format = \"protobuf\"\n[pipelines.protobuf]\nproto_files = [\"a.proto\"]"),
        "pipelines[events].protobuf.message",
    );
    expect_error(&binary("format = \"avro\""), "need [schema_registry]");
    expect_error(&binary("format = \"avro\"\nevolve = true"), "pipelines[events].evolve: only JSON pipelines");
    expect_error(
        &binary(
            "format = \"avro\"\nschema = [{ name = \"id\", type = \"long\" }]\n[pipelines.avro]\nschema_file = \"x.avsc\"",
        ),
        "takes its columns from the source schema",
    );
    expect_error(
        &binary("format = \"avro\"\n[pipelines.avro]\nschema_file = \"/nonexistent/x.avsc\""),
        "pipelines[events].avro.schema_file",
    );
    expect_error(
        &binary(
            "format = \"protobuf\"\n[pipelines.protobuf]\nmessage = \"a.B\"\nproto_files = [\"/nonexistent/a.proto\"]",
        ),
        "pipelines[events].protobuf.proto_files",
    );
}

#[test]
fn fixed_schemas_load_relative_to_the_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("event.proto"),
        "syntax = \"proto3\"; package acme; message Event { int64 id = 1; }",
    )
    .expect("proto");
    std::fs::write(
        dir.path().join("order.avsc"),
        r#"{"type": "record", "name": "Order", "fields": [{"name": "id", "type": "long"}]}"#,
    )
    .expect("avsc");
    std::fs::write(
        dir.path().join("event.schema.json"),
        r#"{"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}}}"#,
    )
    .expect("json schema");
    let text = format!(
        "{}\n{}\n{}",
        binary(
            "format = \"protobuf\"\n[pipelines.protobuf]\nproto_files = [\"event.proto\"]\nmessage = \"acme.Event\""
        ),
        "[[pipelines]]\nname = \"orders\"\ntopics = [\"orders\"]\ntable = \"analytics.orders\"\nformat = \"avro\"\n[pipelines.avro]\nschema_file = \"order.avsc\"",
        "[[pipelines]]\nname = \"json\"\ntopics = [\"j\"]\ntable = \"analytics.j\"\nschema_file = \"event.schema.json\"",
    );
    let path = dir.path().join("writer.toml");
    std::fs::write(&path, text).expect("config");
    let config = Config::load(&path).expect("valid");
    let json = config.pipelines[2].declared_schema().expect("JSON Schema columns");
    assert_eq!(json.field_by_name("at").map(|f| f.field_type.to_string()), Some("timestamptz".into()));
    assert!(json.field_by_name("id").is_some_and(|f| f.required));

    // A source-schema table without metadata columns has exactly the source's columns.
    let avro = icefall_schemas::avro::AvroSchema::parse(
        r#"{"type": "record", "name": "Order", "fields": [{"name": "id", "type": "long"}]}"#,
    )
    .expect("avro");
    let fields = icefall_schemas::decode::SourceSchema::Avro(avro).fields().expect("fields");
    let layout = config.pipelines[1].source_layout(&fields).expect("layout without metadata columns");
    let names: Vec<&str> = layout.schema.as_struct().fields().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["id"]);
}

#[test]
fn orc_is_set_on_new_tables_and_bad_formats_fail_naming_the_key() {
    let orc = MINIMAL
        .replace("checkpoint_interval", "file_format = \"orc\"\ncheckpoint_interval")
        .replace("  { name = \"ts\"", "  { name = \"tags\", type = \"list<string>\" },\n  { name = \"ts\"");
    let config = Config::parse(&orc).expect("parses");
    config.validate().expect("ORC holds long, list<string> and timestamptz");
    let layout = config.pipelines[0].layout().expect("layout");
    assert_eq!(layout.properties.get("write.format.default").map(String::as_str), Some("orc"));
    expect_error(&orc.replace("file_format = \"orc\"", "file_format = \"avro\""), "unknown variant `avro`");
    let by_property =
        orc.replace("file_format = \"orc\"", "table_properties = { \"write.format.default\" = \"avro\" }");
    expect_error(&by_property, "pipelines[events].table_properties: write.format.default = \"avro\"");
}
