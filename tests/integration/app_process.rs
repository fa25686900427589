//! A real instrumented app as a child process, for the real-app tests: started with a clean
//! OpenTelemetry environment on a free port, asked for pages over plain HTTP/1.1, stopped with
//! SIGTERM (which the apps turn into an SDK shutdown that flushes their spans), killed on drop.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long an app may take to start listening, to answer, or to exit after SIGTERM.
pub const APP_TIMEOUT: Duration = Duration::from_secs(60);

/// A command for an instrumented app: the developer's own `OTEL_*` settings removed (they must
/// not leak into a test) and proxies bypassed for loopback (exporters honour proxy variables).
/// Set the test's `OTEL_*` variables on it afterwards.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("OTEL_") {
            command.env_remove(key);
        }
    }
    command.env("NO_PROXY", "127.0.0.1,localhost").env("no_proxy", "127.0.0.1,localhost").stdin(Stdio::null());
    command
}

/// A free port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port on 127.0.0.1")
        .port()
}

/// What an app's seed command printed on its last line: a JSON object of counts and table names,
/// from which a test derives its expected figures.
pub struct SeedSummary(serde_json::Value);

impl SeedSummary {
    /// Runs the (uninstrumented) seed `command`, checks that it succeeded and parses its summary.
    pub fn run(command: &mut Command, what: &str) -> SeedSummary {
        let output = command.output().unwrap_or_else(|e| panic!("run {what}: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{what} failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let line = stdout.lines().last().unwrap_or_default();
        let summary = serde_json::from_str(line).unwrap_or_else(|e| panic!("seed summary is not JSON ({e}): {stdout}"));
        SeedSummary(summary)
    }

    /// A count from the summary.
    pub fn count(&self, key: &str) -> u64 {
        self.0[key].as_u64().unwrap_or_else(|| panic!("seed summary has no count {key}: {}", self.0))
    }

    /// A table name from the summary.
    pub fn name(&self, key: &str) -> String {
        self.0[key].as_str().unwrap_or_else(|| panic!("seed summary has no table name {key}: {}", self.0)).to_string()
    }
}

/// A running app. Killed on drop.
pub struct AppProcess {
    child: Child,
    port: u16,
    log_path: PathBuf,
}

impl AppProcess {
    /// Spawns `command` (which must make the app listen on `port`), with its output in
    /// `log_dir/app.log`, and waits until the port accepts connections.
    pub fn spawn(mut command: Command, port: u16, log_dir: &Path) -> AppProcess {
        let log_path = log_dir.join("app.log");
        let log = File::create(&log_path).expect("create the app log file");
        command.stdout(log.try_clone().expect("clone the app log file")).stderr(log);
        let child = command.spawn().unwrap_or_else(|e| panic!("spawn {:?}: {e}", command.get_program()));
        let mut app = AppProcess { child, port, log_path };
        app.wait_listening();
        app
    }

    /// Waits until the port accepts connections (a bare connect makes no request, no span).
    fn wait_listening(&mut self) {
        let deadline = Instant::now() + APP_TIMEOUT;
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("poll the app process") {
                panic!("the app exited with {status} before listening; log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the app did not listen on {} within {APP_TIMEOUT:?}; log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `GET path` over HTTP/1.1 with `Connection: close`; returns the status code.
    pub fn get(&self, path: &str) -> u16 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the app");
        stream.set_read_timeout(Some(APP_TIMEOUT)).expect("set a read timeout");
        write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", self.port)
            .expect("send the request");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).expect("read the response");
        let response = String::from_utf8_lossy(&response);
        response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("GET {path}: not an HTTP response: {response:?}"))
    }

    /// Everything the app printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends SIGTERM (the apps shut their SDK down on it, which flushes the span exporter),
    /// waits for the exit and returns the log.
    pub fn stop(mut self) -> String {
        let pid = i32::try_from(self.child.id()).expect("pid fits in i32");
        kill(Pid::from_raw(pid), Signal::SIGTERM).expect("send SIGTERM to the app");
        let deadline = Instant::now() + APP_TIMEOUT;
        while self.child.try_wait().expect("poll the app process").is_none() {
            assert!(
                Instant::now() < deadline,
                "the app did not exit within {APP_TIMEOUT:?} of SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.log()
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
