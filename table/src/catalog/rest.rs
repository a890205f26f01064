//! The Iceberg REST catalog: the same operations as the SQL catalog, over HTTP.
//!
//! Commits are requests with requirements: the server applies our updates (the snapshot we
//! built, its refs, removed snapshots, schema and properties) only if the table is still the
//! one we built on. 409 is a conflict (rebase and retry); a 5xx or a lost connection leaves the
//! outcome unknown, which the commit loop resolves by reloading and looking for our commit id.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use iceberg::spec::TableMetadata;
use iceberg::{NamespaceIdent, TableCreation, TableIdent};
use serde::Deserialize;
use serde_json::json;

use super::rest_auth::{Auth, extra_headers, sigv4_scope};
use super::rest_sigv4::SigV4;
use super::rest_updates::{requirements, updates_between};
use super::{LoadedTable, display_ident};
use crate::storage::{Grants, normalize_path};
use crate::{CatalogConfig, Error, Result};

/// What a commit request did.
pub enum RestCommit {
    /// The server applied the commit; the table as it is now.
    Committed(LoadedTable),
    /// The requirements failed: someone else committed first.
    Conflict,
}

/// A client of an Iceberg REST catalog server.
pub struct RestCatalog {
    http: reqwest::Client,
    /// `<uri>/v1` plus the prefix the server's config names.
    base: String,
    auth: Auth,
    /// `header.<name>` properties, sent with every request.
    headers: Vec<(String, String)>,
    /// Signs every request (`rest.sigv4-enabled`).
    sigv4: Option<SigV4>,
    /// Storage properties as the server's config sets them around the user's own.
    storage: std::collections::BTreeMap<String, String>,
    /// Where the credentials the server vends with each table go (the FileIO reads them).
    grants: Grants,
}

#[derive(Deserialize)]
struct ConfigResponse {
    #[serde(default)]
    defaults: HashMap<String, String>,
    #[serde(default)]
    overrides: HashMap<String, String>,
}

#[derive(Deserialize)]
struct LoadTableResponse {
    #[serde(rename = "metadata-location")]
    metadata_location: Option<String>,
    metadata: TableMetadata,
    /// Table-specific settings, vended credentials among them (`s3.access-key-id`, …).
    #[serde(default)]
    config: HashMap<String, String>,
    /// Credentials per location prefix (REST spec 1.8+), preferred over `config`.
    #[serde(default, rename = "storage-credentials")]
    storage_credentials: Vec<StorageCredential>,
}

#[derive(Deserialize)]
struct StorageCredential {
    prefix: String,
    config: HashMap<String, String>,
}

/// The header that asks the server to vend storage credentials with each table.
const ACCESS_DELEGATION: &str = "X-Iceberg-Access-Delegation";

#[derive(Deserialize)]
struct ListTablesResponse {
    #[serde(default)]
    identifiers: Vec<IdentifierJson>,
    #[serde(rename = "next-page-token")]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct IdentifierJson {
    namespace: Vec<String>,
    name: String,
}

/// How a request ended: a status and body, or no answer at all.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    fn message(&self) -> String {
        // The spec's error model: {"error": {"message", "type", "code"}}.
        let parsed: Option<serde_json::Value> = serde_json::from_slice(&self.body).ok();
        parsed
            .as_ref()
            .and_then(|v| v.pointer("/error/message").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).chars().take(300).collect())
    }
}

