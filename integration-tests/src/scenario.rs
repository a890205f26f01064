//! One test's world: a temp dir (catalog + warehouse), a broker, a topic and a table name,
//! and the writer config that connects them.

use std::path::PathBuf;

use crate::broker::Broker;
use crate::unique;
use crate::writer::{PipelineSpec, events_pipeline};

pub const PARTITIONS: i32 = 4;

pub struct Scenario {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub broker: Broker,
    pub topic: String,
    pub table: String,
    pub writer_config: PathBuf,
}

impl Scenario {
    /// A broker with a fresh 4-partition topic and a writer config checkpointing every `checkpoint`.
    pub fn new(name: &str, checkpoint: &str) -> Scenario {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let broker = Broker::start();
        let topic = unique(name);
        broker.create_topic(&topic, PARTITIONS as u32);
        let table = format!("{}.events", unique("ns"));
        let writer_config = events_pipeline(
            &dir,
            &PipelineSpec {
                bootstrap: &broker.bootstrap(),
                topic: &topic,
                table: &table,
                checkpoint,
                writers: 2,
                catalog_uri: None,
            },
        );
        Scenario { _tmp: tmp, dir, broker, topic, table, writer_config }
    }
}
