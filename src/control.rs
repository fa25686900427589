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

    /// How far back the window reaches; `None` for all time.
    pub fn duration(self) -> Option<std::time::Duration> {
        match self {
            Window::All => None,
            Window::LastMinute => Some(std::time::Duration::from_secs(60)),
            Window::LastFiveMinutes => Some(std::time::Duration::from_secs(300)),
        }
    }

    /// The window after this one (wrapping).
    pub fn next(self) -> Window {
        let at = Window::ORDER.iter().position(|w| *w == self).unwrap_or(0);
        Window::ORDER[(at + 1) % Window::ORDER.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cycle_in_order_and_wrap() {
        let seen: Vec<&str> =
            std::iter::successors(Some(Window::All), |w| Some(w.next())).take(4).map(Window::label).collect();
        assert_eq!(seen, ["all time", "last 1 min", "last 5 min", "all time"]);
    }

    #[test]
    fn trace_ids_round_trip_through_hex_and_bad_hex_is_refused() {
        let id = TraceId([0xab, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xff]);
        assert_eq!(TraceId::from_hex(&id.to_string()), Some(id));
        assert_eq!(TraceId::from_hex(&id.to_string().to_uppercase()), Some(id));
        for bad in ["", "abc", &"g".repeat(32), &"+f".repeat(16), &"0".repeat(33), "é0000000000000000000000000000000"]
        {
            assert_eq!(TraceId::from_hex(bad), None, "{bad}");
        }
    }
}
