//! Test harness: a real Kafka-protocol broker (Tansu) on 127.0.0.1, writer processes that can
//! be stopped, killed and restarted, and readers that count what landed in the tables.
//!
//! Every test starts its own broker on a free port and uses its own topic, namespace and
//! warehouse, so tests run in parallel without sharing state.

pub mod broker;
pub mod cloud;
pub mod deletes;
pub mod encode;
pub mod engine_server;
pub mod engines;
pub mod generated;
pub mod http;
pub mod optimizer;
pub mod postgres;
pub mod process;
pub mod produce;
pub mod registry;
pub mod rest;
pub mod s3;
pub mod scenario;
pub mod tables;
pub mod tls;
pub mod writer;

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Tools installed by `scripts/setup.sh`.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("ICEFALL_TOOLS").map(PathBuf::from).unwrap_or_else(|| repo_root().join(".tools"))
}

/// A unique, readable name for a test's topic/namespace.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// A small deterministic generator (tests must not depend on a random crate's API).
pub struct Lcg(u64);
impl Lcg {
    pub fn new(seed: u64) -> Self {
        Lcg(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }
    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}
