//! JUnit XML for `apmtop check --junit FILE`: one test suite, one test case per budget per
//! endpoint, a `<failure>` per broken budget, so CI systems that show test results list budgets
//! next to the project's own tests.
//!
//! Test cases are named `budget: endpoint` with class name `apmtop.budget`, which groups them by
//! budget in the viewers that split class names on dots. All text is XML-escaped and stripped of
//! characters XML 1.0 cannot carry.

use std::fmt::Write;

use crate::report::check::Evaluation;

/// The JUnit XML of `evaluation`; `timestamp` is the report's `generated_at`.
pub fn render(evaluation: &Evaluation, timestamp: &str) -> String {
    let tests = evaluation.checks.len();
    let failures = evaluation.failed().count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, "<testsuites name=\"apmtop check\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">");
    let _ = write!(
        out,
        "  <testsuite name=\"apmtop budgets\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\""
    );
    if !timestamp.is_empty() {
        let _ = write!(out, " timestamp=\"{}\"", escape(timestamp));
    }
    out.push_str(">\n");
    for check in &evaluation.checks {
        let _ = write!(
            out,
            "    <testcase classname=\"apmtop.{}\" name=\"{}: {}\"",
            check.budget.key(),
            check.budget.key(),
            escape(&check.subject)
        );
        if check.passed() {
            out.push_str("/>\n");
            continue;
        }
        let message = match check.violations.as_slice() {
            [one] => format!("{one}; budget: {}", check.limit),
            many => format!("{} violations; budget: {}", many.len(), check.limit),
        };
        let _ = writeln!(
            out,
            ">\n      <failure type=\"{}\" message=\"{}\">{}\nbudget: {}</failure>\n    </testcase>",
            check.budget.key(),
            escape(&message),
            escape(&check.violations.join("\n")),
            escape(&check.limit)
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Text safe in XML content and quoted attributes: `& < > " '` as references, and characters
/// XML 1.0 forbids (most C0 controls, surrogates cannot occur in `str`, U+FFFE/U+FFFF) dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::report::check::evaluate;
    use crate::tui::testing::sample_snapshot;

    #[test]
    fn one_testcase_per_budget_per_endpoint_with_failures_for_broken_ones() {
        let mut snapshot = sample_snapshot();
        snapshot.endpoints[1].route = "/api/<books> & \"more\" \u{1}".to_string();
        let config =
            Config::parse("[budgets]\nmax_p95_ms = 1000\n", std::path::Path::new("apmtop.toml")).expect("valid");
        let xml = render(&evaluate(&snapshot, &config), "2026-01-02T03:04:05Z");
        let document = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("well-formed XML: {e}\n{xml}"));
        let suite = document.descendants().find(|n| n.has_tag_name("testsuite")).expect("a testsuite");
        assert_eq!(suite.attribute("tests"), Some("10"), "2 budgets x 5 endpoints");
        assert_eq!(suite.attribute("failures"), Some("3"));
        let cases: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).collect();
        assert_eq!(cases.len(), 10);
        let failed: Vec<(&str, &str)> = cases
            .iter()
            .filter_map(|case| {
                let failure = case.children().find(|n| n.has_tag_name("failure"))?;
                Some((case.attribute("name").expect("name"), failure.attribute("message").expect("message")))
            })
            .collect();
        assert_eq!(failed[0].0, "max_p95_ms: process_payment [worker]");
        assert_eq!(failed[0].1, "p95 latency 1.20s over 40 requests; budget: 1.00s");
        assert_eq!(failed[1].0, "n_plus_one: GET /api/<books> & \"more\" [library]", "escaped and read back intact");
        assert!(failed[1].1.contains("a1b2c3d4e5f60718"), "{}", failed[1].1);
        assert_eq!(failed[2].0, "n_plus_one: POST /api/orders [library]");
    }

    #[test]
    fn a_passing_evaluation_has_no_failures() {
        let xml = render(&evaluate(&crate::snapshot::Snapshot::default(), &Config::default()), "");
        let document = roxmltree::Document::parse(&xml).expect("well-formed");
        assert_eq!(document.root_element().attribute("failures"), Some("0"));
    }
}
