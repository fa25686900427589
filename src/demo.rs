//! The built-in synthetic app behind `apmtop demo`: a small bookshop whose requests are sent as
//! real OTLP/gRPC exports to apmtop's own receiver, so every view has something to show.
//!
//! Two services, `storefront` (Python) and `payments` (Java), with spans in the current semantic
//! conventions (`http.request.method`, `http.route`, `db.system.name`, `db.query.text`):
//!
//! | endpoint | what it shows |
//! |---|---|
//! | `GET /api/books` | an N+1: one author lookup per book |
//! | `GET /api/books/{id}` | a duplicate: the same review count three times |
//! | `GET /api/search` | a slow query (`LIKE '%…%'` over the whole table) |
//! | `POST /api/orders` | a call to `payments`, failing when the charge fails |
//! | `POST /charge` (payments) | the failing endpoint: about a third end in 500 |
//! | `GET /health` | fast, no database |
//!
//! [`Generator::export`] builds one export (pure, from a seeded generator); [`run`] sends them at
//! a rate until told to stop.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use tokio::sync::oneshot;

use crate::semconv;

/// How often the generator sends an export.
const SEND_EVERY: Duration = Duration::from_millis(100);
/// Highest rate `apmtop demo` accepts, requests per second.
pub const MAX_RATE: f64 = 5_000.0;

const STOREFRONT: &str = "storefront";
const PAYMENTS: &str = "payments";

/// A small deterministic generator (splitmix64): the demo needs variety, not cryptography.
#[derive(Debug, Clone)]
pub struct Generator {
    state: u64,
    next_id: u64,
}

/// One request's spans, by service.
#[derive(Default)]
struct Built {
    storefront: Vec<Span>,
    payments: Vec<Span>,
}

/// Span timing in milliseconds relative to the request's start.
struct Timing {
    start_ns: u64,
}

impl Timing {
    fn at(&self, ms: f64) -> u64 {
        self.start_ns + (ms.max(0.0) * 1_000_000.0) as u64
    }
}

