//! Wiring: binds the listeners, spawns the receivers and the aggregator, and runs the shutdown in
//! order.
//!
//! ```text
//! listeners (gRPC + HTTP, both routers) --Ingested batches (bounded)--> aggregator task
//!   aggregator: assemble -> analyze -> aggregate -> Arc<Snapshot> on a watch channel
//!   report task: writes the latest snapshot every --report-every seconds
//!   explain task (--explain): snapshot -> EXPLAIN -> missing-index findings -> aggregator
//! ```
//!
//! Shutdown is one signal: the servers stop accepting and finish in-flight exports; then the
//! aggregator closes its channel, drains what is queued, closes every pending trace and returns
//! the final snapshot, which is written as the report.

pub mod replay;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use crate::aggregate::traces::{TraceRecord, TraceStore};
use crate::aggregate::window::Slices;
use crate::aggregate::{self, AggregateConfig, Aggregates};
use crate::analyze::Analyzer;
use crate::assemble::{Assembler, AssemblyConfig, AssemblyOutput};
use crate::cli::Settings;
use crate::control::{CONTROL_CAPACITY, Control, Window};
use crate::explain::{self, Explainer};
use crate::model::SpanBatch;
use crate::receive::{self, Ingest, Ingested};
use crate::report;
use crate::snapshot::{Snapshot, Totals};
use crate::stats::Stats;

/// How often pending traces are checked against their deadlines.
const TICK: Duration = Duration::from_millis(100);
/// Least time between two published snapshots.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);
/// How long in-flight exports may take to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Entries in the fingerprint cache.
const FINGERPRINT_CACHE: usize = 20_000;
/// Spans decoded but not yet processed, at most.
const MAX_IN_FLIGHT_SPANS: usize = 1_000_000;
/// How long the explain task may take to finish its pass at shutdown, and the final pass after.
const EXPLAIN_FINAL_TIMEOUT: Duration = Duration::from_secs(15);

/// The single owner of assembly, analysis and aggregates.
pub struct Aggregator {
    assembler: Assembler,
    analyzer: Analyzer,
    aggregates: Aggregates,
    /// The recent past in slices, for time windows.
    slices: Slices,
    /// The window published snapshots show.
    window: Window,
    /// Receiver counters at the last clear, subtracted from the live ones.
    baseline: Totals,
    /// Spans of the requests the aggregates point at (slowest, N+1 and duplicate examples).
    traces: TraceStore,
    stats: Arc<Stats>,
    published: watch::Sender<Arc<Snapshot>>,
    dirty: bool,
    last_publish: Instant,
    /// Findings made outside the aggregator (`--explain`), appended to every snapshot.
    extra_findings: Option<watch::Receiver<explain::Findings>>,
}

impl Aggregator {
    /// A new aggregator publishing snapshots on `published`.
    pub fn new(settings: &Settings, stats: Arc<Stats>, published: watch::Sender<Arc<Snapshot>>) -> Self {
        let assembly = AssemblyConfig { grace: settings.grace, ..AssemblyConfig::default() };
        let aggregate = AggregateConfig {
            max_endpoints: settings.max_endpoints,
            n_plus_one_min: settings.n_plus_one_min,
            grace_seconds: settings.grace.as_secs_f64(),
            ..AggregateConfig::default()
        };
        Aggregator {
            assembler: Assembler::new(assembly),
            analyzer: Analyzer::new(settings.n_plus_one_min, FINGERPRINT_CACHE),
            slices: Slices::new(aggregate.clone()),
            aggregates: Aggregates::new(aggregate),
            window: Window::default(),
            baseline: Totals::default(),
            traces: TraceStore::default(),
            stats,
            published,
            dirty: true,
            last_publish: Instant::now(),
            extra_findings: None,
        }
    }

    /// Appends the findings published on `findings` to every snapshot.
    pub fn with_extra_findings(mut self, findings: watch::Receiver<explain::Findings>) -> Self {
        self.extra_findings = Some(findings);
        self
    }

