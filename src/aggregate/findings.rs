//! The ranked findings list: every diagnosed cause of slowness, per endpoint and subject, with
//! what it costs. [`FindingStats`] takes each [`RequestAnalysis`] (its detections, its N+1
//! groups and duplicates, its response size) and produces the report's
//! [`FindingSnapshot`]s, most costly first.
//!
//! Mergeable: [`FindingStats::merge`] adds two aggregates exactly (counts and sums add, maxima
//! take the max, the example is the request where the finding cost most, the smaller trace id
//! on a tie), so merging reports or time windows never depends on arrival order. Bounded: at most
//! `max_endpoints` endpoints and [`MAX_FINDINGS`] findings; later ones are not kept.
//!
//! Severity, one rule for every category: `high` when a finding costs at least 25 % of its
//! endpoint's time or 500 ms per affected request, `medium` from 5 % or 50 ms, `low` below.

mod text;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use std::sync::Arc;

use crate::analyze::fingerprint::Fingerprint;
use crate::analyze::{Category, Detection, EndpointKey, RequestAnalysis, shapes, writes};
use crate::model::TraceId;
use crate::snapshot::{EndpointRef, FindingSnapshot};

/// Most findings kept over all endpoints.
pub const MAX_FINDINGS: usize = 10_000;
/// Response size (bytes) above which a response is huge: 300 kB, the threshold Sentry uses.
pub const HUGE_RESPONSE_BYTES: u64 = 300_000;
/// Longest example statement kept.
const MAX_EXAMPLE_BYTES: usize = 4096;

/// Severity thresholds: share of the endpoint's time, and cost per affected request.
const HIGH_SHARE: f64 = 0.25;
const HIGH_PER_REQUEST_MS: f64 = 500.0;
const MEDIUM_SHARE: f64 = 0.05;
const MEDIUM_PER_REQUEST_MS: f64 = 50.0;

/// The severity of a finding that costs `per_request_ms` per affected request and `share` of
/// its endpoint's total time (see the module doc).
pub fn severity(per_request_ms: f64, share: f64) -> &'static str {
    if share >= HIGH_SHARE || per_request_ms >= HIGH_PER_REQUEST_MS {
        "high"
    } else if share >= MEDIUM_SHARE || per_request_ms >= MEDIUM_PER_REQUEST_MS {
        "medium"
    } else {
        "low"
    }
}

/// Per-endpoint figures the findings are judged against.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EndpointTally {
    /// The endpoint.
    pub endpoint: EndpointRef,
    /// `telemetry.sdk.language` of its service, for hints.
    pub language: Option<String>,
    /// Requests seen.
    pub requests: u64,
    /// Summed request latency, nanoseconds.
    pub latency_ns: u64,
    /// Requests whose response size is known.
    pub sized_responses: u64,
    /// Of those, responses above the huge-response threshold.
    pub huge_responses: u64,
    /// Summed response sizes, bytes.
    pub response_bytes: u64,
    /// Largest response, bytes.
    pub response_bytes_max: u64,
    /// Largest request body, bytes.
    pub request_bytes_max: u64,
    /// Time outside queries and outgoing calls in the huge responses' requests (where the body
    /// is built and serialized), nanoseconds.
    pub huge_app_ns: u64,
    /// The request with the largest response.
    pub huge_example: Example,
}

/// The request that shows a finding best: where it cost most (the smaller trace id on a tie).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Example {
    /// Its trace, 32 hex digits (empty when none yet).
    pub trace_id: String,
    /// What the finding cost in it (bytes for huge responses).
    pub weight: u64,
    /// Its statement, command or URL.
    pub statement: Option<String>,
    /// Where in the code.
    pub code_location: Option<String>,
}

impl Example {
    /// Whether `(weight, trace_id)` shows the finding better than this example.
    fn is_beaten_by(&self, weight: u64, trace_id: &str) -> bool {
        self.trace_id.is_empty() || weight > self.weight || (weight == self.weight && trace_id < self.trace_id.as_str())
    }

    /// [`Example::is_beaten_by`] for a request's trace, printed only on a tie.
    fn is_beaten_by_trace(&self, weight: u64, trace_id: TraceId) -> bool {
        if self.trace_id.is_empty() || weight != self.weight {
            return self.trace_id.is_empty() || weight > self.weight;
        }
        trace_id.hex().as_str() < self.trace_id.as_str()
    }

    fn offer(&mut self, other: &Example) {
        if !other.trace_id.is_empty() && self.is_beaten_by(other.weight, &other.trace_id) {
            *self = other.clone();
        }
    }
}

