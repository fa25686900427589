//! End to end: the findings list on the real instrumented Django app, one view per cause of
//! slowness and a fixed twin for each (`tests/apps/django_app/library/views.py`).
//!
//! The test starts a stub rates service on 127.0.0.1 (the app calls it from `rates/` through
//! `urllib`, instrumented), seeds the database, runs the app under `opentelemetry-instrument`
//! with the `Content-Length` response header captured, requests every view a few times and
//! checks the report's `findings`: each cause's finding on its view with its category, rule and
//! figures (taken from the seed command's summary, never from a report), and no finding at all
//! on any fixed twin.
//!
//! `APMTOP_SKIP_APP_TESTS=1` skips it.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::app_process::{self, AppProcess, SeedSummary};
use crate::django_app::{app_command, instrumented_runserver, python};
use crate::support::{Apmtop, num};

/// `service.name` the app reports.
const SERVICE: &str = "django-findings";
/// How many times each view is requested.
const REQUESTS: u64 = 3;
/// How long the stub rates service takes to answer: long enough that waiting for it shows.
const STUB_DELAY: Duration = Duration::from_millis(15);

#[test]
fn django_app_findings_on_each_cause_and_none_on_the_fixed_twins() {
    let Some(python) = python() else { return };
    let work = tempfile::tempdir().expect("temp dir for the app's database and logs");
    let db = work.path().join("app.sqlite3");
    let seed = SeedSummary::run(app_command(python.as_os_str(), &db).args(["manage.py", "seed"]), "manage.py seed");
    let stub = StubRates::start();
    let stub_address = stub.address();

    let apmtop = Apmtop::start(&[]);
    let app = start_app(&python, &db, work.path(), &apmtop.grpc_url(), &stub.url());
    let views = [
        "/search/",
        "/search/prefix/",
        "/rates/",
        "/rates/fixed/",
        "/books/export/",
        "/books/export/page/",
        "/notes/loop/",
        "/notes/bulk/",
        "/books/page/",
        "/books/page/cursor/",
    ];
    for round in 1..=REQUESTS {
        for view in views {
            let path = match view {
                "/books/page/" => format!("{view}?page={round}"),
                "/books/page/cursor/" => format!("{view}?after={}", (round - 1) * seed.count("page_size")),
                _ => view.to_string(),
            };
            assert_eq!(app.get(&path), 200, "GET {path}; app log:\n{}", app.log());
        }
    }
    let app_log = app.stop();
    eprintln!("--- app log ---\n{app_log}");
    let report = apmtop.stop();
    eprintln!("--- findings ---\n{}", serde_json::to_string_pretty(&report["findings"]).expect("json"));
    let calls = stub.stop();
    assert_eq!(calls, REQUESTS * seed.count("rate_calls"), "calls the stub rates service answered");

    let findings = report["findings"].as_array().expect("findings is an array");
    check_ranking(findings);

    let search = only_finding(findings, "/search/");
    expect(search, "slow_query_shape", "leading_wildcard_like", REQUESTS);
    assert_eq!(num(&search["count_total"], "search executions"), REQUESTS as f64);
    assert!(text(search, "statement").contains(&seed.name("book_table")), "{search:#}");

    let rates = only_finding(findings, "/rates/");
    expect(rates, "blocking_outgoing_calls", "http", REQUESTS);
    let rate_calls = seed.count("rate_calls");
    assert_eq!(num(&rates["count_total"], "rate calls"), (REQUESTS * rate_calls) as f64);
    assert_eq!(num(&rates["count_max"], "rate calls per request"), rate_calls as f64);
    assert_eq!(num(&rates["value_max"], "sequential calls"), rate_calls as f64, "the calls run one after another");
    assert!(text(rates, "title").contains(&stub_address), "the peer is named: {rates:#}");
    let waited = num(&rates["cost_ms_per_request"], "rates cost");
    let least = rate_calls as f64 * STUB_DELAY.as_secs_f64() * 1000.0;
    assert!(waited >= least, "the request waits at least {least} ms for the calls, not {waited}");

    let export = only_finding(findings, "/books/export/");
    expect(export, "huge_response", "", REQUESTS);
    assert_eq!(num(&export["value_max"], "export bytes"), seed.count("export_bytes") as f64);

    let notes = only_finding(findings, "/notes/loop/");
    expect(notes, "row_by_row_write", "insert", REQUESTS);
    assert_eq!(num(&notes["count_max"], "inserts per request"), seed.count("notes_per_request") as f64);
    assert!(text(notes, "statement").contains(&seed.name("note_table")), "{notes:#}");
    assert!(text(notes, "hint").contains("bulk_create"), "{notes:#}");

    let page = only_finding(findings, "/books/page/");
    expect(page, "slow_query_shape", "count_per_request", REQUESTS);

    for twin in ["/search/prefix/", "/rates/fixed/", "/books/export/page/", "/notes/bulk/", "/books/page/cursor/"] {
        let found = on(findings, twin);
        assert!(found.is_empty(), "the fixed twin {twin} has findings: {found:#?}");
    }
    // The twin's page really is small, so its silence means something.
    assert!(seed.count("export_page_bytes") < 300_000 && seed.count("export_bytes") > 300_000);
}

