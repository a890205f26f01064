/// Result type of the schemas crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors in setting up a schema or decoder (config problems, fatal for a pipeline).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A schema (declared, source or table) cannot be used; the message names the field.
    #[error("schema: {0}")]
    Schema(String),
    /// An Iceberg-level failure (building a schema or reading its properties).
    #[error("schema: {context}: {source}")]
    Iceberg {
        /// What was being done.
        context: String,
        /// iceberg-rust's error.
        #[source]
        source: Box<iceberg::Error>,
    },
    /// Building Arrow arrays or schemas failed.
    #[error("schema: building Arrow columns failed: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// Why a record is a dead letter: the classes, listed once. `as_str` is the `error_kind`
/// column of the dead-letter table and the `reason` label of the dead-letter metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// not JSON at all.
    NotJson,
    /// a required field is absent or null.
    MissingField,
    /// a value of the wrong type for its column.
    WrongType,
    /// a value outside its column's range (or invalid UTF-8).
    OutOfRange,
    /// no value.
    Empty,
    /// truncated or malformed Protobuf.
    BadProtobuf,
    /// truncated or malformed Avro.
    BadAvro,
    /// not Confluent-framed (magic byte, schema id).
    BadFraming,
    /// a schema id that cannot be used.
    UnknownSchema,
    /// a Protobuf message other than the pipeline's.
    WrongMessage,
    /// a decoder bug (report it).
    Internal,
    /// offsets gone from the broker before they were read (written by the writer).
    OffsetsLost,
}

impl Reason {
    /// Every class, in the order the docs list them.
    pub const ALL: &[Reason] = &[
        Reason::NotJson,
        Reason::MissingField,
        Reason::WrongType,
        Reason::OutOfRange,
        Reason::Empty,
        Reason::BadProtobuf,
        Reason::BadAvro,
        Reason::BadFraming,
        Reason::UnknownSchema,
        Reason::WrongMessage,
        Reason::Internal,
        Reason::OffsetsLost,
    ];

    /// The class as written to the dead-letter table and the metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::NotJson => "not_json",
            Reason::MissingField => "missing_field",
            Reason::WrongType => "wrong_type",
            Reason::OutOfRange => "out_of_range",
            Reason::Empty => "empty",
            Reason::BadProtobuf => "bad_protobuf",
            Reason::BadAvro => "bad_avro",
            Reason::BadFraming => "bad_framing",
            Reason::UnknownSchema => "unknown_schema",
            Reason::WrongMessage => "wrong_message",
            Reason::Internal => "internal",
            Reason::OffsetsLost => "offsets_lost",
        }
    }
}

/// Why one record could not be decoded. The record goes to the dead-letter table with this text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct RecordError {
    /// The class ([`Reason::as_str`]), for metrics and grouping.
    pub kind: &'static str,
    /// What exactly was wrong, naming the field path.
    pub message: String,
}

impl RecordError {
    pub(crate) fn new(reason: Reason, message: impl Into<String>) -> Self {
        RecordError { kind: reason.as_str(), message: message.into() }
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
