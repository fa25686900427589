//! The JSON report: the snapshot under a versioned envelope (`apmtop_report` = schema version).
//! The schema is documented in the README; fields may be added, never renamed or removed.
//!
//! [`read`] loads a report back (for `apmtop report`, `check`, `diff`, `merge`, `open`): fields
//! added by later versions are ignored, fields missing in older ones take their defaults.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::snapshot::Snapshot;

/// Version of the JSON report schema.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Envelope<'a> {
    apmtop_report: u32,
    apmtop_version: &'static str,
    #[serde(flatten)]
    snapshot: &'a Snapshot,
}

/// Largest report file read back.
const MAX_REPORT_BYTES: u64 = 1 << 30;

/// A report file could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("cannot read the report {path}: {source}")]
    Io {
        /// The report path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than any report apmtop writes.
    #[error(
        "cannot read the report {path}: it is {size} bytes, more than the {MAX_REPORT_BYTES} bytes a report can be"
    )]
    TooLarge {
        /// The report path.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The file is not JSON, or not shaped like a report.
    #[error("{path} is not a valid apmtop report: {source}")]
    Invalid {
        /// The report path.
        path: PathBuf,
        /// What serde found.
        source: serde_json::Error,
    },
    /// The JSON has no `apmtop_report` version field.
    #[error("{path} is not an apmtop report (no \"apmtop_report\" field); write one with `apmtop --report FILE`")]
    NotAReport {
        /// The report path.
        path: PathBuf,
    },
}

#[derive(Deserialize)]
struct OwnedEnvelope {
    apmtop_report: Option<u32>,
    #[serde(flatten)]
    snapshot: Snapshot,
}

/// Reads a JSON report written by any version of apmtop.
pub fn read(path: &Path) -> Result<Snapshot, ReadError> {
    let io = |source| ReadError::Io { path: path.to_path_buf(), source };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_REPORT_BYTES {
        return Err(ReadError::TooLarge { path: path.to_path_buf(), size });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    parse(&bytes).map_err(|error| match error {
        None => ReadError::NotAReport { path: path.to_path_buf() },
        Some(source) => ReadError::Invalid { path: path.to_path_buf(), source },
    })
}

/// Parses report bytes; `Err(None)` when the JSON is not an apmtop report.
pub fn parse(bytes: &[u8]) -> Result<Snapshot, Option<serde_json::Error>> {
    let envelope: OwnedEnvelope = serde_json::from_slice(bytes).map_err(Some)?;
    match envelope.apmtop_report {
        Some(_) => Ok(envelope.snapshot),
        None => Err(None),
    }
}

/// The report as pretty-printed JSON bytes.
pub fn render(snapshot: &Snapshot) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = serde_json::to_vec_pretty(&Envelope {
        apmtop_report: SCHEMA_VERSION,
        apmtop_version: env!("CARGO_PKG_VERSION"),
        snapshot,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_carries_the_schema_version_and_top_level_fields() {
        let value: serde_json::Value =
            serde_json::from_slice(&render(&Snapshot::default()).expect("render")).expect("json");
        assert_eq!(value["apmtop_report"], 1);
        for field in ["generated_at", "totals", "endpoints", "queries", "audit"] {
            assert!(value.get(field).is_some(), "missing {field}");
        }
        for field in ["spans_received", "requests", "spans_dropped", "traces_incomplete"] {
            assert!(value["totals"].get(field).is_some(), "missing totals.{field}");
        }
    }

    #[test]
    fn a_report_reads_back_to_the_same_json() {
        let snapshot = crate::tui::testing::sample_snapshot();
        let bytes = render(&snapshot).expect("render");
        let again = render(&parse(&bytes).expect("reads back")).expect("render again");
        assert_eq!(String::from_utf8_lossy(&bytes), String::from_utf8_lossy(&again));
    }

    #[test]
    fn older_reports_without_new_fields_still_read() {
        let old = br#"{"apmtop_report":1,"generated_at":"x","totals":{"requests":3},"endpoints":[],"queries":[]}"#;
        let snapshot = parse(old).expect("reads");
        assert_eq!(snapshot.totals.requests, 3);
        assert!(snapshot.findings.is_empty());
    }

    #[test]
    fn other_json_is_not_a_report() {
        assert!(matches!(parse(br#"{"hello": 1}"#), Err(None)));
        assert!(matches!(parse(b"not json"), Err(Some(_))));
        let dir = tempfile::tempdir().expect("tempdir");
        let error = read(&dir.path().join("missing.json")).expect_err("missing");
        assert!(error.to_string().contains("cannot read the report"), "{error}");
    }
}
