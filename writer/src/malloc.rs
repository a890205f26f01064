//! glibc's malloc under a long backlog: it raises its mmap threshold each time a large block
//! (a batch's record vector, a fetch buffer, an Arrow column) is freed, after which such blocks
//! come from its heaps, which it seldom gives back to the system. A 3M-event backlog held
//! ~45 MiB of RSS beyond the memory budget that way; with the threshold pinned
//! (1 MiB) large blocks stay mmapped and go back when freed (docs/benchmarks.md, Memory).
//!
//! glibc reads the setting only from the environment at start-up, so `run` re-executes itself
//! once with it set (same pid, same arguments and descriptors). A value the user set wins.

use std::ffi::OsString;

/// The variable glibc reads, and the value: 1 MiB, fixed. (glibc's 128 KiB default, fixed,
/// held 7 MiB less but cost 10–15% more writer CPU in page faults on fresh mappings.)
const VARIABLE: &str = "MALLOC_MMAP_THRESHOLD_";
const THRESHOLD: &str = "1048576";

/// Re-executes this process with the threshold pinned, unless it already is (or a user chose
/// their own through `MALLOC_MMAP_THRESHOLD_` or `GLIBC_TUNABLES`). Returns only when no
/// re-execution was needed or it failed (then the process runs on with glibc's default).
pub fn pin_mmap_threshold() {
    if !needs_pinning(std::env::var_os(VARIABLE), std::env::var_os("GLIBC_TUNABLES")) {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let Ok(exe) = std::env::current_exe() else { return };
        let error = std::process::Command::new(exe).args(std::env::args_os().skip(1)).env(VARIABLE, THRESHOLD).exec();
        eprintln!(
            "note: could not re-execute with {VARIABLE}={THRESHOLD} ({error}); memory may exceed the budget more"
        );
    }
}

fn needs_pinning(variable: Option<OsString>, tunables: Option<OsString>) -> bool {
    let tuned = tunables.is_some_and(|t| t.to_string_lossy().contains("glibc.malloc.mmap_threshold"));
    cfg!(all(target_os = "linux", target_env = "gnu")) && variable.is_none() && !tuned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threshold_the_user_set_is_left_alone() {
        let gnu = cfg!(all(target_os = "linux", target_env = "gnu"));
        assert_eq!(needs_pinning(None, None), gnu);
        assert_eq!(needs_pinning(None, Some("glibc.malloc.arena_max=2".into())), gnu);
        assert!(!needs_pinning(Some("262144".into()), None));
        assert!(!needs_pinning(None, Some("glibc.malloc.mmap_threshold=65536:glibc.malloc.arena_max=2".into())));
    }
}
