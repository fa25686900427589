//! Command-line flags (clap, each with an environment fallback) and the one validated
//! [`Settings`] that the rest of the program sees.
//!
//! The flags are a contract relied on by scripts and CI: they may gain siblings, never change.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "A terminal APM dashboard: point an OpenTelemetry exporter at it and see slow endpoints, \
queries per request and N+1 queries live.";

const AFTER_HELP: &str = "\
Point your app at it:
  OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317  (gRPC)
  OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf  (HTTP)
Both ports accept both protocols.

Examples:
  apmtop --headless --report report.json      write a JSON report on Ctrl-C / SIGTERM
  apmtop --grpc 0 --http 0                     pick free ports (printed on stderr)
  apmtop demo                                  the dashboard fed by a built-in synthetic app
  apmtop check report.json                     gate CI on budgets (exit 1 when one is broken)

Exit codes: 0 ok, 1 runtime error (e.g. address in use), 2 bad flag or value.";

/// Raw flags, as clap parses them.
#[derive(Debug, Parser)]
#[command(name = "apmtop", version, about = ABOUT, after_help = AFTER_HELP, max_term_width = 100,
          args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; without one, apmtop receives OTLP and shows the dashboard.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address for OTLP/gRPC: HOST:PORT, or just PORT for 127.0.0.1:PORT; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", env = "APMTOP_GRPC", default_value = "127.0.0.1:4317", value_parser = parse_addr)]
    pub grpc: SocketAddr,

    /// Address for OTLP/HTTP (POST /v1/traces): HOST:PORT, or just PORT; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", env = "APMTOP_HTTP", default_value = "127.0.0.1:4318", value_parser = parse_addr)]
    pub http: SocketAddr,

    /// Run without the terminal dashboard (for CI and scripts).
    #[arg(long, env = "APMTOP_HEADLESS", value_parser = clap::builder::BoolishValueParser::new())]
    pub headless: bool,

    /// Write the JSON report here on SIGINT/SIGTERM (after everything received is processed).
    #[arg(long, value_name = "PATH", env = "APMTOP_REPORT")]
    pub report: Option<PathBuf>,

    /// Also rewrite the report every SECONDS while running (needs --report).
    #[arg(long, value_name = "SECONDS", env = "APMTOP_REPORT_EVERY", requires = "report", value_parser = parse_positive_seconds)]
    pub report_every: Option<f64>,

    /// Executions of one query shape in one request that make an N+1 (at least 2).
    #[arg(long, value_name = "N", env = "APMTOP_N_PLUS_ONE_MIN", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(2..))]
    pub n_plus_one_min: u32,

    /// Quiet time after a trace's last span before its requests are analyzed (request assembly).
    #[arg(long, value_name = "SECONDS", env = "APMTOP_GRACE", default_value = "2", value_parser = parse_grace)]
    pub grace: f64,

    /// Most endpoints tracked; the rest fold into one "(other endpoints)" row.
    #[arg(long, value_name = "N", env = "APMTOP_MAX_ENDPOINTS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_endpoints: u64,

    /// Write apmtop's own log to this file (level from RUST_LOG, default info).
    #[arg(long, value_name = "PATH", env = "APMTOP_LOG")]
    pub log: Option<PathBuf>,

    /// Headless: do not print progress lines on stderr.
    #[arg(short, long, env = "APMTOP_QUIET", value_parser = clap::builder::BoolishValueParser::new())]
    pub quiet: bool,

    /// Directory where the dashboard's `e` key writes snapshot reports.
    #[arg(long, value_name = "DIR", env = "APMTOP_SNAPSHOT_DIR", default_value = ".")]
    pub snapshot_dir: PathBuf,

    /// Dashboard redraws per second at most (it redraws only when data changed or a key was pressed).
    #[arg(long, value_name = "N", env = "APMTOP_FPS", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=30))]
    pub fps: u32,

    /// Append every OTLP export received, as received, to this capture file (see `apmtop replay`).
    #[arg(long, value_name = "FILE", env = "APMTOP_RECORD")]
    pub record: Option<PathBuf>,

    /// Process a capture file instead of listening, then stop (use with --headless --report).
    #[arg(long, value_name = "FILE", env = "APMTOP_REPLAY", conflicts_with = "record")]
    pub replay: Option<PathBuf>,

    /// Ask this database for the plans of the slowest query shapes and propose missing indexes:
    /// a SQLite file path or a postgres:// URL. Only EXPLAIN and catalog reads are ever run.
    #[arg(long, value_name = "DB", env = "APMTOP_EXPLAIN", value_parser = parse_explain)]
    pub explain: Option<String>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render a saved JSON report as Markdown, HTML or JSON.
    Report(ReportArgs),
    /// Check a saved report against budgets: exit 0 when all hold, 1 when one is broken, 2 on
    /// unusable input.
    Check(CheckArgs),
    /// Compare two reports, endpoint by endpoint.
    Diff(DiffArgs),
    /// Combine reports from several instances or shards into the report one apmtop would have
    /// written from all their spans.
    Merge(MergeArgs),
    /// Show a saved report in the dashboard (read-only).
    Open(OpenArgs),
    /// Re-send a capture file (from --record) to an OTLP/gRPC endpoint.
    Replay(ReplayArgs),
    /// Open the dashboard fed by a built-in synthetic app, over real OTLP.
    Demo(DemoArgs),
}

