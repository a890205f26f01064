//! How many writers a pipeline runs: more when they are saturated, fewer (so fewer, larger
//! files) when load falls. Decisions come from two measurements over the last interval: the
//! share of time writers spent writing, and the share of time the splitter waited for a free
//! writer. Growing is immediate; shrinking needs the low load to persist and happens only at a
//! checkpoint boundary, when no writer holds open files. Offsets are tracked by the splitter,
//! so the writer count never affects what a checkpoint covers.

use std::time::Duration;

/// Utilization above which writers count as saturated.
const BUSY: f64 = 0.80;
/// Share of time the splitter may wait for a writer before that counts as saturation.
const WAITING: f64 = 0.20;
/// After shrinking by one, the remaining writers must stay below this utilization.
const IDLE_AFTER_SHRINK: f64 = 0.50;
/// Consecutive quiet intervals before a writer is retired.
const QUIET_INTERVALS: u32 = 3;

/// What one interval looked like.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub writers: usize,
    pub elapsed: Duration,
    /// Sum over writers of the time spent decoding and writing.
    pub busy: Duration,
    /// Time the splitter waited for a writer to accept a batch.
    pub waited: Duration,
}

impl Load {
    fn utilization(&self) -> f64 {
        let capacity = self.elapsed.as_secs_f64() * self.writers as f64;
        if capacity > 0.0 { self.busy.as_secs_f64() / capacity } else { 0.0 }
    }

    fn waiting(&self) -> f64 {
        let elapsed = self.elapsed.as_secs_f64();
        if elapsed > 0.0 { self.waited.as_secs_f64() / elapsed } else { 0.0 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Keep,
    /// Add a writer now; the reason is logged.
    Grow(String),
    /// Retire a writer at the next checkpoint; the reason is logged.
    Shrink(String),
}

#[derive(Debug)]
pub struct Scaler {
    min: usize,
    max: usize,
    quiet: u32,
}

impl Scaler {
    pub fn new(min: usize, max: usize) -> Self {
        Scaler { min: min.max(1), max: max.max(min.max(1)), quiet: 0 }
    }

    /// Decides after one measurement interval.
    pub fn observe(&mut self, load: Load) -> Decision {
        let utilization = load.utilization();
        let waiting = load.waiting();
        if load.writers < self.max && (utilization > BUSY || waiting > WAITING) {
            self.quiet = 0;
            return Decision::Grow(format!(
                "writers busy {:.0}% of the time, splitter waited {:.0}% of the time",
                utilization * 100.0,
                waiting * 100.0
            ));
        }
        let after_shrink = if load.writers > 1 {
            utilization * load.writers as f64 / (load.writers - 1) as f64
        } else {
            f64::INFINITY
        };
        if load.writers > self.min && after_shrink < IDLE_AFTER_SHRINK && waiting < WAITING / 4.0 {
            self.quiet += 1;
            if self.quiet >= QUIET_INTERVALS {
                self.quiet = 0;
                return Decision::Shrink(format!(
                    "writers busy {:.0}% of the time; {} would be {:.0}% busy",
                    utilization * 100.0,
                    load.writers - 1,
                    after_shrink * 100.0
                ));
            }
        } else {
            self.quiet = 0;
        }
        Decision::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(writers: usize, busy_share: f64, waited_share: f64) -> Load {
        let elapsed = Duration::from_secs(1);
        Load {
            writers,
            elapsed,
            busy: elapsed.mul_f64(busy_share * writers as f64),
            waited: elapsed.mul_f64(waited_share),
        }
    }

    #[test]
    fn grows_when_saturated_up_to_the_maximum() {
        let mut scaler = Scaler::new(1, 3);
        assert!(matches!(scaler.observe(load(1, 0.95, 0.0)), Decision::Grow(_)));
        assert!(matches!(scaler.observe(load(2, 0.50, 0.40)), Decision::Grow(_)), "a waiting splitter is saturation");
        assert_eq!(scaler.observe(load(3, 0.99, 0.9)), Decision::Keep, "never past max");
    }

    #[test]
    fn shrinks_only_after_persistent_low_load_and_never_below_the_minimum() {
        let mut scaler = Scaler::new(1, 4);
        assert_eq!(scaler.observe(load(3, 0.10, 0.0)), Decision::Keep);
        assert_eq!(scaler.observe(load(3, 0.10, 0.0)), Decision::Keep);
        assert!(matches!(scaler.observe(load(3, 0.10, 0.0)), Decision::Shrink(_)));
        // One busy interval resets the streak (no flapping).
        assert_eq!(scaler.observe(load(2, 0.10, 0.0)), Decision::Keep);
        assert_eq!(scaler.observe(load(2, 0.45, 0.0)), Decision::Keep, "1 writer would be 90% busy");
        assert_eq!(scaler.observe(load(2, 0.10, 0.0)), Decision::Keep);
        assert_eq!(scaler.observe(load(2, 0.10, 0.0)), Decision::Keep);
        assert!(matches!(scaler.observe(load(2, 0.10, 0.0)), Decision::Shrink(_)));
        for _ in 0..10 {
            assert_eq!(scaler.observe(load(1, 0.0, 0.0)), Decision::Keep, "never below min");
        }
    }

    #[test]
    fn a_load_between_the_thresholds_keeps_the_count() {
        let mut scaler = Scaler::new(1, 4);
        for _ in 0..10 {
            assert_eq!(scaler.observe(load(2, 0.60, 0.05)), Decision::Keep);
        }
    }
}
