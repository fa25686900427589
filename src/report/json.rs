//! The JSON report: the snapshot under a versioned envelope (`apmtop_report` = schema version).
//! The schema is documented in the README; fields may be added, never renamed or removed.

use serde::Serialize;

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
}
