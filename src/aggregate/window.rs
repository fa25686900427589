//! Time windows: the same aggregates as the all-time ones, but only for the last minute or five,
//! so a developer can fix code, reload the page and compare.
//!
//! Requests are recorded into fixed slices of [`SLICE`] (a ring covering [`KEPT`]); the view of
//! a window is the exact merge of the slices it covers (histograms add), so a window's
//! percentiles are as exact as the all-time ones. A window may reach up to one slice further
//! back than its nominal length.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{AggregateConfig, Aggregates};
use crate::analyze::RequestAnalysis;
use crate::assemble::AssemblyOutput;

/// Length of one slice.
pub const SLICE: Duration = Duration::from_secs(10);
/// How far back slices are kept: the longest window offered.
pub const KEPT: Duration = Duration::from_secs(300);

/// The slices of the last [`KEPT`], oldest first.
pub struct Slices {
    config: AggregateConfig,
    ring: VecDeque<(Instant, Aggregates)>,
}

impl Slices {
    /// No slices yet.
    pub fn new(config: AggregateConfig) -> Self {
        Slices { config, ring: VecDeque::new() }
    }

    /// The slice that `now` falls in, started if needed; slices older than [`KEPT`] are dropped.
    fn current(&mut self, now: Instant) -> &mut Aggregates {
        let fresh = self.ring.back().is_none_or(|(start, _)| now.saturating_duration_since(*start) >= SLICE);
        if fresh {
            while self.ring.front().is_some_and(|(start, _)| now.saturating_duration_since(*start) > KEPT + SLICE) {
                self.ring.pop_front();
            }
            self.ring.push_back((now, Aggregates::new(self.config.clone())));
        }
        match self.ring.back_mut() {
            Some((_, aggregates)) => aggregates,
            None => unreachable!("a slice was just pushed"),
        }
    }

    /// Records one analyzed request at `now`.
    pub fn record(&mut self, analysis: &RequestAnalysis, now: Instant) {
        self.current(now).record(analysis);
    }

    /// Records assembly counters at `now`.
    pub fn record_assembly(&mut self, out: &AssemblyOutput, now: Instant) {
        self.current(now).record_assembly(out);
    }

    /// Everything recorded in the last `span` before `now` (whole slices), merged.
    pub fn merged(&self, span: Duration, now: Instant) -> Aggregates {
        let mut merged = Aggregates::new(self.config.clone());
        for (start, slice) in &self.ring {
            if now.saturating_duration_since(*start) < span + SLICE {
                merged.merge(slice);
            }
        }
        merged
    }

    /// Slices held.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// No slice held.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::test_support::analyze;
    use crate::snapshot::Totals;

    #[test]
    fn a_window_holds_only_its_recent_slices() {
        let t0 = Instant::now();
        let mut slices = Slices::new(AggregateConfig::default());
        let request = analyze(Vec::new());
        slices.record(&request, t0);
        slices.record(&request, t0 + Duration::from_secs(5));
        slices.record(&request, t0 + Duration::from_secs(125));
        let now = t0 + Duration::from_secs(130);
        let requests = |span| slices.merged(span, now).snapshot(Totals::default(), 0).totals.requests;
        assert_eq!(requests(Duration::from_secs(60)), 1);
        assert_eq!(requests(Duration::from_secs(300)), 3);
        assert_eq!(slices.len(), 2);
    }

    #[test]
    fn old_slices_are_dropped() {
        let t0 = Instant::now();
        let mut slices = Slices::new(AggregateConfig::default());
        let request = analyze(Vec::new());
        for i in 0..100 {
            slices.record(&request, t0 + Duration::from_secs(i * 10));
        }
        assert!(slices.len() <= (KEPT.as_secs() / SLICE.as_secs() + 2) as usize, "{}", slices.len());
    }
}