/// One finding of one endpoint, summed over the requests it was found in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FindingEntry {
    /// Its category.
    pub category: Category,
    /// Its rule within the category.
    pub rule: String,
    /// Key of its endpoint in [`FindingStats`].
    pub endpoint: u64,
    /// What it is about (a fingerprint id, a peer, a cache key).
    pub subject: String,
    /// The query shape's id, for query findings.
    pub fingerprint_id: Option<u64>,
    /// The normalized statement, for query findings.
    pub fingerprint: Option<String>,
    /// Tables of the shape (or of the loop, for MN+1).
    pub detail: Option<String>,
    /// DB, cache, RPC or messaging system.
    pub system: String,
    /// How to fix it (worded once, from the shape and the service's language).
    pub hint: String,
    /// Requests it was found in.
    pub requests_affected: u64,
    /// Occurrences summed over those requests (executions, calls, repeats).
    pub count_total: u64,
    /// Most occurrences in one request.
    pub count_max: u64,
    /// Time it cost, summed, nanoseconds.
    pub cost_ns: u64,
    /// Largest rule-specific figure (returned rows, `OFFSET`, sequential calls, loop length).
    pub figure_max: u64,
    /// The request that shows it best.
    pub example: Example,
}

impl FindingEntry {
    fn merge(&mut self, other: &FindingEntry) {
        self.requests_affected += other.requests_affected;
        self.count_total = self.count_total.saturating_add(other.count_total);
        self.count_max = self.count_max.max(other.count_max);
        self.cost_ns = self.cost_ns.saturating_add(other.cost_ns);
        self.figure_max = self.figure_max.max(other.figure_max);
        self.example.offer(&other.example);
    }
}

/// A finding's subject: text, or a 64-bit id spelled in 16 hex digits (kept on the stack).
enum Subject<'a> {
    Text(&'a str),
    Id([u8; 16]),
}

impl<'a> Subject<'a> {
    fn id(id: u64) -> Subject<'a> {
        let mut digits = [0u8; 16];
        for (i, digit) in digits.iter_mut().enumerate() {
            *digit = HEX[((id >> (60 - 4 * i)) & 0xf) as usize];
        }
        Subject::Id(digits)
    }

    fn as_str(&self) -> &str {
        match self {
            Subject::Text(text) => text,
            Subject::Id(digits) => std::str::from_utf8(digits).unwrap_or_default(),
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// What one request contributes to one finding.
struct Occurrence<'a> {
    category: Category,
    rule: &'a str,
    subject: Subject<'a>,
    count: u64,
    cost_ns: u64,
    figure: u64,
    statement: Option<&'a str>,
    code_location: Option<&'a str>,
}

/// All findings, per endpoint and subject. Serializable, mergeable, bounded.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FindingStats {
    /// Most endpoints tallied.
    pub max_endpoints: usize,
    /// Endpoints, by the hash of service, method and route.
    #[serde(serialize_with = "super::sorted_map")]
    pub endpoints: FxHashMap<u64, EndpointTally>,
    /// Findings, by id.
    #[serde(serialize_with = "super::sorted_map")]
    pub findings: FxHashMap<u64, FindingEntry>,
    /// The last recorded request became the example of some finding (so its spans are worth
    /// keeping for the trace view).
    #[serde(skip)]
    pub last_took_example: bool,
    /// Buffer for hashing ids.
    #[serde(skip)]
    pub scratch: Scratch,
}

/// xxh3 of `parts`, each followed by a zero byte, joined in `scratch` (reused: one-shot xxh3
/// over a short buffer costs far less than setting up a streaming hasher per request).
fn hash_parts(parts: &[&str], scratch: &mut Vec<u8>) -> u64 {
    scratch.clear();
    for part in parts {
        scratch.extend_from_slice(part.as_bytes());
        scratch.push(0);
    }
    xxh3_64(scratch)
}

fn endpoint_hash(endpoint: &EndpointKey, scratch: &mut Vec<u8>) -> u64 {
    hash_parts(&[&endpoint.service, &endpoint.method, &endpoint.route], scratch)
}

/// The stable id of a finding: xxh3 of category, rule, endpoint (service, method, route) and
/// subject, each followed by a zero byte.
pub fn finding_id(category: Category, rule: &str, endpoint: &EndpointRef, subject: &str) -> u64 {
    hash_parts(&[category.code(), rule, &endpoint.service, &endpoint.method, &endpoint.route, subject], &mut Vec::new())
}