    /// Takes in one batch received at `now`.
    pub fn handle_batch(&mut self, batch: SpanBatch, now: Instant) {
        self.aggregates.observe_spans(&batch.spans);
        self.aggregates.observe_export(&batch.origin, &batch.spans);
        let mut out = AssemblyOutput::default();
        self.assembler.add_batch(batch.spans, now, &mut out);
        self.take(out, now);
        self.dirty = true;
    }

    /// Closes the traces whose grace period has passed.
    pub fn expire(&mut self, now: Instant) {
        let mut out = AssemblyOutput::default();
        self.assembler.expire(now, &mut out);
        self.take(out, now);
    }

    /// Closes every pending trace.
    pub fn flush(&mut self) {
        let mut out = AssemblyOutput::default();
        self.assembler.flush(&mut out);
        self.take(out, Instant::now());
    }

    fn take(&mut self, mut out: AssemblyOutput, now: Instant) {
        if out.requests.is_empty()
            && out.dropped_spans == 0
            && out.duplicate_spans == 0
            && out.orphans.is_empty()
            && out.late_spans == 0
            && out.clock_skew.is_empty()
            && out.queries_outside_requests.is_empty()
        {
            return;
        }
        self.aggregates.record_assembly(&out);
        self.slices.record_assembly(&out, now);
        for request in out.requests.drain(..) {
            let analysis = self.analyzer.analyze(request);
            self.aggregates.record(&analysis);
            self.slices.record(&analysis, now);
            // Only requests the aggregates now point at are kept: the others cost no copy.
            if self.aggregates.references(&analysis.endpoint, analysis.trace_id.hex().as_str()) {
                self.traces.insert(TraceRecord::from_analysis(analysis));
            }
        }
        self.dirty = true;
    }

    /// Drops the kept traces the aggregates no longer point at.
    fn evict_unreferenced_traces(&mut self) {
        let referenced = self.aggregates.referenced_traces();
        self.traces.retain_referenced(|id| referenced.contains(id.hex().as_str()));
    }

    /// Serves one request from the dashboard.
    pub fn handle_control(&mut self, control: Control) {
        match control {
            Control::Trace { trace_id, reply } => {
                let _ = reply.send(self.traces.get(&trace_id));
            }
            Control::SetWindow(window) => self.set_window(window),
            Control::Clear => self.clear(),
        }
    }

    /// The kept trace `trace_id`, if any.
    pub fn trace(&self, trace_id: &crate::model::TraceId) -> Option<Arc<TraceRecord>> {
        self.traces.get(trace_id)
    }

    /// The window published snapshots show.
    pub fn window(&self) -> Window {
        self.window
    }

    /// The current snapshot, all time.
    pub fn snapshot(&self) -> Snapshot {
        let mut snapshot = self.aggregates.snapshot(self.receiver_totals(), self.assembler.pending_traces() as u64);
        self.add_extra_findings(&mut snapshot);
        snapshot
    }

    /// Adds the findings made outside the aggregator (`--explain`'s missing indexes).
    fn add_extra_findings(&self, snapshot: &mut Snapshot) {
        if let Some(extra) = &self.extra_findings {
            explain::merge_findings(&mut snapshot.findings, &extra.borrow());
        }
    }

    /// The snapshot the dashboard shows: all time, or the chosen window (whose audit and services
    /// are still the all-time ones: instrumentation gaps do not expire).
    fn displayed_snapshot(&self) -> Snapshot {
        let Some(window) = self.window.duration() else {
            return self.snapshot();
        };
        let mut shown = self
            .slices
            .merged(window, Instant::now())
            .snapshot(aggregate::receiver_counters(&self.receiver_totals()), self.assembler.pending_traces() as u64);
        (shown.audit, shown.services) = self.aggregates.instrumentation(&self.receiver_totals());
        shown.window_seconds = Some(window.as_secs_f64());
        self.add_extra_findings(&mut shown);
        shown
    }

