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
    /// Makes a relative SQLite path and a relative local warehouse relative to `base` (the
    /// config file's folder), the one rule for every relative path in a config file.
    pub fn resolve_relative_to(&mut self, base: &std::path::Path) {
        if let Some(path) = self.uri.strip_prefix("sqlite:")
            && !path.starts_with('/')
            && !path.starts_with(':')
        {
            self.uri = format!("sqlite:{}", join_lexically(base, path));
        }
        if !self.warehouse.contains(":/") && !self.warehouse.starts_with('/') {
            self.warehouse = join_lexically(base, &self.warehouse);
        }
    }

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

/// `base/relative` without `.` and `dir/..` steps (the paths need not exist yet, so no
/// canonicalising): table locations derived from it stay plain.
fn join_lexically(base: &std::path::Path, relative: &str) -> String {
    use std::path::Component;
    let absolute = if base.is_absolute() {
        base.to_path_buf()
    } else {
        std::env::current_dir().map(|cwd| cwd.join(base)).unwrap_or_else(|_| base.to_path_buf())
    };
    let mut out = std::path::PathBuf::new();
    for component in absolute.join(relative).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.to_string_lossy().into_owned()
}

/// Parses a TOML config file into `T`, replacing `${NAME}` and `${NAME:-default}` in its string
/// values with environment variables (`$${` is a literal `${`). Shared by the writer's and the
/// optimizer's configs, so secrets stay in the environment. Substitution happens in parsed
/// values, not in the text: a value holding `"`, `\` or `#` needs no escaping, and comments
/// are left alone. The error names the missing variable; callers wrap it in their own error.
pub fn from_toml_with_env<T: serde::de::DeserializeOwned>(text: &str) -> std::result::Result<T, String> {
    from_toml_with(text, &|name| std::env::var(name).ok())
}

/// [`from_toml_with_env`] with another source of variables (tests).
fn from_toml_with<T: serde::de::DeserializeOwned>(text: &str, vars: &Vars) -> std::result::Result<T, String> {
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    for (_, value) in table.iter_mut() {
        interpolate_value(value, vars)?;
    }
    T::deserialize(toml::Value::Table(table)).map_err(|error| {
        // The text itself (with the `${…}` still in it) gives the same structural error with its
        // line and column, when it has one.
        toml::from_str::<T>(text).err().map_or_else(|| error.to_string(), |located| located.to_string())
    })
}

/// Looks up an environment variable.
type Vars = dyn Fn(&str) -> Option<String>;

fn interpolate_value(value: &mut toml::Value, vars: &Vars) -> std::result::Result<(), String> {
    match value {
        toml::Value::String(text) => *text = interpolate(text, vars)?,
        toml::Value::Array(items) => items.iter_mut().try_for_each(|v| interpolate_value(v, vars))?,
        toml::Value::Table(table) => table.iter_mut().try_for_each(|(_, v)| interpolate_value(v, vars))?,
        _ => {}
    }
    Ok(())
}

/// Replaces `${NAME}` (and `${NAME:-default}`: the default when NAME is unset or empty) with
/// the environment variable's value; `$${` is a literal `${`.
pub fn interpolate_env(text: &str) -> std::result::Result<String, String> {
    interpolate(text, &|name| std::env::var(name).ok())
}

fn interpolate(text: &str, vars: &Vars) -> std::result::Result<String, String> {
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
        let end = rest[i..].find('}').ok_or_else(|| format!("an unterminated ${{ in the config value {text:?}"))?;
        let reference = &rest[i + 2..i + end];
        let (name, default) = match reference.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (reference, None),
        };
        let value = match (vars(name).filter(|v| !v.is_empty() || default.is_none()), default) {
            (Some(value), _) => value,
            (None, Some(default)) => default.to_string(),
            (None, None) => {
                return Err(format!(
                    "the config references ${{{name}}}, but that environment variable is not set \
                     (set it, or write ${{{name}:-default}})"
                ));
            }
        };
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

    #[test]
    fn relative_paths_are_relative_to_the_config_file() {
        let base = std::path::Path::new("/etc/icefall/conf");
        let mut config = CatalogConfig {
            uri: "sqlite:../data/catalog.db".into(),
            warehouse: "./data/warehouse".into(),
            ..CatalogConfig::default()
        };
        config.resolve_relative_to(base);
        assert_eq!(config.uri, "sqlite:/etc/icefall/data/catalog.db");
        assert_eq!(config.warehouse, "/etc/icefall/conf/data/warehouse");
        for (uri, warehouse) in [
            ("sqlite:/abs/c.db", "/abs/w"),
            ("sqlite::memory:", "s3://bucket/w"),
            ("postgres://u@h/db", "file:///abs/w"),
        ] {
            let mut config = CatalogConfig { uri: uri.into(), warehouse: warehouse.into(), ..CatalogConfig::default() };
            config.resolve_relative_to(base);
            assert_eq!((config.uri.as_str(), config.warehouse.as_str()), (uri, warehouse));
        }
    }

    #[test]
    fn variables_are_substituted_in_values_with_defaults_and_escapes() {
        // PATH is set in every test environment; ICEFALL_TEST_UNSET_VAR in none.
        let path = std::env::var("PATH").expect("PATH");
        assert_eq!(interpolate_env("a $${literal} b").ok().as_deref(), Some("a ${literal} b"));
        assert_eq!(interpolate_env("${ICEFALL_TEST_UNSET_VAR:-fallback}").ok().as_deref(), Some("fallback"));
        assert_eq!(interpolate_env("${PATH:-fallback}").ok(), Some(path.clone()));
        let e = interpolate_env("x ${ICEFALL_TEST_UNSET_VAR} y").expect_err("unset");
        assert!(e.contains("ICEFALL_TEST_UNSET_VAR") && e.contains(":-default"), "{e}");

        // In parsed values: a comment mentioning an unset variable is not read, and a value
        // with quotes, backslashes, `#` and `@` needs no escaping.
        let secret = r#"p"a\s#s@w'rd"#;
        let vars = |name: &str| (name == "TRICKY").then(|| secret.to_string());
        let text = "# the old password was ${ICEFALL_TEST_UNSET_VAR}\nuri = \"postgres://u:${TRICKY}@db/x\"\nname = \"${ICEFALL_TEST_UNSET_VAR:-icefall}\"\n";
        let config: CatalogConfig = from_toml_with(text, &vars).expect("parses");
        assert_eq!(config.uri, format!("postgres://u:{secret}@db/x"));
        assert_eq!(config.name, "icefall");
        // Unknown keys still come with their line.
        let e = from_toml_with_env::<CatalogConfig>("uri = \"sqlite:x\"\nwarehose = \"w\"\n").expect_err("typo");
        assert!(e.contains("warehose") && e.contains("line 2"), "{e}");
    }
}
