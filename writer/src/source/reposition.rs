//! Re-positioning partitions: back to the table's offsets after a dropped checkpoint, and past
//! offsets the broker no longer holds (per `auto.offset.reset`, see [`crate::offset_reset`]).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, RebalanceProtocol};
use rdkafka::{Offset, TopicPartitionList};

use super::{SourceContext, SourceEvent, TopicPartition};
use crate::offset_reset::{self, Resolution};

/// The broker reported a position out of range: applies `auto.offset.reset` to each assigned
/// partition outside its log, and tells the pipeline (in order with the records) what was
/// skipped.
pub(super) fn resolve_out_of_range(consumer: &BaseConsumer<SourceContext>) {
    let ctx = consumer.context();
    ctx.flush();
    let Ok(positions) = consumer.position() else { return };
    for elem in positions.elements() {
        let tp: TopicPartition = (Arc::from(elem.topic()), elem.partition());
        let position = match elem.offset() {
            Offset::Offset(o) => Some(o),
            _ => ctx.assigned_at.lock().unwrap_or_else(|e| e.into_inner()).get(&tp).copied(),
        };
        let Some(position) = position else { continue };
        let (low, high) = match consumer.fetch_watermarks(elem.topic(), elem.partition(), Duration::from_secs(10)) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(pipeline = %ctx.pipeline, topic = elem.topic(), partition = elem.partition(), error = %e,
                    "offset out of range, and the partition's watermarks cannot be read; trying again");
                let _ =
                    consumer.seek(elem.topic(), elem.partition(), Offset::Offset(position), Duration::from_secs(10));
                continue;
            }
        };
        match offset_reset::resolve(ctx.reset, elem.topic(), elem.partition(), position, low, high) {
            Resolution::Keep => {}
            Resolution::Skip { from, to } => {
                tracing::warn!(pipeline = %ctx.pipeline, topic = elem.topic(), partition = elem.partition(), from, to,
                    policy = ?ctx.reset, "offsets were gone from the broker before they were read; skipping them (recorded as a dead letter)");
                let seek = consumer.seek(elem.topic(), elem.partition(), Offset::Offset(to), Duration::from_secs(10));
                if let Err(e) = seek {
                    tracing::error!(pipeline = %ctx.pipeline, error = %e, "seek past the lost offsets failed");
                }
                ctx.assigned_at.lock().unwrap_or_else(|e| e.into_inner()).insert(tp.clone(), to);
                let _ = ctx.events.blocking_send(SourceEvent::Skipped { partition: tp, from, to, policy: ctx.reset });
            }
            Resolution::Fail(message) => {
                let _ = ctx.events.blocking_send(SourceEvent::Failed(message));
            }
        }
    }
}

/// Moves every assigned partition back to the table's offsets.
pub(super) fn reseek(consumer: &BaseConsumer<SourceContext>, epoch: u64) {
    let ctx = consumer.context();
    ctx.flush();
    *ctx.epoch.lock().unwrap_or_else(|e| e.into_inner()) = epoch;
    let offsets = ctx.load_offsets();
    let mut assignment = match consumer.assignment() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(pipeline = %ctx.pipeline, error = %e, "cannot read the assignment");
            TopicPartitionList::new()
        }
    };
    let partitions = ctx.position(&mut assignment, &offsets);
    let seeked = consumer.seek_partitions(assignment.clone(), Duration::from_secs(10));
    let failed = match &seeked {
        Ok(result) => result.elements().iter().any(|e| e.error().is_err()),
        Err(_) => true,
    };
    if failed {
        // A partition whose fetcher has not started yet cannot seek; re-assigning positions it.
        tracing::debug!(pipeline = %ctx.pipeline, "seek failed; re-assigning at table offsets");
        let result = if matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative) {
            consumer.incremental_unassign(&assignment).and_then(|_| consumer.incremental_assign(&assignment))
        } else {
            consumer.assign(&assignment)
        };
        if let Err(e) = result {
            tracing::error!(pipeline = %ctx.pipeline, error = %e, "re-assign failed");
        }
    }
    tracing::info!(pipeline = %ctx.pipeline, epoch, partitions = ?partitions, "re-positioned at table offsets");
    let _ = ctx.events.blocking_send(SourceEvent::Assigned { epoch, partitions, replace: true });
}
