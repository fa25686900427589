//! `--explain DB` end to end: the real binary receives traces whose statements run against a real
//! SQLite file or a real PostgreSQL server (started by the test), asks that database for the
//! plans, and writes `missing_index` findings with the exact `CREATE INDEX` into the report. After
//! the proposed index is created, a second run finds nothing. Writes seen in the traces are
//! explained, never run; an unusable database is a warning, never a lost report.

use std::path::{Path, PathBuf};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use serde_json::Value;
use tonic::transport::Endpoint;

use crate::otlp_payloads::{RequestTrace, batch};
use crate::pg_server::{self, PgServer};
use crate::support::{Apmtop, items};

/// Upper bound for any single export call.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The filter on a column without an index.
const BY_EMAIL: &str = "SELECT id, name FROM users WHERE email = ?";
const BY_EMAIL_INDEX: &str = "CREATE INDEX idx_users_email ON users (email);";
/// Filter plus ORDER BY: the composite index.
const RECENT_ORDERS: &str = "SELECT id, total FROM orders WHERE user_id = ? ORDER BY created_at DESC LIMIT 20";
const RECENT_ORDERS_INDEX: &str = "CREATE INDEX idx_orders_user_id_created_at ON orders (user_id, created_at);";
/// Writes that would change the data if they were run.
const DELETE_SESSIONS: &str = "DELETE FROM sessions WHERE token = ?";
const DELETE_SESSIONS_INDEX: &str = "CREATE INDEX idx_sessions_token ON sessions (token);";
const RENAME_USERS: &str = "UPDATE users SET name = 'renamed by a trace' WHERE email = ?";
/// Never explained: not a SELECT, UPDATE or DELETE.
const INSERT_SESSION: &str = "INSERT INTO sessions (token) VALUES ('from a trace')";

const SCHEMA: &str = "
    CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL);
    CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, total INTEGER NOT NULL,
                         created_at INTEGER NOT NULL);
    CREATE TABLE sessions (id INTEGER PRIMARY KEY, token TEXT NOT NULL);
    INSERT INTO users (email, name) VALUES ('ada@example.com', 'Ada'), ('alan@example.com', 'Alan');
    INSERT INTO orders (user_id, total, created_at) VALUES (1, 10, 100), (1, 20, 200), (2, 5, 300);
    INSERT INTO sessions (token) VALUES ('t1'), ('t2');";

/// The statements' rows, to prove that nothing the traces carry was run.
const ROWS: &str = "SELECT (SELECT count(*) FROM sessions) || ' sessions, names ' || \
    (SELECT group_concat(name, ',') FROM (SELECT name FROM users ORDER BY id))";
const ROWS_BEFORE: &str = "2 sessions, names Ada,Alan";

/// Traces from two endpoints whose queries carry `statements` (placeholders as `?` rewritten by
/// `placeholder`), with `db_system`.
fn traces(db_system: &str, placeholder: fn(&str) -> String) -> Vec<RequestTrace> {
    let mut traces = Vec::new();
    for seed in 0..3u64 {
        let mut users = RequestTrace::new(1000 + seed, "GET", "/users/{id}")
            .duration_ms(200)
            .query_ms(20)
            .query(&placeholder(BY_EMAIL))
            .query(&placeholder(RENAME_USERS))
            .query(&placeholder(DELETE_SESSIONS))
            .query(INSERT_SESSION);
        users.db_system = db_system.to_string();
        let mut orders = RequestTrace::new(2000 + seed, "GET", "/orders")
            .duration_ms(100)
            .query_ms(30)
            .query(&placeholder(RECENT_ORDERS));
        orders.db_system = db_system.to_string();
        traces.push(users);
        traces.push(orders);
    }
    traces
}

async fn send(app: &Apmtop, traces: &[RequestTrace]) {
    let channel = Endpoint::from_shared(app.grpc_url())
        .expect("endpoint url")
        .connect_timeout(Duration::from_secs(10))
        .timeout(CLIENT_TIMEOUT)
        .connect()
        .await
        .expect("gRPC connect");
    let response = TraceServiceClient::new(channel).export(batch(traces)).await.expect("export accepted").into_inner();
    assert!(response.partial_success.is_none(), "{response:?}");
}

/// Runs the binary with `--explain db`, sends the traces, stops it and returns the report and
/// stderr.
async fn run(db: &str, traces: &[RequestTrace]) -> (Value, String) {
    let app = Apmtop::start(&["--explain", db, "--grace", "0.2"]);
    send(&app, traces).await;
    let (status, stderr, path, _dir) = app.stop_with(nix::sys::signal::Signal::SIGINT);
    assert!(status.success(), "apmtop exited with {status}; stderr:\n{stderr}");
    (crate::support::read_report(&path), stderr)
}

