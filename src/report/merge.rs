//! Merging reports: several reports (from app instances, CI shards, or apmtop instances behind a
//! load-balancing collector) become the one report a single apmtop would have written from all
//! their spans. It works on each report's lossless `aggregates` (serialized hdrhistograms and
//! exact sums), never on the rounded summaries, so percentiles come out exact rather than
//! averaged.
//!
//! The inputs must have been analyzed the same way (same `--n-plus-one-min` and `--grace`);
//! requests of one trace must all be in one input, which routing by trace id guarantees.

use std::sync::Arc;

use crate::aggregate::{self, AggregateConfig, Aggregates, AggregatesState};
use crate::explain;
use crate::snapshot::{FindingSnapshot, Snapshot, Totals};

/// Why reports cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no reports to merge")]
    Empty,
    /// A report carries no lossless aggregates.
    #[error(
        "{0} carries no aggregates (it was exported from the dashboard or written by an older apmtop); merge needs reports written with `apmtop --report FILE`"
    )]
    NoAggregates(String),
    /// A report's aggregates do not parse.
    #[error("{name}: its aggregates are not readable: {reason}")]
    BadAggregates {
        /// The report.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The reports were analyzed with different settings.
    #[error(
        "{name} was analyzed with {setting} = {theirs}, {first} with {ours}: merge reports taken with the same settings"
    )]
    Settings {
        /// The report that differs.
        name: String,
        /// The first report.
        first: String,
        /// The setting.
        setting: &'static str,
        /// Its value in the first report.
        ours: String,
        /// Its value in this report.
        theirs: String,
    },
}

/// Merges named reports (the names are for messages). The result carries merged aggregates
/// too, so merges compose.
pub fn merge(reports: &[(String, Snapshot)]) -> Result<Snapshot, MergeError> {
    let (first_name, first) = reports.first().ok_or(MergeError::Empty)?;
    let settings = &first.settings;
    let config = AggregateConfig {
        max_endpoints: match settings.max_endpoints {
            0 => AggregateConfig::default().max_endpoints,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        },
        n_plus_one_min: settings.n_plus_one_min,
        grace_seconds: settings.grace_seconds,
        ..AggregateConfig::default()
    };
    let mut merged: Option<(Aggregates, Totals)> = None;
    for (name, report) in reports {
        for (setting, ours, theirs) in [
            ("n_plus_one_min", settings.n_plus_one_min.to_string(), report.settings.n_plus_one_min.to_string()),
            ("grace_seconds", settings.grace_seconds.to_string(), report.settings.grace_seconds.to_string()),
        ] {
            if ours != theirs {
                return Err(MergeError::Settings {
                    name: name.clone(),
                    first: first_name.clone(),
                    setting,
                    ours,
                    theirs,
                });
            }
        }
        let (aggregates, receivers) = state_of(name, report, &config)?;
        match &mut merged {
            None => merged = Some((aggregates, receivers)),
            Some((all, totals)) => {
                all.merge(&aggregates);
                aggregate::add_receiver_counters(totals, &receivers);
            }
        }
    }
    let (all, receivers) = merged.ok_or(MergeError::Empty)?;
    let mut snapshot = all.snapshot(receivers.clone(), 0);
    // Missing indexes come from the database, not from the spans: each report's stand as they
    // are (the same shape from several reports once, at its highest cost).
    let mut explained: Vec<FindingSnapshot> = Vec::new();
    for finding in reports.iter().flat_map(|(_, r)| &r.findings).filter(|f| explain::is_explain_finding(f)) {
        match explained.iter_mut().find(|kept| kept.id == finding.id) {
            Some(kept) if kept.cost_ms_total < finding.cost_ms_total => *kept = finding.clone(),
            Some(_) => {}
            None => explained.push(finding.clone()),
        }
    }
    explain::merge_findings(&mut snapshot.findings, &explained);
    if let Ok(state) = serde_json::to_value(all.to_state(&receivers)) {
        snapshot.aggregates = Some(Arc::new(state));
    }
    Ok(snapshot)
}

