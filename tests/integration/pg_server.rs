//! A throwaway PostgreSQL server for the tests that need one (`tests/apps/pg_server.sh`):
//! started on a free port of 127.0.0.1 in its own temp dir, stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::app_process;

/// Set to `1` to fail, instead of skipping, the tests that need PostgreSQL when it is not
/// installed.
pub const REQUIRE_ENV: &str = "APMTOP_REQUIRE_PG";

/// A running server; stopped on drop.
pub struct PgServer {
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// The database created at start.
    pub database: String,
    running: bool,
    // Dropped after `drop` has stopped the server.
    dir: tempfile::TempDir,
}

/// Whether PostgreSQL's server binaries are installed (Debian's layout, or `APMTOP_PG_BIN`).
pub fn installed() -> bool {
    if let Some(bin) = std::env::var_os("APMTOP_PG_BIN") {
        return Path::new(&bin).join("initdb").exists();
    }
    std::fs::read_dir("/usr/lib/postgresql")
        .map(|versions| versions.flatten().any(|v| v.path().join("bin/initdb").exists()))
        .unwrap_or(false)
}

impl PgServer {
    /// `pg_server.sh start DIR PORT DB`: initdb, start, create `database`. Tries three free
    /// ports, in case another test takes the port between our check and the server's bind.
    pub fn start(database: &str) -> Result<PgServer, String> {
        let mut errors = String::new();
        for _ in 0..3 {
            // Directly under the system temp dir: the server's own user must be able to reach it.
            let dir = tempfile::Builder::new().prefix("apmtop-pg-").tempdir().expect("temp dir for PostgreSQL");
            let port = app_process::free_port();
            let output = Command::new("bash")
                .arg(script())
                .arg("start")
                .arg(dir.path())
                .arg(port.to_string())
                .arg(database)
                .stdin(Stdio::null())
                .output()
                .expect("run tests/apps/pg_server.sh");
            // From here on, drop stops whatever part of the server did start.
            let server = PgServer { port, database: database.to_string(), running: true, dir };
            if output.status.success() {
                return Ok(server);
            }
            errors.push_str(&format!("port {port}: {}\n{}", output.status, String::from_utf8_lossy(&output.stderr)));
        }
        Err(format!("could not start PostgreSQL:\n{errors}"))
    }

    /// The superuser's URL of the database.
    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{}", self.port, self.database)
    }

    /// Stops the server, failing the test if it does not stop.
    pub fn stop(mut self) {
        if let Err(message) = self.stop_server() {
            panic!("{message}");
        }
    }

    fn stop_server(&mut self) -> Result<(), String> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        let output = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("could not run pg_server.sh stop: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!("pg_server.sh stop failed ({}):\n{}", output.status, String::from_utf8_lossy(&output.stderr)))
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Err(message) = self.stop_server() {
            eprintln!("{message}");
        }
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/pg_server.sh")
}
