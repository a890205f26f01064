//! The catalog: SQL (SQLite embedded, PostgreSQL in production) or the Iceberg REST catalog
//! ([`rest`]).
//!
//! The SQL layout is the one Java's `JdbcCatalog` (schema version V1) and PyIceberg's
//! `SqlCatalog` share, so a table registered here is visible to Spark, Trino and PyIceberg.
//! Committing is a compare-and-swap on `metadata_location`: the only write that changes a
//! table's state. On REST, a commit is a request whose requirements play that part.

pub mod rest;

use std::sync::Arc;

use iceberg::io::FileIO;
use iceberg::spec::{TableMetadata, TableMetadataBuilder, TableMetadataRef};
use iceberg::table::Table;
use iceberg::{MetadataLocation, NamespaceIdent, TableCreation, TableIdent};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

use crate::{CatalogConfig, Error, Result, storage};

/// A table as read from the catalog: the metadata file it points at and its contents.
#[derive(Debug, Clone)]
pub struct LoadedTable {
    pub ident: TableIdent,
    pub metadata_location: String,
    pub metadata: TableMetadataRef,
}

impl LoadedTable {
    /// An iceberg-rust `Table` for scans (call from within a tokio runtime).
    pub fn to_table(&self, file_io: &FileIO) -> Result<Table> {
        let runtime = iceberg::Runtime::try_current().map_err(Error::iceberg("scans need a tokio runtime"))?;
        Table::builder()
            .runtime(runtime)
            .identifier(self.ident.clone())
            .metadata(self.metadata.clone())
            .metadata_location(self.metadata_location.clone())
            .file_io(file_io.clone())
            .readonly(true)
            .build()
            .map_err(Error::iceberg(format!("open {}", self.ident)))
    }

    /// `namespace.table`, for messages.
    pub fn name(&self) -> String {
        display_ident(&self.ident)
    }
}

/// `a.b.table` for a table identifier.
pub fn display_ident(ident: &TableIdent) -> String {
    format!("{}.{}", ident.namespace().join("."), ident.name())
}

/// Parses `namespace.table` (the last dot separates the table name).
pub fn parse_ident(text: &str) -> Result<TableIdent> {
    let (ns, name) = text
        .rsplit_once('.')
        .ok_or_else(|| Error::Config(format!("table {text:?} must be written as <namespace>.<table>")))?;
    let parts: Vec<String> = ns.split('.').map(str::to_string).collect();
    if parts.iter().any(String::is_empty) || name.is_empty() {
        return Err(Error::Config(format!("table {text:?} must be written as <namespace>.<table>")));
    }
    let namespace = NamespaceIdent::from_vec(parts).map_err(Error::iceberg("namespace"))?;
    Ok(TableIdent::new(namespace, name.to_string()))
}

/// What a compare-and-swap did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapOutcome {
    Swapped,
    /// The table no longer points at the expected metadata: someone else committed.
    Conflict,
}

enum Backend {
    Sql(AnyPool),
    Rest(rest::RestCatalog),
}

/// What publishing a staged commit did.
pub(crate) enum Published {
    Committed(LoadedTable),
    Conflict,
}

/// A connection to the catalog plus the storage its tables live on.
#[derive(Clone)]
pub struct Catalog {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    postgres: bool,
    config: CatalogConfig,
    warehouse: String,
    file_io: FileIO,
}

