//! The instrumentation audit: per service, what is missing when the data is incomplete (no
//! server spans, server spans without `http.route`, DB spans without statement text, no DB spans
//! at all, spans whose parent never arrived, clock skew against a calling service), each with the
//! fix. An empty dashboard must never be a mystery, so "nothing received yet" is an entry too.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::model::{Protocol, SdkInfo, Span, SpanKind};
use crate::snapshot::{AuditEntry, ProtocolSnapshot, ServiceSnapshot, Totals};

/// Counts gathered from the spans of one service within one batch.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpanFacts {
    spans: u64,
    server_spans: u64,
    server_spans_without_route: u64,
    db_spans: u64,
    db_spans_without_statement: u64,
}

impl SpanFacts {
    /// Counts one span.
    pub fn add(&mut self, span: &Span) {
        self.spans += 1;
        if span.kind == SpanKind::Server {
            self.server_spans += 1;
            if span.http.as_ref().is_none_or(|h| h.route.is_none()) {
                self.server_spans_without_route += 1;
            }
        }
        if let Some(db) = &span.db {
            self.db_spans += 1;
            if db.statement.is_none() {
                self.db_spans_without_statement += 1;
            }
        }
    }
}

/// Everything known about one service's instrumentation.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServiceFacts {
    language: Option<Arc<str>>,
    /// `telemetry.sdk.name` and `telemetry.sdk.version` of its latest export.
    sdk: (Arc<str>, Arc<str>),
    /// Exports per protocol; a handful of entries at most.
    protocols: Vec<(Protocol, u64)>,
    spans: SpanFacts,
    /// Requests assembled for it.
    pub requests: u64,
    /// Spans whose parent never arrived.
    pub orphan_spans: u64,
    /// Queries that ran outside any request.
    pub queries_outside_requests: u64,
    /// Clock skew against the services that call this one, by caller.
    clock_skew: Vec<SkewStats>,
}

/// Most callers whose clock skew is tracked per service.
const MAX_SKEW_CALLERS: usize = 16;

/// Parent/child pairs showing clock skew between one caller and this service.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct SkewStats {
    caller: Arc<str>,
    pairs: u64,
    sum_ns: i128,
    min_ns: i64,
    max_ns: i64,
}

impl ServiceFacts {
    /// Facts of a service not seen before.
    pub fn new(language: Option<Arc<str>>) -> Self {
        ServiceFacts { language, ..Default::default() }
    }

    /// Adds everything known about the same service from elsewhere (another window, instance).
    pub fn merge_facts(&mut self, other: &ServiceFacts) {
        if self.language.is_none() {
            self.language = other.language.clone();
        }
        self.merge(&other.spans);
        self.requests += other.requests;
        self.orphan_spans += other.orphan_spans;
        self.queries_outside_requests += other.queries_outside_requests;
        if !other.sdk.0.is_empty() {
            self.sdk = other.sdk.clone();
        }
        for (protocol, exports) in &other.protocols {
            match self.protocols.iter_mut().find(|(p, _)| p == protocol) {
                Some((_, count)) => *count += exports,
                None => self.protocols.push((*protocol, *exports)),
            }
        }
        for skew in &other.clock_skew {
            let room = self.clock_skew.len() < MAX_SKEW_CALLERS;
            match self.clock_skew.iter_mut().find(|s| s.caller == skew.caller) {
                Some(stats) => {
                    stats.pairs += skew.pairs;
                    stats.sum_ns += skew.sum_ns;
                    stats.min_ns = stats.min_ns.min(skew.min_ns);
                    stats.max_ns = stats.max_ns.max(skew.max_ns);
                }
                None if room => self.clock_skew.push(skew.clone()),
                None => {}
            }
        }
    }

    /// Notes one call from `caller` whose timing shows this service's clock `offset_ns` ahead.
    pub fn add_clock_skew(&mut self, caller: &Arc<str>, offset_ns: i64) {
        let index = match self.clock_skew.iter().position(|s| s.caller == *caller) {
            Some(index) => index,
            None if self.clock_skew.len() < MAX_SKEW_CALLERS => {
                let stats =
                    SkewStats { caller: Arc::clone(caller), pairs: 0, sum_ns: 0, min_ns: i64::MAX, max_ns: i64::MIN };
                self.clock_skew.push(stats);
                self.clock_skew.len() - 1
            }
            None => return,
        };
        let stats = &mut self.clock_skew[index];
        stats.pairs += 1;
        stats.sum_ns += i128::from(offset_ns);
        stats.min_ns = stats.min_ns.min(offset_ns);
        stats.max_ns = stats.max_ns.max(offset_ns);
    }

