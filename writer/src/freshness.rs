//! Freshness figures writers gather per checkpoint: each partition's newest arrival time
//! (Kafka timestamp) and, with `event_time_column`, newest event time, plus the records that
//! came later than the allowed lateness. The committer folds them into the table's watermarks
//! ([`icefall_table::freshness`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use iceberg::spec::{PrimitiveType, Schema, Type};
use icefall_table::freshness::{TimeMap, observe};

use crate::record::SourceRecord;
use crate::{Error, Result};

/// The pipeline's event-time column and the lateness bound writers compare against.
#[derive(Debug)]
pub struct EventTime {
    pub column: String,
    /// Event times below this (µs) are late: the table's event watermark minus the allowed
    /// lateness, updated after every commit; `i64::MIN` while the table has no watermark.
    pub late_before: Arc<AtomicI64>,
}

impl EventTime {
    /// Checks that `column` is a time column of `schema`.
    pub fn new(pipeline: &str, column: &str, schema: &Schema, late_before: Arc<AtomicI64>) -> Result<Self> {
        let key = format!("pipelines[{pipeline}].event_time_column = {column:?}");
        let field = schema.field_by_name(column).ok_or_else(|| {
            Error::Config(format!("{key}: the table has no such top-level column; name its event-time column"))
        })?;
        match field.field_type.as_ref() {
            Type::Primitive(
                PrimitiveType::Timestamp
                | PrimitiveType::Timestamptz
                | PrimitiveType::TimestampNs
                | PrimitiveType::TimestamptzNs
                | PrimitiveType::Date,
            ) => Ok(EventTime { column: column.to_string(), late_before }),
            other => Err(Error::Config(format!(
                "{key}: the column is {other}; name a timestamp, timestamptz or date column"
            ))),
        }
    }
}

/// What one checkpoint's records say about freshness.
#[derive(Debug, Default, Clone)]
pub struct CheckpointTimes {
    pub event: TimeMap,
    pub arrival: TimeMap,
    pub late_records: u64,
}

impl CheckpointTimes {
    /// Arrival times of every record read (dead letters included: they are committed too).
    pub fn observe_arrivals(&mut self, records: &[SourceRecord]) {
        let times = records.iter().map(|r| {
            let micros = r.timestamp_ms.map_or(r.received_at_us, |ms| ms.saturating_mul(1000));
            (&*r.topic, r.partition, micros)
        });
        observe_runs(&mut self.arrival, times);
    }

    /// Event times of the decoded rows; `rows[i]` is the record index of row `i`.
    pub fn observe_events(
        &mut self,
        batch: &RecordBatch,
        rows: &[usize],
        records: &[SourceRecord],
        event: &EventTime,
    ) -> Result<()> {
        let Ok(index) = batch.schema().index_of(&event.column) else { return Ok(()) };
        let micros = arrow_cast::cast(batch.column(index), &DataType::Timestamp(TimeUnit::Microsecond, None))
            .map_err(|e| Error::Internal(format!("event time column {}: {e}", event.column)))?;
        let micros = micros.as_primitive::<TimestampMicrosecondType>();
        let late_before = event.late_before.load(Ordering::Relaxed);
        let mut late = 0;
        let times = rows.iter().enumerate().filter(|(row, _)| !micros.is_null(*row)).filter_map(|(row, record)| {
            let r = records.get(*record)?;
            let t = micros.value(row);
            late += u64::from(t < late_before);
            Some((&*r.topic, r.partition, t))
        });
        observe_runs(&mut self.event, times);
        self.late_records += late;
        Ok(())
    }

    /// Adds another writer's figures.
    pub fn absorb(&mut self, other: CheckpointTimes) {
        icefall_table::freshness::merge(&mut self.event, &other.event);
        icefall_table::freshness::merge(&mut self.arrival, &other.arrival);
        self.late_records += other.late_records;
    }
}

/// Folds `(topic, partition, time)` into `map`, the newest per partition. Records come in runs
/// of one partition, so the map (two lookups, one by the topic's name) is touched once per
/// run, not once per record.
fn observe_runs<'r>(map: &mut TimeMap, times: impl Iterator<Item = (&'r str, i32, i64)>) {
    let mut run: Option<(&str, i32, i64)> = None;
    for (topic, partition, t) in times {
        match &mut run {
            // Records of one topic share its name: the pointers are equal, no bytes compared.
            Some((run_topic, run_partition, newest))
                if *run_partition == partition && (std::ptr::eq(*run_topic, topic) || *run_topic == topic) =>
            {
                *newest = (*newest).max(t);
            }
            _ => {
                if let Some((run_topic, run_partition, newest)) = run.replace((topic, partition, t)) {
                    observe(map, run_topic, run_partition, newest);
                }
            }
        }
    }
    if let Some((topic, partition, newest)) = run {
        observe(map, topic, partition, newest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::TimestampMicrosecondArray;
    use arrow_schema::{Field, Schema as ArrowSchema};

    fn record(partition: i32, offset: i64, timestamp_ms: Option<i64>) -> SourceRecord {
        SourceRecord { timestamp_ms, received_at_us: 7, ..SourceRecord::bare(partition, offset) }
    }

    #[test]
    fn newest_times_per_partition_and_late_records_are_counted() {
        let schema = Arc::new(ArrowSchema::new(vec![Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            true,
        )]));
        let ts = TimestampMicrosecondArray::from(vec![Some(500), Some(300), None, Some(50)]).with_timezone("+00:00");
        let batch = RecordBatch::try_new(schema, vec![Arc::new(ts)]).expect("batch");
        // Record 1 was a dead letter: rows map to records 0, 2, 3, 4.
        let records = vec![
            record(0, 0, Some(1)),
            record(0, 1, Some(2)),
            record(1, 2, None),
            record(1, 3, Some(4)),
            record(1, 4, Some(3)),
        ];
        let event = EventTime { column: "ts".into(), late_before: Arc::new(AtomicI64::new(100)) };
        let mut times = CheckpointTimes::default();
        times.observe_arrivals(&records);
        times.observe_events(&batch, &[0, 2, 3, 4], &records, &event).expect("observe");
        assert_eq!(times.event["t"][&0], 500);
        assert_eq!(times.event["t"][&1], 300, "the null row counts for nothing");
        assert_eq!(times.late_records, 1, "50 µs is before the lateness bound of 100");
        assert_eq!(times.arrival["t"][&0], 2000);
        assert_eq!(times.arrival["t"][&1], 4000, "a record without a Kafka timestamp uses its receive time");
    }

    #[test]
    fn runs_of_partitions_and_topics_fold_to_the_newest_of_each() {
        let topic = |name: &str, partition, offset, ms| SourceRecord {
            topic: Arc::from(name),
            ..record(partition, offset, Some(ms))
        };
        // Interleaved partitions, a topic change within one partition number, and an older
        // time after a newer one in a run.
        let records = vec![
            topic("a", 0, 0, 5),
            topic("a", 0, 1, 3),
            topic("a", 1, 0, 9),
            topic("a", 0, 2, 4),
            topic("b", 0, 0, 1),
        ];
        let mut times = CheckpointTimes::default();
        times.observe_arrivals(&records);
        assert_eq!(times.arrival["a"][&0], 5000);
        assert_eq!(times.arrival["a"][&1], 9000);
        assert_eq!(times.arrival["b"][&0], 1000);
        assert_eq!(times.arrival.values().map(|p| p.len()).sum::<usize>(), 3);
    }
}
