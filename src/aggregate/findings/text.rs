//! The words of a finding: when it is reported, its title, the evidence with its figures, and the
//! fix hint, worded for the service's language and ORMs like `analyze::hint`.

use super::{EndpointTally, FindingEntry, HUGE_RESPONSE_BYTES, severity};
use crate::analyze::fingerprint::Fingerprint;
use crate::analyze::shapes::{self, rule};
use crate::analyze::{Category, hint};
use crate::snapshot::FindingSnapshot;

fn ms(ns: u64) -> f64 {
    (ns as f64 / 1_000.0).round() / 1_000.0
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn kb(bytes: u64) -> String {
    format!("{:.1} kB", bytes as f64 / 1000.0)
}

fn percent(share: f64) -> String {
    format!("{:.0} %", share * 100.0)
}

fn times(n: u64) -> String {
    if n == 1 { "once".to_string() } else { format!("{n} times") }
}

/// Findings that hold only when they happen on (almost) every request: a `COUNT(*)` on every
/// request, a new connection on at least half of them. Others are reported whenever found.
pub(super) fn is_reported(entry: &FindingEntry, tally: &EndpointTally) -> bool {
    match (entry.category, entry.rule.as_str()) {
        (Category::SlowQueryShape, rule::COUNT_PER_REQUEST) => entry.requests_affected >= tally.requests,
        (Category::ConnectionChurn, _) => entry.requests_affected * 2 >= tally.requests,
        _ => true,
    }
}

/// The snapshot of one finding.
pub(super) fn finding(id: u64, entry: &FindingEntry, tally: &EndpointTally) -> FindingSnapshot {
    let cost_total = ms(entry.cost_ns);
    let per_request = if entry.requests_affected == 0 { 0.0 } else { cost_total / entry.requests_affected as f64 };
    let share = if tally.latency_ns == 0 { 0.0 } else { (entry.cost_ns as f64 / tally.latency_ns as f64).min(1.0) };
    let (title, evidence) = title_and_evidence(entry, tally, per_request, share);
    FindingSnapshot {
        id: format!("{id:016x}"),
        severity: severity(per_request, share).to_string(),
        category: entry.category.code().to_string(),
        rule: entry.rule.clone(),
        endpoint: Some(tally.endpoint.clone()),
        title,
        evidence,
        fingerprint_id: entry.fingerprint_id.map(|id| format!("{id:016x}")),
        fingerprint: entry.fingerprint.clone(),
        statement: entry.example.statement.clone(),
        requests_affected: entry.requests_affected,
        cost_ms_per_request: round3(per_request),
        cost_ms_total: cost_total,
        example_trace_id: entry.example.trace_id.clone(),
        code_location: entry.example.code_location.clone(),
        plan: None,
        proposed_index: None,
        hint: entry.hint.clone(),
        count_total: entry.count_total,
        count_max: entry.count_max,
        value_max: (entry.figure_max > 0).then_some(entry.figure_max),
    }
}

fn title_and_evidence(entry: &FindingEntry, tally: &EndpointTally, per_request: f64, share: f64) -> (String, String) {
    let n = entry.requests_affected;
    let of = format!("{n} of {} requests", tally.requests);
    let cost = format!("{per_request:.2} ms per affected request, {} of the endpoint's time", percent(share));
    let subject = entry.subject.as_str();
    let system = entry.system.as_str();
    match (entry.category, entry.rule.as_str()) {
        (Category::NPlusOne, _) => (
            format!("N+1: one query per item on {}", first_table(entry)),
            format!("The same query shape ran up to {} times in one request ({of}); {cost}.", entry.count_max),
        ),
        (Category::MnPlusOne, _) => (
            format!("Loop of {} queries per item ({})", entry.figure_max, first_table(entry)),
            format!(
                "A sequence of {} queries repeated up to {} in one request ({of}); the loop's queries take {cost}.",
                entry.figure_max,
                times(entry.count_max)
            ),
        ),
        (Category::DuplicateQuery, _) => (
            format!("Duplicate query on {}", first_table(entry)),
            format!(
                "The same statement with the same values ran up to {} in one request ({of}); the repeats take {cost}.",
                times(entry.count_max)
            ),
        ),
        (Category::SlowQueryShape, rule::LEADING_WILDCARD_LIKE) => (
            format!("LIKE with a leading wildcard on {}", first_table(entry)),
            format!(
                "The pattern starts with % or _, so no B-tree index can serve it: every row is read. {} executions ({of}); {cost}.",
                entry.count_total
            ),
        ),
        (Category::SlowQueryShape, rule::UNBOUNDED_SELECT) => (
            format!("SELECT without LIMIT on {}", first_table(entry)),
            format!("Returned up to {} rows in one execution ({of}); {cost}.", entry.figure_max),
        ),
        (Category::SlowQueryShape, rule::LARGE_OFFSET) => (
            format!("Deep OFFSET pagination on {}", first_table(entry)),
            format!(
                "OFFSET up to {}: the database reads and throws away that many rows first ({of}); {cost}.",
                entry.figure_max
            ),
        ),
        (Category::SlowQueryShape, rule::COUNT_PER_REQUEST) => (
            format!("COUNT(*) on every request on {}", first_table(entry)),
            format!("Counts the table on each of the {} requests; {cost}.", tally.requests),
        ),
        (Category::SlowQueryShape, rule::FUNCTION_ON_FILTERED_COLUMN) => {
            let call = entry.detail.as_deref().unwrap_or("a function");
            (
                format!("Function on a filtered column: {call}"),
                format!("WHERE compares {call}, so a plain index on the column cannot be used ({of}); {cost}."),
            )
        }
        (Category::SlowQueryShape, _) => (
            format!("SELECT * on {}", first_table(entry)),
            format!(
                "Every column is read and sent ({of}); its cost depends on the table's width and is counted as 0. {} executions.",
                entry.count_total
            ),
        ),
        (Category::BlockingOutgoingCalls, protocol) => {
            let sequential = if entry.figure_max >= 2 {
                format!("; up to {} calls ran one after another", entry.figure_max)
            } else {
                String::new()
            };
            let kind = match protocol {
                "rpc" => format!("{system} calls"),
                "messaging" => format!("{system} sends"),
                _ => "HTTP calls".to_string(),
            };
            (
                format!("Blocking {kind} to {subject}"),
                format!(
                    "{} calls in {of} (up to {} in one request{sequential}); the request waits {cost}.",
                    entry.count_total, entry.count_max
                ),
            )
        }
        (Category::RowByRowWrite, operation) => (
            format!("Row-by-row {} on {}", operation.to_uppercase(), first_table(entry)),
            format!(
                "The same {} ran up to {} in one request ({of}); {cost}.",
                operation.to_uppercase(),
                times(entry.count_max)
            ),
        ),
        (Category::CacheCalls, _) => (
            format!("Many {system} calls per request"),
            format!("Up to {} cache calls in one request ({of}); {cost}.", entry.count_max),
        ),
        (Category::RepeatedCacheGet, _) => (
            format!("Cache key read repeatedly: {subject}"),
            format!(
                "The same key was read up to {} in one request ({of}); the repeats take {cost}.",
                times(entry.count_max)
            ),
        ),
        (Category::ConnectionChurn, _) => (
            format!("New {system} connection on every request"),
            format!("{} new connections in {of}; connecting takes {cost}.", entry.count_total),
        ),
        (Category::HugeResponse, _) => (String::new(), String::new()),
    }
}

fn first_table(entry: &FindingEntry) -> String {
    let tables = entry.detail.as_deref().filter(|_| entry.category == Category::MnPlusOne);
    match (tables, &entry.fingerprint) {
        (Some(tables), _) => tables.to_string(),
        (None, Some(text)) => table_in(text).unwrap_or_else(|| "a table".to_string()),
        (None, None) => "a table".to_string(),
    }
}

/// The first table named after `FROM`, `INTO` or `UPDATE` in a normalized statement.
fn table_in(text: &str) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let at = words.iter().position(|w| matches!(*w, "FROM" | "INTO" | "UPDATE"))?;
    let name = words.get(at + 1)?.trim_matches(|c: char| c == '"' || c == '`' || c == '[' || c == ']' || c == '(');
    Some(name.trim_end_matches(['"', '`', ']', ',', ')']).to_string())
}

