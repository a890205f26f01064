//! A Confluent Schema Registry client: schemas by id (cached: an id's schema never changes)
//! and a subject's latest version (to create a table before the first record arrives).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use icefall_table::catalog::rest_auth::OAuth2;

use crate::config::SchemaRegistryConfig;
use crate::{Error, Result};

/// A schema as the registry stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredSchema {
    /// `AVRO` (the registry's default), `PROTOBUF` or `JSON`.
    pub schema_type: String,
    /// The schema text (Avro JSON, `.proto` source).
    pub schema: String,
}

/// Why a lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The registry answered: there is no such schema (its records are dead-lettered).
    #[error("the schema registry has no {0}")]
    NotFound(String),
    /// Unreachable, 5xx, timeout: worth retrying.
    #[error("the schema registry is unavailable: {0}")]
    Unavailable(String),
    /// 401/403 or a malformed answer: fix the config or the registry.
    #[error("the schema registry refused or garbled the request: {0}")]
    Refused(String),
}

#[derive(Deserialize)]
struct SchemaAnswer {
    schema: String,
    #[serde(rename = "schemaType", default)]
    schema_type: Option<String>,
    #[serde(default)]
    id: Option<u32>,
}

pub struct RegistryClient {
    http: reqwest::Client,
    base: String,
    config: SchemaRegistryConfig,
    /// Tokens from OAuth2 client credentials (`schema_registry.oauth`).
    oauth: Option<OAuth2>,
    cache: Mutex<HashMap<u32, RegisteredSchema>>,
}

/// An error with its causes (a TLS handshake's reason is only in the chain).
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Reads a PEM file named by a `schema_registry` key.
fn read_pem(key: &str, path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::Config(format!("schema_registry.{key}: cannot read {}: {e}", path.display())))
}

