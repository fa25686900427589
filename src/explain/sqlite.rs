//! The SQLite side: opens the file read-only, and inside one read transaction asks
//! `EXPLAIN QUERY PLAN` for each statement (parameters left unbound) and reads the catalog
//! (`pragma_table_info`, `pragma_index_list`, `pragma_index_info`).
//!
//! Nothing else is ever run: the connection is opened with `SQLITE_OPEN_READ_ONLY` and
//! `PRAGMA query_only`, every statement is prefixed with `EXPLAIN QUERY PLAN` (which compiles it
//! and describes the plan without running it), and a progress handler interrupts anything that
//! runs past the time limit. Blocking: call it from `spawn_blocking`.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::index::ExistingIndex;
use super::plan::{self, Plan, SqliteRow};
use super::{Catalog, TableInfo};

/// How long one statement may take (waiting for a lock included).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);

/// An open, read-only SQLite database.
pub struct Sqlite {
    connection: Connection,
}

/// Why the database could not be used at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the SQLite database {path}: {source}")]
pub struct OpenError {
    path: String,
    source: rusqlite::Error,
}

impl Sqlite {
    /// Opens `path` read-only (never creates it) and starts a read transaction.
    pub fn open(path: &Path) -> Result<Sqlite, OpenError> {
        let fail = |source| OpenError { path: path.display().to_string(), source };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags).map_err(fail)?;
        connection.busy_timeout(STATEMENT_TIMEOUT).map_err(fail)?;
        connection.execute_batch("PRAGMA query_only = ON; BEGIN").map_err(fail)?;
        // Reading the schema now tells a file that is not a database apart from a statement error.
        connection.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(())).map_err(fail)?;
        Ok(Sqlite { connection })
    }

    /// The plan of `sql` (placeholders as `?N`), never running it.
    pub fn explain(&self, sql: &str) -> Result<Plan, rusqlite::Error> {
        self.with_deadline(|| {
            let mut statement = self.connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            // Parameters stay unbound (NULL): the plan does not depend on their values.
            let mut rows = statement.raw_query();
            let mut steps = Vec::new();
            while let Some(row) = rows.next()? {
                steps.push(SqliteRow { id: row.get(0)?, parent: row.get(1)?, detail: row.get(3)? });
            }
            Ok(plan::from_sqlite(&steps))
        })
    }

    /// Columns and usable indexes of `table` (`None` when it does not exist).
    pub fn table(&self, table: &str) -> Result<Option<TableInfo>, rusqlite::Error> {
        self.with_deadline(|| {
            let bare = table.rsplit('.').next().unwrap_or(table);
            let mut statement = self.connection.prepare("SELECT name FROM pragma_table_info(?1)")?;
            let columns: Vec<String> =
                statement.query_map([bare], |row| row.get::<_, String>(0))?.collect::<Result<_, _>>()?;
            if columns.is_empty() {
                return Ok(None);
            }
            let mut list = self.connection.prepare("SELECT name, partial FROM pragma_index_list(?1)")?;
            let names: Vec<(String, bool)> =
                list.query_map([bare], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<_, _>>()?;
            let mut indexes = Vec::new();
            let mut info = self.connection.prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?;
            for (name, partial) in names {
                if partial {
                    continue;
                }
                // An expression key has no name: the index is usable up to it.
                let keys: Vec<Option<String>> = info.query_map([&name], |row| row.get(0))?.collect::<Result<_, _>>()?;
                let columns: Vec<String> = keys.into_iter().map_while(|k| k).collect();
                if !columns.is_empty() {
                    indexes.push(ExistingIndex { name, columns });
                }
            }
            Ok(Some(TableInfo { sql_name: super::index::quote(bare), name: bare.to_string(), columns, indexes }))
        })
    }

    /// Catalog entries of every table in `tables` that exists.
    pub fn catalog(&self, tables: &[String]) -> Result<Catalog, rusqlite::Error> {
        let mut catalog = Catalog::default();
        for table in tables {
            if let Some(info) = self.table(table)? {
                catalog.insert(table.clone(), info);
            }
        }
        Ok(catalog)
    }

    /// Runs `work` with a progress handler that interrupts it after [`STATEMENT_TIMEOUT`].
    fn with_deadline<T>(&self, work: impl FnOnce() -> Result<T, rusqlite::Error>) -> Result<T, rusqlite::Error> {
        let deadline = Instant::now() + STATEMENT_TIMEOUT;
        self.connection.progress_handler(1000, Some(move || Instant::now() > deadline))?;
        let result = work();
        self.connection.progress_handler(0, None::<fn() -> bool>)?;
        result
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        let _ = self.connection.execute_batch("ROLLBACK");
    }
}
