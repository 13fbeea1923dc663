//! jwt-todo's server: configuration, the wiring of adapters into use cases, and the
//! HTTP server itself. Thin on purpose: every decision of substance lives in the
//! domain, the use cases or an adapter.
//!
//! # Layout
//! - [`config`]: [`Config`], read once from the environment.
//! - [`startup`]: [`Application`], which builds the adapters, binds the listener (port 0
//!   works, for tests) and serves until stopped.
//! - [`serve`]: the HTTP/1.1 server loop: connection cap, read deadlines, graceful
//!   shutdown.
//! - [`telemetry`]: the log subscriber (text or JSON).

pub mod config;
pub mod serve;
pub mod startup;
pub mod telemetry;

pub use config::{Config, ConfigError, Environment, LogFormat};
pub use startup::{Application, Notifications};

/// The OpenAPI document the server serves, as committed in `openapi/openapi.json`.
pub fn openapi_json() -> String {
    adapter_http::spec_json()
}
