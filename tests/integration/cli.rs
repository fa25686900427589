//! The command-line contract of the real binary: flags, exit codes, what lands on stderr, the
//! listening addresses, and the report file's life cycle (written on SIGINT and SIGTERM,
//! atomically, periodically with `--report-every`, complete at shutdown).
//!
//! Error cases run the binary with `assert_cmd` and a timeout, always with free ports and a
//! report in a temporary directory so that a binary which wrongly keeps running cannot touch
//! anything shared. Running cases use the `support` harness.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use predicates::prelude::*;
use rstest::rstest;
use serde_json::Value;

use crate::otlp_payloads::{RequestTrace, batch};
use crate::support::{self, Apmtop, PROCESS_TIMEOUT};

/// Every flag the binary documents.
const FLAGS: [&str; 9] = [
    "--grpc",
    "--http",
    "--headless",
    "--report",
    "--report-every",
    "--n-plus-one-min",
    "--grace",
    "--help",
    "--version",
];

/// Longest a failing start-up may take before the test gives up on it.
const ERROR_TIMEOUT: Duration = Duration::from_secs(30);

/// An `assert_cmd` command for the binary, with a timeout and no inherited log filter.
fn apmtop() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_apmtop"));
    cmd.env_remove("RUST_LOG").timeout(ERROR_TIMEOUT);
    cmd
}

/// Whether `args` sets the flag `name` (as `--name VALUE` or `--name=VALUE`).
fn sets(args: &[&str], name: &str) -> bool {
    args.iter().any(|a| *a == name || a.starts_with(&format!("{name}=")))
}

/// Runs the binary to completion (or the timeout) with `args`, preceded by whatever of
/// `--headless`, free loopback ports and a report in a temporary directory they do not set
/// themselves, so a binary that wrongly keeps running binds nothing shared. `args` go last, so
/// a flag without its value really has none.
fn run_contained(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut all: Vec<OsString> = Vec::new();
    if !sets(args, "--headless") {
        all.push("--headless".into());
    }
    for flag in ["--grpc", "--http"] {
        if !sets(args, flag) {
            all.push(flag.into());
            all.push("127.0.0.1:0".into());
        }
    }
    if !sets(args, "--report") {
        all.push("--report".into());
        all.push(dir.path().join("report.json").into_os_string());
    }
    all.extend(args.iter().map(OsString::from));
    apmtop().args(&all).output().expect("run apmtop")
}

/// Checks the failure contract: `code`, and exactly one non-empty stderr line starting with
/// `apmtop: ` that mentions `mentions`.
fn assert_one_line_error(output: &Output, code: i32, mentions: &str, case: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{case}: exit status; stderr:\n{stderr}");
    let line = stderr.strip_suffix('\n').unwrap_or(&stderr);
    let line = line.strip_suffix('\r').unwrap_or(line);
    assert!(!line.contains('\n'), "{case}: expected exactly one line on stderr, got:\n{stderr}");
    let problem =
        line.strip_prefix("apmtop: ").unwrap_or_else(|| panic!("{case}: the line starts with `apmtop: `: {line:?}"));
    assert!(!problem.trim().is_empty(), "{case}: the line names a problem: {line:?}");
    assert!(line.contains(mentions), "{case}: the line mentions {mentions:?}: {line:?}");
}

/// Exports `request` over gRPC and requires full success.
async fn export(app: &Apmtop, request: ExportTraceServiceRequest) {
    let mut client = TraceServiceClient::connect(app.grpc_url()).await.expect("connect to the gRPC listener");
    let answer = client.export(request).await.expect("export accepted").into_inner();
    assert_eq!(answer.partial_success, None);
}

/// A request trace with one query.
fn small_trace(seed: u64) -> RequestTrace {
    RequestTrace::new(seed, "GET", "/cli/{id}").query("SELECT * FROM cli WHERE id = $1")
}

/// File names in `dir`.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read report dir")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------
// Help, version, bad input
// ---------------------------------------------------------------------------------------------

/// The description `--help` gives `flag`: the text after the flag spec (names and value
/// placeholders such as `<ADDR>`) on the flag's line, or the next line when that is empty.
fn flag_description(help: &str, flag: &str) -> Option<String> {
    let lines: Vec<&str> = help.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let spec_len =
            tokens.iter().take_while(|t| t.starts_with('-') || t.starts_with('<') || t.starts_with('[')).count();
        let names_flag = tokens[..spec_len].iter().any(|t| t.trim_end_matches(',').split('=').next() == Some(flag));
        if !names_flag {
            continue;
        }
        let rest = tokens[spec_len..].join(" ");
        if !rest.is_empty() {
            return Some(rest);
        }
        let next = lines.get(index + 1)?.trim();
        return (!next.is_empty() && !next.starts_with('-')).then(|| next.to_string());
    }
    None
}

#[test]
fn help_lists_every_flag_with_a_description() {
    let output = apmtop().arg("--help").output().expect("run apmtop --help");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "--help exits 0; stderr:\n{}", String::from_utf8_lossy(&output.stderr));
    for flag in FLAGS {
        let description = flag_description(&help, flag)
            .unwrap_or_else(|| panic!("--help does not list {flag} with a description:\n{help}"));
        assert!(
            description.split_whitespace().any(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 3),
            "{flag} has no real description ({description:?}) in:\n{help}"
        );
    }
}

