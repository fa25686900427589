//! `apmtop diff OLD NEW`: compares two saved reports endpoint by endpoint, prints the table, and
//! with `--fail-on-regression` exits 1 when something got worse beyond the tolerance.

use std::process::ExitCode;

use crate::cli::DiffArgs;
use crate::report::diff;

use super::{Outcome, read_report, write_output};

/// Runs `apmtop diff`.
pub fn run(args: DiffArgs) -> Outcome {
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
