//! jwt-todo's server: configuration, the wiring of adapters into use cases, and the
//! HTTP server itself. Thin on purpose: every decision of substance lives in the
//! domain, the use cases or an adapter.
//!
//! # Layout
//! - [`config`]: [`Config`], read once from the environment (and `.env`), one typed
//!   section per concern; `server serve --help` lists every variable.
//! - [`startup`]: [`Application`], which builds the adapters, binds the listener (port 0
//!   works, for tests) and serves until stopped.
//! - [`worker`]: the notification worker's loops.
//! - [`metrics`]: what the server adds to `/metrics` (worker, Redis pool, SMS gate).
//! - [`sample_user`]: the development sample user, and production's refusal of it; only
//!   [`launch`] (what `server serve` runs) asks for it.
//! - [`serve`]: the HTTP/1.1 server loop: connection cap, read deadlines, graceful
//!   shutdown.
//! - [`telemetry`]: the log subscriber (text or JSON).

pub mod config;
pub mod metrics;
pub mod sample_user;
pub mod serve;
pub mod startup;
pub mod telemetry;
pub mod worker;

pub use config::oauth_secret;
pub use config::{Config, ConfigError, Environment, LogFormat};
pub use startup::{Application, Notifications};

/// What `server serve` builds: [`Application::build`], then the development sample user
/// (in production: the check that the store does not hold it). Tests that do not test
/// the sample user build with [`Application::build`] alone and register their own users.
///
/// # Errors
/// As [`Application::build`] and [`sample_user::prepare`].
pub async fn launch(config: Config) -> anyhow::Result<Application> {
    let app = Application::build(config).await?;
    sample_user::prepare(&app).await?;
    Ok(app)
}

/// The OpenAPI document the server serves, as committed in `openapi/openapi.json`.
pub fn openapi_json() -> String {
    adapter_http::spec_json()
}
