//! One Kafka record as the pipeline carries it, and the partition it came from.

use std::sync::Arc;

/// A topic-partition.
pub type TopicPartition = (Arc<str>, i32);

/// One Kafka record, owned.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    /// Record timestamp (CreateTime or LogAppendTime), epoch milliseconds.
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// When this process received the record, microseconds since the epoch.
    pub received_at_us: i64,
}

impl SourceRecord {
    /// Bytes this record holds in memory (payload, key, headers, bookkeeping).
    pub fn memory_size(&self) -> usize {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len) + 48).sum();
        std::mem::size_of::<SourceRecord>()
            + self.payload.as_ref().map_or(0, Vec::len)
            + self.key.as_ref().map_or(0, Vec::len)
            + headers
    }
}
