//! The writer pool: writers, each decoding record batches and writing data files. The
//! splitter (the pipeline) hands batches round-robin; each writer keeps its files open until
//! the checkpoint asks it to close them. The pool grows and shrinks as [`crate::scaling`]
//! decides, and measures what that decision needs (time writers worked, time the splitter
//! waited for one).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use iceberg::spec::DataFile;
use icefall_schemas::decode::Decoder;
use icefall_schemas::metadata::{MetadataColumns, RecordMeta};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::budget::Lease;
use crate::dead_letter::DeadLetter;
use crate::freshness::{CheckpointTimes, EventTime};
use crate::record::SourceRecord;
use crate::{Error, Result};
use icefall_table::files::{FileSetWriter, TableFiles};
use icefall_table::reachable::delete_uncommitted;

/// What the writers produced since the last close.
#[derive(Debug, Default)]
pub struct WrittenFiles {
    pub data_files: Vec<DataFile>,
    pub dead_letters: Vec<DeadLetter>,
    pub rows: u64,
    pub times: CheckpointTimes,
}

/// What writers need to turn records into files of the table's current schema.
#[derive(Clone)]
pub struct WriteSetup {
    pub decoder: Arc<Decoder>,
    pub metadata: Arc<MetadataColumns>,
    pub files: TableFiles,
    /// Most files one writer keeps open (one per table partition it writes to); past it the
    /// writer closes its files early, so memory stays bounded whatever the partition fanout.
    pub max_open_files: usize,
    /// The event-time column whose newest value per partition feeds the watermark.
    pub event_time: Option<Arc<EventTime>>,
}

enum Command {
    /// Records to write, and the budget lease of their bytes (released once written).
    Write(Vec<SourceRecord>, Option<Lease>),
    /// Use a new decoder (a new source schema) and, after a schema change, new files.
    Reconfigure(Box<WriteSetup>),
    /// Close all files; the next files belong to checkpoint `next_checkpoint`.
    Close { next_checkpoint: u64, reply: oneshot::Sender<Result<WrittenFiles>> },
}

pub struct WriterPool {
    senders: Vec<mpsc::Sender<Command>>,
    tasks: Vec<JoinHandle<()>>,
    /// Nanoseconds each writer spent working since the last `take_load`.
    busy: Vec<Arc<AtomicU64>>,
    /// Time the splitter waited for a writer to accept a batch since the last `take_load`.
    waited: Duration,
    next: usize,
    /// What a writer added now starts with.
    setup: WriteSetup,
    instance: String,
    checkpoint: u64,
    /// Writer numbers are never reused within a process, so file names stay unique.
    next_index: usize,
}

impl WriterPool {
    /// Starts `count` writers. `instance` makes file names unique per process start.
    pub fn start(count: usize, setup: WriteSetup, instance: &str, first_checkpoint: u64) -> Self {
        let mut pool = WriterPool {
            senders: Vec::new(),
            tasks: Vec::new(),
            busy: Vec::new(),
            waited: Duration::ZERO,
            next: 0,
            setup,
            instance: instance.to_string(),
            checkpoint: first_checkpoint,
            next_index: 0,
        };
        for _ in 0..count.max(1) {
            pool.grow();
        }
        pool
    }

    /// Writers running now.
    pub fn writer_count(&self) -> usize {
        self.senders.len()
    }

