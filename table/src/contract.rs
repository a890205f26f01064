//! The on-table contract: every key, tag, property and folder Icefall reads or writes on a
//! table, in one place. Other engines see these; changing one is a format change. The table in
//! `docs/exactly-once.md` ("The on-table contract") is kept in step with [`KEYS`] by a test.

/// Where a key lives on the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A snapshot summary property.
    Summary,
    /// A snapshot reference (tag).
    Tag,
    /// A table property.
    Property,
    /// A folder under the table location.
    Folder,
}

/// One entry of the contract.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The key, tag, property or folder name.
    pub name: &'static str,
    /// Where it lives.
    pub kind: Kind,
    /// Who writes it and what it holds.
    pub meaning: &'static str,
}

/// `{"topic": {"partition": next_offset}}`: the next offset to read per partition.
pub const OFFSETS: &str = "icefall.offsets";
/// Which writer made the snapshot (the configured writer id).
pub const WRITER_ID: &str = "icefall.writer-id";
/// The writer process instance (a fresh UUID per start).
pub const WRITER_INSTANCE: &str = "icefall.writer-instance";
/// The writer's checkpoint number within its process instance.
pub const CHECKPOINT: &str = "icefall.checkpoint";
/// Unique id of the commit; a retry after an unknown outcome searches for it.
pub const COMMIT_ID: &str = "icefall.commit-id";
/// How many writers the pool ran when the checkpoint closed.
pub const WRITERS: &str = "icefall.writers";
/// The checkpoint interval in force, milliseconds (backpressure shows here).
pub const CHECKPOINT_INTERVAL_MS: &str = "icefall.checkpoint-interval-ms";
/// Newest committed event time per partition.
pub const EVENT_TIME_MAX: &str = "icefall.event-time-max";
/// Newest committed arrival (Kafka) time per partition.
pub const ARRIVAL_TIME_MAX: &str = "icefall.arrival-time-max";
/// Minimum over partitions of [`EVENT_TIME_MAX`], RFC 3339.
pub const EVENT_WATERMARK: &str = "icefall.watermark.event-time";
/// Minimum over partitions of [`ARRIVAL_TIME_MAX`], RFC 3339.
pub const ARRIVAL_WATERMARK: &str = "icefall.watermark.arrival-time";
/// Records of this checkpoint whose event time was behind the event watermark by more than
/// the allowed lateness (still written, to their event-time partition).
pub const LATE_RECORDS: &str = "icefall.late-records";
/// The maintenance operation that made the snapshot (`compact`, `offsets-reset`).
pub const OPERATION: &str = "icefall.operation";
/// What `icefall-writer offsets set|reset` moved: topic → partition → `[from, to]`.
pub const OFFSETS_RESET: &str = "icefall.offsets-reset";
/// The tag every writer commit moves to its snapshot. Engines' snapshot expiry (Spark's
/// `expire_snapshots` included) keeps tagged snapshots, so the newest snapshot holding the
/// offsets survives any expiry and stays in main's ancestry.
pub const STATE_TAG: &str = "icefall-writer-state";
/// Table property: source field → table field id, so renames at the source follow by id.
pub const FIELD_IDS: &str = "icefall.field-ids";
/// Table property: the newest registry schema id the table's shape follows. Records of older
/// ids (an old producer) are mapped into the table without undoing newer changes.
pub const SOURCE_SCHEMA_ID: &str = "icefall.source-schema-id";
/// Table property: `false` keeps the optimizer's `run` from compacting the table.
pub const OPTIMIZER_COMPACT_ENABLED: &str = "icefall.optimizer.compact.enabled";
/// Table property: a partition is compacted by `run` once it has this many small files.
pub const OPTIMIZER_MIN_INPUT_FILES: &str = "icefall.optimizer.compact.min-input-files";
/// Table property: files below this size are compaction candidates for `run`.
pub const OPTIMIZER_MIN_FILE_SIZE: &str = "icefall.optimizer.compact.min-file-size-bytes";
/// Table property: `a,b`: compaction z-orders the table's rows by these columns (unless
/// `--strategy` says otherwise).
pub const OPTIMIZER_ZORDER_COLUMNS: &str = "icefall.optimizer.compact.zorder-columns";
/// Table property: `a,b`: the columns `stats` sketches (default: every primitive column but
/// wide strings and binaries).
pub const OPTIMIZER_STATS_COLUMNS: &str = "icefall.optimizer.stats.columns";
/// Table property: `false` keeps `run` from computing NDV statistics.
pub const OPTIMIZER_STATS_ENABLED: &str = "icefall.optimizer.stats.enabled";
/// Table property: `false` keeps `run` from rewriting position delete files.
pub const OPTIMIZER_REWRITE_DELETES_ENABLED: &str = "icefall.optimizer.rewrite-position-deletes.enabled";
/// Table property: `false` keeps `run` from expiring snapshots.
pub const OPTIMIZER_EXPIRE_ENABLED: &str = "icefall.optimizer.expire.enabled";
/// Table property: `false` keeps `run` from removing orphan files.
pub const OPTIMIZER_ORPHANS_ENABLED: &str = "icefall.optimizer.remove-orphans.enabled";
/// Table property: files younger than this (ms) are never orphans for `run`.
pub const OPTIMIZER_ORPHANS_OLDER_THAN_MS: &str = "icefall.optimizer.remove-orphans.older-than-ms";
/// Folder of checkpoint journals, under the table location.
pub const JOURNAL_DIR: &str = "icefall-journal";

