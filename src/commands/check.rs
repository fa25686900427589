//! `apmtop check`: holds a saved report to the budgets of `apmtop.toml` (or the default "no
//! N+1"), prints one line per violation and a summary, optionally writes JUnit XML, and exits 0
//! when every budget holds, 1 when one is broken, 2 when the report or the config is unusable (a
//! report without any request counts as unusable: there is nothing to hold to a budget).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::CheckArgs;
use crate::config::ConfigSource;
use crate::report::{check, junit};

use super::{CommandError, Outcome, read_report, write_output};

/// Runs `apmtop check`.
pub fn run(args: CheckArgs) -> Outcome {
    let snapshot = read_report(&args.snapshot)?;
    if snapshot.totals.requests == 0 && snapshot.endpoints.is_empty() {
        // "All budgets hold" would hide an exporter that never reached apmtop.
        let audit = snapshot.audit.first().map(|entry| format!(" (audit: {})", entry.problem)).unwrap_or_default();
        return Err(CommandError::input(anyhow::anyhow!(
            "{} has no requests, so no budget can be checked: point the app's exporter at apmtop \
             (OTEL_EXPORTER_OTLP_ENDPOINT) while the tests run{}",
            args.snapshot.display(),
            crate::report::text::clean_line(&audit)
        )));
    }
    let source = ConfigSource::locate(args.config.as_deref(), Path::new("."));
    let config = source.load().map_err(CommandError::input)?;
    let evaluation = check::evaluate(&snapshot, &config);
    if let Some(path) = &args.junit {
        let xml = junit::render(&evaluation, &snapshot.generated_at);
        crate::report::write_atomic(path, xml.as_bytes())
            .with_context(|| "cannot write the JUnit file".to_string())
            .map_err(CommandError::runtime)?;
    }
    write_output(None, check::render_text(&evaluation, &source.describe()).as_bytes())?;
    Ok(if evaluation.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
