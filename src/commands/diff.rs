//! `apmtop diff`: not yet built.

use crate::cli::DiffArgs;

use super::{CommandError, Outcome};

/// Runs `apmtop diff`.
pub fn run(_args: DiffArgs) -> Outcome {
    Err(CommandError::input(anyhow::anyhow!("apmtop diff is not available in this build yet")))
}
