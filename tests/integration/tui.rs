//! The live dashboard, end to end: the real binary in a pseudo-terminal, its output fed to a
//! terminal emulator (`vt100`), spans sent over real OTLP/HTTP, keys typed, and the screen read
//! the way a user would read it.
//!
//! Every wait is bounded ([`WAIT`]) and the child is killed on drop, so a broken dashboard fails
//! the test instead of hanging it.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use portable_pty::{Child, CommandBuilder, PtySize, native_pty_system};
use prost::Message;

use crate::otlp_payloads::{RequestTrace, batch};
use crate::support::parse_listening_line;

/// Longest wait for anything to appear on screen or for the process to end.
const WAIT: Duration = Duration::from_secs(20);
const ROWS: u16 = 30;
const COLS: u16 = 110;
/// Escape sequences that leave the alternate screen and show the cursor again.
const LEAVE_ALTERNATE_SCREEN: &str = "\u{1b}[?1049l";
const SHOW_CURSOR: &str = "\u{1b}[?25h";

/// What the pseudo-terminal has received so far.
struct Output {
    parser: vt100::Parser,
    raw: Vec<u8>,
    /// The terminal closed: everything the child wrote has been read.
    closed: bool,
}

/// `apmtop` (dashboard mode) running in a pseudo-terminal.
struct Dashboard {
    child: Box<dyn Child + Send + Sync>,
    keys: Box<dyn Write + Send>,
    output: Arc<Mutex<Output>>,
    http_url: String,
    dir: tempfile::TempDir,
}

impl Dashboard {
    /// Starts `apmtop` on free ports in a `COLS`x`ROWS` terminal, in a fresh directory that is
    /// also its `--snapshot-dir`, and waits for the listening line.
    fn start(extra: &[&str]) -> Dashboard {
        let mut args = vec!["--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--grace", "0.2"];
        args.extend(extra);
        let mut dashboard = Dashboard::spawn(&args, true);
        let line = dashboard.wait_for_raw("listening line", |raw| {
            let start = raw.find("apmtop: listening ")?;
            let line = raw[start..].lines().next()?;
            parse_listening_line(line.trim_end_matches('\r')).map(|(_, http)| http)
        });
        dashboard.http_url = format!("http://{line}");
        dashboard
    }

