//! Number, duration and text formatting for the dashboard, in one tested place so every view
//! shows the same quantity the same way.
//!
//! Inputs are the snapshot's raw numbers (milliseconds as `f64`, counts as `u64`, shares in
//! `0..=1`); outputs are short strings sized for table cells. Non-finite or negative durations
//! render as `-` rather than as garbage.

use std::time::Duration;

use unicode_width::UnicodeWidthChar;

/// The character appended to text cut to fit a cell.
pub const ELLIPSIS: char = '…';

/// A duration given in milliseconds: `850µs`, `4.20ms`, `42.1ms`, `420ms`, `4.20s`, `42.0s`, `7m03s`.
pub fn duration_ms(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return "-".to_string();
    }
    if ms == 0.0 {
        return "0ms".to_string();
    }
    if ms < 1.0 {
        return format!("{:.0}µs", ms * 1000.0);
    }
    if ms < 10.0 {
        return format!("{ms:.2}ms");
    }
    if ms < 100.0 {
        return format!("{ms:.1}ms");
    }
    if ms < 1000.0 {
        return format!("{ms:.0}ms");
    }
    let seconds = ms / 1000.0;
    if seconds < 10.0 {
        return format!("{seconds:.2}s");
    }
    if seconds < 60.0 {
        return format!("{seconds:.1}s");
    }
    let whole = seconds.round() as u64;
    if whole < 3600 {
        return format!("{}m{:02}s", whole / 60, whole % 60);
    }
    format!("{}h{:02}m", whole / 3600, (whole % 3600) / 60)
}

/// A count: exact below ten thousand, then `12.3k`, `4.56M`, `7.89G`.
pub fn count(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")];
    if n < 10_000 {
        return n.to_string();
    }
    for (scale, unit) in UNITS {
        if n >= scale {
            let value = n as f64 / scale as f64;
            return if value < 100.0 { format!("{value:.1}{unit}") } else { format!("{value:.0}{unit}") };
        }
    }
    n.to_string()
}

/// A summary value that counts things (queries per request): whole numbers without decimals.
pub fn amount(value: f64) -> String {
    if !value.is_finite() || value < 0.0 {
        return "-".to_string();
    }
    if (value - value.round()).abs() < 0.05 {
        return count(value.round() as u64);
    }
    format!("{value:.1}")
}

/// A rate per second: `0/s`, `0.5/s`, `12.3/s`, `1.2k/s`.
pub fn rate(per_second: f64) -> String {
    if !per_second.is_finite() || per_second <= 0.0 {
        return "0/s".to_string();
    }
    if per_second < 100.0 {
        return format!("{per_second:.1}/s");
    }
    format!("{}/s", count(per_second.round() as u64))
}

/// A share in `0..=1` as a percentage: `0%`, `<1%`, `42%`, `100%`.
pub fn percent(share: f64) -> String {
    if !share.is_finite() || share <= 0.0 {
        return "0%".to_string();
    }
    if share < 0.01 {
        return "<1%".to_string();
    }
    format!("{:.0}%", (share * 100.0).min(100.0))
}

/// `errors` out of `total` as a percentage, or `0%` when there is nothing.
pub fn ratio(errors: u64, total: u64) -> String {
    if total == 0 {
        return "0%".to_string();
    }
    percent(errors as f64 / total as f64)
}

/// An uptime: `5s`, `2m03s`, `1h02m03s`, `2d03h`.
pub fn uptime(elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m{:02}s", s / 3600, (s % 3600) / 60, s % 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// The display width of `text` in terminal columns.
pub fn width(text: &str) -> usize {
    text.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// `text` cut to at most `max` columns, ending with an ellipsis when something was cut. Wide
/// characters are never split.
pub fn truncate(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let budget = max - 1;
    let mut used = 0;
    let mut out = String::new();
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > budget {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push(ELLIPSIS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(0.0, "0ms")]
    #[case(0.42, "420µs")]
    #[case(4.2, "4.20ms")]
    #[case(42.13, "42.1ms")]
    #[case(420.4, "420ms")]
    #[case(4200.0, "4.20s")]
    #[case(42_000.0, "42.0s")]
    #[case(423_000.0, "7m03s")]
    #[case(7_380_000.0, "2h03m")]
    #[case(-1.0, "-")]
    #[case(f64::NAN, "-")]
    #[case(f64::INFINITY, "-")]
    fn durations(#[case] ms: f64, #[case] expected: &str) {
        assert_eq!(duration_ms(ms), expected);
    }

    #[rstest]
    #[case(0, "0")]
    #[case(9_999, "9999")]
    #[case(12_345, "12.3k")]
    #[case(123_456, "123k")]
    #[case(4_560_000, "4.6M")]
    #[case(7_890_000_000, "7.9G")]
    fn counts(#[case] n: u64, #[case] expected: &str) {
        assert_eq!(count(n), expected);
    }

    #[rstest]
    #[case(3.0, "3")]
    #[case(2.5, "2.5")]
    #[case(40.01, "40")]
    #[case(-1.0, "-")]
    fn amounts(#[case] value: f64, #[case] expected: &str) {
        assert_eq!(amount(value), expected);
    }

    #[rstest]
    #[case(0.0, "0/s")]
    #[case(0.5, "0.5/s")]
    #[case(12.34, "12.3/s")]
    #[case(12_345.0, "12.3k/s")]
    #[case(f64::NAN, "0/s")]
    fn rates(#[case] value: f64, #[case] expected: &str) {
        assert_eq!(rate(value), expected);
    }

    #[rstest]
    #[case(0.0, "0%")]
    #[case(0.004, "<1%")]
    #[case(0.424, "42%")]
    #[case(1.0, "100%")]
    #[case(1.5, "100%")]
    #[case(f64::NAN, "0%")]
    fn percents(#[case] share: f64, #[case] expected: &str) {
        assert_eq!(percent(share), expected);
    }

    #[test]
    fn ratio_of_nothing_is_zero() {
        assert_eq!(ratio(0, 0), "0%");
        assert_eq!(ratio(1, 4), "25%");
    }

    #[rstest]
    #[case(5, "5s")]
    #[case(123, "2m03s")]
    #[case(3723, "1h02m03s")]
    #[case(183_600, "2d03h")]
    fn uptimes(#[case] seconds: u64, #[case] expected: &str) {
        assert_eq!(uptime(Duration::from_secs(seconds)), expected);
    }

    #[rstest]
    #[case("SELECT 1", 20, "SELECT 1")]
    #[case("SELECT 1", 8, "SELECT 1")]
    #[case("SELECT 1", 7, "SELECT…")]
    #[case("SELECT 1", 1, "…")]
    #[case("SELECT 1", 0, "")]
    #[case("日本語テキスト", 6, "日本…")]
    #[case("日本語テキスト", 5, "日本…")]
    fn truncation_by_display_width(#[case] text: &str, #[case] max: usize, #[case] expected: &str) {
        let cut = truncate(text, max);
        assert_eq!(cut, expected);
        assert!(width(&cut) <= max);
    }
}
