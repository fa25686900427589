//! Dashboard state and the one [`App::update`] that changes it.
//!
//! Input becomes an [`Action`] (see [`super::event`]); new snapshots and finished exports arrive
//! as actions too, so every state transition goes through `update` and is testable without a
//! terminal. `update` does no I/O: work that touches the file system comes back as an [`Effect`]
//! for the UI loop to run off the UI task, and its outcome returns as another action.
//!
//! The row lists that views draw and that navigation moves through ([`endpoint_rows`],
//! [`n_plus_one_rows`], [`query_rows`]) are computed here, from the snapshot and the state, so
//! the selection and the screen always agree.

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::trace::{TraceLoad, TraceState};
use crate::aggregate::traces::TraceRecord;
use crate::control::Window;
use crate::model::TraceId;
use crate::report;
use crate::snapshot::{EndpointSnapshot, FindingSnapshot, NPlusOneSnapshot, QuerySnapshot, Snapshot};

/// The top-level views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// One row per endpoint.
    Endpoints,
    /// N+1 offenders across endpoints.
    NPlusOne,
    /// Query shapes across endpoints.
    Queries,
    /// Every diagnosed cause, most costly first.
    Findings,
}

impl Tab {
    /// All tabs, in order.
    pub const ALL: [Tab; 4] = [Tab::Endpoints, Tab::NPlusOne, Tab::Queries, Tab::Findings];

    /// The tab's title.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Endpoints => "Endpoints",
            Tab::NPlusOne => "N+1",
            Tab::Queries => "Queries",
            Tab::Findings => "Findings",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    fn next(self) -> Tab {
        Tab::ALL[(self.index() + 1) % Tab::ALL.len()]
    }

    fn previous(self) -> Tab {
        Tab::ALL[(self.index() + Tab::ALL.len() - 1) % Tab::ALL.len()]
    }
}

/// What the Endpoints view is sorted by; `s` cycles through them in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    /// 95th percentile latency, slowest first (the default).
    P95,
    /// 99th percentile latency, slowest first.
    P99,
    /// Median latency, slowest first.
    P50,
    /// Requests, most first.
    Requests,
    /// Errors, most first.
    Errors,
    /// Median queries per request, most first.
    QueriesP50,
    /// Most queries in one request, most first.
    QueriesMax,
    /// DB time share, highest first.
    DbShare,
    /// Service, then route, then method, alphabetically.
    Name,
}

impl SortColumn {
    const ORDER: [SortColumn; 9] = [
        SortColumn::P95,
        SortColumn::P99,
        SortColumn::P50,
        SortColumn::Requests,
        SortColumn::Errors,
        SortColumn::QueriesP50,
        SortColumn::QueriesMax,
        SortColumn::DbShare,
        SortColumn::Name,
    ];

    /// How the column is named in the view.
    pub fn label(self) -> &'static str {
        match self {
            SortColumn::P95 => "p95",
            SortColumn::P99 => "p99",
            SortColumn::P50 => "p50",
            SortColumn::Requests => "requests",
            SortColumn::Errors => "errors",
            SortColumn::QueriesP50 => "queries p50",
            SortColumn::QueriesMax => "queries max",
            SortColumn::DbShare => "DB share",
            SortColumn::Name => "name",
        }
    }

    fn next(self) -> SortColumn {
        let i = SortColumn::ORDER.iter().position(|c| *c == self).unwrap_or(0);
        SortColumn::ORDER[(i + 1) % SortColumn::ORDER.len()]
    }

    fn compare(self, a: &EndpointSnapshot, b: &EndpointSnapshot) -> Ordering {
        let desc = |x: f64, y: f64| y.total_cmp(&x);
        let primary = match self {
            SortColumn::P95 => desc(a.latency_ms.p95, b.latency_ms.p95),
            SortColumn::P99 => desc(a.latency_ms.p99, b.latency_ms.p99),
            SortColumn::P50 => desc(a.latency_ms.p50, b.latency_ms.p50),
            SortColumn::Requests => b.requests.cmp(&a.requests),
            SortColumn::Errors => b.errors.cmp(&a.errors),
            SortColumn::QueriesP50 => desc(a.queries_per_request.p50, b.queries_per_request.p50),
            SortColumn::QueriesMax => desc(a.queries_per_request.max, b.queries_per_request.max),
            SortColumn::DbShare => desc(a.db_time_share, b.db_time_share),
            SortColumn::Name => Ordering::Equal,
        };
        // Ties broken by name, so equal rows never swap places between snapshots.
        primary
            .then_with(|| a.service.cmp(&b.service))
            .then_with(|| a.route.cmp(&b.route))
            .then_with(|| a.method.cmp(&b.method))
    }
}

/// The identity of an endpoint, stable across snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndpointId {
    /// Service name.
    pub service: String,
    /// HTTP method.
    pub method: String,
    /// Route.
    pub route: String,
}

impl EndpointId {
    /// The identity of `endpoint`.
    pub fn of(endpoint: &EndpointSnapshot) -> Self {
        EndpointId { service: endpoint.service.clone(), method: endpoint.method.clone(), route: endpoint.route.clone() }
    }

    /// Whether this is `endpoint`.
    pub fn is(&self, endpoint: &EndpointSnapshot) -> bool {
        self.service == endpoint.service && self.method == endpoint.method && self.route == endpoint.route
    }
}

/// `METHOD route` (just the route when there is no method). Unsanitized.
pub fn endpoint_label(endpoint: &EndpointSnapshot) -> String {
    if endpoint.method.is_empty() { endpoint.route.clone() } else { format!("{} {}", endpoint.method, endpoint.route) }
}

/// A selection in a list that follows its row (by key) when the list re-sorts, and falls back
/// to the last index when the row is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection<K> {
    key: Option<K>,
    index: usize,
}

impl<K> Default for Selection<K> {
    fn default() -> Self {
        Selection { key: None, index: 0 }
    }
}

impl<K: PartialEq + Clone> Selection<K> {
    /// The selected row's index among `keys`, if the list is not empty.
    pub fn resolve(&self, keys: &[K]) -> Option<usize> {
        if keys.is_empty() {
            return None;
        }
        if let Some(key) = &self.key
            && let Some(i) = keys.iter().position(|k| k == key)
        {
            return Some(i);
        }
        Some(self.index.min(keys.len() - 1))
    }

    /// Moves by `delta` rows (clamped) within `keys`.
    fn shift(&mut self, keys: &[K], delta: isize) {
        let Some(current) = self.resolve(keys) else { return };
        let last = keys.len() - 1;
        let target = current.saturating_add_signed(delta).min(last);
        self.select(keys, target);
    }

