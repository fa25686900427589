//! `apmtop report`: renders a saved JSON report as Markdown, HTML or JSON, to a file (written
//! atomically) or to standard output.

use crate::cli::{ReportArgs, ReportFormat};
use crate::report::{html, json, markdown};

use super::{CommandError, Outcome, read_report, write_output};

/// Runs `apmtop report`.
pub fn run(args: ReportArgs) -> Outcome {
    let snapshot = read_report(&args.snapshot)?;
    let bytes = match args.format {
        ReportFormat::Markdown => markdown::render(&snapshot).into_bytes(),
        ReportFormat::Html => html::render(&snapshot).into_bytes(),
        ReportFormat::Json => {
            json::render(&snapshot).map_err(|error| CommandError::runtime(anyhow::Error::new(error)))?
        }
    };
    write_output(args.output.as_deref(), &bytes)?;
    Ok(std::process::ExitCode::SUCCESS)
}
