//! `--explain DB`: asks the real database for the plans of the slowest query shapes and turns
//! full scans with a filter or a sort into `missing_index` findings with the `CREATE INDEX` to
//! run, checked against the indexes the table already has.
//!
//! ```text
//! Snapshot.queries (top N by total time, same database system)
//!   -> placeholders (rewrite for the target)  -> query (tables, filter and sort columns)
//!   -> sqlite / postgres (EXPLAIN only, read-only transaction, timeout; catalog reads)
//!   -> plan (full scans, sorts)  -> index (proposal, or covered by an existing index)
//!   -> FindingSnapshot (category missing_index, rule full_scan_filter / full_scan_sort)
//! ```
//!
//! An [`Explainer`] keeps one result per query shape for [`CACHE_TTL`], so an index created
//! while apmtop runs is noticed. Database trouble (cannot connect, a missing table, a statement
//! the database refuses) is one warning line per distinct problem, never an error: the rest of
//! the report does not depend on it. The statement itself is never run: only `EXPLAIN` and
//! catalog reads, inside a read-only transaction with a statement timeout.

mod index;
mod placeholders;
mod plan;
mod postgres;
mod query;
mod sqlite;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use xxhash_rust::xxh3::xxh3_64;

use crate::snapshot::{EndpointRef, FindingSnapshot, QuerySnapshot, Snapshot};
use index::Advice;
use placeholders::Target as Dialect;
use plan::Plan;
use query::{Analysis, TableRef};

/// How many of the slowest query shapes are explained.
pub const TOP_SHAPES: usize = 20;
/// How long one shape's result is kept before it is asked for again.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// How often the explain task looks for a changed snapshot.
pub const PASS_EVERY: Duration = Duration::from_secs(3);
/// The category of every finding made here.
pub const CATEGORY: &str = "missing_index";
/// Rule: a table read in full while the statement filters it.
pub const RULE_FILTER: &str = "full_scan_filter";
/// Rule: a table read in full and then sorted.
pub const RULE_SORT: &str = "full_scan_sort";

/// Catalog facts per table, keyed by the table name as the statement writes it.
pub type Catalog = HashMap<String, TableInfo>;

/// What the catalog says about one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// Its name in the database.
    pub name: String,
    /// How to write it in a `CREATE INDEX` (quoted, schema-qualified outside `public`).
    pub sql_name: String,
    /// Its columns.
    pub columns: Vec<String>,
    /// Its usable indexes.
    pub indexes: Vec<index::ExistingIndex>,
}

/// The database to ask, from `--explain`.
#[derive(Debug, Clone)]
pub enum Target {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server.
    Postgres(Box<tokio_postgres::Config>),
}

impl Target {
    /// Reads `--explain`: a `postgres://` / `postgresql://` URL, or the path of an existing
    /// SQLite file. The error is one line saying what to change.
    pub fn parse(text: &str) -> Result<Target, String> {
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return postgres::check_url(text).map(|config| Target::Postgres(Box::new(config)));
        }
        if let Some((scheme, _)) = lower.split_once("://") {
            return Err(format!(
                "{scheme}:// databases are not supported; give a SQLite file path or a postgres:// URL"
            ));
        }
        let path = PathBuf::from(text);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(Target::Sqlite(path)),
            Ok(_) => Err(format!("{text} is not a file (expected a SQLite database file or a postgres:// URL)")),
            Err(error) => Err(format!("cannot open the SQLite database {text}: {error}")),
        }
    }

    fn dialect(&self) -> Dialect {
        match self {
            Target::Sqlite(_) => Dialect::Sqlite,
            Target::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Whether a query shape from `db_system` belongs to this database (unknown: try it).
    fn serves(&self, db_system: &str) -> bool {
        let system = db_system.to_ascii_lowercase();
        match self {
            _ if system.is_empty() || system == "other_sql" => true,
            Target::Sqlite(_) => system == "sqlite",
            Target::Postgres(_) => matches!(system.as_str(), "postgresql" | "postgres"),
        }
    }
}

/// What one statement's plan says, ready to become a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// [`RULE_FILTER`] or [`RULE_SORT`].
    pub rule: &'static str,
    /// The table read in full.
    pub table: String,
    /// The relevant plan lines.
    pub plan: String,
    /// The `CREATE INDEX` to run.
    pub proposed_index: String,
}