    fn select(&mut self, keys: &[K], index: usize) {
        if keys.is_empty() {
            return;
        }
        let index = index.min(keys.len() - 1);
        self.index = index;
        self.key = Some(keys[index].clone());
    }
}

/// Everything the views need besides the snapshot. Plain data: views read it, only
/// [`App::update`] changes it.
#[derive(Debug, Clone)]
pub struct UiState {
    /// Where OTLP/gRPC is served.
    pub grpc_addr: SocketAddr,
    /// Where OTLP/HTTP is served.
    pub http_addr: SocketAddr,
    /// Time since start, refreshed by the UI loop.
    pub uptime: Duration,
    /// The active tab.
    pub tab: Tab,
    /// Endpoint shown in detail, over the tabs.
    pub detail: Option<EndpointId>,
    /// First line shown in the detail view.
    pub detail_scroll: u16,
    /// Endpoints view sort order.
    pub sort: SortColumn,
    /// Case-insensitive substring filter for all lists.
    pub filter: String,
    /// The filter is being typed.
    pub filtering: bool,
    /// The help overlay is open.
    pub help: bool,
    /// The instrumentation audit overlay is open.
    pub audit: bool,
    /// The displayed snapshot is frozen.
    pub paused: bool,
    /// A message for the status line (export result).
    pub status: Option<String>,
    /// Spans and requests per second over the last few snapshots; `None` until two snapshots
    /// far enough apart have arrived.
    pub rates: Option<Rates>,
    /// Rows in a page, for PgUp/PgDn; refreshed from the terminal height.
    pub page_rows: usize,
    /// Selection in the Endpoints view.
    pub endpoints: Selection<EndpointId>,
    /// Selection in the N+1 view: endpoint and fingerprint id.
    pub offenders: Selection<(EndpointId, String)>,
    /// Selection in the Queries view: fingerprint id.
    pub queries: Selection<String>,
    /// Where `e` writes reports.
    pub snapshot_dir: PathBuf,
    /// The styles.
    pub theme: super::theme::Theme,
    /// A live pipeline answers (traces, window, clear); false on a saved report.
    pub live: bool,
    /// The time window chosen with `w`.
    pub window: Window,
    /// The selected trace in the endpoint detail (see [`detail_targets`]).
    pub detail_cursor: usize,
    /// The open trace view, over the detail or a finding.
    pub trace: Option<TraceState>,
    /// Selection in the Findings view: finding id.
    pub findings: Selection<String>,
    /// The finding whose evidence is open.
    pub finding: Option<String>,
    /// Requests per second, about one value a second over the last minute, oldest first.
    pub throughput: VecDeque<u64>,
    /// Terminal height, for mapping mouse clicks to rows.
    pub screen_rows: u16,
}

impl UiState {
    /// A fresh state for a dashboard serving on these addresses.
    pub fn new(grpc_addr: SocketAddr, http_addr: SocketAddr, snapshot_dir: PathBuf) -> Self {
        UiState {
            grpc_addr,
            http_addr,
            uptime: Duration::ZERO,
            tab: Tab::Endpoints,
            detail: None,
            detail_scroll: 0,
            sort: SortColumn::P95,
            filter: String::new(),
            filtering: false,
            help: false,
            audit: false,
            paused: false,
            status: None,
            rates: None,
            page_rows: 10,
            endpoints: Selection::default(),
            offenders: Selection::default(),
            queries: Selection::default(),
            snapshot_dir,
            theme: super::theme::Theme::default(),
            live: true,
            window: Window::All,
            detail_cursor: 0,
            trace: None,
            findings: Selection::default(),
            finding: None,
            throughput: VecDeque::new(),
            screen_rows: 24,
        }
    }

    fn matches(&self, text: &str) -> bool {
        self.filter.is_empty() || text.to_lowercase().contains(&self.filter.to_lowercase())
    }
}

/// Throughput, from the counters of successive snapshots and their `generated_at` times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Spans received per second.
    pub spans_per_second: f64,
    /// Requests analyzed per second.
    pub requests_per_second: f64,
}

/// How far back the rates look.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Least time between the first and last sample for a rate to be shown.
const RATE_MIN_SPAN: Duration = Duration::from_millis(400);

/// One sample for the rates: when, spans received, requests analyzed.
type RateSample = (SystemTime, u64, u64);

/// Values kept for the throughput sparkline (about one a second).
const THROUGHPUT_POINTS: usize = 60;
/// Least time between two sparkline values.
const THROUGHPUT_STEP: Duration = Duration::from_secs(1);

/// What the status line says when a key needs a live pipeline.
const NEEDS_LIVE: &str = "needs a live pipeline: this is a saved report";

/// Everything that can change the dashboard.
#[derive(Debug, Clone)]
pub enum Action {
    /// Leave the dashboard.
    Quit,
    /// Next tab.
    NextTab,
    /// Previous tab.
    PreviousTab,
    /// A given tab.
    ShowTab(Tab),
    /// Selection up one row (detail: scroll up).
    Up,
    /// Selection down one row (detail: scroll down).
    Down,
    /// Up one page.
    PageUp,
    /// Down one page.
    PageDown,
    /// First row.
    Home,
    /// Last row.
    End,
    /// Drill into the selected row.
    Enter,
    /// Close the overlay or detail, or clear the filter.
    Back,
    /// Next sort column.
    CycleSort,
    /// Start typing a filter.
    StartFilter,
    /// A character typed into the filter.
    FilterInput(char),
    /// Delete the filter's last character.
    FilterBackspace,
    /// Keep the filter and stop typing.
    FilterDone,
    /// Clear the filter and stop typing.
    FilterCancel,
    /// Freeze or unfreeze the displayed snapshot.
    TogglePause,
    /// Write the displayed snapshot as a JSON report.
    Export,
    /// Show or hide the help overlay.
    ToggleHelp,
    /// Show or hide the instrumentation audit.
    ToggleAudit,
    /// A new snapshot from the pipeline.
    Snapshot(Arc<Snapshot>),
    /// An export finished: the written path, or what went wrong.
    Exported(Result<PathBuf, String>),
    /// The terminal is now this many rows high.
    Resize(u16),
    /// Next time window.
    CycleWindow,
    /// Reset the statistics.
    Clear,
    /// A mouse click on this terminal row.
    Click(u16),
    /// The aggregator answered for a trace (`None`: no longer kept).
    TraceLoaded(String, Option<Arc<TraceRecord>>),
}