/// Every entry, in the order the docs list them.
pub const KEYS: &[Key] = &[
    Key { name: OFFSETS, kind: Kind::Summary, meaning: "the table's full offset map, every partition ever committed" },
    Key { name: WRITER_ID, kind: Kind::Summary, meaning: "the configured writer_id" },
    Key { name: WRITER_INSTANCE, kind: Kind::Summary, meaning: "a UUID per process start" },
    Key { name: CHECKPOINT, kind: Kind::Summary, meaning: "the checkpoint number within that instance" },
    Key { name: COMMIT_ID, kind: Kind::Summary, meaning: "a UUIDv7 unique to the commit" },
    Key { name: WRITERS, kind: Kind::Summary, meaning: "writers in the pool when the checkpoint closed" },
    Key { name: CHECKPOINT_INTERVAL_MS, kind: Kind::Summary, meaning: "the checkpoint interval in force" },
    Key { name: EVENT_TIME_MAX, kind: Kind::Summary, meaning: "newest committed event time per partition" },
    Key { name: ARRIVAL_TIME_MAX, kind: Kind::Summary, meaning: "newest committed arrival time per partition" },
    Key { name: EVENT_WATERMARK, kind: Kind::Summary, meaning: "event-time watermark (RFC 3339)" },
    Key { name: ARRIVAL_WATERMARK, kind: Kind::Summary, meaning: "arrival-time watermark (RFC 3339)" },
    Key { name: LATE_RECORDS, kind: Kind::Summary, meaning: "late records in this checkpoint" },
    Key { name: OPERATION, kind: Kind::Summary, meaning: "the maintenance operation of the snapshot" },
    Key { name: OFFSETS_RESET, kind: Kind::Summary, meaning: "the partitions an offsets reset moved, from → to" },
    Key { name: STATE_TAG, kind: Kind::Tag, meaning: "the newest writer snapshot, kept by any engine's expiry" },
    Key { name: FIELD_IDS, kind: Kind::Property, meaning: "source field → table field id" },
    Key { name: SOURCE_SCHEMA_ID, kind: Kind::Property, meaning: "the newest registry schema id the table follows" },
    Key { name: OPTIMIZER_COMPACT_ENABLED, kind: Kind::Property, meaning: "`false`: `run` does not compact the table" },
    Key {
        name: OPTIMIZER_MIN_INPUT_FILES,
        kind: Kind::Property,
        meaning: "small files a partition needs before `run` compacts it",
    },
    Key {
        name: OPTIMIZER_MIN_FILE_SIZE,
        kind: Kind::Property,
        meaning: "files below this size are compaction candidates for `run`",
    },
    Key {
        name: OPTIMIZER_ZORDER_COLUMNS,
        kind: Kind::Property,
        meaning: "`a,b`: compaction z-orders rows by these columns",
    },
    Key {
        name: OPTIMIZER_REWRITE_DELETES_ENABLED,
        kind: Kind::Property,
        meaning: "`false`: `run` does not rewrite position delete files",
    },
    Key {
        name: OPTIMIZER_STATS_ENABLED,
        kind: Kind::Property,
        meaning: "`false`: `run` does not compute NDV statistics",
    },
    Key { name: OPTIMIZER_STATS_COLUMNS, kind: Kind::Property, meaning: "`a,b`: the columns NDV statistics cover" },
    Key { name: OPTIMIZER_EXPIRE_ENABLED, kind: Kind::Property, meaning: "`false`: `run` does not expire snapshots" },
    Key {
        name: OPTIMIZER_ORPHANS_ENABLED,
        kind: Kind::Property,
        meaning: "`false`: `run` does not remove orphan files",
    },
    Key {
        name: OPTIMIZER_ORPHANS_OLDER_THAN_MS,
        kind: Kind::Property,
        meaning: "files younger than this are never orphans for `run`",
    },
    Key { name: JOURNAL_DIR, kind: Kind::Folder, meaning: "checkpoint journals of commits in flight" },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The docs' contract table lists exactly [`KEYS`].
    #[test]
    fn the_docs_list_every_key_of_the_contract() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/exactly-once.md");
        let docs = std::fs::read_to_string(path).expect("docs/exactly-once.md");
        let section = docs.split("## The on-table contract").nth(1).expect("a section \"The on-table contract\"");
        let section = section.split("\n## ").next().unwrap_or_default();
        let listed: Vec<&str> =
            section.lines().filter_map(|l| l.strip_prefix("| `")).filter_map(|l| l.split('`').next()).collect();
        let keys: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        assert_eq!(listed, keys, "docs/exactly-once.md's contract table and table/src/contract.rs differ");
    }
}