/// The result for one query shape.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// A missing index.
    Missing(Diagnosis),
    /// The plan is fine, or an existing index covers it.
    Fine,
    /// Not explained, and why (not a SELECT/UPDATE/DELETE, several statements, ...).
    Skipped(String),
    /// The database refused it (missing table, unknown parameter type, ...).
    Failed(String),
}

struct Cached {
    outcome: Outcome,
    at: Instant,
}

/// Explains query shapes against one database and remembers the results for a while.
pub struct Explainer {
    target: Target,
    /// The PostgreSQL connection, opened on the first pass and again after it is lost (SQLite
    /// files are opened for each pass).
    session: Option<postgres::Postgres>,
    cache: HashMap<String, Cached>,
    warned: HashSet<String>,
}

impl Explainer {
    /// An explainer for `target`; nothing is connected until the first pass.
    pub fn new(target: Target) -> Explainer {
        Explainer { target, session: None, cache: HashMap::new(), warned: HashSet::new() }
    }

    /// Explains the slowest shapes of `snapshot` (cached ones are reused) and returns the
    /// missing-index findings, most costly first.
    pub async fn pass(&mut self, snapshot: &Snapshot) -> Vec<FindingSnapshot> {
        let candidates = self.candidates(snapshot);
        let now = Instant::now();
        let stale: Vec<&QuerySnapshot> = candidates
            .iter()
            .copied()
            .filter(|q| self.cache.get(&q.fingerprint_id).is_none_or(|c| now.duration_since(c.at) >= CACHE_TTL))
            .collect();
        if !stale.is_empty() {
            let jobs: Vec<(String, String)> =
                stale.iter().map(|q| (q.fingerprint_id.clone(), q.statement.clone())).collect();
            let started = Instant::now();
            let explained = self.explain_jobs(jobs).await;
            tracing::debug!(shapes = stale.len(), elapsed_ms = started.elapsed().as_millis() as u64, "explain pass");
            match explained {
                Ok(results) => {
                    for (id, outcome) in results {
                        self.note(&id, &outcome);
                        self.cache.insert(id, Cached { outcome, at: Instant::now() });
                    }
                }
                Err(message) => self.warn(format!("--explain: {message}")),
            }
        }
        self.cache.retain(|_, c| now.duration_since(c.at) < CACHE_TTL * 4);
        let mut findings: Vec<FindingSnapshot> = candidates
            .iter()
            .filter_map(|q| match self.cache.get(&q.fingerprint_id).map(|c| &c.outcome) {
                Some(Outcome::Missing(diagnosis)) => Some(finding(snapshot, q, diagnosis, self.method_note())),
                _ => None,
            })
            .collect();
        sort_findings(&mut findings);
        findings
    }

