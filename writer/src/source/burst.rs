//! One burst of polled messages: their keys and payloads are copied into one buffer, and the
//! records handed on share it. Two allocations (and two frees, on another thread) per record
//! were a fifth of the consumer thread's time; this is one per burst.

use std::ops::Range;

use bytes::Bytes;

use crate::record::SourceRecord;

#[derive(Debug, Default)]
pub(super) struct Burst {
    bytes: Vec<u8>,
    records: Vec<Parked>,
    /// The size of the last burst's buffer: the next one starts there (no regrowth).
    last_size: usize,
}

/// A record without key and payload yet, and where those are in the burst's bytes.
#[derive(Debug)]
struct Parked {
    record: SourceRecord,
    key: Option<Range<usize>>,
    payload: Option<Range<usize>>,
}

impl Burst {
    /// Adds a record (its `key` and `payload` unset) with the bytes of its key and payload.
    pub(super) fn push(&mut self, record: SourceRecord, key: Option<&[u8]>, payload: Option<&[u8]>) {
        let key = key.map(|k| self.copy(k));
        let payload = payload.map(|p| self.copy(p));
        self.records.push(Parked { record, key, payload });
    }

    fn copy(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The burst's records, their keys and payloads slices of one shared buffer.
    pub(super) fn take(&mut self) -> impl Iterator<Item = SourceRecord> + '_ {
        self.last_size = self.last_size.max(self.bytes.len());
        let mut bytes = std::mem::replace(&mut self.bytes, Vec::with_capacity(self.last_size));
        // A short burst (a quiet topic) must not pin a buffer sized for a full one: the memory
        // budget counts the bytes records hold, not the capacity behind them.
        if bytes.capacity() > 2 * bytes.len() {
            bytes.shrink_to_fit();
        }
        let shared = Bytes::from(bytes);
        self.records.drain(..).map(move |Parked { mut record, key, payload }| {
            record.key = key.map(|r| shared.slice(r));
            record.payload = payload.map(|r| shared.slice(r));
            record
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare(offset: i64) -> SourceRecord {
        SourceRecord::bare(0, offset)
    }

    #[test]
    fn each_record_gets_its_own_key_and_payload_back() {
        let mut burst = Burst::default();
        burst.push(bare(0), Some(b"k0"), Some(b"{\"a\":1}"));
        burst.push(bare(1), None, None); // a tombstone without key
        burst.push(bare(2), Some(b""), Some("é/?#%".as_bytes()));
        let records: Vec<SourceRecord> = burst.take().collect();
        assert!(burst.is_empty());
        let got: Vec<_> = records.iter().map(|r| (r.offset, r.key.as_deref(), r.payload.as_deref())).collect();
        assert_eq!(
            got,
            [
                (0, Some(&b"k0"[..]), Some(&b"{\"a\":1}"[..])),
                (1, None, None),
                (2, Some(&b""[..]), Some("é/?#%".as_bytes()))
            ]
        );
        // The next burst starts empty and does not see the last one's bytes.
        burst.push(bare(3), None, Some(b"x"));
        let next: Vec<SourceRecord> = burst.take().collect();
        assert_eq!(next[0].payload.as_deref(), Some(&b"x"[..]));
        assert_eq!(records[2].payload.as_deref(), Some("é/?#%".as_bytes()), "earlier records keep theirs");
    }
}
