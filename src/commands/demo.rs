//! `apmtop demo`: the dashboard fed by a built-in synthetic app ([`crate::demo`]) that sends its
//! requests over real OTLP/gRPC to apmtop's own receiver, on free ports.
//!
//! The pipeline starts as in a normal run (loopback, port 0), the generator runs as a task, and
//! the dashboard shows the result; on quit the generator stops first, then the pipeline shuts
//! down in order.

use std::process::ExitCode;

use anyhow::Context;
use tokio::sync::oneshot;

use super::{CommandError, Outcome};
use crate::cli::{DemoArgs, Settings};
use crate::{demo, pipeline, tui};

/// Runs `apmtop demo`.
pub fn run(args: DemoArgs) -> Outcome {
    if !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= demo::MAX_RATE) {
        return Err(CommandError::input(anyhow::anyhow!(
            "--rate must be a number of requests per second above 0 and at most {}",
            demo::MAX_RATE
        )));
    }
    tui::check_terminal().map_err(|message| CommandError::runtime(anyhow::anyhow!(message)))?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(run_demo(args.rate))?;
    Ok(ExitCode::SUCCESS)
}

async fn run_demo(rate: f64) -> anyhow::Result<()> {
    let loopback = std::net::Ipv4Addr::LOCALHOST;
    let settings = Settings {
        grpc: (loopback, 0).into(),
        http: (loopback, 0).into(),
        grace: std::time::Duration::from_millis(500),
        // Nothing from the environment that writes files or onto the screen.
        headless: false,
        quiet: true,
        report: None,
        report_every: None,
        ..Settings::default()
    };
    let running = pipeline::start(&settings).await?;
    let (stop_generator, generator_stop) = oneshot::channel();
    let generator = tokio::spawn(demo::run(format!("http://{}", running.grpc_addr), rate, generator_stop));
    let config = tui::TuiConfig {
        grpc_addr: running.grpc_addr,
        http_addr: running.http_addr,
        snapshot_dir: std::env::current_dir().context("reading the current directory")?,
        control: Some(running.control.clone()),
        frame: tui::FRAME,
    };
    let dashboard = tui::run(config, running.snapshots.clone(), tui::stop_signal()).await;
    let _ = stop_generator.send(());
    let generated = generator.await.context("the demo generator task failed")?;
    running.shutdown().await?;
    dashboard.context("the dashboard failed")?;
    generated.map(|_| ())
}
