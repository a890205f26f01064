//! Developer helper for the quickstart: produce sample events, inspect a table.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;
use icefall_integration_tests::produce::{TestProducer, event_json};
use icefall_integration_tests::tables;
use icefall_table::catalog::parse_ident;

#[derive(Parser)]
#[command(name = "icefall-dev", about = "Quickstart helper: sample events and table inspection")]
enum Cli {
    /// Produce sample JSON events (ids `from..from+count`, round-robin over partitions).
    Produce {
        #[arg(long)]
        brokers: String,
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 10_000)]
        count: i64,
        #[arg(long, default_value_t = 0)]
        from: i64,
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        /// Make every Nth record malformed (0 = none), to show the dead-letter table.
        #[arg(long, default_value_t = 0)]
        bad_every: i64,
    },
    /// Print a table's snapshots, offsets and row count.
    Inspect {
        /// Folder holding catalog.db and warehouse/.
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        table: String,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    match Cli::parse() {
        Cli::Produce { brokers, topic, count, from, partitions, bad_every } => {
            let producer = TestProducer::new(&brokers, &topic);
            let mut per_partition: BTreeMap<i32, i64> = BTreeMap::new();
            for id in from..from + count {
                let partition = (id % i64::from(partitions)) as i32;
                let payload = if bad_every > 0 && id % bad_every == bad_every - 1 {
                    format!("{{\"id\": {id}, \"ts\": \"not a time\"}}")
                } else {
                    event_json(id)
                };
                producer.send(partition, &id.to_string(), payload.as_bytes());
                *per_partition.entry(partition).or_default() += 1;
            }
            producer.flush();
            println!("produced {count} events to {topic}: {per_partition:?}");
        }
        Cli::Inspect { dir, table } => {
            let catalog = tables::catalog(&dir).await;
            let loaded = match catalog.load(&parse_ident(&table).unwrap_or_else(|e| panic!("{e}"))).await {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            };
            println!("table {table} at {}", loaded.metadata_location);
            let mut snapshots: Vec<_> = loaded.metadata.snapshots().collect();
            snapshots.sort_by_key(|s| s.timestamp_ms());
            for s in snapshots {
                let summary = &s.summary().additional_properties;
                println!(
                    "  snapshot {:>20}  {:?}  +{} rows  +{} files  checkpoint {}  offsets {}",
                    s.snapshot_id(),
                    s.summary().operation,
                    summary.get("added-records").map_or("0", String::as_str),
                    summary.get("added-data-files").map_or("0", String::as_str),
                    summary.get("icefall.checkpoint").map_or("-", String::as_str),
                    summary.get("icefall.offsets").map_or("-", String::as_str),
                );
            }
            let rows: usize = tables::scan(&catalog, &table, &[]).await.iter().map(|b| b.num_rows()).sum();
            println!("rows: {rows}");
        }
    }
}
