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

use crate::report;
use crate::snapshot::{EndpointSnapshot, NPlusOneSnapshot, QuerySnapshot, Snapshot};

/// The top-level views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// One row per endpoint.
    Endpoints,
    /// N+1 offenders across endpoints.
    NPlusOne,
    /// Query shapes across endpoints.
    Queries,
}

impl Tab {
    /// All tabs, in order.
    pub const ALL: [Tab; 3] = [Tab::Endpoints, Tab::NPlusOne, Tab::Queries];

    /// The tab's title.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Endpoints => "Endpoints",
            Tab::NPlusOne => "N+1",
            Tab::Queries => "Queries",
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
}

impl Effect {
    /// Runs the effect (blocking) and returns the action that reports its outcome.
    pub fn run(self) -> Action {
        match self {
            Effect::Export { dir, snapshot } => Action::Exported(export(&dir, &snapshot, SystemTime::now())),
        }
    }
}

/// Writes `snapshot` to `dir/apmtop-snapshot-<UTC timestamp>.json` (with a counter when that name
/// is taken) and returns the path.
pub fn export(dir: &Path, snapshot: &Snapshot, now: SystemTime) -> Result<PathBuf, String> {
    let stamp = humantime::format_rfc3339_seconds(now).to_string().replace(':', "-");
    let mut path = dir.join(format!("apmtop-snapshot-{stamp}.json"));
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = dir.join(format!("apmtop-snapshot-{stamp}-{n}.json"));
    }
    report::write_json(&path, snapshot).map_err(|e| e.to_string())?;
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
                self.ui.status = Some(format!("exported {}", path.display()));
            }
            Action::Exported(Err(error)) => self.ui.status = Some(format!("export failed: {error}")),
            Action::Resize(rows) => self.ui.page_rows = usize::from(rows.saturating_sub(8)).max(1),
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
            Action::Enter => self.enter(),
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
    }

    fn show_tab(&mut self, tab: Tab) {
        self.ui.tab = tab;
        self.ui.detail = None;
        self.ui.help = false;
        self.ui.audit = false;
    }

    fn back(&mut self) {
        if self.ui.help || self.ui.audit {
            self.ui.help = false;
            self.ui.audit = false;
        } else if self.ui.detail.is_some() {
            self.ui.detail = None;
        } else if !self.ui.filter.is_empty() {
            self.ui.filter.clear();
        } else {
            self.ui.status = None;
        }
    }

    fn enter(&mut self) {
        if self.ui.help || self.ui.audit || self.ui.detail.is_some() {
            return;
        }
        let snapshot = Arc::clone(&self.displayed);
        let target = match self.ui.tab {
            Tab::Endpoints => {
                let rows = endpoint_rows(&snapshot, &self.ui);
                let keys: Vec<EndpointId> = rows.iter().map(|e| EndpointId::of(e)).collect();
                self.ui.endpoints.resolve(&keys).map(|i| keys[i].clone())
            }
            Tab::NPlusOne => {
                let keys = offender_keys(&snapshot, &self.ui);
                self.ui.offenders.resolve(&keys).map(|i| keys[i].0.clone())
            }
            Tab::Queries => None,
        };
        if let Some(target) = target {
            self.ui.detail = Some(target);
            self.ui.detail_scroll = 0;
        }
    }

    fn shift(&mut self, delta: isize) {
        if self.ui.help || self.ui.audit {
            return;
        }
        if self.ui.detail.is_some() {
            let scroll = i64::from(self.ui.detail_scroll).saturating_add(delta as i64);
            self.ui.detail_scroll = u16::try_from(scroll.max(0)).unwrap_or(u16::MAX);
            return;
        }
        let snapshot = Arc::clone(&self.displayed);
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
        }
    }
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
    use crate::tui::testing::sample_snapshot;

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
        assert_eq!(app.ui.detail_scroll, 1);
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
        assert_eq!(app.ui.tab, Tab::Queries);
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
        let outcome = effect.run();
        let Action::Exported(Ok(path)) = &outcome else { panic!("export failed: {outcome:?}") };
        assert!(path.starts_with(dir.path()));
        let name = path.file_name().and_then(|n| n.to_str()).expect("name").to_string();
        assert!(name.starts_with("apmtop-snapshot-") && name.ends_with(".json"), "{name}");
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).expect("read")).expect("valid JSON");
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
        let outcome = app.update(Action::Export).expect("effect").run();
        app.update(outcome);
        assert!(app.ui.status.as_deref().is_some_and(|s| s.starts_with("export failed")));
    }
}
