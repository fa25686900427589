//! `apmtop replay`: not yet built.

use crate::cli::ReplayArgs;

use super::{CommandError, Outcome};

/// Runs `apmtop replay`.
pub fn run(_args: ReplayArgs) -> Outcome {
    Err(CommandError::input(anyhow::anyhow!("apmtop replay is not available in this build yet")))
}