/// The huge-response finding of an endpoint, when its p95 response is above the threshold (more
/// than 5 % of its sized responses are).
pub(super) fn huge_response(tally: &EndpointTally) -> Option<FindingSnapshot> {
    if tally.huge_responses == 0 || tally.huge_responses * 20 <= tally.sized_responses {
        return None;
    }
    let id = super::finding_id(Category::HugeResponse, "", &tally.endpoint, "");
    let cost_total = ms(tally.huge_app_ns);
    let per_request = cost_total / tally.huge_responses as f64;
    let share = if tally.latency_ns == 0 { 0.0 } else { (tally.huge_app_ns as f64 / tally.latency_ns as f64).min(1.0) };
    let mean = tally.response_bytes / tally.sized_responses.max(1);
    let request = if tally.request_bytes_max > 0 {
        format!(" Request bodies up to {}.", kb(tally.request_bytes_max))
    } else {
        String::new()
    };
    Some(FindingSnapshot {
        id: format!("{id:016x}"),
        severity: severity(per_request, share).to_string(),
        category: Category::HugeResponse.code().to_string(),
        rule: String::new(),
        endpoint: Some(tally.endpoint.clone()),
        title: format!("Huge responses: up to {}", kb(tally.response_bytes_max)),
        evidence: format!(
            "{} of {} responses are above {} (p95 above the threshold); mean {}, largest {}. Building and sending them takes up to {per_request:.2} ms per request outside the database, {} of the endpoint's time.{request}",
            tally.huge_responses,
            tally.sized_responses,
            kb(HUGE_RESPONSE_BYTES),
            kb(mean),
            kb(tally.response_bytes_max),
            percent(share)
        ),
        requests_affected: tally.huge_responses,
        cost_ms_per_request: round3(per_request),
        cost_ms_total: cost_total,
        example_trace_id: tally.huge_example.trace_id.clone(),
        code_location: tally.huge_example.code_location.clone(),
        hint: huge_response_hint(tally.language.as_deref()),
        count_total: tally.huge_responses,
        count_max: 1,
        value_max: Some(tally.response_bytes_max),
        ..Default::default()
    })
}

