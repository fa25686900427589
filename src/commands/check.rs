//! `apmtop check`: not yet built.

use crate::cli::CheckArgs;

use super::{CommandError, Outcome};

/// Runs `apmtop check`.
pub fn run(_args: CheckArgs) -> Outcome {
    Err(CommandError::input(anyhow::anyhow!("apmtop check is not available in this build yet")))
}
