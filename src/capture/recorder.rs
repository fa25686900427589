//! The `--record` writer: receivers hand each export to a [`Recorder`] without waiting, and one
//! blocking task appends them to the capture file.
//!
//! Recording must never slow ingest: the hand-over is a `try_send` on a bounded channel, also
//! bounded in bytes, and a record that does not fit is dropped and counted
//! (`totals.capture_records_dropped`). At shutdown the writer is told to stop after what is
//! queued, flushes, and says how many records it wrote.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

use super::{CaptureError, CaptureRecord, HEADER_BYTES, check_header, header, write_record};
use crate::stats::Stats;

/// Records waiting for the writer, at most.
const QUEUE_RECORDS: usize = 1024;
/// Payload bytes waiting for the writer, at most.
const QUEUE_BYTES: usize = 256 * 1024 * 1024;

/// Why recording could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file could not be opened or written.
    #[error("cannot record to {path}: {source}")]
    Io {
        /// The capture file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file exists and is something else.
    #[error("cannot record to {path}: {source}; choose a new file or an earlier capture to append to")]
    NotACapture {
        /// The capture file.
        path: PathBuf,
        /// What is wrong with it.
        source: CaptureError,
    },
}

enum Message {
    Record(CaptureRecord),
    Stop,
}

/// The receivers' handle: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Message>,
    queued_bytes: Arc<AtomicUsize>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    /// Queues one export for the file, or drops and counts it when the writer is behind.
    pub fn record(&self, record: CaptureRecord) {
        let len = record.payload.len();
        let before = self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        if before.saturating_add(len) > QUEUE_BYTES || self.tx.try_send(Message::Record(record)).is_err() {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            Stats::add(&self.stats.capture_records_dropped, 1);
        }
    }
}

/// What the writer did, for the line printed at shutdown.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecordSummary {
    /// Records written.
    pub recorded: u64,
    /// Records dropped because the writer was behind.
    pub dropped: u64,
    /// The first write error, after which nothing more was written.
    pub error: Option<String>,
}

/// The running writer.
pub struct RecorderTask {
    stop: mpsc::Sender<Message>,
    stats: Arc<Stats>,
    join: tokio::task::JoinHandle<RecordSummary>,
}

impl RecorderTask {
    /// Lets the writer finish what is queued, flushes the file and returns what it did.
    pub async fn finish(self) -> RecordSummary {
        let _ = self.stop.send(Message::Stop).await;
        let mut summary = match self.join.await {
            Ok(summary) => summary,
            Err(error) => {
                RecordSummary { error: Some(format!("the capture writer failed: {error}")), ..Default::default() }
            }
        };
        summary.dropped = Stats::get(&self.stats.capture_records_dropped);
        summary
    }
}

/// Opens (or creates) the capture file and starts the writer. An existing capture is appended
/// to; an existing file that is not a capture is refused.
pub fn start(path: &Path, stats: Arc<Stats>) -> Result<(Recorder, RecorderTask), RecordError> {
    let file = open(path)?;
    let (tx, rx) = mpsc::channel(QUEUE_RECORDS);
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let recorder = Recorder { tx: tx.clone(), queued_bytes: Arc::clone(&queued_bytes), stats: Arc::clone(&stats) };
    let join = tokio::task::spawn_blocking(move || write_all(file, rx, &queued_bytes));
    Ok((recorder, RecorderTask { stop: tx, stats, join }))
}

fn open(path: &Path) -> Result<File, RecordError> {
    let io = |source| RecordError::Io { path: path.to_path_buf(), source };
    let mut file = OpenOptions::new().create(true).read(true).append(true).open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        file.write_all(&header()).map_err(io)?;
    } else {
        let mut head = Vec::with_capacity(HEADER_BYTES as usize);
        file.rewind().map_err(io)?;
        (&mut file).take(HEADER_BYTES).read_to_end_bounded(&mut head).map_err(io)?;
        check_header(&head).map_err(|source| RecordError::NotACapture { path: path.to_path_buf(), source })?;
    }
    Ok(file)
}

/// `read_to_end` on an input already bounded by `take`.
trait ReadBounded {
    fn read_to_end_bounded(&mut self, out: &mut Vec<u8>) -> std::io::Result<usize>;
}

impl<R: Read> ReadBounded for std::io::Take<R> {
    #[allow(clippy::disallowed_methods)] // the input is a Take
    fn read_to_end_bounded(&mut self, out: &mut Vec<u8>) -> std::io::Result<usize> {
        self.read_to_end(out)
    }
}

fn write_all(file: File, mut rx: mpsc::Receiver<Message>, queued_bytes: &AtomicUsize) -> RecordSummary {
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    let mut summary = RecordSummary::default();
    while let Some(message) = rx.blocking_recv() {
        let record = match message {
            Message::Record(record) => record,
            Message::Stop => break,
        };
        queued_bytes.fetch_sub(record.payload.len(), Ordering::Relaxed);
        if summary.error.is_some() {
            continue;
        }
        // Flush when nothing else is waiting, so that a capture is readable while apmtop runs.
        let written = write_record(&mut out, &record).and_then(|()| if rx.is_empty() { out.flush() } else { Ok(()) });
        match written {
            Ok(()) => summary.recorded += 1,
            Err(error) => {
                tracing::warn!(%error, "recording stopped: the capture file could not be written");
                summary.error = Some(error.to_string());
            }
        }
    }
    if summary.error.is_none()
        && let Err(error) = out.flush()
    {
        summary.error = Some(error.to_string());
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::read_all;
    use crate::model::{Compression, Protocol, Transport};
    use bytes::Bytes;

    fn record(n: u8) -> CaptureRecord {
        CaptureRecord {
            arrival_unix_ns: u64::from(n),
            protocol: Protocol { transport: Transport::HttpJson, compression: Compression::None },
            payload: Bytes::from(vec![n; 10]),
        }
    }

    #[tokio::test]
    async fn records_are_written_and_a_second_session_appends() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.apmcap");
        for n in [1, 2] {
            let (recorder, task) = start(&path, Arc::new(Stats::default())).expect("start");
            recorder.record(record(n));
            assert_eq!(task.finish().await, RecordSummary { recorded: 1, dropped: 0, error: None });
        }
        let bytes = std::fs::read(&path).expect("read");
        assert_eq!(read_all(&bytes).expect("valid"), vec![record(1), record(2)]);
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_capture_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("report.json");
        std::fs::write(&path, b"{\"totals\": {}} and more text").expect("write");
        let Err(error) = start(&path, Arc::new(Stats::default())) else {
            panic!("a report file was taken as a capture")
        };
        assert!(error.to_string().contains("not an apmtop capture"), "{error}");
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let dir = tempfile::tempdir().expect("temp dir");
        let stats = Arc::new(Stats::default());
        let (tx, _rx) = mpsc::channel(1);
        let recorder = Recorder { tx, queued_bytes: Arc::new(AtomicUsize::new(0)), stats: Arc::clone(&stats) };
        recorder.record(record(1));
        recorder.record(record(2));
        recorder.record(record(3));
        assert_eq!(Stats::get(&stats.capture_records_dropped), 2);
        drop(dir);
    }
}