impl PartialEq for Action {
    /// Snapshots compare by identity (the same `Arc`); everything else by value.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Action::Snapshot(a), Action::Snapshot(b)) => Arc::ptr_eq(a, b),
            (Action::ShowTab(a), Action::ShowTab(b)) => a == b,
            (Action::FilterInput(a), Action::FilterInput(b)) => a == b,
            (Action::Exported(a), Action::Exported(b)) => a == b,
            (Action::Resize(a), Action::Resize(b)) => a == b,
            (Action::Click(a), Action::Click(b)) => a == b,
            (Action::TraceLoaded(a, x), Action::TraceLoaded(b, y)) => a == b && x == y,
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

/// Work `update` asks the UI loop to do off the UI task.
#[derive(Debug)]
pub enum Effect {
    /// Write `snapshot` as JSON into `dir`.
    Export {
        /// Target directory.
        dir: PathBuf,
        /// The snapshot on screen when `e` was pressed.
        snapshot: Arc<Snapshot>,
    },
    /// Ask the aggregator for a kept trace; the answer comes back as [`Action::TraceLoaded`].
    FetchTrace(TraceId),
    /// Tell the aggregator the chosen window.
    SetWindow(Window),
    /// Tell the aggregator to reset its statistics.
    Clear,
}

impl Effect {
    /// Runs a file-system effect (blocking) and returns the action that reports its outcome;
    /// `None` for the effects that talk to the aggregator, which the UI loop sends itself.
    pub fn run(self) -> Option<Action> {
        match self {
            Effect::Export { dir, snapshot } => Some(Action::Exported(export(&dir, &snapshot, SystemTime::now()))),
            Effect::FetchTrace(_) | Effect::SetWindow(_) | Effect::Clear => None,
        }
    }
}

/// Writes `snapshot` to `dir/apmtop-snapshot-<UTC timestamp>.json` (with a counter when that name
/// is taken), and the same report as Markdown next to it (`.md`); returns the JSON path.
pub fn export(dir: &Path, snapshot: &Snapshot, now: SystemTime) -> Result<PathBuf, String> {
    let stamp = humantime::format_rfc3339_seconds(now).to_string().replace(':', "-");
    let mut path = dir.join(format!("apmtop-snapshot-{stamp}.json"));
    let mut n = 1;
    while path.exists() || path.with_extension("md").exists() {
        n += 1;
        path = dir.join(format!("apmtop-snapshot-{stamp}-{n}.json"));
    }
    report::write_json(&path, snapshot).map_err(|e| e.to_string())?;
    report::write_atomic(&path.with_extension("md"), report::markdown::render(snapshot).as_bytes())
        .map_err(|e| e.to_string())?;
    Ok(path)
}

/// The dashboard: state plus the displayed and latest snapshots.
#[derive(Debug)]
pub struct App {
    /// View state.
    pub ui: UiState,
    /// The snapshot on screen (frozen while paused).
    displayed: Arc<Snapshot>,
    /// The newest snapshot received (differs from `displayed` only while paused).
    latest: Arc<Snapshot>,
    /// Counter samples of recent snapshots, oldest first, within [`RATE_WINDOW`].
    samples: VecDeque<RateSample>,
    /// Time and request count of the last sparkline value.
    throughput_mark: Option<(SystemTime, u64)>,
    /// Set by [`Action::Quit`].
    quit: bool,
}

impl App {
    /// A dashboard showing `snapshot`.
    pub fn new(ui: UiState, snapshot: Arc<Snapshot>) -> Self {
        let mut app = App {
            ui,
            displayed: Arc::clone(&snapshot),
            latest: Arc::clone(&snapshot),
            samples: VecDeque::new(),
            throughput_mark: None,
            quit: false,
        };
        app.sample(&snapshot);
        app
    }

    /// The snapshot on screen.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.displayed
    }

    /// Whether the user asked to quit.
    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// Applies `action`; returns work for the UI loop, if any.
    pub fn update(&mut self, action: Action) -> Option<Effect> {
        match action {
            Action::Quit => self.quit = true,
            Action::Snapshot(snapshot) => {
                self.sample(&snapshot);
                self.latest = Arc::clone(&snapshot);
                if !self.ui.paused {
                    self.displayed = snapshot;
                }
            }
            Action::Exported(Ok(path)) => {
                self.ui.status = Some(format!("exported {} (and .md)", path.display()));
            }
            Action::Exported(Err(error)) => self.ui.status = Some(format!("export failed: {error}")),
            Action::Resize(rows) => {
                self.ui.page_rows = usize::from(rows.saturating_sub(8)).max(1);
                self.ui.screen_rows = rows;
            }
            Action::CycleWindow => {
                if !self.ui.live {
                    self.ui.status = Some(format!("time windows {NEEDS_LIVE}"));
                    return None;
                }
                self.ui.window = self.ui.window.next();
                self.ui.status = Some(format!("window: {}", self.ui.window.label()));
                return Some(Effect::SetWindow(self.ui.window));
            }
            Action::Clear => {
                if !self.ui.live {
                    self.ui.status = Some(format!("clearing {NEEDS_LIVE}"));
                    return None;
                }
                self.samples.clear();
                self.throughput_mark = None;
                self.ui.rates = None;
                self.ui.throughput.clear();
                self.ui.status = Some("statistics cleared: counting from now".to_string());
                return Some(Effect::Clear);
            }
            Action::Click(row) => return self.click(row),
            Action::TraceLoaded(trace_id, record) => {
                if let Some(trace) = self.ui.trace.as_mut().filter(|t| t.trace_id == trace_id) {
                    trace.load = match record {
                        Some(record) => TraceLoad::Loaded(record),
                        None => TraceLoad::Missing,
                    };
                    trace.cursor = 0;
                }
            }
            Action::ToggleHelp => {
                self.ui.help = !self.ui.help;
                self.ui.audit = false;
            }
            Action::ToggleAudit => {
                self.ui.audit = !self.ui.audit;
                self.ui.help = false;
            }
            Action::TogglePause => {
                self.ui.paused = !self.ui.paused;
                if !self.ui.paused {
                    self.displayed = Arc::clone(&self.latest);
                }
            }
            Action::Export => {
                self.ui.status = Some("exporting…".to_string());
                return Some(Effect::Export {
                    dir: self.ui.snapshot_dir.clone(),
                    snapshot: Arc::clone(&self.displayed),
                });
            }
            Action::StartFilter => {
                self.ui.filtering = true;
                self.ui.help = false;
                self.ui.audit = false;
            }
            Action::FilterInput(c) => {
                if !c.is_control() {
                    self.ui.filter.push(c);
                }
            }
            Action::FilterBackspace => {
                self.ui.filter.pop();
            }
            Action::FilterDone => self.ui.filtering = false,
            Action::FilterCancel => {
                self.ui.filtering = false;
                self.ui.filter.clear();
            }
            Action::Back => self.back(),
            Action::NextTab => self.show_tab(self.ui.tab.next()),
            Action::PreviousTab => self.show_tab(self.ui.tab.previous()),
            Action::ShowTab(tab) => self.show_tab(tab),
            Action::CycleSort => {
                if self.ui.tab == Tab::Endpoints && self.ui.detail.is_none() {
                    self.ui.sort = self.ui.sort.next();
                }
            }
            Action::Enter => return self.enter(),
            Action::Up => self.shift(-1),
            Action::Down => self.shift(1),
            Action::PageUp => self.shift(-(self.ui.page_rows as isize)),
            Action::PageDown => self.shift(self.ui.page_rows as isize),
            Action::Home => self.shift(isize::MIN),
            Action::End => self.shift(isize::MAX),
        }
        None
    }

