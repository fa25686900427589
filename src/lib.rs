//! apmtop: a terminal APM dashboard for OpenTelemetry traces.
//!
//! Spans flow one way through stages that each own their types:
//!
//! ```text
//! receive ──▶ assemble ──▶ analyze ──▶ aggregate ──▶ snapshot ──▶ report
//! (OTLP gRPC   (spans ->     (queries,     (per endpoint,  (Arc<Snapshot>  (JSON file,
//!  and HTTP)    requests)     N+1, dups)    per query)      on a watch)     atomic)
//! ```
//!
//! - [`cli`]: flags and subcommands -> validated [`cli::Settings`].
//! - [`commands`]: the subcommands (`report`, `check`, `diff`, `merge`, `open`, `replay`, `demo`).
//! - [`config`]: the optional `apmtop.toml` budgets for `apmtop check`.
//! - [`pipeline`]: wiring, the aggregator task, shutdown order.
//! - [`demo`]: the synthetic app behind `apmtop demo`, sent over real OTLP/gRPC.
//! - [`control`]: requests from the dashboard to the aggregator (a kept trace, window, clear).
//! - [`model`]: ids, the compact [`model::Span`], [`model::Request`].
//! - [`semconv`]: attribute keys of both semantic-convention generations.
//! - [`capture`]: capture files of received exports (`--record`, `--replay`, `apmtop replay`).
//! - [`receive`]: OTLP/gRPC and OTLP/HTTP receivers, decode, backpressure.
//! - [`assemble`]: pending traces, grace period, bounds -> requests.
//! - [`analyze`]: fingerprints, endpoint identity, N+1 and duplicate detection, fix hints.
//! - [`explain`]: `--explain DB`: missing indexes confirmed by the database's own plans.
//! - [`aggregate`]: the single owner of all statistics, and the instrumentation audit.
//! - [`snapshot`]: the immutable, serializable view (the report schema).
//! - [`report`]: report files (JSON, Markdown, HTML), budgets (`check`, JUnit), `diff`.
//! - [`stats`]: apmtop's own counters.
//! - [`tui`]: the live terminal dashboard (ratatui): terminal guard, UI loop, views.

pub mod aggregate;
pub mod analyze;
pub mod assemble;
pub mod capture;
pub mod cli;
pub mod commands;
pub mod config;
pub mod control;
pub mod demo;
pub mod explain;
pub mod model;
pub mod pipeline;
pub mod receive;
pub mod report;
pub mod semconv;
pub mod snapshot;
pub mod stats;
pub mod tui;
