//! End to end with a second real app: the Express + node-postgres app in `tests/apps/node_app`,
//! against a real PostgreSQL server.
//!
//! The test installs the app's packages (`tests/apps/provision_node.sh`, `npm ci` from the
//! lock file, once), starts a throwaway PostgreSQL server on 127.0.0.1 in a temp dir
//! (`tests/apps/pg_server.sh`, stopped on drop), seeds it without instrumentation, starts
//! `apmtop --headless`, runs the app under the OpenTelemetry JS SDK (`node --require ./otel.js
//! app.js`, exporting OTLP/HTTP protobuf, the Node default), makes a known number of requests
//! to every route, stops the app (SIGTERM: the SDK flushes), stops apmtop and checks the report:
//! exact queries per request (connection spans excluded), N+1 groups with their tables and
//! repeat counts, the literal-id N+1 as one group, concurrent siblings and fixed twins clean,
//! duplicates that are not N+1, and no finding anywhere it should not be.
//!
//! Expected numbers come from what the seed reports about the data (counts, table names, the
//! views' repeat counts) and from each route's documented query shape (`app.js`), never from
//! a report.
//!
//! `APMTOP_SKIP_APP_TESTS=1` skips it (it needs Node.js, the npm registry the first time, and
//! Debian's `postgresql` package).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::app_process::{self, AppProcess, SeedSummary};
use crate::pg_server::PgServer;
use crate::support::{self, Apmtop, items, num, strings};

/// Set to `1` to skip the app tests (no Node.js, no PostgreSQL, no network).
const SKIP_ENV: &str = "APMTOP_SKIP_APP_TESTS";
/// `service.name` the app reports.
const SERVICE: &str = "node-app";
/// The database the app uses.
const DATABASE: &str = "apmtop_demo";
/// How many times each route is requested.
const REQUESTS_PER_VIEW: u64 = 3;

#[test]
fn node_app_over_http_protobuf() {
    let Some(app_dir) = provisioned_app() else { return };
    let pg = PgServer::start(DATABASE).unwrap_or_else(|e| panic!("{e}\n(set {SKIP_ENV}=1 to skip the app tests)"));
    let seed = Seed::create(&app_dir, &pg);
    let views = views(&seed);

    let apmtop = Apmtop::start(&[]);
    let work = tempfile::tempdir().expect("temp dir for the app's log");
    let app = start_app(&app_dir, &pg, work.path(), &apmtop.http_url());

    for round in 0..REQUESTS_PER_VIEW {
        for view in &views {
            let path = view.path(round);
            let status = app.get(&path);
            assert_eq!(status, view.status, "GET {path}; app log:\n{}", app.log());
        }
    }
    let app_log = app.stop();
    // Printed only when the test fails: what the app and its exporter said.
    eprintln!("--- app log ---\n{app_log}");
    assert!(app_log.contains("spans flushed"), "the app did not flush its spans on SIGTERM; log:\n{app_log}");
    let apmtop_log = apmtop.stderr();
    let report = apmtop.stop();
    eprintln!("--- apmtop stderr ---\n{apmtop_log}");
    eprintln!("--- report ---\n{}", serde_json::to_string_pretty(&report).expect("report re-serializes"));

    check_report(&report, &seed, &views);
    pg.stop();
}

