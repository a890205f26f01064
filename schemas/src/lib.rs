//! Source schemas and record decoding into Arrow. Pure: no Kafka, no catalog.
//!
//! - [`declare`]: a schema declared in config (`name`, `type`, `required`) → Iceberg schema with
//!   field ids assigned depth-first;
//! - [`json`]: JSON records → Arrow `RecordBatch` shaped by an Iceberg schema, with one error per
//!   bad record (the caller dead-letters it) instead of failing the batch.

pub mod declare;
mod error;
pub mod json;
pub mod metadata;
mod value;

pub use error::{Error, RecordError, Result};
