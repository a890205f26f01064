//! Offsets gone from the broker before they were read ([`crate::offset_reset`]): the skip is
//! part of the checkpoint, recorded as one `offsets_lost` dead letter at the first lost offset.

use super::Pipeline;
use crate::dead_letter::DeadLetter;
use crate::offset_reset::{OffsetReset, lost_range_message};
use crate::record::TopicPartition;

impl Pipeline {
    /// The source continued `partition` at `to` because `from..to` was gone. Only a skip from
    /// exactly where the pipeline expected the partition to go on counts; anything else belongs
    /// to an older position (a re-read will meet it again).
    pub(super) fn record_lost_range(&mut self, partition: TopicPartition, from: i64, to: i64, policy: OffsetReset) {
        if !self.splitter.skip(&partition, from, to) {
            tracing::debug!(pipeline = %self.name, topic = %partition.0, partition = partition.1, from,
                "a skip from an older position ignored");
            return;
        }
        self.metrics.offsets_lost(&partition.0, (to - from) as u64);
        self.lost_ranges.push(DeadLetter {
            topic: partition.0.clone(),
            partition: partition.1,
            offset: from,
            timestamp_ms: None,
            key: None,
            value: None,
            error: lost_range_message(from, to, policy),
            error_kind: icefall_schemas::Reason::OffsetsLost.as_str(),
            headers: Vec::new(),
        });
    }
}
