//! Source schemas and record decoding into Arrow. Pure: no Kafka, no catalog.
//!
//! - [`declare`]: a schema declared in config (`name`, `type`, `required`) → Iceberg schema with
//!   field ids assigned depth-first;
//! - [`json`]: JSON records → Arrow `RecordBatch` shaped by an Iceberg schema, with one error per
//!   bad record (the caller dead-letters it) instead of failing the batch;
//! - [`proto`], [`avro`]: binary formats decoded straight into column builders;
//! - [`evolve`]: source schemas as format-neutral fields, stable field ids, schema evolution;
//! - [`decode`]: one decoder type over all formats, with Confluent schema-id framing.
#![warn(missing_docs)]

pub mod avro;
mod columns;
pub mod declare;
pub mod decode;
mod decoded;
mod error;
pub mod evolve;
pub mod json;
pub mod json_schema;
pub mod metadata;
pub mod proto;
mod value;

#[cfg(test)]
mod testing;

pub use error::{Error, Reason, RecordError, Result};
