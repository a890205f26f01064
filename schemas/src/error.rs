/// Result type of the schemas crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors in setting up a schema or decoder (config problems, fatal for a pipeline).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("schema: {0}")]
    Schema(String),
    #[error("schema: {context}: {source}")]
    Iceberg {
        context: String,
        #[source]
        source: Box<iceberg::Error>,
    },
    #[error("schema: building Arrow columns failed: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// Why one record could not be decoded. The record goes to the dead-letter table with this text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct RecordError {
    /// Short class for metrics and grouping: `not_json`, `missing_field`, `wrong_type`, `out_of_range`,
    /// `empty`, `bad_protobuf`, `bad_avro`, `bad_framing`, `unknown_schema`, `wrong_message`.
    pub kind: &'static str,
    /// What exactly was wrong, naming the field path.
    pub message: String,
}

impl RecordError {
    pub(crate) fn new(kind: &'static str, message: impl Into<String>) -> Self {
        RecordError { kind, message: message.into() }
    }

    /// The same error, located inside `field` (built outward: `field a.b.c: …`).
    pub(crate) fn within(mut self, field: &str) -> Self {
        self.message = match self.message.strip_prefix("field ") {
            Some(rest) => format!("field {field}.{rest}"),
            None => format!("field {field}: {}", self.message),
        };
        self
    }
}
