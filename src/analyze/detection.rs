//! What the per-request detectors report: one [`Detection`] per cause found in a request, with
//! the figures the aggregate needs to rank and explain it across requests.

use std::sync::Arc;

use super::fingerprint::Fingerprint;

/// The kind of cause; its code is the report's `category`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// One query shape repeated once per item of a loop.
    NPlusOne,
    /// A loop that runs several queries per item (A, B, A, B, ...).
    MnPlusOne,
    /// The same query with the same values run more than once.
    DuplicateQuery,
    /// A statement whose shape is slow (leading-wildcard `LIKE`, no `LIMIT`, big `OFFSET`, ...).
    SlowQueryShape,
    /// Outgoing HTTP, RPC or messaging calls the request waits for.
    BlockingOutgoingCalls,
    /// Response bodies above the size threshold.
    HugeResponse,
    /// The same INSERT/UPDATE/DELETE run once per row.
    RowByRowWrite,
    /// Many cache calls, or much time in them.
    CacheCalls,
    /// The same cache key read more than once in one request.
    RepeatedCacheGet,
    /// A new database connection opened inside the request.
    ConnectionChurn,
}

impl Category {
    /// The stable code in reports (`n_plus_one`, `slow_query_shape`, ...).
    pub fn code(self) -> &'static str {
        match self {
            Category::NPlusOne => "n_plus_one",
            Category::MnPlusOne => "mn_plus_one",
            Category::DuplicateQuery => "duplicate_query",
            Category::SlowQueryShape => "slow_query_shape",
            Category::BlockingOutgoingCalls => "blocking_outgoing_calls",
            Category::HugeResponse => "huge_response",
            Category::RowByRowWrite => "row_by_row_write",
            Category::CacheCalls => "cache_calls",
            Category::RepeatedCacheGet => "repeated_cache_get",
            Category::ConnectionChurn => "connection_churn",
        }
    }
}

/// One cause found in one request.
#[derive(Debug, Clone)]
pub struct Detection {
    /// Its category.
    pub category: Category,
    /// The rule within the category (`leading_wildcard_like`, ...); empty when it has one.
    pub rule: &'static str,
    /// What it is about, stable across requests: a fingerprint id, a peer, a cache key.
    pub subject: Box<str>,
    /// The query shape, for query findings.
    pub fingerprint: Option<Arc<Fingerprint>>,
    /// The DB or cache system, or the RPC/messaging system of a call.
    pub system: Option<Arc<str>>,
    /// An example statement, command or URL.
    pub example: Option<Box<str>>,
    /// How often it happened in the request (executions, calls, repeats).
    pub count: u32,
    /// Time it cost the request, nanoseconds.
    pub cost_ns: u64,
    /// A rule-specific figure: returned rows, `OFFSET`, sequential calls, pattern length.
    pub figure: u64,
    /// Where in the code, when the spans say.
    pub code_location: Option<Box<str>>,
    /// Rule-specific words for the title (the tables of an MN+1 pattern).
    pub detail: Option<Box<str>>,
}

impl Detection {
    /// A detection with the given identity and no figures yet.
    pub fn new(category: Category, rule: &'static str, subject: impl Into<Box<str>>) -> Detection {
        Detection {
            category,
            rule,
            subject: subject.into(),
            fingerprint: None,
            system: None,
            example: None,
            count: 0,
            cost_ns: 0,
            figure: 0,
            code_location: None,
            detail: None,
        }
    }
}

/// Total length covered by `(start, end)` intervals in any order (overlaps counted once).
pub fn covered_ns(mut intervals: Vec<(u64, u64)>) -> u64 {
    intervals.sort_unstable();
    super::union_length(intervals.into_iter())
}
