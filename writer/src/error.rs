/// Result type of the writer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The writer's one error type. Messages name the config key or component and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file is wrong: fails start-up, names the key and the fix.
    #[error("config: {0}")]
    Config(String),

    #[error(transparent)]
    Table(#[from] icefall_table::Error),

    #[error(transparent)]
    Schema(#[from] icefall_schemas::Error),

    #[error("kafka: {context}: {source}")]
    Kafka {
        context: String,
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },

    /// The schema registry refused a request (auth, malformed answer); fix the config or registry.
    #[error("schema registry: {0}")]
    Registry(String),

    /// The Kafka source cannot go on without losing records silently (an offset gone from
    /// the broker under `auto.offset.reset = "error"`); names the partition and the fix.
    #[error("kafka source: {0}")]
    Source(String),

    /// A record could not be decoded and `dead_letter_policy = "fail"`; names the record.
    #[error("dead letter: {0}")]
    DeadLetter(String),

    /// The source schema changed in a way the table cannot follow; names the field.
    #[error("schema evolution: {0}")]
    Evolution(String),

    /// A component stopped unexpectedly (a bug or a panic in a task).
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn kafka(context: impl Into<String>) -> impl FnOnce(rdkafka::error::KafkaError) -> Error {
        let context = context.into();
        move |source| Error::Kafka { context, source: Box::new(source) }
    }

    /// Worth retrying later without any change (storage/catalog/broker briefly away).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Table(e) => e.is_retryable(),
            Error::Kafka { .. } => true,
            _ => false,
        }
    }
}
