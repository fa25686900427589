//! Requests from the dashboard to the aggregator task: fetch a kept trace, choose the time
//! window, clear the statistics.
//!
//! The aggregator owns all state, so the dashboard never reads it directly: it sends a
//! [`Control`] over a bounded channel and, for a trace, gets the answer on a oneshot. The UI
//! loop never waits for that answer (it arrives as an event), and the aggregator serves these
//! between batches, so ingest never waits on the UI either.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::aggregate::traces::TraceRecord;
use crate::model::TraceId;

/// Room in the control channel; the dashboard sends one message per key press at most.
pub const CONTROL_CAPACITY: usize = 16;

/// One request to the aggregator.
#[derive(Debug)]
pub enum Control {
    /// Send back the kept spans of `trace_id`, or `None` if the trace is no longer kept.
    Trace {
        /// The trace asked for.
        trace_id: TraceId,
        /// Where the answer goes.
        reply: oneshot::Sender<Option<Arc<TraceRecord>>>,
    },
    /// Aggregate over this window from now on.
    SetWindow(Window),
    /// Forget every statistic and kept trace (a clean before/after comparison).
    Clear,
}

/// The time span the statistics cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Window {
    /// Everything since start (or the last clear).
    #[default]
    All,
    /// The last minute.
    LastMinute,
    /// The last five minutes.
    LastFiveMinutes,
}

impl Window {
    /// Every window, in the order a key cycles them.
    pub const ORDER: [Window; 3] = [Window::All, Window::LastMinute, Window::LastFiveMinutes];

    /// A short label for the header.
    pub fn label(self) -> &'static str {
        match self {
            Window::All => "all time",
            Window::LastMinute => "last 1 min",
            Window::LastFiveMinutes => "last 5 min",
        }
    }

    /// The window after this one (wrapping).
    pub fn next(self) -> Window {
        let at = Window::ORDER.iter().position(|w| *w == self).unwrap_or(0);
        Window::ORDER[(at + 1) % Window::ORDER.len()]
    }
}
