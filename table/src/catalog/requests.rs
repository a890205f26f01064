//! What the catalog was asked and how it answered: a count and the time taken per operation
//! and outcome, kept by each [`Catalog`](super::Catalog) and read at scrape time by whoever
//! exports metrics (the writer's `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::{Error, Result};

/// A kind of catalog request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Reading a table's current metadata (pointer and file).
    Load,
    /// Publishing a new table state (the SQL swap, or the REST commit request).
    Commit,
    /// Creating a table.
    Create,
    /// Listing a namespace's tables.
    ListTables,
    /// Creating a namespace if missing.
    EnsureNamespace,
    /// Removing a table from the catalog.
    DropTable,
}

const OPERATIONS: [Operation; 6] = [
    Operation::Load,
    Operation::Commit,
    Operation::Create,
    Operation::ListTables,
    Operation::EnsureNamespace,
    Operation::DropTable,
];

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Load => "load",
            Operation::Commit => "commit",
            Operation::Create => "create",
            Operation::ListTables => "list_tables",
            Operation::EnsureNamespace => "ensure_namespace",
            Operation::DropTable => "drop_table",
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered as asked.
    Ok,
    /// The table is not there (an answer, not a failure).
    NotFound,
    /// A commit lost the race: another commit came first (the caller rebases).
    Conflict,
    /// The catalog or its storage failed (unreachable, refused, timed out).
    Error,
    /// The caller stopped waiting before an answer came (a probe's timeout, a shutdown).
    Cancelled,
}

const OUTCOMES: [Outcome; 5] = [Outcome::Ok, Outcome::NotFound, Outcome::Conflict, Outcome::Error, Outcome::Cancelled];

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::NotFound => "not_found",
            Outcome::Conflict => "conflict",
            Outcome::Error => "error",
            Outcome::Cancelled => "cancelled",
        }
    }

    /// The outcome of a result whose `Ok` is success.
    pub(crate) fn of<T>(result: &Result<T>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(Error::TableNotFound(_)) => Outcome::NotFound,
            Err(_) => Outcome::Error,
        }
    }
}

#[derive(Debug, Default)]
struct Cell {
    count: AtomicU64,
    micros: AtomicU64,
}

/// Request counts and times of one catalog connection.
#[derive(Debug, Default)]
pub struct CatalogRequests {
    cells: [[Cell; OUTCOMES.len()]; OPERATIONS.len()],
}

/// One (operation, outcome) pair's totals.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestCount {
    /// `load`, `commit`, `create`, `list_tables`, `ensure_namespace` or `drop_table`.
    pub operation: &'static str,
    /// `ok`, `not_found`, `conflict` or `error`.
    pub outcome: &'static str,
    /// Requests so far.
    pub count: u64,
    /// Their time, summed.
    pub seconds: f64,
}

/// One request under way: recorded when it ends, as `cancelled` if its future is dropped first.
pub(crate) struct InFlight<'a> {
    requests: &'a CatalogRequests,
    operation: Operation,
    started: std::time::Instant,
    ended: bool,
}

impl InFlight<'_> {
    pub(crate) fn end(mut self, outcome: Outcome) {
        self.ended = true;
        self.requests.record(self.operation, outcome, self.started.elapsed());
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.requests.record(self.operation, Outcome::Cancelled, self.started.elapsed());
        }
    }
}

impl CatalogRequests {
    pub(crate) fn start(&self, operation: Operation) -> InFlight<'_> {
        InFlight { requests: self, operation, started: std::time::Instant::now(), ended: false }
    }

    pub(crate) fn record(&self, operation: Operation, outcome: Outcome, took: Duration) {
        let cell = &self.cells[operation as usize][outcome as usize];
        cell.count.fetch_add(1, Ordering::Relaxed);
        cell.micros.fetch_add(took.as_micros().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
    }

    /// Every pair that has seen a request.
    pub fn counts(&self) -> Vec<RequestCount> {
        let mut out = Vec::new();
        for operation in OPERATIONS {
            for outcome in OUTCOMES {
                let cell = &self.cells[operation as usize][outcome as usize];
                let count = cell.count.load(Ordering::Relaxed);
                if count > 0 {
                    let seconds = cell.micros.load(Ordering::Relaxed) as f64 / 1e6;
                    out.push(RequestCount { operation: operation.name(), outcome: outcome.name(), count, seconds });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_per_operation_and_outcome() {
        let requests = CatalogRequests::default();
        requests.record(Operation::Load, Outcome::Ok, Duration::from_millis(5));
        requests.record(Operation::Load, Outcome::Ok, Duration::from_millis(15));
        requests.record(Operation::Commit, Outcome::Conflict, Duration::from_millis(2));
        let missing: Result<()> = Err(Error::TableNotFound("a.b".into()));
        requests.record(Operation::Load, Outcome::of(&missing), Duration::ZERO);
        drop(requests.start(Operation::ListTables)); // a caller that stopped waiting
        let counts = requests.counts();
        let shown: Vec<(&str, &str, u64)> = counts.iter().map(|c| (c.operation, c.outcome, c.count)).collect();
        assert_eq!(
            shown,
            [("load", "ok", 2), ("load", "not_found", 1), ("commit", "conflict", 1), ("list_tables", "cancelled", 1)]
        );
        assert_eq!((counts[0].seconds, counts[2].seconds), (0.02, 0.002), "times add up");
    }
}