/// Every assertion on one report.
fn check_report(report: &Value, seed: &Seed, views: &[View]) {
    let n = REQUESTS_PER_VIEW;
    assert_eq!(report["apmtop_report"], 1, "report schema version");
    let totals = &report["totals"];
    for key in ["spans_dropped", "spans_rejected", "spans_refused", "traces_incomplete", "exports_malformed"] {
        assert_eq!(num(&totals[key], key), 0.0, "totals.{key}");
    }

    let mut connection_spans = 0;
    for view in views {
        let ctx = format!("GET {}", view.route);
        let endpoint = support::endpoint(report, "GET", view.route)
            .unwrap_or_else(|| panic!("{ctx} missing from the report's endpoints"));
        connection_spans += check_endpoint(endpoint, view, max_new_connections(seed, views), &ctx);
    }

    // No finding on any endpoint the test does not expect one on, known or not.
    let endpoints = items(report, "endpoints", "report");
    let mut requests = 0.0;
    for endpoint in endpoints {
        let route = endpoint["route"].as_str().unwrap_or_default();
        let ctx = format!("{} {route}", endpoint["method"]);
        requests += num(&endpoint["requests"], &ctx);
        let view = views.iter().find(|v| endpoint["method"] == "GET" && v.route == route);
        if view.is_none() {
            assert_eq!(items(endpoint, "n_plus_one", &ctx).len(), 0, "{ctx}: false N+1");
            assert_eq!(items(endpoint, "duplicates", &ctx).len(), 0, "{ctx}: false duplicate");
        }
    }
    assert_eq!(endpoints.len(), views.len(), "one endpoint per route, no others");
    let made = n * views.len() as u64;
    assert_eq!(num(&totals["requests"], "totals.requests"), made as f64, "totals.requests");
    assert_eq!(requests, made as f64, "requests summed over endpoints");

    // Every statement ran inside a request; connection spans are not queries.
    let queries: u64 = views.iter().map(|v| n * v.queries).sum();
    assert_eq!(num(&totals["queries"], "totals.queries"), queries as f64, "totals.queries");

    // Connections: one pg-pool.connect per checkout, plus one pg.connect per connection the
    // pool opened: at least one; at most its size, since it never closes idle ones, plus one
    // per failed statement, since pg-pool discards a client released with an error.
    let checkouts: u64 = views.iter().map(|v| n * v.checkouts).sum();
    let opened = connection_spans.checked_sub(checkouts).unwrap_or_else(|| {
        panic!("{connection_spans} connection spans over all endpoints, fewer than the {checkouts} pool checkouts")
    });
    let max_opened = max_new_connections(seed, views);
    assert!(
        (1..=max_opened).contains(&opened),
        "{connection_spans} connection spans = {checkouts} checkouts + {opened} new connections; the pool opens 1 to {max_opened}"
    );

    // Per request: the SERVER span, Express's `request handler` span, each statement and each
    // checkout; plus the pool's pg.connect spans. Nothing else is sent.
    let spans = views.iter().map(|v| n * (2 + v.queries + v.checkouts)).sum::<u64>() + opened;
    assert_eq!(num(&totals["spans_received"], "totals.spans_received"), spans as f64, "totals.spans_received");
    // The pool opening connections is no connection churn: a pooled app is never flagged.
    let churn: Vec<&Value> =
        items(report, "findings", "report").iter().filter(|f| f["category"] == "connection_churn").collect();
    assert!(churn.is_empty(), "connection churn on a pooled app: {churn:#?}");

    // The per-fingerprint table: the placeholder N+1 and the literal N+1 are one entry each.
    let author_lookup = query_entry(report, "GET /books", &seed.author_table);
    assert_eq!(num(&author_lookup["calls"], "author lookup calls"), (n * seed.books) as f64, "author lookup calls");
    assert_eq!(strings(&author_lookup["endpoints"], "author lookup endpoints"), ["GET /books"]);
    let inline_count = query_entry(report, "GET /books/inline", &seed.review_table);
    assert_eq!(
        num(&inline_count["calls"], "inlined review count calls"),
        (n * seed.books) as f64,
        "the review count with inlined ids is one query shape"
    );
    assert_eq!(strings(&inline_count["endpoints"], "inlined review count endpoints"), ["GET /books/inline"]);

    // Connection spans carry no statement by design; the audit must not call them a problem.
    let audit: Vec<&Value> = items(report, "audit", "report").iter().filter(|a| a["service"] == SERVICE).collect();
    assert!(audit.is_empty(), "audit entries for a fully instrumented app: {audit:#?}");
}

