//! The trace view's state and its rows: a kept trace laid out as a waterfall.
//!
//! The spans of a [`TraceRecord`] become rows in tree order (children by start time, indented by
//! depth). The queries of a shape that repeated as an N+1 under one parent fold into one row
//! ("× 40 SELECT … FROM author WHERE id = ?") spanning the first start to the last end; Enter on
//! that row unfolds it. The rows are computed here, from the record and the state, so the view
//! and the cursor always agree.

use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::aggregate::traces::TraceRecord;
use crate::model::{SpanId, SpanKind};

/// Where the trace asked for stands.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceLoad {
    /// Asked, no answer yet.
    Pending,
    /// The kept spans.
    Loaded(Arc<TraceRecord>),
    /// The aggregator no longer keeps this trace.
    Missing,
}

/// An N+1 group's identity within a trace: its parent span and its shape.
pub type GroupKey = (Option<SpanId>, u64);

/// The open trace view.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceState {
    /// The trace, as 32 hex digits.
    pub trace_id: String,
    /// What was opened from (for the title): an endpoint or a finding.
    pub origin: String,
    /// The answer so far.
    pub load: TraceLoad,
    /// Selected row.
    pub cursor: usize,
    /// Unfolded N+1 groups.
    pub expanded: FxHashSet<GroupKey>,
}

impl TraceState {
    /// A trace just asked for.
    pub fn pending(trace_id: String, origin: String) -> Self {
        TraceState { trace_id, origin, load: TraceLoad::Pending, cursor: 0, expanded: FxHashSet::default() }
    }

    /// The rows as drawn now (none until loaded).
    pub fn rows(&self) -> Vec<WaterfallRow> {
        match &self.load {
            TraceLoad::Loaded(record) => waterfall_rows(record, &self.expanded),
            _ => Vec::new(),
        }
    }

    /// Moves the cursor by `delta` rows (clamped).
    pub fn shift(&mut self, delta: isize) {
        let rows = self.rows().len();
        if rows == 0 {
            return;
        }
        self.cursor = self.cursor.saturating_add_signed(delta).min(rows - 1);
    }

    /// Enter: folds or unfolds the group under the cursor. Returns whether something changed.
    pub fn toggle(&mut self) -> bool {
        let rows = self.rows();
        let Some(row) = rows.get(self.cursor) else { return false };
        let Some(group) = &row.group else { return false };
        if !self.expanded.remove(&group.key) {
            self.expanded.insert(group.key);
        }
        true
    }
}

/// A folded (or unfolded) N+1 group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupInfo {
    /// Its identity.
    pub key: GroupKey,
    /// Executions in the group.
    pub count: usize,
    /// The normalized statement.
    pub fingerprint: String,
    /// Whether its members are shown below it.
    pub expanded: bool,
}

/// One row of the waterfall.
#[derive(Debug, Clone, PartialEq)]
pub struct WaterfallRow {
    /// Nesting depth (0 for the root).
    pub depth: usize,
    /// Span name (for a group: the first member's).
    pub name: String,
    /// The statement (DB spans), or the shape (groups).
    pub statement: Option<String>,
    /// Service, when it differs from the trace root's.
    pub service: Option<String>,
    /// Start, unix nanoseconds.
    pub start_ns: u64,
    /// End, unix nanoseconds.
    pub end_ns: u64,
    /// Time spent: the span's duration, or the members' summed durations for a group.
    pub busy_ns: u64,
    /// The span (or a group member) has status ERROR.
    pub is_error: bool,
    /// A database span.
    pub is_db: bool,
    /// Set on a group's row.
    pub group: Option<GroupInfo>,
}

