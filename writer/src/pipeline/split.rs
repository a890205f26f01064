//! The splitter's bookkeeping, pure (no broker, no table): per partition, the offset the table
//! holds (`committed`) and the next offset expected (`next`); every record handed on advances
//! `next`. A checkpoint covers exactly `[closed, next)` of every partition that moved, where
//! `closed` is where the previous checkpoint ended: the table's offset, or the end of the one
//! checkpoint whose commit is still in flight while the next is written.
//!
//! Re-positioning is epoch-numbered: after a dropped checkpoint the splitter asks the source to
//! re-seek with a new epoch and ignores every record until the source's answer for that epoch
//! arrives (records already in the channel belong to the old positions).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::committer::OffsetRange;
use crate::record::{SourceRecord, TopicPartition};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartitionState {
    /// The table's offset (`None`: the table has none for this partition).
    committed: Option<i64>,
    /// Where the last closed checkpoint ended (`committed`, or past it while that checkpoint's
    /// commit is in flight): the next checkpoint starts here.
    closed: Option<i64>,
    /// Next offset expected; `None` until the first record of a never-committed partition.
    next: Option<i64>,
}

impl PartitionState {
    /// What the next checkpoint covers.
    fn range(&self) -> Option<OffsetRange> {
        match self.next {
            Some(next) if Some(next) != self.closed => Some(OffsetRange { start: self.closed, end: next }),
            _ => None,
        }
    }

    /// Handed on and not yet committed (in a checkpoint being written or being committed).
    fn uncommitted(&self) -> bool {
        self.next.is_some() && self.next != self.committed
    }
}

/// What an assignment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Assignment {
    /// Taken up.
    Applied,
    /// An answer to an older re-seek: the one asked for lists the whole assignment.
    Stale,
    /// A whole new assignment while records are in flight: drop the checkpoint first.
    NeedsAbort,
}

#[derive(Debug, Default)]
pub(super) struct Splitter {
    partitions: Partitions,
    /// Waiting for the source to answer `Reseek { epoch }`; records before it are stale.
    awaiting_epoch: Option<u64>,
    epoch: u64,
}

impl Splitter {
    /// True while a re-seek is unanswered (records are stale, nothing may be committed).
    pub(super) fn repositioning(&self) -> bool {
        self.awaiting_epoch.is_some()
    }

    /// Whether `record` is new: of an assigned partition, at or after the next offset expected.
    pub(super) fn is_new(&self, record: &SourceRecord) -> bool {
        if self.repositioning() {
            return false;
        }
        match self.partitions.find(&record.topic, record.partition) {
            Some(slot) => self.partitions.states[slot].1.next.is_none_or(|next| record.offset >= next),
            None => false, // not (or no longer) ours
        }
    }

    /// `record` was handed to the writers.
    pub(super) fn handed_on(&mut self, record: &SourceRecord) {
        if let Some(slot) = self.partitions.find(&record.topic, record.partition) {
            self.partitions.states[slot].1.next = Some(record.offset + 1);
        }
    }

    /// The source assigned `partitions` at these table offsets (`replace`: the whole assignment).
    pub(super) fn assign(
        &mut self,
        epoch: u64,
        partitions: &[(TopicPartition, Option<i64>)],
        replace: bool,
    ) -> Assignment {
        if let Some(want) = self.awaiting_epoch {
            if epoch < want {
                return Assignment::Stale;
            }
            self.awaiting_epoch = None;
        }
        if replace {
            if self.in_flight() {
                return Assignment::NeedsAbort;
            }
            self.partitions.clear();
        }
        for (tp, start) in partitions {
            self.partitions.insert(tp, PartitionState { committed: *start, closed: *start, next: *start });
        }
        Assignment::Applied
    }

