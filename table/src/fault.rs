//! Fault injection for the tests that prove the exactly-once guarantee (debug builds only).
//!
//! A guarantee is proven by a test that fails once the guarantee is removed, and a crash is
//! only tested where it can be placed. Two environment variables, read only when the binary is
//! built with debug assertions (a release build compiles both functions to constants):
//!
//! - `ICEFALL_TEST_CRASH_AT=<point>[:<n>]`: the process aborts (like `kill -9`: no final
//!   checkpoint, no cleanup) the `n`-th time (default: first) it reaches `point`. The points
//!   are the [`CrashPoint`] names.
//! - `ICEFALL_TEST_DISABLE=<safeguard>[,<safeguard>…]`: turns a safeguard off, so a test can
//!   show that it fails without it. The names are the [`Safeguard`] names.
//! - `ICEFALL_TEST_LOSE_COMMIT_REPLY=1`: the first commit that lands reports an error of
//!   unknown outcome instead (the catalog's answer lost, and the table not readable after), so
//!   a test can show the caller does not treat it as "not committed".
//! - `ICEFALL_TEST_SETTLE_PAUSE_MS=<ms>`: journal settling at its worst moment: a writer settles
//!   journals after every commit, and settling pauses this long between listing the journals
//!   and loading the table (the window a live peer's commit can fall into).
//! - `ICEFALL_TEST_COMMIT_PAUSE_MS=<ms>`: a writer pauses this long between writing a
//!   checkpoint's journal and committing it (the time its journal is a live one).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Places a test can crash the process at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// The dead letters of a checkpoint are committed, its data is not yet.
    AfterDeadLetterCommit,
    /// The checkpoint's commit landed; its journal is not yet removed.
    AfterCommitBeforeJournalRemoved,
    /// Half of the checkpoint journal is written (a torn write on storage without atomic puts).
    DuringJournalWrite,
    /// A commit lost a race and has staged its rebased attempt (manifest list and metadata
    /// written), before publishing it.
    DuringRebase,
}

impl CrashPoint {
    /// The name `ICEFALL_TEST_CRASH_AT` uses.
    pub const fn name(self) -> &'static str {
        match self {
            CrashPoint::AfterDeadLetterCommit => "after-dead-letter-commit",
            CrashPoint::AfterCommitBeforeJournalRemoved => "after-commit-before-journal-removed",
            CrashPoint::DuringJournalWrite => "during-journal-write",
            CrashPoint::DuringRebase => "during-rebase",
        }
    }
}

/// Safeguards a test can turn off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safeguard {
    /// The committer's fencing rule (the table's offsets must be where a checkpoint started).
    Fence,
    /// Dead letters below the dead-letter table's own offsets are already there (a re-read
    /// after a crash between the dead-letter and the main commit skips them).
    DeadLetterFloor,
    /// The checkpoint journal, which names a checkpoint's files before its commit.
    Journal,
    /// Settling lists journals *before* loading the table it judges them by.
    SettleOrder,
    /// A checkpoint commits while the writers go on with the next one (off: the pipeline
    /// waits for every commit before it takes records again).
    PipelinedCommit,
}

impl Safeguard {
    /// The name `ICEFALL_TEST_DISABLE` uses.
    pub const fn name(self) -> &'static str {
        match self {
            Safeguard::Fence => "fence",
            Safeguard::DeadLetterFloor => "dead-letter-floor",
            Safeguard::Journal => "journal",
            Safeguard::SettleOrder => "settle-order",
            Safeguard::PipelinedCommit => "pipelined-commit",
        }
    }
}

fn crash_setting() -> Option<&'static (String, u64)> {
    static SETTING: OnceLock<Option<(String, u64)>> = OnceLock::new();
    SETTING
        .get_or_init(|| {
            let value = std::env::var("ICEFALL_TEST_CRASH_AT").ok()?;
            let (name, nth) = match value.split_once(':') {
                Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1)),
                None => (value, 1),
            };
            Some((name, nth))
        })
        .as_ref()
}

/// True when the process is about to crash at `point` (the caller may do half of its work
/// first); call [`crash`] then.
pub fn crash_due(point: CrashPoint) -> bool {
    if !cfg!(debug_assertions) {
        return false;
    }
    static REACHED: AtomicU64 = AtomicU64::new(0);
    match crash_setting() {
        Some((name, nth)) if name == point.name() => REACHED.fetch_add(1, Ordering::SeqCst) + 1 == *nth,
        _ => false,
    }
}

/// Aborts the process, saying where (the test looks for this line).
pub fn crash(point: CrashPoint) -> ! {
    eprintln!("ICEFALL_TEST_CRASH_AT: crashing at {}", point.name());
    std::process::abort()
}

/// Crashes here if a test asked for it.
pub fn crash_point(point: CrashPoint) {
    if crash_due(point) {
        crash(point);
    }
}

/// False when a test turned `safeguard` off.
pub fn enabled(safeguard: Safeguard) -> bool {
    if !cfg!(debug_assertions) {
        return true;
    }
    static DISABLED: OnceLock<Vec<String>> = OnceLock::new();
    let disabled = DISABLED.get_or_init(|| {
        let disabled: Vec<String> = std::env::var("ICEFALL_TEST_DISABLE")
            .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        if !disabled.is_empty() {
            tracing::warn!(?disabled, "TEST BUILD: safeguard disabled by ICEFALL_TEST_DISABLE");
        }
        disabled
    });
    !disabled.iter().any(|d| d == safeguard.name())
}

/// The pause `ICEFALL_TEST_SETTLE_PAUSE_MS` asks for (`None`: settle as usual).
pub fn settle_pause() -> Option<std::time::Duration> {
    static PAUSE: OnceLock<Option<std::time::Duration>> = OnceLock::new();
    *PAUSE.get_or_init(|| pause_from("ICEFALL_TEST_SETTLE_PAUSE_MS"))
}

/// The pause `ICEFALL_TEST_COMMIT_PAUSE_MS` asks for between writing a checkpoint's journal and
/// committing it: how long the journal is a live peer's (`None`: commit at once).
pub fn commit_pause() -> Option<std::time::Duration> {
    static PAUSE: OnceLock<Option<std::time::Duration>> = OnceLock::new();
    *PAUSE.get_or_init(|| pause_from("ICEFALL_TEST_COMMIT_PAUSE_MS"))
}

fn pause_from(variable: &str) -> Option<std::time::Duration> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let ms = std::env::var(variable).ok()?.parse().ok()?;
    Some(std::time::Duration::from_millis(ms))
}

/// True (once per process) when a test asked that a landed commit's reply be lost
/// (`ICEFALL_TEST_LOSE_COMMIT_REPLY`).
pub fn lose_commit_reply() -> bool {
    if !cfg!(debug_assertions) || std::env::var_os("ICEFALL_TEST_LOSE_COMMIT_REPLY").is_none() {
        return false;
    }
    static LOST: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    !LOST.swap(true, Ordering::SeqCst)
}
