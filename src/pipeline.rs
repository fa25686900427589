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

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use crate::aggregate::{AggregateConfig, Aggregates};
use crate::analyze::Analyzer;
use crate::assemble::{Assembler, AssemblyConfig, AssemblyOutput};
use crate::cli::Settings;
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
            aggregates: Aggregates::new(aggregate),
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
        let mut out = AssemblyOutput::default();
        self.assembler.add_batch(batch.spans, now, &mut out);
        self.take(out);
        self.dirty = true;
    }

    /// Closes the traces whose grace period has passed.
    pub fn expire(&mut self, now: Instant) {
        let mut out = AssemblyOutput::default();
        self.assembler.expire(now, &mut out);
        self.take(out);
    }

    /// Closes every pending trace.
    pub fn flush(&mut self) {
        let mut out = AssemblyOutput::default();
        self.assembler.flush(&mut out);
        self.take(out);
    }

    fn take(&mut self, mut out: AssemblyOutput) {
        if out.requests.is_empty()
            && out.dropped_spans == 0
            && out.duplicate_spans == 0
            && out.orphans.is_empty()
            && out.late_spans == 0
        {
            return;
        }
        self.aggregates.record_assembly(&out);
        for request in out.requests.drain(..) {
            let analysis = self.analyzer.analyze(request);
            self.aggregates.record(&analysis);
        }
        self.dirty = true;
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Snapshot {
        let totals = Totals {
            spans_received: Stats::get(&self.stats.spans_received),
            spans_rejected: Stats::get(&self.stats.spans_rejected),
            spans_refused: Stats::get(&self.stats.spans_refused),
            trace_exports: Stats::get(&self.stats.trace_exports),
            metric_exports: Stats::get(&self.stats.metric_exports),
            log_exports: Stats::get(&self.stats.log_exports),
            exports_malformed: Stats::get(&self.stats.exports_malformed),
            ..Totals::default()
        };
        let mut snapshot = self.aggregates.snapshot(totals, self.assembler.pending_traces() as u64);
        if let Some(extra) = &self.extra_findings {
            explain::merge_findings(&mut snapshot.findings, &extra.borrow());
        }
        snapshot
    }

    fn publish(&mut self) {
        if let Some(extra) = &mut self.extra_findings {
            extra.mark_unchanged();
        }
        self.published.send_replace(Arc::new(self.snapshot()));
        self.dirty = false;
        self.last_publish = Instant::now();
    }

    /// Runs until `stop` fires (or every sender is gone), then drains the channel, closes every
    /// pending trace and returns the final snapshot.
    pub async fn run(mut self, mut batches: mpsc::Receiver<Ingested>, mut stop: oneshot::Receiver<()>) -> Snapshot {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
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
        self.snapshot()
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
    servers_stop: watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    aggregator_stop: oneshot::Sender<()>,
    aggregator: tokio::task::JoinHandle<Snapshot>,
    background: Vec<tokio::task::JoinHandle<()>>,
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
    let (ingest, batches) = Ingest::new(MAX_IN_FLIGHT_SPANS, Arc::clone(&stats));
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
    let aggregator = tokio::spawn(aggregator.run(batches, stop));

    let mut background = Vec::new();
    if let (Some(path), Some(every)) = (settings.report.clone(), settings.report_every) {
        background.push(tokio::spawn(write_periodically(path, every, snapshots.clone())));
    }
    if settings.headless && !settings.quiet {
        background.push(tokio::spawn(print_progress(snapshots.clone())));
    }
    Ok(Running {
        grpc_addr,
        http_addr,
        snapshots,
        servers_stop,
        servers,
        aggregator_stop,
        aggregator,
        background,
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

async fn write_periodically(path: std::path::PathBuf, every: Duration, snapshots: watch::Receiver<Arc<Snapshot>>) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        let snapshot = Arc::clone(&snapshots.borrow());
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