/// Output formats of `apmtop report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Markdown, for a pull-request comment.
    Markdown,
    /// One self-contained HTML page.
    Html,
    /// The JSON report itself.
    Json,
}

/// `apmtop report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The JSON report to render.
    #[arg(value_name = "SNAPSHOT")]
    pub snapshot: PathBuf,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "markdown")]
    pub format: ReportFormat,
    /// Write here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `apmtop check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The JSON report to check.
    #[arg(value_name = "SNAPSHOT")]
    pub snapshot: PathBuf,
    /// Budgets file (default: apmtop.toml in the current directory when it exists, else no N+1).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also write the result as JUnit XML: one test case per budget per endpoint.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// `apmtop diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The report before.
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The report after.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Exit 1 when something got worse beyond the tolerance, or an N+1 appeared or got worse.
    #[arg(long)]
    pub fail_on_regression: bool,
    /// Relative change ignored as noise, in percent (changes under 1 query or 1 ms always are).
    #[arg(long, value_name = "PERCENT", default_value_t = 10.0, value_parser = parse_tolerance)]
    pub tolerance: f64,
}

/// `apmtop merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Reports to combine (written by apmtop with their histograms).
    #[arg(value_name = "REPORT", required = true, num_args = 1..)]
    pub reports: Vec<PathBuf>,
    /// Where to write the merged report.
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
}

/// `apmtop open`.
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The JSON report to show.
    #[arg(value_name = "SNAPSHOT")]
    pub snapshot: PathBuf,
}

/// `apmtop replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The capture file.
    #[arg(value_name = "FILE")]
    pub capture: PathBuf,
    /// Where to send: an OTLP/gRPC endpoint URL.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:4317")]
    pub endpoint: String,
    /// Replay speed relative to the recording (2 = twice as fast).
    #[arg(long, value_name = "X", default_value_t = 1.0, conflicts_with = "max")]
    pub speed: f64,
    /// Send as fast as the endpoint accepts.
    #[arg(long)]
    pub max: bool,
}

/// `apmtop demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Requests per second the synthetic app sends.
    #[arg(long, value_name = "N", default_value_t = 20.0)]
    pub rate: f64,
}

/// Validated settings: nothing past this module sees raw flags.
#[derive(Debug, Clone)]
pub struct Settings {
    /// gRPC listen address.
    pub grpc: SocketAddr,
    /// HTTP listen address.
    pub http: SocketAddr,
    /// No terminal dashboard.
    pub headless: bool,
    /// JSON report path.
    pub report: Option<PathBuf>,
    /// Periodic report interval.
    pub report_every: Option<Duration>,
    /// N+1 threshold.
    pub n_plus_one_min: u32,
    /// Assembly grace period.
    pub grace: Duration,
    /// Endpoint cap.
    pub max_endpoints: usize,
    /// Log file.
    pub log: Option<PathBuf>,
    /// No progress lines.
    pub quiet: bool,
    /// Where the dashboard exports snapshots.
    pub snapshot_dir: PathBuf,
    /// Least time between two dashboard redraws.
    pub frame: Duration,
    /// Capture file to append exports to.
    pub record: Option<PathBuf>,
    /// Capture file to process instead of listening.
    pub replay: Option<PathBuf>,
    /// Database to ask for plans.
    pub explain: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from(Cli::parse_from(["apmtop"]))
    }
}