/// The report's `missing_index` findings as `(statement, rule, proposed_index)`, sorted.
fn missing_indexes(report: &Value) -> Vec<(String, String, String)> {
    let text = |f: &Value, key: &str| f[key].as_str().unwrap_or_default().to_string();
    let mut found: Vec<(String, String, String)> = items(report, "findings", "report")
        .iter()
        .filter(|f| f["category"] == "missing_index")
        .map(|f| (text(f, "statement"), text(f, "rule"), text(f, "proposed_index")))
        .collect();
    found.sort();
    found
}

/// The finding about `statement`, checked for the fields every missing-index finding has.
fn finding_for<'a>(report: &'a Value, statement: &str) -> &'a Value {
    let findings = items(report, "findings", "report");
    let finding = findings
        .iter()
        .find(|f| f["category"] == "missing_index" && f["statement"] == statement)
        .unwrap_or_else(|| panic!("no missing_index finding for {statement:?}: {findings:#?}"));
    let query = items(report, "queries", "report")
        .iter()
        .find(|q| q["statement"] == statement)
        .unwrap_or_else(|| panic!("no query entry for {statement:?}"));
    assert_eq!(finding["fingerprint_id"], query["fingerprint_id"]);
    assert_eq!(finding["cost_ms_total"], query["time_ms_total"], "the cost is the shape's total time");
    assert!(finding["plan"].as_str().is_some_and(|p| !p.is_empty()), "{finding:#}");
    assert!(finding["evidence"].as_str().is_some_and(|e| e.contains("most an index could save")), "{finding:#}");
    finding
}

fn expected(placeholder: fn(&str) -> String) -> Vec<(String, String, String)> {
    let mut expected = vec![
        (placeholder(BY_EMAIL), "full_scan_filter".to_string(), BY_EMAIL_INDEX.to_string()),
        (placeholder(RENAME_USERS), "full_scan_filter".to_string(), BY_EMAIL_INDEX.to_string()),
        (placeholder(DELETE_SESSIONS), "full_scan_filter".to_string(), DELETE_SESSIONS_INDEX.to_string()),
        (placeholder(RECENT_ORDERS), "full_scan_filter".to_string(), RECENT_ORDERS_INDEX.to_string()),
    ];
    expected.sort();
    expected
}

// ---------------------------------------------------------------------------------------------
// SQLite
// ---------------------------------------------------------------------------------------------

fn sqlite_file(dir: &Path) -> PathBuf {
    let path = dir.join("shop.db");
    rusqlite::Connection::open(&path).expect("create SQLite file").execute_batch(SCHEMA).expect("schema");
    path
}

fn sqlite_rows(path: &Path) -> String {
    rusqlite::Connection::open(path).expect("open").query_row(ROWS, [], |row| row.get(0)).expect("rows")
}

fn question_marks(statement: &str) -> String {
    statement.to_string()
}

#[tokio::test]
async fn sqlite_missing_indexes_are_confirmed_by_the_plan_and_gone_once_created() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sqlite_file(dir.path());
    let db_arg = db.to_str().expect("utf-8 path");
    let traces = traces("sqlite", question_marks);

    let (report, stderr) = run(db_arg, &traces).await;
    assert_eq!(missing_indexes(&report), expected(question_marks), "stderr:\n{stderr}");
    let by_email = finding_for(&report, BY_EMAIL);
    assert_eq!(by_email["plan"], "SCAN users");
    assert_eq!(by_email["endpoint"]["route"], "/users/{id}");
    let orders = finding_for(&report, RECENT_ORDERS);
    assert_eq!(orders["plan"], "SCAN orders\nUSE TEMP B-TREE FOR ORDER BY");
    assert_eq!(orders["endpoint"]["route"], "/orders");
    assert_eq!(sqlite_rows(&db), ROWS_BEFORE, "the UPDATE, DELETE and INSERT were never run");

    let connection = rusqlite::Connection::open(&db).expect("open");
    for index in [BY_EMAIL_INDEX, RECENT_ORDERS_INDEX, DELETE_SESSIONS_INDEX] {
        connection.execute_batch(index).expect("create the proposed index");
    }
    drop(connection);
    let (report, stderr) = run(db_arg, &traces).await;
    assert_eq!(missing_indexes(&report), [], "stderr:\n{stderr}");
    assert_eq!(items(&report, "queries", "report").len(), 5, "the rest of the report is unaffected");
}