/// Checks one endpoint against its view; returns its `connection_spans`.
///
/// `max_new` bounds the connections the pool opens over the whole run (`pg.connect` spans).
fn check_endpoint(endpoint: &Value, view: &View, max_new: u64, ctx: &str) -> u64 {
    let n = REQUESTS_PER_VIEW as f64;
    assert_eq!(endpoint["service"], SERVICE, "{ctx}: service");
    assert_eq!(num(&endpoint["requests"], ctx), n, "{ctx}: requests");
    let errors = if view.status >= 500 { n } else { 0.0 };
    assert_eq!(num(&endpoint["errors"], ctx), errors, "{ctx}: errors");

    let queries = view.queries as f64;
    let per_request = &endpoint["queries_per_request"];
    for key in ["p50", "max", "mean"] {
        let got = num(&per_request[key], ctx);
        assert!(
            (got - queries).abs() < 1e-9,
            "{ctx}: queries_per_request.{key} is {got}, the route runs {queries} statements"
        );
    }
    if view.queries == 0 {
        assert_eq!(num(&endpoint["db_time_ms"]["max"], ctx), 0.0, "{ctx}: db time");
    }
    let latency = &endpoint["latency_ms"];
    assert!(num(&latency["max"], ctx) > 0.0, "{ctx}: latency max");
    assert!(num(&latency["p50"], ctx) <= num(&latency["max"], ctx), "{ctx}: p50 <= max");

    let slowest = items(endpoint, "slowest", ctx);
    assert!(!slowest.is_empty(), "{ctx}: no slowest requests");
    for request in slowest {
        assert_eq!(num(&request["queries"], ctx), queries, "{ctx}: slowest request's queries");
    }

    // One pg-pool.connect per checkout per request, plus the pool's new connections.
    let connections = num(&endpoint["connection_spans"], ctx) as u64;
    let checkouts = REQUESTS_PER_VIEW * view.checkouts;
    assert!(
        (checkouts..=checkouts + max_new).contains(&connections),
        "{ctx}: connection_spans {connections}, expected {checkouts} checkouts plus at most {max_new} new connections"
    );

    let found = items(endpoint, "n_plus_one", ctx);
    assert_eq!(found.len(), view.n_plus_one.len(), "{ctx}: expected N+1 on {:?}, found {found:#?}", view.n_plus_one);
    for expected in &view.n_plus_one {
        let table = &expected.table;
        let group = found
            .iter()
            .find(|g| g["tables"] == json!([table]))
            .unwrap_or_else(|| panic!("{ctx}: no N+1 on table {table} in {found:#?}"));
        let repeats = expected.repeats as f64;
        assert_eq!(num(&group["repeats"]["p50"], ctx), repeats, "{ctx}: {table} repeats p50");
        assert_eq!(num(&group["repeats"]["max"], ctx), repeats, "{ctx}: {table} repeats max");
        assert_eq!(num(&group["requests_affected"], ctx), n, "{ctx}: {table} requests_affected");
        assert_eq!(group["db_system"], "postgresql", "{ctx}: {table} db_system");
        let statement = group["statement"].as_str().unwrap_or_default();
        assert!(
            statement.contains(table.as_str()) && statement.contains(expected.statement_has),
            "{ctx}: example statement should be the app's SQL on {table} with {:?}: {statement:?}",
            expected.statement_has
        );
        let fingerprint = group["fingerprint"].as_str().unwrap_or_default();
        assert!(
            fingerprint.contains(table.as_str()) && !fingerprint.contains("$1"),
            "{ctx}: fingerprint {fingerprint:?}"
        );
        let trace = group["example_trace_id"].as_str().unwrap_or_default();
        assert!(trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit()), "{ctx}: example_trace_id {trace:?}");
        assert!(group["hint"].as_str().is_some_and(|h| !h.is_empty()), "{ctx}: hint");
    }

    let found = items(endpoint, "duplicates", ctx);
    assert_eq!(
        found.len(),
        view.duplicates.len(),
        "{ctx}: expected duplicates on {:?}, found {found:#?}",
        view.duplicates
    );
    for (table, repeats) in &view.duplicates {
        let group = found
            .iter()
            .find(|g| g["statement"].as_str().is_some_and(|s| s.contains(table.as_str())))
            .unwrap_or_else(|| panic!("{ctx}: no duplicate on {table} in {found:#?}"));
        assert_eq!(num(&group["repeats_max"], ctx), *repeats as f64, "{ctx}: repeats_max");
        assert_eq!(num(&group["requests_affected"], ctx), n, "{ctx}: requests_affected");
    }
    connections
}

