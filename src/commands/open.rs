//! `apmtop open`: not yet built.

use crate::cli::OpenArgs;

use super::{CommandError, Outcome};

/// Runs `apmtop open`.
pub fn run(_args: OpenArgs) -> Outcome {
    Err(CommandError::input(anyhow::anyhow!("apmtop open is not available in this build yet")))
}