impl Generator {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Generator { state: seed, next_id: seed.rotate_left(17) | 1 }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `low..high`.
    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (self.next() >> 11) as f64 / (1u64 << 53) as f64 * (high - low)
    }

    fn trace_id(&mut self) -> Vec<u8> {
        let mut id = self.next().to_be_bytes().to_vec();
        id.extend(self.next().to_be_bytes());
        id
    }

    fn span_id(&mut self) -> Vec<u8> {
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id ^ self.next();
        (if id == 0 { 1 } else { id }).to_be_bytes().to_vec()
    }

    /// One export holding `requests` requests that ended by `now_ns` (unix nanoseconds).
    pub fn export(&mut self, requests: usize, now_ns: u64) -> ExportTraceServiceRequest {
        let mut built = Built::default();
        for _ in 0..requests {
            let pick = self.between(0.0, 100.0);
            match pick {
                p if p < 30.0 => self.books(&mut built, now_ns),
                p if p < 55.0 => self.book(&mut built, now_ns),
                p if p < 65.0 => self.search(&mut built, now_ns),
                p if p < 80.0 => self.order(&mut built, now_ns),
                _ => self.health(&mut built, now_ns),
            }
        }
        let mut resource_spans = Vec::new();
        for (service, language, spans) in [(STOREFRONT, "python", built.storefront), (PAYMENTS, "java", built.payments)]
        {
            if spans.is_empty() {
                continue;
            }
            resource_spans.push(ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        text(semconv::SERVICE_NAME, service),
                        text(semconv::SDK_LANGUAGE, language),
                        text("telemetry.sdk.name", "opentelemetry"),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "apmtop.demo".to_string(),
                        version: env!("CARGO_PKG_VERSION").to_string(),
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        ExportTraceServiceRequest { resource_spans }
    }

    /// A SERVER span for `method route`, lasting `duration_ms` and ending at `now_ns`.
    fn server(
        &mut self,
        trace_id: &[u8],
        parent: Option<&[u8]>,
        (method, route, path): (&str, &str, &str),
        status: i64,
        timing: &Timing,
        duration_ms: f64,
    ) -> Span {
        let failed = status >= 500;
        Span {
            trace_id: trace_id.to_vec(),
            span_id: self.span_id(),
            parent_span_id: parent.map(<[u8]>::to_vec).unwrap_or_default(),
            name: format!("{method} {route}"),
            kind: SpanKind::Server as i32,
            start_time_unix_nano: timing.at(0.0),
            end_time_unix_nano: timing.at(duration_ms),
            attributes: vec![
                text(semconv::HTTP_REQUEST_METHOD, method),
                text(semconv::HTTP_ROUTE, route),
                text(semconv::URL_PATH, path),
                text("url.scheme", "http"),
                int(semconv::HTTP_RESPONSE_STATUS_CODE, status),
            ],
            status: failed
                .then(|| Status { code: StatusCode::Error as i32, message: "internal server error".to_string() }),
            ..Default::default()
        }
    }

    /// A PostgreSQL query span under `parent` from `from_ms` to `to_ms`.
    fn query(
        &mut self,
        trace_id: &[u8],
        parent: &[u8],
        statement: &str,
        timing: &Timing,
        from_ms: f64,
        to_ms: f64,
    ) -> Span {
        let operation = statement.split_whitespace().next().unwrap_or("QUERY").to_ascii_uppercase();
        Span {
            trace_id: trace_id.to_vec(),
            span_id: self.span_id(),
            parent_span_id: parent.to_vec(),
            name: format!("{operation} bookshop"),
            kind: SpanKind::Client as i32,
            start_time_unix_nano: timing.at(from_ms),
            end_time_unix_nano: timing.at(to_ms),
            attributes: vec![
                text(semconv::DB_SYSTEM_NAME, "postgresql"),
                text("db.namespace", "bookshop"),
                text(semconv::DB_QUERY_TEXT, statement),
                text(semconv::DB_OPERATION_NAME, &operation),
                text("server.address", "127.0.0.1"),
                int("server.port", 5432),
            ],
            ..Default::default()
        }
    }

    /// An INTERNAL span (a view function) under `parent`.
    fn internal(
        &mut self,
        trace_id: &[u8],
        parent: &[u8],
        name: &str,
        timing: &Timing,
        from_ms: f64,
        to_ms: f64,
    ) -> Span {
        Span {
            trace_id: trace_id.to_vec(),
            span_id: self.span_id(),
            parent_span_id: parent.to_vec(),
            name: name.to_string(),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: timing.at(from_ms),
            end_time_unix_nano: timing.at(to_ms),
            ..Default::default()
        }
    }

    /// `GET /api/books`: the book list, then one author lookup per book (the N+1).
    fn books(&mut self, out: &mut Built, now_ns: u64) {
        let trace = self.trace_id();
        let books = self.between(12.0, 40.0) as usize;
        let lookup = self.between(0.8, 2.2);
        let list = self.between(2.0, 6.0);
        let duration = 4.0 + list + books as f64 * (lookup + 0.3) + self.between(2.0, 8.0);
        let timing = Timing { start_ns: now_ns.saturating_sub((duration * 1_000_000.0) as u64) };
        let root = self.server(&trace, None, ("GET", "/api/books", "/api/books"), 200, &timing, duration);
        let view = self.internal(&trace, &root.span_id, "BookListView.get", &timing, 1.0, duration - 1.0);
        let mut at = 2.0;
        let list_query = self.query(
            &trace,
            &view.span_id,
            "SELECT \"book\".\"id\", \"book\".\"title\", \"book\".\"author_id\" FROM \"book\" ORDER BY \"book\".\"title\" LIMIT 50",
            &timing,
            at,
            at + list,
        );
        at += list + 0.3;
        out.storefront.push(list_query);
        for _ in 0..books {
            let author = self.between(1.0, 500.0) as u64;
            let statement = format!(
                "SELECT \"author\".\"id\", \"author\".\"name\" FROM \"author\" WHERE \"author\".\"id\" = {author} LIMIT 21"
            );
            let span = self.query(&trace, &view.span_id, &statement, &timing, at, at + lookup);
            out.storefront.push(span);
            at += lookup + 0.3;
        }
        out.storefront.push(view);
        out.storefront.push(root);
    }

    /// `GET /api/books/{id}`: the book, then the same review count three times (a duplicate).
    fn book(&mut self, out: &mut Built, now_ns: u64) {
        let trace = self.trace_id();
        let id = self.between(1.0, 2000.0) as u64;
        let count = self.between(1.5, 4.0);
        let duration = 6.0 + 3.0 * (count + 0.4) + self.between(1.0, 6.0);
        let timing = Timing { start_ns: now_ns.saturating_sub((duration * 1_000_000.0) as u64) };
        let path = format!("/api/books/{id}");
        let root = self.server(&trace, None, ("GET", "/api/books/{id}", &path), 200, &timing, duration);
        let by_id = format!("SELECT \"book\".\"id\", \"book\".\"title\" FROM \"book\" WHERE \"book\".\"id\" = {id}");
        out.storefront.push(self.query(&trace, &root.span_id, &by_id, &timing, 1.0, 3.0));
        let reviews = format!("SELECT COUNT(*) FROM \"review\" WHERE \"review\".\"book_id\" = {id}");
        let mut at = 3.5;
        for _ in 0..3 {
            out.storefront.push(self.query(&trace, &root.span_id, &reviews, &timing, at, at + count));
            at += count + 0.4;
        }
        out.storefront.push(root);
    }

    /// `GET /api/search`: a leading-wildcard LIKE that reads the whole table (the slow query).
    fn search(&mut self, out: &mut Built, now_ns: u64) {
        let trace = self.trace_id();
        let scan = self.between(250.0, 900.0);
        let duration = scan + self.between(3.0, 12.0);
        let timing = Timing { start_ns: now_ns.saturating_sub((duration * 1_000_000.0) as u64) };
        let root = self.server(&trace, None, ("GET", "/api/search", "/api/search"), 200, &timing, duration);
        let words = ["dragon", "garden", "winter", "river", "mirror"];
        let word = words[(self.next() % words.len() as u64) as usize];
        let statement = format!(
            "SELECT \"book\".\"id\", \"book\".\"title\" FROM \"book\" WHERE \"book\".\"title\" LIKE '%{word}%' ORDER BY \"book\".\"title\""
        );
        out.storefront.push(self.query(&trace, &root.span_id, &statement, &timing, 1.0, 1.0 + scan));
        out.storefront.push(root);
    }

    /// `POST /api/orders` on storefront, calling `POST /charge` on payments, which fails about a
    /// third of the time (and the order with it).
    fn order(&mut self, out: &mut Built, now_ns: u64) {
        let trace = self.trace_id();
        let charge_ms = self.between(40.0, 180.0);
        let failed = self.between(0.0, 1.0) < 0.33;
        let duration = 8.0 + charge_ms + 6.0;
        let timing = Timing { start_ns: now_ns.saturating_sub((duration * 1_000_000.0) as u64) };
        let status = if failed { 502 } else { 201 };
        let root = self.server(&trace, None, ("POST", "/api/orders", "/api/orders"), status, &timing, duration);
        let insert = "INSERT INTO \"order\" (\"customer_id\", \"total\") VALUES ($1, $2) RETURNING \"order\".\"id\"";
        out.storefront.push(self.query(&trace, &root.span_id, insert, &timing, 1.0, 4.0));
        let mut call = Span {
            trace_id: trace.clone(),
            span_id: self.span_id(),
            parent_span_id: root.span_id.clone(),
            name: "POST".to_string(),
            kind: SpanKind::Client as i32,
            start_time_unix_nano: timing.at(6.0),
            end_time_unix_nano: timing.at(6.0 + charge_ms + 2.0),
            attributes: vec![
                text(semconv::HTTP_REQUEST_METHOD, "POST"),
                text(semconv::URL_FULL, "http://payments:8080/charge"),
                int(semconv::HTTP_RESPONSE_STATUS_CODE, if failed { 500 } else { 200 }),
            ],
            ..Default::default()
        };
        if failed {
            call.status = Some(Status { code: StatusCode::Error as i32, message: "500 Internal Server Error".into() });
        }
        let remote = Timing { start_ns: timing.at(7.0) };
        let charge_status = if failed { 500 } else { 200 };
        let mut charge =
            self.server(&trace, Some(&call.span_id), ("POST", "/charge", "/charge"), charge_status, &remote, charge_ms);
        charge.flags = 0x100 | 0x200; // the parent is remote: an entry point of payments
        let lock = "SELECT \"account\".\"balance\" FROM \"account\" WHERE \"account\".\"id\" = $1 FOR UPDATE";
        out.payments.push(self.query(&trace, &charge.span_id, lock, &remote, 1.0, 5.0));
        let record = "INSERT INTO \"charge\" (\"account_id\", \"amount\") VALUES ($1, $2)";
        out.payments.push(self.query(&trace, &charge.span_id, record, &remote, 6.0, charge_ms - 2.0));
        out.payments.push(charge);
        out.storefront.push(call);
        out.storefront.push(root);
    }

    /// `GET /health`: fast, no database.
    fn health(&mut self, out: &mut Built, now_ns: u64) {
        let trace = self.trace_id();
        let duration = self.between(0.2, 1.2);
        let timing = Timing { start_ns: now_ns.saturating_sub((duration * 1_000_000.0) as u64) };
        out.storefront.push(self.server(&trace, None, ("GET", "/health", "/health"), 200, &timing, duration));
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_string())) }),
        ..Default::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(value)) }),
        ..Default::default()
    }
}