    /// Records `snapshot`'s counters and refreshes the rates (unless paused: the header then
    /// describes the frozen snapshot).
    fn sample(&mut self, snapshot: &Snapshot) {
        let Ok(at) = humantime::parse_rfc3339_weak(&snapshot.generated_at) else { return };
        if self.samples.back().is_some_and(|(last, _, _)| *last >= at) {
            return;
        }
        self.samples.push_back((at, snapshot.totals.spans_received, snapshot.totals.requests));
        while self.samples.front().is_some_and(|(t, _, _)| at.duration_since(*t).is_ok_and(|d| d > RATE_WINDOW)) {
            self.samples.pop_front();
        }
        if self.ui.paused {
            return;
        }
        let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) else { return };
        let elapsed = last.0.duration_since(first.0).unwrap_or_default();
        if elapsed < RATE_MIN_SPAN {
            return;
        }
        let per_second = |from: u64, to: u64| to.saturating_sub(from) as f64 / elapsed.as_secs_f64();
        self.ui.rates = Some(Rates {
            spans_per_second: per_second(first.1, last.1),
            requests_per_second: per_second(first.2, last.2),
        });
        self.sample_throughput(at, snapshot.totals.requests);
    }

    /// Adds a sparkline value when a second has passed since the last one: requests per second
    /// since then.
    fn sample_throughput(&mut self, at: SystemTime, requests: u64) {
        let Some((since, before)) = self.throughput_mark else {
            self.throughput_mark = Some((at, requests));
            return;
        };
        let elapsed = at.duration_since(since).unwrap_or_default();
        if elapsed < THROUGHPUT_STEP {
            return;
        }
        let rate = requests.saturating_sub(before) as f64 / elapsed.as_secs_f64();
        self.ui.throughput.push_back(rate.round() as u64);
        while self.ui.throughput.len() > THROUGHPUT_POINTS {
            self.ui.throughput.pop_front();
        }
        self.throughput_mark = Some((at, requests));
    }

    fn show_tab(&mut self, tab: Tab) {
        self.ui.tab = tab;
        self.ui.detail = None;
        self.ui.trace = None;
        self.ui.finding = None;
        self.ui.help = false;
        self.ui.audit = false;
    }

    fn back(&mut self) {
        if self.ui.help || self.ui.audit {
            self.ui.help = false;
            self.ui.audit = false;
        } else if self.ui.trace.is_some() {
            self.ui.trace = None;
        } else if self.ui.finding.is_some() {
            self.ui.finding = None;
        } else if self.ui.detail.is_some() {
            self.ui.detail = None;
        } else if !self.ui.filter.is_empty() {
            self.ui.filter.clear();
        } else {
            self.ui.status = None;
        }
    }

    fn enter(&mut self) -> Option<Effect> {
        if self.ui.help || self.ui.audit {
            return None;
        }
        if let Some(trace) = &mut self.ui.trace {
            trace.toggle();
            return None;
        }
        let snapshot = Arc::clone(&self.displayed);
        if let Some(id) = &self.ui.finding {
            let finding = snapshot.findings.iter().find(|f| &f.id == id)?;
            let origin = finding.title.clone();
            return self.open_trace(&finding.example_trace_id, origin);
        }
        if let Some(id) = &self.ui.detail {
            let endpoint = snapshot.endpoints.iter().find(|e| id.is(e))?;
            let targets = detail_targets(endpoint);
            let target = targets.get(self.ui.detail_cursor.min(targets.len().saturating_sub(1)))?;
            return self.open_trace(&target.trace_id, endpoint_label(endpoint));
        }
        match self.ui.tab {
            Tab::Endpoints => {
                let rows = endpoint_rows(&snapshot, &self.ui);
                let keys: Vec<EndpointId> = rows.iter().map(|e| EndpointId::of(e)).collect();
                self.open_detail(self.ui.endpoints.resolve(&keys).map(|i| keys[i].clone()));
            }
            Tab::NPlusOne => {
                let keys = offender_keys(&snapshot, &self.ui);
                self.open_detail(self.ui.offenders.resolve(&keys).map(|i| keys[i].0.clone()));
            }
            Tab::Queries => {}
            Tab::Findings => {
                let keys: Vec<String> = finding_rows(&snapshot, &self.ui).iter().map(|f| f.id.clone()).collect();
                if let Some(i) = self.ui.findings.resolve(&keys) {
                    self.ui.finding = Some(keys[i].clone());
                    self.ui.detail_scroll = 0;
                }
            }
        }
        None
    }

    fn open_detail(&mut self, target: Option<EndpointId>) {
        if let Some(target) = target {
            self.ui.detail = Some(target);
            self.ui.detail_scroll = 0;
            self.ui.detail_cursor = 0;
        }
    }

    /// Opens the trace view on `trace_id` (hex) and asks the aggregator for its spans.
    fn open_trace(&mut self, trace_id: &str, origin: String) -> Option<Effect> {
        let Some(id) = TraceId::from_hex(trace_id) else {
            self.ui.status = Some("no example trace to open".to_string());
            return None;
        };
        if !self.ui.live {
            self.ui.status = Some(format!("the trace view {NEEDS_LIVE}"));
            return None;
        }
        self.ui.trace = Some(TraceState::pending(trace_id.to_string(), origin));
        Some(Effect::FetchTrace(id))
    }

    fn shift(&mut self, delta: isize) {
        if self.ui.help || self.ui.audit {
            return;
        }
        if let Some(trace) = &mut self.ui.trace {
            trace.shift(delta);
            return;
        }
        if self.ui.finding.is_some() {
            let scroll = i64::from(self.ui.detail_scroll).saturating_add(delta as i64);
            self.ui.detail_scroll = u16::try_from(scroll.max(0)).unwrap_or(u16::MAX);
            return;
        }
        let snapshot = Arc::clone(&self.displayed);
        if let Some(id) = &self.ui.detail {
            let targets = snapshot.endpoints.iter().find(|e| id.is(e)).map_or(0, |e| detail_targets(e).len());
            let last = targets.saturating_sub(1);
            self.ui.detail_cursor = self.ui.detail_cursor.min(last).saturating_add_signed(delta).min(last);
            return;
        }
        match self.ui.tab {
            Tab::Endpoints => {
                let keys: Vec<EndpointId> =
                    endpoint_rows(&snapshot, &self.ui).iter().map(|e| EndpointId::of(e)).collect();
                self.ui.endpoints.shift(&keys, delta);
            }
            Tab::NPlusOne => {
                let keys = offender_keys(&snapshot, &self.ui);
                self.ui.offenders.shift(&keys, delta);
            }
            Tab::Queries => {
                let keys: Vec<String> =
                    query_rows(&snapshot, &self.ui).iter().map(|q| q.fingerprint_id.clone()).collect();
                self.ui.queries.shift(&keys, delta);
            }
            Tab::Findings => {
                let keys: Vec<String> = finding_rows(&snapshot, &self.ui).iter().map(|f| f.id.clone()).collect();
                self.ui.findings.shift(&keys, delta);
            }
        }
    }

    /// A click on terminal row `row`: selects the list row there; a click on the row already
    /// selected drills in, like Enter.
    fn click(&mut self, row: u16) -> Option<Effect> {
        if self.ui.help || self.ui.audit || self.ui.detail.is_some() || self.ui.finding.is_some() {
            return None;
        }
        let main_height = self.ui.screen_rows.saturating_sub(super::view::CHROME_ROWS);
        if let Some(trace) = &self.ui.trace {
            let (first, visible) = super::view::trace_rows_at(main_height);
            let index = visible_index(row, first, visible, trace.cursor)?;
            if index >= trace.rows().len() {
                return None;
            }
            if index == trace.cursor {
                return self.enter();
            }
            if let Some(trace) = &mut self.ui.trace {
                trace.cursor = index;
            }
            return None;
        }
        let (first, visible) = super::view::table_rows_at(self.ui.tab, main_height);
        let snapshot = Arc::clone(&self.displayed);
        macro_rules! pick {
            ($keys:expr, $selection:ident) => {{
                let keys = $keys;
                let current = self.ui.$selection.resolve(&keys)?;
                let index = visible_index(row, first, visible, current)?;
                if index >= keys.len() {
                    return None;
                }
                if index == current {
                    return self.enter();
                }
                self.ui.$selection.select(&keys, index);
            }};
        }
        match self.ui.tab {
            Tab::Endpoints => pick!(
                endpoint_rows(&snapshot, &self.ui).iter().map(|e| EndpointId::of(e)).collect::<Vec<_>>(),
                endpoints
            ),
            Tab::NPlusOne => pick!(offender_keys(&snapshot, &self.ui), offenders),
            Tab::Queries => pick!(
                query_rows(&snapshot, &self.ui).iter().map(|q| q.fingerprint_id.clone()).collect::<Vec<_>>(),
                queries
            ),
            Tab::Findings => {
                pick!(finding_rows(&snapshot, &self.ui).iter().map(|f| f.id.clone()).collect::<Vec<_>>(), findings)
            }
        }
        None
    }
}