    /// Starts `apmtop ARGS` in a `COLS`x`ROWS` terminal, in a fresh directory (also the
    /// `--snapshot-dir` when `snapshot_dir` is set).
    fn spawn(args: &[&str], snapshot_dir: bool) -> Dashboard {
        let dir = tempfile::tempdir().expect("tempdir");
        let pty = native_pty_system()
            .openpty(PtySize { rows: ROWS, cols: COLS, pixel_width: 0, pixel_height: 0 })
            .expect("a pseudo-terminal");
        let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_apmtop"));
        command.args(args);
        if snapshot_dir {
            command.arg("--snapshot-dir");
            command.arg(dir.path());
        }
        command.cwd(dir.path());
        command.env("TERM", "xterm-256color");
        command.env_remove("APMTOP_HEADLESS");
        let child = pty.slave.spawn_command(command).expect("spawn apmtop");
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().expect("pty reader");
        let keys = pty.master.take_writer().expect("pty writer");
        let output =
            Arc::new(Mutex::new(Output { parser: vt100::Parser::new(ROWS, COLS, 0), raw: Vec::new(), closed: false }));
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            // Keep the master alive as long as we read from it.
            let _master = pty.master;
            let mut chunk = [0u8; 8192];
            loop {
                match reader.read(&mut chunk) {
                    Ok(0) | Err(_) => {
                        sink.lock().expect("output lock").closed = true;
                        return;
                    }
                    Ok(n) => {
                        let mut out = sink.lock().expect("output lock");
                        out.parser.process(&chunk[..n]);
                        out.raw.extend_from_slice(&chunk[..n]);
                    }
                }
            }
        });
        Dashboard { child, keys, output, http_url: String::new(), dir }
    }

    fn raw(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().expect("output lock").raw).into_owned()
    }

    fn screen(&self) -> String {
        self.output.lock().expect("output lock").parser.screen().contents()
    }

    fn wait_for_raw<T>(&mut self, what: &str, mut found: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(value) = found(&self.raw()) {
                return value;
            }
            assert!(Instant::now() < deadline, "no {what} within {WAIT:?}; output so far:\n{:?}", self.raw());
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("apmtop exited ({status:?}) before {what}; output:\n{:?}", self.raw());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every one of `texts` is on screen at once.
    fn wait_for_screen(&mut self, texts: &[&str]) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if texts.iter().all(|t| screen.contains(t)) {
                return screen;
            }
            assert!(Instant::now() < deadline, "{texts:?} not all on screen within {WAIT:?}; screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn press(&mut self, keys: &str) {
        self.keys.write_all(keys.as_bytes()).expect("type into the pty");
        self.keys.flush().expect("flush the pty");
    }

    /// Waits for the process to end and for its last output to be read; returns whether it
    /// succeeded.
    fn wait_exit(&mut self) -> bool {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                while !self.output.lock().expect("output lock").closed && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return status.success();
            }
            assert!(Instant::now() < deadline, "apmtop did not exit within {WAIT:?}; screen:\n{}", self.screen());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.process_id().expect("a pid")).expect("pid fits"))
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// POSTs `traces` as one OTLP/HTTP protobuf export.
async fn export(http_url: &str, traces: &[RequestTrace]) {
    let body = batch(traces).encode_to_vec();
    let response = reqwest::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .build()
        .expect("http client")
        .post(format!("{http_url}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .expect("export accepted");
    assert!(response.status().is_success(), "export answered {}", response.status());
}

const AUTHOR_QUERY: &str = "SELECT id, name FROM author WHERE id = 1";

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_shows_spans_navigates_exports_and_quits_cleanly() {
    let mut app = Dashboard::start(&[]);
    let http = app.http_url.clone();
    // Empty state teaches how to connect, with the real address.
    app.wait_for_screen(&["Waiting for spans", &format!("OTEL_EXPORTER_OTLP_ENDPOINT={http}")]);

    let hostile_route = "/evil\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31m/x";
    let traces: Vec<RequestTrace> = (0..3)
        .map(|seed| {
            (1..=8).fold(RequestTrace::new(seed, "GET", "/api/books"), |trace, id| {
                trace.query(&format!("SELECT id, name FROM author WHERE id = {id}"))
            })
        })
        .chain(std::iter::once(RequestTrace::new(10, "GET", hostile_route)))
        .collect();
    export(&http, &traces).await;

    let screen = app.wait_for_screen(&["GET /api/books", "●", "GET /evil/x"]);
    assert!(!screen.contains("pwned"), "escape sequence payload shown:\n{screen}");
    assert!(!app.raw().contains("\u{1b}]0;pwned"), "the window title sequence reached the terminal");
    assert!(screen.contains("apmtop"), "the header survived the clear-screen sequence:\n{screen}");

    // N+1 view.
    app.press("2");
    app.wait_for_screen(&["SELECT id, name FROM author WHERE id = ?", "fix:"]);

    // Filter to the endpoint, drill in, come back.
    app.press("1/books\r");
    app.wait_for_screen(&["filter books"]);
    app.press("\r");
    app.wait_for_screen(&["GET /api/books · ", "N+1 offenders (1)", "× 8 per request"]);
    app.press("\u{1b}");
    app.wait_for_screen(&["Reqs", "p95"]);

    // Help overlay.
    app.press("?");
    app.wait_for_screen(&["Keys", "export JSON + Markdown"]);
    app.press("?");

    // Export.
    app.press("e");
    app.wait_for_screen(&["exported "]);
    let exported: Vec<_> = std::fs::read_dir(app.dir())
        .expect("read snapshot dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("apmtop-snapshot-") && n.ends_with(".json"))
        .collect();
    assert_eq!(exported.len(), 1, "{exported:?}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(app.dir().join(&exported[0])).expect("read export")).expect("JSON");
    assert!(report["endpoints"].as_array().is_some_and(|e| !e.is_empty()));
    let markdown = std::fs::read_to_string(app.dir().join(&exported[0]).with_extension("md")).expect("Markdown twin");
    assert!(markdown.contains("N+1"), "{markdown}");

    app.press("q");
    assert!(app.wait_exit(), "apmtop failed after q:\n{}", app.raw());
    let raw = app.raw();
    let left = raw.rfind(LEAVE_ALTERNATE_SCREEN).expect("left the alternate screen");
    assert!(raw[left..].contains(SHOW_CURSOR) || raw.rfind(SHOW_CURSOR) > Some(left), "cursor shown again");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_restores_the_terminal_and_writes_the_report() {
    let mut app = Dashboard::start(&["--report", "report.json"]);
    app.wait_for_screen(&["Waiting for spans"]);
    export(&app.http_url.clone(), &[RequestTrace::new(1, "GET", "/api/authors/{id}").query(AUTHOR_QUERY)]).await;
    app.wait_for_screen(&["GET /api/authors/{id}"]);
    kill(app.pid(), Signal::SIGTERM).expect("send SIGTERM");
    assert!(app.wait_exit(), "apmtop failed after SIGTERM:\n{}", app.raw());
    let raw = app.raw();
    assert!(raw.contains(LEAVE_ALTERNATE_SCREEN), "alternate screen not left");
    // The report line comes after the terminal is given back.
    let left = raw.rfind(LEAVE_ALTERNATE_SCREEN).unwrap_or(0);
    assert!(raw[left..].contains("report written to"), "{raw:?}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(app.dir().join("report.json")).expect("report")).expect("JSON");
    assert_eq!(report["totals"]["requests"], 1);
}

#[test]
fn dashboard_refuses_a_non_terminal_and_suggests_headless() {
    let output = Command::new(env!("CARGO_BIN_EXE_apmtop"))
        .args(["--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .env_remove("APMTOP_HEADLESS")
        .timeout(WAIT)
        .output()
        .expect("run apmtop");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--headless"), "{stderr}");
}

/// Escape sequences that turn mouse reporting on and off.
const MOUSE_ON: &str = "\u{1b}[?1000h";
const MOUSE_OFF: &str = "\u{1b}[?1000l";

/// After the process ended: the alternate screen was left, the cursor shown and mouse reporting
/// turned off, after they were last taken.
fn assert_terminal_restored(raw: &str) {
    let left = raw.rfind(LEAVE_ALTERNATE_SCREEN).expect("left the alternate screen");
    assert!(raw.rfind(SHOW_CURSOR) > Some(left) || raw[left..].contains(SHOW_CURSOR), "cursor shown again");
    let taken = raw.rfind(MOUSE_ON).expect("mouse reporting was turned on");
    assert!(raw.rfind(MOUSE_OFF) > Some(taken), "mouse reporting turned off again");
}

/// Issue 3: from the endpoint to its slowest request's waterfall, the N+1 folded into one row.
#[tokio::test(flavor = "multi_thread")]
async fn the_slowest_request_opens_as_a_waterfall_with_the_n_plus_one_folded() {
    let mut app = Dashboard::start(&[]);
    app.wait_for_screen(&["Waiting for spans"]);
    let traces: Vec<RequestTrace> = (0..3)
        .map(|seed| {
            (1..=12).fold(RequestTrace::new(seed, "GET", "/api/books").duration_ms(100 + seed * 50), |trace, id| {
                trace.query(&format!("SELECT id, name FROM author WHERE id = {id}"))
            })
        })
        .chain(std::iter::once(RequestTrace::new(9, "GET", "/health")))
        .collect();
    export(&app.http_url.clone(), &traces).await;
    app.wait_for_screen(&["GET /api/books", "GET /health"]);

    app.press("/books\r\r");
    app.wait_for_screen(&["N+1 offenders (1)", "× 12 per request"]);
    // The N+1 example comes first; the slowest request is the next row, scrolled into view.
    app.press("j");
    app.wait_for_screen(&["Slowest requests (3)", "choose a trace"]);
    app.press("\r");
    let screen = app.wait_for_screen(&["× 12 SELECT id, name FROM author WHERE id = ?", "GET /api/books", "timeline"]);
    assert!(screen.contains(&traces[2].trace_id_hex()), "the slowest request's trace is open:\n{screen}");
    // Back to the detail, then the list.
    app.press("\u{1b}");
    app.wait_for_screen(&["Slowest requests (3)"]);
    app.press("\u{1b}");
    app.wait_for_screen(&["Reqs", "p95"]);

    app.press("q");
    assert!(app.wait_exit(), "apmtop failed after q:\n{}", app.raw());
    assert_terminal_restored(&app.raw());
}

/// `apmtop demo`: the built-in app fills the endpoints, a mouse click drills in, q exits 0 with the
/// terminal restored.
#[test]
fn demo_shows_its_endpoints_and_quits_cleanly() {
    let mut app = Dashboard::spawn(&["demo", "--rate", "50"], false);
    app.wait_for_screen(&["GET /api/books", "POST /charge", "GET /api/search", "●"]);
    // A click (SGR mouse report, 1-based) on the first row, already selected, drills in.
    app.press("\u{1b}[<0;10;6M\u{1b}[<0;10;6m");
    app.wait_for_screen(&["latency", "queries per request", "Slowest requests"]);
    app.press("\u{1b}");
    app.wait_for_screen(&["Reqs", "p95"]);
    app.press("q");
    assert!(app.wait_exit(), "apmtop demo failed after q:\n{}", app.raw());
    assert_terminal_restored(&app.raw());
}

/// `apmtop open`: a saved report, read-only; the trace view says it needs a live pipeline.
#[tokio::test(flavor = "multi_thread")]
async fn open_shows_a_saved_report_read_only() {
    let mut live = Dashboard::start(&[]);
    export(&live.http_url.clone(), &[RequestTrace::new(1, "GET", "/api/authors/{id}").query(AUTHOR_QUERY)]).await;
    live.wait_for_screen(&["GET /api/authors/{id}"]);
    live.press("e");
    live.wait_for_screen(&["exported "]);
    let saved = std::fs::read_dir(live.dir())
        .expect("read snapshot dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("an exported snapshot");
    live.press("q");
    assert!(live.wait_exit());

    let path = saved.to_string_lossy().into_owned();
    let mut app = Dashboard::spawn(&["open", &path], false);
    app.wait_for_screen(&["saved report", "read-only", "GET /api/authors/{id}"]);
    app.press("\r\r");
    app.wait_for_screen(&["needs a live pipeline"]);
    app.press("q");
    assert!(app.wait_exit(), "apmtop open failed after q:\n{}", app.raw());
    assert_terminal_restored(&app.raw());
}

#[test]
fn demo_refuses_a_bad_rate_and_open_a_missing_report() {
    for rate in ["0", "-3", "NaN", "1e9"] {
        let flag = format!("--rate={rate}");
        let output = Command::new(env!("CARGO_BIN_EXE_apmtop")).args(["demo", &flag]).timeout(WAIT).output();
        let output = output.expect("run apmtop demo");
        assert_eq!(output.status.code(), Some(2), "--rate {rate}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--rate") && stderr.lines().count() == 1, "{stderr}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_apmtop"))
        .args(["open", "no-such-report.json"])
        .timeout(WAIT)
        .output()
        .expect("run apmtop open");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no-such-report.json"));
}