    /// Shows `window` in published snapshots from now on.
    pub fn set_window(&mut self, window: Window) {
        self.window = window;
        self.dirty = true;
    }

    /// Forgets every statistic and kept trace (for a clean before/after); traces being
    /// assembled are kept, and the receivers' counters count from now.
    pub fn clear(&mut self) {
        let config = self.aggregates.config().clone();
        self.aggregates = Aggregates::new(config.clone());
        self.slices = Slices::new(config);
        self.traces = TraceStore::default();
        self.baseline = Totals::default();
        self.baseline = self.receiver_totals();
        self.dirty = true;
    }

    /// The current snapshot with the lossless aggregates attached, for report files.
    pub fn report_snapshot(&self) -> Snapshot {
        let mut snapshot = self.snapshot();
        match serde_json::to_value(self.aggregates.to_state(&self.receiver_totals())) {
            Ok(state) => snapshot.aggregates = Some(Arc::new(state)),
            Err(error) => tracing::warn!(%error, "the report will carry no aggregates"),
        }
        snapshot
    }

    fn receiver_totals(&self) -> Totals {
        let since = |counter: &std::sync::atomic::AtomicU64, base: u64| Stats::get(counter).saturating_sub(base);
        let b = &self.baseline;
        Totals {
            spans_received: since(&self.stats.spans_received, b.spans_received),
            spans_rejected: since(&self.stats.spans_rejected, b.spans_rejected),
            spans_refused: since(&self.stats.spans_refused, b.spans_refused),
            trace_exports: since(&self.stats.trace_exports, b.trace_exports),
            metric_exports: since(&self.stats.metric_exports, b.metric_exports),
            log_exports: since(&self.stats.log_exports, b.log_exports),
            exports_malformed: since(&self.stats.exports_malformed, b.exports_malformed),
            capture_records_dropped: since(&self.stats.capture_records_dropped, b.capture_records_dropped),
            ..Totals::default()
        }
    }

    fn publish(&mut self) {
        if let Some(extra) = &mut self.extra_findings {
            extra.mark_unchanged();
        }
        self.evict_unreferenced_traces();
        self.published.send_replace(Arc::new(self.displayed_snapshot()));
        self.dirty = false;
        self.last_publish = Instant::now();
    }

    /// Runs until `stop` fires (or every sender is gone), then drains the channel, closes every
    /// pending trace and returns the final snapshot (with its aggregates, for the report).
    /// Requests from the dashboard on `control` are served between batches.
    ///
    /// With `reports`, a full report snapshot is sent there every `every` (the writer task may
    /// be busy: then that one is skipped, never queued).
    pub async fn run(
        mut self,
        mut batches: mpsc::Receiver<Ingested>,
        mut stop: oneshot::Receiver<()>,
        reports: Option<(Duration, mpsc::Sender<Snapshot>)>,
        mut control: mpsc::Receiver<Control>,
    ) -> Snapshot {
        let mut control_open = true;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let report_every = reports.as_ref().map_or(Duration::from_secs(3600), |(every, _)| *every);
        let mut report_tick = tokio::time::interval_at(tokio::time::Instant::now() + report_every, report_every);
        report_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = false;
        self.publish();
        loop {
            tokio::select! {
                biased;
                _ = &mut stop, if !stopping => {
                    // Closing lets recv() return what is queued, then None.
                    batches.close();
                    stopping = true;
                }
                // Before the batches: under full ingest they are always ready, and a dashboard
                // request is rare and quick.
                request = control.recv(), if control_open => match request {
                    Some(request) => self.handle_control(request),
                    None => control_open = false,
                },
                _ = report_tick.tick(), if reports.is_some() => {
                    if let Some((_, sender)) = &reports {
                        let _ = sender.try_send(self.report_snapshot());
                    }
                }
                _ = tick.tick() => {
                    self.expire(Instant::now());
                    if self.extra_findings.as_ref().is_some_and(|e| e.has_changed().unwrap_or(false)) {
                        self.dirty = true;
                    }
                    if self.dirty && self.last_publish.elapsed() >= PUBLISH_EVERY {
                        self.publish();
                    }
                }
                ingested = batches.recv() => match ingested {
                    Some(ingested) => self.handle_batch(ingested.batch, Instant::now()),
                    None => break,
                },
            }
        }
        self.flush();
        self.publish();
        self.report_snapshot()
    }
}