fn finding_id_of_key(
    category: Category,
    rule: &str,
    endpoint: &EndpointKey,
    subject: &str,
    scratch: &mut Vec<u8>,
) -> u64 {
    hash_parts(&[category.code(), rule, &endpoint.service, &endpoint.method, &endpoint.route, subject], scratch)
}

/// A reusable byte buffer for hashing; never compared, serialized or cloned with the stats.
#[derive(Debug, Default)]
pub struct Scratch(Vec<u8>);

impl Clone for Scratch {
    fn clone(&self) -> Self {
        Scratch::default()
    }
}

impl PartialEq for Scratch {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

fn clip(text: &str) -> String {
    if text.len() <= MAX_EXAMPLE_BYTES {
        return text.to_string();
    }
    let mut cut = MAX_EXAMPLE_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

fn endpoint_ref(key: &EndpointKey) -> EndpointRef {
    EndpointRef { service: key.service.to_string(), method: key.method.to_string(), route: key.route.to_string() }
}

impl FindingStats {
    /// Empty stats that tally at most `max_endpoints` endpoints.
    pub fn new(max_endpoints: usize) -> Self {
        FindingStats {
            max_endpoints,
            endpoints: FxHashMap::default(),
            findings: FxHashMap::default(),
            last_took_example: false,
            scratch: Scratch::default(),
        }
    }

    /// Adds one analyzed request.
    pub fn record(&mut self, analysis: &RequestAnalysis) {
        self.last_took_example = false;
        let key = endpoint_hash(&analysis.endpoint, &mut self.scratch.0);
        if !self.endpoints.contains_key(&key) && self.endpoints.len() >= self.max_endpoints {
            return;
        }
        let trace_id = analysis.trace_id;
        let tally = self.endpoints.entry(key).or_insert_with(|| EndpointTally {
            endpoint: endpoint_ref(&analysis.endpoint),
            language: analysis.service.language.as_deref().map(str::to_string),
            ..Default::default()
        });
        tally.requests += 1;
        tally.latency_ns = tally.latency_ns.saturating_add(analysis.duration_ns);
        tally.request_bytes_max = tally.request_bytes_max.max(analysis.request_bytes.unwrap_or(0));
        if let Some(bytes) = analysis.response_bytes {
            tally.sized_responses += 1;
            tally.response_bytes = tally.response_bytes.saturating_add(bytes);
            tally.response_bytes_max = tally.response_bytes_max.max(bytes);
            if bytes > HUGE_RESPONSE_BYTES {
                tally.huge_responses += 1;
                let outside =
                    analysis.duration_ns.saturating_sub(analysis.db_time_ns.saturating_add(analysis.outgoing_time_ns));
                tally.huge_app_ns = tally.huge_app_ns.saturating_add(outside);
                if tally.huge_example.is_beaten_by_trace(bytes, trace_id) {
                    self.last_took_example = true;
                    tally.huge_example = Example {
                        trace_id: trace_id.to_string(),
                        weight: bytes,
                        statement: None,
                        code_location: analysis.code_location.as_deref().map(str::to_string),
                    };
                }
            }
        }
        let language = analysis.service.language.as_deref();
        for occurrence in occurrences(analysis) {
            self.add(key, trace_id, language, analysis, occurrence);
        }
    }

    fn add(
        &mut self,
        key: u64,
        trace_id: TraceId,
        language: Option<&str>,
        analysis: &RequestAnalysis,
        occurrence: Contribution<'_>,
    ) {
        let (occurrence, detection, fingerprint) = occurrence;
        let id = finding_id_of_key(
            occurrence.category,
            occurrence.rule,
            &analysis.endpoint,
            occurrence.subject.as_str(),
            &mut self.scratch.0,
        );
        if !self.findings.contains_key(&id) && self.findings.len() >= MAX_FINDINGS {
            return;
        }
        let entry = self.findings.entry(id).or_insert_with(|| {
            let system = detection
                .and_then(|d| d.system.as_deref())
                .map(str::to_string)
                .or_else(|| analysis.queries.first().map(|q| q.db_system.to_string()))
                .unwrap_or_default();
            FindingEntry {
                category: occurrence.category,
                rule: occurrence.rule.to_string(),
                endpoint: key,
                subject: occurrence.subject.as_str().to_string(),
                fingerprint_id: fingerprint.map(|f| f.id),
                fingerprint: fingerprint.map(|f| f.text.clone()),
                detail: detection.and_then(|d| d.detail.as_deref()).map(str::to_string).or_else(|| {
                    fingerprint
                        .and_then(|f| f.facts.function_on_filter.clone())
                        .filter(|_| occurrence.rule == shapes::rule::FUNCTION_ON_FILTERED_COLUMN)
                }),
                hint: text::hint(occurrence.category, occurrence.rule, fingerprint.map(|f| &**f), language, &system),
                system,
                requests_affected: 0,
                count_total: 0,
                count_max: 0,
                cost_ns: 0,
                figure_max: 0,
                example: Example::default(),
            }
        });
        entry.requests_affected += 1;
        entry.count_total = entry.count_total.saturating_add(occurrence.count);
        entry.count_max = entry.count_max.max(occurrence.count);
        entry.cost_ns = entry.cost_ns.saturating_add(occurrence.cost_ns);
        entry.figure_max = entry.figure_max.max(occurrence.figure);
        if entry.example.is_beaten_by_trace(occurrence.cost_ns, trace_id) {
            self.last_took_example = true;
            entry.example = Example {
                trace_id: trace_id.to_string(),
                weight: occurrence.cost_ns,
                statement: occurrence.statement.map(clip),
                code_location: occurrence.code_location.map(str::to_string),
            };
        }
    }

    /// Adds `other` into `self`, exactly (see the module doc); endpoints and findings beyond the
    /// bounds are not kept.
    pub fn merge(&mut self, other: &FindingStats) {
        self.max_endpoints = self.max_endpoints.max(other.max_endpoints);
        let mut keys: Vec<&u64> = other.endpoints.keys().collect();
        keys.sort_unstable();
        for key in keys {
            let theirs = &other.endpoints[key];
            let room = self.endpoints.len() < self.max_endpoints;
            match self.endpoints.get_mut(key) {
                Some(ours) => {
                    ours.requests += theirs.requests;
                    ours.latency_ns = ours.latency_ns.saturating_add(theirs.latency_ns);
                    ours.sized_responses += theirs.sized_responses;
                    ours.huge_responses += theirs.huge_responses;
                    ours.response_bytes = ours.response_bytes.saturating_add(theirs.response_bytes);
                    ours.response_bytes_max = ours.response_bytes_max.max(theirs.response_bytes_max);
                    ours.request_bytes_max = ours.request_bytes_max.max(theirs.request_bytes_max);
                    ours.huge_app_ns = ours.huge_app_ns.saturating_add(theirs.huge_app_ns);
                    ours.huge_example.offer(&theirs.huge_example);
                    if ours.language.is_none() {
                        ours.language.clone_from(&theirs.language);
                    }
                }
                None if room => {
                    self.endpoints.insert(*key, theirs.clone());
                }
                None => {}
            }
        }
        let mut ids: Vec<&u64> = other.findings.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let theirs = &other.findings[id];
            let room = self.findings.len() < MAX_FINDINGS && self.endpoints.contains_key(&theirs.endpoint);
            match self.findings.get_mut(id) {
                Some(ours) => ours.merge(theirs),
                None if room => {
                    self.findings.insert(*id, theirs.clone());
                }
                None => {}
            }
        }
    }

    /// Every example trace id (hex) the findings point at.
    pub fn example_traces(&self) -> impl Iterator<Item = &str> {
        self.findings
            .values()
            .map(|entry| entry.example.trace_id.as_str())
            .chain(self.endpoints.values().map(|tally| tally.huge_example.trace_id.as_str()))
            .filter(|id| !id.is_empty())
    }

    /// The findings, most costly first (then by severity, then by id).
    pub fn snapshot(&self) -> Vec<FindingSnapshot> {
        let mut out: Vec<FindingSnapshot> = Vec::new();
        for (id, entry) in &self.findings {
            let Some(tally) = self.endpoints.get(&entry.endpoint) else { continue };
            if !text::is_reported(entry, tally) {
                continue;
            }
            out.push(text::finding(*id, entry, tally));
        }
        for tally in self.endpoints.values() {
            if let Some(finding) = text::huge_response(tally) {
                out.push(finding);
            }
        }
        rank_findings(&mut out);
        out
    }
}

/// Orders findings the one way every list of them is ordered: most costly first, then by
/// severity, then by id (so equal costs never depend on arrival order).
pub fn rank_findings(findings: &mut [FindingSnapshot]) {
    findings.sort_by(|a, b| {
        b.cost_ms_total
            .total_cmp(&a.cost_ms_total)
            .then_with(|| rank(&a.severity).cmp(&rank(&b.severity)))
            .then_with(|| a.id.cmp(&b.id))
    });
}

fn rank(severity: &str) -> u8 {
    match severity {
        "high" => 0,
        "medium" => 1,
        _ => 2,
    }
}

type Contribution<'a> = (Occurrence<'a>, Option<&'a Detection>, Option<&'a Arc<Fingerprint>>);

