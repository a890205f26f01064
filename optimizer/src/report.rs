//! What a command did, for humans (stdout) and for machines (`--json`).

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub command: String,
    pub table: String,
    pub dry_run: bool,
    pub files_in: u64,
    pub bytes_in: u64,
    pub files_out: u64,
    pub bytes_out: u64,
    pub rows: u64,
    pub groups: u64,
    pub groups_failed: u64,
    pub snapshots_expired: u64,
    pub files_deleted: u64,
    pub commits: u64,
    pub duration_ms: u64,
    /// The statistics file `stats` wrote (Spark's `compute_table_stats` output name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistics_file: Option<String>,
    /// Partitions compaction rewrote (one entry per committed group).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<String>,
    /// Data files of compaction groups that failed.
    #[serde(skip)]
    pub failed_files: u64,
    /// Files expiry deleted, by Spark's output names (`deleted_manifest_files_count`, …).
    #[serde(skip)]
    pub deleted_by_kind: BTreeMap<String, u64>,
    /// Anything worth a look (skipped groups, refused rules).
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(command: &str, table: &str, dry_run: bool) -> Self {
        Report { command: command.into(), table: table.into(), dry_run, ..Default::default() }
    }

    /// The report as one JSON object: our fields, plus the figures under the output column
    /// names of Spark's procedure for the same job (`rewrite_data_files`,
    /// `rewrite_position_delete_files`, `rewrite_manifests`, `expire_snapshots`), so dashboards built on one read the other. Expiry counts delete
    /// files with data files (`deleted_data_files_count`).
    pub fn json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        let spark: Vec<(&str, u64)> = match self.command.as_str() {
            "compact" => vec![
                ("rewritten_data_files_count", self.files_in),
                ("added_data_files_count", self.files_out),
                ("rewritten_bytes_count", self.bytes_in),
                ("failed_data_files_count", self.failed_files),
            ],
            "rewrite-position-deletes" => vec![
                ("rewritten_delete_files_count", self.files_in),
                ("added_delete_files_count", self.files_out),
                ("rewritten_bytes_count", self.bytes_in),
                ("added_bytes_count", self.bytes_out),
            ],
            "rewrite-manifests" => {
                vec![("rewritten_manifests_count", self.files_in), ("added_manifests_count", self.files_out)]
            }
            "expire-snapshots" => {
                ["deleted_data_files_count", "deleted_manifest_files_count", "deleted_manifest_lists_count"]
                    .into_iter()
                    .map(|k| (k, self.deleted_by_kind.get(k).copied().unwrap_or(0)))
                    .collect()
            }
            _ => Vec::new(),
        };
        if let Some(object) = value.as_object_mut() {
            object.extend(spark.into_iter().map(|(k, v)| (k.to_string(), v.into())));
        }
        value
    }

    /// Counts one landed commit that wrote `files` files of `bytes` bytes holding `rows` rows.
    pub fn count_commit(&mut self, files: u64, bytes: u64, rows: u64) {
        self.files_out += files;
        self.bytes_out += bytes;
        self.rows += rows;
        self.commits += 1;
    }

    pub fn human(&self) -> String {
        let mut line = format!("{} {}{}:", self.command, self.table, if self.dry_run { " (dry run)" } else { "" });
        let mut add = |label: &str, value: u64| {
            if value > 0 {
                line.push_str(&format!(" {label} {value},"));
            }
        };
        add("groups", self.groups);
        add("failed groups", self.groups_failed);
        add("files in", self.files_in);
        add("bytes in", self.bytes_in);
        add("files out", self.files_out);
        add("bytes out", self.bytes_out);
        add("rows", self.rows);
        add("snapshots expired", self.snapshots_expired);
        add("files deleted", self.files_deleted);
        add("commits", self.commits);
        line.push_str(&format!(" {} ms", self.duration_ms));
        for note in &self.notes {
            line.push_str(&format!("\n  note: {note}"));
        }
        line
    }
}
