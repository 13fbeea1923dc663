//! Logging: `tracing` to stdout, human-readable by default, one JSON object per line with
//! `LOG_FORMAT=json`. The filter comes from `RUST_LOG` (default `info,poem=warn`).
//!
//! Every request is one span (`request`: `request_id`, `method`, `route`) closed by one
//! event with `status` and `latency_ms` (see `adapter_http::ops`); JSON lines carry the
//! span's fields, so each line of a request names its id. Secrets never reach a line:
//! use cases log ids, never tokens or passwords, and the access log holds no header,
//! query string or body.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// The filter when `RUST_LOG` is unset or invalid.
pub const DEFAULT_FILTER: &str = "info,poem=warn";

/// A subscriber writing to `writer` in `format`, filtered by `filter`.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync + 'static>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(true)
                .finish(),
        ),
    }
}

/// `RUST_LOG`, or [`DEFAULT_FILTER`].
pub fn filter_from_env() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

/// Installs the process-wide subscriber writing to stdout.
///
/// # Errors
/// A subscriber is already installed.
pub fn init(format: LogFormat) -> Result<(), tracing::subscriber::SetGlobalDefaultError> {
    tracing::subscriber::set_global_default(subscriber(format, filter_from_env(), std::io::stdout))
}