    /// The query shapes to explain: the [`TOP_SHAPES`] slowest in total of this database.
    fn candidates<'s>(&self, snapshot: &'s Snapshot) -> Vec<&'s QuerySnapshot> {
        let mut queries: Vec<&QuerySnapshot> =
            snapshot.queries.iter().filter(|q| !q.statement.is_empty() && self.target.serves(&q.db_system)).collect();
        queries.sort_by(|a, b| b.time_ms_total.total_cmp(&a.time_ms_total));
        queries.truncate(TOP_SHAPES);
        queries
    }

    /// Logs what happened to one shape, once per distinct problem.
    fn note(&mut self, id: &str, outcome: &Outcome) {
        match outcome {
            Outcome::Failed(message) => self.warn(format!("--explain: query shape {id} not explained: {message}")),
            Outcome::Skipped(reason) => {
                tracing::info!(fingerprint_id = id, reason = %reason, "query shape not explained")
            }
            Outcome::Missing(d) => tracing::info!(fingerprint_id = id, index = %d.proposed_index, "missing index"),
            Outcome::Fine => tracing::debug!(fingerprint_id = id, "plan uses an index"),
        }
    }

    fn warn(&mut self, message: String) {
        if self.warned.insert(message.clone()) {
            tracing::warn!("{message}");
        }
    }

    fn method_note(&self) -> &'static str {
        match (&self.target, &self.session) {
            (Target::Sqlite(_), _) => "SQLite EXPLAIN QUERY PLAN",
            (Target::Postgres(_), Some(pg)) => pg.method().describe(),
            (Target::Postgres(_), None) => "PostgreSQL EXPLAIN",
        }
    }

    /// Explains each `(fingerprint_id, statement)`; `Err` when the database cannot be used at all.
    async fn explain_jobs(&mut self, jobs: Vec<(String, String)>) -> Result<Vec<(String, Outcome)>, String> {
        let dialect = self.target.dialect();
        let mut prepared = Vec::new();
        let mut results = Vec::new();
        for (id, statement) in jobs {
            match prepare(&statement, dialect) {
                Ok(job) => prepared.push((id, job)),
                Err(reason) => results.push((id, Outcome::Skipped(reason))),
            }
        }
        if prepared.is_empty() {
            return Ok(results);
        }
        match &self.target {
            Target::Sqlite(path) => {
                let path = path.clone();
                let explained = tokio::task::spawn_blocking(move || explain_sqlite(&path, prepared))
                    .await
                    .map_err(|e| format!("the SQLite explain task failed: {e}"))??;
                results.extend(explained);
            }
            Target::Postgres(config) => {
                if self.session.as_ref().is_none_or(postgres::Postgres::is_closed) {
                    let connected = postgres::Postgres::connect(config).await.map_err(|e| e.to_string())?;
                    tracing::info!(
                        version = connected.version,
                        method = connected.method().describe(),
                        "explain connected"
                    );
                    self.session = Some(connected);
                }
                let Some(pg) = self.session.as_ref() else { return Ok(results) };
                for (id, job) in prepared {
                    let outcome = explain_postgres(pg, &job).await;
                    if pg.is_closed() {
                        return Err("the PostgreSQL connection was closed".to_string());
                    }
                    results.push((id, outcome));
                }
            }
        }
        Ok(results)
    }
}

/// A statement ready to explain.
struct Job {
    sql: String,
    params: usize,
    analysis: Analysis,
}

/// Rewrites placeholders and checks the statement may be explained.
fn prepare(statement: &str, dialect: Dialect) -> Result<Job, String> {
    let converted = placeholders::convert(statement, dialect).map_err(|e| e.to_string())?;
    let analysis = query::analyze(&converted.sql, dialect).map_err(|e| e.to_string())?;
    Ok(Job { sql: converted.sql, params: converted.params, analysis })
}

fn explain_sqlite(path: &std::path::Path, jobs: Vec<(String, Job)>) -> Result<Vec<(String, Outcome)>, String> {
    let db = sqlite::Sqlite::open(path).map_err(|e| e.to_string())?;
    let mut results = Vec::new();
    for (id, job) in jobs {
        let outcome = match db.explain(&job.sql) {
            Err(error) => Outcome::Failed(error.to_string()),
            Ok(plan) => match db.catalog(&tables_of(&job.analysis)) {
                Err(error) => Outcome::Failed(format!("reading the catalog: {error}")),
                Ok(catalog) => diagnose(&job.analysis, &plan, &catalog, Dialect::Sqlite),
            },
        };
        results.push((id, outcome));
    }
    Ok(results)
}

async fn explain_postgres(pg: &postgres::Postgres, job: &Job) -> Outcome {
    let plan = match pg.explain(&job.sql, job.params).await {
        Ok(plan) => plan,
        Err(message) => return Outcome::Failed(message),
    };
    match pg.catalog(&tables_of(&job.analysis)).await {
        Ok(catalog) => diagnose(&job.analysis, &plan, &catalog, Dialect::Postgres),
        Err(message) => Outcome::Failed(format!("reading the catalog: {message}")),
    }
}

/// Every table name the statement mentions, once.
fn tables_of(analysis: &Analysis) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for table in analysis.scopes.iter().flat_map(|s| &s.tables) {
        if !names.contains(&table.name) {
            names.push(table.name.clone());
        }
    }
    names
}

