//! [`Distribution`]: one measured quantity (latency, queries per request, ...) as an hdrhistogram
//! for the percentiles plus the exact count, sum and max, so that means and maxima are exact and
//! no percentile exceeds the true maximum.
//!
//! Distributions merge exactly (histogram counts add), which is what time windows and
//! `apmtop merge` rely on, and serialize losslessly: the histogram as the standard V2
//! compressed encoding in base64, next to the exact sum and max.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::snapshot::{Bucket, Summary};

/// Significant decimal digits kept by every histogram (about 1 % relative error).
const SIGNIFICANT_DIGITS: u8 = 2;

/// A distribution of non-negative integer values.
#[derive(Debug, Clone)]
pub struct Distribution {
    histogram: Histogram<u64>,
    sum: u128,
    max: u64,
}

impl Default for Distribution {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for Distribution {
    fn eq(&self, other: &Self) -> bool {
        self.sum == other.sum && self.max == other.max && self.histogram == other.histogram
    }
}

impl Distribution {
    /// An empty distribution (auto-resizing histogram).
    pub fn new() -> Self {
        let mut histogram =
            Histogram::new(SIGNIFICANT_DIGITS).unwrap_or_else(|_| unreachable!("2 significant digits is valid"));
        histogram.auto(true);
        Distribution { histogram, sum: 0, max: 0 }
    }

    /// Records one value.
    pub fn record(&mut self, value: u64) {
        if self.histogram.record(value).is_err() {
            self.histogram.saturating_record(value);
        }
        self.sum += u128::from(value);
        self.max = self.max.max(value);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Distribution) {
        if self.histogram.add(&other.histogram).is_err() {
            // Only possible when the other histogram cannot grow to fit: record its values one
            // bucket at a time, saturating, rather than lose them.
            for value in other.histogram.iter_recorded() {
                let _ = self.histogram.record_n(value.value_iterated_to(), value.count_at_value());
            }
        }
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Largest value recorded (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1), never above the maximum.
    pub fn quantile(&self, q: f64) -> u64 {
        self.histogram.value_at_quantile(q).min(self.max)
    }

    /// Summary with values divided by `scale` (1000 turns microseconds into milliseconds).
    pub fn summary(&self, scale: f64) -> Summary {
        let count = self.count();
        if count == 0 {
            return Summary::default();
        }
        let at = |q: f64| round3(self.quantile(q) as f64 / scale);
        Summary {
            mean: round3(self.sum as f64 / count as f64 / scale),
            p50: at(0.50),
            p90: at(0.90),
            p95: at(0.95),
            p99: at(0.99),
            max: round3(self.max as f64 / scale),
        }
    }

    /// Chart buckets over `bounds` (inclusive upper bounds in recorded units, ascending), from the
    /// first non-empty bucket to the last; values above the last bound go in a final bucket at
    /// the maximum. Bounds in the output are divided by `scale`.
    pub fn buckets(&self, bounds: &[u64], scale: f64) -> Vec<Bucket> {
        if self.count() == 0 {
            return Vec::new();
        }
        let mut counts = vec![0u64; bounds.len() + 1];
        for value in self.histogram.iter_recorded() {
            let at = bounds.partition_point(|&bound| bound < value.value_iterated_to().min(self.max));
            counts[at] += value.count_at_value();
        }
        let first = counts.iter().position(|&c| c > 0).unwrap_or(0);
        let last = counts.iter().rposition(|&c| c > 0).unwrap_or(0);
        (first..=last)
            .map(|i| {
                let le = bounds.get(i).copied().unwrap_or(self.max);
                Bucket { le: round3(le as f64 / scale), count: counts[i] }
            })
            .collect()
    }

    /// Buckets for small integer counts: one per value up to 20, else about 16 equal-width ones.
    pub fn count_buckets(&self) -> Vec<Bucket> {
        let width = if self.max <= 20 { 1 } else { self.max.div_ceil(16) };
        let bounds: Vec<u64> = (0..).map(|i| i * width + width - 1).take_while(|&b| b < self.max).collect();
        self.buckets(&bounds, 1.0)
    }
}

/// `value` rounded to three decimals.
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// The serialized form.
#[derive(Serialize, Deserialize)]
struct Wire {
    /// Values recorded (a check on the histogram).
    count: u64,
    /// Exact sum (a string: it may exceed what JSON numbers carry exactly).
    sum: String,
    /// Exact maximum.
    max: u64,
    /// The histogram, V2 compressed, base64.
    hdr: String,
}

impl Serialize for Distribution {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.histogram, &mut bytes)
            .map_err(|error| serde::ser::Error::custom(format!("cannot encode a histogram: {error:?}")))?;
        Wire { count: self.count(), sum: self.sum.to_string(), max: self.max, hdr: BASE64.encode(bytes) }
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Distribution {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let wire = Wire::deserialize(deserializer)?;
        let bytes = BASE64.decode(wire.hdr.as_bytes()).map_err(|e| D::Error::custom(format!("histogram: {e}")))?;
        let mut histogram: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| D::Error::custom(format!("histogram: {e:?}")))?;
        histogram.auto(true);
        if histogram.len() != wire.count {
            return Err(D::Error::custom(format!(
                "histogram holds {} values but its count says {}",
                histogram.len(),
                wire.count
            )));
        }
        let sum = wire.sum.parse::<u128>().map_err(|e| D::Error::custom(format!("histogram sum: {e}")))?;
        Ok(Distribution { histogram, sum, max: wire.max })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn of(values: &[u64]) -> Distribution {
        let mut d = Distribution::new();
        for &v in values {
            d.record(v);
        }
        d
    }

    #[test]
    fn serializes_losslessly() {
        let d = of(&[1, 5, 5, 900, 120_000, 3_000_000_000]);
        let json = serde_json::to_string(&d).expect("serialize");
        let back: Distribution = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, d);
        assert_eq!(back.summary(1.0), d.summary(1.0));
    }

    #[test]
    fn corrupt_histograms_are_refused() {
        let mut value = serde_json::to_value(of(&[1, 2, 3])).expect("serialize");
        value["count"] = serde_json::json!(4);
        assert!(serde_json::from_value::<Distribution>(value.clone()).is_err());
        value["hdr"] = serde_json::json!("not base64!");
        assert!(serde_json::from_value::<Distribution>(value).is_err());
    }

    proptest! {
        #[test]
        fn merging_equals_recording_everything(a in prop::collection::vec(0u64..10_000_000, 0..200),
                                               b in prop::collection::vec(0u64..10_000_000, 0..200)) {
            let mut merged = of(&a);
            merged.merge(&of(&b));
            let all: Vec<u64> = a.iter().chain(&b).copied().collect();
            prop_assert_eq!(merged.summary(1000.0), of(&all).summary(1000.0));
            prop_assert_eq!(merged.count(), all.len() as u64);
        }
    }
}