#[test]
fn version_prints_the_name_and_the_package_version() {
    apmtop()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::diff(format!("apmtop {}\n", env!("CARGO_PKG_VERSION"))));
}

#[rstest]
#[case::unknown_flag(&["--no-such-flag"], "--no-such-flag")]
#[case::unexpected_argument(&["surprise-argument"], "surprise-argument")]
#[case::missing_value(&["--grace"], "grace")]
#[case::grpc_not_an_address(&["--grpc", "not-an-address"], "grpc")]
#[case::http_port_out_of_range(&["--http", "127.0.0.1:99999"], "http")]
#[case::n_plus_one_min_not_a_number(&["--n-plus-one-min", "many"], "n-plus-one-min")]
#[case::grace_not_a_number(&["--grace", "soon"], "grace")]
#[case::grace_negative(&["--grace=-1"], "grace")]
#[case::report_every_not_a_number(&["--report-every", "often"], "report-every")]
fn bad_flags_and_values_exit_2_with_one_line_naming_the_problem(#[case] args: &[&str], #[case] mentions: &str) {
    let output = run_contained(args);
    assert_one_line_error(&output, 2, mentions, &format!("{args:?}"));
}

/// Subcommand usage errors name what is missing or wrong and the subcommand's own help.
#[rstest]
#[case::missing_arguments(&["merge"], "--output <FILE> <REPORT>... (see 'apmtop merge --help')")]
#[case::bad_value(&["report", "r.json", "--format", "pdf"], "'pdf' for '--format <FORMAT>'")]
#[case::help_is_named(&["diff", "a.json", "b.json", "--tolerance=-5"], "(see 'apmtop diff --help')")]
#[case::run_flag_before_subcommand(&["--headless", "check", "r.json"], "check")]
fn subcommand_usage_errors_exit_2_with_one_line(#[case] args: &[&str], #[case] mentions: &str) {
    let output = apmtop().args(args).output().expect("run apmtop");
    assert_one_line_error(&output, 2, mentions, &format!("{args:?}"));
}

/// `APMTOP_HEADLESS=1` (not only `true`) runs headless: without it, a run with no terminal stops
/// at once asking for `--headless`.
#[rstest]
#[case("1")]
#[case("yes")]
#[case("true")]
fn boolean_environment_variables_take_the_usual_spellings(#[case] value: &str) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_apmtop"))
        .args(["--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .env("APMTOP_HEADLESS", value)
        .env("APMTOP_QUIET", value)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn apmtop");
    let stderr = child.stderr.take().expect("stderr");
    let first = BufReader::new(stderr).lines().next().and_then(Result::ok).unwrap_or_default();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("signal");
    let status = child.wait().expect("wait");
    assert!(first.starts_with("apmtop: listening "), "APMTOP_HEADLESS={value}: {first}");
    assert!(status.success(), "APMTOP_HEADLESS={value}: {status}");
}

#[rstest]
#[case::grpc("--grpc")]
#[case::http("--http")]
fn address_in_use_exits_1_with_one_line_naming_the_address(#[case] flag: &str) {
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind a port to occupy");
    let address = busy.local_addr().expect("local addr").to_string();
    let output = run_contained(&[flag, &address]);
    assert_one_line_error(&output, 1, &address, &format!("{flag} {address} while in use"));
    drop(busy);
}

#[test]
fn same_address_for_both_listeners_exits_1_naming_it() {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("find a free port").port();
    let address = format!("127.0.0.1:{port}");
    let output = run_contained(&["--grpc", &address, "--http", &address]);
    assert_one_line_error(&output, 1, &address, "one address for both listeners");
}

#[test]
fn report_in_a_missing_directory_fails_at_start_up_with_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-dir");
    let report = missing.join("report.json");
    let report = report.to_str().expect("utf-8 temp path");
    let output = run_contained(&["--report", report]);
    assert_one_line_error(&output, 1, &missing.display().to_string(), "report in a missing directory");
    assert!(!missing.exists(), "the directory is not created behind the user's back");
}

// ---------------------------------------------------------------------------------------------
// Listening
// ---------------------------------------------------------------------------------------------

#[test]
fn default_listeners_are_loopback_4317_and_4318() {
    for port in [4317, 4318] {
        TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("this test needs 127.0.0.1:{port} free, but it is taken on this machine: {e}"));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let report = dir.path().join("report.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_apmtop"))
        .arg("--headless")
        .arg("--report")
        .arg(&report)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn apmtop");
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    let mut seen = Vec::new();
    let listening = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with("apmtop: listening ") => break Some(line),
            Ok(line) => seen.push(line),
            Err(_) => break None,
        }
    };
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGINT);
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let listening = listening.unwrap_or_else(|| panic!("no listening line; stderr:\n{}", seen.join("\n")));
    assert_eq!(
        support::parse_listening_line(&listening),
        Some(("127.0.0.1:4317".to_string(), "127.0.0.1:4318".to_string())),
        "{listening}"
    );
    let status = status.expect("apmtop exits after SIGINT");
    assert!(status.success(), "exit after SIGINT: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_zero_binds_distinct_free_loopback_ports_and_prints_one_listening_line() {
    let app = Apmtop::start(&[]);
    let mut ports = HashSet::new();
    for address in [&app.grpc, &app.http] {
        let (host, port) = address.rsplit_once(':').unwrap_or_else(|| panic!("HOST:PORT {address}"));
        assert_eq!(host, "127.0.0.1", "{address}");
        let port: u16 = port.parse().unwrap_or_else(|e| panic!("port of {address}: {e}"));
        assert_ne!(port, 0, "the real port is printed, not 0");
        ports.insert(port);
    }
    assert_eq!(ports.len(), 2, "two different ports");
    // The printed ports really answer.
    export(&app, small_trace(1).request()).await;

    let (status, stderr, _, _dir) = app.stop_with(Signal::SIGINT);
    assert!(status.success(), "{status}; stderr:\n{stderr}");
    let listening: Vec<&str> = stderr.lines().filter(|l| support::parse_listening_line(l).is_some()).collect();
    assert_eq!(listening.len(), 1, "one listening line: {stderr}");
}