fn huge_response_hint(language: Option<&str>) -> String {
    let paginate = match language {
        Some("python") => {
            "Django REST framework pagination (PageNumberPagination, CursorPagination) or Django's Paginator"
        }
        Some("ruby") => "kaminari/pagy pagination",
        Some("java") | Some("kotlin") => "a Spring Data Pageable",
        Some("nodejs") | Some("javascript") | Some("typescript") => "take/skip or cursor pagination in the ORM",
        Some("dotnet") => "Skip()/Take() or a cursor",
        _ => "page-number or cursor pagination",
    };
    format!(
        "Send a page at a time ({paginate}), leave out fields the client does not use, or stream the body; compress it (gzip) if the client accepts it."
    )
}

/// The fix for a finding, from its category and rule, the query shape and the language.
pub(super) fn hint(
    category: Category,
    rule: &str,
    fingerprint: Option<&Fingerprint>,
    language: Option<&str>,
    system: &str,
) -> String {
    let table =
        fingerprint.and_then(|f| f.tables.first()).map_or_else(|| "the table".to_string(), |t| format!("`{t}`"));
    match category {
        Category::NPlusOne | Category::RowByRowWrite | Category::MnPlusOne => match fingerprint {
            Some(fingerprint) => {
                let hint = hint::n_plus_one_hint(fingerprint, language, system);
                if category == Category::MnPlusOne {
                    format!("Each item of a loop runs several queries. {hint} Do it for every query of the loop.")
                } else {
                    hint
                }
            }
            None => String::new(),
        },
        Category::DuplicateQuery => fingerprint.map(hint::duplicate_hint).unwrap_or_default(),
        Category::SlowQueryShape => shape_hint(rule, &table, fingerprint, language, system),
        Category::BlockingOutgoingCalls => {
            let concurrent = match language {
                Some("python") => "asyncio.gather or a thread pool",
                Some("nodejs") | Some("javascript") | Some("typescript") => "Promise.all",
                Some("java") | Some("kotlin") => "CompletableFuture.allOf or a reactive client",
                Some("go") => "goroutines and an errgroup",
                Some("dotnet") => "Task.WhenAll",
                _ => "concurrent calls",
            };
            let background = match language {
                Some("python") => "a Celery/RQ task",
                Some("ruby") => "a Sidekiq/Active Job job",
                Some("java") | Some("kotlin") => "an @Async method or a queue consumer",
                _ => "a background job",
            };
            format!(
                "The request waits for these calls: cache their responses, move them to {background} when the response does not need them, run independent calls together ({concurrent}), and give each a short timeout."
            )
        }
        Category::CacheCalls => format!(
            "Read keys together (one MGET or pipeline, {}) instead of one call per item, and keep values you need again for the rest of the request.",
            if language == Some("python") { "Django cache.get_many()" } else { "get_many/mget in the client" }
        ),
        Category::RepeatedCacheGet => {
            "The same key is read again within one request: read it once and keep the value (a local variable or a per-request memo).".to_string()
        }
        Category::ConnectionChurn => match language {
            Some("python") => "Each request opens a new database connection: keep connections (Django CONN_MAX_AGE, or the connection pool of Django 5.1+ / SQLAlchemy's pool) or put PgBouncer in front.".to_string(),
            Some("nodejs") | Some("javascript") | Some("typescript") => "Each request opens a new database connection: create one pool at start-up (pg.Pool, mysql2.createPool) and query through it.".to_string(),
            Some("java") | Some("kotlin") => "Each request opens a new database connection: use a pool (HikariCP) instead of DriverManager.".to_string(),
            Some("ruby") => "Each request opens a new database connection: keep the ActiveRecord pool (do not call establish_connection per request).".to_string(),
            _ => "Each request opens a new database connection: use a connection pool or persistent connections (or PgBouncer).".to_string(),
        },
        Category::HugeResponse => huge_response_hint(language),
    }
}

