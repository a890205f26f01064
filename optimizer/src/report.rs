//! What a command did, for humans (stdout) and for machines (`--json`).

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
    /// Anything worth a look (skipped groups, refused rules).
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(command: &str, table: &str, dry_run: bool) -> Self {
        Report { command: command.into(), table: table.into(), dry_run, ..Default::default() }
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
