//! The consumer thread's loop: poll in bursts, batch records for the pipeline, pause while the
//! memory budget is used up, and carry out the pipeline's commands.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use icefall_table::offsets::OffsetMap;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::burst::Burst;
use super::reposition::{reseek, resolve_out_of_range};
use super::{SourceCommand, SourceContext, SourceRecord};

/// Most messages taken per burst between checks of commands and the memory budget.
pub(super) const BURST: usize = 256;
/// How often the buffered-bytes gauge is refreshed.
const GAUGE_INTERVAL: Duration = Duration::from_secs(1);

pub(super) fn consume_loop(
    consumer: BaseConsumer<SourceContext>,
    commands: std_mpsc::Receiver<SourceCommand>,
    max_batch: usize,
    linger: Duration,
    read_headers: bool,
) {
    let ctx = consumer.context().clone();
    let mut last_flush = Instant::now();
    let mut paused_at: Option<Instant> = None;
    // Records of one topic share its name.
    let mut topic_cache: Option<Arc<str>> = None;
    let mut burst = Burst::default();
    let mut gauge_at = Instant::now();
    loop {
        if gauge_at.elapsed() >= GAUGE_INTERVAL {
            ctx.metrics.buffered(ctx.budget.used());
            gauge_at = Instant::now();
        }
        // Backpressure: while the budget is used up, fetch nothing (but keep polling, which
        // serves rebalances and keeps the group membership).
        match paused_at {
            None if ctx.budget.exhausted() => {
                ctx.flush();
                set_paused(&consumer, true);
                paused_at = Some(Instant::now());
                tracing::debug!(pipeline = %ctx.pipeline, used = ctx.budget.used(), limit = ctx.budget.limit(),
                    "memory budget used up; partitions paused");
            }
            Some(since) if ctx.budget.recovered() => {
                set_paused(&consumer, false);
                paused_at = None;
                tracing::debug!(pipeline = %ctx.pipeline, paused_ms = since.elapsed().as_millis() as u64, "partitions resumed");
            }
            // Partitions assigned while paused start unpaused: pause them too.
            Some(_) => set_paused(&consumer, true),
            None => {}
        }
        loop {
            match commands.try_recv() {
                Ok(SourceCommand::Stop) | Err(std_mpsc::TryRecvError::Disconnected) => {
                    ctx.flush();
                    consumer.unsubscribe();
                    return;
                }
                Ok(SourceCommand::Reseek { epoch }) => reseek(&consumer, epoch),
                Ok(SourceCommand::CommitGroupOffsets(offsets)) => commit_group_offsets(&consumer, &offsets),
                Err(std_mpsc::TryRecvError::Empty) => break,
            }
        }
        if ctx.events.is_closed() {
            return;
        }
        // A burst: after the first message (or 50 ms), take what librdkafka already holds
        // without waiting, sharing one clock read and the control checks above between them.
        let received_at_us = chrono::Utc::now().timestamp_micros();
        let mut timeout = Duration::from_millis(50);
        for _ in 0..BURST {
            match consumer.poll(timeout) {
                Some(Ok(message)) => {
                    let topic = match &topic_cache {
                        Some(cached) if **cached == *message.topic() => cached.clone(),
                        _ => topic_cache.insert(Arc::from(message.topic())).clone(),
                    };
                    let headers = match read_headers.then(|| message.headers()).flatten() {
                        Some(h) => h.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect(),
                        None => Vec::new(),
                    };
                    let record = SourceRecord {
                        topic,
                        partition: message.partition(),
                        offset: message.offset(),
                        timestamp_ms: message.timestamp().to_millis(),
                        key: None,
                        payload: None,
                        headers,
                        received_at_us,
                    };
                    burst.push(record, message.key(), message.payload());
                }
                Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset))) => {
                    resolve_out_of_range(&consumer);
                }
                Some(Err(e)) => tracing::warn!(pipeline = %ctx.pipeline, error = %e, "kafka consumer error"),
                None => break,
            }
            timeout = Duration::ZERO;
        }
        if !burst.is_empty() {
            let full = {
                let mut pending = ctx.pending.lock().unwrap_or_else(|e| e.into_inner());
                pending.extend(burst.take());
                pending.len() >= max_batch
            };
            if full {
                ctx.flush();
                last_flush = Instant::now();
            }
        }
        if last_flush.elapsed() >= linger {
            ctx.flush();
            last_flush = Instant::now();
        }
    }
}

/// Pauses or resumes fetching of every assigned partition.
fn set_paused(consumer: &BaseConsumer<SourceContext>, paused: bool) {
    let Ok(assignment) = consumer.assignment() else { return };
    let result = if paused { consumer.pause(&assignment) } else { consumer.resume(&assignment) };
    consumer.context().metrics.partitions_paused(if paused { assignment.count() } else { 0 });
    if let Err(e) = result {
        tracing::debug!(pipeline = %consumer.context().pipeline, error = %e, paused, "pause/resume failed");
    }
}

fn commit_group_offsets(consumer: &BaseConsumer<SourceContext>, offsets: &OffsetMap) {
    let mut tpl = TopicPartitionList::new();
    for (topic, partitions) in offsets {
        for (partition, offset) in partitions {
            let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset));
        }
    }
    let result: KafkaResult<()> = consumer.commit(&tpl, CommitMode::Async);
    if let Err(e) = result {
        tracing::debug!(pipeline = %consumer.context().pipeline, error = %e, "advisory group offset commit failed");
    }
}
