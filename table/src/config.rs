//! Catalog and storage settings, shared by the writer's and the optimizer's config files.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Where tables are registered and where their files live.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    /// SQL catalog database: `sqlite:<path>` (embedded default; created if missing) or
    /// `postgres://user:pass@host:5432/db`. The layout is the one Java's JdbcCatalog (V1) and
    /// PyIceberg's SqlCatalog share, so Spark, Trino and PyIceberg see the same tables.
    #[serde(default = "default_uri")]
    pub uri: String,
    /// Catalog name stored in every row (`iceberg_tables.catalog_name`); engines must use the
    /// same name for their catalog.
    #[serde(default = "default_name")]
    pub name: String,
    /// Root under which new tables are created: a local path, `file:///path` or `s3://bucket/prefix`.
    #[serde(default = "default_warehouse")]
    pub warehouse: String,
    /// Storage properties passed to the file layer, e.g. `s3.endpoint`, `s3.region`,
    /// `s3.access-key-id`, `s3.secret-access-key`, `s3.path-style-access`.
    #[serde(default)]
    pub storage: BTreeMap<String, String>,
    /// Bearer token for a REST catalog (`uri = "https://…"`); use `${ENV_VAR}` to keep it out
    /// of the file. Never logged.
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
    /// REST catalog properties, named as the Java and PyIceberg clients name them:
    /// `credential` (`"<client_id>:<client_secret>"`: OAuth2 client credentials, tokens
    /// obtained and renewed before they expire), `oauth2-server-uri` (default
    /// `<uri>/v1/oauth/tokens`), `scope` (default `catalog`), `token` (a fixed bearer token),
    /// `header.<name>` (sent with every request). Secrets never logged.
    #[serde(default, skip_serializing)]
    pub rest: BTreeMap<String, String>,
}

/// Secrets (the token, REST credentials, storage keys, a password in the URI) shown redacted.
impl std::fmt::Debug for CatalogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |map: &BTreeMap<String, String>, shown: &[&str]| -> BTreeMap<String, String> {
            map.iter()
                .map(|(k, v)| (k.clone(), if shown.contains(&k.as_str()) { v.clone() } else { "***".into() }))
                .collect()
        };
        let storage_shown = ["s3.endpoint", "s3.region", "s3.path-style-access", "client.region"];
        f.debug_struct("CatalogConfig")
            .field("uri", &crate::catalog::redact(&self.uri))
            .field("name", &self.name)
            .field("warehouse", &self.warehouse)
            .field("storage", &redacted(&self.storage, &storage_shown))
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("rest", &redacted(&self.rest, &["oauth2-server-uri", "scope"]))
            .finish()
    }
}

fn default_uri() -> String {
    "sqlite:icefall-warehouse/catalog.db".into()
}
fn default_name() -> String {
    "icefall".into()
}
fn default_warehouse() -> String {
    "icefall-warehouse".into()
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            uri: default_uri(),
            name: default_name(),
            warehouse: default_warehouse(),
            storage: BTreeMap::new(),
            token: None,
            rest: BTreeMap::new(),
        }
    }
}

impl CatalogConfig {
    /// The embedded default in `dir`: a SQLite catalog (`dir/catalog.db`) and the warehouse
    /// (`dir/warehouse`) on local disk, as the quickstart, the benchmarks and tests use it.
    pub fn embedded_in(dir: &std::path::Path) -> Self {
        CatalogConfig {
            uri: format!("sqlite:{}/catalog.db", dir.display()),
            warehouse: format!("{}/warehouse", dir.display()),
            ..Self::default()
        }
    }

    /// Checks the settings without connecting.
    pub fn validate(&self) -> Result<()> {
        if !(self.uri.starts_with("sqlite:")
            || self.uri.starts_with("postgres://")
            || self.uri.starts_with("postgresql://")
            || self.is_rest())
        {
            return Err(Error::Config(format!(
                "catalog.uri = {:?}: use `sqlite:<path>`, `postgres://user:password@host:port/database` or a REST \
                 catalog's `https://host[:port][/path]`",
                crate::catalog::redact(&self.uri)
            )));
        }
        if (self.token.is_some() || !self.rest.is_empty()) && !self.is_rest() {
            return Err(Error::Config(
                "catalog.token or catalog.rest is set but catalog.uri is not a REST catalog (http[s]://…)".into(),
            ));
        }
        crate::catalog::rest_auth::validate_rest_properties(&self.rest, self.token.as_deref())?;
        if self.name.trim().is_empty() {
            return Err(Error::Config("catalog.name is empty: set it to the catalog name your engines use".into()));
        }
        if self.warehouse.trim().is_empty() {
            return Err(Error::Config("catalog.warehouse is empty: set a local path or s3://bucket/prefix".into()));
        }
        crate::storage::normalize_location(&self.warehouse)?;
        Ok(())
    }

    /// A REST catalog (`http://` or `https://`).
    pub fn is_rest(&self) -> bool {
        self.uri.starts_with("http://") || self.uri.starts_with("https://")
    }

    /// The warehouse as a location every engine accepts (`file:///abs/path` or `s3://…`).
    pub fn warehouse_location(&self) -> Result<String> {
        crate::storage::normalize_location(&self.warehouse)
    }
}

/// Replaces `${NAME}` with the environment variable's value; `$${` escapes a literal `${`.
/// Shared by the writer's and the optimizer's config files (secrets stay in the environment).
/// The error says which variable is missing; callers wrap it in their own config error.
pub fn interpolate_env(text: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('$') {
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').ok_or_else(|| "an unterminated ${ in the config file".to_string())?;
        let name = &rest[i + 2..i + end];
        let value = std::env::var(name)
            .map_err(|_| format!("the config references ${{{name}}}, but that environment variable is not set"))?;
        out.push_str(&value);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_not_in_the_debug_output_and_rest_keys_are_checked() {
        let config = CatalogConfig {
            uri: "https://catalog.example.com".into(),
            storage: [("s3.secret-access-key".to_string(), "KEY-SECRET".to_string())].into(),
            rest: [("credential".to_string(), "id:REST-SECRET".to_string()), ("scope".into(), "catalog".into())].into(),
            ..CatalogConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("SECRET") && shown.contains("catalog"), "{shown}");
        assert!(config.validate().is_ok());
        let typo = CatalogConfig { rest: [("credentail".to_string(), "x".to_string())].into(), ..config.clone() };
        assert!(typo.validate().expect_err("a typo").to_string().contains("catalog.rest.credentail"));
        let sql = CatalogConfig { uri: "sqlite:c.db".into(), ..config };
        assert!(sql.validate().is_err(), "REST properties on a SQL catalog");
    }
}
