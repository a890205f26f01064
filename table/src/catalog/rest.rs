//! The Iceberg REST catalog: the same operations as the SQL catalog, over HTTP.
//!
//! Commits are requests with requirements: the server applies our updates (the snapshot we
//! built, its refs, removed snapshots, schema and properties) only if the table is still the
//! one we built on. 409 is a conflict (rebase and retry); a 5xx or a lost connection leaves the
//! outcome unknown, which the commit loop resolves by reloading and looking for our commit id.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use iceberg::spec::{SnapshotReference, TableMetadata};
use iceberg::{NamespaceIdent, TableCreation, TableIdent, TableRequirement, TableUpdate};
use serde::Deserialize;
use serde_json::json;

use super::{LoadedTable, display_ident};
use crate::{Error, Result};

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
    token: Option<String>,
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
}

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

/// Path segment encoding (RFC 3986 unreserved characters stay); namespace levels join with 0x1F.
fn encode_segment(text: &str) -> String {
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
    pub async fn connect(uri: &str, warehouse: &str, token: Option<String>) -> Result<RestCatalog> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Error::Config(format!("catalog.uri: cannot set up an HTTP client: {e}")))?;
        let root = format!("{}/v1", uri.trim_end_matches('/'));
        let mut catalog = RestCatalog { http, base: root.clone(), token };
        let query =
            if warehouse.is_empty() { String::new() } else { format!("?warehouse={}", encode_segment(warehouse)) };
        let answer =
            catalog.send(reqwest::Method::GET, &format!("/config{query}"), None, "read the catalog config").await?;
        if answer.status != 200 {
            return Err(rest_error("read the catalog config", Some(answer.status), answer.message()));
        }
        let config: ConfigResponse = serde_json::from_slice(&answer.body)
            .map_err(|e| rest_error("read the catalog config", Some(200), format!("not a config response: {e}")))?;
        let prefix = config.overrides.get("prefix").or(config.defaults.get("prefix"));
        if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
            catalog.base = format!("{root}/{}", prefix.trim_matches('/'));
        }
        Ok(catalog)
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Vec<u8>>, context: &str) -> Result<Answer> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        let response = request.send().await.map_err(|e| rest_error(context, None, e.to_string()))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| rest_error(context, Some(status), e.to_string()))?.to_vec();
        if status == 401 || status == 403 {
            let answer = Answer { status, body };
            return Err(Error::Config(format!(
                "catalog: the REST catalog refused us ({status}: {}); check catalog.token",
                answer.message()
            )));
        }
        Ok(Answer { status, body })
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
        Ok(LoadedTable {
            ident: ident.clone(),
            metadata_location: response.metadata_location.unwrap_or_default(),
            metadata: Arc::new(response.metadata),
        })
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

/// The table must still be the one we built on: same table, same main branch, same schema;
/// adding a schema also needs the same last assigned field id (as Java's schema commits).
fn requirements(base: &TableMetadata, new: &TableMetadata) -> Vec<TableRequirement> {
    let mut requirements = vec![
        TableRequirement::UuidMatch { uuid: base.uuid() },
        TableRequirement::RefSnapshotIdMatch {
            r#ref: iceberg::spec::MAIN_BRANCH.to_string(),
            snapshot_id: base.current_snapshot_id(),
        },
        TableRequirement::CurrentSchemaIdMatch { current_schema_id: base.current_schema_id() },
    ];
    if new.schemas_iter().any(|s| base.schema_by_id(s.schema_id()).is_none()) {
        requirements.push(TableRequirement::LastAssignedFieldIdMatch { last_assigned_field_id: base.last_column_id() });
    }
    requirements
}

/// A table's branches and tags (iceberg-rust keeps them private; its JSON form has them).
fn refs(metadata: &TableMetadata) -> HashMap<String, SnapshotReference> {
    serde_json::to_value(metadata)
        .ok()
        .and_then(|mut v| v.get_mut("refs").map(serde_json::Value::take))
        .and_then(|refs| serde_json::from_value(refs).ok())
        .unwrap_or_default()
}

