//! The single owner of everything counted: per-endpoint stats (hdrhistogram latency, queries per
//! request, DB time), N+1 offenders and duplicates per endpoint, per-fingerprint stats across
//! endpoints, and per-service instrumentation facts for the audit.
//!
//! It lives in the aggregator task and is never shared; [`Aggregates::snapshot`] produces the
//! immutable view that everything else reads. Every map is bounded: endpoints beyond
//! `max_endpoints` fold into one overflow row, query shapes beyond `max_query_shapes` into one
//! overflow shape, and per-endpoint finding lists are capped.

mod audit;
mod distribution;
pub mod findings;
pub mod traces;
pub mod window;

use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::analyze::fingerprint::Fingerprint;
use crate::analyze::{EndpointKey, RequestAnalysis, hint};
use crate::assemble::AssemblyOutput;
use crate::model::{ExportOrigin, Span};
use crate::snapshot::{
    AuditEntry, DuplicateSnapshot, EndpointRef, EndpointSnapshot, NPlusOneSnapshot, QuerySnapshot, Repeats,
    ServiceSnapshot, SettingsSnapshot, SlowRequest, Snapshot, Totals,
};
use audit::ServiceFacts;
use distribution::{Distribution, round3};
use findings::FindingStats;

/// Limits on what is kept.
#[derive(Debug, Clone)]
pub struct AggregateConfig {
    /// Most endpoints kept before the rest fold into the overflow row.
    pub max_endpoints: usize,
    /// Most query shapes kept before the rest fold into one.
    pub max_query_shapes: usize,
    /// Repeats that make an N+1 (reported in the snapshot's settings).
    pub n_plus_one_min: u32,
    /// Grace period, seconds (reported in the snapshot's settings).
    pub grace_seconds: f64,
}

impl Default for AggregateConfig {
    fn default() -> Self {
        AggregateConfig { max_endpoints: 500, max_query_shapes: 5000, n_plus_one_min: 5, grace_seconds: 2.0 }
    }
}

/// Longest example statement kept (statements can be megabytes; the shape is in the fingerprint).
const MAX_STATEMENT_BYTES: usize = 4096;
/// Most services whose instrumentation facts are kept for the audit.
const MAX_SERVICES: usize = 1000;

/// `text` cut to at most `max` bytes at a char boundary, with `…` when cut.
fn clip(text: &str, max: usize) -> Box<str> {
    if text.len() <= max {
        return text.into();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut]).into_boxed_str()
}

/// Most N+1 shapes and duplicates kept per endpoint.
const MAX_FINDINGS_PER_ENDPOINT: usize = 200;
/// Slowest requests kept per endpoint.
const SLOWEST_KEPT: usize = 5;
/// Endpoints listed per query shape.
const MAX_ENDPOINTS_PER_QUERY: usize = 50;
/// Distinct folded endpoints counted exactly before the count becomes a lower bound.
const MAX_FOLDED_TRACKED: usize = 100_000;

const OVERFLOW_SERVICE: &str = "*";
const OVERFLOW_METHOD: &str = "*";
const OVERFLOW_ROUTE: &str = "(other endpoints)";
const OVERFLOW_QUERY: &str = "(other query shapes)";
const OVERFLOW_SERVICES: &str = "(other services)";

/// Latency chart bounds, microseconds: 1 ms to 30 s in 1-2-5 steps.
const LATENCY_BOUNDS_US: [u64; 14] = [
    1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000, 5_000_000,
    10_000_000, 30_000_000,
];

fn ns_to_us(ns: u64) -> u64 {
    ns / 1_000
}

fn ms(ns: u64) -> f64 {
    round3(ns as f64 / 1_000_000.0)
}

/// Whether an example (`repeats` in trace `trace`) should replace the current one: more repeats
/// win, and on a tie the smaller trace id, so the choice never depends on arrival order (a merged
/// report must equal the one a single instance would write).
fn better_example(repeats: u32, trace: &str, best_repeats: u32, best_trace: &str) -> bool {
    best_trace.is_empty() || repeats > best_repeats || (repeats == best_repeats && trace < best_trace)
}

/// Whether `key` sorts before `of` in the slowest list: longer first, then by trace id.
fn slower(a: &SlowRequest, b: &SlowRequest) -> bool {
    a.duration_ms > b.duration_ms || (a.duration_ms == b.duration_ms && a.trace_id < b.trace_id)
}

