//! One integration test binary: the real `apmtop` binary driven over real sockets.
//!
//! `support` starts and stops the binary; `otlp_payloads` builds OTLP requests; each other module
//! covers one area of behaviour.

// Tests read only what they produced themselves; the unbounded-read lint is for input from outside.
#![allow(clippy::disallowed_methods)]

mod app_process;
mod cli;
mod clock_skew;
mod django_app;
mod django_findings;
mod drivers;
mod explain;
mod merge;
mod node_app;
mod otlp_payloads;
mod pg_server;
mod receive;
mod record_replay;
mod reports;
mod sqlalchemy_twins;
mod support;
mod tui;