impl RegistryClient {
    pub fn new(config: &SchemaRegistryConfig) -> Result<Self> {
        let mut builder = reqwest::Client::builder().timeout(config.timeout).connect_timeout(config.timeout);
        if let Some(path) = &config.ca_file {
            let pem = read_pem("ca_file", path)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::Config(format!("schema_registry.ca_file {}: not a PEM certificate bundle: {e}", path.display()))
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        match (&config.client_cert_file, &config.client_key_file) {
            (Some(cert), Some(key)) => {
                let mut pem = read_pem("client_cert_file", cert)?;
                pem.push(b'\n');
                pem.extend(read_pem("client_key_file", key)?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    Error::Config(format!(
                        "schema_registry.client_cert_file {} / client_key_file {}: not a PEM certificate and key: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => {
                return Err(Error::Config(
                    "schema_registry.client_cert_file and schema_registry.client_key_file go together: set both for \
                     mutual TLS, or neither"
                        .into(),
                ));
            }
        }
        if config.oauth.is_some() && (config.username.is_some() || config.bearer_token.is_some()) {
            return Err(Error::Config(
                "schema_registry.oauth and schema_registry.username/bearer_token are both set: keep one way to \
                 authenticate"
                    .into(),
            ));
        }
        let oauth = config.oauth.as_ref().map(|o| {
            OAuth2::new(
                o.token_endpoint.clone(),
                &o.client_id,
                &o.client_secret,
                o.scope.clone(),
                "schema_registry.oauth (token_endpoint, client_id, client_secret, scope)",
            )
        });
        let http = builder
            .build()
            .map_err(|e| Error::Config(format!("schema_registry: cannot set up the HTTP client: {e}")))?;
        Ok(RegistryClient {
            http,
            base: config.url.trim_end_matches('/').to_string(),
            config: config.clone(),
            oauth,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The schema with this id.
    pub async fn schema_by_id(&self, id: u32) -> std::result::Result<RegisteredSchema, LookupError> {
        if let Some(found) = self.cache.lock().ok().and_then(|c| c.get(&id).cloned()) {
            return Ok(found);
        }
        let answer: SchemaAnswer = self.get(&format!("/schemas/ids/{id}"), &format!("schema id {id}")).await?;
        let schema = RegisteredSchema {
            schema_type: answer.schema_type.unwrap_or_else(|| "AVRO".into()),
            schema: answer.schema,
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(id, schema.clone());
        }
        Ok(schema)
    }

    /// The latest version registered under `subject` (e.g. `<topic>-value`), with its id.
    pub async fn latest(&self, subject: &str) -> std::result::Result<(u32, RegisteredSchema), LookupError> {
        let answer: SchemaAnswer =
            self.get(&format!("/subjects/{subject}/versions/latest"), &format!("subject {subject}")).await?;
        let id = answer.id.ok_or_else(|| LookupError::Refused(format!("subject {subject}: the answer has no id")))?;
        let schema = RegisteredSchema {
            schema_type: answer.schema_type.unwrap_or_else(|| "AVRO".into()),
            schema: answer.schema,
        };
        Ok((id, schema))
    }

    /// The registry's subjects: whether it answers us at all (`validate`).
    pub async fn subjects(&self) -> std::result::Result<Vec<String>, LookupError> {
        self.get("/subjects", "the subject list").await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, what: &str) -> std::result::Result<T, LookupError> {
        let mut renewed = false;
        loop {
            let mut request = self
                .http
                .get(format!("{}{path}", self.base))
                .header("Accept", "application/vnd.schemaregistry.v1+json");
            let mut token = None;
            if let Some(oauth) = &self.oauth {
                let access = oauth.token(&self.http).await.map_err(|e| match e {
                    icefall_table::Error::Config(message) => LookupError::Refused(format!("{what}: {message}")),
                    other => LookupError::Unavailable(format!("{what}: {other}")),
                })?;
                request = request.bearer_auth(&access);
                token = Some(access);
            } else if let Some(user) = &self.config.username {
                request = request.basic_auth(user, self.config.password.as_deref());
            } else if let Some(bearer) = &self.config.bearer_token {
                request = request.bearer_auth(bearer);
            }
            let response =
                request.send().await.map_err(|e| LookupError::Unavailable(format!("{what}: {}", causes(&e))))?;
            if response.status().as_u16() == 401
                && !renewed
                && let (Some(oauth), Some(token)) = (&self.oauth, &token)
            {
                // An expired or revoked token: one more try with a new one.
                oauth.forget(token).await;
                renewed = true;
                continue;
            }
            return Self::answer(response, what).await;
        }
    }

    async fn answer<T: DeserializeOwned>(
        response: reqwest::Response,
        what: &str,
    ) -> std::result::Result<T, LookupError> {
        let status = response.status();
        let body = response.bytes().await.map_err(|e| LookupError::Unavailable(format!("{what}: {e}")))?;
        if status.as_u16() == 404 {
            return Err(LookupError::NotFound(what.to_string()));
        }
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(LookupError::Unavailable(format!("{what}: HTTP {status}")));
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(LookupError::Refused(format!(
                "{what}: HTTP {status}: {}",
                text.chars().take(200).collect::<String>()
            )));
        }
        serde_json::from_slice(&body).map_err(|e| LookupError::Refused(format!("{what}: unexpected answer: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(ca_file: Option<std::path::PathBuf>) -> SchemaRegistryConfig {
        SchemaRegistryConfig {
            url: "https://registry.internal:8081/".into(),
            username: None,
            password: None,
            bearer_token: None,
            ca_file,
            client_cert_file: None,
            client_key_file: None,
            oauth: None,
            timeout: std::time::Duration::from_secs(1),
            missing_schema: Default::default(),
        }
    }

    #[test]
    fn a_bad_ca_file_fails_start_up_naming_the_key() {
        let missing = RegistryClient::new(&settings(Some("/nonexistent/ca.pem".into()))).err().expect("refused");
        assert!(missing.to_string().contains("schema_registry.ca_file"), "{missing}");
        let dir = tempfile::tempdir().expect("tempdir");
        let garbage = dir.path().join("ca.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
            .expect("write");
        let invalid = RegistryClient::new(&settings(Some(garbage))).err().expect("refused");
        assert!(invalid.to_string().contains("schema_registry.ca_file"), "{invalid}");
        let client = RegistryClient::new(&settings(None)).expect("no CA file is fine");
        assert_eq!(client.base, "https://registry.internal:8081");
    }

    #[test]
    fn a_client_certificate_needs_its_key_and_oauth_excludes_basic_auth() {
        let mut config = settings(None);
        config.client_cert_file = Some("/etc/client.pem".into());
        let alone = RegistryClient::new(&config).err().expect("refused");
        assert!(alone.to_string().contains("client_key_file"), "{alone}");
        let mut config = settings(None);
        config.username = Some("user".into());
        config.oauth = Some(crate::config::RegistryOAuthConfig {
            token_endpoint: "https://idp/token".into(),
            client_id: "id".into(),
            client_secret: "secret".into(),
            scope: String::new(),
        });
        let both = RegistryClient::new(&config).err().expect("refused");
        assert!(both.to_string().contains("schema_registry.oauth"), "{both}");
    }

    #[tokio::test]
    async fn an_unreachable_registry_is_retryable_not_a_dead_letter() {
        let mut config = settings(None);
        config.url = "http://127.0.0.1:1".into();
        let client = RegistryClient::new(&config).expect("client");
        let err = client.schema_by_id(1).await.expect_err("unreachable");
        assert!(matches!(err, LookupError::Unavailable(_)), "{err}");
    }
}
