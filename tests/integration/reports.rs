//! `apmtop report`, `check` and `diff` on reports the real binary wrote from real OTLP exports:
//! the outputs and exit codes a CI job relies on.
//!
//! Two reports are recorded once for the whole module: "before" (each request loads its books in
//! one query) and "after" (the same endpoint now loads each book's author separately, an N+1),
//! both with an endpoint whose route is a `<script>` tag. Each test then runs the subcommands as
//! processes, in a temporary working directory so no `apmtop.toml` around the repository counts.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use nix::sys::signal::Signal;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use serde_json::Value;

use crate::otlp_payloads::{RequestTrace, SERVICE, batch};
use crate::support::{self, Apmtop};

/// A route an app could send to try to run script in the HTML report.
const SCRIPT_ROUTE: &str = "/<script>alert(1)</script>";
/// The books query every request runs.
const BOOKS_QUERY: &str = "SELECT id, title, author_id FROM book ORDER BY title LIMIT 20";
/// The count every request runs with it.
const COUNT_QUERY: &str = "SELECT COUNT(*) FROM book";
/// The per-book author query of the "after" report.
const AUTHOR_QUERY: &str = "SELECT id, name FROM author WHERE id = $1";
/// Times the author query runs in one request: above the default N+1 threshold of 5.
const AUTHOR_REPEATS: usize = 8;
/// Longest a subcommand may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The two recorded reports.
struct Recorded {
    before: PathBuf,
    after: PathBuf,
    /// The N+1 offender of `GET /api/books` in the "after" report, as the report names it.
    fingerprint_id: String,
    fingerprint: String,
}

/// Records the reports on first use; later callers share them.
fn recorded() -> &'static Recorded {
    static RECORDED: OnceLock<Recorded> = OnceLock::new();
    RECORDED.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("reports-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("report dir");
        let before = dir.join("before.json");
        let after = dir.join("after.json");
        let traces = |seed: u64, n_plus_one: bool| {
            let mut books =
                RequestTrace::new(seed, "GET", "/api/books").duration_ms(120).query(BOOKS_QUERY).query(COUNT_QUERY);
            if n_plus_one {
                books = books.repeat(AUTHOR_QUERY, AUTHOR_REPEATS);
            }
            vec![
                books,
                RequestTrace::new(seed + 1, "GET", "/api/authors/{id}")
                    .query("SELECT id, name FROM author WHERE id = $1"),
                RequestTrace::new(seed + 2, "GET", SCRIPT_ROUTE).query("SELECT 1"),
            ]
        };
        record(&(0..3).flat_map(|i| traces(100 + 10 * i, false)).collect::<Vec<_>>(), &before);
        record(&(0..3).flat_map(|i| traces(200 + 10 * i, true)).collect::<Vec<_>>(), &after);

        let report = support::read_report(&after);
        let books = support::endpoint(&report, "GET", "/api/books").expect("GET /api/books in the report");
        let offenders = support::items(books, "n_plus_one", "after report");
        assert_eq!(offenders.len(), 1, "one N+1 offender recorded: {books}");
        Recorded {
            before,
            after,
            fingerprint_id: offenders[0]["fingerprint_id"].as_str().expect("fingerprint_id").to_string(),
            fingerprint: offenders[0]["fingerprint"].as_str().expect("fingerprint").to_string(),
        }
    })
}