    /// Counts one export that held spans of this service.
    pub fn add_export(&mut self, protocol: Option<Protocol>, sdk: Option<&SdkInfo>) {
        if let Some(sdk) = sdk {
            self.sdk = (Arc::clone(&sdk.name), Arc::clone(&sdk.version));
        }
        let Some(protocol) = protocol else { return };
        match self.protocols.iter_mut().find(|(p, _)| *p == protocol) {
            Some((_, exports)) => *exports += 1,
            None => self.protocols.push((protocol, 1)),
        }
    }

    /// The service as the report's `services` section shows it.
    pub fn snapshot(&self, name: &str) -> ServiceSnapshot {
        let mut protocols: Vec<ProtocolSnapshot> = self
            .protocols
            .iter()
            .map(|(p, exports)| ProtocolSnapshot {
                protocol: p.transport.name().to_string(),
                compression: p.compression.name().to_string(),
                exports: *exports,
            })
            .collect();
        protocols.sort_by(|a, b| {
            b.exports.cmp(&a.exports).then_with(|| (&a.protocol, &a.compression).cmp(&(&b.protocol, &b.compression)))
        });
        ServiceSnapshot {
            name: name.to_string(),
            language: self.language.as_deref().unwrap_or_default().to_string(),
            sdk_name: self.sdk.0.to_string(),
            sdk_version: self.sdk.1.to_string(),
            protocols,
            spans: self.spans.spans,
            requests: self.requests,
        }
    }

    /// Adds a batch's counts.
    pub fn merge(&mut self, facts: &SpanFacts) {
        let s = &mut self.spans;
        s.spans += facts.spans;
        s.server_spans += facts.server_spans;
        s.server_spans_without_route += facts.server_spans_without_route;
        s.db_spans += facts.db_spans;
        s.db_spans_without_statement += facts.db_spans_without_statement;
    }
}

fn db_instrumentation(language: Option<&str>) -> &'static str {
    match language {
        Some("python") => {
            "install and enable the driver instrumentation (opentelemetry-instrumentation-sqlite3, -psycopg2, -psycopg, -mysqlclient or -pymysql; `opentelemetry-bootstrap -a install` finds them)"
        }
        Some("nodejs") => {
            "register the driver instrumentation (@opentelemetry/instrumentation-pg, -mysql2, -knex, or @prisma/instrumentation)"
        }
        Some("java") => {
            "the Java agent traces JDBC by default: check that otel.instrumentation.jdbc.enabled is not false"
        }
        Some("ruby") => {
            "add opentelemetry-instrumentation-pg / -mysql2 / -trilogy (there is none for SQLite: Rails on SQLite shows no SQL)"
        }
        Some("dotnet") => {
            "add OpenTelemetry.Instrumentation.SqlClient, or Npgsql's AddNpgsql(), to the tracer provider"
        }
        Some("go") => "wrap database/sql with otelsql (XSAM/otelsql) and pass the db.system attribute",
        _ => "enable the database driver instrumentation of the OpenTelemetry SDK",
    }
}

fn statement_capture(language: Option<&str>) -> &'static str {
    match language {
        Some("dotnet") => {
            "set SetDbStatementForText = true on SqlClient instrumentation (older versions) or update it; EF Core: SetDbStatementForText"
        }
        Some("ruby") => "set the instrumentation's db_statement option to :obfuscate or :include (not :omit)",
        Some("go") => "do not set otelsql's DisableQuery / WithSpanOptions(SpanOptions{DisableQuery: true})",
        Some("java") => {
            "check otel.instrumentation.common.db-statement-sanitizer and the JDBC instrumentation settings"
        }
        _ => "enable statement capture in the database instrumentation (db.query.text / db.statement)",
    }
}

fn route_fix(language: Option<&str>) -> &'static str {
    match language {
        Some("python") => {
            "use the framework instrumentation (opentelemetry-instrumentation-django / -flask / -fastapi), which sets http.route"
        }
        Some("nodejs") => {
            "add the framework instrumentation (@opentelemetry/instrumentation-express, -fastify, -koa) next to instrumentation-http"
        }
        Some("ruby") => {
            "use opentelemetry-instrumentation-action_pack with Rails 7.1 or later (http.route from route_uri_pattern)"
        }
        Some("go") => {
            "use Go 1.22 ServeMux patterns with otelhttp, or the router's instrumentation (otelgin, otelchi, otelecho)"
        }
        Some("java") => {
            "the Java agent sets http.route for Spring, JAX-RS and Servlet mappings: check the framework is supported"
        }
        Some("dotnet") => {
            "ASP.NET Core instrumentation sets http.route for routed endpoints: check UseRouting and endpoint routing"
        }
        _ => "enable the web framework's instrumentation, which sets http.route",
    }
}