#[tokio::test]
async fn findings_reach_the_live_snapshot_not_only_the_final_report() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sqlite_file(dir.path());
    let app = Apmtop::start(&["--explain", db.to_str().expect("utf-8"), "--grace", "0.2", "--report-every", "0.5"]);
    send(&app, &traces("sqlite", question_marks)).await;
    // The periodic report is written from the live snapshot: wait for the explain task's findings.
    let deadline = std::time::Instant::now() + crate::support::PROCESS_TIMEOUT;
    let found = loop {
        let report = std::fs::read_to_string(&app.report_path).ok().and_then(|t| serde_json::from_str(&t).ok());
        let found = report.as_ref().map(missing_indexes).unwrap_or_default();
        if found.len() == expected(question_marks).len() || std::time::Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(found, expected(question_marks), "stderr:\n{}", app.stderr());
    let report = app.stop();
    assert_eq!(missing_indexes(&report), expected(question_marks));
}

#[tokio::test]
async fn sqlite_problems_are_one_warning_each_and_the_report_is_still_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sqlite_file(dir.path());
    let mut missing = RequestTrace::new(3000, "GET", "/reports").query("SELECT * FROM reports WHERE owner = ?");
    missing.db_system = "sqlite".to_string();
    let (report, stderr) = run(db.to_str().expect("utf-8"), &[missing.clone()]).await;
    assert_eq!(missing_indexes(&report), []);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("no such table: reports")).collect();
    assert_eq!(warnings.len(), 1, "one warning for the missing table; stderr:\n{stderr}");
    assert!(warnings[0].contains("WARN") && warnings[0].contains("not explained"), "{}", warnings[0]);

    let not_a_database = dir.path().join("notes.txt");
    std::fs::write(&not_a_database, "this is not a SQLite database, just some text in a file").expect("write");
    let (report, stderr) = run(not_a_database.to_str().expect("utf-8"), &[missing]).await;
    assert_eq!(items(&report, "queries", "report").len(), 1, "the report is written; stderr:\n{stderr}");
    assert!(stderr.contains("--explain: cannot open the SQLite database"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

/// The same schema in PostgreSQL.
const PG_SCHEMA: &str = "
    CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, name text NOT NULL);
    CREATE TABLE orders (id serial PRIMARY KEY, user_id int NOT NULL, total int NOT NULL, created_at bigint NOT NULL);
    CREATE TABLE sessions (id serial PRIMARY KEY, token text NOT NULL);
    INSERT INTO users (email, name) VALUES ('ada@example.com', 'Ada'), ('alan@example.com', 'Alan');
    INSERT INTO orders (user_id, total, created_at) VALUES (1, 10, 100), (1, 20, 200), (2, 5, 300);
    INSERT INTO sessions (token) VALUES ('t1'), ('t2');";

/// A started server, or `None` (with the reason printed) when PostgreSQL is not installed and
/// `APMTOP_REQUIRE_PG` is not set.
fn postgres(database: &str) -> Option<PgServer> {
    if !pg_server::installed() && std::env::var_os(pg_server::REQUIRE_ENV).is_none() {
        eprintln!(
            "SKIPPED: PostgreSQL server binaries are not installed (apt-get install postgresql); set {}=1 to fail instead",
            pg_server::REQUIRE_ENV
        );
        return None;
    }
    Some(PgServer::start(database).unwrap_or_else(|e| panic!("{e}")))
}

async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
}

async fn pg_rows(client: &tokio_postgres::Client) -> String {
    let sql = "SELECT (SELECT count(*) FROM sessions) || ' sessions, names ' || \
        (SELECT string_agg(name, ',' ORDER BY id) FROM users)";
    client.query_one(sql, &[]).await.expect("rows").get(0)
}

/// psycopg's `%s` for the first two, `$n` for the others: both are rewritten for the server.
fn pg_placeholders(statement: &str) -> String {
    if statement == BY_EMAIL || statement == RENAME_USERS {
        statement.replace('?', "%s")
    } else {
        statement.replace('?', "$1")
    }
}

