/// Result type of the optimizer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The optimizer's one error type; messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config: {0}")]
    Config(String),
    #[error(transparent)]
    Table(#[from] icefall_table::Error),
    #[error("{context}: {source}")]
    Iceberg {
        context: String,
        #[source]
        source: Box<iceberg::Error>,
    },
    #[error("storage: {context}: {source}")]
    Storage {
        context: String,
        #[source]
        source: Box<opendal::Error>,
    },
    /// Column statistics could not be computed or read (a sketch, a statistics file).
    #[error("statistics: {0}")]
    Statistics(String),
    /// A safety rule refused the operation; the message names the rule and the override.
    #[error("refused: {0}")]
    Refused(String),
    /// A command over several tables failed on some of them (the others were done).
    #[error("{} of {total} tables failed: {}", failed.len(), failed.iter().map(|(t, e)| format!("{t}: {e}")).collect::<Vec<_>>().join("; "))]
    TablesFailed { total: usize, failed: Vec<(String, String)> },
}

impl Error {
    pub(crate) fn iceberg(context: impl Into<String>) -> impl FnOnce(iceberg::Error) -> Error {
        let context = context.into();
        move |source| Error::Iceberg { context, source: Box::new(source) }
    }
    pub(crate) fn storage(context: impl Into<String>) -> impl FnOnce(opendal::Error) -> Error {
        let context = context.into();
        move |source| Error::Storage { context, source: Box::new(source) }
    }
}
