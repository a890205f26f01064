//! Per-table maintenance policy: what `run` does to each table, read from the table's own
//! properties over the config file's defaults, so one scheduled job serves tables that need
//! different care. Iceberg's own properties keep their meaning (`write.target-file-size-bytes`,
//! `history.expire.*`, `commit.manifest.target-size-bytes`, `gc.enabled` are read where they
//! apply); the rest are `icefall.optimizer.*` ([`icefall_table::contract`]).

use std::time::Duration;

use iceberg::spec::TableMetadata;
use icefall_table::contract::{
    OPTIMIZER_COMPACT_ENABLED, OPTIMIZER_EXPIRE_ENABLED, OPTIMIZER_MIN_FILE_SIZE, OPTIMIZER_MIN_INPUT_FILES,
    OPTIMIZER_ORPHANS_ENABLED, OPTIMIZER_ORPHANS_OLDER_THAN_MS, OPTIMIZER_REWRITE_DELETES_ENABLED,
    OPTIMIZER_STATS_ENABLED, OPTIMIZER_ZORDER_COLUMNS,
};
use serde::Serialize;

use crate::{Config, Error, Result};

/// What `run` does to one table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TablePolicy {
    pub compact: bool,
    /// How compaction orders rows (`icefall.optimizer.compact.zorder-columns`).
    pub compact_strategy: crate::compact::Strategy,
    pub min_input_files: usize,
    pub min_file_size_bytes: Option<u64>,
    /// Merge small position delete files (with `min_input_files` per partition).
    pub rewrite_position_deletes: bool,
    /// Keep NDV statistics of the current snapshot.
    pub stats: bool,
    pub expire: bool,
    pub remove_orphans: bool,
    #[serde(with = "humantime_serde")]
    pub orphans_older_than: Duration,
    /// The table properties that set any of the above.
    pub from_table: Vec<String>,
}

impl TablePolicy {
    /// The policy of the table with these properties; a value that does not parse fails the
    /// table (naming the property), not the run.
    pub fn for_table(metadata: &TableMetadata, config: &Config) -> Result<TablePolicy> {
        let properties = metadata.properties();
        let mut from_table = Vec::new();
        let mut read = |key: &str| {
            let value = properties.get(key).map(|v| v.trim().to_string());
            if value.is_some() {
                from_table.push(key.to_string());
            }
            value
        };
        let flag = |key: &str, value: Option<String>| match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(invalid(metadata, key, other, "true or false")),
        };
        let number = |key: &str, value: Option<String>| -> Result<Option<u64>> {
            value.map(|v| v.parse::<u64>().map_err(|_| invalid(metadata, key, &v, "a whole number"))).transpose()
        };
        let compact = flag(OPTIMIZER_COMPACT_ENABLED, read(OPTIMIZER_COMPACT_ENABLED))?;
        // Read by the strategy below; noted here as a property that sets the policy.
        let _ = read(OPTIMIZER_ZORDER_COLUMNS);
        let compact_strategy = crate::compact::Strategy::for_table(None, metadata)?;
        let min_input_files = number(OPTIMIZER_MIN_INPUT_FILES, read(OPTIMIZER_MIN_INPUT_FILES))?
            .map_or(config.compact.min_input_files, |n| n as usize)
            .max(1);
        let min_file_size_bytes =
            number(OPTIMIZER_MIN_FILE_SIZE, read(OPTIMIZER_MIN_FILE_SIZE))?.or(config.compact.min_file_size_bytes);
        let rewrite_position_deletes =
            flag(OPTIMIZER_REWRITE_DELETES_ENABLED, read(OPTIMIZER_REWRITE_DELETES_ENABLED))?;
        let stats = flag(OPTIMIZER_STATS_ENABLED, read(OPTIMIZER_STATS_ENABLED))?;
        let expire = flag(OPTIMIZER_EXPIRE_ENABLED, read(OPTIMIZER_EXPIRE_ENABLED))?;
        let remove_orphans = flag(OPTIMIZER_ORPHANS_ENABLED, read(OPTIMIZER_ORPHANS_ENABLED))?;
        let orphans_older_than = number(OPTIMIZER_ORPHANS_OLDER_THAN_MS, read(OPTIMIZER_ORPHANS_OLDER_THAN_MS))?
            .map_or(config.orphans.older_than, Duration::from_millis);
        Ok(TablePolicy {
            compact,
            compact_strategy,
            min_input_files,
            min_file_size_bytes,
            rewrite_position_deletes,
            stats,
            expire,
            remove_orphans,
            orphans_older_than,
            from_table,
        })
    }

    /// One line for `status`.
    pub fn human(&self) -> String {
        let on = |b: bool| if b { "on" } else { "off" };
        let mut line = format!(
            "compact {} (min {} input files{}{}), rewrite position deletes {}, stats {}, expire {}, remove orphans {} (older than {})",
            on(self.compact),
            self.min_input_files,
            self.min_file_size_bytes.map(|b| format!(", files under {b} bytes")).unwrap_or_default(),
            match &self.compact_strategy {
                crate::compact::Strategy::BinPack => String::new(),
                zorder => format!(", {}", zorder.human()),
            },
            on(self.rewrite_position_deletes),
            on(self.stats),
            on(self.expire),
            on(self.remove_orphans),
            humantime::format_duration(self.orphans_older_than),
        );
        if !self.from_table.is_empty() {
            line.push_str(&format!("; from the table: {}", self.from_table.join(", ")));
        }
        line
    }
}

