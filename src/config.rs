//! The optional `apmtop.toml`: performance budgets that `apmtop check` holds a report to, read
//! over built-in defaults.
//!
//! Without any file the only budget is "no N+1 query". A file may set global budgets under
//! `[budgets]` and override them per endpoint with `[[routes]]` entries matched by a glob on
//! `METHOD route`. Every table refuses keys it does not know, so a typo is an error naming the key
//! instead of a budget silently not applied. `assets/apmtop.toml` is the documented example.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use serde::Deserialize;

/// The file `apmtop check` reads from the current directory when no `--config` is given.
pub const DEFAULT_FILE: &str = "apmtop.toml";

/// Largest config file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Finding severities `fail_on_findings` accepts.
pub const FINDING_SEVERITIES: [&str; 3] = ["high", "medium", "low"];

/// Finding categories `fail_on_findings` accepts (see `FindingSnapshot::category`).
pub const FINDING_CATEGORIES: [&str; 11] = [
    "n_plus_one",
    "mn_plus_one",
    "duplicate_query",
    "slow_query_shape",
    "missing_index",
    "blocking_outgoing_calls",
    "huge_response",
    "row_by_row_write",
    "cache_calls",
    "repeated_cache_get",
    "connection_churn",
];

/// A config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config {path}: {source}")]
    Read {
        /// The config path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than any budget file needs to be.
    #[error("the config {path} is {size} bytes, more than the {MAX_CONFIG_BYTES} bytes a config can be")]
    TooLarge {
        /// The config path.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The file is not valid TOML, or has an unknown key or a value of the wrong type.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        /// The config path.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A value parsed but makes no sense (a bad glob, an unknown finding category).
    #[error("{path}: {message}")]
    Value {
        /// The config path.
        path: PathBuf,
        /// What is wrong and what to write instead.
        message: String,
    },
}

/// Whether an N+1 query breaks the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NPlusOnePolicy {
    /// Any N+1 offender not on the allow-list breaks the budget (the default).
    #[default]
    Forbid,
    /// N+1 offenders are not checked.
    Allow,
}

/// The whole file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    budgets: Budgets,
    #[serde(default)]
    routes: Vec<RawRoute>,
}

/// `[[routes]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(rename = "match")]
    pattern: String,
    service: Option<String>,
    n_plus_one: Option<NPlusOnePolicy>,
    max_queries_per_request: Option<u64>,
    max_duplicates: Option<u64>,
    max_p95_ms: Option<f64>,
}

/// Global budgets: `[budgets]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    /// `forbid` (default) or `allow`.
    #[serde(default)]
    pub n_plus_one: NPlusOnePolicy,
    /// N+1 offenders that do not break the budget: fingerprint ids or normalized statements.
    #[serde(default)]
    pub allow_n_plus_one: Vec<String>,
    /// Most queries any one request of an endpoint may run.
    pub max_queries_per_request: Option<u64>,
    /// Most duplicated statements an endpoint may have.
    pub max_duplicates: Option<u64>,
    /// Highest p95 latency of an endpoint, milliseconds.
    pub max_p95_ms: Option<f64>,
    /// Findings that break the budget: categories (`missing_index`) or severities (`high`).
    #[serde(default)]
    pub fail_on_findings: Vec<String>,
    /// Findings that never break it: finding ids, fingerprint ids or normalized statements.
    #[serde(default)]
    pub allow_findings: Vec<String>,
}

/// Per-route overrides; a key left out falls back to `[budgets]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteLimits {
    /// `forbid` or `allow`.
    pub n_plus_one: Option<NPlusOnePolicy>,
    /// Most queries any one request may run.
    pub max_queries_per_request: Option<u64>,
    /// Most duplicated statements.
    pub max_duplicates: Option<u64>,
    /// Highest p95 latency, milliseconds.
    pub max_p95_ms: Option<f64>,
}

/// One `[[routes]]` entry, with its glob compiled.
#[derive(Debug, Clone)]
pub struct RouteRule {
    /// The pattern as written, e.g. `GET /api/*`.
    pub pattern: String,
    /// Only endpoints of this service, when set.
    pub service: Option<String>,
    /// The budgets it sets.
    pub limits: RouteLimits,
    matcher: GlobMatcher,
}

impl RouteRule {
    /// Whether the rule covers the endpoint `label` (`METHOD route`, or the route alone) of
    /// `service`. The pattern matches as a glob, or as the exact label.
    pub fn matches(&self, service: &str, label: &str) -> bool {
        if self.service.as_deref().is_some_and(|s| s != service) {
            return false;
        }
        self.pattern == label || self.matcher.is_match(label)
    }
}

