//! The PostgreSQL side: one connection (plain TCP; TLS is not supported yet), and per statement
//! one `READ ONLY` transaction with a statement timeout, in which the plan is asked for and
//! rolled back.
//!
//! How the plan is obtained without running the statement or binding its parameters:
//! - PostgreSQL 16 and later: `EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON) <statement>`.
//! - Older servers: `PREPARE` the statement (parameter types inferred from context),
//!   `SET LOCAL plan_cache_mode = force_generic_plan`, `EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE`
//!   it with `NULL` for every parameter (the generic plan ignores the values; `EXPLAIN` without
//!   `ANALYZE` runs nothing), then `DEALLOCATE`.
//!
//! The session itself is set to `default_transaction_read_only` with a `statement_timeout`, so the
//! catalog reads (our own parameterized queries) are read-only and time-limited too. Statements
//! are sent with the simple-query protocol after the placeholder rewriter and the parser have made
//! sure they are exactly one statement.

use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, NoTls, SimpleQueryMessage};

use super::index::{ExistingIndex, quote};
use super::plan::{self, Plan};
use super::{Catalog, TableInfo};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// `statement_timeout` of every transaction.
const STATEMENT_TIMEOUT: &str = "2s";
/// The prepared statement's name on servers before 16.
const PREPARED: &str = "apmtop_explain";
/// Most parameters a PostgreSQL statement can have.
const MAX_PARAMS: usize = 65_535;
/// First server version with `EXPLAIN (GENERIC_PLAN)`.
const GENERIC_PLAN_VERSION: u32 = 160_000;

/// How the plan was obtained (said in the finding's evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `EXPLAIN (GENERIC_PLAN)`, PostgreSQL 16+.
    GenericPlan,
    /// `PREPARE` + `force_generic_plan` + `EXPLAIN EXECUTE`, before 16.
    PreparedGeneric,
}

impl Method {
    /// A short description for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Method::GenericPlan => "EXPLAIN (GENERIC_PLAN)",
            Method::PreparedGeneric => {
                "PREPARE and EXPLAIN EXECUTE of the forced generic plan, as the server is older than 16"
            }
        }
    }
}

/// A URL or connection string that cannot be used.
pub fn check_url(url: &str) -> Result<Config, String> {
    let config: Config = url.parse().map_err(|e| format!("not a valid PostgreSQL URL: {e}"))?;
    if config.get_ssl_mode() == SslMode::Require {
        return Err("TLS (sslmode=require) is not supported yet; use a plain connection on a trusted network".into());
    }
    Ok(config)
}

/// A connected server.
pub struct Postgres {
    client: Client,
    method: Method,
    /// Server version, `server_version_num`.
    pub version: u32,
}

/// Connecting failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to PostgreSQL at {target}: {message}")]
pub struct ConnectError {
    target: String,
    message: String,
}

impl Postgres {
    /// Connects (no TLS; `sslmode=prefer` falls back to a plain connection).
    pub async fn connect(config: &Config) -> Result<Postgres, ConnectError> {
        let mut config = config.clone();
        config.ssl_mode(SslMode::Disable);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("apmtop --explain");
        let target = describe_target(&config);
        let fail = |error: tokio_postgres::Error| ConnectError { target: target.clone(), message: error_text(&error) };
        let (client, connection) = config.connect(NoTls).await.map_err(fail)?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error_text(&error), "explain connection closed");
            }
        });
        // Everything this session runs, the catalog reads included, is read-only and time-limited.
        let session = format!(
            "SET default_transaction_read_only = on; SET statement_timeout = '{STATEMENT_TIMEOUT}'; \
             SET lock_timeout = '{STATEMENT_TIMEOUT}'"
        );
        client.batch_execute(&session).await.map_err(fail)?;
        let row = client.query_one("SELECT current_setting('server_version_num')::int", &[]).await.map_err(fail)?;
        let version = u32::try_from(row.get::<_, i32>(0)).unwrap_or(0);
        let method = if version >= GENERIC_PLAN_VERSION { Method::GenericPlan } else { Method::PreparedGeneric };
        Ok(Postgres { client, method, version })
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// How plans are obtained on this server.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The generic plan of `sql` (one statement, placeholders `$1..$params`), never running it.
    pub async fn explain(&self, sql: &str, params: usize) -> Result<Plan, String> {
        let script = explain_script(self.method, sql, params)?;
        let result = self.client.simple_query(&script).await;
        // Whatever happened, end the transaction and drop the prepared statement (PREPARE is not
        // undone by a rollback).
        let cleanup = match self.method {
            Method::GenericPlan => "ROLLBACK",
            Method::PreparedGeneric => "ROLLBACK; DEALLOCATE ALL",
        };
        if let Err(error) = self.client.batch_execute(cleanup).await {
            tracing::debug!(error = %error_text(&error), "explain cleanup failed");
        }
        let messages = result.map_err(|e| error_text(&e))?;
        let json = messages
            .iter()
            .rev()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(row) => row.get(0),
                _ => None,
            })
            .ok_or_else(|| "EXPLAIN returned no plan".to_string())?;
        plan::from_postgres_json(json).map_err(|e| e.to_string())
    }

    /// Columns and usable indexes of each of `tables` (names as written in the statement) that
    /// exists, read from the catalog in a read-only transaction.
    pub async fn catalog(&self, tables: &[String]) -> Result<Catalog, String> {
        let mut catalog = Catalog::default();
        for table in tables {
            let regclass =
                table.split('.').map(|part| format!("\"{}\"", part.replace('"', "\"\""))).collect::<Vec<_>>().join(".");
            let rows = self
                .client
                .query(
                    "SELECT n.nspname, c.relname, a.attname FROM pg_class c \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
                     WHERE c.oid = to_regclass($1) ORDER BY a.attnum",
                    &[&regclass],
                )
                .await
                .map_err(|e| error_text(&e))?;
            let Some(first) = rows.first() else { continue };
            let schema: String = first.get(0);
            let name: String = first.get(1);
            let columns = rows.iter().map(|row| row.get::<_, String>(2)).collect();
            // Key columns (not INCLUDE ones) of valid, non-partial indexes without expressions.
            let index_rows = self
                .client
                .query(
                    "SELECT i.relname, array_agg(a.attname ORDER BY k.ord) \
                     FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
                     CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                     JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum \
                     WHERE x.indrelid = to_regclass($1) AND x.indisvalid AND x.indpred IS NULL \
                       AND x.indexprs IS NULL AND k.ord <= x.indnkeyatts \
                     GROUP BY i.relname ORDER BY i.relname",
                    &[&regclass],
                )
                .await
                .map_err(|e| error_text(&e))?;
            let indexes =
                index_rows.iter().map(|row| ExistingIndex { name: row.get(0), columns: row.get(1) }).collect();
            let sql_name =
                if schema == "public" { quote(&name) } else { format!("{}.{}", quote(&schema), quote(&name)) };
            catalog.insert(table.clone(), TableInfo { sql_name, name, columns, indexes });
        }
        Ok(catalog)
    }
}