async fn bind(addr: SocketAddr, what: &str, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|error| {
        let hint = if error.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                " (another apmtop or an OpenTelemetry collector may be running; choose another address with {flag})"
            )
        } else {
            String::new()
        };
        anyhow::anyhow!("cannot listen for {what} on {addr}: {error}{hint}")
    })
}

/// A running apmtop: listeners bound, tasks spawned.
pub struct Running {
    /// Where gRPC is served.
    pub grpc_addr: SocketAddr,
    /// Where OTLP/HTTP is served.
    pub http_addr: SocketAddr,
    /// The latest published snapshot.
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    /// Requests to the aggregator (kept traces, window, clear).
    pub control: mpsc::Sender<Control>,
    servers_stop: watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    aggregator_stop: oneshot::Sender<()>,
    aggregator: tokio::task::JoinHandle<Snapshot>,
    background: Vec<tokio::task::JoinHandle<()>>,
    /// The `--record` writer, its file, and whether to stay quiet about it.
    recorder: Option<(std::path::PathBuf, crate::capture::recorder::RecorderTask, bool)>,
    explain: Option<ExplainTask>,
}

/// The `--explain` task, stopped before the final pass.
struct ExplainTask {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Explainer>,
    /// A report will be written from the final snapshot, so it gets a last pass.
    final_pass: bool,
}

/// Binds both listeners and starts every task.
pub async fn start(settings: &Settings) -> anyhow::Result<Running> {
    let grpc_listener = bind(settings.grpc, "OTLP/gRPC", "--grpc").await?;
    let http_listener = bind(settings.http, "OTLP/HTTP", "--http").await?;
    let grpc_addr = grpc_listener.local_addr().context("reading the gRPC listener address")?;
    let http_addr = http_listener.local_addr().context("reading the HTTP listener address")?;

    let stats = Arc::new(Stats::default());
    let (mut ingest, batches) = Ingest::new(MAX_IN_FLIGHT_SPANS, Arc::clone(&stats));
    let mut recorder = None;
    if let Some(path) = &settings.record {
        let (handle, task) = crate::capture::recorder::start(path, Arc::clone(&stats))?;
        ingest = ingest.with_recorder(handle);
        recorder = Some((path.clone(), task, settings.quiet));
    }
    let router = receive::router(ingest);
    let (servers_stop, servers_stopped) = watch::channel(false);
    let servers = [grpc_listener, http_listener]
        .into_iter()
        .map(|listener| {
            let mut stopped = servers_stopped.clone();
            let serve = axum::serve(listener, router.clone()).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            });
            tokio::spawn(async move { serve.await })
        })
        .collect();

    let (published, snapshots) = watch::channel(Arc::new(Snapshot::default()));
    let (aggregator_stop, stop) = oneshot::channel();
    let mut background = Vec::new();
    let reports = match (settings.report.clone(), settings.report_every) {
        (Some(path), Some(every)) => {
            let (sender, receiver) = mpsc::channel(1);
            background.push(tokio::spawn(write_periodically(path, receiver)));
            Some((every, sender))
        }
        _ => None,
    };
    let mut aggregator = Aggregator::new(settings, stats, published);
    let explain = match settings.explain.as_deref().map(explain::Target::parse) {
        Some(Ok(target)) => {
            let (findings_tx, findings_rx) = watch::channel(explain::Findings::default());
            aggregator = aggregator.with_extra_findings(findings_rx);
            let (stop, stopped) = oneshot::channel();
            let task = tokio::spawn(explain::run(Explainer::new(target), snapshots.clone(), findings_tx, stopped));
            Some(ExplainTask { stop, task, final_pass: settings.report.is_some() })
        }
        Some(Err(message)) => anyhow::bail!("--explain: {message}"),
        None => None,
    };
    let (control, control_requests) = mpsc::channel(CONTROL_CAPACITY);
    let aggregator = tokio::spawn(aggregator.run(batches, stop, reports, control_requests));

    if settings.headless && !settings.quiet {
        background.push(tokio::spawn(print_progress(snapshots.clone())));
    }
    Ok(Running {
        grpc_addr,
        http_addr,
        snapshots,
        control,
        servers_stop,
        servers,
        aggregator_stop,
        aggregator,
        background,
        recorder,
        explain,
    })
}

