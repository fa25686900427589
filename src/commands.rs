//! The subcommands (`apmtop report`, `check`, `diff`, `merge`, `open`, `replay`, `demo`): each one
//! reads its inputs, calls the library, and maps the outcome to an exit code. The domain work
//! lives in the stage modules (`report`, `aggregate`, ...); these files are the thin edge.

pub mod check;
pub mod demo;
pub mod diff;
pub mod merge;
pub mod open;
pub mod replay;
pub mod report;

use std::fmt;
use std::path::Path;
use std::process::ExitCode;

use crate::snapshot::Snapshot;

/// What a subcommand returns: the exit code on success, or an error with its own code.
pub type Outcome = Result<ExitCode, CommandError>;

/// A subcommand failed: unusable input (exit 2) or a runtime failure (exit 1).
#[derive(Debug)]
pub struct CommandError {
    code: u8,
    error: anyhow::Error,
}

impl CommandError {
    /// Unusable input: a missing or malformed file, a bad value (exit 2).
    pub fn input(error: impl Into<anyhow::Error>) -> Self {
        CommandError { code: 2, error: error.into() }
    }

    /// Something failed while doing the work: a write, a connection (exit 1).
    pub fn runtime(error: impl Into<anyhow::Error>) -> Self {
        CommandError { code: 1, error: error.into() }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        self.code
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&error_line(&self.error))
    }
}

/// An error and its causes on one line, `outer: cause: cause`, leaving out a cause whose text the
/// line already holds (error types that print their source in their own message).
pub fn error_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

impl From<anyhow::Error> for CommandError {
    fn from(error: anyhow::Error) -> Self {
        CommandError::runtime(error)
    }
}

/// Reads a JSON report, as unusable input (exit 2) when it cannot be read or is not a report.
pub fn read_report(path: &Path) -> Result<Snapshot, CommandError> {
    crate::report::json::read(path).map_err(CommandError::input)
}

/// Writes `bytes` to `output` atomically, or to standard output when there is none.
pub fn write_output(output: Option<&Path>, bytes: &[u8]) -> Result<(), CommandError> {
    use std::io::Write;
    match output {
        Some(path) => crate::report::write_atomic(path, bytes).map_err(CommandError::runtime),
        None => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
                Ok(()) => Ok(()),
                // A closed pipe (`| head`) is the reader's choice, not a failure.
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                Err(error) => Err(CommandError::runtime(anyhow::Error::new(error).context("cannot write to stdout"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let path = std::path::Path::new("/nonexistent/r.json");
        let error = anyhow::Error::new(crate::report::json::read(path).expect_err("missing"));
        let line = error_line(&error);
        assert_eq!(line.matches("No such file").count(), 1, "{line}");
        let layered = anyhow::anyhow!("disk full").context("writing the merged report to all.json");
        assert_eq!(error_line(&layered), "writing the merged report to all.json: disk full");
    }
}
