//! Writes a [`Snapshot`] to a file. One module per format (`json`, `markdown`, `html`), plus
//! what CI reads from reports (`check`: budgets, `junit`: their XML, `diff`: two reports
//! compared) and `merge`, which combines reports exactly. All writes are atomic: the report goes
//! to a temporary file in the same directory, is flushed to disk, then renamed over the target,
//! so a reader never sees half a report and a failed write leaves the old file.

pub mod check;
pub mod diff;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod text;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::snapshot::Snapshot;

/// A report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Writing or renaming the file failed.
    #[error("cannot write the report to {path}: {source}")]
    Write {
        /// The report path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The report could not be serialized.
    #[error("cannot serialize the report: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Writes the JSON report of `snapshot` to `path`, atomically.
pub fn write_json(path: &Path, snapshot: &Snapshot) -> Result<(), ReportError> {
    let bytes = json::render(snapshot)?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let fail = |source| ReportError::Write { path: path.to_path_buf(), source };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "report".into());
    let temp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if let Err(error) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(fail(error));
    }
    Ok(())
}

/// Checks before start-up that a report can be written at `path`: its directory exists.
pub fn check_writable(path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(format!(
            "cannot write the report to {}: directory {} does not exist",
            path.display(),
            dir.display()
        ));
    }
    if path.is_dir() {
        return Err(format!("cannot write the report to {}: it is a directory", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.json");
        write_atomic(&path, b"old").expect("first write");
        write_atomic(&path, b"new").expect("second write");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.json");
        write_atomic(&path, b"old").expect("write");
        // A directory where the temp file should go makes the write fail.
        let blocked = dir.path().join(format!(".r.json.{}.tmp", std::process::id()));
        std::fs::create_dir(&blocked).expect("mkdir");
        assert!(write_atomic(&path, b"new").is_err());
        assert_eq!(std::fs::read(&path).expect("read"), b"old");
    }

    #[test]
    fn missing_directory_is_reported_before_start() {
        let error = check_writable(Path::new("/nonexistent-dir-apmtop/r.json")).expect_err("must fail");
        assert!(error.contains("does not exist"), "{error}");
    }
}