impl Catalog {
    /// Connects (creating the SQLite file and the catalog tables if missing).
    pub async fn connect(config: &CatalogConfig) -> Result<Self> {
        config.validate()?;
        let warehouse = config.warehouse_location()?;
        if config.is_rest() {
            let client = rest::RestCatalog::connect(&config.uri, &config.warehouse, config.token.clone()).await?;
            return Ok(Catalog {
                inner: Arc::new(Inner {
                    backend: Backend::Rest(client),
                    postgres: false,
                    config: config.clone(),
                    warehouse,
                    file_io: storage::file_io(config),
                }),
            });
        }
        install_default_drivers();
        let postgres = config.uri.starts_with("postgres");
        let url = if let Some(path) = config.uri.strip_prefix("sqlite:") {
            let path = path.trim_start_matches("//");
            if let Some(parent) = std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    Error::Config(format!("catalog.uri: cannot create directory {}: {e}", parent.display()))
                })?;
            }
            format!("sqlite://{path}?mode=rwc")
        } else {
            config.uri.clone()
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if postgres { 4 } else { 1 })
            // Short: an unreachable catalog should surface as a logged, retried error quickly.
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&url)
            .await
            .map_err(Error::catalog(format!("connect to {}", redact(&config.uri))))?;
        if let Some(path) = storage::local_path(&warehouse) {
            std::fs::create_dir_all(&path)
                .map_err(|e| Error::Config(format!("catalog.warehouse: cannot create {path}: {e}")))?;
        }
        let catalog = Catalog {
            inner: Arc::new(Inner {
                backend: Backend::Sql(pool),
                postgres,
                config: config.clone(),
                warehouse,
                file_io: storage::file_io(config),
            }),
        };
        catalog.ensure_layout().await?;
        Ok(catalog)
    }

    pub fn file_io(&self) -> &FileIO {
        &self.inner.file_io
    }

    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// The configuration this catalog was connected with (storage properties included).
    pub fn config(&self) -> &CatalogConfig {
        &self.inner.config
    }

    pub fn warehouse(&self) -> &str {
        &self.inner.warehouse
    }

    /// SQL text with `?` placeholders, numbered for PostgreSQL.
    fn sql(&self, text: &str) -> String {
        if !self.inner.postgres {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len() + 8);
        let mut n = 0;
        for c in text.chars() {
            if c == '?' {
                n += 1;
                out.push_str(&format!("${n}"));
            } else {
                out.push(c);
            }
        }
        out
    }

    async fn ensure_layout(&self) -> Result<()> {
        self.idempotent_ddl(
            "create table iceberg_tables",
            "CREATE TABLE IF NOT EXISTS iceberg_tables (catalog_name VARCHAR(255) NOT NULL, \
             table_namespace VARCHAR(255) NOT NULL, table_name VARCHAR(255) NOT NULL, \
             metadata_location VARCHAR(1000), previous_metadata_location VARCHAR(1000), \
             iceberg_type VARCHAR(5), PRIMARY KEY (catalog_name, table_namespace, table_name))",
        )
        .await?;
        self.idempotent_ddl(
            "create table iceberg_namespace_properties",
            "CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (catalog_name VARCHAR(255) NOT NULL, \
             namespace VARCHAR(255) NOT NULL, property_key VARCHAR(255), property_value VARCHAR(1000), \
             PRIMARY KEY (catalog_name, namespace, property_key))",
        )
        .await?;
        // A database first created by Java's JdbcCatalog in the pre-V1 layout lacks this column.
        let Backend::Sql(pool) = &self.inner.backend else { return Ok(()) };
        if sqlx::query("SELECT iceberg_type FROM iceberg_tables WHERE 1 = 0").execute(pool).await.is_err() {
            self.idempotent_ddl(
                "add column iceberg_tables.iceberg_type",
                "ALTER TABLE iceberg_tables ADD COLUMN iceberg_type VARCHAR(5)",
            )
            .await?;
        }
        Ok(())
    }

    /// Runs DDL that is safe to repeat. PostgreSQL's `IF NOT EXISTS` is not safe against a
    /// concurrent creator (two writers starting at once), so a failure is retried: the retry
    /// sees the table the other process made.
    async fn idempotent_ddl(&self, operation: &str, sql: &str) -> Result<()> {
        let Backend::Sql(pool) = &self.inner.backend else { return Ok(()) };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match sqlx::query(sql).execute(pool).await {
                Ok(_) => return Ok(()),
                Err(e) if attempt < 5 => {
                    tracing::debug!(operation, error = %e, "catalog DDL raced another process; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => {
                    // The column may have been added by the other process meanwhile.
                    if operation.starts_with("add column")
                        && sqlx::query("SELECT iceberg_type FROM iceberg_tables WHERE 1 = 0")
                            .execute(pool)
                            .await
                            .is_ok()
                    {
                        return Ok(());
                    }
                    return Err(Error::catalog(operation)(e));
                }
            }
        }
    }

    /// Creates the namespace if it is not there (the `exists` marker PyIceberg and Java use).
    pub async fn ensure_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        let pool = match &self.inner.backend {
            Backend::Rest(rest) => return rest.ensure_namespace(namespace).await,
            Backend::Sql(pool) => pool,
        };
        let ns = namespace.join(".");
        let sql = self.sql(
            "INSERT INTO iceberg_namespace_properties (catalog_name, namespace, property_key, property_value) \
             VALUES (?, ?, 'exists', 'true') ON CONFLICT DO NOTHING",
        );
        sqlx::query(&sql)
            .bind(self.name())
            .bind(&ns)
            .execute(pool)
            .await
            .map_err(Error::catalog(format!("create namespace {ns}")))?;
        Ok(())
    }

    /// The metadata location the catalog holds for a table, if the table exists.
    pub async fn metadata_location(&self, ident: &TableIdent) -> Result<Option<String>> {
        let pool = match &self.inner.backend {
            Backend::Rest(rest) => return Ok(rest.load(ident).await?.map(|t| t.metadata_location)),
            Backend::Sql(pool) => pool,
        };
        let sql = self.sql(
            "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? \
             AND table_name = ? AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)",
        );
        let row = sqlx::query(&sql)
            .bind(self.name())
            .bind(ident.namespace().join("."))
            .bind(ident.name())
            .fetch_optional(pool)
            .await
            .map_err(Error::catalog(format!("load {}", display_ident(ident))))?;
        match row {
            None => Ok(None),
            Some(row) => {
                let location: Option<String> = row
                    .try_get(0)
                    .map_err(Error::catalog(format!("read metadata_location of {}", display_ident(ident))))?;
                Ok(location)
            }
        }
    }

    /// Loads a table's current metadata.
    pub async fn load(&self, ident: &TableIdent) -> Result<LoadedTable> {
        if let Backend::Rest(rest) = &self.inner.backend {
            return rest.load(ident).await?.ok_or_else(|| Error::TableNotFound(display_ident(ident)));
        }
        let location =
            self.metadata_location(ident).await?.ok_or_else(|| Error::TableNotFound(display_ident(ident)))?;
        let metadata = TableMetadata::read_from(self.file_io(), &location)
            .await
            .map_err(Error::iceberg(format!("read metadata {location}")))?;
        Ok(LoadedTable { ident: ident.clone(), metadata_location: location, metadata: Arc::new(metadata) })
    }

    /// Tables of a namespace.
    pub async fn list_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        let pool = match &self.inner.backend {
            Backend::Rest(rest) => return rest.list_tables(namespace).await,
            Backend::Sql(pool) => pool,
        };
        let sql = self.sql(
            "SELECT table_name FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? \
             AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL) ORDER BY table_name",
        );
        let rows = sqlx::query(&sql)
            .bind(self.name())
            .bind(namespace.join("."))
            .fetch_all(pool)
            .await
            .map_err(Error::catalog("list tables"))?;
        rows.iter()
            .map(|r| {
                let name: String = r.try_get(0).map_err(Error::catalog("list tables"))?;
                Ok(TableIdent::new(namespace.clone(), name))
            })
            .collect()
    }

    /// Where a new table of this catalog lives: `<warehouse>/<ns>/<table>`.
    pub fn default_location(&self, ident: &TableIdent) -> String {
        format!("{}/{}/{}", self.warehouse(), ident.namespace().join("/"), ident.name())
    }

    /// Creates a table; `AlreadyExists` if another process created it first.
    pub async fn create(&self, ident: &TableIdent, creation: TableCreation) -> Result<LoadedTable> {
        let pool = match &self.inner.backend {
            // The server places the table under its own warehouse unless a location is given.
            Backend::Rest(rest) => return rest.create(ident, creation).await,
            Backend::Sql(pool) => pool,
        };
        self.ensure_namespace(ident.namespace()).await?;
        let location = creation.location.clone().unwrap_or_else(|| self.default_location(ident));
        let creation = TableCreation { location: Some(location.clone()), ..creation };
        let metadata = TableMetadataBuilder::from_table_creation(creation)
            .and_then(|b| b.build())
            .map_err(Error::iceberg(format!("build metadata of new table {}", display_ident(ident))))?
            .metadata;
        let metadata_location = MetadataLocation::new_with_metadata(&location, &metadata);
        metadata
            .write_to(self.file_io(), &metadata_location)
            .await
            .map_err(Error::iceberg(format!("write metadata of new table {}", display_ident(ident))))?;
        let metadata_location = metadata_location.to_string();
        let sql = self.sql(
            "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, metadata_location, \
             previous_metadata_location, iceberg_type) VALUES (?, ?, ?, ?, NULL, 'TABLE')",
        );
        let inserted = sqlx::query(&sql)
            .bind(self.name())
            .bind(ident.namespace().join("."))
            .bind(ident.name())
            .bind(&metadata_location)
            .execute(pool)
            .await;
        match inserted {
            Ok(_) => Ok(LoadedTable { ident: ident.clone(), metadata_location, metadata: Arc::new(metadata) }),
            Err(e) => {
                let _ = self.file_io().delete(&metadata_location).await;
                if let sqlx::Error::Database(db) = &e
                    && db.is_unique_violation()
                {
                    return Err(Error::AlreadyExists(format!("table {}", display_ident(ident))));
                }
                Err(Error::catalog(format!("create {}", display_ident(ident)))(e))
            }
        }
    }

    /// The compare-and-swap every commit ends in: point the table at `new_location` only if it
    /// still points at `expected`. An `Err` means the outcome is unknown (the statement may or
    /// may not have been applied).
    pub async fn swap(&self, ident: &TableIdent, expected: &str, new_location: &str) -> Result<SwapOutcome> {
        let Backend::Sql(pool) = &self.inner.backend else {
            return Err(Error::Config("a REST catalog commits through requests, not swaps".into()));
        };
        let sql = self.sql(
            "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? \
             WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? AND metadata_location = ?",
        );
        let result = sqlx::query(&sql)
            .bind(new_location)
            .bind(expected)
            .bind(self.name())
            .bind(ident.namespace().join("."))
            .bind(ident.name())
            .bind(expected)
            .execute(pool)
            .await
            .map_err(Error::catalog(format!("commit to {}", display_ident(ident))))?;
        Ok(if result.rows_affected() == 1 { SwapOutcome::Swapped } else { SwapOutcome::Conflict })
    }

    /// True when commits go through a REST catalog (which writes the metadata file itself).
    pub(crate) fn is_rest(&self) -> bool {
        matches!(self.inner.backend, Backend::Rest(_))
    }

    /// Makes a staged commit the table's state: a swap to the metadata file we wrote (SQL), or a
    /// commit request the server applies (REST). `Err`: the outcome is unknown.
    pub(crate) async fn publish(
        &self,
        base: &LoadedTable,
        metadata_location: &str,
        metadata: TableMetadata,
    ) -> Result<Published> {
        match &self.inner.backend {
            Backend::Rest(rest) => Ok(match rest.commit(base, &metadata).await? {
                rest::RestCommit::Committed(table) => Published::Committed(table),
                rest::RestCommit::Conflict => Published::Conflict,
            }),
            Backend::Sql(_) => match self.swap(&base.ident, &base.metadata_location, metadata_location).await? {
                SwapOutcome::Swapped => Ok(Published::Committed(LoadedTable {
                    ident: base.ident.clone(),
                    metadata_location: metadata_location.to_string(),
                    metadata: Arc::new(metadata),
                })),
                SwapOutcome::Conflict => Ok(Published::Conflict),
            },
        }
    }

    /// Removes a table from the catalog (its files stay). Used by tests and tooling.
    pub async fn drop_table(&self, ident: &TableIdent) -> Result<()> {
        let pool = match &self.inner.backend {
            Backend::Rest(rest) => return rest.drop_table(ident).await,
            Backend::Sql(pool) => pool,
        };
        let sql =
            self.sql("DELETE FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?");
        sqlx::query(&sql)
            .bind(self.name())
            .bind(ident.namespace().join("."))
            .bind(ident.name())
            .execute(pool)
            .await
            .map_err(Error::catalog(format!("drop {}", display_ident(ident))))?;
        Ok(())
    }
}

/// The URI without its password, for messages and logs.
pub fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &uri[scheme_end + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &uri[..scheme_end], user, &uri[at + 1..])
        }
        _ => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_idents() {
        let ident = parse_ident("db.events").expect("valid");
        assert_eq!(display_ident(&ident), "db.events");
        let nested = parse_ident("a.b.events").expect("valid");
        assert_eq!(nested.namespace().join("."), "a.b");
        assert!(parse_ident("events").is_err());
        assert!(parse_ident(".events").is_err());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("sqlite:/x/catalog.db"), "sqlite:/x/catalog.db");
    }
}