/// Findings on `route` of the test's service.
fn on<'a>(findings: &'a [Value], route: &str) -> Vec<&'a Value> {
    findings.iter().filter(|f| f["endpoint"]["route"] == route && f["endpoint"]["service"] == SERVICE).collect()
}

/// The one finding on `route`.
fn only_finding<'a>(findings: &'a [Value], route: &str) -> &'a Value {
    let found = on(findings, route);
    assert_eq!(found.len(), 1, "expected one finding on {route}, found {found:#?}");
    found[0]
}

fn text<'a>(finding: &'a Value, key: &str) -> &'a str {
    finding[key].as_str().unwrap_or_else(|| panic!("finding has no text {key}: {finding:#}"))
}

/// Category, rule, affected requests, and the fields every finding carries.
fn expect(finding: &Value, category: &str, rule: &str, requests: u64) {
    assert_eq!(finding["category"], category, "{finding:#}");
    assert_eq!(finding["rule"], rule, "{finding:#}");
    assert_eq!(num(&finding["requests_affected"], category), requests as f64, "{finding:#}");
    assert!(["high", "medium", "low"].contains(&text(finding, "severity")), "{finding:#}");
    let id = text(finding, "id");
    assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()), "id {id:?}");
    let trace = text(finding, "example_trace_id");
    assert!(trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit()), "example_trace_id {trace:?}");
    for key in ["title", "evidence", "hint"] {
        assert!(!text(finding, key).is_empty(), "{key} is empty: {finding:#}");
    }
    assert!(num(&finding["cost_ms_total"], "cost") > 0.0, "{finding:#}");
}

/// Most costly first.
fn check_ranking(findings: &[Value]) {
    let costs: Vec<f64> = findings.iter().map(|f| num(&f["cost_ms_total"], "cost_ms_total")).collect();
    assert!(costs.windows(2).all(|pair| pair[0] >= pair[1]), "findings are not ranked by cost: {costs:?}");
}

fn start_app(python: &Path, db: &Path, dir: &Path, endpoint: &str, rates_url: &str) -> AppProcess {
    let port = app_process::free_port();
    let mut command = instrumented_runserver(python, db, port, SERVICE, "grpc", endpoint);
    command
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE", "content-length")
        .env("APMTOP_RATES_URL", rates_url);
    AppProcess::spawn(command, port, dir)
}

/// A stub rates service on 127.0.0.1: answers every request with a small JSON rate after
/// [`STUB_DELAY`], and counts the requests.
struct StubRates {
    port: u16,
    calls: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl StubRates {
    fn start() -> StubRates {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stub rates service");
        listener.set_nonblocking(true).expect("non-blocking stub listener");
        let port = listener.local_addr().expect("stub address").port();
        let calls = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counter, stopped) = (Arc::clone(&calls), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if answer(stream).is_ok() {
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        StubRates { port, calls, stop, thread }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self) -> String {
        format!("http://{}", self.address())
    }

    /// Stops the stub and returns how many requests it answered.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("stub thread");
        self.calls.load(Ordering::SeqCst)
    }
}

/// Reads one request's head and answers it.
fn answer(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    std::thread::sleep(STUB_DELAY);
    let body = r#"{"rate": 1.1}"#;
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}