/// Starts the real binary, exports `traces` over OTLP/gRPC, stops it with SIGTERM and keeps its
/// report at `path`.
fn record(traces: &[RequestTrace], path: &Path) {
    let app = Apmtop::start(&["--grace", "0.2"]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    if !traces.is_empty() {
        runtime.block_on(async {
            let mut client = TraceServiceClient::connect(app.grpc_url()).await.expect("gRPC connect");
            client.export(batch(traces)).await.expect("export accepted");
        });
    }
    let (status, stderr, report, _dir) = app.stop_with(Signal::SIGTERM);
    assert!(status.success(), "apmtop exited with {status}; stderr:\n{stderr}");
    std::fs::copy(&report, path).expect("keep the report");
}

/// Runs `apmtop ARGS` to completion in `cwd`.
fn apmtop(cwd: &Path, args: &[&str]) -> Output {
    let mut command = assert_cmd::Command::new(env!("CARGO_BIN_EXE_apmtop"));
    command.current_dir(cwd).args(args).env_remove("RUST_LOG").timeout(COMMAND_TIMEOUT);
    command.output().expect("run apmtop")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited with a code")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn markdown_report_lists_the_n_plus_one_endpoint_with_its_fingerprint_in_a_code_block() {
    let recorded = recorded();
    let cwd = tempfile::tempdir().expect("cwd");
    let output = apmtop(cwd.path(), &["report", path(&recorded.after)]);
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    let markdown = stdout(&output);
    let section =
        &markdown[markdown.find("### N+1 queries").unwrap_or_else(|| panic!("no N+1 section:\n{markdown}"))..];
    assert!(
        section.contains(&format!("**`GET /api/books`** ({SERVICE}): runs up to **{AUTHOR_REPEATS}** times")),
        "{section}"
    );
    assert!(section.contains(&format!("Fingerprint `{}`", recorded.fingerprint_id)), "{section}");
    assert!(section.contains(&format!("```sql\n{}\n```", recorded.fingerprint)), "{section}");
    assert!(section.contains("Fix: "), "{section}");
    assert!(markdown.contains("`GET /<script>alert(1)</script>`"), "the route is code, not HTML:\n{markdown}");
}

#[test]
fn html_report_is_one_offline_file_with_charts_and_escaped_span_text() {
    let recorded = recorded();
    let cwd = tempfile::tempdir().expect("cwd");
    let output = apmtop(cwd.path(), &["report", path(&recorded.after), "--format", "html", "-o", "report.html"]);
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    assert!(output.stdout.is_empty(), "the page goes to the file only");
    let html = std::fs::read_to_string(cwd.path().join("report.html")).expect("report.html written");
    assert!(html.starts_with("<!DOCTYPE html>"));
    let endpoints = support::items(&support::read_report(&recorded.after), "endpoints", "after").len();
    assert_eq!(html.matches("<svg").count(), 2 * endpoints, "a latency and a queries chart per endpoint");
    assert_eq!(html.matches("<script").count(), 1, "only the page's own script");
    assert!(html.contains("GET /&lt;script&gt;alert(1)&lt;/script&gt;"), "the route shows as text");
    assert!(!html.contains(" src="), "nothing loaded from elsewhere");
    assert!(html.contains(&recorded.fingerprint_id));
}

#[test]
fn json_format_re_renders_the_report() {
    let recorded = recorded();
    let cwd = tempfile::tempdir().expect("cwd");
    let output = apmtop(cwd.path(), &["report", path(&recorded.after), "--format", "json"]);
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    let again: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    let original = support::read_report(&recorded.after);
    assert_eq!(again["apmtop_report"], 1);
    assert_eq!(again["endpoints"], original["endpoints"]);
}

#[test]
fn check_fails_on_the_n_plus_one_naming_endpoint_figure_and_budget() {
    let recorded = recorded();
    let cwd = tempfile::tempdir().expect("cwd");
    let output = apmtop(cwd.path(), &["check", path(&recorded.after), "--junit", "junit.xml"]);
    assert_eq!(code(&output), 1, "stdout: {}\nstderr: {}", stdout(&output), stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "apmtop check: no apmtop.toml found; default budget: no N+1 queries");
    let expected = format!(
        "FAIL GET /api/books [{SERVICE}]  n_plus_one: N+1 query {} runs up to {AUTHOR_REPEATS} times in one request (3 requests affected)",
        recorded.fingerprint_id
    );
    assert!(lines[1].starts_with(&expected), "{}\nexpected: {expected}", lines[1]);
    assert!(lines[1].ends_with("; budget: no N+1"), "{}", lines[1]);
    assert_eq!(
        lines.last().copied(),
        Some("apmtop check: failed: 1 violation in 1 endpoint (3 checks on 3 endpoints)")
    );

    let xml = std::fs::read_to_string(cwd.path().join("junit.xml")).expect("junit.xml written");
    let document = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("well-formed JUnit: {e}\n{xml}"));
    let failures: Vec<_> = document.descendants().filter(|n| n.has_tag_name("failure")).collect();
    assert_eq!(failures.len(), 1);
    let case = failures[0].parent().expect("testcase");
    assert_eq!(case.attribute("name"), Some(format!("n_plus_one: GET /api/books [{SERVICE}]").as_str()));
    assert!(xml.contains("n_plus_one: GET /&lt;script&gt;alert(1)&lt;/script&gt;"), "escaped in XML:\n{xml}");
}

