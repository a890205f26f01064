//! The SQL catalog backend: SQLite (embedded) or PostgreSQL, in the layout Java's
//! `JdbcCatalog` (schema version V1) and PyIceberg's `SqlCatalog` share, so a table registered
//! here is visible to Spark, Trino and PyIceberg. Committing is a compare-and-swap on
//! `metadata_location`: the only write that changes a table's state.

use std::time::Duration;

use iceberg::{NamespaceIdent, TableIdent};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

use super::{SwapOutcome, display_ident, redact};
use crate::{Backoff, CatalogConfig, Error, Result};

/// A connection pool to the catalog database.
pub(crate) struct SqlCatalog {
    pool: AnyPool,
    postgres: bool,
    /// `catalog_name` of every row (several catalogs may share one database).
    name: String,
}

impl SqlCatalog {
    /// Connects (creating the SQLite file and the catalog tables if missing).
    pub(crate) async fn connect(config: &CatalogConfig) -> Result<Self> {
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
        let catalog = SqlCatalog { pool, postgres, name: config.name.clone() };
        catalog.ensure_layout().await?;
        Ok(catalog)
    }

    /// SQL text with `?` placeholders, numbered for PostgreSQL.
    fn sql(&self, text: &str) -> String {
        if !self.postgres {
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
        let pool = &self.pool;
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
        // Two processes starting at once settle within a few short tries.
        const DDL_RACE_ATTEMPTS: u32 = 5;
        let pool = &self.pool;
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_millis(400));
        let mut attempt = 0;
        loop {
            attempt += 1;
            match sqlx::query(sql).execute(pool).await {
                Ok(_) => return Ok(()),
                Err(e) if attempt < DDL_RACE_ATTEMPTS => {
                    tracing::debug!(operation, error = %e, "catalog DDL raced another process; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
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

    /// The compare-and-swap every commit ends in: point the table at `new_location` only if it
    /// still points at `expected`. An `Err` means the outcome is unknown (the statement may or
    /// may not have been applied).
    pub(crate) async fn swap(&self, ident: &TableIdent, expected: &str, new_location: &str) -> Result<SwapOutcome> {
        let pool = &self.pool;
        let sql = self.sql(
            "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? \
             WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? AND metadata_location = ?",
        );
        let result = sqlx::query(&sql)
            .bind(new_location)
            .bind(expected)
            .bind(&self.name)
            .bind(ident.namespace().join("."))
            .bind(ident.name())
            .bind(expected)
            .execute(pool)
            .await
            .map_err(Error::catalog(format!("commit to {}", display_ident(ident))))?;
        Ok(if result.rows_affected() == 1 { SwapOutcome::Swapped } else { SwapOutcome::Conflict })
    }

    /// Creates the namespace if it is not there (the `exists` marker PyIceberg and Java use).
    pub(crate) async fn ensure_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        let ns = namespace.join(".");
        let sql = self.sql(
            "INSERT INTO iceberg_namespace_properties (catalog_name, namespace, property_key, property_value) \
             VALUES (?, ?, 'exists', 'true') ON CONFLICT DO NOTHING",
        );
        sqlx::query(&sql)
            .bind(&self.name)
            .bind(&ns)
            .execute(&self.pool)
            .await
            .map_err(Error::catalog(format!("create namespace {ns}")))?;
        Ok(())
    }

    /// The metadata location the catalog holds for a table, if the table exists.
    pub(crate) async fn metadata_location(&self, ident: &TableIdent) -> Result<Option<String>> {
        let sql = self.sql(
            "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? \
             AND table_name = ? AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)",
        );
        let row = sqlx::query(&sql)
            .bind(&self.name)
            .bind(ident.namespace().join("."))
            .bind(ident.name())
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::catalog(format!("load {}", display_ident(ident))))?;
        match row {
            None => Ok(None),
            Some(row) => {
                row.try_get(0).map_err(Error::catalog(format!("read metadata_location of {}", display_ident(ident))))
            }
        }
    }

    /// Tables of a namespace.
    pub(crate) async fn list_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        let sql = self.sql(
            "SELECT table_name FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? \
             AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL) ORDER BY table_name",
        );
        let rows = sqlx::query(&sql)
            .bind(&self.name)
            .bind(namespace.join("."))
            .fetch_all(&self.pool)
            .await
            .map_err(Error::catalog("list tables"))?;
        rows.iter()
            .map(|r| {
                let name: String = r.try_get(0).map_err(Error::catalog("list tables"))?;
                Ok(TableIdent::new(namespace.clone(), name))
            })
            .collect()
    }

    /// Registers a new table at `metadata_location`; `AlreadyExists` if another process
    /// registered it first.
    pub(crate) async fn insert_table(&self, ident: &TableIdent, metadata_location: &str) -> Result<()> {
        let sql = self.sql(
            "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, metadata_location, \
             previous_metadata_location, iceberg_type) VALUES (?, ?, ?, ?, NULL, 'TABLE')",
        );
        let inserted = sqlx::query(&sql)
            .bind(&self.name)
            .bind(ident.namespace().join("."))
            .bind(ident.name())
            .bind(metadata_location)
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(Error::AlreadyExists(format!("table {}", display_ident(ident))))
            }
            Err(e) => Err(Error::catalog(format!("create {}", display_ident(ident)))(e)),
        }
    }

    /// Removes a table from the catalog (its files stay).
    pub(crate) async fn drop_table(&self, ident: &TableIdent) -> Result<()> {
        let sql =
            self.sql("DELETE FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?");
        sqlx::query(&sql)
            .bind(&self.name)
            .bind(ident.namespace().join("."))
            .bind(ident.name())
            .execute(&self.pool)
            .await
            .map_err(Error::catalog(format!("drop {}", display_ident(ident))))?;
        Ok(())
    }
}
