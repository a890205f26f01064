//! How a pipeline's records and files are formatted: the record format, the schema sources
//! (a schema registry, Protobuf descriptors or `.proto` files, an Avro schema file) and the
//! data file format.

use std::path::PathBuf;
use std::time::Duration;

use icefall_schemas::json::EpochUnit;
use serde::Deserialize;

/// Where Confluent-framed records' schemas come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    /// Base URL, e.g. `http://schema-registry:8081` or `https://…`.
    pub url: String,
    /// Basic-auth user (e.g. a Confluent Cloud API key).
    #[serde(default)]
    pub username: Option<String>,
    /// Basic-auth password; use `${ENV_VAR}`.
    #[serde(default)]
    pub password: Option<String>,
    /// Bearer token instead of basic auth; use `${ENV_VAR}`.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// PEM bundle of extra CA certificates trusted for `https` URLs.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (with its chain) for registries that require mutual TLS; needs
    /// `client_key_file`.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of `client_cert_file` (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// OAuth2 client credentials instead of basic auth or a fixed token: tokens are obtained
    /// from `token_endpoint`, renewed before they expire and once more when refused.
    #[serde(default)]
    pub oauth: Option<RegistryOAuthConfig>,
    /// Timeout of one request.
    #[serde(default = "default_registry_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// What a record whose schema id the registry answers 404 for does: `wait` (default: the
    /// pipeline retries until the schema appears, e.g. after replication between registries,
    /// so such a record lands in the table like on any other read) or `dead_letter` (such
    /// records go to the dead-letter table as `unknown_schema`).
    #[serde(default)]
    pub missing_schema: MissingSchema,
}

/// OAuth2 client credentials for the schema registry (Confluent Cloud's `OAUTHBEARER` source).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryOAuthConfig {
    /// The identity provider's token endpoint, e.g. `https://idp.example.com/oauth2/token`.
    pub token_endpoint: String,
    /// The client id.
    pub client_id: String,
    /// The client secret; use `${ENV_VAR}`. Never logged.
    pub client_secret: String,
    /// The scope asked for (none by default).
    #[serde(default)]
    pub scope: String,
}

/// See [`SchemaRegistryConfig::missing_schema`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingSchema {
    #[default]
    Wait,
    DeadLetter,
}

fn default_registry_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Protobuf records: the message schema from a descriptor set, from `.proto` files, or (with
/// neither) from the schema registry named by each record's Confluent framing.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtobufConfig {
    /// A compiled descriptor set (`protoc --include_imports --descriptor_set_out=…`).
    #[serde(default)]
    pub descriptor_set: Option<PathBuf>,
    /// `.proto` files, compiled at start-up (no `protoc` needed).
    #[serde(default)]
    pub proto_files: Vec<PathBuf>,
    /// Folders imports are looked up in (default: the folders of `proto_files`).
    #[serde(default)]
    pub include_paths: Vec<PathBuf>,
    /// Full message name, e.g. `acme.events.Click`. With the registry: default the first
    /// message of the registered schema.
    #[serde(default)]
    pub message: Option<String>,
    /// `int64` fields (dotted name paths) holding epoch timestamps: `timestamptz` columns.
    #[serde(default)]
    pub timestamp_fields: Vec<String>,
    /// Unit of `timestamp_fields`.
    #[serde(default)]
    pub timestamp_unit: EpochUnit,
}

impl ProtobufConfig {
    /// Schemas come from the registry (neither a descriptor set nor `.proto` files is given).
    pub fn uses_registry(&self) -> bool {
        self.descriptor_set.is_none() && self.proto_files.is_empty()
    }
}

/// Avro records: a fixed schema file, or (without one) Confluent framing + schema registry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvroConfig {
    /// An Avro schema (`.avsc`) every record is written with, unframed.
    #[serde(default)]
    pub schema_file: Option<PathBuf>,
}

/// Payload format of a pipeline's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    #[default]
    Json,
    Protobuf,
    Avro,
}

/// Data file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Parquet,
    Orc,
}

impl FileFormat {
    pub fn data_file_format(self) -> iceberg::spec::DataFileFormat {
        match self {
            FileFormat::Parquet => iceberg::spec::DataFileFormat::Parquet,
            FileFormat::Orc => iceberg::spec::DataFileFormat::Orc,
        }
    }

    /// The value of the table property `write.format.default`.
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Parquet => "parquet",
            FileFormat::Orc => "orc",
        }
    }
}