#[test]
fn check_passes_when_the_config_in_the_working_directory_allows_the_offender() {
    let recorded = recorded();
    let cwd = tempfile::tempdir().expect("cwd");
    std::fs::write(
        cwd.path().join("apmtop.toml"),
        format!("[budgets]\nallow_n_plus_one = [\"{}\"]\nmax_queries_per_request = 30\n", recorded.fingerprint_id),
    )
    .expect("write config");
    let output = apmtop(cwd.path(), &["check", path(&recorded.after), "--junit", "junit.xml"]);
    assert_eq!(code(&output), 0, "stdout: {}\nstderr: {}", stdout(&output), stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("apmtop check: budgets from ./apmtop.toml\n"), "{text}");
    assert!(text.ends_with("apmtop check: ok: 6 checks on 3 endpoints, all budgets hold\n"), "{text}");
    let xml = std::fs::read_to_string(cwd.path().join("junit.xml")).expect("junit.xml written");
    let document = roxmltree::Document::parse(&xml).expect("well-formed");
    assert_eq!(document.root_element().attribute("failures"), Some("0"));
    assert_eq!(document.root_element().attribute("tests"), Some("6"));
}

#[test]
fn check_applies_route_globs_from_the_given_config() {
    let recorded = recorded();
    let cwd = tempfile::tempdir().expect("cwd");
    let config = cwd.path().join("budgets.toml");
    std::fs::write(&config, "[[routes]]\nmatch = \"GET /api/*\"\nmax_queries_per_request = 1\n").expect("write config");
    let output = apmtop(cwd.path(), &["check", path(&recorded.before), "--config", path(&config)]);
    assert_eq!(code(&output), 1, "stdout: {}\nstderr: {}", stdout(&output), stderr(&output));
    let text = stdout(&output);
    let fails: Vec<&str> = text.lines().filter(|l| l.starts_with("FAIL")).collect();
    // Only GET /api/books runs two queries; GET /api/authors/{id} runs one; the script route is not under /api.
    assert_eq!(
        fails,
        [format!(
            "FAIL GET /api/books [{SERVICE}]  max_queries_per_request: 2 queries in one request (median 2); budget: 1 (routes \"GET /api/*\")"
        )]
    );
}

