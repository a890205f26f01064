//! The end-to-end suite, one test binary: one link instead of one per file, and one pool of
//! long-lived Spark servers (`engine_server`) for every test that reads through Spark. Each
//! module is one area; run one with `cargo test -p icefall-integration-tests --test end_to_end exactly_once::`.

mod cli;
mod cloud_stores;
mod conformance;
mod crash_cleanup;
mod deploy;
mod exactly_once;
mod formats;
mod freshness;
mod interop;
mod json_evolution;
mod operations;
mod optimizer;
mod orc;
mod outages;
mod rest_catalog;
mod routing;
mod s3;
mod scale_out;
mod scaling;
mod spark_writes;
mod statistics;
mod zorder;
