//! The catalog: SQL (SQLite embedded, PostgreSQL in production; `sql.rs`) or the Iceberg REST
//! catalog ([`rest`]), behind one [`Catalog`].
//!
//! On SQL, committing is a compare-and-swap on `metadata_location`: the only write that
//! changes a table's state. On REST, a commit is a request whose requirements play that part.

pub mod requests;
pub mod rest;
pub mod rest_auth;
pub mod rest_sigv4;
mod rest_updates;
mod sql;

use std::future::Future;
use std::sync::Arc;

use crate::{CatalogConfig, Error, Result, storage};
use iceberg::io::FileIO;
use iceberg::spec::{TableMetadata, TableMetadataBuilder, TableMetadataRef};
use iceberg::table::Table;
use iceberg::{MetadataLocation, NamespaceIdent, TableCreation, TableIdent};
use requests::{CatalogRequests, Operation, Outcome};
use sql::SqlCatalog;

/// A table as read from the catalog: the metadata file it points at and its contents.
#[derive(Debug, Clone)]
pub struct LoadedTable {
    /// The table's name.
    pub ident: TableIdent,
    /// The metadata file the catalog points at.
    pub metadata_location: String,
    /// That file's contents.
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
    /// The table now points at the new metadata.
    Swapped,
    /// The table no longer points at the expected metadata: someone else committed.
    Conflict,
}

enum Backend {
    Sql(SqlCatalog),
    Rest(Box<rest::RestCatalog>),
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
    config: CatalogConfig,
    warehouse: String,
    file_io: FileIO,
    /// Credentials the REST catalog vends per table, which the FileIO applies under each location.
    grants: storage::Grants,
    requests: Arc<CatalogRequests>,
}

impl Catalog {
    /// Connects (creating the SQLite file and the catalog tables if missing).
    pub async fn connect(config: &CatalogConfig) -> Result<Self> {
        config.validate()?;
        let warehouse = config.warehouse_location()?;
        if config.is_rest() {
            let grants = storage::Grants::default();
            let client = rest::RestCatalog::connect(config, grants.clone()).await?;
            // Files are written with the storage properties the server's config layers around ours.
            let config = CatalogConfig { storage: client.storage().clone(), ..config.clone() };
            let file_io = storage::file_io(&config, &grants);
            return Ok(Catalog {
                inner: Arc::new(Inner {
                    backend: Backend::Rest(Box::new(client)),
                    config,
                    warehouse,
                    file_io,
                    grants,
                    requests: Arc::default(),
                }),
            });
        }
        let sql = SqlCatalog::connect(config).await?;
        if let Some(path) = storage::local_path(&warehouse) {
            std::fs::create_dir_all(&path)
                .map_err(|e| Error::Config(format!("catalog.warehouse: cannot create {path}: {e}")))?;
        }
        let grants = storage::Grants::default();
        Ok(Catalog {
            inner: Arc::new(Inner {
                backend: Backend::Sql(sql),
                config: config.clone(),
                warehouse,
                file_io: storage::file_io(config, &grants),
                grants,
                requests: Arc::default(),
            }),
        })
    }

    /// What this connection asked the catalog so far, and how it answered (for metrics).
    pub fn requests(&self) -> &Arc<CatalogRequests> {
        &self.inner.requests
    }

    /// Runs one catalog request, counted under `operation` with the outcome `outcome_of` reads.
    async fn counted<T>(
        &self,
        operation: Operation,
        outcome_of: fn(&Result<T>) -> Outcome,
        request: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let in_flight = self.inner.requests.start(operation);
        let result = request.await;
        in_flight.end(outcome_of(&result));
        result
    }

    /// The storage the catalog's tables live on.
    pub fn file_io(&self) -> &FileIO {
        &self.inner.file_io
    }

    /// The storage properties in force at `location`: the catalog's, with the credentials a
    /// REST catalog vended for the table there over them.
    pub fn storage_properties(&self, location: &str) -> storage::Properties {
        self.inner.grants.for_path(&storage::normalize_path(location), &self.inner.config.storage)
    }

    /// The catalog's name (`catalog_name` in SQL rows).
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// The configuration this catalog was connected with (storage properties included).
    pub fn config(&self) -> &CatalogConfig {
        &self.inner.config
    }

    /// Where new tables go: the warehouse location.
    pub fn warehouse(&self) -> &str {
        &self.inner.warehouse
    }

