//! TEMPORARY stand-in for the SQL fingerprint module (being written separately): same public API.

use std::sync::Arc;

/// Result of fingerprinting one statement text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Stable id.
    pub id: u64,
    /// Normalized text.
    pub text: String,
    /// Tables.
    pub tables: Vec<String>,
    /// Operation.
    pub operation: Option<String>,
    /// Filter columns.
    pub filter_columns: Vec<String>,
    /// Placeholders present.
    pub has_placeholders: bool,
    /// Literals present.
    pub has_literals: bool,
    /// Parsed.
    pub parsed: bool,
    /// Truncated.
    pub truncated: bool,
    /// Opaque.
    pub opaque: bool,
}

/// Fingerprints one statement.
pub fn fingerprint(statement: &str, _db_system: &str) -> Fingerprint {
    let mut text = String::new();
    let mut has_placeholders = false;
    let mut has_literals = false;
    let mut chars = statement.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars.peek().is_some_and(|c| c.is_ascii_digit()) {
                chars.next();
            }
            has_literals = true;
            text.push('?');
        } else if c == '\'' {
            for c in chars.by_ref() {
                if c == '\'' {
                    break;
                }
            }
            has_literals = true;
            text.push('?');
        } else if c == '%' && chars.peek() == Some(&'s') {
            chars.next();
            has_placeholders = true;
            text.push('?');
        } else if c == '$' {
            while chars.peek().is_some_and(|c| c.is_ascii_digit()) {
                chars.next();
            }
            has_placeholders = true;
            text.push('?');
        } else if c == '?' {
            has_placeholders = true;
            text.push('?');
        } else {
            text.push(c);
        }
    }
    let words: Vec<&str> = statement.split_whitespace().collect();
    let mut tables = Vec::new();
    for pair in words.windows(2) {
        if ["FROM", "JOIN", "INTO", "UPDATE"].contains(&pair[0].to_ascii_uppercase().as_str()) {
            let t = pair[1].trim_matches(|c| c == '"' || c == '`').to_string();
            if !tables.contains(&t) {
                tables.push(t);
            }
        }
    }
    Fingerprint {
        id: xxhash_rust::xxh3::xxh3_64(text.as_bytes()),
        operation: words.first().map(|w| w.to_ascii_uppercase()),
        text,
        tables,
        filter_columns: Vec::new(),
        has_placeholders,
        has_literals,
        parsed: false,
        truncated: false,
        opaque: statement.trim().is_empty(),
    }
}

/// Bounded cache.
pub struct FingerprintCache {
    map: rustc_hash::FxHashMap<(String, String), Arc<Fingerprint>>,
    capacity: usize,
    hits: u64,
    misses: u64,
}

impl FingerprintCache {
    /// New cache.
    pub fn new(capacity: usize) -> Self {
        FingerprintCache { map: Default::default(), capacity, hits: 0, misses: 0 }
    }
    /// Get.
    pub fn get(&mut self, statement: &str, db_system: &str) -> Arc<Fingerprint> {
        let key = (db_system.to_string(), statement.to_string());
        if let Some(fp) = self.map.get(&key) {
            self.hits += 1;
            return Arc::clone(fp);
        }
        self.misses += 1;
        if self.map.len() >= self.capacity {
            self.map.clear();
        }
        let fp = Arc::new(fingerprint(statement, db_system));
        self.map.insert(key, Arc::clone(&fp));
        fp
    }
    /// Len.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// Empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Hits.
    pub fn hits(&self) -> u64 {
        self.hits
    }
    /// Misses.
    pub fn misses(&self) -> u64 {
        self.misses
    }
}
