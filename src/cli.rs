//! Command-line flags (clap, each with an environment fallback) and the one validated
//! [`Settings`] that the rest of the program sees.
//!
//! The flags are a contract relied on by scripts and CI: they may gain siblings, never change.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

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

Exit codes: 0 ok, 1 runtime error (e.g. address in use), 2 bad flag or value.";

/// Raw flags, as clap parses them.
#[derive(Debug, Parser)]
#[command(name = "apmtop", version, about = ABOUT, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    /// Address for OTLP/gRPC: HOST:PORT, or just PORT for 127.0.0.1:PORT; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", env = "APMTOP_GRPC", default_value = "127.0.0.1:4317", value_parser = parse_addr)]
    pub grpc: SocketAddr,

    /// Address for OTLP/HTTP (POST /v1/traces): HOST:PORT, or just PORT; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", env = "APMTOP_HTTP", default_value = "127.0.0.1:4318", value_parser = parse_addr)]
    pub http: SocketAddr,

    /// Run without the terminal dashboard (for CI and scripts).
    #[arg(long, env = "APMTOP_HEADLESS")]
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
    #[arg(short, long, env = "APMTOP_QUIET")]
    pub quiet: bool,

    /// Directory where the dashboard's `e` key writes snapshot reports.
    #[arg(long, value_name = "DIR", env = "APMTOP_SNAPSHOT_DIR", default_value = ".")]
    pub snapshot_dir: PathBuf,
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
        for arg in Cli::command().get_arguments() {
            assert!(arg.get_help().is_some(), "--{} has no help", arg.get_id());
        }
    }
}