/// The rows of `record`, with the groups in `expanded` unfolded.
pub fn waterfall_rows(record: &TraceRecord, expanded: &FxHashSet<GroupKey>) -> Vec<WaterfallRow> {
    let spans = &record.spans;
    let known: FxHashSet<SpanId> = spans.iter().map(|s| s.span_id).collect();
    let repeated: FxHashMap<u64, &str> =
        record.n_plus_one.iter().map(|s| (s.fingerprint_id, s.fingerprint.as_str())).collect();
    // Children by parent, in start order (spans are sorted by start already).
    let mut children: FxHashMap<Option<SpanId>, Vec<usize>> = FxHashMap::default();
    for (i, span) in spans.iter().enumerate() {
        let parent = span.parent.filter(|p| known.contains(p));
        children.entry(parent).or_default().push(i);
    }
    let root_service = spans.iter().find(|s| s.kind == SpanKind::Server).or(spans.first()).map(|s| &s.service);
    let row_of = |i: usize, depth: usize| {
        let span = &spans[i];
        WaterfallRow {
            depth,
            name: span.name.to_string(),
            statement: span.statement.as_deref().map(str::to_string),
            service: root_service.filter(|r| **r != span.service).map(|_| span.service.to_string()),
            start_ns: span.start_ns,
            end_ns: span.end_ns,
            busy_ns: span.duration_ns(),
            is_error: span.is_error,
            is_db: span.statement.is_some() || span.fingerprint_id.is_some(),
            group: None,
        }
    };

    let mut rows = Vec::new();
    // Depth-first, with an explicit stack: (parent, depth), children pushed in reverse.
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let push_children = |stack: &mut Vec<(usize, usize)>, parent: Option<SpanId>, depth: usize| {
        if let Some(kids) = children.get(&parent) {
            stack.extend(kids.iter().rev().map(|&k| (k, depth)));
        }
    };
    push_children(&mut stack, None, 0);
    let mut grouped: FxHashSet<GroupKey> = FxHashSet::default();
    while let Some((i, depth)) = stack.pop() {
        let span = &spans[i];
        let group_key = span.fingerprint_id.filter(|id| repeated.contains_key(id)).map(|id| (span.parent, id));
        if let Some(key) = group_key {
            if grouped.contains(&key) {
                // A member of a group already drawn: shown (unfolded) with it, or not at all.
                continue;
            }
            grouped.insert(key);
            let members: Vec<usize> = children
                .get(&span.parent.filter(|p| known.contains(p)))
                .map(|kids| kids.iter().copied().filter(|&k| spans[k].fingerprint_id == Some(key.1)).collect())
                .unwrap_or_default();
            if members.len() > 1 {
                let is_expanded = expanded.contains(&key);
                rows.push(WaterfallRow {
                    depth,
                    name: span.name.to_string(),
                    statement: repeated.get(&key.1).map(|s| s.to_string()),
                    service: row_of(i, depth).service,
                    start_ns: members.iter().map(|&k| spans[k].start_ns).min().unwrap_or(span.start_ns),
                    end_ns: members.iter().map(|&k| spans[k].end_ns).max().unwrap_or(span.end_ns),
                    busy_ns: members.iter().map(|&k| spans[k].duration_ns()).sum(),
                    is_error: members.iter().any(|&k| spans[k].is_error),
                    is_db: true,
                    group: Some(GroupInfo {
                        key,
                        count: members.len(),
                        fingerprint: repeated.get(&key.1).map(|s| s.to_string()).unwrap_or_default(),
                        expanded: is_expanded,
                    }),
                });
                if is_expanded {
                    rows.extend(members.iter().map(|&k| row_of(k, depth + 1)));
                }
                continue;
            }
        }
        rows.push(row_of(i, depth));
        push_children(&mut stack, Some(span.span_id), depth + 1);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::testing::sample_trace;

    #[test]
    fn an_n_plus_one_folds_into_one_row_and_unfolds_on_enter() {
        let record = Arc::new(sample_trace());
        let mut state = TraceState::pending(record.trace_id.to_string(), "GET /api/books".into());
        state.load = TraceLoad::Loaded(Arc::clone(&record));
        let rows = state.rows();
        let group_at = rows.iter().position(|r| r.group.is_some()).expect("a folded group");
        let group = rows[group_at].group.clone().expect("group");
        assert_eq!(group.count, 40);
        assert!(!group.expanded);
        // The 40 queries are one row: far fewer rows than spans.
        assert_eq!(rows.len(), record.spans.len() - 39);
        state.cursor = group_at;
        assert!(state.toggle());
        assert_eq!(state.rows().len(), record.spans.len() + 1);
        assert!(state.rows()[group_at].group.as_ref().is_some_and(|g| g.expanded));
        state.toggle();
        assert_eq!(state.rows().len(), rows.len());
    }

    #[test]
    fn rows_follow_the_tree_with_depths() {
        let record = sample_trace();
        let rows = waterfall_rows(&record, &FxHashSet::default());
        assert_eq!(rows[0].depth, 0);
        assert!(rows.iter().skip(1).all(|r| r.depth >= 1));
        assert!(rows.iter().any(|r| r.is_error));
        assert!(rows.iter().any(|r| r.service.as_deref() == Some("payments")));
    }

    #[test]
    fn the_cursor_is_clamped() {
        let mut state = TraceState::pending("x".into(), "y".into());
        state.shift(5);
        assert_eq!(state.cursor, 0);
        state.load = TraceLoad::Loaded(Arc::new(sample_trace()));
        state.shift(isize::MAX);
        assert_eq!(state.cursor, state.rows().len() - 1);
        state.shift(isize::MIN);
        assert_eq!(state.cursor, 0);
    }
}