/// Inserts into a map capped at `cap` entries, merging into an existing entry.
fn merge_capped<K: std::hash::Hash + Eq + Clone, V: Clone>(
    into: &mut FxHashMap<K, V>,
    from: &FxHashMap<K, V>,
    cap: usize,
    merge: impl Fn(&mut V, &V),
) {
    for (key, value) in from {
        let room = into.len() < cap;
        match into.get_mut(key) {
            Some(existing) => merge(existing, value),
            None if room => {
                into.insert(key.clone(), value.clone());
            }
            None => {}
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct NPlusOneStats {
    fingerprint: Arc<Fingerprint>,
    db_system: Arc<str>,
    example_statement: Box<str>,
    requests_affected: u64,
    repeats: Distribution,
    time_ns_total: u64,
    max_repeats: u32,
    example_trace_id: String,
    language: Option<Arc<str>>,
}

impl NPlusOneStats {
    fn merge(&mut self, other: &NPlusOneStats) {
        self.requests_affected += other.requests_affected;
        self.repeats.merge(&other.repeats);
        self.time_ns_total = self.time_ns_total.saturating_add(other.time_ns_total);
        if better_example(other.max_repeats, &other.example_trace_id, self.max_repeats, &self.example_trace_id) {
            self.max_repeats = other.max_repeats;
            self.example_trace_id.clone_from(&other.example_trace_id);
            self.example_statement.clone_from(&other.example_statement);
        }
        if self.language.is_none() {
            self.language.clone_from(&other.language);
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DuplicateStats {
    fingerprint: Arc<Fingerprint>,
    statement: Box<str>,
    repeats_max: u32,
    requests_affected: u64,
    wasted_ns: u64,
    example_trace_id: String,
}

impl DuplicateStats {
    fn merge(&mut self, other: &DuplicateStats) {
        self.requests_affected += other.requests_affected;
        self.wasted_ns = self.wasted_ns.saturating_add(other.wasted_ns);
        if better_example(other.repeats_max, &other.example_trace_id, self.repeats_max, &self.example_trace_id) {
            self.repeats_max = other.repeats_max;
            self.example_trace_id.clone_from(&other.example_trace_id);
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct EndpointStats {
    requests: u64,
    errors: u64,
    latency_us: Distribution,
    queries: Distribution,
    db_time_us: Distribution,
    latency_ns_total: u64,
    db_time_ns_total: u64,
    connection_spans: u64,
    #[serde(serialize_with = "sorted_map")]
    n_plus_one: FxHashMap<u64, NPlusOneStats>,
    #[serde(serialize_with = "sorted_map")]
    duplicates: FxHashMap<u64, DuplicateStats>,
    /// Slowest first.
    slowest: Vec<SlowRequest>,
}

impl EndpointStats {
    fn new() -> Self {
        EndpointStats {
            requests: 0,
            errors: 0,
            latency_us: Distribution::new(),
            queries: Distribution::new(),
            db_time_us: Distribution::new(),
            latency_ns_total: 0,
            db_time_ns_total: 0,
            connection_spans: 0,
            n_plus_one: FxHashMap::default(),
            duplicates: FxHashMap::default(),
            slowest: Vec::new(),
        }
    }

    fn record(&mut self, analysis: &RequestAnalysis, trace_id: &str) {
        self.requests += 1;
        self.errors += u64::from(analysis.is_error);
        self.latency_us.record(ns_to_us(analysis.duration_ns));
        self.queries.record(analysis.queries.len() as u64);
        self.db_time_us.record(ns_to_us(analysis.db_time_ns));
        self.latency_ns_total = self.latency_ns_total.saturating_add(analysis.duration_ns);
        self.db_time_ns_total = self.db_time_ns_total.saturating_add(analysis.db_time_ns);
        self.connection_spans += u64::from(analysis.connection_spans);
        self.record_n_plus_one(analysis, trace_id);
        self.record_duplicates(analysis, trace_id);
        self.record_slowest(analysis, trace_id);
    }

    fn record_n_plus_one(&mut self, analysis: &RequestAnalysis, trace_id: &str) {
        for group in &analysis.n_plus_one {
            let full = self.n_plus_one.len() >= MAX_FINDINGS_PER_ENDPOINT;
            let stats = match self.n_plus_one.get_mut(&group.fingerprint.id) {
                Some(stats) => stats,
                None if full => continue,
                None => self.n_plus_one.entry(group.fingerprint.id).or_insert_with(|| NPlusOneStats {
                    fingerprint: Arc::clone(&group.fingerprint),
                    db_system: Arc::clone(&group.db_system),
                    example_statement: clip(&group.example_statement, MAX_STATEMENT_BYTES),
                    requests_affected: 0,
                    repeats: Distribution::new(),
                    time_ns_total: 0,
                    max_repeats: 0,
                    example_trace_id: String::new(),
                    language: analysis.service.language.clone(),
                }),
            };
            stats.requests_affected += 1;
            stats.repeats.record(u64::from(group.repeats));
            stats.time_ns_total = stats.time_ns_total.saturating_add(group.time_ns);
            if better_example(group.repeats, trace_id, stats.max_repeats, &stats.example_trace_id) {
                stats.max_repeats = group.repeats;
                stats.example_trace_id = trace_id.to_string();
                stats.example_statement = clip(&group.example_statement, MAX_STATEMENT_BYTES);
            }
        }
    }

    fn record_duplicates(&mut self, analysis: &RequestAnalysis, trace_id: &str) {
        for duplicate in &analysis.duplicates {
            let full = self.duplicates.len() >= MAX_FINDINGS_PER_ENDPOINT;
            let stats = match self.duplicates.get_mut(&duplicate.identity) {
                Some(stats) => stats,
                None if full => continue,
                None => self.duplicates.entry(duplicate.identity).or_insert_with(|| DuplicateStats {
                    fingerprint: Arc::clone(&duplicate.fingerprint),
                    statement: clip(&duplicate.statement, MAX_STATEMENT_BYTES),
                    repeats_max: 0,
                    requests_affected: 0,
                    wasted_ns: 0,
                    example_trace_id: String::new(),
                }),
            };
            stats.requests_affected += 1;
            stats.wasted_ns = stats.wasted_ns.saturating_add(duplicate.wasted_ns);
            if better_example(duplicate.repeats, trace_id, stats.repeats_max, &stats.example_trace_id) {
                stats.repeats_max = duplicate.repeats;
                stats.example_trace_id = trace_id.to_string();
            }
        }
    }

    fn record_slowest(&mut self, analysis: &RequestAnalysis, trace_id: &str) {
        let candidate = SlowRequest {
            trace_id: trace_id.to_string(),
            duration_ms: ms(analysis.duration_ns),
            queries: analysis.queries.len() as u64,
        };
        self.keep_if_slow(candidate);
    }

    /// Keeps `candidate` when it is among the [`SLOWEST_KEPT`] slowest (ties: smaller trace id).
    fn keep_if_slow(&mut self, candidate: SlowRequest) {
        if self.slowest.len() >= SLOWEST_KEPT && self.slowest.last().is_some_and(|last| !slower(&candidate, last)) {
            return;
        }
        let at = self.slowest.partition_point(|kept| slower(kept, &candidate));
        self.slowest.insert(at, candidate);
        self.slowest.truncate(SLOWEST_KEPT);
    }

    fn merge(&mut self, other: &EndpointStats) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.latency_us.merge(&other.latency_us);
        self.queries.merge(&other.queries);
        self.db_time_us.merge(&other.db_time_us);
        self.latency_ns_total = self.latency_ns_total.saturating_add(other.latency_ns_total);
        self.db_time_ns_total = self.db_time_ns_total.saturating_add(other.db_time_ns_total);
        self.connection_spans += other.connection_spans;
        merge_capped(&mut self.n_plus_one, &other.n_plus_one, MAX_FINDINGS_PER_ENDPOINT, NPlusOneStats::merge);
        merge_capped(&mut self.duplicates, &other.duplicates, MAX_FINDINGS_PER_ENDPOINT, DuplicateStats::merge);
        for slow in &other.slowest {
            if !self.slowest.iter().any(|kept| kept.trace_id == slow.trace_id) {
                self.keep_if_slow(slow.clone());
            }
        }
    }

    /// Every trace these stats point at: slowest requests, N+1 and duplicate examples.
    fn trace_refs(&self) -> impl Iterator<Item = &str> {
        self.slowest
            .iter()
            .map(|s| s.trace_id.as_str())
            .chain(self.n_plus_one.values().map(|n| n.example_trace_id.as_str()))
            .chain(self.duplicates.values().map(|d| d.example_trace_id.as_str()))
    }

    fn snapshot(&self, key: &EndpointKey, folded: Option<u64>) -> EndpointSnapshot {
        let mut n_plus_one: Vec<NPlusOneSnapshot> = self
            .n_plus_one
            .values()
            .map(|s| NPlusOneSnapshot {
                fingerprint: s.fingerprint.text.clone(),
                fingerprint_id: format!("{:016x}", s.fingerprint.id),
                statement: s.example_statement.to_string(),
                db_system: s.db_system.to_string(),
                tables: s.fingerprint.tables.clone(),
                requests_affected: s.requests_affected,
                repeats: Repeats { p50: s.repeats.quantile(0.5), max: s.repeats.max() },
                time_ms_total: ms(s.time_ns_total),
                example_trace_id: s.example_trace_id.clone(),
                hint: hint::n_plus_one_hint(&s.fingerprint, s.language.as_deref(), &s.db_system),
            })
            .collect();
        n_plus_one.sort_by(|a, b| {
            b.time_ms_total.total_cmp(&a.time_ms_total).then_with(|| a.fingerprint.cmp(&b.fingerprint))
        });
        let mut duplicates: Vec<DuplicateSnapshot> = self
            .duplicates
            .values()
            .map(|d| DuplicateSnapshot {
                fingerprint: d.fingerprint.text.clone(),
                fingerprint_id: format!("{:016x}", d.fingerprint.id),
                statement: d.statement.to_string(),
                repeats_max: u64::from(d.repeats_max),
                requests_affected: d.requests_affected,
                time_ms_wasted: ms(d.wasted_ns),
                example_trace_id: d.example_trace_id.clone(),
                hint: hint::duplicate_hint(&d.fingerprint),
            })
            .collect();
        duplicates.sort_by(|a, b| b.repeats_max.cmp(&a.repeats_max).then_with(|| a.statement.cmp(&b.statement)));
        let db_time_share = if self.latency_ns_total == 0 {
            0.0
        } else {
            round3((self.db_time_ns_total as f64 / self.latency_ns_total as f64).min(1.0))
        };
        EndpointSnapshot {
            service: key.service.to_string(),
            method: key.method.to_string(),
            route: key.route.to_string(),
            requests: self.requests,
            errors: self.errors,
            latency_ms: self.latency_us.summary(1000.0),
            queries_per_request: self.queries.summary(1.0),
            db_time_ms: self.db_time_us.summary(1000.0),
            db_time_share,
            connection_spans: self.connection_spans,
            n_plus_one,
            duplicates,
            slowest: self.slowest.clone(),
            latency_histogram: self.latency_us.buckets(&LATENCY_BOUNDS_US, 1000.0),
            queries_histogram: self.queries.count_buckets(),
            folded_endpoints: folded,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct QueryStats {
    fingerprint: Arc<Fingerprint>,
    db_system: Arc<str>,
    /// The statement of the slowest execution, and its duration.
    example_statement: Box<str>,
    example_ns: u64,
    calls: u64,
    latency_us: Distribution,
    time_ns_total: u64,
    #[serde(serialize_with = "sorted")]
    endpoints: FxHashSet<EndpointKey>,
    more_endpoints: bool,
}

/// Serializes a map in key order, so equal aggregates always serialize the same.
fn sorted_map<S: serde::Serializer, K: Ord + Serialize, V: Serialize>(
    map: &FxHashMap<K, V>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(map.iter().collect::<std::collections::BTreeMap<_, _>>())
}

/// Serializes a set in sorted order, so equal aggregates always serialize the same.
fn sorted<S: serde::Serializer, T: Ord + Serialize>(set: &FxHashSet<T>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut items: Vec<&T> = set.iter().collect();
    items.sort();
    serializer.collect_seq(items)
}

impl QueryStats {
    fn new(fingerprint: Arc<Fingerprint>, db_system: Arc<str>) -> Self {
        QueryStats {
            fingerprint,
            db_system,
            example_statement: Box::from(""),
            example_ns: 0,
            calls: 0,
            latency_us: Distribution::new(),
            time_ns_total: 0,
            endpoints: FxHashSet::default(),
            more_endpoints: false,
        }
    }
}

impl QueryStats {
    /// Whether an execution of `ns` with `statement` makes a better example than the current
    /// one: the slowest wins, ties go to the smaller text (order-independent).
    fn better_example(&self, ns: u64, statement: &str) -> bool {
        self.example_statement.is_empty()
            || ns > self.example_ns
            || (ns == self.example_ns && statement < &*self.example_statement)
    }

    fn merge(&mut self, other: &QueryStats) {
        self.calls += other.calls;
        self.latency_us.merge(&other.latency_us);
        self.time_ns_total = self.time_ns_total.saturating_add(other.time_ns_total);
        if !other.example_statement.is_empty() && self.better_example(other.example_ns, &other.example_statement) {
            self.example_ns = other.example_ns;
            self.example_statement.clone_from(&other.example_statement);
        }
        for key in &other.endpoints {
            if self.endpoints.len() < MAX_ENDPOINTS_PER_QUERY {
                self.endpoints.insert(key.clone());
            } else if !self.endpoints.contains(key) {
                self.more_endpoints = true;
            }
        }
        self.more_endpoints |= other.more_endpoints;
    }
}

/// Counters from assembly.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct AssemblyCounters {
    spans_dropped: u64,
    spans_duplicate: u64,
    traces_incomplete: u64,
    traces_evicted: u64,
    requests: u64,
    queries: u64,
}

/// All aggregates. Single owner: the aggregator task (clones serve time windows and merges).
#[derive(Clone)]
pub struct Aggregates {
    config: AggregateConfig,
    endpoints: FxHashMap<EndpointKey, EndpointStats>,
    overflow: Option<EndpointStats>,
    folded: FxHashSet<EndpointKey>,
    folded_more: u64,
    queries: FxHashMap<u64, QueryStats>,
    query_overflow: Option<QueryStats>,
    services: FxHashMap<Arc<str>, ServiceFacts>,
    counters: AssemblyCounters,
    findings: FindingStats,
}

impl Aggregates {
    /// Empty aggregates.
    pub fn new(config: AggregateConfig) -> Self {
        let findings = FindingStats::new(config.max_endpoints);
        Aggregates {
            config,
            endpoints: FxHashMap::default(),
            overflow: None,
            folded: FxHashSet::default(),
            folded_more: 0,
            queries: FxHashMap::default(),
            query_overflow: None,
            services: FxHashMap::default(),
            counters: AssemblyCounters::default(),
            findings,
        }
    }

    /// The instrumentation audit and the services section, for `totals`: what a time window
    /// shows from the all-time aggregates (instrumentation gaps do not expire).
    pub fn instrumentation(&self, totals: &Totals) -> (Vec<AuditEntry>, Vec<ServiceSnapshot>) {
        (audit::audit(&self.services, totals), audit::services(&self.services))
    }

    /// The limits these aggregates were made with.
    pub fn config(&self) -> &AggregateConfig {
        &self.config
    }

    /// Notes per-service instrumentation facts of arriving spans (for the audit).
    pub fn observe_spans(&mut self, spans: &[Span]) {
        let mut current: Option<(&Arc<str>, audit::SpanFacts)> = None;
        for span in spans {
            match &mut current {
                Some((name, facts)) if Arc::ptr_eq(name, &span.service.name) => facts.add(span),
                _ => {
                    if let Some((name, facts)) = current.take() {
                        self.service_facts(name, span).merge(&facts);
                    }
                    let mut facts = audit::SpanFacts::default();
                    facts.add(span);
                    current = Some((&span.service.name, facts));
                }
            }
        }
        if let (Some((name, facts)), Some(span)) = (current, spans.last()) {
            self.service_facts(name, span).merge(&facts);
        }
    }

    /// Counts one export per service it held spans of, with its protocol and SDK (call after
    /// [`Aggregates::observe_spans`] on the same batch).
    pub fn observe_export(&mut self, origin: &ExportOrigin, spans: &[Span]) {
        let mut seen: Vec<&Arc<str>> = Vec::new();
        for span in spans {
            let name = &span.service.name;
            if seen.iter().any(|s| Arc::ptr_eq(s, name) || s == &name) {
                continue;
            }
            seen.push(name);
            let sdk = origin.sdks.iter().find(|sdk| sdk.service == *name);
            Self::facts_of(&mut self.services, name, &span.service.language).add_export(origin.protocol, sdk);
        }
    }

    fn service_facts(&mut self, name: &Arc<str>, span: &Span) -> &mut ServiceFacts {
        Self::facts_of(&mut self.services, name, &span.service.language)
    }

    /// The facts of a service; past [`MAX_SERVICES`], new services share one `(other services)` entry.
    fn facts_of<'a>(
        services: &'a mut FxHashMap<Arc<str>, ServiceFacts>,
        name: &Arc<str>,
        language: &Option<Arc<str>>,
    ) -> &'a mut ServiceFacts {
        let key = if services.contains_key(name) || services.len() < MAX_SERVICES {
            Arc::clone(name)
        } else {
            Arc::from(OVERFLOW_SERVICES)
        };
        services.entry(key).or_insert_with(|| ServiceFacts::new(language.clone()))
    }

    /// Takes in the counters and per-service facts of closed traces.
    pub fn record_assembly(&mut self, out: &AssemblyOutput) {
        self.counters.spans_dropped += out.dropped_spans + out.late_spans;
        self.counters.spans_duplicate += out.duplicate_spans;
        self.counters.traces_incomplete += out.incomplete_traces;
        self.counters.traces_evicted += out.evicted_traces;
        for (service, orphans) in &out.orphans {
            Self::facts_of(&mut self.services, &service.name, &service.language).orphan_spans += orphans;
        }
        for (service, queries) in &out.queries_outside_requests {
            Self::facts_of(&mut self.services, &service.name, &service.language).queries_outside_requests += queries;
        }
        for skew in &out.clock_skew {
            let child = &skew.child_service;
            Self::facts_of(&mut self.services, &child.name, &child.language)
                .add_clock_skew(&skew.parent_service.name, skew.offset_ns);
        }
    }

    /// Adds one analyzed request.
    pub fn record(&mut self, analysis: &RequestAnalysis) {
        self.counters.requests += 1;
        self.counters.queries += analysis.queries.len() as u64;
        if let Some(facts) = self.services.get_mut(&analysis.service.name) {
            facts.requests += 1;
        }
        let trace_id = analysis.trace_id.hex();
        let trace_id = trace_id.as_str();
        self.endpoint_stats(&analysis.endpoint).record(analysis, trace_id);
        self.findings.record(analysis);
        for query in &analysis.queries {
            let stats = self.query_stats(&query.fingerprint, &query.db_system);
            stats.calls += 1;
            stats.latency_us.record(ns_to_us(query.duration_ns()));
            stats.time_ns_total = stats.time_ns_total.saturating_add(query.duration_ns());
            if stats.better_example(query.duration_ns(), &query.statement) {
                stats.example_ns = query.duration_ns();
                stats.example_statement = clip(&query.statement, MAX_STATEMENT_BYTES);
            }
            if stats.endpoints.len() < MAX_ENDPOINTS_PER_QUERY {
                stats.endpoints.insert(analysis.endpoint.clone());
            } else if !stats.endpoints.contains(&analysis.endpoint) {
                stats.more_endpoints = true;
            }
        }
    }

    /// Whether the stats of `endpoint` point at `trace_id` (hex): among its slowest requests, or
    /// the example of one of its N+1 offenders or duplicates.
    pub fn references(&self, endpoint: &EndpointKey, trace_id: &str) -> bool {
        let stats = match self.endpoints.get(endpoint) {
            Some(stats) => Some(stats),
            None => self.overflow.as_ref(),
        };
        self.findings.last_took_example || stats.is_some_and(|s| s.trace_refs().any(|t| t == trace_id))
    }

    /// Every trace id (hex) the aggregates point at.
    pub fn referenced_traces(&self) -> FxHashSet<&str> {
        self.endpoints
            .values()
            .chain(self.overflow.as_ref())
            .flat_map(EndpointStats::trace_refs)
            .chain(self.findings.example_traces())
            .collect()
    }

    fn endpoint_stats(&mut self, key: &EndpointKey) -> &mut EndpointStats {
        if self.endpoints.contains_key(key) || self.endpoints.len() < self.config.max_endpoints {
            return self.endpoints.entry(key.clone()).or_insert_with(EndpointStats::new);
        }
        if self.folded.len() < MAX_FOLDED_TRACKED {
            self.folded.insert(key.clone());
        } else if !self.folded.contains(key) {
            self.folded_more += 1;
        }
        self.overflow.get_or_insert_with(EndpointStats::new)
    }

    fn query_stats(&mut self, fingerprint: &Arc<Fingerprint>, db_system: &Arc<str>) -> &mut QueryStats {
        if self.queries.contains_key(&fingerprint.id) || self.queries.len() < self.config.max_query_shapes {
            return self
                .queries
                .entry(fingerprint.id)
                .or_insert_with(|| QueryStats::new(Arc::clone(fingerprint), Arc::clone(db_system)));
        }
        self.query_overflow
            .get_or_insert_with(|| QueryStats::new(Arc::new(Fingerprint::opaque(OVERFLOW_QUERY)), Arc::from("")))
    }

    /// Adds everything `other` counted, exactly: the result is what one `Aggregates` would hold
    /// had it recorded both inputs (up to the caps: endpoints past `max_endpoints` fold into the
    /// overflow row, as they do live).
    pub fn merge(&mut self, other: &Aggregates) {
        let c = &mut self.counters;
        let o = &other.counters;
        c.spans_dropped += o.spans_dropped;
        c.spans_duplicate += o.spans_duplicate;
        c.traces_incomplete += o.traces_incomplete;
        c.traces_evicted += o.traces_evicted;
        c.requests += o.requests;
        c.queries += o.queries;
        for (key, stats) in &other.endpoints {
            match self.endpoints.get_mut(key) {
                Some(existing) => existing.merge(stats),
                None => self.endpoint_stats(key).merge(stats),
            }
        }
        if let Some(overflow) = &other.overflow {
            self.overflow.get_or_insert_with(EndpointStats::new).merge(overflow);
        }
        for key in &other.folded {
            if self.folded.len() < MAX_FOLDED_TRACKED {
                self.folded.insert(key.clone());
            } else if !self.folded.contains(key) {
                self.folded_more += 1;
            }
        }
        self.folded_more += other.folded_more;
        for stats in other.queries.values() {
            self.query_stats(&stats.fingerprint, &stats.db_system).merge(stats);
        }
        if let Some(overflow) = &other.query_overflow {
            self.query_overflow
                .get_or_insert_with(|| QueryStats::new(Arc::clone(&overflow.fingerprint), Arc::from("")))
                .merge(overflow);
        }
        for (name, facts) in &other.services {
            Self::facts_of(&mut self.services, name, &None).merge_facts(facts);
        }
        self.findings.merge(&other.findings);
    }

    /// The lossless form of these aggregates, with the receivers' counters, for the report's
    /// `aggregates` field.
    pub fn to_state(&self, receivers: &Totals) -> AggregatesState {
        let mut endpoints: Vec<(EndpointKey, EndpointStats)> =
            self.endpoints.iter().map(|(k, s)| (k.clone(), s.clone())).collect();
        endpoints.sort_by(|a, b| a.0.cmp(&b.0));
        let mut queries: Vec<QueryStats> = self.queries.values().cloned().collect();
        queries.sort_by_key(|q| q.fingerprint.id);
        let mut services: Vec<(Arc<str>, ServiceFacts)> =
            self.services.iter().map(|(k, f)| (Arc::clone(k), f.clone())).collect();
        services.sort_by(|a, b| a.0.cmp(&b.0));
        let mut folded: Vec<EndpointKey> = self.folded.iter().cloned().collect();
        folded.sort();
        AggregatesState {
            version: STATE_VERSION,
            receivers: receiver_counters(receivers),
            counters: self.counters.clone(),
            endpoints,
            overflow: self.overflow.clone(),
            folded,
            folded_more: self.folded_more,
            queries,
            query_overflow: self.query_overflow.clone(),
            services,
            findings: self.findings.clone(),
        }
    }

    /// Rebuilds aggregates from their lossless form; also returns the receivers' counters.
    pub fn from_state(config: AggregateConfig, state: AggregatesState) -> Result<(Aggregates, Totals), StateError> {
        if state.version != STATE_VERSION {
            return Err(StateError::Version(state.version));
        }
        let mut aggregates = Aggregates::new(config);
        aggregates.counters = state.counters;
        aggregates.endpoints = state.endpoints.into_iter().collect();
        aggregates.overflow = state.overflow;
        aggregates.folded = state.folded.into_iter().collect();
        aggregates.folded_more = state.folded_more;
        aggregates.queries = state.queries.into_iter().map(|q| (q.fingerprint.id, q)).collect();
        aggregates.query_overflow = state.query_overflow;
        aggregates.services = state.services.into_iter().collect();
        aggregates.findings = state.findings;
        Ok((aggregates, state.receivers))
    }

    /// The immutable view. `totals` starts from the receivers' counters; `pending` is the
    /// number of traces still being assembled.
    pub fn snapshot(&self, mut totals: Totals, pending_traces: u64) -> Snapshot {
        totals.requests = self.counters.requests;
        totals.queries = self.counters.queries;
        totals.spans_dropped = self.counters.spans_dropped;
        totals.spans_duplicate = self.counters.spans_duplicate;
        totals.traces_incomplete = self.counters.traces_incomplete;
        totals.traces_evicted = self.counters.traces_evicted;
        totals.traces_pending = pending_traces;
        totals.endpoints_folded = self.folded.len() as u64 + self.folded_more;

        let mut endpoints: Vec<EndpointSnapshot> = self.endpoints.iter().map(|(k, s)| s.snapshot(k, None)).collect();
        if let Some(overflow) = &self.overflow {
            let key = EndpointKey {
                service: Arc::from(OVERFLOW_SERVICE),
                method: Arc::from(OVERFLOW_METHOD),
                route: Arc::from(OVERFLOW_ROUTE),
            };
            endpoints.push(overflow.snapshot(&key, Some(totals.endpoints_folded)));
        }
        endpoints.sort_by(|a, b| {
            b.latency_ms
                .p95
                .total_cmp(&a.latency_ms.p95)
                .then_with(|| (&a.service, &a.method, &a.route).cmp(&(&b.service, &b.method, &b.route)))
        });

        let mut queries: Vec<QuerySnapshot> =
            self.queries.values().chain(self.query_overflow.as_ref()).map(query_snapshot).collect();
        queries.sort_by(|a, b| {
            b.time_ms_total.total_cmp(&a.time_ms_total).then_with(|| a.fingerprint.cmp(&b.fingerprint))
        });

        let (audit, services) = self.instrumentation(&totals);
        Snapshot {
            generated_at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            totals,
            endpoints,
            queries,
            audit,
            findings: self.findings.snapshot(),
            settings: SettingsSnapshot {
                n_plus_one_min: self.config.n_plus_one_min,
                grace_seconds: self.config.grace_seconds,
                max_endpoints: self.config.max_endpoints as u64,
            },
            aggregates: None,
            window_seconds: None,
            services,
        }
    }
}

/// Version of [`AggregatesState`]; a report whose state has another version cannot be merged.
pub const STATE_VERSION: u32 = 1;

/// The aggregates in a lossless, serializable form (histograms included): what `apmtop merge`
/// combines. Written into the report as its `aggregates` field.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AggregatesState {
    version: u32,
    /// The receivers' counters (the `totals` that do not come from assembly).
    receivers: Totals,
    counters: AssemblyCounters,
    endpoints: Vec<(EndpointKey, EndpointStats)>,
    overflow: Option<EndpointStats>,
    folded: Vec<EndpointKey>,
    folded_more: u64,
    queries: Vec<QueryStats>,
    query_overflow: Option<QueryStats>,
    services: Vec<(Arc<str>, ServiceFacts)>,
    #[serde(default)]
    findings: FindingStats,
}

impl AggregatesState {
    /// Reads the state from a report's `aggregates` value.
    pub fn deserialize_value(value: &serde_json::Value) -> Result<AggregatesState, serde_json::Error> {
        AggregatesState::deserialize(value)
    }
}

/// Lossless aggregates that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Written by an apmtop with another state version.
    #[error("its aggregates have version {0}, this apmtop reads version {STATE_VERSION}")]
    Version(u32),
}

/// Only the receivers' counters of `totals` (the rest is recomputed from the aggregates).
pub fn receiver_counters(totals: &Totals) -> Totals {
    Totals {
        spans_received: totals.spans_received,
        spans_rejected: totals.spans_rejected,
        spans_refused: totals.spans_refused,
        trace_exports: totals.trace_exports,
        metric_exports: totals.metric_exports,
        log_exports: totals.log_exports,
        exports_malformed: totals.exports_malformed,
        capture_records_dropped: totals.capture_records_dropped,
        ..Totals::default()
    }
}

/// Adds the receivers' counters of `other` to `into`.
pub fn add_receiver_counters(into: &mut Totals, other: &Totals) {
    into.spans_received += other.spans_received;
    into.spans_rejected += other.spans_rejected;
    into.spans_refused += other.spans_refused;
    into.trace_exports += other.trace_exports;
    into.metric_exports += other.metric_exports;
    into.log_exports += other.log_exports;
    into.exports_malformed += other.exports_malformed;
    into.capture_records_dropped += other.capture_records_dropped;
}

fn query_snapshot(stats: &QueryStats) -> QuerySnapshot {
    let mut keys: Vec<&EndpointKey> = stats.endpoints.iter().collect();
    keys.sort_by(|a, b| (a.label(), &a.service).cmp(&(b.label(), &b.service)));
    let mut endpoints: Vec<String> = keys.iter().map(|k| k.label()).collect();
    let mut endpoint_refs: Vec<EndpointRef> = keys
        .iter()
        .map(|k| EndpointRef {
            service: k.service.to_string(),
            method: k.method.to_string(),
            route: k.route.to_string(),
        })
        .collect();
    endpoints.dedup();
    endpoint_refs.dedup();
    if stats.more_endpoints {
        endpoints.push("(more)".to_string());
    }
    QuerySnapshot {
        fingerprint: stats.fingerprint.text.clone(),
        fingerprint_id: format!("{:016x}", stats.fingerprint.id),
        db_system: stats.db_system.to_string(),
        tables: stats.fingerprint.tables.clone(),
        statement: stats.example_statement.to_string(),
        calls: stats.calls,
        latency_ms: stats.latency_us.summary(1000.0),
        time_ms_total: ms(stats.time_ns_total),
        endpoints,
        endpoint_refs,
        parsed: stats.fingerprint.parsed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Analyzer;
    use crate::analyze::test_support::{query, root};
    use crate::model::Request;

    fn n_plus_one_request(n: u8, duration_ms: u64) -> RequestAnalysis {
        let mut root = root();
        root.end_ns = duration_ms * 1_000_000;
        let spans = (0..n).map(|i| query(10 + i, 1, "SELECT * FROM author WHERE id = ?", u64::from(i))).collect();
        Analyzer::new(5, 100).analyze(Request { root, spans })
    }

    #[test]
    fn endpoint_summaries_and_n_plus_one_stats() {
        let mut aggregates = Aggregates::new(AggregateConfig::default());
        for (n, ms) in [(5, 10), (8, 30), (2, 20)] {
            aggregates.record(&n_plus_one_request(n, ms));
        }
        let snapshot = aggregates.snapshot(Totals::default(), 0);
        assert_eq!(snapshot.totals.requests, 3);
        assert_eq!(snapshot.totals.queries, 15);
        let endpoint = &snapshot.endpoints[0];
        assert_eq!(endpoint.requests, 3);
        assert_eq!(endpoint.queries_per_request.max, 8.0);
        assert_eq!(endpoint.queries_per_request.p50, 5.0);
        assert_eq!(endpoint.latency_ms.max, 30.0);
        assert_eq!(endpoint.n_plus_one.len(), 1);
        let offender = &endpoint.n_plus_one[0];
        assert_eq!(offender.requests_affected, 2);
        assert_eq!(offender.repeats, Repeats { p50: 5, max: 8 });
        assert_eq!(offender.time_ms_total, 13.0);
        assert_eq!(offender.example_trace_id.len(), 32);
        assert_eq!(snapshot.queries.len(), 1);
        assert_eq!(snapshot.queries[0].calls, 15);
        assert_eq!(snapshot.queries[0].endpoints, vec!["GET /books/".to_string()]);
        assert_eq!(endpoint.slowest[0].duration_ms, 30.0);
        assert_eq!(endpoint.slowest[0].queries, 8);
    }

    #[test]
    fn histograms_become_chart_buckets() {
        let mut aggregates = Aggregates::new(AggregateConfig::default());
        for (n, ms) in [(0, 3), (2, 3), (2, 40), (7, 700)] {
            aggregates.record(&n_plus_one_request(n, ms));
        }
        let endpoint = &aggregates.snapshot(Totals::default(), 0).endpoints[0];
        let latency: Vec<(f64, u64)> = endpoint.latency_histogram.iter().map(|b| (b.le, b.count)).collect();
        assert_eq!(
            latency,
            [(5.0, 2), (10.0, 0), (20.0, 0), (50.0, 1), (100.0, 0), (200.0, 0), (500.0, 0), (1000.0, 1)]
        );
        let queries: Vec<(f64, u64)> = endpoint.queries_histogram.iter().map(|b| (b.le, b.count)).collect();
        assert_eq!(queries, [(0.0, 1), (1.0, 0), (2.0, 2), (3.0, 0), (4.0, 0), (5.0, 0), (6.0, 0), (7.0, 1)]);
        assert_eq!(Distribution::new().count_buckets(), Vec::new());
    }

    #[test]
    fn endpoints_beyond_the_cap_fold_into_one_row() {
        let mut aggregates = Aggregates::new(AggregateConfig { max_endpoints: 2, ..Default::default() });
        for i in 0..5 {
            let mut analysis = n_plus_one_request(1, 10);
            analysis.endpoint.route = Arc::from(format!("/r{i}"));
            aggregates.record(&analysis);
        }
        let snapshot = aggregates.snapshot(Totals::default(), 0);
        assert_eq!(snapshot.endpoints.len(), 3);
        let overflow = snapshot.endpoints.iter().find(|e| e.route == OVERFLOW_ROUTE).expect("overflow row");
        assert_eq!(overflow.folded_endpoints, Some(3));
        assert_eq!(overflow.requests, 3);
        assert_eq!(snapshot.totals.endpoints_folded, 3);
    }

    #[test]
    fn endpoints_are_sorted_by_p95_descending() {
        let mut aggregates = Aggregates::new(AggregateConfig::default());
        for (route, ms) in [("/fast", 5), ("/slow", 500), ("/mid", 50)] {
            let mut analysis = n_plus_one_request(1, ms);
            analysis.endpoint.route = Arc::from(route);
            aggregates.record(&analysis);
        }
        let routes: Vec<String> =
            aggregates.snapshot(Totals::default(), 0).endpoints.into_iter().map(|e| e.route).collect();
        assert_eq!(routes, ["/slow", "/mid", "/fast"]);
    }

    #[test]
    fn slowest_keeps_the_top_five_in_order() {
        let mut stats = EndpointStats::new();
        for ms in [3, 9, 1, 7, 5, 8, 2] {
            stats.record(&n_plus_one_request(0, ms), "t");
        }
        let kept: Vec<f64> = stats.slowest.iter().map(|s| s.duration_ms).collect();
        assert_eq!(kept, [9.0, 8.0, 7.0, 5.0, 3.0]);
    }

    #[test]
    fn query_shapes_beyond_the_cap_fold_into_one_row() {
        let mut aggregates = Aggregates::new(AggregateConfig { max_query_shapes: 1, ..Default::default() });
        let spans = vec![query(2, 1, "SELECT * FROM author WHERE id = 1", 0), query(3, 1, "SELECT * FROM book", 1)];
        let analysis = Analyzer::new(5, 100).analyze(Request { root: root(), spans });
        aggregates.record(&analysis);
        let snapshot = aggregates.snapshot(Totals::default(), 0);
        assert_eq!(snapshot.queries.len(), 2);
        assert!(snapshot.queries.iter().any(|q| q.fingerprint.contains(OVERFLOW_QUERY)));
    }

    #[test]
    fn long_statements_are_clipped_at_a_char_boundary() {
        let text = "é".repeat(3000);
        let clipped = clip(&text, MAX_STATEMENT_BYTES);
        assert!(clipped.len() <= MAX_STATEMENT_BYTES + '…'.len_utf8());
        assert!(clipped.ends_with('…'));
        assert_eq!(&*clip("short", 10), "short");
    }
}
