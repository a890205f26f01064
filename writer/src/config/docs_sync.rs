//! `docs/configuration.md` lists exactly the keys the config structs accept. The structs' own
//! key lists come from serde (the "expected one of" of an unknown key), so nothing here repeats
//! them by hand.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;

use super::*;

/// The keys `T` accepts, as serde names them when it refuses an unknown one.
fn keys<T: DeserializeOwned>() -> BTreeSet<String> {
    let error = toml::from_str::<T>("__not_a_key__ = 1").err().map(|e| e.to_string()).unwrap_or_default();
    let listed = error.split("expected one of").nth(1).or_else(|| error.split("expected").nth(1)).unwrap_or_default();
    let keys: BTreeSet<String> = listed.split('`').skip(1).step_by(2).map(str::to_string).collect();
    assert!(!keys.is_empty(), "serde named no keys: {error}");
    keys
}

/// The docs section under `heading`, up to the next heading.
fn section(heading: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
    let docs = std::fs::read_to_string(path).expect("docs/configuration.md");
    let start = docs.find(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("no section {heading:?}"));
    let rest = &docs[start + heading.len() + 2..];
    let end = rest.find("\n## ").into_iter().chain(rest.find("\n### ")).min().unwrap_or(rest.len());
    rest[..end].to_string()
}

/// The keys of a section's table (the backticked names in each row's first cell).
fn documented(section: &str) -> BTreeSet<String> {
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('|').nth(1))
        .flat_map(|cell| cell.split('`').skip(1).step_by(2).map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// The row of `key` in a section (for keys whose value is an inline table).
fn row<'a>(section: &'a str, key: &str) -> &'a str {
    section.lines().find(|l| l.starts_with(&format!("| `{key}`"))).unwrap_or_default()
}

#[test]
fn every_config_key_is_documented_and_every_documented_key_exists() {
    let check = |heading: &str, accepted: BTreeSet<String>, tables: &[&str]| {
        let mut listed = documented(&section(heading));
        listed.extend(tables.iter().map(|t| t.to_string()));
        assert_eq!(listed, accepted, "docs/configuration.md {heading} and the config struct differ");
    };
    // Keys that are sections of their own are named by their heading.
    check("## Top level", keys::<Config>(), &["catalog", "kafka", "pipelines", "metrics"]);
    check("## `[catalog]`", keys::<CatalogConfig>(), &[]);
    check("## `[metrics]`", keys::<MetricsConfig>(), &[]);
    check("## `[kafka]`", keys::<KafkaConfig>(), &[]);
    check("## `[[pipelines]]`", keys::<PipelineConfig>(), &[]);
    check("### `[pipelines.metadata_columns]`", keys::<MetadataColumnsConfig>(), &[]);
    check("### `[pipelines.protobuf]`", keys::<ProtobufConfig>(), &[]);
    check("### `[pipelines.avro]`", keys::<AvroConfig>(), &[]);
    check("## `[schema_registry]`", keys::<SchemaRegistryConfig>(), &[]);
    // Inline tables: every key named in their row.
    let inline = |heading: &str, key: &str, accepted: BTreeSet<String>| {
        let text = section(heading);
        let row = row(&text, key);
        for name in accepted {
            assert!(row.contains(&name), "docs/configuration.md {heading} `{key}` does not name `{name}`: {row}");
        }
    };
    inline("## `[[pipelines]]`", "backpressure", keys::<BackpressureConfig>());
    inline("## `[kafka]`", "msk_iam", keys::<MskIamConfig>());
    inline("## `[schema_registry]`", "oauth", keys::<RegistryOAuthConfig>());
}
