//! The ORM + driver twin case from a real app: `tests/fixtures/sqlalchemy_twins_otlp.pb`, recorded
//! once from `tests/apps/sqlalchemy_twins/app.py` (SQLAlchemy and sqlite3 instrumentation both
//! on, so every query is exported twice with the same statement), replayed into apmtop over
//! OTLP/HTTP. Each query counts once, the N+1 keeps its exact repeat count, and no twin pair is
//! called a duplicate.

use serde_json::Value;

use crate::receive::post;
use crate::support::{self, Apmtop};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sqlalchemy_twins_otlp.pb");
const AUTHOR_BY_ID: &str =
    "SELECT author.id AS author_id, author.name AS author_name \nFROM author \nWHERE author.id = ?";

fn calls_of(report: &Value, statement: &str) -> u64 {
    support::items(report, "queries", "report")
        .iter()
        .filter(|q| q["statement"] == statement)
        .map(|q| q["calls"].as_u64().expect("calls"))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlalchemy_with_driver_instrumentation_counts_each_query_once() {
    let apmtop = Apmtop::start(&["--grace", "0.2"]);
    let body = std::fs::read(FIXTURE).expect("fixture");
    let answer = post(&apmtop.http_url(), "/v1/traces", "application/x-protobuf", None, body).await;
    assert_eq!(answer.status(), 200);
    let report = apmtop.stop();

    // 2 x /books/ (1 + 8, plus SQLAlchemy's PRAGMA on the first connection) + 2 x /books/fixed/ (1).
    assert_eq!(report["totals"]["requests"], 4);
    assert_eq!(report["totals"]["queries"], 21, "twins counted once: {:#}", report["queries"]);
    assert_eq!(calls_of(&report, AUTHOR_BY_ID), 16);

    let books = support::endpoint(&report, "GET", "/books/").expect("GET /books/");
    assert_eq!(books["requests"], 2);
    assert_eq!(books["queries_per_request"]["max"], 10.0);
    assert_eq!(books["queries_per_request"]["mean"], 9.5);
    // SQLAlchemy's `connect` span, one per pool checkout (so per request), is not a query.
    assert_eq!(books["connection_spans"], 2);
    let offenders = support::items(books, "n_plus_one", "GET /books/");
    assert_eq!(offenders.len(), 1, "{books:#}");
    assert_eq!(offenders[0]["tables"], serde_json::json!(["author"]));
    assert_eq!(offenders[0]["repeats"]["max"], 8);
    assert_eq!(offenders[0]["repeats"]["p50"], 8);
    assert_eq!(offenders[0]["requests_affected"], 2);

    let fixed = support::endpoint(&report, "GET", "/books/fixed/").expect("GET /books/fixed/");
    assert_eq!(fixed["requests"], 2);
    assert_eq!(fixed["queries_per_request"]["max"], 1.0);
    assert!(support::items(fixed, "n_plus_one", "fixed").is_empty(), "{fixed:#}");

    for endpoint in support::items(&report, "endpoints", "report") {
        assert!(support::items(endpoint, "duplicates", "endpoint").is_empty(), "a twin is no duplicate: {endpoint:#}");
    }
}
