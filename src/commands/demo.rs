//! `apmtop demo`: not yet built.

use crate::cli::DemoArgs;

use super::{CommandError, Outcome};

/// Runs `apmtop demo`.
pub fn run(_args: DemoArgs) -> Outcome {
    Err(CommandError::input(anyhow::anyhow!("apmtop demo is not available in this build yet")))
}