/// The most connections the app's pool can open over the run: its size, plus one for each
/// failed statement (pg-pool discards a client released with an error).
fn max_new_connections(seed: &Seed, views: &[View]) -> u64 {
    let failed: u64 = views.iter().filter(|v| v.status >= 500).map(|v| REQUESTS_PER_VIEW * v.queries).sum();
    seed.pool_max + failed
}

/// The entry of `queries` used by `endpoint` whose only table is `table`; exactly one.
fn query_entry<'a>(report: &'a Value, endpoint: &str, table: &str) -> &'a Value {
    let matching: Vec<&Value> = items(report, "queries", "report")
        .iter()
        .filter(|q| {
            q["tables"] == json!([table]) && q["endpoints"].as_array().is_some_and(|e| e.contains(&json!(endpoint)))
        })
        .collect();
    assert_eq!(matching.len(), 1, "queries on {table} from {endpoint}: {matching:#?}");
    assert_eq!(matching[0]["db_system"], "postgresql", "{endpoint} {table}: db_system");
    matching[0]
}

/// One route of the app and what each request to it does.
struct View {
    /// The route as apmtop reports it (Express's `http.route`).
    route: &'static str,
    /// Paths requested, cycled through round by round.
    paths: Vec<String>,
    status: u16,
    /// SQL statements per request.
    queries: u64,
    /// Clients checked out of the pool per request (`pg-pool.connect` spans).
    checkouts: u64,
    /// Expected N+1 groups.
    n_plus_one: Vec<NPlusOne>,
    /// Expected duplicate groups: (table in the statement, repeats per request).
    duplicates: Vec<(String, u64)>,
}

/// An N+1 group the test expects.
#[derive(Debug)]
struct NPlusOne {
    table: String,
    /// Repeats per request.
    repeats: u64,
    /// Something the example statement shows: `$1`, or the inlined literal's column.
    statement_has: &'static str,
}

impl View {
    /// A route whose every statement is a `pool.query()` (one checkout each).
    fn new(route: &'static str, queries: u64) -> View {
        View {
            route,
            paths: vec![route.to_string()],
            status: 200,
            queries,
            checkouts: queries,
            n_plus_one: Vec::new(),
            duplicates: Vec::new(),
        }
    }

    fn path(&self, round: u64) -> String {
        self.paths[round as usize % self.paths.len()].clone()
    }
}

/// The routes and their query shapes, as documented at the top of `app.js`.
fn views(seed: &Seed) -> Vec<View> {
    let (authors, books) = (seed.authors, seed.books);
    let n_plus_one =
        |table: &str, repeats, statement_has| NPlusOne { table: table.to_string(), repeats, statement_has };
    vec![
        View::new("/health", 0),
        View { n_plus_one: vec![n_plus_one(&seed.author_table, books, "$1")], ..View::new("/books", 1 + books) },
        View::new("/books/fixed", 1),
        View::new("/books/fixed-any", 2),
        View {
            n_plus_one: vec![n_plus_one(&seed.review_table, books, "book_id = ")],
            ..View::new("/books/inline", 1 + books)
        },
        View {
            paths: (1..=REQUESTS_PER_VIEW).map(|id| format!("/books/{id}")).collect(),
            ..View::new("/books/:id", 3)
        },
        View {
            checkouts: 1,
            n_plus_one: vec![n_plus_one(&seed.book_table, authors, "$1"), n_plus_one(&seed.review_table, books, "$1")],
            ..View::new("/authors/nested", 1 + authors + books)
        },
        View {
            duplicates: vec![(seed.book_table.clone(), seed.duplicate_runs)],
            ..View::new("/duplicates", seed.duplicate_runs)
        },
        View {
            duplicates: vec![(seed.review_table.clone(), seed.duplicate_runs_many)],
            ..View::new("/duplicates/many", seed.duplicate_runs_many)
        },
        View { status: 500, ..View::new("/error", 1) },
    ]
}