/// The list index shown on terminal row `row` of a table whose first data row is at `first`,
/// showing `visible` rows, scrolled (as ratatui scrolls) to keep `selected` in view.
fn visible_index(row: u16, first: u16, visible: u16, selected: usize) -> Option<usize> {
    if row < first || row >= first + visible {
        return None;
    }
    let offset = selected.saturating_sub(usize::from(visible).saturating_sub(1));
    Some(offset + usize::from(row - first))
}

/// A trace the endpoint detail can open.
#[derive(Debug, Clone, PartialEq)]
pub struct DetailTarget {
    /// What it is an example of.
    pub kind: TargetKind,
    /// Index within its section.
    pub index: usize,
    /// The trace, as 32 hex digits.
    pub trace_id: String,
}

/// The detail section a [`DetailTarget`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// The example trace of an N+1 offender.
    NPlusOne,
    /// The example trace of a duplicated query.
    Duplicate,
    /// One of the slowest requests.
    Slowest,
}

/// The traces the detail of `endpoint` can open, in the order drawn: N+1 examples, duplicate
/// examples, slowest requests.
pub fn detail_targets(endpoint: &EndpointSnapshot) -> Vec<DetailTarget> {
    let target = |kind, index, trace_id: &String| DetailTarget { kind, index, trace_id: trace_id.clone() };
    let n_plus_one =
        endpoint.n_plus_one.iter().enumerate().map(|(i, n)| target(TargetKind::NPlusOne, i, &n.example_trace_id));
    let duplicates =
        endpoint.duplicates.iter().enumerate().map(|(i, d)| target(TargetKind::Duplicate, i, &d.example_trace_id));
    let slowest = endpoint.slowest.iter().enumerate().map(|(i, r)| target(TargetKind::Slowest, i, &r.trace_id));
    n_plus_one.chain(duplicates).chain(slowest).collect()
}

/// Findings matching the filter (by title, endpoint, query or category), most costly first.
pub fn finding_rows<'s>(snapshot: &'s Snapshot, ui: &UiState) -> Vec<&'s FindingSnapshot> {
    let mut rows: Vec<&FindingSnapshot> = snapshot
        .findings
        .iter()
        .filter(|f| {
            let endpoint = f.endpoint.as_ref().map(|e| format!("{} {} {}", e.service, e.method, e.route));
            ui.matches(&format!(
                "{} {} {} {}",
                f.title,
                f.category,
                endpoint.unwrap_or_default(),
                f.fingerprint.as_deref().unwrap_or_default()
            ))
        })
        .collect();
    rows.sort_by(|a, b| b.cost_ms_total.total_cmp(&a.cost_ms_total).then_with(|| a.id.cmp(&b.id)));
    rows
}

