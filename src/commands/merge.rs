//! `apmtop merge A.json B.json ... -o ALL.json`: combines reports from several instances or
//! shards into the report one apmtop would have written from all their spans.

use std::process::ExitCode;

use anyhow::Context;

use super::{CommandError, Outcome, read_report};
use crate::cli::MergeArgs;
use crate::report::{self, merge};

/// Runs `apmtop merge`.
pub fn run(args: MergeArgs) -> Outcome {
    let mut reports = Vec::with_capacity(args.reports.len());
    for path in &args.reports {
        reports.push((path.display().to_string(), read_report(path)?));
    }
    let merged = merge::merge(&reports).map_err(CommandError::input)?;
    report::check_writable(&args.output).map_err(|message| CommandError::runtime(anyhow::anyhow!(message)))?;
    report::write_json(&args.output, &merged)
        .with_context(|| format!("writing the merged report to {}", args.output.display()))?;
    eprintln!(
        "apmtop: merged {} reports ({} requests, {} endpoints) into {}",
        reports.len(),
        merged.totals.requests,
        merged.endpoints.len(),
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
