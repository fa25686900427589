//! The explainer end to end against a real SQLite file: shapes in, findings out.

use super::*;
use crate::snapshot::{EndpointSnapshot, Summary};

const SCHEMA: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT, created_at INT);
    CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INT, status TEXT, total INT, created_at INT);
    INSERT INTO users (email, name, created_at) VALUES ('a@example.com', 'A', 1), ('b@example.com', 'B', 2);";

fn database(schema: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("app.db");
    let connection = rusqlite::Connection::open(&path).expect("create SQLite file");
    connection.execute_batch(schema).expect("schema");
    (dir, path)
}

fn shape(id: &str, statement: &str, time_ms_total: f64) -> QuerySnapshot {
    QuerySnapshot {
        fingerprint: statement.to_string(),
        fingerprint_id: id.to_string(),
        db_system: "sqlite".to_string(),
        tables: Vec::new(),
        statement: statement.to_string(),
        calls: 10,
        latency_ms: Summary::default(),
        time_ms_total,
        endpoints: vec!["GET /users".to_string()],
        endpoint_refs: vec![endpoint_ref("/users")],
        parsed: true,
    }
}

fn endpoint_ref(route: &str) -> EndpointRef {
    EndpointRef { service: "shop".into(), method: "GET".into(), route: route.into() }
}

fn snapshot(queries: Vec<QuerySnapshot>) -> Snapshot {
    let endpoint = EndpointSnapshot {
        service: "shop".into(),
        method: "GET".into(),
        route: "/users".into(),
        requests: 4,
        errors: 0,
        // 800 ms in all: a 40 ms shape is 5 % of it, `medium` by the one severity rule.
        latency_ms: Summary { mean: 200.0, ..Summary::default() },
        queries_per_request: Summary::default(),
        db_time_ms: Summary { mean: 5.0, ..Summary::default() },
        db_time_share: 0.5,
        connection_spans: 0,
        n_plus_one: Vec::new(),
        duplicates: Vec::new(),
        slowest: Vec::new(),
        latency_histogram: Vec::new(),
        queries_histogram: Vec::new(),
        folded_endpoints: None,
    };
    Snapshot { queries, endpoints: vec![endpoint], ..Snapshot::default() }
}

async fn findings(path: &std::path::Path, queries: Vec<QuerySnapshot>) -> Vec<FindingSnapshot> {
    let mut explainer = Explainer::new(Target::Sqlite(path.to_path_buf()));
    explainer.pass(&snapshot(queries)).await
}

#[tokio::test]
async fn a_filtered_full_scan_gets_a_finding_with_the_index_and_plan() {
    let (_dir, path) = database(SCHEMA);
    let found = findings(&path, vec![shape("00000000000000aa", "SELECT * FROM users WHERE email = ?", 40.0)]).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    let finding = &found[0];
    assert_eq!(finding.category, "missing_index");
    assert_eq!(finding.rule, "full_scan_filter");
    assert_eq!(finding.proposed_index.as_deref(), Some("CREATE INDEX idx_users_email ON users (email);"));
    assert_eq!(finding.plan.as_deref(), Some("SCAN users"));
    assert_eq!(finding.fingerprint_id.as_deref(), Some("00000000000000aa"));
    assert_eq!(finding.endpoint, Some(endpoint_ref("/users")));
    assert_eq!(finding.cost_ms_total, 40.0);
    assert_eq!(finding.requests_affected, 4);
    assert_eq!(finding.severity, "medium");
    assert!(finding.evidence.contains("most an index could save"), "{}", finding.evidence);
    assert_eq!(finding.id.len(), 16);
}

#[tokio::test]
async fn filter_and_order_by_get_the_composite_and_an_existing_index_silences_it() {
    let (_dir, path) = database(SCHEMA);
    let statement = "SELECT id, total FROM orders o WHERE o.user_id = :user ORDER BY o.created_at DESC LIMIT 20";
    let found = findings(&path, vec![shape("01", statement, 12.0)]).await;
    assert_eq!(
        found[0].proposed_index.as_deref(),
        Some("CREATE INDEX idx_orders_user_id_created_at ON orders (user_id, created_at);")
    );
    assert_eq!(found[0].plan.as_deref(), Some("SCAN o\nUSE TEMP B-TREE FOR ORDER BY"));

    rusqlite::Connection::open(&path)
        .expect("open")
        .execute_batch("CREATE INDEX idx_orders_user_id_created_at ON orders (user_id, created_at)")
        .expect("create the proposed index");
    assert!(findings(&path, vec![shape("01", statement, 12.0)]).await.is_empty());
}

#[tokio::test]
async fn an_order_by_alone_is_a_sort_finding() {
    let (_dir, path) = database(SCHEMA);
    let found = findings(&path, vec![shape("02", "SELECT * FROM users ORDER BY created_at LIMIT 10", 5.0)]).await;
    assert_eq!(found[0].rule, "full_scan_sort");
    assert_eq!(found[0].proposed_index.as_deref(), Some("CREATE INDEX idx_users_created_at ON users (created_at);"));
    assert_eq!(found[0].severity, "low");
}