#[tokio::test]
async fn postgres_missing_indexes_are_confirmed_by_the_plan_and_gone_once_created() {
    let Some(server) = postgres("apmtop_explain") else { return };
    let client = pg_client(&server.url()).await;
    client.batch_execute(PG_SCHEMA).await.expect("schema");
    let traces = traces("postgresql", pg_placeholders);

    let (report, stderr) = run(&server.url(), &traces).await;
    assert_eq!(missing_indexes(&report), expected(pg_placeholders), "stderr:\n{stderr}");
    let by_email = finding_for(&report, &pg_placeholders(BY_EMAIL));
    assert_eq!(by_email["plan"], "Seq Scan on users  Filter: (users.email = $1)");
    let orders = finding_for(&report, &pg_placeholders(RECENT_ORDERS));
    assert_eq!(
        orders["plan"],
        "Seq Scan on orders  Filter: (orders.user_id = $1)\nSort  Sort Key: orders.created_at DESC"
    );
    let version: i32 =
        client.query_one("SELECT current_setting('server_version_num')::int", &[]).await.expect("version").get(0);
    let method = if version >= 160_000 { "EXPLAIN (GENERIC_PLAN)" } else { "PREPARE and EXPLAIN EXECUTE" };
    assert!(by_email["evidence"].as_str().is_some_and(|e| e.contains(method)), "{by_email:#}");
    assert_eq!(pg_rows(&client).await, ROWS_BEFORE, "the UPDATE, DELETE and INSERT were never run");

    for index in [BY_EMAIL_INDEX, RECENT_ORDERS_INDEX, DELETE_SESSIONS_INDEX] {
        client.batch_execute(index).await.expect("create the proposed index");
    }
    let (report, stderr) = run(&server.url(), &traces).await;
    assert_eq!(missing_indexes(&report), [], "stderr:\n{stderr}");
    assert_eq!(items(&report, "queries", "report").len(), 5, "the rest of the report is unaffected");
    drop(client);
    server.stop();
}

#[tokio::test]
async fn postgres_writes_are_never_run_and_missing_tables_or_databases_are_warnings() {
    let Some(server) = postgres("apmtop_explain_ro") else { return };
    let client = pg_client(&server.url()).await;
    client.batch_execute(PG_SCHEMA).await.expect("schema");
    // A statement that would fail when run (and delete rows before failing, in a writable one).
    let mut trace = RequestTrace::new(4000, "POST", "/purge")
        .query("DELETE FROM sessions WHERE token = $1 AND 1 / (id - id) = 1")
        .query("SELECT * FROM invoices WHERE customer = $1");
    trace.db_system = "postgresql".to_string();
    let (report, stderr) = run(&server.url(), &[trace]).await;
    assert_eq!(pg_rows(&client).await, ROWS_BEFORE);
    let found = missing_indexes(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].2, DELETE_SESSIONS_INDEX);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("relation \"invoices\" does not exist")).collect();
    assert_eq!(warnings.len(), 1, "stderr:\n{stderr}");

    // Refused at connection (a database or a role that does not exist, as a wrong password
    // would be): one warning, and the report is written.
    for (user, database, refusal) in [
        ("postgres", "no_such_database", "database \"no_such_database\" does not exist"),
        ("nobody", "apmtop_explain_ro", "role \"nobody\" does not exist"),
    ] {
        let url = format!("postgresql://{user}@127.0.0.1:{}/{database}", server.port);
        let (report, stderr) = run(&url, &traces("postgresql", pg_placeholders)).await;
        assert_eq!(items(&report, "queries", "report").len(), 5, "stderr:\n{stderr}");
        let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("--explain: cannot connect")).collect();
        assert_eq!(warnings.len(), 1, "stderr:\n{stderr}");
        assert!(warnings[0].contains(refusal), "{}", warnings[0]);
    }
    drop(client);
    server.stop();
}

// ---------------------------------------------------------------------------------------------
// Unusable databases
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_unreachable_server_is_one_warning_and_the_report_is_still_written() {
    let port = crate::app_process::free_port();
    let url = format!("postgresql://postgres@127.0.0.1:{port}/shop");
    let (report, stderr) = run(&url, &traces("postgresql", pg_placeholders)).await;
    assert_eq!(items(&report, "queries", "report").len(), 5, "stderr:\n{stderr}");
    assert_eq!(missing_indexes(&report), []);
    let warnings: Vec<&str> =
        stderr.lines().filter(|l| l.contains("--explain: cannot connect to PostgreSQL")).collect();
    assert_eq!(warnings.len(), 1, "stderr:\n{stderr}");
    assert!(warnings[0].contains(&format!("127.0.0.1:{port}")), "{}", warnings[0]);
}

#[rstest::rstest]
#[case::missing_file("/no/such/dir/app.db", "cannot open the SQLite database /no/such/dir/app.db")]
#[case::other_database("mysql://root@127.0.0.1/shop", "mysql:// databases are not supported")]
#[case::tls("postgres://app@127.0.0.1/shop?sslmode=require", "TLS (sslmode=require) is not supported yet")]
#[case::bad_url("postgres://app@127.0.0.1:port/shop", "not a valid PostgreSQL URL")]
fn bad_explain_values_exit_2_with_one_line(#[case] value: &str, #[case] message: &str) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_apmtop"))
        .args(["--headless", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--explain", value])
        .env_remove("RUST_LOG")
        .output()
        .expect("run apmtop");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr:\n{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(message) && stderr.contains("--explain"), "{stderr}");
}
