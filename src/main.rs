//! The `apmtop` binary: parses flags, sets up logging and signals, runs the pipeline, and turns
//! errors into one clear line and an exit code (0 ok, 1 runtime error, 2 usage error).

use std::process::ExitCode;

use anyhow::Context;
use apmtop::cli::{Cli, Command, Settings};
use apmtop::{commands, pipeline, report, tui};
use clap::Parser;
use clap::error::ErrorKind;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    if let Some(command) = cli.command {
        return run_command(command);
    }
    let settings = Settings::from(cli);
    if let Some(path) = &settings.report
        && let Err(message) = report::check_writable(path)
    {
        eprintln!("apmtop: error: {message}");
        return ExitCode::from(1);
    }
    if !settings.headless
        && settings.replay.is_none()
        && let Err(message) = tui::check_terminal()
    {
        eprintln!("apmtop: error: {message}");
        return ExitCode::from(1);
    }
    if let Err(error) = init_logging(&settings) {
        eprintln!("apmtop: error: {}", commands::error_line(&error));
        return ExitCode::from(1);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("apmtop: error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    if let Some(capture) = settings.replay.clone() {
        return runtime.block_on(replay_capture(settings, capture));
    }
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("apmtop: error: {}", commands::error_line(&error));
            ExitCode::from(1)
        }
    }
}

/// Runs a subcommand; its errors are one line on stderr.
fn run_command(command: Command) -> ExitCode {
    let outcome = match command {
        Command::Report(args) => commands::report::run(args),
        Command::Check(args) => commands::check::run(args),
        Command::Diff(args) => commands::diff::run(args),
        Command::Merge(args) => commands::merge::run(args),
        Command::Open(args) => commands::open::run(args),
        Command::Replay(args) => commands::replay::run(args),
        Command::Demo(args) => commands::demo::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("apmtop: error: {error}");
            ExitCode::from(error.exit_code())
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
    eprintln!("apmtop: error: {}", one_line_usage_error(&rendered));
    ExitCode::from(2)
}

/// clap's error as one line: its message (which may span lines, e.g. the list of missing
/// arguments), then where to read more: the help of the (sub)command its usage line names.
fn one_line_usage_error(rendered: &str) -> String {
    let message: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .filter(|line| !line.is_empty())
        .collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    let command: Vec<&str> = rendered
        .lines()
        .find_map(|line| line.trim().strip_prefix("Usage:"))
        .map(|usage| usage.split_whitespace().take_while(|word| !word.starts_with(['-', '<', '['])).collect())
        .unwrap_or_default();
    let command = if command.is_empty() { invoked_command() } else { command.join(" ") };
    let message = if message.is_empty() { "invalid arguments" } else { message };
    format!("{message} (see '{command} --help')")
}

/// `apmtop SUBCOMMAND` when the first argument names a subcommand, else `apmtop`.
fn invoked_command() -> String {
    use clap::CommandFactory;
    let first = std::env::args().nth(1).unwrap_or_default();
    match Cli::command().get_subcommands().find(|sub| sub.get_name() == first) {
        Some(sub) => format!("apmtop {}", sub.get_name()),
        None => "apmtop".to_string(),
    }
}

fn init_logging(settings: &Settings) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let Some(path) = &settings.log else {
        // No log file: headless, only warnings, on stderr; with the dashboard, nothing, since
        // anything written to the terminal would land on the screen being drawn.
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
        if settings.headless {
            tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
        } else {
            tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::sink).init();
        }
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
    let dashboard = if settings.headless {
        signals.recv().await;
        Ok(())
    } else {
        // The listening line above stays on the normal screen; the dashboard takes the
        // alternate one and gives it back before `run` returns, whatever happened. If it fails,
        // the pipeline still shuts down in order and the report is still written.
        let config = tui::TuiConfig {
            grpc_addr: running.grpc_addr,
            http_addr: running.http_addr,
            snapshot_dir: settings.snapshot_dir.clone(),
            frame: settings.frame,
            control: Some(running.control.clone()),
        };
        tui::run(config, running.snapshots.clone(), signals.recv()).await.context("the dashboard failed")
    };
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
    dashboard
}

/// `--replay FILE`: processes a capture without listening and writes the report.
async fn replay_capture(settings: Settings, capture: std::path::PathBuf) -> ExitCode {
    let (snapshot, counts) = match pipeline::replay::run(&settings, &capture).await {
        Ok(done) => done,
        Err(error) => {
            eprintln!("apmtop: error: {error}");
            return ExitCode::from(error.exit_code());
        }
    };
    if !settings.quiet {
        eprintln!(
            "apmtop: replayed {} exports from {}: {}",
            counts.records,
            capture.display(),
            pipeline::progress_line(&snapshot)
        );
    }
    if let Some(path) = settings.report.clone() {
        let target = path.clone();
        let written = tokio::task::spawn_blocking(move || report::write_json(&target, &snapshot)).await;
        let failure = match written {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(error) => Some(format!("the report task failed: {error}")),
        };
        if let Some(message) = failure {
            eprintln!("apmtop: error: {message}");
            return ExitCode::from(1);
        }
        if !settings.quiet {
            eprintln!("apmtop: report written to {}", path.display());
        }
    }
    ExitCode::SUCCESS
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