fn shape_hint(
    rule: &str,
    table: &str,
    fingerprint: Option<&Fingerprint>,
    language: Option<&str>,
    system: &str,
) -> String {
    match rule {
        shapes::rule::LEADING_WILDCARD_LIKE => {
            let index = if system == "postgresql" {
                format!(
                    "a trigram index (CREATE EXTENSION pg_trgm; CREATE INDEX ... ON {table} USING gin (column gin_trgm_ops))"
                )
            } else if system == "mysql" || system == "mariadb" {
                "a FULLTEXT index with MATCH ... AGAINST".to_string()
            } else {
                "a full-text index (SQLite FTS5, PostgreSQL pg_trgm or tsvector)".to_string()
            };
            let orm = match language {
                Some("python") => {
                    " (Django: __istartswith for prefix search, or SearchVector/TrigramSimilarity from django.contrib.postgres)"
                }
                Some("ruby") => " (Rails: pg_search, or a prefix LIKE 'term%')",
                _ => "",
            };
            format!(
                "A pattern that starts with a wildcard scans every row of {table}: search by prefix when that is enough, or use {index}{orm}."
            )
        }
        shapes::rule::UNBOUNDED_SELECT => format!(
            "Load a page of {table} at a time ({}), or stream the rows, instead of the whole result.",
            match language {
                Some("python") => "Django Paginator or queryset[:n], SQLAlchemy .limit()",
                Some("ruby") => "Rails .limit / kaminari / pagy",
                Some("java") | Some("kotlin") => "a Spring Data Pageable or setMaxResults",
                _ => "LIMIT with keyset pagination",
            }
        ),
        shapes::rule::LARGE_OFFSET => format!(
            "Use keyset (cursor) pagination on {table}: WHERE id > the last id seen ORDER BY id LIMIT n, which reads only the page{}.",
            if language == Some("python") { " (Django REST framework CursorPagination)" } else { "" }
        ),
        shapes::rule::COUNT_PER_REQUEST => format!(
            "Counting {table} on every request reads the whole table: use cursor pagination without a total, cache the count, or keep a denormalized counter."
        ),
        shapes::rule::FUNCTION_ON_FILTERED_COLUMN => {
            let call = fingerprint.and_then(|f| f.facts.function_on_filter.as_deref()).unwrap_or("the expression");
            format!(
                "Index the expression itself (CREATE INDEX ... ON {table} ({call})), or store the value already normalized (a citext column in PostgreSQL) and compare the column directly."
            )
        }
        _ => format!(
            "Select only the columns the code uses ({}).",
            match language {
                Some("python") => "Django only()/values(), SQLAlchemy load_only()",
                Some("ruby") => "Rails select(:a, :b) / pluck",
                Some("java") | Some("kotlin") => "a JPA projection or DTO query",
                _ => "name them in the SELECT list",
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_read_from_normalized_statements() {
        assert_eq!(table_in(r#"SELECT "a"."id" FROM "library_book" WHERE x = ?"#).as_deref(), Some("library_book"));
        assert_eq!(table_in("INSERT INTO notes (a) VALUES (?)").as_deref(), Some("notes"));
        assert_eq!(table_in("SELECT 1"), None);
    }

    #[test]
    fn severity_follows_share_and_cost_per_request() {
        assert_eq!(severity(1.0, 0.30), "high");
        assert_eq!(severity(600.0, 0.01), "high");
        assert_eq!(severity(1.0, 0.06), "medium");
        assert_eq!(severity(60.0, 0.0), "medium");
        assert_eq!(severity(1.0, 0.01), "low");
    }

    #[test]
    fn hints_are_worded_for_the_language_and_database() {
        let like = crate::analyze::fingerprint::fingerprint("SELECT id FROM book WHERE title LIKE '%x%'", "postgresql");
        let text =
            hint(Category::SlowQueryShape, rule::LEADING_WILDCARD_LIKE, Some(&like), Some("python"), "postgresql");
        assert!(text.contains("pg_trgm") && text.contains("__istartswith"), "{text}");
        let churn = hint(Category::ConnectionChurn, "", None, Some("python"), "postgresql");
        assert!(churn.contains("CONN_MAX_AGE"), "{churn}");
        let calls = hint(Category::BlockingOutgoingCalls, "http", None, Some("nodejs"), "");
        assert!(calls.contains("Promise.all"), "{calls}");
    }
}