/// The updates that turn `base` into `new`, for the changes our commit path makes: snapshots
/// added and removed, refs set and removed, a new current schema, properties.
pub fn updates_between(base: &TableMetadata, new: &TableMetadata) -> Vec<TableUpdate> {
    let mut updates = Vec::new();
    for schema in new.schemas_iter() {
        if base.schema_by_id(schema.schema_id()).is_none() {
            updates.push(TableUpdate::AddSchema { schema: schema.as_ref().clone() });
        }
    }
    if new.current_schema_id() != base.current_schema_id() {
        // -1: the schema this request adds, whatever id the server gives it.
        let added = base.schema_by_id(new.current_schema_id()).is_none();
        updates.push(TableUpdate::SetCurrentSchema { schema_id: if added { -1 } else { new.current_schema_id() } });
    }
    for snapshot in new.snapshots() {
        if base.snapshot_by_id(snapshot.snapshot_id()).is_none() {
            updates.push(TableUpdate::AddSnapshot { snapshot: snapshot.as_ref().clone() });
        }
    }
    let removed: Vec<i64> =
        base.snapshots().map(|s| s.snapshot_id()).filter(|id| new.snapshot_by_id(*id).is_none()).collect();
    let (base_refs, new_refs) = (refs(base), refs(new));
    for (name, reference) in &new_refs {
        if base_refs.get(name) != Some(reference) {
            updates.push(TableUpdate::SetSnapshotRef { ref_name: name.clone(), reference: reference.clone() });
        }
    }
    for name in base_refs.keys() {
        if !new_refs.contains_key(name) {
            updates.push(TableUpdate::RemoveSnapshotRef { ref_name: name.clone() });
        }
    }
    if !removed.is_empty() {
        updates.push(TableUpdate::RemoveSnapshots { snapshot_ids: removed });
    }
    let changed: HashMap<String, String> = new
        .properties()
        .iter()
        .filter(|(k, v)| base.properties().get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !changed.is_empty() {
        updates.push(TableUpdate::SetProperties { updates: changed });
    }
    let gone: Vec<String> = base.properties().keys().filter(|k| !new.properties().contains_key(*k)).cloned().collect();
    if !gone.is_empty() {
        updates.push(TableUpdate::RemoveProperties { removals: gone });
    }
    updates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded_and_levels_joined_by_unit_separator() {
        assert_eq!(encode_segment("events"), "events");
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
        let ns = NamespaceIdent::from_vec(vec!["a".into(), "b".into()]).expect("namespace");
        assert_eq!(namespace_path(&ns), "a%1Fb");
    }

    /// A schema change asks for the base's last assigned field id and makes the schema it adds
    /// current as `-1`, as Java's REST commits do (the server may number schemas itself).
    #[test]
    fn a_schema_commit_asserts_the_last_field_id_and_sets_the_added_schema() {
        let base: TableMetadata = serde_json::from_value(serde_json::json!({
            "format-version": 2, "table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1", "location": "/t",
            "last-sequence-number": 0, "last-updated-ms": 1, "last-column-id": 1, "current-schema-id": 0,
            "schemas": [{"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "x", "required": false, "type": "long"}]}],
            "default-spec-id": 0, "partition-specs": [{"spec-id": 0, "fields": []}], "last-partition-id": 999,
            "default-sort-order-id": 0, "sort-orders": [{"order-id": 0, "fields": []}], "properties": {}
        }))
        .expect("metadata");
        let wider = iceberg::spec::Schema::builder()
            .with_fields(vec![
                iceberg::spec::NestedField::optional(
                    1,
                    "x",
                    iceberg::spec::Type::Primitive(iceberg::spec::PrimitiveType::Long),
                )
                .into(),
                iceberg::spec::NestedField::optional(
                    2,
                    "y",
                    iceberg::spec::Type::Primitive(iceberg::spec::PrimitiveType::String),
                )
                .into(),
            ])
            .build()
            .expect("schema");
        let new =
            base.clone().into_builder(None).add_current_schema(wider).and_then(|b| b.build()).expect("evolve").metadata;
        let updates = serde_json::to_value(updates_between(&base, &new)).expect("json");
        assert!(
            updates
                .as_array()
                .expect("updates")
                .iter()
                .any(|u| u["action"] == "set-current-schema" && u["schema-id"] == -1),
            "{updates}"
        );
        let requirements = serde_json::to_value(requirements(&base, &new)).expect("json");
        assert!(
            requirements
                .as_array()
                .expect("requirements")
                .iter()
                .any(|r| r["type"] == "assert-last-assigned-field-id" && r["last-assigned-field-id"] == 1),
            "{requirements}"
        );
        assert_eq!(super::requirements(&base, &base).len(), 3, "no schema added: no field id assertion");
    }
}