#[test]
fn unusable_input_exits_2_with_a_clear_message() {
    let recorded = recorded();
    let cwd = tempfile::tempdir().expect("cwd");
    std::fs::write(cwd.path().join("other.json"), r#"{"name": "not a report"}"#).expect("write");
    std::fs::write(cwd.path().join("bad.toml"), "[budgets]\nmax_querys_per_request = 3\n").expect("write");
    // A real report of a run where no span arrived (an exporter pointed elsewhere).
    record(&[], &cwd.path().join("empty.json"));
    let cases: [(Vec<&str>, &str); 8] = [
        (vec!["check", "missing.json"], "cannot read the report missing.json"),
        (vec!["check", "other.json"], "other.json is not an apmtop report"),
        (
            vec!["check", path(&recorded.after), "--config", "bad.toml"],
            "bad.toml:2:1: unknown field `max_querys_per_request`",
        ),
        (vec!["check", path(&recorded.after), "--config", "missing.toml"], "cannot read the config missing.toml"),
        (vec!["check", "empty.json"], "empty.json has no requests, so no budget can be checked"),
        (vec!["report", "other.json", "--format", "html"], "other.json is not an apmtop report"),
        (vec!["diff", "missing.json", path(&recorded.after)], "cannot read the report missing.json"),
        (
            vec!["diff", path(&recorded.after), path(&recorded.after), "--tolerance=-5"],
            "invalid value '-5' for '--tolerance <PERCENT>': must be a percentage between 0 and 10000",
        ),
    ];
    for (args, message) in cases {
        let output = apmtop(cwd.path(), &args);
        assert_eq!(code(&output), 2, "{args:?}: stdout: {}\nstderr: {}", stdout(&output), stderr(&output));
        let err = stderr(&output);
        assert!(err.starts_with("apmtop: error: ") && err.contains(message), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn diff_shows_the_new_n_plus_one_and_fails_on_regression() {
    let recorded = recorded();
    let cwd = tempfile::tempdir().expect("cwd");
    let args = ["diff", path(&recorded.before), path(&recorded.after)];
    let output = apmtop(cwd.path(), &args);
    assert_eq!(code(&output), 0, "without --fail-on-regression a diff is information: {}", stderr(&output));
    let text = stdout(&output);
    let books = text.lines().find(|l| l.contains("GET /api/books")).unwrap_or_else(|| panic!("no books row:\n{text}"));
    assert!(books.starts_with("worse"), "{books}");
    assert!(books.contains(&format!("2 → {} (", AUTHOR_REPEATS + 2)), "queries per request went up: {books}");
    assert!(books.ends_with("1 new"), "{books}");
    let change =
        format!("  new    GET /api/books [{SERVICE}]  {}  up to {AUTHOR_REPEATS} per request", recorded.fingerprint_id);
    assert!(text.contains(&change), "{text}");

    let failing = apmtop(cwd.path(), &[&args[..], &["--fail-on-regression"]].concat());
    assert_eq!(code(&failing), 1, "{}", stdout(&failing));
    assert!(stdout(&failing).contains("apmtop diff: regression: 1 endpoint got worse"), "{}", stdout(&failing));

    let same = apmtop(cwd.path(), &["diff", path(&recorded.after), path(&recorded.after), "--fail-on-regression"]);
    assert_eq!(code(&same), 0, "{}", stdout(&same));
    assert!(stdout(&same).starts_with("No endpoint changed beyond 10%"), "{}", stdout(&same));

    let fixed = apmtop(cwd.path(), &["diff", path(&recorded.after), path(&recorded.before), "--fail-on-regression"]);
    assert_eq!(code(&fixed), 0, "fixing an N+1 is no regression: {}", stdout(&fixed));
    assert!(stdout(&fixed).contains(&format!("  gone   GET /api/books [{SERVICE}]  {}", recorded.fingerprint_id)));
}

/// A stand-in for the few DOM calls the report's sorting script makes, fed with one table read
/// from the page; it clicks the header named in argv and prints the first cell of each row.
const SORT_HARNESS: &str = r#"
const [tableJson, script, header, clicks] = process.argv.slice(1);
const spec = JSON.parse(tableJson);
function element(attrs) {
  const listeners = {};
  return {
    attrs: Object.assign({}, attrs),
    getAttribute(name) { return name in this.attrs ? this.attrs[name] : null; },
    setAttribute(name, value) { this.attrs[name] = String(value); },
    removeAttribute(name) { delete this.attrs[name]; },
    addEventListener(type, f) { listeners[type] = f; },
    fire(type, event) { listeners[type](event || {}); },
  };
}
const headers = spec.headers.map((h) => Object.assign(element({}), { text: h.text, classList: { contains: (c) => c === "num" && h.numeric } }));
const body = { rows: [], appendChild(row) { this.rows = this.rows.filter((r) => r !== row).concat([row]); } };
body.rows = spec.rows.map((cells) => ({ cells: cells.map((c) => Object.assign(element(c.value === null ? {} : { "data-value": c.value }), { textContent: c.text })) }));
const table = { tBodies: [body], querySelectorAll: () => headers };
global.document = { querySelectorAll: () => [table] };
eval(script);
const th = headers.find((h) => h.text === header);
for (let i = 0; i < Number(clicks); i++) th.fire("click");
console.log(JSON.stringify(body.rows.map((r) => r.cells[0].textContent)));
"#;

/// Headers and rows of the first sortable table in `section` of an HTML report, as JSON for
/// [`SORT_HARNESS`]: each cell's `data-value` (or null) and its text without tags.
fn table_json(html: &str, section: &str) -> String {
    let start = html.find(&format!("<section id=\"{section}\">")).expect("section");
    let table = &html[start..];
    let table = &table[table.find("<table class=\"sortable\">").expect("sortable table")..];
    let table = &table[..table.find("</table>").expect("closed table")];
    let strip = |cell: &str| {
        let mut text = String::new();
        let mut in_tag = false;
        for c in cell.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    };
    let head = table[..table.find("<tbody>").expect("tbody")].replace("<thead>", "");
    let headers: Vec<Value> = head
        .split("<th")
        .skip(1)
        .map(|th| {
            let th = &th[..th.find("</th>").expect("closed th")];
            serde_json::json!({ "numeric": th.starts_with(" class=\"num\""), "text": strip(&format!("<th{th}")) })
        })
        .collect();
    let body = &table[table.find("<tbody>").expect("tbody")..];
    let rows: Vec<Value> = body
        .split("<tr>")
        .skip(1)
        .map(|tr| {
            let cells: Vec<Value> = tr
                .split("<td")
                .skip(1)
                .map(|td| {
                    let td = &td[..td.find("</td>").expect("closed td")];
                    let value = td
                        .split_once("data-value=\"")
                        .map(|(_, rest)| strip(&rest[..rest.find('"').expect("quoted value")]));
                    serde_json::json!({ "value": value, "text": strip(&format!("<td{td}")) })
                })
                .collect();
            Value::Array(cells)
        })
        .collect();
    serde_json::json!({ "headers": headers, "rows": rows }).to_string()
}

#[test]
fn html_tables_sort_by_number_when_a_header_is_clicked() {
    if std::env::var_os("APMTOP_SKIP_APP_TESTS").is_some() {
        eprintln!("skipped: APMTOP_SKIP_APP_TESTS is set (this test runs the page's script in Node.js)");
        return;
    }
    let recorded = recorded();
    let cwd = tempfile::tempdir().expect("cwd");
    // Latencies whose text order (30ms, 500ms, 7.00ms) differs from their numeric order.
    let mut report = support::read_report(&recorded.after);
    for (endpoint, p95) in report["endpoints"].as_array_mut().expect("endpoints").iter_mut().zip([30.0, 500.0, 7.0]) {
        endpoint["latency_ms"]["p95"] = serde_json::json!(p95);
        endpoint["route"] = serde_json::json!(format!("/p95-{p95}"));
    }
    std::fs::write(cwd.path().join("r.json"), report.to_string()).expect("write report");
    let output = apmtop(cwd.path(), &["report", "r.json", "--format", "html"]);
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    let html = stdout(&output);
    let script = &html[html.find("<script>").expect("script") + "<script>".len()..html.find("</script>").expect("end")];
    let table = table_json(&html, "endpoints");
    let sorted = |clicks: &str| -> Vec<String> {
        let run = std::process::Command::new("node")
            .args(["-e", SORT_HARNESS, "--", &table, script, "p95", clicks])
            .output()
            .expect("node (Node.js 20+) on PATH; set APMTOP_SKIP_APP_TESTS=1 to skip");
        assert!(run.status.success(), "node failed: {}", String::from_utf8_lossy(&run.stderr));
        serde_json::from_slice(&run.stdout).expect("rows as JSON")
    };
    assert_eq!(sorted("1"), ["GET /p95-7", "GET /p95-30", "GET /p95-500"], "first click: ascending by number");
    assert_eq!(sorted("2"), ["GET /p95-500", "GET /p95-30", "GET /p95-7"], "second click: descending");
}