    /// The partitions are no longer ours.
    pub(super) fn revoke(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.partitions.remove(tp);
        }
    }

    /// Offsets `from..to` of `partition` are gone from the broker and skipped; true when that
    /// is where the partition was expected to go on (else it belongs to an older position).
    pub(super) fn skip(&mut self, partition: &TopicPartition, from: i64, to: i64) -> bool {
        if self.repositioning() {
            return false;
        }
        match self.partitions.get_mut(partition) {
            Some(state) if state.next == Some(from) => {
                state.next = Some(to);
                true
            }
            _ => false,
        }
    }

    /// Partitions assigned.
    pub(super) fn len(&self) -> usize {
        self.partitions.states.len()
    }

    /// Some partition has records handed on but not committed.
    pub(super) fn in_flight(&self) -> bool {
        self.partitions.states.iter().any(|(_, s)| s.uncommitted())
    }

    /// What a checkpoint now would cover.
    pub(super) fn ranges(&self) -> BTreeMap<TopicPartition, OffsetRange> {
        self.partitions.states.iter().filter_map(|(tp, s)| s.range().map(|r| (tp.clone(), r))).collect()
    }

    /// The checkpoint covering `ranges` was closed: the next one starts at their ends.
    pub(super) fn closed(&mut self, ranges: &BTreeMap<TopicPartition, OffsetRange>) {
        for (tp, range) in ranges {
            if let Some(state) = self.partitions.get_mut(tp) {
                state.closed = Some(range.end);
            }
        }
    }

    /// The checkpoint covering `ranges` committed: the table holds their ends now.
    pub(super) fn committed(&mut self, ranges: &BTreeMap<TopicPartition, OffsetRange>) {
        for (tp, range) in ranges {
            if let Some(state) = self.partitions.get_mut(tp) {
                state.committed = Some(range.end);
                state.closed = state.closed.max(Some(range.end));
            }
        }
    }

    /// Drops everything not committed; returns the epoch of the re-seek to ask the source for.
    pub(super) fn rewind(&mut self) -> u64 {
        for (_, state) in &mut self.partitions.states {
            state.next = state.committed;
            state.closed = state.committed;
        }
        self.epoch += 1;
        self.awaiting_epoch = Some(self.epoch);
        self.epoch
    }
}

/// The partitions' states, found by name. Every record is looked up (twice), and records come
/// in runs of one partition: the last one found is checked before hashing.
#[derive(Debug, Default)]
struct Partitions {
    states: Vec<(TopicPartition, PartitionState)>,
    index: HashMap<TopicPartition, usize>,
    last: AtomicUsize,
}

impl Partitions {
    fn find(&self, topic: &Arc<str>, partition: i32) -> Option<usize> {
        let last = self.last.load(Ordering::Relaxed);
        let hit =
            self.states.get(last).is_some_and(|((t, p), _)| *p == partition && (Arc::ptr_eq(t, topic) || t == topic));
        if hit {
            return Some(last);
        }
        let slot = *self.index.get(&(topic.clone(), partition))?;
        self.last.store(slot, Ordering::Relaxed);
        Some(slot)
    }

    fn get_mut(&mut self, tp: &TopicPartition) -> Option<&mut PartitionState> {
        let slot = *self.index.get(tp)?;
        Some(&mut self.states[slot].1)
    }

    fn insert(&mut self, tp: &TopicPartition, state: PartitionState) {
        match self.index.get(tp) {
            Some(&slot) => self.states[slot].1 = state,
            None => {
                self.index.insert(tp.clone(), self.states.len());
                self.states.push((tp.clone(), state));
            }
        }
    }

    fn remove(&mut self, tp: &TopicPartition) {
        if let Some(slot) = self.index.remove(tp) {
            self.states.swap_remove(slot);
            if let Some((moved, _)) = self.states.get(slot) {
                self.index.insert(moved.clone(), slot);
            }
        }
    }

    fn clear(&mut self) {
        self.states.clear();
        self.index.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        (Arc::from("t"), p)
    }

    fn record(p: i32, offset: i64) -> SourceRecord {
        SourceRecord::bare(p, offset)
    }

    fn hand_on(s: &mut Splitter, p: i32, offsets: std::ops::Range<i64>) -> usize {
        let mut handed = 0;
        for r in offsets.map(|o| record(p, o)) {
            if s.is_new(&r) {
                s.handed_on(&r);
                handed += 1;
            }
        }
        handed
    }

    #[test]
    fn a_checkpoint_covers_exactly_what_was_handed_on_since_the_table_offset() {
        let mut s = Splitter::default();
        assert_eq!(s.assign(0, &[(tp(0), Some(100)), (tp(1), None)], true), Assignment::Applied);
        assert_eq!(hand_on(&mut s, 0, 95..110), 10, "offsets below the table's are in the table already");
        assert_eq!(hand_on(&mut s, 1, 0..5), 5, "a never-committed partition starts at its first record");
        assert_eq!(hand_on(&mut s, 2, 0..5), 0, "not ours");
        let ranges = s.ranges();
        assert_eq!(ranges[&tp(0)], OffsetRange { start: Some(100), end: 110 });
        assert_eq!(ranges[&tp(1)], OffsetRange { start: None, end: 5 });
        s.committed(&ranges);
        assert!(!s.in_flight() && s.ranges().is_empty());
        assert_eq!(hand_on(&mut s, 0, 108..112), 2, "re-delivered records are not handed on twice");
        assert_eq!(s.ranges()[&tp(0)], OffsetRange { start: Some(110), end: 112 });
    }

