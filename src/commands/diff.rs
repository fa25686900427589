//! `apmtop diff OLD NEW`: compares two saved reports endpoint by endpoint, prints the table, and
//! with `--fail-on-regression` exits 1 when something got worse beyond the tolerance.

use std::process::ExitCode;

use crate::cli::DiffArgs;
use crate::report::diff;

use super::{CommandError, Outcome, read_report, write_output};

/// Largest tolerance accepted, percent.
const MAX_TOLERANCE_PERCENT: f64 = 10_000.0;

/// Runs `apmtop diff`.
pub fn run(args: DiffArgs) -> Outcome {
    if !args.tolerance.is_finite() || !(0.0..=MAX_TOLERANCE_PERCENT).contains(&args.tolerance) {
        return Err(CommandError::input(anyhow::anyhow!(
            "--tolerance must be a percentage between 0 and {MAX_TOLERANCE_PERCENT}, not {}",
            args.tolerance
        )));
    }
    let old = read_report(&args.old)?;
    let new = read_report(&args.new)?;
    let result = diff::diff(&old, &new, args.tolerance);
    let mut text = diff::render_text(&result);
    let regressions = result.regressions();
    if args.fail_on_regression && regressions > 0 {
        text.push_str(&format!(
            "apmtop diff: regression: {} got worse beyond {}% (or gained an N+1)\n",
            crate::report::text::plural(regressions, "endpoint", "endpoints"),
            args.tolerance
        ));
    }
    write_output(None, text.as_bytes())?;
    Ok(if args.fail_on_regression && regressions > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
