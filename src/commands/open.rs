//! `apmtop open SNAPSHOT.json`: the dashboard on a saved report, read-only.
//!
//! The report is read once and held in a watch channel that never changes; no receiver listens.
//! Every view works on it; the keys that need a live pipeline (the trace view, `w`, `c`) say so
//! in the status line instead.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;

use super::{CommandError, Outcome, read_report};
use crate::cli::OpenArgs;
use crate::tui;

/// Runs `apmtop open`.
pub fn run(args: OpenArgs) -> Outcome {
    let snapshot = read_report(&args.snapshot)?;
    tui::check_terminal().map_err(|message| CommandError::runtime(anyhow::anyhow!(message)))?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    // Held for as long as the dashboard runs: a closed channel would end nothing, but this keeps
    // the one snapshot there for every read.
    let (_hold, snapshots) = watch::channel(Arc::new(snapshot));
    let unbound = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    let config = tui::TuiConfig {
        grpc_addr: unbound,
        http_addr: unbound,
        snapshot_dir: std::env::current_dir().context("reading the current directory")?,
        control: None,
        frame: tui::FRAME,
    };
    runtime.block_on(tui::run(config, snapshots, tui::stop_signal())).context("the dashboard failed")?;
    Ok(std::process::ExitCode::SUCCESS)
}
