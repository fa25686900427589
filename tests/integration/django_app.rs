//! End to end with a real instrumented app: the Django + SQLite app in `tests/apps/django_app`.
//!
//! Each test provisions the app's Python environment (`tests/apps/provision.sh`, from PyPI,
//! once per run), seeds a fresh database without instrumentation, starts `apmtop --headless`,
//! runs the app under `opentelemetry-instrument` exporting to it, makes a known number of
//! requests to every view, stops the app (which flushes its spans), stops apmtop and checks
//! the report: N+1 groups with their tables and repeat counts, exact queries per request,
//! duplicates, errors, and no finding anywhere it should not be.
//!
//! Expected numbers are derived from what the seed command reports about the data (counts and
//! table names) and from each view's documented query shape (`library/views.py`), never
//! copied from a report. One test exports over gRPC with the old semantic conventions (and
//! OTLP metrics on, as users leave them); the other over OTLP/HTTP with
//! `OTEL_SEMCONV_STABILITY_OPT_IN=database,http`.
//!
//! `APMTOP_SKIP_APP_TESTS=1` skips both (they need Python 3.10+ and, the first time, PyPI).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::app_process::{self, AppProcess, SeedSummary};
use crate::support::{self, Apmtop, items, num, strings};

/// Set to `1` to skip the app tests (no Python, no network).
const SKIP_ENV: &str = "APMTOP_SKIP_APP_TESTS";
/// `service.name` the app reports.
const SERVICE: &str = "django-app";
/// How many times each view is requested.
const REQUESTS_PER_VIEW: u64 = 3;

#[test]
fn django_app_over_grpc_with_old_conventions() {
    run(&Export { protocol: "grpc", semconv_opt_in: None, metrics: "otlp" });
}

#[test]
fn django_app_over_http_with_stable_conventions() {
    run(&Export { protocol: "http/protobuf", semconv_opt_in: Some("database,http"), metrics: "none" });
}

