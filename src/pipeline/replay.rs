//! `apmtop --replay FILE`: a capture processed without sockets. Each record goes through the
//! receivers' decode path and the [`Ingest`] hand-over into the same [`Aggregator`] a live
//! session runs, then every pending trace is closed and the final snapshot returned.
//!
//! Time is the recording's: a record is handled at its arrival time relative to the first one,
//! and traces expire at the aggregator's tick boundaries of that clock, so grace periods and late
//! spans work out as they did live, however fast the file is read.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Aggregator, MAX_IN_FLIGHT_SPANS, TICK};
use crate::capture::{CaptureError, CaptureReader};
use crate::cli::Settings;
use crate::receive::{self, Ingest};
use crate::snapshot::Snapshot;
use crate::stats::Stats;

/// Why a capture could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be opened.
    #[error("cannot open the capture {path}: {source}")]
    Open {
        /// The capture file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a readable capture.
    #[error("{path}: {source}")]
    Capture {
        /// The capture file.
        path: PathBuf,
        /// What is wrong with it.
        source: CaptureError,
    },
    /// The pipeline stopped taking exports.
    #[error("the pipeline refused an export from {path}")]
    Refused {
        /// The capture file.
        path: PathBuf,
    },
}

impl ReplayError {
    /// Exit code: 2 for an unusable file, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ReplayError::Open { .. } | ReplayError::Capture { .. } => 2,
            ReplayError::Refused { .. } => 1,
        }
    }
}

/// What a replay processed, besides the snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayCounts {
    /// Records read.
    pub records: u64,
    /// Records that did not decode (counted as malformed exports, as live).
    pub malformed: u64,
}

/// Processes the capture at `path` with `settings` and returns the final snapshot.
pub async fn run(settings: &Settings, path: &Path) -> Result<(Snapshot, ReplayCounts), ReplayError> {
    let file = File::open(path).map_err(|source| ReplayError::Open { path: path.to_path_buf(), source })?;
    let capture_error = |source| ReplayError::Capture { path: path.to_path_buf(), source };
    let mut reader = CaptureReader::new(BufReader::new(file)).map_err(capture_error)?;

    let stats = Arc::new(Stats::default());
    let (ingest, mut batches) = Ingest::new(MAX_IN_FLIGHT_SPANS, Arc::clone(&stats));
    let (published, _snapshots) = watch::channel(Arc::new(Snapshot::default()));
    let mut aggregator = Aggregator::new(settings, Arc::clone(&stats), published);
    let mut clock = RecordingClock::new(Instant::now());
    let mut counts = ReplayCounts::default();

    while let Some(record) = reader.next_record().map_err(capture_error)? {
        counts.records += 1;
        let now = clock.at(record.arrival_unix_ns);
        aggregator.expire(clock.last_tick());
        match receive::decode_record(&record) {
            Ok(export) => {
                ingest.submit(export).await.map_err(|_| ReplayError::Refused { path: path.to_path_buf() })?;
                while let Ok(ingested) = batches.try_recv() {
                    aggregator.handle_batch(ingested.batch, now);
                }
            }
            Err(error) => {
                tracing::debug!(%error, offset = reader.offset(), "recorded export does not decode");
                Stats::add(&stats.exports_malformed, 1);
                counts.malformed += 1;
            }
        }
    }
    aggregator.flush();
    Ok((aggregator.report_snapshot(), counts))
}

/// Maps recorded arrival times onto `Instant`s, never going backwards (exports handled
/// concurrently may be recorded slightly out of order).
struct RecordingClock {
    base: Instant,
    first_ns: Option<u64>,
    now: Instant,
}

impl RecordingClock {
    fn new(base: Instant) -> Self {
        RecordingClock { base, first_ns: None, now: base }
    }

    /// The instant of a record that arrived at `arrival_unix_ns`.
    fn at(&mut self, arrival_unix_ns: u64) -> Instant {
        let first = *self.first_ns.get_or_insert(arrival_unix_ns);
        let at = self.base + Duration::from_nanos(arrival_unix_ns.saturating_sub(first));
        self.now = self.now.max(at);
        self.now
    }

    /// The last aggregator tick at or before the current instant: when a live session last
    /// looked for expired traces.
    fn last_tick(&self) -> Instant {
        let elapsed = self.now.duration_since(self.base).as_nanos();
        let tick = TICK.as_nanos().max(1);
        let ticks = u64::try_from(elapsed / tick).unwrap_or(u64::MAX);
        self.base + TICK.saturating_mul(u32::try_from(ticks).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_clock_follows_arrivals_and_never_goes_back() {
        let base = Instant::now();
        let mut clock = RecordingClock::new(base);
        assert_eq!(clock.at(5_000_000_000), base);
        assert_eq!(clock.at(5_250_000_000), base + Duration::from_millis(250));
        assert_eq!(clock.last_tick(), base + Duration::from_millis(200));
        assert_eq!(clock.at(5_100_000_000), base + Duration::from_millis(250));
    }
}