impl Running {
    /// Stops in order: servers, then the aggregator (which drains and flushes). Returns the final
    /// snapshot.
    pub async fn shutdown(self) -> anyhow::Result<Snapshot> {
        for task in &self.background {
            task.abort();
        }
        self.servers_stop.send_replace(true);
        for server in self.servers {
            match tokio::time::timeout(DRAIN_TIMEOUT, server).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => tracing::warn!(%error, "server ended with an error"),
                Ok(Err(error)) => tracing::warn!(%error, "server task failed"),
                Err(_) => tracing::warn!("in-flight exports did not finish in time"),
            }
        }
        if let Some((path, task, quiet)) = self.recorder {
            let summary = task.finish().await;
            match summary.error {
                Some(error) => eprintln!("apmtop: recording to {} stopped: {error}", path.display()),
                None if !quiet || summary.dropped > 0 => {
                    let dropped = match summary.dropped {
                        0 => String::new(),
                        n => format!(" ({n} dropped: the disk could not keep up)"),
                    };
                    eprintln!("apmtop: recorded {} exports to {}{dropped}", summary.recorded, path.display());
                }
                None => {}
            }
        }
        let _ = self.aggregator_stop.send(());
        let mut snapshot = self.aggregator.await.context("the aggregator task failed")?;
        if let Some(explain) = self.explain {
            final_explain_pass(explain, &mut snapshot).await;
        }
        Ok(snapshot)
    }
}

/// Stops the explain task and runs one last pass on the final snapshot, so the report has the
/// findings of everything received; bounded by [`EXPLAIN_FINAL_TIMEOUT`].
async fn final_explain_pass(explain: ExplainTask, snapshot: &mut Snapshot) {
    let _ = explain.stop.send(());
    if !explain.final_pass {
        explain.task.abort();
        return;
    }
    let deadline = tokio::time::Instant::now() + EXPLAIN_FINAL_TIMEOUT;
    let mut explainer = match tokio::time::timeout_at(deadline, explain.task).await {
        Ok(Ok(explainer)) => explainer,
        Ok(Err(error)) => {
            tracing::warn!(%error, "the explain task failed");
            return;
        }
        Err(_) => {
            tracing::warn!("--explain: the last pass did not finish in time; findings may be missing");
            return;
        }
    };
    match tokio::time::timeout_at(deadline, explainer.pass(snapshot)).await {
        Ok(fresh) => explain::merge_findings(&mut snapshot.findings, &fresh),
        Err(_) => tracing::warn!("--explain: the final pass did not finish in time; findings may be missing"),
    }
}

/// Writes each report snapshot the aggregator sends (every `--report-every`).
async fn write_periodically(path: std::path::PathBuf, mut snapshots: mpsc::Receiver<Snapshot>) {
    while let Some(snapshot) = snapshots.recv().await {
        let path = path.clone();
        let written = tokio::task::spawn_blocking(move || report::write_json(&path, &snapshot)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "periodic report not written"),
            Err(error) => tracing::warn!(%error, "periodic report task failed"),
        }
    }
}

