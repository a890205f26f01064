//! The memory budget of a pipeline's buffered records. Every batch the source hands on holds a
//! [`Lease`] for its bytes until a writer has written it (or the splitter dropped it); the
//! source pauses its partitions while the budget is used up, so a backlog of any size is read
//! at the speed it is written instead of piling up in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A pipeline's `max_buffered_bytes` shared out: librdkafka's prefetch queue (a quarter, at
/// least 2 MiB and at most 64 MiB) and the records read from it but not yet written (the rest),
/// so the two together stay within what the user set.
///
/// librdkafka holds about twice what its queue limit counts: the limit counts message bytes,
/// while the memory is the fetch responses they sit in plus an operation of ~200 bytes per
/// message (a heap profile of a 3M-event backlog of ~430-byte events: 53 MiB of fetch buffers
/// and 33 MiB of operations under a 64 MiB limit). So its limit is half its share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferShares {
    /// `queued.max.messages.kbytes` for librdkafka: half of its share.
    pub kafka_queue_kbytes: usize,
    /// The [`MemoryBudget`] of records handed on.
    pub records: usize,
}

impl BufferShares {
    pub fn of(max_buffered_bytes: usize) -> Self {
        let kafka_share = (max_buffered_bytes / 4).clamp(2 << 20, 64 << 20);
        let records = max_buffered_bytes.saturating_sub(kafka_share).max(max_buffered_bytes / 2);
        BufferShares { kafka_queue_kbytes: kafka_share / 2 / 1024, records }
    }
}

#[derive(Debug, Clone)]
pub struct MemoryBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    used: AtomicUsize,
    limit: usize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Self {
        MemoryBudget { inner: Arc::new(Inner { used: AtomicUsize::new(0), limit: limit.max(1) }) }
    }

    /// Accounts `bytes` until the lease is dropped.
    pub fn lease(&self, bytes: usize) -> Lease {
        self.inner.used.fetch_add(bytes, Ordering::Relaxed);
        Lease { inner: self.inner.clone(), bytes }
    }

    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// The source must stop fetching.
    pub fn exhausted(&self) -> bool {
        self.used() >= self.inner.limit
    }

    /// The source may fetch again (hysteresis: well below the limit, so it does not flap).
    pub fn recovered(&self) -> bool {
        self.used() <= self.inner.limit / 2
    }
}

/// Bytes of buffered records, released when dropped.
#[derive(Debug)]
pub struct Lease {
    inner: Arc<Inner>,
    bytes: usize,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.inner.used.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_account_until_dropped_with_hysteresis() {
        let budget = MemoryBudget::new(100);
        let a = budget.lease(60);
        assert!(!budget.exhausted());
        let b = budget.lease(55);
        assert!(budget.exhausted());
        drop(a);
        assert!(!budget.exhausted() && !budget.recovered(), "55 of 100: not exhausted, not yet recovered");
        drop(b);
        assert!(budget.recovered());
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn the_kafka_queue_and_the_records_share_the_budget() {
        const MIB: usize = 1024 * 1024;
        let default = BufferShares::of(256 * MIB);
        assert_eq!(
            (default.kafka_queue_kbytes, default.records),
            (32 * 1024, 192 * MIB),
            "a queue limit of half its share"
        );
        let large = BufferShares::of(1024 * MIB);
        assert_eq!((large.kafka_queue_kbytes, large.records), (32 * 1024, 960 * MIB), "the queue is capped");
        let small = BufferShares::of(2 * MIB);
        assert_eq!((small.kafka_queue_kbytes, small.records), (1024, MIB), "librdkafka's floor, half each");
    }
}
