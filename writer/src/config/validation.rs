//! Start-up checks of the config that need no network: each error names the key and the fix.

use std::collections::HashSet;
use std::time::Duration;

use super::{Config, MANAGED_KAFKA_KEYS, PipelineConfig, RecordFormat};
use crate::{Error, Result};

impl Config {
    /// Checks everything that can be checked without the network.
    pub fn validate(&self) -> Result<()> {
        self.catalog.validate()?;
        if self.kafka.brokers.trim().is_empty() {
            return Err(Error::Config("kafka.brokers is empty: set it to host:port of your brokers".into()));
        }
        for (key, fix) in MANAGED_KAFKA_KEYS {
            if self.kafka.properties.contains_key(*key) {
                return Err(Error::Config(format!("kafka.properties.\"{key}\" is managed by the writer: {fix}")));
            }
        }
        if let Some(msk) = &self.kafka.msk_iam {
            if msk.region.trim().is_empty() {
                return Err(Error::Config("kafka.msk_iam.region is empty: set the cluster's AWS region".into()));
            }
            for key in ["sasl.mechanism", "sasl.mechanisms"] {
                if let Some(mechanism) = self.kafka.properties.get(key).filter(|m| *m != "OAUTHBEARER") {
                    return Err(Error::Config(format!(
                        "kafka.properties.\"{key}\" = {mechanism:?} contradicts kafka.msk_iam (OAUTHBEARER): remove one"
                    )));
                }
            }
        }
        if let Some(reset) = self.kafka.properties.get("auto.offset.reset")
            && !["earliest", "smallest", "beginning", "latest", "largest", "end", "error"].contains(&reset.as_str())
        {
            return Err(Error::Config(format!(
                "kafka.properties.\"auto.offset.reset\" = {reset:?}: use \"earliest\", \"latest\" or \"error\""
            )));
        }
        self.metrics.validate(&self.pipelines)?;
        if self.pipelines.is_empty() {
            return Err(Error::Config("no [[pipelines]]: add at least one topics → table pipeline".into()));
        }
        let mut names = HashSet::new();
        let mut tables = HashSet::new();
        for p in &self.pipelines {
            let at = format!("pipelines[{}]", p.name);
            if p.name.trim().is_empty() {
                return Err(Error::Config("a pipeline has an empty name".into()));
            }
            if !names.insert(p.name.as_str()) {
                return Err(Error::Config(format!("{at}: two pipelines have this name; names must be unique")));
            }
            p.validate_routing(&at)?;
            let written: Vec<&str> = match p.route_field {
                Some(_) => p.routes.keys().map(String::as_str).collect(),
                None => vec![p.table.as_str()],
            };
            for table in written {
                if !tables.insert(table) {
                    return Err(Error::Config(format!(
                        "{at}: table {table:?} is written by another pipeline too; give one pipeline all its topics"
                    )));
                }
            }
            if p.route_field.is_none() {
                icefall_table::catalog::parse_ident(&p.table).map_err(|e| Error::Config(format!("{at}.table: {e}")))?;
            }
            if let Some(dlq) = &p.dead_letter_table {
                icefall_table::catalog::parse_ident(dlq)
                    .map_err(|e| Error::Config(format!("{at}.dead_letter_table: {e}")))?;
            }
            if p.checkpoint_interval < Duration::from_millis(100) {
                return Err(Error::Config(format!(
                    "{at}.checkpoint_interval = {:?} is too short: use at least 100ms (seconds to minutes is typical)",
                    p.checkpoint_interval
                )));
            }
            for (key, value) in [("writers", p.writers), ("min_writers", p.min_writers), ("max_writers", p.max_writers)]
            {
                if let Some(w) = value
                    && !(1..=256).contains(&w)
                {
                    return Err(Error::Config(format!("{at}.{key} = {w}: use 1 to 256")));
                }
            }
            if p.writers.is_some() && (p.min_writers.is_some() || p.max_writers.is_some()) {
                return Err(Error::Config(format!(
                    "{at}: set either writers (a fixed pool) or min_writers/max_writers (an adaptive one)"
                )));
            }
            let (min, max) = p.writer_bounds();
            if min > max {
                return Err(Error::Config(format!("{at}: min_writers = {min} is above max_writers = {max}")));
            }
            if p.max_buffered_bytes < 1024 * 1024 {
                return Err(Error::Config(format!(
                    "{at}.max_buffered_bytes = {}: use at least 1 MiB (1048576); 64–512 MiB is typical",
                    p.max_buffered_bytes
                )));
            }
            if p.backpressure.max_checkpoint_interval < p.checkpoint_interval {
                return Err(Error::Config(format!(
                    "{at}.backpressure.max_checkpoint_interval = {:?} is below checkpoint_interval = {:?}: \
                     raise it (it is the most backpressure may lengthen checkpoints to)",
                    p.backpressure.max_checkpoint_interval, p.checkpoint_interval
                )));
            }
            if p.max_open_files_per_writer == 0 {
                return Err(Error::Config(format!(
                    "{at}.max_open_files_per_writer must be at least 1 (64 is the default)"
                )));
            }
            if p.target_file_size_bytes == Some(0) {
                return Err(Error::Config(format!("{at}.target_file_size_bytes must be positive")));
            }
            self.validate_format(p, &at)?;
        }
        Ok(())
    }
}