/// Endpoints matching the filter, in the chosen sort order.
pub fn endpoint_rows<'s>(snapshot: &'s Snapshot, ui: &UiState) -> Vec<&'s EndpointSnapshot> {
    let mut rows: Vec<&EndpointSnapshot> =
        snapshot.endpoints.iter().filter(|e| ui.matches(&format!("{} {}", e.service, endpoint_label(e)))).collect();
    rows.sort_by(|a, b| ui.sort.compare(a, b));
    rows
}

/// N+1 offenders of all endpoints matching the filter (by endpoint or query), most total time
/// first.
pub fn n_plus_one_rows<'s>(snapshot: &'s Snapshot, ui: &UiState) -> Vec<(&'s EndpointSnapshot, &'s NPlusOneSnapshot)> {
    let mut rows: Vec<_> = snapshot
        .endpoints
        .iter()
        .flat_map(|e| e.n_plus_one.iter().map(move |n| (e, n)))
        .filter(|(e, n)| ui.matches(&format!("{} {} {}", e.service, endpoint_label(e), n.fingerprint)))
        .collect();
    rows.sort_by(|(ea, a), (eb, b)| {
        b.time_ms_total
            .total_cmp(&a.time_ms_total)
            .then_with(|| endpoint_label(ea).cmp(&endpoint_label(eb)))
            .then_with(|| a.fingerprint_id.cmp(&b.fingerprint_id))
    });
    rows
}

fn offender_keys(snapshot: &Snapshot, ui: &UiState) -> Vec<(EndpointId, String)> {
    n_plus_one_rows(snapshot, ui).iter().map(|(e, n)| (EndpointId::of(e), n.fingerprint_id.clone())).collect()
}