/// Everything one request contributes: its detections, and its N+1 groups and duplicates
/// (N+1 groups of writes are row-by-row writes, and N+1 groups inside an MN+1 loop belong to
/// the loop: neither is listed twice).
fn occurrences(analysis: &RequestAnalysis) -> Vec<Contribution<'_>> {
    let mut out: Vec<Contribution<'_>> = Vec::new();
    for detection in &analysis.detections {
        out.push((
            Occurrence {
                category: detection.category,
                rule: detection.rule,
                subject: Subject::Text(&detection.subject),
                count: u64::from(detection.count),
                cost_ns: detection.cost_ns,
                figure: detection.figure,
                statement: detection.example.as_deref(),
                code_location: detection.code_location.as_deref(),
            },
            Some(detection),
            detection.fingerprint.as_ref(),
        ));
    }
    let row_by_row = |id: u64| {
        analysis
            .detections
            .iter()
            .any(|d| d.category == Category::RowByRowWrite && d.fingerprint.as_ref().is_some_and(|f| f.id == id))
    };
    for group in &analysis.n_plus_one {
        let id = group.fingerprint.id;
        let is_write = writes::write_rule(group.fingerprint.operation.as_deref()).is_some();
        if is_write || analysis.pattern_shapes.contains(&id) {
            continue;
        }
        let code_location = analysis
            .queries
            .iter()
            .find(|q| q.fingerprint.id == id && q.code_location.is_some())
            .and_then(|q| q.code_location.as_deref());
        out.push((
            Occurrence {
                category: Category::NPlusOne,
                rule: "",
                subject: Subject::id(id),
                count: u64::from(group.repeats),
                cost_ns: group.time_ns,
                figure: 0,
                statement: Some(&group.example_statement),
                code_location,
            },
            None,
            Some(&group.fingerprint),
        ));
    }
    // Duplicates are one finding per query shape (not per value): a request that repeats the
    // lookups of several ids has one problem. A shape that is also this request's N+1 or part of
    // its MN+1 loop is covered by that finding.
    let mut by_shape: Vec<(&crate::analyze::Duplicate, u64, u64)> = Vec::new();
    for duplicate in &analysis.duplicates {
        let id = duplicate.fingerprint.id;
        if row_by_row(id)
            || analysis.pattern_shapes.contains(&id)
            || analysis.n_plus_one.iter().any(|g| g.fingerprint.id == id)
        {
            continue;
        }
        match by_shape.iter_mut().find(|(d, _, _)| d.fingerprint.id == id) {
            Some((example, count, cost)) => {
                *count += u64::from(duplicate.repeats);
                *cost = cost.saturating_add(duplicate.wasted_ns);
                if duplicate.repeats > example.repeats {
                    *example = duplicate;
                }
            }
            None => by_shape.push((duplicate, u64::from(duplicate.repeats), duplicate.wasted_ns)),
        }
    }
    for (duplicate, count, cost_ns) in by_shape {
        out.push((
            Occurrence {
                category: Category::DuplicateQuery,
                rule: "",
                subject: Subject::id(duplicate.fingerprint.id),
                count,
                cost_ns,
                figure: 0,
                statement: Some(&duplicate.statement),
                code_location: analysis
                    .queries
                    .iter()
                    .find(|q| q.identity == Some(duplicate.identity) && q.code_location.is_some())
                    .and_then(|q| q.code_location.as_deref()),
            },
            None,
            Some(&duplicate.fingerprint),
        ));
    }
    out
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod hex_tests {
    use super::*;

    #[test]
    fn stack_hex_matches_display() {
        let trace = TraceId([0, 1, 0x7f, 0x80, 0xab, 0xff, 9, 10, 11, 12, 13, 14, 15, 16, 200, 255]);
        assert_eq!(trace.hex().as_str(), "00017f80abff090a0b0c0d0e0f10c8ff");
        assert_eq!(Subject::id(0x0123_4567_89ab_cdef).as_str(), "0123456789abcdef");
        assert_eq!(Subject::id(7).as_str(), format!("{:016x}", 7u64));
    }
}