/// How the app exports: the OpenTelemetry environment variables that differ between tests.
struct Export {
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`.
    protocol: &'static str,
    /// `OTEL_SEMCONV_STABILITY_OPT_IN`, unset when `None`.
    semconv_opt_in: Option<&'static str>,
    /// `OTEL_METRICS_EXPORTER`.
    metrics: &'static str,
}

fn run(export: &Export) {
    let Some(python) = python() else { return };
    let work = tempfile::tempdir().expect("temp dir for the app's database and logs");
    let db = work.path().join("app.sqlite3");
    let seed = Seed::create(&python, &db);
    let views = views(&seed);

    let apmtop = Apmtop::start(&[]);
    let endpoint = match export.protocol {
        "grpc" => apmtop.grpc_url(),
        _ => apmtop.http_url(),
    };
    let app = start_app(&python, &db, work.path(), export, &endpoint);

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
    let apmtop_log = apmtop.stderr();
    let report = apmtop.stop();
    eprintln!("--- apmtop stderr ---\n{apmtop_log}");
    eprintln!("--- report ---\n{}", serde_json::to_string_pretty(&report).expect("report re-serializes"));

    check_report(&report, &seed, &views);
}

/// Every assertion on one report.
fn check_report(report: &Value, seed: &Seed, views: &[View]) {
    assert_eq!(report["apmtop_report"], 1, "report schema version");
    let totals = &report["totals"];
    assert_eq!(num(&totals["spans_dropped"], "totals.spans_dropped"), 0.0);

    let mut our_spans = 0.0;
    for view in views {
        let ctx = format!("GET {}", view.route);
        let endpoint = support::endpoint(report, "GET", view.route)
            .unwrap_or_else(|| panic!("{ctx} missing from the report's endpoints"));
        check_endpoint(endpoint, view, &ctx);
        our_spans += (REQUESTS_PER_VIEW * (1 + view.queries)) as f64;
    }
    // At least every span the views made (Django's startup adds a query of its own).
    let received = num(&totals["spans_received"], "totals.spans_received");
    assert!(received >= our_spans, "spans_received {received} < {our_spans} spans the views made");

    // No finding on any endpoint the test does not expect one on, known or not.
    let endpoints = report["endpoints"].as_array().expect("endpoints is an array");
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
    // Every request made, and nothing else: runserver's start-up query is no request.
    let made = (REQUESTS_PER_VIEW * views.len() as u64) as f64;
    assert_eq!(num(&totals["requests"], "totals.requests"), made, "totals.requests");
    assert_eq!(requests, made, "requests summed over endpoints");

    check_findings(report, seed);

    // The author lookup is one fingerprint shared by `/books/` and `/books/few/`.
    let books = support::endpoint(report, "GET", "/books/").expect("checked above");
    let fingerprint = &items(books, "n_plus_one", "GET /books/")[0]["fingerprint"];
    let query = report["queries"]
        .as_array()
        .expect("queries is an array")
        .iter()
        .find(|q| &q["fingerprint"] == fingerprint)
        .unwrap_or_else(|| panic!("no entry in queries for {fingerprint}"));
    assert_eq!(
        num(&query["calls"], "author lookup calls"),
        (REQUESTS_PER_VIEW * (seed.books + seed.few_books)) as f64,
        "author lookup calls over /books/ and /books/few/"
    );
    assert_eq!(query["tables"], serde_json::json!([seed.author_table]));
    assert_eq!(query["db_system"], "sqlite");
    let mut query_endpoints: Vec<&str> = strings(&query["endpoints"], "query endpoints");
    query_endpoints.sort_unstable();
    assert_eq!(query_endpoints, ["GET /books/", "GET /books/few/"]);
}

/// The ranked findings list: the N+1 of `/books/` as an N+1, the nested loop of
/// `/authors/nested/` as one MN+1 pattern (books, then reviews per book), not as two N+1s.
fn check_findings(report: &Value, seed: &Seed) {
    let findings = report["findings"].as_array().expect("findings is an array");
    let on = |route: &str| -> Vec<&Value> { findings.iter().filter(|f| f["endpoint"]["route"] == route).collect() };
    let books = on("/books/");
    assert_eq!(books.len(), 1, "{books:#?}");
    assert_eq!(books[0]["category"], "n_plus_one");
    assert_eq!(num(&books[0]["count_max"], "N+1 repeats"), seed.books as f64);
    let nested = on("/authors/nested/");
    assert_eq!(nested.len(), 1, "{nested:#?}");
    assert_eq!(nested[0]["category"], "mn_plus_one");
    let title = nested[0]["title"].as_str().unwrap_or_default();
    let tables = format!("{}, {}", seed.book_table, seed.review_table);
    assert!(title.contains(&tables), "the loop's tables in order: {title}");
    assert_eq!(num(&nested[0]["requests_affected"], "MN+1 requests"), REQUESTS_PER_VIEW as f64);
    assert!(on("/books/fixed/").is_empty() && on("/health/").is_empty(), "findings on fixed views");
}

fn check_endpoint(endpoint: &Value, view: &View, ctx: &str) {
    let n = REQUESTS_PER_VIEW as f64;
    assert_eq!(endpoint["service"], SERVICE, "{ctx}: service");
    assert_eq!(num(&endpoint["requests"], ctx), n, "{ctx}: requests");
    let errors = if view.status >= 500 { n } else { 0.0 };
    assert_eq!(num(&endpoint["errors"], ctx), errors, "{ctx}: errors");

    let queries = view.queries as f64;
    let per_request = &endpoint["queries_per_request"];
    for key in ["p50", "max", "mean"] {
        let got = num(&per_request[key], ctx);
        assert!((got - queries).abs() < 1e-9, "{ctx}: queries_per_request.{key} is {got}, the view runs {queries}");
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

    let found = items(endpoint, "n_plus_one", ctx);
    assert_eq!(found.len(), view.n_plus_one.len(), "{ctx}: expected N+1 on {:?}, found {found:#?}", view.n_plus_one);
    for (table, repeats) in &view.n_plus_one {
        let group = found
            .iter()
            .find(|g| g["tables"] == serde_json::json!([table]))
            .unwrap_or_else(|| panic!("{ctx}: no N+1 on table {table} in {found:#?}"));
        let repeats = *repeats as f64;
        assert_eq!(num(&group["repeats"]["p50"], ctx), repeats, "{ctx}: {table} repeats p50");
        assert_eq!(num(&group["repeats"]["max"], ctx), repeats, "{ctx}: {table} repeats max");
        assert_eq!(num(&group["requests_affected"], ctx), n, "{ctx}: {table} requests_affected");
        assert_eq!(group["db_system"], "sqlite", "{ctx}: {table} db_system");
        let statement = group["statement"].as_str().unwrap_or_default();
        assert!(
            statement.contains(table.as_str()) && statement.contains("%s"),
            "{ctx}: example statement should be the raw ORM SQL on {table}: {statement:?}"
        );
        let fingerprint = group["fingerprint"].as_str().unwrap_or_default();
        assert!(fingerprint.contains(table.as_str()), "{ctx}: fingerprint {fingerprint:?}");
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
}

/// One route of the app and what each request to it does.
struct View {
    /// The route as apmtop reports it (Django's, with a leading slash).
    route: &'static str,
    /// Paths requested, cycled through round by round.
    paths: Vec<String>,
    status: u16,
    /// SQL statements per request.
    queries: u64,
    /// Expected N+1 groups: (table, repeats per request).
    n_plus_one: Vec<(String, u64)>,
    /// Expected duplicate groups: (table in the statement, repeats per request).
    duplicates: Vec<(String, u64)>,
}

impl View {
    fn new(route: &'static str, queries: u64) -> View {
        View {
            route,
            paths: vec![route.to_string()],
            status: 200,
            queries,
            n_plus_one: Vec::new(),
            duplicates: Vec::new(),
        }
    }

    fn path(&self, round: u64) -> String {
        self.paths[round as usize % self.paths.len()].clone()
    }
}

/// The views and their query shapes, as documented in `library/views.py`.
fn views(seed: &Seed) -> Vec<View> {
    let (authors, books) = (seed.authors, seed.books);
    vec![
        View { n_plus_one: vec![(seed.author_table.clone(), books)], ..View::new("/books/", 1 + books) },
        View::new("/books/fixed/", 1),
        View::new("/books/few/", 1 + seed.few_books),
        View {
            paths: (1..=REQUESTS_PER_VIEW).map(|pk| format!("/books/{pk}/")).collect(),
            ..View::new("/books/<int:pk>/", 2)
        },
        View {
            n_plus_one: vec![(seed.book_table.clone(), authors), (seed.review_table.clone(), books)],
            ..View::new("/authors/nested/", 1 + authors + books)
        },
        View {
            duplicates: vec![(seed.book_table.clone(), seed.duplicate_runs)],
            ..View::new("/duplicates/", seed.duplicate_runs)
        },
        View {
            duplicates: vec![(seed.review_table.clone(), seed.duplicate_runs_many)],
            ..View::new("/duplicates/many/", seed.duplicate_runs_many)
        },
        View::new("/health/", 0),
        View { status: 500, ..View::new("/error/", 1) },
    ]
}

/// What `manage.py seed` says it loaded.
struct Seed {
    authors: u64,
    books: u64,
    few_books: u64,
    duplicate_runs: u64,
    duplicate_runs_many: u64,
    author_table: String,
    book_table: String,
    review_table: String,
}

impl Seed {
    /// Creates and fills `db` with the app's seed command, uninstrumented.
    fn create(python: &Path, db: &Path) -> Seed {
        let summary =
            SeedSummary::run(app_command(python.as_os_str(), db).args(["manage.py", "seed"]), "manage.py seed");
        Seed {
            authors: summary.count("authors"),
            books: summary.count("books"),
            few_books: summary.count("few_books"),
            duplicate_runs: summary.count("duplicate_runs"),
            duplicate_runs_many: summary.count("duplicate_runs_many"),
            author_table: summary.name("author_table"),
            book_table: summary.name("book_table"),
            review_table: summary.name("review_table"),
        }
    }
}

/// Starts the instrumented app, `manage.py runserver` under `opentelemetry-instrument`, on a free port.
fn start_app(python: &Path, db: &Path, dir: &Path, export: &Export, endpoint: &str) -> AppProcess {
    let port = app_process::free_port();
    let mut command = instrumented_runserver(python, db, port, SERVICE, export.protocol, endpoint);
    command.env("OTEL_METRICS_EXPORTER", export.metrics).env("OTEL_METRIC_EXPORT_INTERVAL", "1000");
    if let Some(opt_in) = export.semconv_opt_in {
        command.env("OTEL_SEMCONV_STABILITY_OPT_IN", opt_in);
    }
    AppProcess::spawn(command, port, dir)
}

/// `manage.py runserver` on `port` under `opentelemetry-instrument` as `service`, exporting
/// traces with `protocol` to `endpoint` quickly (200 ms batches), logs off; metrics are the
/// caller's choice.
pub(crate) fn instrumented_runserver(
    python: &Path,
    db: &Path,
    port: u16,
    service: &str,
    protocol: &str,
    endpoint: &str,
) -> Command {
    let instrument = python.with_file_name("opentelemetry-instrument");
    let mut command = app_command(instrument.as_os_str(), db);
    command
        .arg(python)
        .args(["manage.py", "runserver", "--noreload"])
        .arg(format!("127.0.0.1:{port}"))
        .env("OTEL_SERVICE_NAME", service)
        .env("OTEL_TRACES_EXPORTER", "otlp")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_LOGS_EXPORTER", "none")
        .env("OTEL_BSP_SCHEDULE_DELAY", "200");
    command
}

/// A command run in the app's directory against database `db`, without bytecode files.
pub(crate) fn app_command(program: &std::ffi::OsStr, db: &Path) -> Command {
    let mut command = app_process::command(program);
    command
        .current_dir(app_dir())
        .env("APMTOP_TEST_DB", db)
        // `opentelemetry-instrument` sets up Django before manage.py could set this.
        .env("DJANGO_SETTINGS_MODULE", "apmtop_demo.settings")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null());
    command
}

fn app_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/django_app")
}

/// The provisioned virtualenv's python, or `None` when the app tests are skipped.
///
/// Provisions once per test run; both tests share the result.
pub(crate) fn python() -> Option<PathBuf> {
    if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
        eprintln!("skipping the Django app test: {SKIP_ENV}=1");
        return None;
    }
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(provision) {
        Ok(python) => Some(python.clone()),
        Err(message) => panic!("{message}\n(set {SKIP_ENV}=1 to skip the app tests)"),
    }
}

/// Runs `tests/apps/provision.sh`, which prints the virtualenv's python on its last line.
fn provision() -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/provision.sh");
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
    let python = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    if !python.is_file() {
        return Err(format!("{} printed no python path:\n{stdout}\n{stderr}", script.display()));
    }
    Ok(python)
}
