//! The Iceberg table layer shared by `icefall-writer` and `icefall-optimizer`.
//!
//! Everything that reads or writes table metadata lives here once: catalog connections
//! ([`catalog`]), storage ([`storage`]), table creation from a declared layout ([`create`]),
//! the writer state a table carries ([`state`], [`offsets`], every key in [`contract`]) and our own commit path
//! ([`commit`]), which swaps metadata in with a compare-and-swap on the catalog and re-checks
//! the caller's requirements against every base it builds on.
#![warn(missing_docs)]

pub mod catalog;
pub mod column_stats;
pub mod commit;
pub mod config;
pub mod contract;
pub mod create;
mod error;
pub mod fault;
pub mod files;
pub mod freshness;
pub mod health;
pub mod journal;
pub mod locations;
pub mod offsets;
pub mod orc;
pub mod partition_values;
pub mod position_deletes;
pub mod reachable;
pub mod read;
pub mod retry;
pub mod state;
pub mod storage;

pub use catalog::{Catalog, LoadedTable};
pub use commit::{Change, CommitOutcome, PendingCommit};
pub use config::CatalogConfig;
pub use error::{Error, Result};
pub use iceberg::TableIdent;
pub use retry::{Backoff, RetryPolicy};
