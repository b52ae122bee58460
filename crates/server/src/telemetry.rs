//! Log set-up: `tracing` to stderr, as text or JSON lines.
//!
//! What is logged is chosen at each call site, and the rules are: no request or
//! response bodies, no query strings, no headers, no health data, no secrets.
//! Values that could hold such things are typed [`kernel::Sensitive`] and print
//! `[redacted]`. The access log line is written by [`crate::edge`].

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Call once, from `main`.
///
/// # Errors
/// When `filter` is not a valid `EnvFilter` directive, or a subscriber is already set.
pub fn init(
    format: LogFormat,
    filter: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let filter = EnvFilter::try_new(filter)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    }
}
