//! One Kafka record as the pipeline carries it, and the partition it came from.

use std::sync::Arc;

use bytes::Bytes;

/// A topic-partition.
pub type TopicPartition = (Arc<str>, i32);

/// One Kafka record. Key and payload are slices of one buffer shared by the records polled
/// together (see `source::burst`): one allocation per burst instead of two per record.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    /// Record timestamp (CreateTime or LogAppendTime), epoch milliseconds.
    pub timestamp_ms: Option<i64>,
    pub key: Option<Bytes>,
    pub payload: Option<Bytes>,
    /// Read only when the pipeline writes a headers column (parsing them costs librdkafka an
    /// allocation per record, headers or not).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// When this process received the record, microseconds since the epoch.
    pub received_at_us: i64,
}

impl SourceRecord {
    /// Bytes this record holds in memory (payload, key, headers, bookkeeping).
    pub fn memory_size(&self) -> usize {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len) + 48).sum();
        std::mem::size_of::<SourceRecord>() + self.payload_len() + self.key.as_ref().map_or(0, Bytes::len) + headers
    }

    /// A record of topic `t` without key, value, headers or times, for tests.
    #[cfg(test)]
    pub fn bare(partition: i32, offset: i64) -> Self {
        SourceRecord {
            topic: Arc::from("t"),
            partition,
            offset,
            timestamp_ms: None,
            key: None,
            payload: None,
            headers: Vec::new(),
            received_at_us: 0,
        }
    }

    /// Bytes of the payload (0 for a tombstone).
    pub fn payload_len(&self) -> usize {
        self.payload.as_ref().map_or(0, Bytes::len)
    }
}