// ---------------------------------------------------------------------------------------------
// Report life cycle
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::sigint(Signal::SIGINT)]
#[case::sigterm(Signal::SIGTERM)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_writes_the_report_atomically_and_exits_0(#[case] signal: Signal) {
    let app = Apmtop::start(&["--grace", "0.2"]);
    let trace = small_trace(2);
    export(&app, trace.request()).await;

    let (status, stderr, path, dir) = app.stop_with(signal);
    assert!(status.success(), "exit after {signal:?}: {status}; stderr:\n{stderr}");
    let report = support::read_report(&path);
    assert_eq!(report["totals"]["requests"], 1, "{report}");
    assert_eq!(report["totals"]["spans_received"], trace.span_count(), "{report}");
    assert_eq!(file_names(dir.path()), vec!["report.json".to_string()], "no temporary files left next to the report");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_run_writes_a_report_with_nothing_in_it() {
    let app = Apmtop::start(&[]);
    let report = app.stop();
    assert_eq!(report["apmtop_report"], 1);
    for key in ["spans_received", "requests", "spans_rejected", "metric_exports", "log_exports"] {
        assert_eq!(report["totals"][key], 0, "totals.{key} in {report}");
    }
    assert_eq!(report["endpoints"], serde_json::json!([]));
    assert_eq!(report["queries"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_at_shutdown_includes_everything_received_before_the_signal() {
    // Default grace period (2 s): every request is still pending when the signal arrives.
    let app = Apmtop::start(&[]);
    let mut spans = 0;
    for chunk in 0..10u64 {
        let traces: Vec<RequestTrace> = (0..20).map(|i| small_trace(1000 + chunk * 20 + i)).collect();
        spans += traces.iter().map(RequestTrace::span_count).sum::<usize>();
        export(&app, batch(&traces)).await;
    }
    let report = app.stop();
    assert_eq!(report["totals"]["spans_received"], spans, "{}", report["totals"]);
    assert_eq!(report["totals"]["requests"], 200, "{}", report["totals"]);
    assert_eq!(support::endpoint(&report, "GET", "/cli/{id}").map(|e| e["requests"].clone()), Some(Value::from(200)));
}

/// Polls the report file while apmtop runs until `done` holds for a read, requiring every read
/// to be valid JSON. Returns the inode of each read (a rename-based rewrite changes it).
async fn poll_report(app: &mut Apmtop, what: &str, done: impl Fn(&Value) -> bool) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut inodes = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "after 30 s and {} reads: {what} not seen", inodes.len());
        match std::fs::File::open(&app.report_path) {
            Ok(mut file) => {
                let inode = file.metadata().expect("report metadata").ino();
                let mut text = String::new();
                file.read_to_string(&mut text).expect("read report");
                let report: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("report read while running is not JSON ({e}):\n{text}"));
                inodes.push(inode);
                if done(&report) {
                    return inodes;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("report not readable while running: {e}"),
        }
        assert!(app.is_running(), "apmtop exited; stderr:\n{}", app.stderr());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_every_rewrites_the_report_while_running_and_each_read_is_valid_json() {
    let mut app = Apmtop::start(&["--report-every", "1", "--grace", "0.2"]);
    export(&app, small_trace(3).request()).await;
    let first = poll_report(&mut app, "the first request", |r| r["totals"]["requests"] == 1).await;

    // New data shows up in a later rewrite, and rewrites replace the file (temp file + rename).
    export(&app, small_trace(4).request()).await;
    let second = poll_report(&mut app, "the second request", |r| r["totals"]["requests"] == 2).await;
    let inodes: HashSet<u64> = first.iter().chain(&second).copied().collect();
    assert!(inodes.len() >= 2, "the report is replaced by rename, not rewritten in place: {inodes:?}");

    let report = app.stop();
    assert_eq!(report["totals"]["requests"], 2);
}