impl From<Cli> for Settings {
    fn from(cli: Cli) -> Self {
        Settings {
            grpc: cli.grpc,
            http: cli.http,
            headless: cli.headless,
            report: cli.report,
            report_every: cli.report_every.map(Duration::from_secs_f64),
            n_plus_one_min: cli.n_plus_one_min,
            grace: Duration::from_secs_f64(cli.grace),
            max_endpoints: usize::try_from(cli.max_endpoints).unwrap_or(usize::MAX),
            log: cli.log,
            quiet: cli.quiet,
            snapshot_dir: cli.snapshot_dir,
            frame: Duration::from_secs_f64(1.0 / f64::from(cli.fps)),
            record: cli.record,
            replay: cli.replay,
            explain: cli.explain,
        }
    }
}

/// `HOST:PORT`, `[v6]:PORT`, `:PORT` or `PORT` (the last two on 127.0.0.1).
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if !text.contains(':') {
        return Err("expected HOST:PORT or PORT, e.g. 127.0.0.1:4317".to_string());
    }
    text.to_socket_addrs()
        .map_err(|e| format!("cannot resolve {text:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    let value: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("{text:?} must be zero or more seconds"));
    }
    Ok(value)
}

fn parse_positive_seconds(text: &str) -> Result<f64, String> {
    let value = parse_seconds(text)?;
    if !(0.1..=86_400.0).contains(&value) {
        return Err("must be between 0.1 and 86400 seconds".to_string());
    }
    Ok(value)
}

fn parse_tolerance(text: &str) -> Result<f64, String> {
    let value: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a percentage"))?;
    if !value.is_finite() || !(0.0..=10_000.0).contains(&value) {
        return Err("must be a percentage between 0 and 10000".to_string());
    }
    Ok(value)
}

/// `--explain`: a postgres:// URL or an existing SQLite file (checked here, so a typo is exit 2).
fn parse_explain(text: &str) -> Result<String, String> {
    crate::explain::Target::parse(text).map(|_| text.to_string())
}

fn parse_grace(text: &str) -> Result<f64, String> {
    let value = parse_seconds(text)?;
    if value > 600.0 {
        return Err("must be at most 600 seconds".to_string());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("4317", "127.0.0.1:4317")]
    #[case(":0", "127.0.0.1:0")]
    #[case("0.0.0.0:4318", "0.0.0.0:4318")]
    #[case("[::1]:4317", "[::1]:4317")]
    fn addresses_parse(#[case] text: &str, #[case] expected: &str) {
        assert_eq!(parse_addr(text).expect("parses").to_string(), expected);
    }

    #[test]
    fn localhost_resolves() {
        assert!(parse_addr("localhost:4317").expect("resolves").ip().is_loopback());
    }

    #[rstest]
    #[case("nonsense")]
    #[case("host:notaport")]
    #[case("70000")]
    fn bad_addresses_are_refused(#[case] text: &str) {
        assert!(parse_addr(text).is_err());
    }

    #[test]
    fn defaults_match_the_contract() {
        let settings = Settings::from(Cli::parse_from(["apmtop"]));
        assert_eq!(settings.grpc.to_string(), "127.0.0.1:4317");
        assert_eq!(settings.http.to_string(), "127.0.0.1:4318");
        assert_eq!(settings.n_plus_one_min, 5);
        assert_eq!(settings.grace, Duration::from_secs(2));
        assert!(!settings.headless);
    }

    #[test]
    fn report_every_needs_report() {
        assert!(Cli::try_parse_from(["apmtop", "--report-every", "5"]).is_err());
        assert!(Cli::try_parse_from(["apmtop", "--report", "r.json", "--report-every", "5"]).is_ok());
    }

    #[test]
    fn n_plus_one_min_below_two_is_refused() {
        assert!(Cli::try_parse_from(["apmtop", "--n-plus-one-min", "1"]).is_err());
    }

    #[test]
    fn flags_have_help_text() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let command = Cli::command();
        let mut commands = vec![&command];
        commands.extend(command.get_subcommands());
        for command in commands {
            for arg in command.get_arguments() {
                assert!(arg.get_help().is_some(), "{} --{} has no help", command.get_name(), arg.get_id());
            }
        }
    }

    #[test]
    fn subcommands_parse_and_refuse_run_flags() {
        let cli = Cli::try_parse_from(["apmtop", "report", "r.json", "--format", "html", "-o", "r.html"]).expect("ok");
        assert!(matches!(cli.command, Some(Command::Report(ReportArgs { format: ReportFormat::Html, .. }))));
        assert!(Cli::try_parse_from(["apmtop", "merge", "-o", "all.json"]).is_err());
        assert!(Cli::try_parse_from(["apmtop", "--headless", "check", "r.json"]).is_err());
        assert!(Cli::try_parse_from(["apmtop", "replay", "c.bin", "--max", "--speed", "2"]).is_err());
    }
}