/// Matches the plan's full scans to the statement's tables and decides what index is missing.
fn diagnose(analysis: &Analysis, plan: &Plan, catalog: &Catalog, dialect: Dialect) -> Outcome {
    let mut best: Option<Diagnosis> = None;
    for scan in &plan.scans {
        let Some((scope, table)) = find_table(analysis, scan, dialect) else { continue };
        let Some(info) = catalog.get(&table.name) else { continue };
        let has_column = |t: &TableRef, column: &str| {
            catalog.get(&t.name).is_some_and(|i| i.columns.iter().any(|c| c.eq_ignore_ascii_case(column)))
        };
        let used = scope.resolve(table, has_column);
        // PostgreSQL says whether the scan filters; SQLite only says it scans.
        let filtered = used.is_filtered() && (dialect == Dialect::Sqlite || scan.filter.is_some());
        let sorted = !used.order_by.is_empty() && !plan.sorts.is_empty();
        let rule = match (filtered, sorted) {
            (true, _) => RULE_FILTER,
            (false, true) => RULE_SORT,
            (false, false) => continue,
        };
        let mut used = used;
        if !filtered {
            used.equality.clear();
            used.range.clear();
        }
        if let Advice::Create(proposal) = index::advise(&info.sql_name, &info.name, &used, &info.indexes) {
            let mut lines = vec![scan.line.clone()];
            if sorted {
                lines.extend(plan.sorts.iter().cloned());
            }
            let diagnosis =
                Diagnosis { rule, table: info.name.clone(), plan: lines.join("\n"), proposed_index: proposal.sql };
            if best.as_ref().is_none_or(|b| b.rule == RULE_SORT && rule == RULE_FILTER) {
                best = Some(diagnosis);
            }
        }
    }
    best.map_or(Outcome::Fine, Outcome::Missing)
}

/// The scope and table reference a plan's scan is about.
fn find_table<'a>(
    analysis: &'a Analysis,
    scan: &plan::Scan,
    dialect: Dialect,
) -> Option<(&'a query::Scope, &'a TableRef)> {
    analysis.scopes.iter().find_map(|scope| {
        scope
            .tables
            .iter()
            .find(|t| match dialect {
                // SQLite names the scan by alias when there is one.
                // (before 3.36, by table name).
                Dialect::Sqlite => {
                    t.alias.as_ref().is_some_and(|alias| alias.eq_ignore_ascii_case(&scan.table))
                        || t.bare_name().eq_ignore_ascii_case(&scan.table)
                }
                Dialect::Postgres => {
                    t.bare_name() == scan.table
                        && match (&t.alias, &scan.alias) {
                            (Some(alias), Some(scan_alias)) => alias == scan_alias,
                            (None, Some(scan_alias)) => *scan_alias == scan.table,
                            (_, None) => true,
                        }
                }
            })
            .map(|t| (scope, t))
    })
}

