//! The `apmtop` binary: parses flags, sets up logging and signals, runs the pipeline, and turns
//! errors into one clear line and an exit code (0 ok, 1 runtime error, 2 usage error).

use std::process::ExitCode;

use anyhow::Context;
use apmtop::cli::{Cli, Settings};
use apmtop::{pipeline, report};
use clap::Parser;
use clap::error::ErrorKind;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    let settings = Settings::from(cli);
    if let Some(path) = &settings.report
        && let Err(message) = report::check_writable(path)
    {
        eprintln!("apmtop: error: {message}");
        return ExitCode::from(1);
    }
    if let Err(error) = init_logging(&settings) {
        eprintln!("apmtop: error: {error:#}");
        return ExitCode::from(1);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("apmtop: error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("apmtop: error: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// Help and version go to stdout with exit 0; anything else is one line on stderr, exit 2.
fn usage_error(error: clap::Error) -> ExitCode {
    if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let rendered = error.render().to_string();
    let first = rendered.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    eprintln!("apmtop: error: {first} (see 'apmtop --help')");
    ExitCode::from(2)
}

fn init_logging(settings: &Settings) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let Some(path) = &settings.log else {
        // No log file: only warnings, on stderr (the dashboard will own the screen).
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
        return Ok(());
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the log file {}", path.display()))?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(std::sync::Mutex::new(file)).init();
    Ok(())
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    // Listen for signals before anything announces that apmtop is up: a script may signal at once.
    let mut signals = StopSignals::new()?;
    let running = pipeline::start(&settings).await?;
    eprintln!("apmtop: listening grpc={} http={}", running.grpc_addr, running.http_addr);
    if !settings.headless {
        eprintln!("apmtop: the live dashboard is not built yet; running headless (Ctrl-C to stop)");
    }
    signals.recv().await;
    // A second signal during shutdown exits at once.
    tokio::spawn(async move {
        signals.recv().await;
        eprintln!("apmtop: interrupted again; exiting without finishing");
        std::process::exit(130);
    });
    let snapshot = running.shutdown().await?;
    if let Some(path) = &settings.report {
        let target = path.clone();
        tokio::task::spawn_blocking(move || report::write_json(&target, &snapshot))
            .await
            .context("the report task failed")??;
        if !settings.quiet {
            eprintln!("apmtop: report written to {}", path.display());
        }
    }
    Ok(())
}

/// SIGINT and SIGTERM, registered once at start-up.
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }

    /// Resolves on the next SIGINT or SIGTERM.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