/// Headless mode: one short line on stderr when the numbers change, at most every few seconds.
async fn print_progress(mut snapshots: watch::Receiver<Arc<Snapshot>>) {
    let mut last = String::new();
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        if snapshots.changed().await.is_err() {
            return;
        }
        let line = progress_line(&snapshots.borrow_and_update());
        if line != last {
            eprintln!("apmtop: {line}");
            last = line;
        }
    }
}

/// The headless progress line.
pub fn progress_line(snapshot: &Snapshot) -> String {
    let offenders: usize = snapshot.endpoints.iter().map(|e| e.n_plus_one.len()).sum();
    let t = &snapshot.totals;
    let mut line = format!(
        "{} spans, {} requests, {} endpoints, {} N+1 offenders",
        t.spans_received,
        t.requests,
        snapshot.endpoints.len(),
        offenders
    );
    if t.spans_dropped + t.spans_refused > 0 {
        line.push_str(&format!(", {} spans dropped, {} refused", t.spans_dropped, t.spans_refused));
    }
    line
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{DbAttrs, HttpAttrs, Service, Span, SpanId, SpanKind, TraceId};

    /// A request of trace `trace` on `GET /books` lasting `duration_ms`, with `queries` queries of
    /// one shape (different values: an N+1 from five on).
    fn request(trace: u8, duration_ms: u64, queries: u8) -> Vec<Span> {
        let service = Arc::new(Service { name: Arc::from("shop"), language: None });
        let span = |id: u8, parent: Option<u8>, kind, start_ms: u64, end_ms: u64| Span {
            trace_id: TraceId([trace; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|p| SpanId([p; 8])),
            parent_is_remote: false,
            service: Arc::clone(&service),
            name: "GET /books".into(),
            kind,
            start_ns: 1_000_000_000 + start_ms * 1_000_000,
            end_ns: 1_000_000_000 + end_ms * 1_000_000,
            is_error: false,
            http: None,
            db: None,
            extra: None,
        };
        let mut root = span(1, None, SpanKind::Server, 0, duration_ms);
        root.http = Some(Box::new(HttpAttrs {
            method: Some("GET".into()),
            route: Some("/books".into()),
            status_code: Some(200),
            ..Default::default()
        }));
        let mut spans = vec![root];
        for i in 0..queries {
            let mut query = span(10 + i, Some(1), SpanKind::Client, u64::from(i), u64::from(i) + 1);
            query.db = Some(Box::new(DbAttrs {
                system: Arc::from("postgresql"),
                statement: Some(format!("SELECT name FROM author WHERE id = {i}").into()),
                ..Default::default()
            }));
            spans.push(query);
        }
        spans
    }

    fn aggregator() -> Aggregator {
        let settings = Settings { grace: Duration::ZERO, ..Settings::default() };
        let (published, _) = watch::channel(Arc::new(Snapshot::default()));
        Aggregator::new(&settings, Arc::default(), published)
    }

    fn feed(aggregator: &mut Aggregator, spans: Vec<Span>) {
        aggregator.handle_batch(SpanBatch { spans, ..SpanBatch::default() }, Instant::now());
        aggregator.flush();
    }

    fn aggregator_with_snapshots() -> (Aggregator, watch::Receiver<Arc<Snapshot>>) {
        let (published, snapshots) = watch::channel(Arc::new(Snapshot::default()));
        (Aggregator::new(&Settings::default(), Arc::default(), published), snapshots)
    }

    fn one_request(aggregator: &mut Aggregator) {
        feed(aggregator, request(7, 20, 1));
    }

    #[test]
    fn keeps_the_slowest_requests_and_evicts_those_pushed_out() {
        let mut aggregator = aggregator();
        // Ten requests, each slower than the last: the five slowest stay.
        for trace in 1..=10 {
            feed(&mut aggregator, request(trace, u64::from(trace) * 10, 1));
        }
        aggregator.publish();
        for trace in 1..=5 {
            assert!(aggregator.trace(&TraceId([trace; 16])).is_none(), "trace {trace} is no longer referenced");
        }
        let slowest = aggregator.trace(&TraceId([10; 16])).expect("the slowest request is kept");
        assert_eq!(slowest.spans.len(), 2);
        assert_eq!(slowest.endpoint, "GET /books");
        let query = &slowest.spans[1];
        assert_eq!(query.statement.as_deref(), Some("SELECT name FROM author WHERE id = 0"));
        assert!(query.fingerprint_id.is_some());
    }

    #[test]
    fn keeps_the_example_trace_of_an_n_plus_one_even_when_fast() {
        let mut aggregator = aggregator();
        feed(&mut aggregator, request(1, 50, 8));
        for trace in 2..=7 {
            feed(&mut aggregator, request(trace, 100 + u64::from(trace), 1));
        }
        aggregator.publish();
        let example = aggregator.trace(&TraceId([1; 16])).expect("the N+1 example is kept");
        assert_eq!(example.n_plus_one.len(), 1);
        assert_eq!(
            example.spans.iter().filter(|s| s.fingerprint_id == Some(example.n_plus_one[0].fingerprint_id)).count(),
            8
        );
        let snapshot = aggregator.snapshot();
        assert_eq!(snapshot.endpoints[0].n_plus_one[0].example_trace_id, TraceId([1; 16]).to_string());
    }

    #[tokio::test]
    async fn the_dashboard_asks_for_a_trace_over_the_control_channel() {
        let mut aggregator = aggregator();
        feed(&mut aggregator, request(3, 20, 2));
        let (reply, answer) = oneshot::channel();
        aggregator.handle_control(Control::Trace { trace_id: TraceId([3; 16]), reply });
        assert_eq!(answer.await.expect("an answer").expect("kept").spans.len(), 3);
        let (reply, answer) = oneshot::channel();
        aggregator.handle_control(Control::Trace { trace_id: TraceId([4; 16]), reply });
        assert!(answer.await.expect("an answer").is_none());
    }

    #[test]
    fn clear_forgets_statistics_and_traces_and_window_is_recorded() {
        let mut aggregator = aggregator();
        feed(&mut aggregator, request(3, 20, 6));
        aggregator.handle_control(Control::SetWindow(Window::LastMinute));
        assert_eq!(aggregator.window(), Window::LastMinute);
        aggregator.handle_control(Control::Clear);
        let snapshot = aggregator.snapshot();
        assert_eq!(snapshot.totals.requests, 0);
        assert!(snapshot.endpoints.is_empty());
        assert!(aggregator.trace(&TraceId([3; 16])).is_none());
        feed(&mut aggregator, request(4, 20, 1));
        assert_eq!(aggregator.snapshot().totals.requests, 1);
    }

    #[test]
    fn clear_forgets_statistics_and_windows_show_recent_requests() {
        let (mut aggregator, snapshots) = aggregator_with_snapshots();
        one_request(&mut aggregator);
        aggregator.set_window(Window::LastMinute);
        aggregator.publish();
        let shown = snapshots.borrow().clone();
        assert_eq!(shown.totals.requests, 1);
        assert_eq!(shown.window_seconds, Some(60.0));
        assert_eq!(shown.endpoints.len(), 1);
        assert_eq!(shown.services.len(), 1, "a window still names the services that sent spans");

        aggregator.clear();
        aggregator.set_window(Window::All);
        aggregator.publish();
        assert_eq!(snapshots.borrow().totals.requests, 0);
        assert!(snapshots.borrow().endpoints.is_empty());
        assert_eq!(aggregator.report_snapshot().totals.requests, 0);
    }

    #[test]
    fn report_snapshots_carry_their_aggregates() {
        let (mut aggregator, _snapshots) = aggregator_with_snapshots();
        one_request(&mut aggregator);
        let report = aggregator.report_snapshot();
        assert!(report.aggregates.is_some());
        assert!(aggregator.snapshot().aggregates.is_none());
    }
}