/// The finding for one shape. The snapshot does not split a shape's executions by request or by
/// endpoint, so `requests_affected` is the requests of the endpoints it runs in, capped by its
/// executions, and `endpoint` is the one of those endpoints with the most database time.
fn finding(snapshot: &Snapshot, query: &QuerySnapshot, diagnosis: &Diagnosis, method: &str) -> FindingSnapshot {
    let endpoint = costliest_endpoint(snapshot, &query.endpoint_refs);
    let requests_in_endpoints: u64 = snapshot
        .endpoints
        .iter()
        .filter(|e| {
            query.endpoint_refs.iter().any(|r| r.service == e.service && r.method == e.method && r.route == e.route)
        })
        .map(|e| e.requests)
        .sum();
    let requests_affected = requests_in_endpoints.min(query.calls).max(u64::from(query.calls > 0));
    let endpoints_time_ms: f64 = snapshot
        .endpoints
        .iter()
        .filter(|e| {
            query.endpoint_refs.iter().any(|r| r.service == e.service && r.method == e.method && r.route == e.route)
        })
        .map(|e| e.latency_ms.mean * e.requests as f64)
        .sum();
    let per_request_ms = if requests_affected > 0 { query.time_ms_total / requests_affected as f64 } else { 0.0 };
    let share = if endpoints_time_ms > 0.0 { query.time_ms_total / endpoints_time_ms } else { 0.0 };
    let severity = crate::aggregate::findings::severity(per_request_ms, share);
    let mean_ms = if query.calls > 0 { query.time_ms_total / query.calls as f64 } else { 0.0 };
    let title = match diagnosis.rule {
        RULE_FILTER => format!("Full scan of {} to filter rows: missing index", diagnosis.table),
        _ => format!("Full scan and sort of {}: missing index for the ORDER BY", diagnosis.table),
    };
    let evidence = format!(
        "{} executions, {:.1} ms in total ({:.2} ms each on average); the database's plan reads every row of {}{} \
         (from {method}). The total is the most an index could save.",
        query.calls,
        query.time_ms_total,
        mean_ms,
        diagnosis.table,
        if diagnosis.rule == RULE_SORT { " and sorts them" } else { "" },
    );
    let id_text = format!("{CATEGORY}\0{}\0\0{}", diagnosis.rule, query.fingerprint_id);
    FindingSnapshot {
        id: format!("{:016x}", xxh3_64(id_text.as_bytes())),
        severity: severity.to_string(),
        category: CATEGORY.to_string(),
        rule: diagnosis.rule.to_string(),
        endpoint,
        title,
        evidence,
        fingerprint_id: Some(query.fingerprint_id.clone()),
        fingerprint: Some(query.fingerprint.clone()),
        statement: Some(query.statement.clone()),
        requests_affected,
        cost_ms_per_request: if requests_affected > 0 { query.time_ms_total / requests_affected as f64 } else { 0.0 },
        cost_ms_total: query.time_ms_total,
        example_trace_id: String::new(),
        code_location: None,
        plan: Some(diagnosis.plan.clone()),
        proposed_index: Some(diagnosis.proposed_index.clone()),
        hint: format!(
            "Create the index (in a migration): {} Then check the plan again: the full scan should become an index search.",
            diagnosis.proposed_index
        ),
        count_total: query.calls,
        ..FindingSnapshot::default()
    }
}

/// Of the endpoints a shape runs in, the one with the most database time in total (the snapshot
/// does not split a shape's time by endpoint).
fn costliest_endpoint(snapshot: &Snapshot, refs: &[EndpointRef]) -> Option<EndpointRef> {
    refs.iter()
        .max_by(|a, b| {
            let db_time = |r: &EndpointRef| {
                snapshot
                    .endpoints
                    .iter()
                    .find(|e| e.service == r.service && e.method == r.method && e.route == r.route)
                    .map_or(0.0, |e| e.db_time_ms.mean * e.requests as f64)
            };
            db_time(a).total_cmp(&db_time(b))
        })
        .cloned()
}

/// Ranked like every other list of findings ([`crate::aggregate::findings::rank_findings`]).
pub fn sort_findings(findings: &mut [FindingSnapshot]) {
    crate::aggregate::findings::rank_findings(findings);
}

/// Whether `finding` was made here (so a fresh pass replaces it).
pub fn is_explain_finding(finding: &FindingSnapshot) -> bool {
    finding.category == CATEGORY && (finding.rule == RULE_FILTER || finding.rule == RULE_SORT)
}

/// Replaces the explain findings in `findings` with `fresh`, keeping the list most costly first.
pub fn merge_findings(findings: &mut Vec<FindingSnapshot>, fresh: &[FindingSnapshot]) {
    findings.retain(|f| !is_explain_finding(f));
    findings.extend(fresh.iter().cloned());
    sort_findings(findings);
}

/// The findings the explain task publishes.
pub type Findings = Arc<Vec<FindingSnapshot>>;

/// The explain task: every [`PASS_EVERY`], when the published snapshot changed, runs a pass and
/// publishes the findings on `findings` (only when they changed). Returns the explainer when
/// `stop` fires, between passes, for the final pass at shutdown.
pub async fn run(
    mut explainer: Explainer,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    findings: watch::Sender<Findings>,
    mut stop: oneshot::Receiver<()>,
) -> Explainer {
    loop {
        tokio::select! {
            _ = &mut stop => return explainer,
            _ = tokio::time::sleep(PASS_EVERY) => {}
        }
        if !snapshots.has_changed().unwrap_or(false) {
            continue;
        }
        let snapshot = Arc::clone(&snapshots.borrow_and_update());
        let fresh = explainer.pass(&snapshot).await;
        findings.send_if_modified(|current| {
            if **current == fresh {
                return false;
            }
            *current = Arc::new(fresh);
            true
        });
    }
}

#[cfg(test)]
mod tests;