fn invalid(metadata: &TableMetadata, key: &str, value: &str, expected: &str) -> Error {
    Error::Refused(format!(
        "table property {key} = {value:?} on {}: expected {expected}; fix it with ALTER TABLE … SET TBLPROPERTIES",
        metadata.location()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(properties: &[(&str, &str)]) -> TableMetadata {
        let properties: serde_json::Map<String, serde_json::Value> =
            properties.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect();
        let json = serde_json::json!({
            "format-version": 2, "table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1",
            "location": "file:///t", "last-sequence-number": 0, "last-updated-ms": 0, "last-column-id": 1,
            "current-schema-id": 0, "schemas": [{"type": "struct", "schema-id": 0, "fields": [
                {"id": 1, "name": "id", "required": true, "type": "long"}]}],
            "default-spec-id": 0, "partition-specs": [{"spec-id": 0, "fields": []}], "last-partition-id": 999,
            "default-sort-order-id": 0, "sort-orders": [{"order-id": 0, "fields": []}],
            "properties": properties,
        });
        serde_json::from_value(json).expect("metadata")
    }

    #[test]
    fn table_properties_win_over_the_config_and_bad_values_name_the_property() {
        let config = Config::default();
        let defaults = TablePolicy::for_table(&metadata(&[]), &config).expect("policy");
        assert!(defaults.compact && defaults.expire && defaults.remove_orphans);
        assert_eq!(defaults.min_input_files, config.compact.min_input_files);
        assert_eq!(defaults.orphans_older_than, config.orphans.older_than);
        assert!(defaults.from_table.is_empty());

        let own = metadata(&[
            (OPTIMIZER_COMPACT_ENABLED, "FALSE"),
            (OPTIMIZER_MIN_INPUT_FILES, "12"),
            (OPTIMIZER_ORPHANS_OLDER_THAN_MS, "86400000"),
            (OPTIMIZER_EXPIRE_ENABLED, "false"),
        ]);
        let policy = TablePolicy::for_table(&own, &config).expect("policy");
        assert!(!policy.compact && !policy.expire && policy.remove_orphans);
        assert_eq!(policy.min_input_files, 12);
        assert_eq!(policy.orphans_older_than, Duration::from_secs(86_400));
        assert_eq!(policy.from_table.len(), 4);
        assert!(policy.human().contains("compact off (min 12 input files)"), "{}", policy.human());

        for (key, value) in [(OPTIMIZER_MIN_INPUT_FILES, "lots"), (OPTIMIZER_COMPACT_ENABLED, "maybe")] {
            let e = TablePolicy::for_table(&metadata(&[(key, value)]), &config).expect_err("bad");
            assert!(e.to_string().contains(key) && e.to_string().contains(value), "{e}");
        }
    }
}