/// `n` and a noun, singular or plural: "1 span", "3 spans".
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn entry(service: &str, code: &str, problem: String, fix: String) -> AuditEntry {
    AuditEntry { service: service.to_string(), code: code.to_string(), problem, fix }
}

/// The `services` section: every service, sorted by name.
pub fn services(services: &FxHashMap<Arc<str>, ServiceFacts>) -> Vec<ServiceSnapshot> {
    let mut out: Vec<ServiceSnapshot> = services.iter().map(|(name, facts)| facts.snapshot(name)).collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Milliseconds, to a precision that suits their size.
fn ms_text(ns: i64) -> String {
    let ms = ns as f64 / 1e6;
    if ms.abs() >= 10.0 { format!("{ms:.0} ms") } else { format!("{ms:.1} ms") }
}

fn clock_skew_entry(service: &str, skew: &SkewStats) -> AuditEntry {
    let mean = i64::try_from(skew.sum_ns / i128::from(skew.pairs.max(1))).unwrap_or(0);
    let direction = if mean >= 0 { "ahead of" } else { "behind" };
    let caller = &*skew.caller;
    let range = if skew.pairs > 1 {
        format!(" (estimates from {} pairs: {} to {})", skew.pairs, ms_text(skew.min_ns), ms_text(skew.max_ns))
    } else {
        String::new()
    };
    entry(
        service,
        "clock_skew",
        format!(
            "{} outside the {caller} {}: its clock is about {} {direction} {caller}'s{range}",
            count(skew.pairs, "server span fell", "server spans fell"),
            if skew.pairs == 1 { "call that caused it" } else { "calls that caused them" },
            ms_text(mean.saturating_abs()),
        ),
        format!(
            "synchronize the clocks of the hosts running {service} and {caller} with NTP (chrony or systemd-timesyncd; for containers and VMs, on the host), or run both on the same host; until then their spans are shifted by about {} against each other",
            ms_text(mean.saturating_abs())
        ),
    )
}

/// The audit entries for these services and totals, in a stable order.
pub fn audit(services: &FxHashMap<Arc<str>, ServiceFacts>, totals: &Totals) -> Vec<AuditEntry> {
    let mut entries = Vec::new();
    if totals.spans_received == 0 {
        let problem = if totals.metric_exports + totals.log_exports > 0 {
            format!(
                "no spans received, only {} and {}",
                count(totals.metric_exports, "metrics export", "metrics exports"),
                count(totals.log_exports, "logs export", "logs exports")
            )
        } else {
            "no spans received yet".to_string()
        };
        entries.push(entry(
            "",
            "no_spans",
            problem,
            "point the app's exporter at apmtop: OTEL_TRACES_EXPORTER=otlp and OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 (gRPC) or http://127.0.0.1:4318 (HTTP), then make some requests; the app's exporter log says why an export failed".to_string(),
        ));
    }
    let mut names: Vec<&Arc<str>> = services.keys().collect();
    names.sort();
    for name in names {
        let facts = &services[name];
        let s = &facts.spans;
        let language = facts.language.as_deref();
        if s.spans > 0 && s.server_spans == 0 && facts.requests == 0 {
            entries.push(entry(
                name,
                "no_server_spans",
                format!(
                    "{} received but no SERVER span, so no request could be assembled",
                    count(s.spans, "span", "spans")
                ),
                format!("instrument the web framework or HTTP server: {}", route_fix(language)),
            ));
        }
        if s.server_spans_without_route > 0 {
            entries.push(entry(
                name,
                "server_spans_without_route",
                format!(
                    "{} of {} without http.route; their endpoints are grouped by normalized path",
                    s.server_spans_without_route,
                    count(s.server_spans, "server span", "server spans")
                ),
                route_fix(language).to_string(),
            ));
        }
        if s.db_spans > 0 && s.db_spans == s.db_spans_without_statement {
            entries.push(entry(
                name,
                "db_spans_without_statement",
                format!(
                    "none of its {} carries statement text, so queries cannot be counted or fingerprinted",
                    count(s.db_spans, "DB span", "DB spans")
                ),
                statement_capture(language).to_string(),
            ));
        }
        if s.db_spans == 0 && (s.server_spans > 0 || facts.requests > 0) {
            entries.push(entry(
                name,
                "no_db_spans",
                format!(
                    "{} but no DB spans at all: queries are invisible",
                    count(facts.requests.max(s.server_spans), "request", "requests")
                ),
                format!("if this service uses a database, {}", db_instrumentation(language)),
            ));
        }
        if facts.orphan_spans > 0 {
            entries.push(entry(
                name,
                "spans_without_parent",
                format!(
                    "{} whose parent never arrived left out of requests",
                    count(facts.orphan_spans, "span", "spans")
                ),
                "make every service of the trace export to apmtop, check the SDK is not dropping spans (OTEL_BSP_MAX_QUEUE_SIZE), and raise --grace if parents arrive late".to_string(),
            ));
        }
        let mut skews: Vec<&SkewStats> = facts.clock_skew.iter().collect();
        skews.sort_by(|a, b| a.caller.cmp(&b.caller));
        for skew in skews {
            entries.push(clock_skew_entry(name, skew));
        }
        if facts.queries_outside_requests > 0 {
            entries.push(entry(
                name,
                "queries_outside_requests",
                format!(
                    "{} outside any request (start-up, migrations, background work), not attributed to an endpoint",
                    count(facts.queries_outside_requests, "query ran", "queries ran")
                ),
                "nothing to do if expected; wrap background work in a span to see it as its own endpoint".to_string(),
            ));
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::test_support::{query, root};

    fn facts_of(spans: &[Span]) -> ServiceFacts {
        let mut facts = ServiceFacts::new(Some(Arc::from("python")));
        let mut batch = SpanFacts::default();
        for span in spans {
            batch.add(span);
        }
        facts.merge(&batch);
        facts
    }

    fn codes(services: FxHashMap<Arc<str>, ServiceFacts>) -> Vec<String> {
        let totals = Totals { spans_received: 1, ..Default::default() };
        audit(&services, &totals).into_iter().map(|e| e.code).collect()
    }

    #[test]
    fn counts_read_as_english() {
        assert_eq!(count(1, "query ran", "queries ran"), "1 query ran");
        assert_eq!(count(3, "span", "spans"), "3 spans");
        assert_eq!(count(0, "span", "spans"), "0 spans");
    }

    #[test]
    fn clock_skew_names_both_services_and_the_offset() {
        let mut api = facts_of(&[root()]);
        api.requests = 3;
        api.spans.db_spans = 1;
        let caller: Arc<str> = Arc::from("web");
        for offset_ms in [-110, -120, -130] {
            api.add_clock_skew(&caller, offset_ms * 1_000_000);
        }
        let totals = Totals { spans_received: 1, ..Default::default() };
        let entries = audit(&FxHashMap::from_iter([(Arc::from("api"), api)]), &totals);
        let skew = entries.iter().find(|e| e.code == "clock_skew").expect("a clock_skew entry");
        assert_eq!(skew.service, "api");
        assert_eq!(
            skew.problem,
            "3 server spans fell outside the web calls that caused them: its clock is about 120 ms behind web's (estimates from 3 pairs: -130 ms to -110 ms)"
        );
        assert!(skew.fix.contains("NTP") && skew.fix.contains("api and web"), "{}", skew.fix);
    }

    #[test]
    fn nothing_received_is_explained() {
        let entries = audit(&FxHashMap::default(), &Totals::default());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].code, "no_spans");
        assert!(entries[0].fix.contains("OTEL_EXPORTER_OTLP_ENDPOINT"));
    }

    #[test]
    fn complete_instrumentation_has_no_entries() {
        let mut facts = facts_of(&[root(), query(2, 1, "SELECT 1", 0)]);
        facts.requests = 1;
        assert!(codes(FxHashMap::from_iter([(Arc::from("shop"), facts)])).is_empty());
    }

    #[test]
    fn missing_pieces_are_each_reported() {
        let mut server = root();
        server.http.as_mut().expect("http").route = None;
        let mut db = query(2, 1, "x", 0);
        db.db.as_mut().expect("db").statement = None;
        let mut facts = facts_of(&[server, db]);
        facts.orphan_spans = 2;
        let found = codes(FxHashMap::from_iter([(Arc::from("shop"), facts)]));
        assert_eq!(found, ["server_spans_without_route", "db_spans_without_statement", "spans_without_parent"]);

        let only_queries = facts_of(&[query(2, 1, "SELECT 1", 0)]);
        assert_eq!(codes(FxHashMap::from_iter([(Arc::from("worker"), only_queries)])), ["no_server_spans"]);

        let mut no_db = facts_of(&[root()]);
        no_db.requests = 1;
        assert_eq!(codes(FxHashMap::from_iter([(Arc::from("web"), no_db)])), ["no_db_spans"]);
    }
}