impl Config {
    fn validate_format(&self, p: &PipelineConfig, at: &str) -> Result<()> {
        if p.route_field.is_some() && p.format != RecordFormat::Json {
            return Err(Error::Config(format!("{at}.route_field: only JSON records are routed by a field for now")));
        }
        if p.evolve && p.format != RecordFormat::Json {
            return Err(Error::Config(format!(
                "{at}.evolve: only JSON pipelines take it; Protobuf and Avro tables always follow their source schema"
            )));
        }
        let needs_registry = match p.format {
            RecordFormat::Json => {
                if p.protobuf.is_some() || p.avro.is_some() {
                    return Err(Error::Config(format!(
                        "{at}: [protobuf]/[avro] settings given, but format = \"json\"; set the format"
                    )));
                }
                if p.schema.is_empty() == p.schema_file.is_none() {
                    return Err(Error::Config(format!("{at}: set exactly one of `schema` or `schema_file`")));
                }
                // Builds the schema and partition spec now so a bad declaration fails at start-up.
                p.layout()?;
                false
            }
            RecordFormat::Protobuf => {
                let Some(proto) = &p.protobuf else {
                    return Err(Error::Config(format!(
                        "{at}: format = \"protobuf\" needs a [pipelines.protobuf] section (descriptor_set or \
                         proto_files, and message; or neither, to use the schema registry)"
                    )));
                };
                if proto.descriptor_set.is_some() && !proto.proto_files.is_empty() {
                    return Err(Error::Config(format!("{at}.protobuf: set descriptor_set or proto_files, not both")));
                }
                if !proto.uses_registry() && proto.message.is_none() {
                    return Err(Error::Config(format!(
                        "{at}.protobuf.message: name the message type, e.g. \"acme.events.Click\""
                    )));
                }
                proto.uses_registry()
            }
            RecordFormat::Avro => p.avro.as_ref().is_none_or(|a| a.schema_file.is_none()),
        };
        if p.format != RecordFormat::Json && (!p.schema.is_empty() || p.schema_file.is_some()) {
            return Err(Error::Config(format!(
                "{at}: `schema`/`schema_file` declare JSON columns; a {:?} table takes its columns from the \
                 source schema: remove them",
                p.format
            )));
        }
        if needs_registry && self.schema_registry.is_none() {
            return Err(Error::Config(format!(
                "{at}: records with schema ids need [schema_registry] url = \"http://…\" (or give a fixed schema: \
                 protobuf.descriptor_set / protobuf.proto_files / avro.schema_file)"
            )));
        }
        if p.format != RecordFormat::Json {
            // Reads and compiles fixed schemas now so a bad file fails at start-up.
            crate::schema::sources::SourceSchemas::load(self, p)?;
        }
        Ok(())
    }
}
