//! The operations, one module per tag. Each handler converts DTOs, calls one use case
//! and converts the result; a failure leaves through [`common`]'s one funnel as a
//! problem within the operation's contract ([`crate::contract`]), never as a status
//! chosen here.

mod common;
mod health;
mod mfa;
mod oauth;
mod sessions;
mod todos;
mod tokens;
mod users;

pub use health::HealthApi;
pub use mfa::MfaApi;
pub use oauth::OAuthApi;
pub use sessions::SessionsApi;
pub use todos::TodosApi;
pub use tokens::{JWKS_CACHE_CONTROL, TokensApi};
pub use users::UsersApi;

/// The whole API: every tag's operations, served and documented as one.
pub type Api = (
    TokensApi,
    MfaApi,
    OAuthApi,
    UsersApi,
    TodosApi,
    SessionsApi,
    HealthApi,
);

/// The API value to serve.
pub const API: Api = (
    TokensApi,
    MfaApi,
    OAuthApi,
    UsersApi,
    TodosApi,
    SessionsApi,
    HealthApi,
);