/// Query shapes matching the filter (by text or endpoint), most total time first.
pub fn query_rows<'s>(snapshot: &'s Snapshot, ui: &UiState) -> Vec<&'s QuerySnapshot> {
    let mut rows: Vec<&QuerySnapshot> = snapshot
        .queries
        .iter()
        .filter(|q| ui.matches(&q.fingerprint) || q.endpoints.iter().any(|e| ui.matches(e)))
        .collect();
    rows.sort_by(|a, b| {
        b.time_ms_total.total_cmp(&a.time_ms_total).then_with(|| a.fingerprint_id.cmp(&b.fingerprint_id))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::testing::{sample_snapshot, sample_snapshot_with_findings, sample_trace, sample_ui};

    fn app() -> App {
        let ui = UiState::new(
            "127.0.0.1:4317".parse().expect("addr"),
            "127.0.0.1:4318".parse().expect("addr"),
            PathBuf::from("."),
        );
        App::new(ui, Arc::new(sample_snapshot()))
    }

    fn selected_endpoint(app: &App) -> EndpointId {
        let rows = endpoint_rows(app.snapshot(), &app.ui);
        let keys: Vec<EndpointId> = rows.iter().map(|e| EndpointId::of(e)).collect();
        let i = app.ui.endpoints.resolve(&keys).expect("a selection");
        keys[i].clone()
    }

    fn routes(app: &App) -> Vec<String> {
        endpoint_rows(app.snapshot(), &app.ui).iter().map(|e| e.route.clone()).collect()
    }

    #[test]
    fn default_sort_is_slowest_p95_first() {
        let app = app();
        let rows = endpoint_rows(app.snapshot(), &app.ui);
        assert!(rows.windows(2).all(|w| w[0].latency_ms.p95 >= w[1].latency_ms.p95));
    }

    #[test]
    fn s_cycles_the_sort_column_and_wraps() {
        let mut app = app();
        app.update(Action::CycleSort);
        assert_eq!(app.ui.sort, SortColumn::P99);
        for _ in 0..SortColumn::ORDER.len() - 1 {
            app.update(Action::CycleSort);
        }
        assert_eq!(app.ui.sort, SortColumn::P95);
    }

    #[test]
    fn sorting_by_requests_orders_rows() {
        let mut app = app();
        while app.ui.sort != SortColumn::Requests {
            app.update(Action::CycleSort);
        }
        let rows = endpoint_rows(app.snapshot(), &app.ui);
        assert!(rows.windows(2).all(|w| w[0].requests >= w[1].requests));
    }

    #[test]
    fn selection_follows_the_endpoint_across_re_sorts() {
        let mut app = app();
        app.update(Action::Down);
        app.update(Action::Down);
        let chosen = selected_endpoint(&app);
        for _ in 0..SortColumn::ORDER.len() {
            app.update(Action::CycleSort);
            assert_eq!(selected_endpoint(&app), chosen);
        }
    }

    #[test]
    fn selection_follows_the_endpoint_across_new_snapshots() {
        let mut app = app();
        app.update(Action::End);
        let chosen = selected_endpoint(&app);
        let mut next = sample_snapshot();
        next.endpoints.reverse();
        for e in &mut next.endpoints {
            e.latency_ms.p95 = 1000.0 - e.latency_ms.p95;
        }
        app.update(Action::Snapshot(Arc::new(next)));
        assert_eq!(selected_endpoint(&app), chosen);
    }

    #[test]
    fn movement_is_clamped() {
        let mut app = app();
        app.update(Action::Up);
        let first = routes(&app)[0].clone();
        assert_eq!(selected_endpoint(&app).route, first);
        app.update(Action::PageDown);
        app.update(Action::PageDown);
        let last = routes(&app).last().cloned().expect("rows");
        assert_eq!(selected_endpoint(&app).route, last);
        app.update(Action::Home);
        assert_eq!(selected_endpoint(&app).route, first);
    }

    #[test]
    fn filter_narrows_rows_and_escape_clears_it() {
        let mut app = app();
        app.update(Action::StartFilter);
        for c in "AUTH".chars() {
            app.update(Action::FilterInput(c));
        }
        app.update(Action::FilterDone);
        assert!(!app.ui.filtering);
        let rows = routes(&app);
        assert!(!rows.is_empty());
        assert!(rows.iter().all(|r| r.contains("author")), "{rows:?}");
        app.update(Action::Back);
        assert!(app.ui.filter.is_empty());
        assert_eq!(routes(&app).len(), app.snapshot().endpoints.len());
    }

    #[test]
    fn filter_backspace_and_cancel() {
        let mut app = app();
        app.update(Action::StartFilter);
        app.update(Action::FilterInput('x'));
        app.update(Action::FilterInput('y'));
        app.update(Action::FilterBackspace);
        assert_eq!(app.ui.filter, "x");
        app.update(Action::FilterCancel);
        assert!(app.ui.filter.is_empty());
        assert!(!app.ui.filtering);
    }

    #[test]
    fn enter_drills_into_the_selected_endpoint_and_escape_comes_back() {
        let mut app = app();
        app.update(Action::Down);
        let chosen = selected_endpoint(&app);
        app.update(Action::Enter);
        assert_eq!(app.ui.detail.as_ref(), Some(&chosen));
        app.update(Action::Down);
        assert_eq!(app.ui.detail_cursor, 1);
        app.update(Action::Back);
        assert_eq!(app.ui.detail, None);
        assert_eq!(selected_endpoint(&app), chosen);
    }

    #[test]
    fn enter_on_an_offender_opens_its_endpoint() {
        let mut app = app();
        app.update(Action::ShowTab(Tab::NPlusOne));
        app.update(Action::Enter);
        let top = n_plus_one_rows(app.snapshot(), &app.ui)[0].0;
        assert!(app.ui.detail.as_ref().is_some_and(|d| d.is(top)));
    }

    #[test]
    fn tabs_cycle_both_ways() {
        let mut app = app();
        app.update(Action::NextTab);
        assert_eq!(app.ui.tab, Tab::NPlusOne);
        app.update(Action::PreviousTab);
        app.update(Action::PreviousTab);
        assert_eq!(app.ui.tab, Tab::Findings);
    }

    #[test]
    fn pause_freezes_the_displayed_snapshot_until_resumed() {
        let mut app = app();
        app.update(Action::TogglePause);
        let mut newer = sample_snapshot();
        newer.totals.spans_received += 1000;
        let newer = Arc::new(newer);
        app.update(Action::Snapshot(Arc::clone(&newer)));
        assert_eq!(app.snapshot().totals.spans_received, sample_snapshot().totals.spans_received);
        app.update(Action::TogglePause);
        assert_eq!(app.snapshot().totals.spans_received, newer.totals.spans_received);
    }

    #[test]
    fn help_and_audit_overlays_toggle_and_close_on_escape() {
        let mut app = app();
        app.update(Action::ToggleHelp);
        assert!(app.ui.help);
        app.update(Action::ToggleAudit);
        assert!(app.ui.audit && !app.ui.help);
        app.update(Action::Back);
        assert!(!app.ui.audit && !app.ui.help);
    }

    #[test]
    fn rates_come_from_successive_snapshots() {
        let mut app = app();
        assert_eq!(app.ui.rates, None);
        let mut next = sample_snapshot();
        next.generated_at = "2026-01-02T03:04:07Z".to_string();
        next.totals.spans_received += 200;
        next.totals.requests += 10;
        app.update(Action::Snapshot(Arc::new(next)));
        assert_eq!(app.ui.rates, Some(Rates { spans_per_second: 100.0, requests_per_second: 5.0 }));
    }

    #[test]
    fn rates_forget_samples_older_than_the_window() {
        let mut app = app();
        let mut later = sample_snapshot();
        for (second, spans) in [(10, 1000), (11, 1100)] {
            later.generated_at = format!("2026-01-02T03:04:{second:02}Z");
            later.totals.spans_received = spans;
            app.update(Action::Snapshot(Arc::new(later.clone())));
        }
        // The first sample (03:04:05) is more than five seconds before 03:04:11.
        assert_eq!(app.ui.rates.map(|r| r.spans_per_second), Some(100.0));
    }

    #[test]
    fn quit_is_remembered() {
        let mut app = app();
        assert!(!app.should_quit());
        app.update(Action::Quit);
        assert!(app.should_quit());
    }

    #[test]
    fn export_writes_the_displayed_snapshot_into_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut app = app();
        app.ui.snapshot_dir = dir.path().to_path_buf();
        let effect = app.update(Action::Export).expect("an export effect");
        let outcome = effect.run().expect("an outcome");
        let Action::Exported(Ok(path)) = &outcome else { panic!("export failed: {outcome:?}") };
        assert!(path.starts_with(dir.path()));
        let name = path.file_name().and_then(|n| n.to_str()).expect("name").to_string();
        assert!(name.starts_with("apmtop-snapshot-") && name.ends_with(".json"), "{name}");
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).expect("read")).expect("valid JSON");
        let markdown = std::fs::read_to_string(path.with_extension("md")).expect("the Markdown twin");
        assert!(markdown.contains("/api/books"), "{markdown}");
        let outcome = outcome.clone();
        assert_eq!(written["generated_at"], sample_snapshot().generated_at);
        app.update(outcome);
        assert!(app.ui.status.as_deref().is_some_and(|s| s.contains(&name)));
    }

    #[test]
    fn exports_in_the_same_second_do_not_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let first = export(dir.path(), &sample_snapshot(), now).expect("first");
        let second = export(dir.path(), &sample_snapshot(), now).expect("second");
        assert_ne!(first, second);
        assert!(first.ends_with("apmtop-snapshot-2023-11-14T22-13-20Z.json"));
    }

    #[test]
    fn export_into_a_missing_directory_reports_the_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut app = app();
        app.ui.snapshot_dir = dir.path().join("missing");
        let outcome = app.update(Action::Export).expect("effect").run().expect("an outcome");
        app.update(outcome);
        assert!(app.ui.status.as_deref().is_some_and(|s| s.starts_with("export failed")));
    }
    fn books_detail() -> App {
        let mut app = app();
        app.update(Action::Down);
        app.update(Action::Enter);
        assert!(app.ui.detail.as_ref().is_some_and(|d| d.route == "/api/books"));
        app
    }

    #[test]
    fn w_cycles_the_window_and_tells_the_aggregator() {
        let mut app = app();
        assert_eq!(app.ui.window, Window::All);
        let effect = app.update(Action::CycleWindow);
        assert!(matches!(effect, Some(Effect::SetWindow(Window::LastMinute))));
        app.update(Action::CycleWindow);
        assert_eq!(app.ui.window, Window::LastFiveMinutes);
        app.update(Action::CycleWindow);
        assert_eq!(app.ui.window, Window::All);
        assert!(app.ui.status.as_deref().is_some_and(|s| s.contains("all time")));
    }

    #[test]
    fn c_clears_the_statistics_and_says_so() {
        let mut app = app();
        let mut later = sample_snapshot();
        later.generated_at = "2026-01-02T03:04:09Z".to_string();
        later.totals.requests += 100;
        app.update(Action::Snapshot(Arc::new(later)));
        assert!(app.ui.rates.is_some());
        assert!(matches!(app.update(Action::Clear), Some(Effect::Clear)));
        assert_eq!(app.ui.rates, None);
        assert!(app.ui.throughput.is_empty());
        assert!(app.ui.status.as_deref().is_some_and(|s| s.contains("cleared")));
    }

    #[test]
    fn keys_that_need_a_live_pipeline_say_so_on_a_saved_report() {
        let mut app = books_detail();
        app.ui.live = false;
        for action in [Action::CycleWindow, Action::Clear, Action::Enter] {
            app.ui.status = None;
            assert!(app.update(action.clone()).is_none(), "{action:?}");
            assert!(app.ui.status.as_deref().is_some_and(|s| s.contains("live pipeline")), "{action:?}");
        }
        assert_eq!(app.ui.window, Window::All);
        assert!(app.ui.trace.is_none());
    }

    #[test]
    fn enter_on_a_slowest_request_opens_its_trace_and_escape_goes_back() {
        let mut app = books_detail();
        let slowest = app.snapshot().endpoints.iter().find(|e| e.route == "/api/books").expect("books").slowest[0]
            .trace_id
            .clone();
        // N+1 example, duplicate example, then the slowest requests.
        app.update(Action::Down);
        app.update(Action::Down);
        let effect = app.update(Action::Enter);
        let Some(Effect::FetchTrace(asked)) = effect else { panic!("expected a trace request, got {effect:?}") };
        assert_eq!(asked.to_string(), slowest);
        assert_eq!(app.ui.trace.as_ref().map(|t| &t.load), Some(&TraceLoad::Pending));
        // An answer for another trace (an earlier request) is ignored.
        app.update(Action::TraceLoaded("0".repeat(32), None));
        assert_eq!(app.ui.trace.as_ref().map(|t| &t.load), Some(&TraceLoad::Pending));
        let record = Arc::new(sample_trace());
        app.update(Action::TraceLoaded(slowest.clone(), Some(Arc::clone(&record))));
        assert_eq!(app.ui.trace.as_ref().map(|t| &t.load), Some(&TraceLoad::Loaded(record)));
        app.update(Action::Back);
        assert!(app.ui.trace.is_none());
        assert!(app.ui.detail.is_some(), "Esc from the trace returns to the detail");
        app.update(Action::Back);
        assert!(app.ui.detail.is_none());
    }

    #[test]
    fn a_trace_no_longer_kept_is_shown_as_missing() {
        let mut app = books_detail();
        let Some(Effect::FetchTrace(asked)) = app.update(Action::Enter) else { panic!("no trace request") };
        app.update(Action::TraceLoaded(asked.to_string(), None));
        assert_eq!(app.ui.trace.as_ref().map(|t| &t.load), Some(&TraceLoad::Missing));
    }

    #[test]
    fn enter_in_the_trace_unfolds_the_n_plus_one_row() {
        let mut app = books_detail();
        let Some(Effect::FetchTrace(asked)) = app.update(Action::Enter) else { panic!("no trace request") };
        app.update(Action::TraceLoaded(asked.to_string(), Some(Arc::new(sample_trace()))));
        let rows = app.ui.trace.as_ref().expect("trace").rows();
        let group = rows.iter().position(|r| r.group.is_some()).expect("a folded N+1 row");
        for _ in 0..group {
            app.update(Action::Down);
        }
        let before = rows.len();
        app.update(Action::Enter);
        assert_eq!(app.ui.trace.as_ref().expect("trace").rows().len(), before + 40);
    }

    #[test]
    fn findings_rank_by_cost_and_open_evidence_then_the_example_trace() {
        let mut app = App::new(sample_ui(), Arc::new(sample_snapshot_with_findings()));
        app.update(Action::ShowTab(Tab::Findings));
        let snapshot = Arc::clone(app.snapshot());
        let rows = finding_rows(&snapshot, &app.ui);
        assert!(rows.windows(2).all(|w| w[0].cost_ms_total >= w[1].cost_ms_total));
        app.update(Action::Down);
        app.update(Action::Enter);
        assert_eq!(app.ui.finding.as_deref(), Some(rows[1].id.as_str()));
        let Some(Effect::FetchTrace(asked)) = app.update(Action::Enter) else { panic!("no trace request") };
        assert_eq!(asked.to_string(), rows[1].example_trace_id);
        app.update(Action::Back);
        assert!(app.ui.trace.is_none() && app.ui.finding.is_some());
        app.update(Action::Back);
        assert!(app.ui.finding.is_none());
    }

    #[test]
    fn a_finding_without_example_trace_says_so() {
        let mut app = App::new(sample_ui(), Arc::new(sample_snapshot_with_findings()));
        app.update(Action::ShowTab(Tab::Findings));
        app.update(Action::End);
        app.update(Action::Enter);
        assert!(app.update(Action::Enter).is_none());
        assert!(app.ui.status.as_deref().is_some_and(|s| s.contains("no example trace")));
    }

    #[test]
    fn a_click_selects_the_row_and_a_second_click_drills_in() {
        let mut app = app();
        app.update(Action::Resize(24));
        let (first, _) = crate::tui::view::table_rows_at(Tab::Endpoints, 24 - crate::tui::view::CHROME_ROWS);
        app.update(Action::Click(first + 2));
        assert_eq!(selected_endpoint(&app), EndpointId::of(endpoint_rows(app.snapshot(), &app.ui)[2]));
        assert!(app.ui.detail.is_none());
        app.update(Action::Click(first + 2));
        assert_eq!(app.ui.detail.as_ref(), Some(&selected_endpoint(&app)));
    }

    #[test]
    fn clicks_outside_the_rows_change_nothing() {
        let mut app = app();
        app.update(Action::Resize(24));
        let before = selected_endpoint(&app);
        app.update(Action::Click(0));
        app.update(Action::Click(23));
        app.update(Action::Click(20));
        assert_eq!(selected_endpoint(&app), before);
        assert!(app.ui.detail.is_none());
    }

    #[test]
    fn the_sparkline_gets_about_one_value_a_second() {
        let mut app = app();
        let mut snapshot = sample_snapshot();
        for (i, second) in (6..=16).enumerate() {
            for quarter in 0..4 {
                snapshot.generated_at = format!("2026-01-02T03:04:{second:02}.{:03}Z", quarter * 250);
                snapshot.totals.requests += 5 * (i as u64 + 1);
                app.update(Action::Snapshot(Arc::new(snapshot.clone())));
            }
        }
        let points: Vec<u64> = app.ui.throughput.iter().copied().collect();
        assert!((9..=11).contains(&points.len()), "{points:?}");
        assert!(points.windows(2).all(|w| w[0] <= w[1]), "throughput grows: {points:?}");
    }
}