/// Validated budgets: `[budgets]` over the defaults, and the route rules in file order.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Global budgets.
    pub budgets: Budgets,
    /// Per-route overrides; the first that matches an endpoint applies.
    pub routes: Vec<RouteRule>,
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read = |source| ConfigError::Read { path: path.to_path_buf(), source };
        let size = std::fs::metadata(path).map_err(read)?.len();
        if size > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge { path: path.to_path_buf(), size });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|error| {
            let start = error.span().map_or(0, |span| span.start);
            let (line, column) = line_and_column(text, start);
            let mut message = one_line(error.message());
            if let Some(key) = key_before(text, start).filter(|key| !message.contains(key)) {
                message = format!("{key}: {message}");
            }
            ConfigError::Syntax { path: path.to_path_buf(), line, column, message }
        })?;
        let value_error = |message: String| ConfigError::Value { path: path.to_path_buf(), message };
        for kind in &raw.budgets.fail_on_findings {
            if !FINDING_SEVERITIES.contains(&kind.as_str()) && !FINDING_CATEGORIES.contains(&kind.as_str()) {
                return Err(value_error(format!(
                    "fail_on_findings: unknown finding kind {kind:?}; use a severity ({}) or a category ({})",
                    FINDING_SEVERITIES.join(", "),
                    FINDING_CATEGORIES.join(", ")
                )));
            }
        }
        let check_ms = |value: Option<f64>, place: &str| match value {
            Some(ms) if !ms.is_finite() || ms < 0.0 => {
                Err(value_error(format!("{place}max_p95_ms must be zero or more milliseconds, not {ms}")))
            }
            _ => Ok(()),
        };
        check_ms(raw.budgets.max_p95_ms, "budgets.")?;
        let mut routes = Vec::with_capacity(raw.routes.len());
        for route in raw.routes {
            check_ms(route.max_p95_ms, &format!("routes {:?}: ", route.pattern))?;
            let matcher = compile(&route.pattern)
                .map_err(|message| value_error(format!("routes: bad match pattern {:?}: {message}", route.pattern)))?;
            let limits = RouteLimits {
                n_plus_one: route.n_plus_one,
                max_queries_per_request: route.max_queries_per_request,
                max_duplicates: route.max_duplicates,
                max_p95_ms: route.max_p95_ms,
            };
            routes.push(RouteRule { pattern: route.pattern, service: route.service, limits, matcher });
        }
        Ok(Config { budgets: raw.budgets, routes })
    }

    /// The first route rule covering this endpoint.
    pub fn rule_for(&self, service: &str, label: &str) -> Option<&RouteRule> {
        self.routes.iter().find(|rule| rule.matches(service, label))
    }
}

/// Where the budgets come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file: given with `--config`, or `apmtop.toml` found in the current directory.
    File(PathBuf),
    /// No file: the built-in default (no N+1).
    Defaults,
}

impl ConfigSource {
    /// `explicit` when given; else `apmtop.toml` in `dir` when it exists; else the defaults.
    pub fn locate(explicit: Option<&Path>, dir: &Path) -> ConfigSource {
        if let Some(path) = explicit {
            return ConfigSource::File(path.to_path_buf());
        }
        let candidate = dir.join(DEFAULT_FILE);
        if candidate.is_file() { ConfigSource::File(candidate) } else { ConfigSource::Defaults }
    }

    /// Loads the budgets this source names.
    pub fn load(&self) -> Result<Config, ConfigError> {
        match self {
            ConfigSource::File(path) => Config::load(path),
            ConfigSource::Defaults => Ok(Config::default()),
        }
    }

    /// For the user: which budgets were used.
    pub fn describe(&self) -> String {
        match self {
            ConfigSource::File(path) => format!("budgets from {}", path.display()),
            ConfigSource::Defaults => format!("no {DEFAULT_FILE} found; default budget: no N+1 queries"),
        }
    }
}

/// Compiles a route pattern: `*` matches any run of characters (`/` included), `?` one
/// character, `[abc]` a class. Braces are literal, since route templates use them (`{id}`).
fn compile(pattern: &str) -> Result<GlobMatcher, String> {
    let escaped = pattern.replace('{', "[{]").replace('}', "[}]");
    GlobBuilder::new(&escaped)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|error| error.kind().to_string())
}

/// 1-based line and column of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The key of `key = value` when byte `offset` is inside the value, for messages about values.
fn key_before(text: &str, offset: usize) -> Option<&str> {
    let before = text.get(..offset)?;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    let (key, _) = before[line_start..].split_once('=')?;
    let key = key.trim();
    (!key.is_empty()).then_some(key)
}