    /// Creates the namespace if it is not there (the `exists` marker PyIceberg and Java use).
    pub async fn ensure_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        self.counted(Operation::EnsureNamespace, Outcome::of, async {
            match &self.inner.backend {
                Backend::Rest(rest) => rest.ensure_namespace(namespace).await,
                Backend::Sql(sql) => sql.ensure_namespace(namespace).await,
            }
        })
        .await
    }

    /// The metadata location the catalog holds for a table, if the table exists.
    pub async fn metadata_location(&self, ident: &TableIdent) -> Result<Option<String>> {
        self.counted(Operation::Load, Outcome::of, async {
            match &self.inner.backend {
                Backend::Rest(rest) => Ok(rest.load(ident).await?.map(|t| t.metadata_location)),
                Backend::Sql(sql) => sql.metadata_location(ident).await,
            }
        })
        .await
    }

    /// Loads a table's current metadata.
    pub async fn load(&self, ident: &TableIdent) -> Result<LoadedTable> {
        self.counted(Operation::Load, Outcome::of, async {
            let sql = match &self.inner.backend {
                Backend::Rest(rest) => {
                    return rest.load(ident).await?.ok_or_else(|| Error::TableNotFound(display_ident(ident)));
                }
                Backend::Sql(sql) => sql,
            };
            let location =
                sql.metadata_location(ident).await?.ok_or_else(|| Error::TableNotFound(display_ident(ident)))?;
            let metadata = TableMetadata::read_from(self.file_io(), &location)
                .await
                .map_err(Error::iceberg(format!("read metadata {location}")))?;
            Ok(LoadedTable { ident: ident.clone(), metadata_location: location, metadata: Arc::new(metadata) })
        })
        .await
    }

    /// Tables of a namespace.
    pub async fn list_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        self.counted(Operation::ListTables, Outcome::of, async {
            match &self.inner.backend {
                Backend::Rest(rest) => rest.list_tables(namespace).await,
                Backend::Sql(sql) => sql.list_tables(namespace).await,
            }
        })
        .await
    }

    /// Where a new table of this catalog lives: `<warehouse>/<ns>/<table>`.
    pub fn default_location(&self, ident: &TableIdent) -> String {
        format!("{}/{}/{}", self.warehouse(), ident.namespace().join("/"), ident.name())
    }

    /// Creates a table; `AlreadyExists` if another process created it first.
    pub async fn create(&self, ident: &TableIdent, creation: TableCreation) -> Result<LoadedTable> {
        self.counted(Operation::Create, Outcome::of, self.create_uncounted(ident, creation)).await
    }

    async fn create_uncounted(&self, ident: &TableIdent, creation: TableCreation) -> Result<LoadedTable> {
        let sql = match &self.inner.backend {
            // The server places the table under its own warehouse unless a location is given.
            Backend::Rest(rest) => return rest.create(ident, creation).await,
            Backend::Sql(sql) => sql,
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
        if let Err(e) = sql.insert_table(ident, &metadata_location).await {
            let _ = self.file_io().delete(&metadata_location).await;
            return Err(e);
        }
        Ok(LoadedTable { ident: ident.clone(), metadata_location, metadata: Arc::new(metadata) })
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
        let outcome_of = |result: &Result<Published>| match result {
            Ok(Published::Conflict) => Outcome::Conflict,
            other => Outcome::of(other),
        };
        self.counted(Operation::Commit, outcome_of, async {
            match &self.inner.backend {
                Backend::Rest(rest) => Ok(match rest.commit(base, &metadata).await? {
                    rest::RestCommit::Committed(table) => Published::Committed(table),
                    rest::RestCommit::Conflict => Published::Conflict,
                }),
                Backend::Sql(sql) => match sql.swap(&base.ident, &base.metadata_location, metadata_location).await? {
                    SwapOutcome::Swapped => Ok(Published::Committed(LoadedTable {
                        ident: base.ident.clone(),
                        metadata_location: metadata_location.to_string(),
                        metadata: Arc::new(metadata),
                    })),
                    SwapOutcome::Conflict => Ok(Published::Conflict),
                },
            }
        })
        .await
    }

    /// Removes a table from the catalog (its files stay). Used by tests and tooling.
    pub async fn drop_table(&self, ident: &TableIdent) -> Result<()> {
        self.counted(Operation::DropTable, Outcome::of, async {
            match &self.inner.backend {
                Backend::Rest(rest) => rest.drop_table(ident).await,
                Backend::Sql(sql) => sql.drop_table(ident).await,
            }
        })
        .await
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