/// The simple-query script that plans `sql` in a read-only transaction with a timeout, by
/// `method`. The caller rolls back (and deallocates) afterwards, whatever happened.
fn explain_script(method: Method, sql: &str, params: usize) -> Result<String, String> {
    if params > MAX_PARAMS {
        return Err(format!("it has {params} parameters; PostgreSQL allows {MAX_PARAMS}"));
    }
    let begin = format!(
        "BEGIN READ ONLY; SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'; \
         SET LOCAL lock_timeout = '{STATEMENT_TIMEOUT}'; "
    );
    Ok(match method {
        Method::GenericPlan => format!("{begin}EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON) {sql}"),
        Method::PreparedGeneric => {
            let arguments = if params == 0 { String::new() } else { format!("({})", vec!["NULL"; params].join(", ")) };
            format!(
                "{begin}SET LOCAL plan_cache_mode = force_generic_plan; PREPARE {PREPARED} AS {sql}; \
                 EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE {PREPARED}{arguments}"
            )
        }
    })
}

/// `user@host:port/db` for messages (never the password).
fn describe_target(config: &Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_string());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or("");
    format!("{user}@{host}:{port}/{db}")
}

/// The server's message when there is one (with its detail), else the error and its source.
pub fn error_text(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return db.message().to_string();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_16_asks_for_the_generic_plan_directly() {
        let script = explain_script(Method::GenericPlan, "SELECT * FROM t WHERE a = $1", 1).expect("script");
        assert_eq!(
            script,
            "BEGIN READ ONLY; SET LOCAL statement_timeout = '2s'; SET LOCAL lock_timeout = '2s'; \
             EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON) SELECT * FROM t WHERE a = $1"
        );
    }

    #[test]
    fn older_servers_prepare_and_explain_the_forced_generic_plan_with_nulls() {
        let script = explain_script(Method::PreparedGeneric, "SELECT * FROM t WHERE a = $1 AND b = $2", 2).expect("ok");
        assert!(script.starts_with("BEGIN READ ONLY; SET LOCAL statement_timeout = '2s';"), "{script}");
        assert!(script.contains("SET LOCAL plan_cache_mode = force_generic_plan; PREPARE apmtop_explain AS SELECT"));
        assert!(script.ends_with("EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE apmtop_explain(NULL, NULL)"), "{script}");
        let script = explain_script(Method::PreparedGeneric, "SELECT * FROM t", 0).expect("ok");
        assert!(script.ends_with("EXECUTE apmtop_explain"), "{script}");
    }

    #[test]
    fn too_many_parameters_are_refused() {
        assert!(explain_script(Method::PreparedGeneric, "SELECT $70000", 70_000).is_err());
    }

    #[test]
    fn tls_urls_are_refused_and_plain_ones_accepted() {
        assert!(check_url("postgresql://u@127.0.0.1/db?sslmode=require").is_err());
        assert!(check_url("postgresql://u:secret@127.0.0.1:5433/db").is_ok());
        let config = check_url("postgres://app:secret@db.internal:6543/shop").expect("ok");
        let target = describe_target(&config);
        assert_eq!(target, "app@db.internal:6543/shop");
        assert!(!target.contains("secret"));
    }
}
