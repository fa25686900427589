//! Per-request analysis: turns a [`Request`] into a [`RequestAnalysis`] — its endpoint, its
//! queries with fingerprints, DB time, N+1 groups and exact duplicates.
//!
//! - `fingerprint`: SQL normalization (sqlparser, with a token fallback) and its bounded cache.
//! - `endpoint`: service + method + route of a request.
//! - `n_plus_one`, `duplicates`: the detectors, over the request's queries.
//! - `hint`: concrete fix hints, worded for the service's language and ORMs.
//! - `detection`: what the detectors below report ([`Detection`]), ranked later by `aggregate`.
//! - `shapes`, `writes`, `mn_plus_one`: slow query shapes, row-by-row writes, loops of several
//!   queries per item.
//! - `outgoing`, `cache_calls`, `connections`: blocking outgoing calls, cache calls, new
//!   database connections inside the request.
//!
//! A query is a DB span with statement text. When an ORM span and a driver span nest with text on
//! both, only the innermost one counts. DB spans without text (connect, pool checkout) are counted
//! as connection spans, never as queries. Redis and Memcached spans carry commands, not SQL:
//! they are cache calls, never queries.

pub mod cache_calls;
pub mod connections;
pub mod detection;
pub mod duplicates;
pub mod endpoint;
pub mod fingerprint;
pub mod hint;
pub mod mn_plus_one;
pub mod n_plus_one;
pub mod outgoing;
pub mod shapes;
pub mod writes;

use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use xxhash_rust::xxh3::Xxh3;

use crate::model::{Request, Service, Span, SpanId, TraceId};
pub use detection::{Category, Detection};
pub use duplicates::Duplicate;
pub use endpoint::EndpointKey;
use fingerprint::{Fingerprint, FingerprintCache};
pub use n_plus_one::NPlusOne;

/// One executed query of a request.
#[derive(Debug, Clone)]
pub struct QueryExec {
    /// The span that ran it.
    pub span_id: SpanId,
    /// Fingerprint of its statement.
    pub fingerprint: Arc<Fingerprint>,
    /// DB system (`postgresql`, `sqlite`, ...; empty when unknown).
    pub db_system: Arc<str>,
    /// Statement text as sent.
    pub statement: Box<str>,
    /// Start, unix nanoseconds.
    pub start_ns: u64,
    /// End, unix nanoseconds.
    pub end_ns: u64,
    /// Same value for two executions known to run the same statement with the same values;
    /// `None` when the values are unknown (placeholders without captured parameters).
    pub identity: Option<u64>,
    /// Its parent span (the loop's common ancestor for MN+1 patterns).
    pub parent_span_id: Option<SpanId>,
    /// `db.response.returned_rows`, when the instrumentation says.
    pub returned_rows: Option<u64>,
    /// A captured `LIKE` parameter starts with a wildcard.
    pub pattern_leading_wildcard: bool,
    /// Where in the code it ran, when the span says.
    pub code_location: Option<Box<str>>,
}

impl QueryExec {
    /// Duration in nanoseconds.
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// Whether detectors may group this query (not transaction control, not opaque text).
    pub fn is_groupable(&self) -> bool {
        !self.fingerprint.opaque && !is_transaction_control(self.fingerprint.operation.as_deref())
    }
}