    /// Adds a writer; it takes batches from the next dispatch on.
    pub fn grow(&mut self) {
        let (tx, rx) = mpsc::channel(4);
        let busy = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            index: self.next_index,
            setup: self.setup.clone(),
            checkpoint: self.checkpoint,
            instance: self.instance.clone(),
            open: None,
            rolls: 0,
            closed: Vec::new(),
            closed_rows: 0,
            dead_letters: Vec::new(),
            times: CheckpointTimes::default(),
            failed: None,
            busy: busy.clone(),
        };
        self.next_index += 1;
        self.senders.push(tx);
        self.busy.push(busy);
        self.tasks.push(tokio::spawn(writer.run(rx)));
    }

    /// Retires the newest writer. Call right after `close_all`, when no writer holds files.
    pub async fn shrink(&mut self) {
        if self.senders.len() <= 1 {
            return;
        }
        self.senders.pop();
        self.busy.pop();
        if let Some(task) = self.tasks.pop() {
            let _ = task.await;
        }
    }

    /// How loaded the pool was over the last `elapsed`; resets the counters.
    pub fn take_load(&mut self, elapsed: Duration) -> crate::scaling::Load {
        let busy_ns: u64 = self.busy.iter().map(|b| b.swap(0, Ordering::Relaxed)).sum();
        crate::scaling::Load {
            writers: self.senders.len(),
            elapsed,
            busy: Duration::from_nanos(busy_ns),
            waited: std::mem::take(&mut self.waited),
        }
    }

    /// Hands a batch to the next writer; waits when that writer is busy (backpressure).
    pub async fn dispatch(&mut self, records: Vec<SourceRecord>, lease: Option<Lease>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let i = self.next % self.senders.len();
        self.next = self.next.wrapping_add(1);
        let started = Instant::now();
        let sent = self.senders[i].send(Command::Write(records, lease)).await;
        self.waited += started.elapsed();
        sent.map_err(|_| Error::Internal("a writer task stopped".into()))
    }

    /// Every writer uses `setup` for the records dispatched after this call. Files open now
    /// keep the schema they were opened with: after a schema change, close them first.
    pub async fn reconfigure(&mut self, setup: WriteSetup) -> Result<()> {
        self.setup = setup.clone();
        for sender in &self.senders {
            sender
                .send(Command::Reconfigure(Box::new(setup.clone())))
                .await
                .map_err(|_| Error::Internal("a writer task stopped".into()))?;
        }
        Ok(())
    }

    /// Closes every writer's files (after all batches handed to it) and gathers them.
    pub async fn close_all(&mut self, next_checkpoint: u64) -> Result<WrittenFiles> {
        self.checkpoint = next_checkpoint;
        let mut replies = Vec::with_capacity(self.senders.len());
        for sender in &self.senders {
            let (reply, rx) = oneshot::channel();
            sender
                .send(Command::Close { next_checkpoint, reply })
                .await
                .map_err(|_| Error::Internal("a writer task stopped".into()))?;
            replies.push(rx);
        }
        let mut all = WrittenFiles::default();
        let mut first_error = None;
        for rx in replies {
            match rx.await.map_err(|_| Error::Internal("a writer task stopped".into()))? {
                Ok(part) => {
                    all.data_files.extend(part.data_files);
                    all.dead_letters.extend(part.dead_letters);
                    all.rows += part.rows;
                    all.times.absorb(part.times);
                }
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        match first_error {
            // Files of the writers that did succeed are garbage now; the caller deletes them.
            Some(e) => Err(e),
            None => Ok(all),
        }
    }

    pub async fn shutdown(self) {
        drop(self.senders);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

struct Writer {
    index: usize,
    setup: WriteSetup,
    instance: String,
    checkpoint: u64,
    open: Option<FileSetWriter>,
    /// File sets opened in this checkpoint (part of the file names, so they never collide).
    rolls: u64,
    /// Files closed early in this checkpoint (the open-file cap); committed with the rest.
    closed: Vec<DataFile>,
    /// Rows in `closed`.
    closed_rows: u64,
    dead_letters: Vec<DeadLetter>,
    times: CheckpointTimes,
    /// A write failed: the rest of this checkpoint is void and `Close` reports it.
    failed: Option<Error>,
    /// Nanoseconds spent working, read and reset by the pool's load measurement.
    busy: Arc<AtomicU64>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(command) = rx.recv().await {
            let started = Instant::now();
            match command {
                Command::Write(records, _lease) => {
                    if self.failed.is_none()
                        && let Err(e) = self.write(records).await
                    {
                        tracing::warn!(writer = self.index, error = %e, "writing failed; this checkpoint will be retried");
                        self.failed = Some(e);
                    }
                }
                Command::Reconfigure(setup) => self.setup = *setup,
                Command::Close { next_checkpoint, reply } => {
                    let result = self.close().await;
                    self.checkpoint = next_checkpoint;
                    let _ = reply.send(result);
                }
            }
            self.busy.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
    }

    async fn write(&mut self, records: Vec<SourceRecord>) -> Result<()> {
        let decoded = self.setup.decoder.decode(records.iter().map(|r| r.payload.as_deref()))?;
        for (index, error) in decoded.errors {
            self.dead_letters.push(DeadLetter::new(&records[index], error));
        }
        self.times.observe_arrivals(&records);
        if decoded.batch.num_rows() > 0 {
            let batch = if self.setup.metadata.is_empty() {
                decoded.batch
            } else {
                let metas: Vec<RecordMeta<'_>> = records
                    .iter()
                    .map(|r| RecordMeta {
                        topic: &r.topic,
                        partition: r.partition,
                        offset: r.offset,
                        timestamp_ms: r.timestamp_ms,
                        key: r.key.as_deref(),
                        headers: &r.headers,
                        ingested_at_us: r.received_at_us,
                    })
                    .collect();
                self.setup.metadata.fill(decoded.batch, &decoded.rows, &metas)?
            };
            // After the metadata columns are filled: the event time may be one of them.
            if let Some(event) = &self.setup.event_time {
                self.times.observe_events(&batch, &decoded.rows, &records, event)?;
            }
            if self.open.is_none() {
                let prefix = format!("{}-{:06}-{}-{}", self.instance, self.checkpoint, self.index, self.rolls);
                self.rolls += 1;
                self.open = Some(self.setup.files.open(prefix)?);
            }
            if let Some(open) = self.open.as_mut() {
                open.write(batch).await?;
                if open.open_files() > self.setup.max_open_files
                    && let Some(full) = self.open.take()
                {
                    tracing::debug!(
                        writer = self.index,
                        files = full.open_files(),
                        "open-file cap reached; closing early"
                    );
                    self.closed_rows += full.rows();
                    self.closed.extend(full.close().await?);
                }
            }
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<WrittenFiles> {
        let dead_letters = std::mem::take(&mut self.dead_letters);
        let times = std::mem::take(&mut self.times);
        let open = self.open.take();
        let rows = open.as_ref().map_or(0, FileSetWriter::rows) + std::mem::take(&mut self.closed_rows);
        let mut early = std::mem::take(&mut self.closed);
        self.rolls = 0;
        let closed = match open {
            Some(w) => match w.close().await {
                Ok(files) => {
                    early.extend(files);
                    Ok(early)
                }
                Err(e) => {
                    delete_uncommitted(self.setup.files.file_io(), early.iter().map(DataFile::file_path)).await;
                    Err(e)
                }
            },
            None => Ok(early),
        };
        if let Some(e) = self.failed.take() {
            if let Ok(files) = closed {
                delete_uncommitted(self.setup.files.file_io(), files.iter().map(DataFile::file_path)).await;
            }
            return Err(e);
        }
        Ok(WrittenFiles { data_files: closed?, dead_letters, rows, times })
    }
}
