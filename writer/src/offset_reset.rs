//! `auto.offset.reset`, applied by us, never silently by librdkafka.
//!
//! A partition's position comes from the table. When the broker no longer holds that offset
//! (retention deleted it before it was read, or the topic was re-created), librdkafka would
//! jump per `auto.offset.reset` without a word, and the next checkpoint would commit a range
//! whose start was never read. So librdkafka is always told `error`, and the source resolves
//! an out-of-range position here: the user's `auto.offset.reset` decides, and a skip is made
//! visible (a warning, a metric, and one `offsets_lost` dead letter naming the lost range, so
//! the table's history shows it).

use std::collections::BTreeMap;

/// The user's `auto.offset.reset` (librdkafka's and Kafka's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// Partitions the table has never seen start at the log start; an offset that is gone
    /// continues at the log start (the lost range is recorded).
    Earliest,
    /// The same, at the log end.
    Latest,
    /// Never jump: a partition the table has never seen, or an offset that is gone, stops the
    /// pipeline with an error naming it.
    Error,
}

impl OffsetReset {
    /// From `kafka.properties`; anything but `latest`/`error` (and their aliases) is `earliest`,
    /// the default (config validation names unknown values).
    pub fn from_properties(props: &BTreeMap<String, String>) -> OffsetReset {
        match props.get("auto.offset.reset").map(String::as_str) {
            Some("latest" | "largest" | "end") => OffsetReset::Latest,
            Some("error") => OffsetReset::Error,
            _ => OffsetReset::Earliest,
        }
    }
}

/// What to do with a partition whose position the broker reported out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The position is within the log after all (the error was about an older position).
    Keep,
    /// Continue at `to`; offsets `from..to` were never read and never will be.
    Skip { from: i64, to: i64 },
    /// Stop the pipeline with this message.
    Fail(String),
}

/// Resolves an out-of-range `position` of `topic`/`partition` against the log's current
/// `low..high` watermarks.
pub fn resolve(policy: OffsetReset, topic: &str, partition: i32, position: i64, low: i64, high: i64) -> Resolution {
    if (low..=high).contains(&position) {
        return Resolution::Keep;
    }
    if position > high {
        // Jumping back would re-read offsets the table already covers as other records.
        return Resolution::Fail(format!(
            "{topic}/{partition}: the table's offset {position} is beyond the partition's end ({high}); the topic \
             was re-created or the broker lost records. Nothing was read; point the pipeline at a new table, or \
             move the table's offsets for this topic"
        ));
    }
    match policy {
        OffsetReset::Earliest => Resolution::Skip { from: position, to: low },
        OffsetReset::Latest => Resolution::Skip { from: position, to: high },
        OffsetReset::Error => Resolution::Fail(format!(
            "{topic}/{partition}: offsets {position}..{low} were deleted by the broker (retention) before they were \
             read, and auto.offset.reset = \"error\". Set it to \"earliest\" to continue at offset {low} (the lost \
             range is recorded as a dead letter), or restore the records"
        )),
    }
}

/// The dead letter recording a skipped range (`offsets_lost`), at the first lost offset.
pub fn lost_range_message(from: i64, to: i64, policy: OffsetReset) -> String {
    format!(
        "offsets {from}..{to} ({} records) were gone from the broker before they were read; auto.offset.reset = \
         {policy:?} continued at {to}",
        to - from
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gone_offset_follows_the_policy_and_is_never_silent() {
        let skip = resolve(OffsetReset::Earliest, "t", 0, 100, 250, 900);
        assert_eq!(skip, Resolution::Skip { from: 100, to: 250 });
        assert_eq!(resolve(OffsetReset::Latest, "t", 0, 100, 250, 900), Resolution::Skip { from: 100, to: 900 });
        let Resolution::Fail(message) = resolve(OffsetReset::Error, "t", 3, 100, 250, 900) else { panic!("fails") };
        assert!(message.contains("t/3") && message.contains("100..250") && message.contains("earliest"), "{message}");
        assert!(lost_range_message(100, 250, OffsetReset::Earliest).contains("150 records"));
    }

    #[test]
    fn a_position_in_range_is_kept_and_one_past_the_end_fails_whatever_the_policy() {
        assert_eq!(resolve(OffsetReset::Error, "t", 0, 250, 250, 900), Resolution::Keep);
        assert_eq!(resolve(OffsetReset::Error, "t", 0, 900, 250, 900), Resolution::Keep, "at the end: nothing new yet");
        for policy in [OffsetReset::Earliest, OffsetReset::Latest, OffsetReset::Error] {
            let Resolution::Fail(message) = resolve(policy, "t", 1, 5_000, 0, 100) else { panic!("fails") };
            assert!(message.contains("beyond the partition's end"), "{message}");
        }
    }

    #[test]
    fn the_policy_reads_kafkas_names() {
        let props = |v: &str| BTreeMap::from([("auto.offset.reset".to_string(), v.to_string())]);
        assert_eq!(OffsetReset::from_properties(&BTreeMap::new()), OffsetReset::Earliest);
        assert_eq!(OffsetReset::from_properties(&props("smallest")), OffsetReset::Earliest);
        assert_eq!(OffsetReset::from_properties(&props("largest")), OffsetReset::Latest);
        assert_eq!(OffsetReset::from_properties(&props("error")), OffsetReset::Error);
    }
}
