//! The memory budget of a pipeline's buffered records. Every batch the source hands on holds a
//! [`Lease`] for its bytes until a writer has written it (or the splitter dropped it); the
//! source pauses its partitions while the budget is used up, so a backlog of any size is read
//! at the speed it is written instead of piling up in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
}
