//! `apmtop report`: not yet built.

use crate::cli::ReportArgs;

use super::{CommandError, Outcome};

/// Runs `apmtop report`.
pub fn run(_args: ReportArgs) -> Outcome {
    Err(CommandError::input(anyhow::anyhow!("apmtop report is not available in this build yet")))
}
