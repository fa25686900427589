//! `apmtop merge`: not yet built.

use crate::cli::MergeArgs;

use super::{CommandError, Outcome};

/// Runs `apmtop merge`.
pub fn run(_args: MergeArgs) -> Outcome {
    Err(CommandError::input(anyhow::anyhow!("apmtop merge is not available in this build yet")))
}
