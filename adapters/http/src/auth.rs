//! Authentication: the one way every operation that takes an access token gets its
//! caller.
//!
//! [`BearerAuth`] is the `BearerAuth` security scheme of the spec; extracting it only
//! checks that a token was sent (401 `missing-token` otherwise). The handler then asks
//! [`BearerAuth::caller`], after its own parameters are read (so a malformed request is a
//! 400 or 422 whatever its token): the token's signature and claims, then the session
//! and the caller's profile in one store round trip
//! ([`application::usecases::Authenticate::identify`]).

use application::{Caller, Services};
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use crate::problem::Failure;

/// An access token from `POST /login` or `POST /token/refresh`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT")]
pub struct BearerAuth(Bearer);

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerAuth([REDACTED])")
    }
}

impl BearerAuth {
    /// The caller the token names, while its session is alive.
    ///
    /// # Errors
    /// A 401 for a token that is invalid, expired or revoked, or whose user is gone; a
    /// 503 or 500 when the store cannot tell (fail closed).
    pub async fn caller(&self, services: &Services) -> Result<Caller, Failure> {
        Ok(services.authenticate.identify(&self.0.token).await?)
    }
}