/// The storage keys of a server's config (`s3.*`, `gcs.*`, `adls.*`, `client.*`), layered:
/// defaults, then the user's own, then overrides.
fn layered_storage(
    defaults: &HashMap<String, String>,
    user: &std::collections::BTreeMap<String, String>,
    overrides: &HashMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    let mut layered: std::collections::BTreeMap<String, String> =
        defaults.iter().filter(|(k, _)| is_storage_key(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    layered.extend(user.iter().map(|(k, v)| (k.clone(), v.clone())));
    layered.extend(overrides.iter().filter(|(k, _)| is_storage_key(k)).map(|(k, v)| (k.clone(), v.clone())));
    layered
}

fn is_storage_key(key: &str) -> bool {
    ["s3.", "gcs.", "adls.", "client."].iter().any(|p| key.starts_with(p))
}

/// Path segment encoding (RFC 3986 unreserved characters stay); namespace levels join with 0x1F.
pub(super) fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn namespace_path(namespace: &NamespaceIdent) -> String {
    encode_segment(&namespace.as_ref().join("\u{1f}"))
}

fn rest_error(context: impl Into<String>, status: Option<u16>, message: impl Into<String>) -> Error {
    Error::Rest { context: context.into(), status, message: message.into() }
}

impl RestCatalog {
    /// Reads the server's config (`GET /v1/config`), which may name a path prefix.
    pub async fn connect(config: &CatalogConfig, grants: Grants) -> Result<RestCatalog> {
        let (uri, warehouse) = (config.uri.as_str(), config.warehouse.as_str());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Error::Config(format!("catalog.uri: cannot set up an HTTP client: {e}")))?;
        let root = format!("{}/v1", uri.trim_end_matches('/'));
        let auth = Auth::from_properties(&config.rest, config.token.as_deref(), &root);
        let mut headers = extra_headers(&config.rest);
        // Servers that vend credentials do so when asked; `header.X-Iceberg-Access-Delegation`
        // replaces the request (e.g. with `remote-signing`, or empty to ask for nothing).
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case(ACCESS_DELEGATION)) {
            headers.push((ACCESS_DELEGATION.to_string(), "vended-credentials".to_string()));
        }
        headers.retain(|(_, value)| !value.is_empty());
        let sigv4 = sigv4_scope(&config.rest)?.map(|(region, service)| SigV4::new(&region, &service, http.clone()));
        let storage = config.storage.clone();
        let mut catalog = RestCatalog { http, base: root.clone(), auth, headers, sigv4, storage, grants };
        let query =
            if warehouse.is_empty() { String::new() } else { format!("?warehouse={}", encode_segment(warehouse)) };
        let answer =
            catalog.send(reqwest::Method::GET, &format!("/config{query}"), None, "read the catalog config").await?;
        if answer.status != 200 {
            return Err(rest_error("read the catalog config", Some(answer.status), answer.message()));
        }
        let server: ConfigResponse = serde_json::from_slice(&answer.body)
            .map_err(|e| rest_error("read the catalog config", Some(200), format!("not a config response: {e}")))?;
        let prefix = server.overrides.get("prefix").or(server.defaults.get("prefix"));
        if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
            catalog.base = format!("{root}/{}", prefix.trim_matches('/'));
        }
        catalog.storage = layered_storage(&server.defaults, &config.storage, &server.overrides);
        Ok(catalog)
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Vec<u8>>, context: &str) -> Result<Answer> {
        let body = body.map(bytes::Bytes::from);
        let mut renewed = false;
        loop {
            let authorization = self.auth.header(&self.http).await?;
            let mut request = self.http.request(method.clone(), format!("{}{path}", self.base));
            if let Some(value) = &authorization {
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            for (name, value) in &self.headers {
                request = request.header(name, value);
            }
            if let Some(body) = &body {
                request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone());
            }
            let mut request = request.build().map_err(|e| rest_error(context, None, e.to_string()))?;
            if let Some(sigv4) = &self.sigv4 {
                sigv4.sign(&mut request).await?;
            }
            let response = self.http.execute(request).await.map_err(|e| rest_error(context, None, e.to_string()))?;
            let status = response.status().as_u16();
            let body = response.bytes().await.map_err(|e| rest_error(context, Some(status), e.to_string()))?.to_vec();
            // An expired or revoked token: one more try with a new one.
            if status == 401 && !renewed && self.auth.refused(authorization.as_deref()).await {
                renewed = true;
                continue;
            }
            if status == 401 || status == 403 {
                let answer = Answer { status, body };
                let setting = match &self.sigv4 {
                    Some(_) => {
                        "the AWS credentials requests are signed with (AWS_ACCESS_KEY_ID and \
                        AWS_SECRET_ACCESS_KEY, AWS_PROFILE, the instance role) and catalog.rest \
                        \"rest.signing-region\" and \"rest.signing-name\""
                    }
                    None => self.auth.setting(),
                };
                return Err(Error::Config(format!(
                    "catalog: the REST catalog refused us ({status}: {}) to {context}; check {setting}",
                    answer.message(),
                )));
            }
            return Ok(Answer { status, body });
        }
    }

    /// Storage properties in force: the server's defaults, the user's `catalog.storage` over
    /// them, the server's overrides over both (as `/v1/config` asks).
    pub fn storage(&self) -> &std::collections::BTreeMap<String, String> {
        &self.storage
    }

    fn table_path(ident: &TableIdent) -> String {
        format!("/namespaces/{}/tables/{}", namespace_path(ident.namespace()), encode_segment(ident.name()))
    }

    /// Creates the namespace if it is not there.
    pub async fn ensure_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        let context = format!("create namespace {}", namespace.join("."));
        let body = serde_json::to_vec(&json!({ "namespace": namespace.as_ref(), "properties": {} }))
            .map_err(|e| rest_error(&context, None, e.to_string()))?;
        let answer = self.send(reqwest::Method::POST, "/namespaces", Some(body), &context).await?;
        match answer.status {
            200 | 204 | 409 => Ok(()),
            status => Err(rest_error(context, Some(status), answer.message())),
        }
    }

    /// The table, or `None` if the catalog has no such table.
    pub async fn load(&self, ident: &TableIdent) -> Result<Option<LoadedTable>> {
        let context = format!("load {}", display_ident(ident));
        let answer = self.send(reqwest::Method::GET, &Self::table_path(ident), None, &context).await?;
        match answer.status {
            200 => self.loaded(ident, &answer, &context).map(Some),
            404 => Ok(None),
            status => Err(rest_error(context, Some(status), answer.message())),
        }
    }

    fn loaded(&self, ident: &TableIdent, answer: &Answer, context: &str) -> Result<LoadedTable> {
        let response: LoadTableResponse = serde_json::from_slice(&answer.body)
            .map_err(|e| rest_error(context, Some(answer.status), format!("not a table response: {e}")))?;
        self.grant_vended(response.metadata.location(), &response.config, &response.storage_credentials);
        Ok(LoadedTable {
            ident: ident.clone(),
            metadata_location: response.metadata_location.unwrap_or_default(),
            metadata: Arc::new(response.metadata),
        })
    }

    /// Hands the storage credentials a table response carries to the FileIO, for the paths
    /// under their prefixes (a response without any leaves earlier grants as they were).
    fn grant_vended(&self, location: &str, config: &HashMap<String, String>, credentials: &[StorageCredential]) {
        let storage_keys = |config: &HashMap<String, String>| -> crate::storage::Properties {
            config.iter().filter(|(k, _)| is_storage_key(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        if credentials.is_empty() {
            let granted = storage_keys(config);
            if !granted.is_empty() {
                self.grants.grant(&normalize_path(location), granted);
            }
        }
        for credential in credentials {
            self.grants.grant(&normalize_path(&credential.prefix), storage_keys(&credential.config));
        }
    }

    /// Tables of a namespace (all pages).
    pub async fn list_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        let context = format!("list tables of {}", namespace.join("."));
        let mut tables = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let query = page.as_deref().map(|t| format!("?pageToken={}", encode_segment(t))).unwrap_or_default();
            let path = format!("/namespaces/{}/tables{query}", namespace_path(namespace));
            let answer = self.send(reqwest::Method::GET, &path, None, &context).await?;
            match answer.status {
                200 => {}
                404 => return Ok(tables),
                status => return Err(rest_error(context, Some(status), answer.message())),
            }
            let list: ListTablesResponse = serde_json::from_slice(&answer.body)
                .map_err(|e| rest_error(&context, Some(200), format!("not a table list: {e}")))?;
            for id in list.identifiers {
                let ns = NamespaceIdent::from_vec(id.namespace).map_err(Error::iceberg("namespace"))?;
                tables.push(TableIdent::new(ns, id.name));
            }
            match list.next_page_token {
                Some(token) if !token.is_empty() => page = Some(token),
                _ => break,
            }
        }
        tables.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(tables)
    }

    /// Creates a table; the server assigns ids and, without a location, where it lives.
    pub async fn create(&self, ident: &TableIdent, creation: TableCreation) -> Result<LoadedTable> {
        self.ensure_namespace(ident.namespace()).await?;
        let context = format!("create {}", display_ident(ident));
        let request = json!({
            "name": ident.name(),
            "location": creation.location,
            "schema": creation.schema,
            "partition-spec": creation.partition_spec,
            "write-order": creation.sort_order,
            "properties": creation.properties,
            "stage-create": false,
        });
        let body = serde_json::to_vec(&request).map_err(|e| rest_error(&context, None, e.to_string()))?;
        let path = format!("/namespaces/{}/tables", namespace_path(ident.namespace()));
        let answer = self.send(reqwest::Method::POST, &path, Some(body), &context).await?;
        match answer.status {
            200 => self.loaded(ident, &answer, &context),
            409 => Err(Error::AlreadyExists(format!("table {}", display_ident(ident)))),
            status => Err(rest_error(context, Some(status), answer.message())),
        }
    }

    /// Asks the server to turn `base` into `new`. `Err`: the outcome is unknown.
    pub async fn commit(&self, base: &LoadedTable, new: &TableMetadata) -> Result<RestCommit> {
        let context = format!("commit to {}", display_ident(&base.ident));
        let request = json!({
            "identifier": { "namespace": base.ident.namespace().as_ref(), "name": base.ident.name() },
            "requirements": requirements(&base.metadata, new),
            "updates": updates_between(&base.metadata, new),
        });
        let body = serde_json::to_vec(&request).map_err(|e| rest_error(&context, None, e.to_string()))?;
        let answer = self.send(reqwest::Method::POST, &Self::table_path(&base.ident), Some(body), &context).await?;
        match answer.status {
            200 => self.loaded(&base.ident, &answer, &context).map(RestCommit::Committed),
            409 => Ok(RestCommit::Conflict),
            404 => Err(Error::TableNotFound(display_ident(&base.ident))),
            400 | 422 => Err(Error::Metadata {
                table: display_ident(&base.ident),
                message: format!("the REST catalog refused the commit: {}", answer.message()),
            }),
            status => Err(rest_error(context, Some(status), answer.message())),
        }
    }

    /// Removes a table from the catalog (its files stay).
    pub async fn drop_table(&self, ident: &TableIdent) -> Result<()> {
        let context = format!("drop {}", display_ident(ident));
        let answer = self.send(reqwest::Method::DELETE, &Self::table_path(ident), None, &context).await?;
        match answer.status {
            200 | 204 | 404 => Ok(()),
            status => Err(rest_error(context, Some(status), answer.message())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_storage_defaults_and_overrides_layer_around_the_users() {
        fn map<C: FromIterator<(String, String)>>(pairs: &[(&str, &str)]) -> C {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        }
        let defaults: HashMap<String, String> =
            map(&[("s3.region", "eu-west-1"), ("s3.endpoint", "d"), ("prefix", "p")]);
        let overrides: HashMap<String, String> = map(&[("s3.endpoint", "o")]);
        let user: std::collections::BTreeMap<String, String> = map(&[("s3.region", "us-east-1"), ("s3.endpoint", "u")]);
        let layered = layered_storage(&defaults, &user, &overrides);
        assert_eq!(layered.get("s3.region").map(String::as_str), Some("us-east-1"), "the user's over defaults");
        assert_eq!(layered.get("s3.endpoint").map(String::as_str), Some("o"), "overrides over the user's");
        assert!(!layered.contains_key("prefix"), "only storage keys");
    }

    #[test]
    fn segments_are_percent_encoded_and_levels_joined_by_unit_separator() {
        assert_eq!(encode_segment("events"), "events");
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
        let ns = NamespaceIdent::from_vec(vec!["a".into(), "b".into()]).expect("namespace");
        assert_eq!(namespace_path(&ns), "a%1Fb");
    }
}
