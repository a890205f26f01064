//! One test's world: a temp dir (catalog + warehouse), a broker, a topic and a table name,
//! and the writer config that connects them — on the SQLite catalog in the temp dir, or on a
//! PostgreSQL server of its own.

use std::path::PathBuf;

use icefall_table::catalog::Catalog;

use crate::broker::Broker;
use crate::postgres::Postgres;
use crate::tables;
use crate::unique;
use crate::writer::{PipelineSpec, events_pipeline};

pub const PARTITIONS: i32 = 4;

pub struct Scenario {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub broker: Broker,
    /// The catalog's database server, when it is PostgreSQL (`None`: SQLite in `dir`).
    pub postgres: Option<Postgres>,
    pub topic: String,
    pub table: String,
    pub writer_config: PathBuf,
}

impl Scenario {
    /// A broker with a fresh 4-partition topic and a writer config checkpointing every
    /// `checkpoint`, on a SQLite catalog.
    pub fn new(name: &str, checkpoint: &str) -> Scenario {
        Self::build(name, checkpoint, None)
    }

    /// The same on a PostgreSQL catalog (a server started for this test).
    pub fn on_postgres(name: &str, checkpoint: &str) -> Scenario {
        Self::build(name, checkpoint, Some(Postgres::start()))
    }

    fn build(name: &str, checkpoint: &str, postgres: Option<Postgres>) -> Scenario {
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
                catalog_uri: postgres.as_ref().map(Postgres::url),
            },
        );
        Scenario { _tmp: tmp, dir, broker, postgres, topic, table, writer_config }
    }

    /// The catalog URI for tools that take one (`None`: the SQLite default in `dir`).
    pub fn catalog_uri(&self) -> Option<String> {
        self.postgres.as_ref().map(Postgres::url)
    }

    /// A fresh connection to the scenario's catalog.
    pub async fn catalog(&self) -> Catalog {
        match self.catalog_uri() {
            Some(uri) => tables::catalog_at(&uri, &self.dir).await,
            None => tables::catalog(&self.dir).await,
        }
    }
}