    #[test]
    fn the_next_checkpoint_starts_where_the_one_in_flight_ended() {
        let mut s = Splitter::default();
        s.assign(0, &[(tp(0), Some(100)), (tp(1), None)], true);
        hand_on(&mut s, 0, 100..110);
        let first = s.ranges();
        s.closed(&first);
        assert!(s.ranges().is_empty() && s.in_flight(), "closed, not committed");
        hand_on(&mut s, 0, 110..115);
        hand_on(&mut s, 1, 0..3);
        let second = s.ranges();
        assert_eq!(second[&tp(0)], OffsetRange { start: Some(110), end: 115 }, "from the end of the one in flight");
        assert_eq!(second[&tp(1)], OffsetRange { start: None, end: 3 });
        s.committed(&first);
        assert_eq!(s.ranges(), second, "the first one landing changes nothing the second covers");
        s.rewind();
        assert!(!s.in_flight(), "a rewind drops what was not committed: the second checkpoint");
        assert_eq!(
            s.partitions.states[0].1,
            PartitionState { committed: Some(110), closed: Some(110), next: Some(110) }
        );
    }

    #[test]
    fn after_a_rewind_records_are_stale_until_the_reseek_answer() {
        let mut s = Splitter::default();
        s.assign(0, &[(tp(0), Some(0))], true);
        hand_on(&mut s, 0, 0..10);
        let epoch = s.rewind();
        assert!(s.repositioning() && !s.in_flight());
        assert_eq!(hand_on(&mut s, 0, 10..12), 0, "still in the channel from the old position");
        assert_eq!(s.assign(epoch - 1, &[(tp(0), Some(0))], true), Assignment::Stale);
        assert_eq!(s.assign(epoch, &[(tp(0), Some(0))], true), Assignment::Applied);
        assert_eq!(hand_on(&mut s, 0, 0..3), 3, "re-read from the table's offset");
        assert_eq!(s.assign(epoch, &[(tp(1), Some(0))], true), Assignment::NeedsAbort);
        assert_eq!(s.assign(epoch, &[(tp(1), Some(0))], false), Assignment::Applied, "an incremental one adds");
        s.revoke(&[tp(1)]);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_skip_counts_only_from_where_the_partition_was_expected_to_go_on() {
        let mut s = Splitter::default();
        s.assign(0, &[(tp(0), Some(100))], true);
        assert!(!s.skip(&tp(0), 90, 150), "from an older position");
        assert!(s.skip(&tp(0), 100, 150));
        assert_eq!(s.ranges()[&tp(0)], OffsetRange { start: Some(100), end: 150 }, "the skipped range is committed");
        assert_eq!(hand_on(&mut s, 0, 150..152), 2);
    }

    #[test]
    fn partitions_are_found_by_name_after_others_are_revoked() {
        let mut s = Splitter::default();
        let all: Vec<_> = (0..6).map(|p| (tp(p), Some(10 * p as i64))).collect();
        s.assign(0, &all, true);
        assert_eq!(hand_on(&mut s, 5, 50..52), 2, "the last one found is cached");
        s.revoke(&[tp(0), tp(2)]);
        assert_eq!(hand_on(&mut s, 0, 0..3), 0, "revoked");
        assert_eq!(hand_on(&mut s, 5, 52..53), 1, "moved into a revoked one's slot, still found");
        for p in [1, 3, 4] {
            assert_eq!(hand_on(&mut s, p, 10 * p as i64..10 * p as i64 + 1), 1);
        }
        let ranges = s.ranges();
        assert_eq!(ranges.len(), 4);
        assert_eq!(ranges[&tp(5)], OffsetRange { start: Some(50), end: 53 });
        // A topic name equal to an assigned one but not the same allocation is the same topic.
        let other = SourceRecord { topic: Arc::from(String::from("t")), ..record(1, 11) };
        assert!(s.is_new(&other));
    }
}