fn now_ns() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

/// What the generator sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// Requests sent.
    pub requests: u64,
    /// Exports that failed (the receiver was busy or gone); the demo goes on.
    pub failed_exports: u64,
}

/// Sends the synthetic app's requests to the OTLP/gRPC endpoint `endpoint` (`http://host:port`)
/// at `rate` requests per second until `stop` fires. Returns what was sent.
pub async fn run(endpoint: String, rate: f64, mut stop: oneshot::Receiver<()>) -> anyhow::Result<Sent> {
    let mut client = TraceServiceClient::connect(endpoint.clone())
        .await
        .with_context(|| format!("cannot connect to the demo's own receiver at {endpoint}"))?;
    let mut generator = Generator::new(now_ns());
    let mut tick = tokio::time::interval(SEND_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let per_tick = rate.clamp(0.0, MAX_RATE) * SEND_EVERY.as_secs_f64();
    let mut owed = 0.0;
    let mut sent = Sent::default();
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(sent),
            _ = tick.tick() => {}
        }
        owed += per_tick;
        let requests = owed.floor() as usize;
        if requests == 0 {
            continue;
        }
        owed -= requests as f64;
        let export = generator.export(requests, now_ns());
        match client.export(export).await {
            Ok(_) => sent.requests += requests as u64,
            Err(error) => {
                sent.failed_exports += 1;
                tracing::debug!(%error, "demo export refused");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_hold_both_services_and_every_endpoint() {
        let export = Generator::new(7).export(200, 2_000_000_000_000_000_000);
        assert_eq!(export.resource_spans.len(), 2);
        let routes: std::collections::BTreeSet<String> = export
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .filter(|s| s.kind == SpanKind::Server as i32)
            .filter_map(|s| s.attributes.iter().find(|a| a.key == semconv::HTTP_ROUTE))
            .filter_map(|a| match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(route)) => Some(route.clone()),
                _ => None,
            })
            .collect();
        let expected = ["/api/books", "/api/books/{id}", "/api/orders", "/api/search", "/charge", "/health"];
        assert_eq!(routes.into_iter().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn the_same_seed_gives_the_same_export() {
        assert_eq!(Generator::new(3).export(20, 1 << 60), Generator::new(3).export(20, 1 << 60));
    }

    #[test]
    fn spans_end_by_now_and_never_before_they_start() {
        let now = 1_800_000_000_000_000_000;
        let export = Generator::new(11).export(100, now);
        for span in export.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans) {
            assert!(span.start_time_unix_nano <= span.end_time_unix_nano, "{}", span.name);
            assert!(span.end_time_unix_nano <= now + 1_000_000_000, "{}", span.name);
            assert_eq!(span.trace_id.len(), 16);
            assert_eq!(span.span_id.len(), 8);
        }
    }
}

#[cfg(test)]
mod pipeline_tests {
    //! The generator driven headless against a real pipeline on free ports.
    use std::sync::Arc;

    use super::*;
    use crate::cli::Settings;
    use crate::control::Control;
    use crate::model::TraceId;
    use crate::pipeline;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_demo_app_fills_every_view_over_real_otlp() {
        let settings = Settings {
            grpc: "127.0.0.1:0".parse().expect("addr"),
            http: "127.0.0.1:0".parse().expect("addr"),
            grace: Duration::from_millis(200),
            ..Settings::default()
        };
        let running = pipeline::start(&settings).await.expect("pipeline");
        let (stop, stopped) = oneshot::channel();
        let generator = tokio::spawn(run(format!("http://{}", running.grpc_addr), 400.0, stopped));
        let mut snapshots = running.snapshots.clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        // Until every endpoint has been seen with its problem.
        let snapshot = loop {
            let snapshot = Arc::clone(&snapshots.borrow_and_update());
            let ready = |route: &str, test: &dyn Fn(&crate::snapshot::EndpointSnapshot) -> bool| {
                snapshot.endpoints.iter().any(|e| e.route == route && test(e))
            };
            if ready("/api/books", &|e| !e.n_plus_one.is_empty())
                && ready("/api/books/{id}", &|e| !e.duplicates.is_empty())
                && ready("/charge", &|e| e.errors > 0 && e.service == PAYMENTS)
                && ready("/api/search", &|e| e.latency_ms.p50 >= 200.0)
                && ready("/health", &|e| e.queries_per_request.max == 0.0)
            {
                break snapshot;
            }
            assert!(tokio::time::Instant::now() < deadline, "the demo did not fill the views: {snapshot:#?}");
            let _ = tokio::time::timeout(Duration::from_millis(500), snapshots.changed()).await;
        };
        // The N+1 example trace is kept for the trace view.
        let books = snapshot.endpoints.iter().find(|e| e.route == "/api/books").expect("books");
        let trace_id = TraceId::from_hex(&books.n_plus_one[0].example_trace_id).expect("a trace id");
        let (reply, answer) = oneshot::channel();
        running.control.send(Control::Trace { trace_id, reply }).await.expect("the aggregator listens");
        let record = answer.await.expect("an answer").expect("the example trace is kept");
        assert_eq!(record.n_plus_one.len(), 1);
        assert!(record.spans.iter().any(|s| s.statement.as_deref().is_some_and(|q| q.contains("FROM \"author\""))));

        let _ = stop.send(());
        let sent = generator.await.expect("generator task").expect("generator");
        assert!(sent.requests > 0);
        let last = running.shutdown().await.expect("shutdown");
        assert!(last.totals.requests >= snapshot.totals.requests);
        assert_eq!(last.totals.spans_refused, 0);
    }
}

#[cfg(test)]
mod capture_tests {
    //! The text capture of the demo's dashboard in `assets/`, drawn from a fixed seed so it stays
    //! what the dashboard draws. `APMTOP_UPDATE_ASSETS=1` rewrites it after a deliberate change.
    use std::sync::Arc;
    use std::time::Instant;

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::cli::Settings;
    use crate::pipeline::Aggregator;
    use crate::receive::decode::convert_export;
    use crate::snapshot::Snapshot;
    use crate::stats::Stats;
    use crate::tui::app::{Action, App, Rates};
    use crate::tui::testing::sample_ui;
    use crate::tui::view;

    const CAPTURE: &str = "assets/demo-dashboard.txt";

    /// A minute of the demo at 20 requests a second, aggregated without the network.
    fn demo_snapshot() -> Snapshot {
        let stats = Arc::new(Stats::default());
        let settings = Settings { grace: Duration::ZERO, ..Settings::default() };
        let (published, _) = tokio::sync::watch::channel(Arc::new(Snapshot::default()));
        let mut aggregator = Aggregator::new(&settings, Arc::clone(&stats), published);
        let mut generator = Generator::new(2026);
        let start = 1_767_323_045_000_000_000u64;
        for step in 0..600u64 {
            let decoded = convert_export(generator.export(2, start + step * 100_000_000));
            Stats::add(&stats.spans_received, decoded.batch.spans.len() as u64);
            aggregator.handle_batch(decoded.batch, Instant::now());
        }
        aggregator.flush();
        aggregator.snapshot()
    }

    fn draw(snapshot: Snapshot) -> String {
        let mut ui = sample_ui();
        ui.rates = Some(Rates { spans_per_second: 410.0, requests_per_second: 20.0 });
        ui.throughput = [18, 21, 20, 19, 22, 20, 17, 20, 23, 19, 20, 21, 18, 20, 22, 19, 20, 21].into_iter().collect();
        let mut app = App::new(ui, Arc::new(snapshot));
        app.update(Action::Down);
        let mut terminal = Terminal::new(TestBackend::new(110, 16)).expect("test terminal");
        terminal.draw(|frame| view::render(frame, app.snapshot(), &app.ui)).expect("draw");
        let buffer = terminal.backend().buffer();
        (0..buffer.area.height)
            .map(|y| {
                let line: String = (0..buffer.area.width).map(|x| buffer[(x, y)].symbol().to_string()).collect();
                line.trim_end().to_string() + "\n"
            })
            .collect()
    }

    #[test]
    fn the_demo_capture_in_assets_is_what_the_dashboard_draws() {
        let capture = draw(demo_snapshot());
        for route in ["GET /api/books", "GET /api/books/{id}", "GET /api/search", "POST /charge", "GET /health"] {
            assert!(capture.contains(route), "{route} missing from:\n{capture}");
        }
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(CAPTURE);
        if std::env::var_os("APMTOP_UPDATE_ASSETS").is_some() {
            std::fs::write(&path, &capture).expect("write the capture");
        }
        let kept =
            std::fs::read_to_string(&path).expect("assets/demo-dashboard.txt (APMTOP_UPDATE_ASSETS=1 writes it)");
        assert_eq!(kept, capture, "the capture is out of date; rerun with APMTOP_UPDATE_ASSETS=1");
        let readme = include_str!("../README.md");
        assert!(readme.contains(capture.trim_end()), "README.md's demo capture differs from {CAPTURE}; paste it in");
    }
}