/// A parser message on one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("apmtop.toml"))
    }

    #[test]
    fn an_empty_file_keeps_the_default_no_n_plus_one() {
        let config = parse("").expect("empty is valid");
        assert_eq!(config.budgets.n_plus_one, NPlusOnePolicy::Forbid);
        assert_eq!(config.budgets.max_queries_per_request, None);
        assert!(config.routes.is_empty());
    }

    #[test]
    fn the_example_file_parses_with_every_key() {
        let text = include_str!("../assets/apmtop.toml");
        let config = parse(text).expect("the shipped example is valid");
        assert_eq!(config.budgets.max_queries_per_request, Some(30));
        assert!(!config.routes.is_empty());
    }

    #[test]
    fn budgets_and_routes_parse() {
        let config = parse(
            r#"
[budgets]
n_plus_one = "allow"
allow_n_plus_one = ["a1b2c3d4e5f60718"]
max_queries_per_request = 30
max_duplicates = 0
max_p95_ms = 250
fail_on_findings = ["missing_index", "high"]

[[routes]]
match = "GET /api/*"
max_queries_per_request = 50
max_p95_ms = 120.5

[[routes]]
match = "process_payment"
service = "worker"
n_plus_one = "forbid"
"#,
        )
        .expect("valid");
        assert_eq!(config.budgets.n_plus_one, NPlusOnePolicy::Allow);
        assert_eq!(config.budgets.max_p95_ms, Some(250.0), "an integer is read as milliseconds");
        assert_eq!(config.routes[0].limits.max_p95_ms, Some(120.5));
        assert_eq!(config.routes[1].limits.n_plus_one, Some(NPlusOnePolicy::Forbid));
        assert_eq!(config.rule_for("shop", "GET /api/books/{id}").map(|r| r.pattern.as_str()), Some("GET /api/*"));
        assert!(config.rule_for("shop", "POST /api/books").is_none());
        assert!(config.rule_for("shop", "process_payment").is_none(), "the service must match too");
        assert!(config.rule_for("worker", "process_payment").is_some());
    }

    #[rstest]
    #[case::star_crosses_slashes("GET /api/*", "GET /api/books/{id}/reviews", true)]
    #[case::any_method("* /health", "HEAD /health", true)]
    #[case::braces_are_literal("GET /api/books/{id}", "GET /api/books/{id}", true)]
    #[case::braces_do_not_alternate("GET /api/books/{id,slug}", "GET /api/books/id", false)]
    #[case::question_mark("GET /v?/users", "GET /v2/users", true)]
    #[case::brackets_as_exact_label("GET /posts/[id]", "GET /posts/[id]", true)]
    #[case::case_sensitive("get /api/*", "GET /api/books", false)]
    #[case::whole_label("GET /api", "GET /api/books", false)]
    fn route_patterns(#[case] pattern: &str, #[case] label: &str, #[case] expected: bool) {
        let config = parse(&format!("[[routes]]\nmatch = {pattern:?}\nmax_p95_ms = 1\n")).expect("valid");
        assert_eq!(config.routes[0].matches("shop", label), expected, "{pattern} vs {label}");
    }

    #[rstest]
    #[case::top_level("max_queries = 3\n", "max_queries", 1)]
    #[case::in_budgets("[budgets]\nmax_querys_per_request = 3\n", "max_querys_per_request", 2)]
    #[case::in_routes("[[routes]]\nmatch = \"GET /\"\nmax_p99_ms = 3\n", "max_p99_ms", 3)]
    fn unknown_keys_are_errors_naming_the_key_and_line(#[case] text: &str, #[case] key: &str, #[case] line: usize) {
        let message = parse(text).expect_err("unknown key").to_string();
        assert!(message.contains(key), "{message}");
        assert!(message.starts_with(&format!("apmtop.toml:{line}:")), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }

    #[rstest]
    #[case::policy("[budgets]\nn_plus_one = \"sometimes\"\n", "sometimes")]
    #[case::negative_count("[budgets]\nmax_duplicates = -1\n", "max_duplicates")]
    #[case::negative_ms("[budgets]\nmax_p95_ms = -5\n", "max_p95_ms")]
    #[case::finding_kind("[budgets]\nfail_on_findings = [\"missing_indexes\"]\n", "missing_indexes")]
    #[case::route_without_match("[[routes]]\nmax_p95_ms = 3\n", "match")]
    #[case::bad_glob("[[routes]]\nmatch = \"GET /[a\"\n", "GET /[a")]
    #[case::not_toml("[budgets\n", "apmtop.toml:1:")]
    fn bad_values_are_errors_saying_what(#[case] text: &str, #[case] needle: &str) {
        let message = parse(text).expect_err("invalid").to_string();
        assert!(message.contains(needle), "{message}");
    }

    #[test]
    fn locate_prefers_the_flag_then_the_current_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(ConfigSource::locate(None, dir.path()), ConfigSource::Defaults);
        std::fs::write(dir.path().join(DEFAULT_FILE), "").expect("write");
        assert_eq!(ConfigSource::locate(None, dir.path()), ConfigSource::File(dir.path().join(DEFAULT_FILE)));
        let explicit = Path::new("ci/budgets.toml");
        assert_eq!(ConfigSource::locate(Some(explicit), dir.path()), ConfigSource::File(explicit.to_path_buf()));
        let missing = ConfigSource::File(dir.path().join("missing.toml")).load().expect_err("missing");
        assert!(missing.to_string().contains("cannot read the config"), "{missing}");
    }
}