/// What `node seed.js` says it loaded.
struct Seed {
    authors: u64,
    books: u64,
    duplicate_runs: u64,
    duplicate_runs_many: u64,
    pool_max: u64,
    author_table: String,
    book_table: String,
    review_table: String,
}

impl Seed {
    /// Creates and fills the tables with the app's seed script, uninstrumented.
    fn create(app_dir: &Path, pg: &PgServer) -> Seed {
        let mut command = node_command(app_dir, pg);
        let summary = SeedSummary::run(command.arg("seed.js"), "node seed.js");
        Seed {
            authors: summary.count("authors"),
            books: summary.count("books"),
            duplicate_runs: summary.count("duplicate_runs"),
            duplicate_runs_many: summary.count("duplicate_runs_many"),
            pool_max: summary.count("pool_max"),
            author_table: summary.name("author_table"),
            book_table: summary.name("book_table"),
            review_table: summary.name("review_table"),
        }
    }
}

/// Starts `node --require ./otel.js app.js` on a free port, exporting to `endpoint` over OTLP/HTTP.
fn start_app(app_dir: &Path, pg: &PgServer, dir: &Path, endpoint: &str) -> AppProcess {
    let port = app_process::free_port();
    let mut command = node_command(app_dir, pg);
    command
        .args(["--require", "./otel.js", "app.js"])
        .env("PORT", port.to_string())
        .env("OTEL_SERVICE_NAME", SERVICE)
        // The SDK's default protocol (http/protobuf) and path (/v1/traces) are what we test.
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("OTEL_LOGS_EXPORTER", "none")
        .env("OTEL_BSP_SCHEDULE_DELAY", "200");
    AppProcess::spawn(command, port, dir)
}

/// `node` in the app's directory, connected to `pg` through the libpq variables only.
fn node_command(app_dir: &Path, pg: &PgServer) -> Command {
    let mut command = app_process::command("node");
    // The developer's own libpq and Node settings must not leak in either.
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("PG") || key_text == "NODE_OPTIONS" {
            command.env_remove(key);
        }
    }
    command
        .current_dir(app_dir)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", pg.port.to_string())
        .env("PGUSER", "postgres")
        .env("PGDATABASE", DATABASE)
        .stdin(Stdio::null());
    command
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps").join(name)
}

/// The provisioned app directory, or `None` when the app tests are skipped.
fn provisioned_app() -> Option<PathBuf> {
    if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
        eprintln!("skipping the Node.js app test: {SKIP_ENV}=1");
        return None;
    }
    match provision() {
        Ok(dir) => Some(dir),
        Err(message) => panic!("{message}\n(set {SKIP_ENV}=1 to skip the app tests)"),
    }
}

/// Runs `tests/apps/provision_node.sh`, which prints the app directory on its last line.
fn provision() -> Result<PathBuf, String> {
    let script = script("provision_node.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run {}: {e}", script.display()))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("{} failed ({}):\n{stderr}", script.display(), output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let dir = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    if !dir.join("node_modules").is_dir() {
        return Err(format!("{} printed no app directory:\n{stdout}\n{stderr}", script.display()));
    }
    Ok(dir)
}
