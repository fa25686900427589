//! Fix hints: one sentence that names what fixes a finding, in the ORMs of the service's
//! language (`telemetry.sdk.language`), with the table and column taken from the statement.

use super::fingerprint::Fingerprint;

/// How the common ORMs of a language load related rows in one query.
fn eager_loading(language: Option<&str>) -> &'static str {
    match language {
        Some("python") => {
            "Django select_related() (foreign keys) or prefetch_related() (reverse and many-to-many), SQLAlchemy selectinload()/joinedload()"
        }
        Some("ruby") => "Rails includes(:association) (or preload/eager_load)",
        Some("java") | Some("kotlin") => "a JPA/Hibernate JOIN FETCH or @EntityGraph, or @BatchSize on the association",
        Some("nodejs") | Some("javascript") | Some("typescript") => {
            "Prisma include, Sequelize include, TypeORM relations/leftJoinAndSelect, or knex whereIn"
        }
        Some("dotnet") => "EF Core Include()/ThenInclude()",
        Some("php") => "Laravel with() or a Doctrine fetch join",
        Some("go") => "one query with WHERE ... = ANY($1) / IN (...) and a map lookup",
        _ => {
            "Django select_related/prefetch_related, Rails includes, SQLAlchemy selectinload/joinedload, JPA JOIN FETCH, EF Core Include"
        }
    }
}

fn bulk_insert(language: Option<&str>) -> &'static str {
    match language {
        Some("python") => "Django bulk_create() or SQLAlchemy session.add_all()/executemany",
        Some("ruby") => "Rails insert_all/upsert_all",
        Some("java") | Some("kotlin") => "JDBC batching (hibernate.jdbc.batch_size) or a multi-row INSERT",
        Some("nodejs") | Some("javascript") | Some("typescript") => {
            "Prisma createMany, Sequelize bulkCreate or knex batchInsert"
        }
        Some("dotnet") => "EF Core AddRange() with one SaveChanges()",
        _ => "Django bulk_create, Rails insert_all, SQLAlchemy add_all, JDBC batching",
    }
}

fn quoted(name: Option<&String>, fallback: &str) -> String {
    name.map_or_else(|| fallback.to_string(), |n| format!("`{n}`"))
}

/// "Many ids in one query", in the form that reads best for the database: PostgreSQL drivers pass
/// an array to `= ANY($1)`; elsewhere an `IN (...)` list.
fn many_ids(column: &str, db_system: &str) -> String {
    if db_system == "postgresql" {
        format!("WHERE {column} = ANY($1) (or IN (...))")
    } else {
        format!("WHERE {column} IN (...)")
    }
}

/// The fix for an N+1 group of this shape, run on `db_system` by a service in `language`.
pub fn n_plus_one_hint(fingerprint: &Fingerprint, language: Option<&str>, db_system: &str) -> String {
    let table = quoted(fingerprint.tables.first(), "the same table");
    let column = fingerprint.filter_columns.first().map_or("id", String::as_str);
    let many = many_ids(column, db_system);
    match fingerprint.operation.as_deref() {
        Some("INSERT") | Some("REPLACE") => format!(
            "Rows are inserted into {table} one at a time: insert them in one statement ({}, or a multi-row INSERT ... VALUES).",
            bulk_insert(language)
        ),
        Some("UPDATE") => format!(
            "Rows of {table} are updated one at a time: update them in one statement (a bulk update such as Django QuerySet.update()/bulk_update() or Rails update_all, or UPDATE ... {many})."
        ),
        Some("DELETE") => format!(
            "Rows of {table} are deleted one at a time: delete them in one statement (DELETE ... {many}, Django QuerySet.delete(), Rails delete_all)."
        ),
        _ => format!(
            "{table} is queried once per row of a loop: load those rows together with {}, or in one query with a JOIN or {many}.",
            eager_loading(language)
        ),
    }
}

/// The fix for a query repeated with identical values.
pub fn duplicate_hint(fingerprint: &Fingerprint) -> String {
    let table = quoted(fingerprint.tables.first(), "this table");
    format!(
        "The same query on {table} runs with the same values more than once per request: run it once and reuse the result (a variable, a cached property, or a per-request cache)."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::fingerprint::fingerprint;

    #[test]
    fn select_hint_names_table_and_python_orms() {
        let fp = fingerprint("SELECT * FROM app_author WHERE id = %s LIMIT 21", "sqlite");
        let hint = n_plus_one_hint(&fp, Some("python"), "sqlite");
        assert!(hint.contains("`app_author`"), "{hint}");
        assert!(hint.contains("select_related"), "{hint}");
        assert!(hint.contains("IN (...)"), "{hint}");
    }

    #[test]
    fn insert_hint_suggests_bulk_insert() {
        let fp = fingerprint("INSERT INTO events (a, b) VALUES ($1, $2)", "postgresql");
        let hint = n_plus_one_hint(&fp, Some("ruby"), "postgresql");
        assert!(hint.contains("insert_all"), "{hint}");
    }

    #[test]
    fn postgresql_gets_the_array_form() {
        let fp = fingerprint("SELECT * FROM authors WHERE id = $1", "postgresql");
        let hint = n_plus_one_hint(&fp, Some("nodejs"), "postgresql");
        assert!(hint.contains("WHERE id = ANY($1)"), "{hint}");
    }

    #[test]
    fn unknown_language_names_several_orms() {
        let fp = fingerprint("SELECT * FROM users WHERE id = ?", "");
        let hint = n_plus_one_hint(&fp, None, "");
        assert!(hint.contains("select_related") && hint.contains("includes") && hint.contains("selectinload"));
    }
}