#[tokio::test]
async fn index_searches_and_unfiltered_reads_are_fine() {
    let (_dir, path) = database(SCHEMA);
    let queries = vec![
        shape("03", "SELECT * FROM users WHERE id = ?", 50.0),
        shape("04", "SELECT count(*) FROM users", 50.0),
        shape("05", "SELECT * FROM orders o JOIN users u ON u.id = o.user_id", 50.0),
    ];
    assert!(findings(&path, queries).await.is_empty());
}

#[tokio::test]
async fn updates_and_deletes_are_explained_without_running() {
    let (_dir, path) = database(SCHEMA);
    let queries = vec![
        shape("06", "DELETE FROM users WHERE email = 'a@example.com'", 30.0),
        shape("07", "UPDATE users SET name = 'changed' WHERE email = ?", 20.0),
        shape("08", "INSERT INTO users (email) VALUES ('c@example.com')", 10.0),
    ];
    let found = findings(&path, queries).await;
    let rules: Vec<(&str, Option<&str>)> =
        found.iter().map(|f| (f.fingerprint_id.as_deref().unwrap_or(""), f.proposed_index.as_deref())).collect();
    let index = Some("CREATE INDEX idx_users_email ON users (email);");
    assert_eq!(rules, [("06", index), ("07", index)]);
    let connection = rusqlite::Connection::open(&path).expect("open");
    let rows: Vec<(String, String)> = connection
        .prepare("SELECT email, name FROM users ORDER BY id")
        .expect("prepare")
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(rows, [("a@example.com".into(), "A".into()), ("b@example.com".into(), "B".into())]);
}

#[tokio::test]
async fn a_missing_table_or_a_second_statement_is_not_a_finding_and_not_an_error() {
    let (_dir, path) = database(SCHEMA);
    let queries = vec![
        shape("09", "SELECT * FROM no_such_table WHERE a = ?", 30.0),
        shape("0a", "SELECT * FROM users WHERE email = ?; DROP TABLE users", 30.0),
        shape("0b", "SELECT * FROM users WHERE name = ?", 1.0),
    ];
    let mut explainer = Explainer::new(Target::Sqlite(path.clone()));
    let found = explainer.pass(&snapshot(queries)).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].fingerprint_id.as_deref(), Some("0b"));
    assert!(matches!(explainer.cache["09"].outcome, Outcome::Failed(ref m) if m.contains("no such table")));
    assert!(matches!(explainer.cache["0a"].outcome, Outcome::Skipped(ref m) if m.contains("more than one statement")));
    let tables: i64 = rusqlite::Connection::open(&path)
        .expect("open")
        .query_row("SELECT count(*) FROM sqlite_schema WHERE name = 'users'", [], |row| row.get(0))
        .expect("count");
    assert_eq!(tables, 1);
}

#[tokio::test]
async fn only_shapes_of_this_database_and_the_slowest_are_explained() {
    let (_dir, path) = database(SCHEMA);
    let mut other = shape("0c", "SELECT * FROM users WHERE email = ?", 1000.0);
    other.db_system = "postgresql".into();
    let mut queries = vec![other];
    for i in 0..TOP_SHAPES + 5 {
        queries.push(shape(&format!("{i:02}"), "SELECT * FROM users WHERE name = ?", i as f64));
    }
    let mut explainer = Explainer::new(Target::Sqlite(path));
    let found = explainer.pass(&snapshot(queries)).await;
    assert_eq!(found.len(), TOP_SHAPES);
    assert_eq!(found[0].cost_ms_total, (TOP_SHAPES + 4) as f64, "most costly first");
    assert!(!explainer.cache.contains_key("0c"));
    assert!(!explainer.cache.contains_key("00"), "the cheapest shapes are left out");
}

#[test]
fn targets_are_checked_at_start_up() {
    let (_dir, path) = database(SCHEMA);
    assert!(matches!(Target::parse(path.to_str().expect("utf-8")), Ok(Target::Sqlite(_))));
    assert!(matches!(Target::parse("postgres://app@127.0.0.1:5432/shop"), Ok(Target::Postgres(_))));
    assert!(matches!(Target::parse("postgresql://127.0.0.1/shop?sslmode=disable"), Ok(Target::Postgres(_))));
    let errors = [
        Target::parse("/no/such/file.db").expect_err("missing file"),
        Target::parse("mysql://root@localhost/shop").expect_err("other scheme"),
        Target::parse("postgres://app@127.0.0.1/shop?sslmode=require").expect_err("TLS"),
        Target::parse("postgres://app@127.0.0.1:notaport/shop").expect_err("bad URL"),
        Target::parse(_dir.path().to_str().expect("utf-8")).expect_err("a directory"),
    ];
    for error in errors {
        assert!(!error.contains('\n') && !error.is_empty(), "{error:?}");
    }
}

#[test]
fn merged_findings_replace_the_previous_explain_findings_and_stay_ranked() {
    let other =
        FindingSnapshot { id: "n1".into(), category: "n_plus_one".into(), cost_ms_total: 50.0, ..Default::default() };
    let old = FindingSnapshot {
        id: "old".into(),
        category: CATEGORY.into(),
        rule: RULE_FILTER.into(),
        cost_ms_total: 10.0,
        ..Default::default()
    };
    let fresh = FindingSnapshot { id: "new".into(), cost_ms_total: 80.0, ..old.clone() };
    let mut findings = vec![other, old];
    merge_findings(&mut findings, &[fresh]);
    let ids: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["new", "n1"]);
}
