use std::fmt;

/// Result type of the table layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The one error type of the table layer. Each variant says what failed and, where it can,
/// what the user should do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Configuration is wrong; the message names the key and the fix.
    #[error("invalid catalog configuration: {0}")]
    Config(String),

    /// The catalog database could not be reached or answered with an error. Retryable.
    #[error("catalog {operation} failed: {source}; check that the catalog database is reachable (catalog.uri)")]
    Catalog {
        /// What was being done.
        operation: String,
        /// The database's error.
        #[source]
        source: Box<sqlx::Error>,
    },

    /// A REST catalog request failed: no answer (`status` none) or an error status. Retryable
    /// unless the server said the request itself is wrong (4xx).
    #[error("REST catalog: {context} failed{}: {message}; check that the catalog (catalog.uri) is reachable", status.map(|s| format!(" with HTTP {s}")).unwrap_or_default())]
    Rest {
        /// What was being done.
        context: String,
        /// The HTTP status, if the server answered.
        status: Option<u16>,
        /// The server's message, or why there was no answer.
        message: String,
    },

    /// The catalog answered, but the table does not exist.
    #[error("table {0} does not exist")]
    TableNotFound(String),

    /// Creating a table or namespace that already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),

    /// An Iceberg-level failure: reading/writing metadata, manifests or data files.
    #[error("{context}: {source}")]
    Iceberg {
        /// What was being done.
        context: String,
        /// iceberg-rust's error.
        #[source]
        source: Box<iceberg::Error>,
    },

    /// The caller's requirement no longer holds on the current table state (for example,
    /// another writer committed the same Kafka offsets). Not retryable: the caller must
    /// re-read the table and start over.
    #[error("commit to {table} rejected: {reason}")]
    Rejected {
        /// The table.
        table: String,
        /// Which requirement failed.
        reason: String,
    },

    /// The compare-and-swap kept failing because other commits kept landing.
    #[error(
        "commit to {table} gave up after {attempts} conflicting attempts; other processes commit too often, raise commit.retry.num-retries"
    )]
    ConflictRetriesExhausted {
        /// The table.
        table: String,
        /// Attempts made.
        attempts: u32,
    },

    /// Object storage (listing, reading or deleting outside iceberg's FileIO) failed. Retryable.
    #[error("storage: {context}: {source}; check that the table's storage is reachable")]
    Storage {
        /// What was being done.
        context: String,
        /// opendal's error.
        #[source]
        source: Box<opendal::Error>,
    },

    /// A table's metadata holds something we cannot interpret.
    #[error("table {table}: {message}")]
    Metadata {
        /// The table.
        table: String,
        /// What cannot be interpreted.
        message: String,
    },
}

impl Error {
    /// True when the same operation may succeed later without anything changing on our side
    /// (catalog or storage briefly unreachable, conflicts).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Catalog { .. } | Error::ConflictRetriesExhausted { .. } | Error::Storage { .. } => true,
            Error::Rest { status, .. } => status.is_none_or(|s| s >= 500 || s == 429 || s == 408),
            Error::Iceberg { source, .. } => {
                !matches!(source.kind(), iceberg::ErrorKind::DataInvalid | iceberg::ErrorKind::FeatureUnsupported)
            }
            _ => false,
        }
    }

    pub(crate) fn iceberg(context: impl fmt::Display) -> impl FnOnce(iceberg::Error) -> Error {
        let context = context.to_string();
        move |source| Error::Iceberg { context, source: Box::new(source) }
    }

    pub(crate) fn storage(context: impl fmt::Display) -> impl FnOnce(opendal::Error) -> Error {
        let context = context.to_string();
        move |source| Error::Storage { context, source: Box::new(source) }
    }

    pub(crate) fn catalog(operation: impl fmt::Display) -> impl FnOnce(sqlx::Error) -> Error {
        let operation = operation.to_string();
        move |source| Error::Catalog { operation, source: Box::new(source) }
    }
}
