//! `apmtop replay FILE`: re-sends a capture to an OTLP/gRPC endpoint (another apmtop, a
//! collector), with the recording's pacing scaled by `--speed`, or as fast as the endpoint takes
//! it with `--max`.
//!
//! Every record becomes one `TraceService/Export` call: gRPC payloads as recorded, HTTP bodies
//! decompressed and, when they were OTLP/JSON, converted to protobuf. Progress goes to stderr.
//! An unusable capture exits 2 naming the byte offset; an unreachable or failing endpoint exits 1.

use std::fs::File;
use std::io::{BufReader, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tonic::transport::{Channel, Endpoint};

use super::{CommandError, Outcome};
use crate::capture::{CaptureError, CaptureReader};
use crate::cli::ReplayArgs;
use crate::receive;

/// How long connecting to the endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one export call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest pause between two records, whatever the recording says (an idle hour is not replayed).
const MAX_PAUSE: Duration = Duration::from_secs(10);

/// Runs `apmtop replay`.
pub fn run(args: ReplayArgs) -> Outcome {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return Err(CommandError::input(anyhow!("--speed must be a positive number, not {}", args.speed)));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(CommandError::runtime)?;
    runtime.block_on(replay(&args))
}

/// Opens the capture and reads its header.
fn open(path: &Path) -> Result<CaptureReader<BufReader<File>>, CommandError> {
    let file = File::open(path)
        .with_context(|| format!("cannot open the capture {}", path.display()))
        .map_err(CommandError::input)?;
    CaptureReader::new(BufReader::new(file)).map_err(|error| capture_error(path, error))
}

fn capture_error(path: &Path, error: CaptureError) -> CommandError {
    CommandError::input(anyhow!("{}: {error}", path.display()))
}

/// Reads the whole capture once, so that a damaged file is refused before anything is sent.
fn check(path: &Path) -> Result<(), CommandError> {
    let mut reader = open(path)?;
    while reader.next_record().map_err(|error| capture_error(path, error))?.is_some() {}
    Ok(())
}

async fn replay(args: &ReplayArgs) -> Outcome {
    check(&args.capture)?;
    let mut reader = open(&args.capture)?;
    let capture_error = |error| capture_error(&args.capture, error);
    let mut client = connect(&args.endpoint).await?;
    let mut pacer = (!args.max).then(|| Pacer::new(args.speed));
    let mut progress = Progress::new(&args.capture);
    let started = Instant::now();
    while let Some(record) = reader.next_record().map_err(capture_error)? {
        if let Some(pacer) = &mut pacer {
            tokio::time::sleep(pacer.wait(record.arrival_unix_ns, started.elapsed())).await;
        }
        let request = match receive::parse_record(&record) {
            Ok(request) => request,
            Err(error) => {
                progress.skipped(reader.offset(), &error);
                continue;
            }
        };
        let mut call = tonic::Request::new(request);
        call.set_timeout(CALL_TIMEOUT);
        client.export(call).await.map_err(|status| {
            CommandError::runtime(anyhow!(
                "{} refused export {} of the capture: {} ({:?})",
                args.endpoint,
                progress.sent + 1,
                status.message(),
                status.code()
            ))
        })?;
        progress.sent();
    }
    progress.done(&args.endpoint);
    Ok(ExitCode::SUCCESS)
}

/// The recording's pacing, scaled: each record is due at its offset from the first one divided
/// by the speed, less the idle time skipped so far (no pause is longer than [`MAX_PAUSE`]).
struct Pacer {
    speed: f64,
    first_ns: Option<u64>,
    skipped: Duration,
}

impl Pacer {
    fn new(speed: f64) -> Self {
        Pacer { speed, first_ns: None, skipped: Duration::ZERO }
    }

    /// How long to wait before sending a record that arrived at `arrival_ns`, `elapsed` into
    /// the replay.
    fn wait(&mut self, arrival_ns: u64, elapsed: Duration) -> Duration {
        let first = *self.first_ns.get_or_insert(arrival_ns);
        let due = Duration::from_nanos(arrival_ns.saturating_sub(first)).div_f64(self.speed);
        let wait = due.saturating_sub(self.skipped).saturating_sub(elapsed);
        if wait > MAX_PAUSE {
            self.skipped += wait - MAX_PAUSE;
            return MAX_PAUSE;
        }
        wait
    }
}

async fn connect(endpoint: &str) -> Result<TraceServiceClient<Channel>, CommandError> {
    let target = Endpoint::from_shared(endpoint.to_string())
        .map_err(|error| CommandError::input(anyhow!("--endpoint {endpoint:?} is not a URL: {error}")))?
        .connect_timeout(CONNECT_TIMEOUT);
    let channel = target.connect().await.map_err(|error| {
        CommandError::runtime(anyhow!(
            "cannot reach the OTLP/gRPC endpoint {endpoint}: {}; is apmtop (or a collector) running there?",
            error_chain(&error)
        ))
    })?;
    Ok(TraceServiceClient::new(channel))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Progress on stderr: a rewritten line on a terminal, a line per hundred records otherwise.
struct Progress {
    name: String,
    sent: u64,
    skipped: u64,
    terminal: bool,
}

impl Progress {
    fn new(capture: &Path) -> Self {
        Progress { name: capture.display().to_string(), sent: 0, skipped: 0, terminal: std::io::stderr().is_terminal() }
    }

    fn sent(&mut self) {
        self.sent += 1;
        if self.terminal {
            eprint!("\rapmtop: replaying {}: {} exports sent", self.name, self.sent);
            let _ = std::io::stderr().flush();
        } else if self.sent.is_multiple_of(100) {
            eprintln!("apmtop: replaying {}: {} exports sent", self.name, self.sent);
        }
    }

    fn skipped(&mut self, offset: u64, error: &str) {
        self.skipped += 1;
        if self.terminal {
            eprintln!();
        }
        eprintln!("apmtop: skipped the record before byte offset {offset}: {error}");
    }

    fn done(&self, endpoint: &str) {
        if self.terminal {
            eprintln!();
        }
        let skipped = if self.skipped > 0 { format!(", {} skipped (malformed)", self.skipped) } else { String::new() };
        eprintln!("apmtop: replayed {} exports from {} to {endpoint}{skipped}", self.sent, self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn pacing_follows_the_recording_scaled_by_speed() {
        let mut pacer = Pacer::new(2.0);
        assert_eq!(pacer.wait(100 * S, Duration::ZERO), Duration::ZERO);
        assert_eq!(pacer.wait(101 * S, Duration::ZERO), Duration::from_millis(500));
        // Sending took time: only what is left is waited.
        assert_eq!(pacer.wait(102 * S, Duration::from_millis(800)), Duration::from_millis(200));
    }

    #[test]
    fn long_idle_gaps_are_cut_to_the_longest_pause() {
        let mut pacer = Pacer::new(1.0);
        pacer.wait(0, Duration::ZERO);
        assert_eq!(pacer.wait(3_600 * S, Duration::ZERO), MAX_PAUSE);
        // The next record keeps its spacing after the cut gap.
        let after = pacer.wait(3_601 * S, MAX_PAUSE);
        assert_eq!(after, Duration::from_secs(1));
    }
}
