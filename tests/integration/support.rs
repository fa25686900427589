//! Starting the real `apmtop` binary on free ports, stopping it, and reading its report.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a test waits for the binary to start or to stop before failing.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `apmtop --headless` with both listeners on free ports.
pub struct Apmtop {
    child: Child,
    /// `HOST:PORT` of the gRPC listener.
    pub grpc: String,
    /// `HOST:PORT` of the OTLP/HTTP listener.
    pub http: String,
    /// Where the JSON report is written.
    pub report_path: PathBuf,
    stderr: Arc<Mutex<String>>,
    dir: Option<tempfile::TempDir>,
}

impl Apmtop {
    /// Starts `apmtop --headless --grpc 127.0.0.1:0 --http 127.0.0.1:0 --report DIR/report.json`
    /// plus `extra` arguments, and waits for its `listening` line.
    pub fn start(extra: &[&str]) -> Apmtop {
        let dir = tempfile::tempdir().expect("temp dir");
        let report_path = dir.path().join("report.json");
        let mut child = Command::new(env!("CARGO_BIN_EXE_apmtop"))
            .args(["--headless", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .arg("--report")
            .arg(&report_path)
            .args(extra)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn apmtop");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.starts_with("apmtop: listening ")
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send(line.clone());
                    }
                    let mut log = log.lock().expect("log lock");
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let line = match rx.recv_timeout(PROCESS_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("apmtop did not print its listening line; stderr:\n{}", log.lock().expect("log lock"));
            }
        };
        let (grpc, http) = parse_listening_line(&line).unwrap_or_else(|| panic!("unexpected listening line: {line:?}"));
        Apmtop { child, grpc, http, report_path, stderr: log, dir: Some(dir) }
    }

    /// `http://HOST:PORT` of the gRPC listener, for a tonic client.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// `http://HOST:PORT` of the OTLP/HTTP listener.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Everything the binary printed to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("log lock").clone()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal`, waits for the exit and returns its status.
    pub fn stop_with(mut self, signal: Signal) -> (ExitStatus, String, PathBuf, tempfile::TempDir) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("send signal");
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("apmtop did not exit after {signal:?}; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // Give the reader thread a moment to collect the last lines.
        std::thread::sleep(Duration::from_millis(50));
        let stderr = self.stderr();
        let dir = self.dir.take().expect("temp dir kept until stop");
        (status, stderr, self.report_path.clone(), dir)
    }

    /// Stops with SIGINT, checks the exit code is 0 and returns the parsed report.
    pub fn stop(self) -> serde_json::Value {
        let (status, stderr, path, _dir) = self.stop_with(Signal::SIGINT);
        assert!(status.success(), "apmtop exited with {status}; stderr:\n{stderr}");
        read_report(&path)
    }
}

impl Drop for Apmtop {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Parses `apmtop: listening grpc=HOST:PORT http=HOST:PORT`.
pub fn parse_listening_line(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("apmtop: listening ")?;
    let mut parts = rest.split_whitespace();
    let grpc = parts.next()?.strip_prefix("grpc=")?.to_string();
    let http = parts.next()?.strip_prefix("http=")?.to_string();
    Some((grpc, http))
}

/// Reads and parses a JSON report file.
pub fn read_report(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("report {} not readable: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("report is not JSON: {e}\n{text}"))
}

/// The endpoint object of a report with this `method` and `route`, if present.
pub fn endpoint<'a>(report: &'a serde_json::Value, method: &str, route: &str) -> Option<&'a serde_json::Value> {
    report["endpoints"].as_array()?.iter().find(|e| e["method"] == method && e["route"] == route)
}

/// A report number, or a panic that says where.
pub fn num(value: &serde_json::Value, ctx: &str) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("{ctx}: expected a number, got {value}"))
}

/// A report array field, or a panic that says where.
pub fn items<'a>(object: &'a serde_json::Value, key: &str, ctx: &str) -> &'a Vec<serde_json::Value> {
    object[key].as_array().unwrap_or_else(|| panic!("{ctx}: {key} is not an array: {}", object[key]))
}

/// A report array of strings, or a panic that says where.
pub fn strings<'a>(value: &'a serde_json::Value, ctx: &str) -> Vec<&'a str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{ctx}: not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_else(|| panic!("{ctx}: not a string: {v}")))
        .collect()
}