fn state_of(name: &str, report: &Snapshot, config: &AggregateConfig) -> Result<(Aggregates, Totals), MergeError> {
    let value = report.aggregates.as_ref().ok_or_else(|| MergeError::NoAggregates(name.to_string()))?;
    let bad = |reason: String| MergeError::BadAggregates { name: name.to_string(), reason };
    let state = AggregatesState::deserialize_value(value).map_err(|e| bad(e.to_string()))?;
    Aggregates::from_state(config.clone(), state).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Analyzer;
    use crate::analyze::test_support::{query, root};
    use crate::model::{Request, TraceId};
    use proptest::prelude::*;

    /// One synthetic request: trace `trace`, route `route`, `n` author lookups (an N+1 from 5),
    /// `dups` identical count queries, lasting `ms` milliseconds, failing when `error`.
    #[derive(Debug, Clone)]
    struct Spec {
        route: u8,
        n: u8,
        dups: u8,
        ms: u16,
        error: bool,
    }

    fn request(trace: u32, spec: &Spec) -> Request {
        let mut root = root();
        root.trace_id = TraceId(u128::from(trace).to_be_bytes());
        root.end_ns = u64::from(spec.ms) * 1_000_000 + u64::from(trace % 7) * 1_000;
        root.is_error = spec.error;
        if let Some(http) = root.http.as_mut() {
            http.route = Some(format!("/r{}", spec.route).into());
        }
        let mut spans = Vec::new();
        for i in 0..spec.n {
            spans.push(query(10 + i, 1, &format!("SELECT * FROM author WHERE id = {i}"), u64::from(i)));
        }
        for i in 0..spec.dups {
            spans.push(query(100 + i, 1, "SELECT COUNT(*) FROM book", 50 + u64::from(i)));
        }
        for span in &mut spans {
            span.trace_id = root.trace_id;
        }
        Request { root, spans }
    }

    /// Which endpoints fold into the overflow row past `--max-endpoints` depends on arrival
    /// order, live or merged; the property holds below the cap.
    fn config() -> AggregateConfig {
        AggregateConfig::default()
    }

    fn report_json(snapshot: &Snapshot) -> serde_json::Value {
        let mut value = serde_json::to_value(snapshot).expect("serialize");
        value["generated_at"] = serde_json::Value::Null;
        value["aggregates"] = serde_json::Value::Null;
        value
    }

    /// Aggregates of `requests` written to a report and read back, as `apmtop --report` does.
    fn written_report(requests: &[(u32, &Spec)], receivers: &Totals) -> Snapshot {
        let mut analyzer = Analyzer::new(5, 100);
        let mut aggregates = Aggregates::new(config());
        for (trace, spec) in requests {
            aggregates.record(&analyzer.analyze(request(*trace, spec)));
        }
        let mut snapshot = aggregates.snapshot(receivers.clone(), 0);
        let state = serde_json::to_value(aggregates.to_state(receivers)).expect("state");
        snapshot.aggregates = Some(Arc::new(state));
        crate::report::json::parse(&crate::report::json::render(&snapshot).expect("render")).expect("parse")
    }

    fn spec() -> impl Strategy<Value = Spec> {
        (0u8..5, 0u8..9, 0u8..4, 1u16..2000, prop::bool::weighted(0.1)).prop_map(|(route, n, dups, ms, error)| Spec {
            route,
            n,
            dups,
            ms,
            error,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Several instances fed disjoint sets of whole traces, merged, equal one instance fed
        /// all of them: percentiles, examples, slowest lists, overflow rows and totals included.
        #[test]
        fn merged_reports_equal_one_instance_fed_everything(
            specs in prop::collection::vec(spec(), 1..60),
            shard_of in prop::collection::vec(0usize..3, 60),
        ) {
            let traces: Vec<(u32, &Spec)> = specs.iter().enumerate().map(|(i, s)| (i as u32 + 1, s)).collect();
            let receivers = |n: u64| Totals { spans_received: n * 10, trace_exports: n, ..Totals::default() };
            let mut shards: Vec<Vec<(u32, &Spec)>> = vec![Vec::new(); 3];
            for (i, trace) in traces.iter().enumerate() {
                shards[shard_of[i]].push(*trace);
            }
            let reports: Vec<(String, Snapshot)> = shards
                .iter()
                .enumerate()
                .map(|(i, shard)| (format!("shard{i}.json"), written_report(shard, &receivers(shard.len() as u64))))
                .collect();
            let merged = merge(&reports).expect("merge");
            let single = written_report(&traces, &receivers(traces.len() as u64));
            prop_assert_eq!(report_json(&merged), report_json(&single));
        }
    }

    #[test]
    fn merging_a_merged_report_again_changes_nothing_but_adds() {
        let a = Spec { route: 1, n: 6, dups: 2, ms: 40, error: false };
        let b = Spec { route: 2, n: 0, dups: 0, ms: 900, error: true };
        let one = written_report(&[(1, &a)], &Totals::default());
        let two = written_report(&[(2, &b)], &Totals::default());
        let merged = merge(&[("1".into(), one.clone()), ("2".into(), two.clone())]).expect("merge");
        let again = merge(&[("m".into(), merged.clone())]).expect("merge one");
        assert_eq!(report_json(&again), report_json(&merged));
        assert_eq!(merged.totals.requests, 2);
        assert_eq!(merged.endpoints.iter().map(|e| e.errors).sum::<u64>(), 1);
    }

    #[test]
    fn missing_index_findings_of_the_inputs_are_kept_once() {
        let a = Spec { route: 1, n: 1, dups: 0, ms: 10, error: false };
        let mut one = written_report(&[(1, &a)], &Totals::default());
        let index = FindingSnapshot {
            id: "00000000000000aa".into(),
            category: "missing_index".into(),
            rule: "full_scan_filter".into(),
            cost_ms_total: 5.0,
            proposed_index: Some("CREATE INDEX idx_author_id ON author (id);".into()),
            ..FindingSnapshot::default()
        };
        one.findings.push(index.clone());
        let mut two = one.clone();
        two.findings.retain(|f| f.category != "missing_index");
        two.findings.push(FindingSnapshot { cost_ms_total: 9.0, ..index });
        let merged = merge(&[("1".into(), one), ("2".into(), two)]).expect("merge");
        let kept: Vec<f64> =
            merged.findings.iter().filter(|f| f.category == "missing_index").map(|f| f.cost_ms_total).collect();
        assert_eq!(kept, [9.0]);
    }

    #[test]
    fn reports_without_aggregates_or_with_other_settings_are_refused() {
        let a = Spec { route: 1, n: 1, dups: 0, ms: 10, error: false };
        let mut bare = written_report(&[(1, &a)], &Totals::default());
        bare.aggregates = None;
        let error = merge(&[("live.json".into(), bare)]).expect_err("no aggregates");
        assert!(error.to_string().contains("live.json carries no aggregates"), "{error}");

        let one = written_report(&[(1, &a)], &Totals::default());
        let mut other = one.clone();
        other.settings.n_plus_one_min = 3;
        let error = merge(&[("a.json".into(), one), ("b.json".into(), other)]).expect_err("settings");
        assert!(error.to_string().contains("n_plus_one_min"), "{error}");
        assert!(matches!(merge(&[]), Err(MergeError::Empty)));
    }
}
