//! Producing test records and remembering where each one landed.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// Where records landed: partition → number of records (offsets are dense from 0).
pub type Landed = BTreeMap<i32, i64>;

pub struct TestProducer {
    producer: BaseProducer,
    topic: String,
}

impl TestProducer {
    pub fn new(bootstrap: &str, topic: &str) -> Self {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("linger.ms", "5")
            .set("acks", "all")
            .set("enable.idempotence", "false")
            .set("message.timeout.ms", "60000")
            .create()
            .expect("producer");
        TestProducer { producer, topic: topic.to_string() }
    }

    /// Sends one record to a partition (queued; call `flush`).
    pub fn send(&self, partition: i32, key: &str, payload: &[u8]) {
        self.send_with_headers(partition, key, payload, None);
    }

    /// Sends one record with headers to a partition (queued; call `flush`).
    pub fn send_with_headers(&self, partition: i32, key: &str, payload: &[u8], headers: Option<OwnedHeaders>) {
        let mut record = BaseRecord::to(&self.topic).partition(partition).key(key).payload(payload);
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((e, r)) => {
                    // Queue full: serve delivery reports and retry.
                    assert!(
                        matches!(
                            e,
                            rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "{e}"
                    );
                    self.producer.poll(Duration::from_millis(10));
                    record = r;
                }
            }
        }
    }

    /// Sends test events `from..to` round-robin over `partitions` partitions, flushes, and
    /// counts them into `landed` (partition → records). Every 1000th event carries the headers
    /// of [`event_headers`].
    pub fn send_events(&self, from: i64, to: i64, partitions: i32, landed: &mut Landed) {
        for id in from..to {
            let partition = (id % i64::from(partitions)) as i32;
            let headers = event_headers(id).map(|list| {
                list.into_iter()
                    .fold(OwnedHeaders::new(), |h, (key, value)| h.insert(Header { key, value: value.as_deref() }))
            });
            self.send_with_headers(partition, &id.to_string(), event_json(id).as_bytes(), headers);
            *landed.entry(partition).or_default() += 1;
        }
        self.flush();
    }

    /// Like [`Self::send_events`], but the ids [`malformed`] picks (1 in 100) are sent as
    /// broken JSON, which belongs in the dead-letter table.
    pub fn send_events_with_malformed(&self, from: i64, to: i64, partitions: i32, landed: &mut Landed) {
        for id in from..to {
            let partition = (id % i64::from(partitions)) as i32;
            let payload = if malformed(id) { format!("{{\"id\": {id}, broken") } else { event_json(id) };
            self.send(partition, &id.to_string(), payload.as_bytes());
            *landed.entry(partition).or_default() += 1;
        }
        self.flush();
    }

    pub fn flush(&self) {
        self.producer.flush(Duration::from_secs(60)).expect("flush");
    }
}

/// The ids [`TestProducer::send_events_with_malformed`] sends as broken JSON: 1 in 100.
pub fn malformed(id: i64) -> bool {
    id % 100 == 42
}

/// The JSON of test record `id` (the schema of [`crate::writer::events_pipeline`]).
pub fn event_json(id: i64) -> String {
    format!(
        r#"{{"id": {id}, "ts": "2026-11-{:02}T{:02}:{:02}:00Z", "user": "user-{}", "amount": "{}.{:02}", "tags": ["a", "b{}"], "geo": {{"lat": {}.5, "lon": -{}.25}}}}"#,
        1 + id % 3,
        id % 24,
        id % 60,
        id % 1000,
        id % 10_000,
        id % 100,
        id % 7,
        id % 90,
        id % 180
    )
}

/// Offsets a consumer group has committed for partitions `0..partitions` of a topic.
pub fn group_offsets(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Landed {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).set("group.id", group).create().expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets");
    committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// A producer thread sending test events in small batches until finished.
pub struct BackgroundProducer {
    running: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(i64, Landed)>,
}

impl BackgroundProducer {
    /// Sends ids `from..` to `topic` over `partitions`, `batch` records every 100 ms.
    pub fn start(bootstrap: &str, topic: &str, from: i64, partitions: i32, batch: i64) -> Self {
        use std::sync::atomic::Ordering;
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (flag, bootstrap, topic) = (running.clone(), bootstrap.to_string(), topic.to_string());
        let thread = std::thread::spawn(move || {
            let producer = TestProducer::new(&bootstrap, &topic);
            let mut landed = Landed::new();
            let mut next = from;
            while flag.load(Ordering::Relaxed) {
                producer.send_events(next, next + batch, partitions, &mut landed);
                next += batch;
                std::thread::sleep(Duration::from_millis(100));
            }
            (next, landed)
        });
        BackgroundProducer { running, thread }
    }

    /// Stops; returns the first id not sent and how many records each partition got.
    pub fn finish(self) -> (i64, Landed) {
        self.running.store(false, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("the background producer panicked")
    }
}

/// The headers test event `id` carries: for every 1000th, a value with `/ ? # %` and non-ASCII
/// and a header without value; none for the others.
pub fn event_headers(id: i64) -> Option<Vec<(&'static str, Option<String>)>> {
    (id % 1000 == 7).then(|| vec![("trace", Some(format!("t/?#%é-{id}"))), ("none", None)])
}