fn is_transaction_control(operation: Option<&str>) -> bool {
    matches!(
        operation,
        Some("BEGIN" | "START" | "COMMIT" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" | "SET" | "SHOW" | "USE" | "END")
    )
}

/// Everything the aggregates need from one request.
#[derive(Debug, Clone)]
pub struct RequestAnalysis {
    /// Its endpoint.
    pub endpoint: EndpointKey,
    /// The service that handled it.
    pub service: Arc<Service>,
    /// Its trace.
    pub trace_id: TraceId,
    /// Root span duration.
    pub duration_ns: u64,
    /// Root status ERROR or HTTP status >= 500.
    pub is_error: bool,
    /// Queries, in start order.
    pub queries: Vec<QueryExec>,
    /// Time covered by at least one query (overlaps counted once).
    pub db_time_ns: u64,
    /// DB spans without statement text.
    pub connection_spans: u32,
    /// N+1 groups.
    pub n_plus_one: Vec<NPlusOne>,
    /// Exact duplicates.
    pub duplicates: Vec<Duplicate>,
    /// The request's root span, handed back (with `spans`) so that a request worth keeping for
    /// the trace view costs no copy.
    pub root: Span,
    /// The request's other spans; the statements of the queries have moved into `queries`.
    pub spans: Vec<Span>,
    /// Everything else the detectors found: slow query shapes, row-by-row writes, MN+1 loops,
    /// outgoing calls, cache calls, new connections.
    pub detections: Vec<Detection>,
    /// Query shapes that belong to an MN+1 pattern of this request (their N+1 groups are part
    /// of that pattern, not separate findings).
    pub pattern_shapes: Vec<u64>,
    /// Response body size of the root span, bytes.
    pub response_bytes: Option<u64>,
    /// Request body size of the root span, bytes.
    pub request_bytes: Option<u64>,
    /// Time covered by outgoing calls (HTTP, RPC, messaging), overlaps counted once.
    pub outgoing_time_ns: u64,
    /// Where in the code the request was handled, when the root span says.
    pub code_location: Option<Box<str>>,
}

/// Analyzes requests; owns the fingerprint cache. Lives in the aggregator task.
pub struct Analyzer {
    cache: FingerprintCache,
    n_plus_one_min: u32,
}

impl Analyzer {
    /// `n_plus_one_min`: repeats of one shape in one request that make an N+1.
    pub fn new(n_plus_one_min: u32, cache_capacity: usize) -> Self {
        Analyzer { cache: FingerprintCache::new(cache_capacity), n_plus_one_min }
    }

    /// The fingerprint cache (for stats).
    pub fn cache(&self) -> &FingerprintCache {
        &self.cache
    }

    /// Analyzes one request, consuming it.
    pub fn analyze(&mut self, request: Request) -> RequestAnalysis {
        let Request { root, mut spans } = request;
        let endpoint = endpoint::endpoint_of(&root);
        let is_error = root.is_error || root.http.as_ref().and_then(|h| h.status_code).is_some_and(|c| c >= 500);

        let twins = not_executions(&spans);
        let (mut detections, outgoing_time_ns) = outgoing::detect(&spans);
        detections.extend(cache_calls::detect(&spans, root.duration_ns()));
        detections.extend(connections::detect(&spans));
        let mut connection_spans = 0u32;
        let mut queries = Vec::new();
        for span in &mut spans {
            if span.is_db_without_statement() {
                connection_spans += 1;
            } else if span.is_query() && !twins.contains(&span.span_id) {
                queries.push(self.query_exec(span));
            }
        }
        queries.sort_by_key(|q| q.start_ns);
        let db_time_ns = union_length(queries.iter().map(|q| (q.start_ns, q.end_ns)));
        let n_plus_one = n_plus_one::detect(&queries, self.n_plus_one_min);
        let duplicates = duplicates::detect(&queries);
        detections.extend(shapes::detect(&queries));
        detections.extend(writes::detect(&queries, self.n_plus_one_min));
        let (patterns, pattern_shapes) = mn_plus_one::detect(&queries);
        detections.extend(patterns);
        let http = root.http.as_deref();
        RequestAnalysis {
            endpoint,
            service: Arc::clone(&root.service),
            trace_id: root.trace_id,
            duration_ns: root.duration_ns(),
            is_error,
            queries,
            db_time_ns,
            connection_spans,
            n_plus_one,
            duplicates,
            detections,
            pattern_shapes,
            response_bytes: http.and_then(|h| h.response_size),
            request_bytes: http.and_then(|h| h.request_size),
            outgoing_time_ns,
            code_location: root.code().and_then(|c| c.location()).map(String::into_boxed_str),
            root,
            spans,
        }
    }

    /// The query `span` ran; its statement moves into the result.
    fn query_exec(&mut self, span: &mut Span) -> QueryExec {
        let code_location = span.code().and_then(|c| c.location()).map(String::into_boxed_str);
        let db = span.db.as_deref_mut().map(std::mem::take).unwrap_or_default();
        let statement = db.statement.unwrap_or_default();
        let fingerprint = self.cache.get(&statement, &db.system);
        let identity = query_identity(&fingerprint, &statement, db.parameters.as_deref());
        let pattern_leading_wildcard = fingerprint.facts.like_placeholder
            && db.parameters.as_deref().is_some_and(shapes::parameters_start_with_wildcard);
        QueryExec {
            span_id: span.span_id,
            fingerprint,
            db_system: db.system,
            statement,
            start_ns: span.start_ns,
            end_ns: span.end_ns,
            identity,
            parent_span_id: span.parent_span_id,
            returned_rows: db.returned_rows,
            pattern_leading_wildcard,
            code_location,
        }
    }
}

/// Query spans that record no execution of their own, and are not counted as queries:
/// - an ORM span over the driver's span: the outer one has a query child (nested), or the two are
///   siblings with the same statement, different span names (two instrumentations) and one inside
///   the other in time;
/// - a prepare (`sql.conn.prepare`, `PREPARE ...`, operation `PREPARE`): it carries the text of
///   the statement it prepares, but runs nothing;
/// - a failed direct execution followed by a prepare of the same statement: the driver's fallback
///   to a prepared statement (Go's `driver.ErrSkip`), which then runs it once.
fn not_executions(spans: &[Span]) -> FxHashSet<SpanId> {
    let mut skip: FxHashSet<SpanId> = spans.iter().filter(|s| s.is_query()).filter_map(|s| s.parent_span_id).collect();
    let mut siblings: FxHashMap<(Option<SpanId>, &str), Vec<&Span>> = FxHashMap::default();
    for span in spans {
        if let Some(statement) = span.db.as_ref().and_then(|db| db.statement.as_deref()) {
            siblings.entry((span.parent_span_id, statement)).or_default().push(span);
        }
    }
    for group in siblings.values_mut() {
        group.sort_by(|a, b| a.start_ns.cmp(&b.start_ns).then(b.end_ns.cmp(&a.end_ns)));
        for (i, span) in group.iter().enumerate() {
            let redone_as_prepared = span.is_error && group.get(i + 1).is_some_and(|next| is_prepare(next));
            if is_prepare(span) || redone_as_prepared {
                skip.insert(span.span_id);
            }
        }
        if group.len() > 1 && group.iter().any(|s| s.name != group[0].name) {
            skip.extend(sibling_twin_wrappers(group));
        }
    }
    skip
}

/// Whether a span only prepares its statement.
fn is_prepare(span: &Span) -> bool {
    let operation_is_prepare =
        span.db.as_ref().and_then(|db| db.operation.as_deref()).is_some_and(|op| op.eq_ignore_ascii_case("PREPARE"));
    operation_is_prepare
        || &*span.name == "sql.conn.prepare"
        || span.name.get(..7).is_some_and(|head| head.eq_ignore_ascii_case("PREPARE"))
}

/// Most same-statement siblings matched pairwise; larger groups match neighbours only.
const MAX_TWIN_MATCHING: usize = 512;

/// Among siblings with one statement (sorted by start, outer first), the outer span of each
/// twin pair: every span is matched to the shortest unmatched sibling of another name that
/// contains it in time, so that concurrent pairs that interleave still pair up correctly.
fn sibling_twin_wrappers(group: &[&Span]) -> Vec<SpanId> {
    let contains = |outer: &Span, inner: &Span| {
        outer.name != inner.name && outer.start_ns <= inner.start_ns && inner.end_ns <= outer.end_ns
    };
    if group.len() > MAX_TWIN_MATCHING {
        return group.windows(2).filter(|pair| contains(pair[0], pair[1])).map(|pair| pair[0].span_id).collect();
    }
    let mut by_duration: Vec<usize> = (0..group.len()).collect();
    by_duration.sort_by_key(|&i| group[i].duration_ns());
    let mut used = vec![false; group.len()];
    let mut wrappers = Vec::new();
    for &inner in &by_duration {
        if used[inner] {
            continue;
        }
        let outer = by_duration
            .iter()
            .copied()
            .filter(|&o| o != inner && !used[o] && contains(group[o], group[inner]))
            .min_by_key(|&o| group[o].duration_ns());
        if let Some(outer) = outer {
            used[inner] = true;
            used[outer] = true;
            wrappers.push(group[outer].span_id);
        }
    }
    wrappers
}

/// Known-equal executions share an identity: fully literal text, or text plus captured values.
fn query_identity(fingerprint: &Fingerprint, statement: &str, parameters: Option<&str>) -> Option<u64> {
    if fingerprint.has_placeholders && parameters.is_none() {
        return None;
    }
    let mut hasher = Xxh3::new();
    hasher.update(statement.as_bytes());
    if let Some(parameters) = parameters {
        hasher.update(&[0]);
        hasher.update(parameters.as_bytes());
    }
    Some(hasher.digest())
}

/// Total length covered by intervals sorted by start.
pub(crate) fn union_length(intervals: impl Iterator<Item = (u64, u64)>) -> u64 {
    let mut total = 0u64;
    let mut current: Option<(u64, u64)> = None;
    for (start, end) in intervals {
        match current {
            Some((s, e)) if start <= e => current = Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                current = Some((start, end));
            }
            None => current = Some((start, end)),
        }
    }
    total + current.map_or(0, |(s, e)| e - s)
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Builders for requests in analysis tests.
    use super::*;
    use crate::model::{DbAttrs, HttpAttrs, SpanKind};

    pub fn service() -> Arc<Service> {
        Arc::new(Service { name: Arc::from("shop"), language: Some(Arc::from("python")) })
    }

    pub fn root() -> Span {
        Span {
            trace_id: TraceId([7; 16]),
            span_id: SpanId([1; 8]),
            parent_span_id: None,
            parent_is_remote: false,
            service: service(),
            name: "GET /books/".into(),
            kind: SpanKind::Server,
            start_ns: 0,
            end_ns: 100_000_000,
            is_error: false,
            http: Some(Box::new(HttpAttrs {
                method: Some("GET".into()),
                route: Some("books/".into()),
                status_code: Some(200),
                ..Default::default()
            })),
            db: None,
            extra: None,
        }
    }

    /// A query span `id` under `parent`, running `[start_ms, start_ms + 1ms)`.
    pub fn query(id: u8, parent: u8, statement: &str, start_ms: u64) -> Span {
        Span {
            trace_id: TraceId([7; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: Some(SpanId([parent; 8])),
            parent_is_remote: false,
            service: service(),
            name: "SELECT".into(),
            kind: SpanKind::Client,
            start_ns: start_ms * 1_000_000,
            end_ns: (start_ms + 1) * 1_000_000,
            is_error: false,
            http: None,
            db: Some(Box::new(DbAttrs {
                system: Arc::from("sqlite"),
                statement: Some(statement.into()),
                ..Default::default()
            })),
            extra: None,
        }
    }

    /// Analyzes `spans` under the standard root with the default threshold 5.
    pub fn analyze(spans: Vec<Span>) -> RequestAnalysis {
        Analyzer::new(5, 1000).analyze(Request { root: root(), spans })
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn connection_spans_are_not_queries() {
        let mut connect = query(2, 1, "x", 0);
        connect.db.as_mut().expect("db").statement = None;
        connect.name = "pg-pool.connect".into();
        let analysis = analyze(vec![connect, query(3, 1, "SELECT 1", 1)]);
        assert_eq!(analysis.queries.len(), 1);
        assert_eq!(analysis.connection_spans, 1);
    }

    #[test]
    fn orm_span_over_driver_span_counts_once() {
        let orm = query(2, 1, "SELECT * FROM t WHERE id = ?", 0);
        let driver = query(3, 2, "SELECT * FROM t WHERE id = ?", 0);
        let analysis = analyze(vec![orm, driver]);
        assert_eq!(analysis.queries.len(), 1);
    }

    #[test]
    fn orm_and_driver_sibling_twins_count_once() {
        // SQLAlchemy span "SELECT shop" around the psycopg span "SELECT", both under the handler.
        let mut orm = query(2, 1, "SELECT * FROM t WHERE id = %(id)s", 0);
        orm.name = "SELECT shop".into();
        orm.end_ns = 3_000_000;
        let mut driver = query(3, 1, "SELECT * FROM t WHERE id = %(id)s", 1);
        driver.end_ns = 2_000_000;
        let analysis = analyze(vec![orm, driver]);
        assert_eq!(analysis.queries.len(), 1);
        assert_eq!(analysis.queries[0].start_ns, 1_000_000, "the inner (driver) span is kept");
        assert!(analysis.duplicates.is_empty());
    }

    #[test]
    fn interleaved_concurrent_twins_pair_up() {
        // Three concurrent ORM spans (10 ms) each around its driver span (8 ms), starting 30 µs apart.
        let mut spans = Vec::new();
        for i in 0..3u8 {
            let at = u64::from(i) * 30_000;
            let mut orm = query(10 + i, 1, "SELECT * FROM t WHERE id = $1", 0);
            orm.name = "SELECT shop".into();
            (orm.start_ns, orm.end_ns) = (at, at + 10_000_000);
            let mut driver = query(20 + i, 1, "SELECT * FROM t WHERE id = $1", 0);
            (driver.start_ns, driver.end_ns) = (at + 1_000_000, at + 9_000_000);
            spans.extend([orm, driver]);
        }
        let analysis = analyze(spans);
        assert_eq!(analysis.queries.len(), 3);
        assert!(analysis.queries.iter().all(|q| q.duration_ns() == 8_000_000), "the driver spans are kept");
    }

    #[test]
    fn prepare_spans_are_not_executions() {
        let mut prepare = query(2, 1, "SELECT * FROM t WHERE id = $1", 0);
        prepare.name = "sql.conn.prepare".into();
        let mut spans = vec![prepare];
        spans.extend((0..3u8).map(|i| {
            let mut q = query(3 + i, 1, "SELECT * FROM t WHERE id = $1", 1 + u64::from(i) * 2);
            q.name = "sql.stmt.query".into();
            q
        }));
        let mut ruby_prepare = query(9, 1, "SELECT 1", 20);
        ruby_prepare.name = "PREPARE app_production".into();
        spans.push(ruby_prepare);
        assert_eq!(analyze(spans).queries.len(), 3);
    }

    #[test]
    fn failed_direct_execution_redone_as_prepared_counts_once() {
        let mut direct = query(2, 1, "SELECT * FROM t WHERE id = ?", 0);
        direct.name = "sql.conn.query".into();
        direct.is_error = true;
        let mut prepare = query(3, 1, "SELECT * FROM t WHERE id = ?", 2);
        prepare.name = "sql.conn.prepare".into();
        let mut execute = query(4, 1, "SELECT * FROM t WHERE id = ?", 4);
        execute.name = "sql.stmt.query".into();
        let analysis = analyze(vec![direct, prepare, execute]);
        assert_eq!(analysis.queries.len(), 1);
        assert_eq!(analysis.queries[0].start_ns, 4_000_000);
    }

    #[test]
    fn concurrent_identical_queries_of_one_instrumentation_all_count() {
        let mut a = query(2, 1, "SELECT * FROM t WHERE id = ?", 0);
        a.end_ns = 5_000_000;
        let b = query(3, 1, "SELECT * FROM t WHERE id = ?", 1);
        assert_eq!(analyze(vec![a, b]).queries.len(), 2);
    }

    #[test]
    fn db_time_counts_overlaps_once() {
        let mut a = query(2, 1, "SELECT 1", 0);
        a.end_ns = 10_000_000;
        let mut b = query(3, 1, "SELECT 2", 5);
        b.end_ns = 12_000_000;
        let c = query(4, 1, "SELECT 3", 20);
        let analysis = analyze(vec![a, b, c]);
        assert_eq!(analysis.db_time_ns, 13_000_000);
    }

    #[test]
    fn server_error_status_marks_the_request_as_error() {
        let mut root = root();
        root.http.as_mut().expect("http").status_code = Some(503);
        let analysis = Analyzer::new(5, 10).analyze(Request { root, spans: vec![] });
        assert!(analysis.is_error);
        assert_eq!(analysis.endpoint.label(), "GET /books/");
    }

    #[test]
    fn identity_is_known_for_literal_text_or_captured_parameters_only() {
        let literal = fingerprint::fingerprint("SELECT * FROM t WHERE id = 7", "sqlite");
        let placeholder = fingerprint::fingerprint("SELECT * FROM t WHERE id = ?", "sqlite");
        assert!(query_identity(&literal, "SELECT * FROM t WHERE id = 7", None).is_some());
        assert!(query_identity(&placeholder, "SELECT * FROM t WHERE id = ?", None).is_none());
        let a = query_identity(&placeholder, "SELECT * FROM t WHERE id = ?", Some("(7,)"));
        let b = query_identity(&placeholder, "SELECT * FROM t WHERE id = ?", Some("(8,)"));
        assert!(a.is_some() && a != b);
    }
}
