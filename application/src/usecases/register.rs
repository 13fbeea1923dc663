//! Register: create a user with a policy-checked password and an optional E.164 phone.
//!
//! Cheap refusals come first and expensive work last: the input is validated, the client's
//! registration rate is counted, and the name is looked up *before* the password is hashed,
//! so a taken name (409) or a flood from one address (429) costs no Argon2 work. The hash
//! itself runs in the share of the hasher registrations are allowed, which never includes
//! the capacity logins keep.
//!
//! With an `Idempotency-Key`, a retry after a lost reply gets the first answer: the key is
//! claimed (with the id of the user about to be created) before anything else is written,
//! so a retry finds it, and either finds that user and answers with it, or finishes the
//! registration with the same id. A key used for a different request is refused.
//!
//! A phone given here is stored unverified and nothing is texted to it: registration is
//! unauthenticated, so sending codes from it would let anyone pump SMS. The user asks for
//! a code with `POST /me/phone`. A number outside the SMS country allow-list is refused.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use domain::{ClientAddress, IdempotencyKey, NewPassword, PhoneNumber, User, UserId, Username};
use tracing::instrument;

use super::shared::{Field, hash_failures, store_failures};
use super::sms::SmsPolicy;
use crate::ports::{
    Admission, Clock, IdGenerator, IdempotencyRecord, IdempotencyStore, InsertUserError,
    PasswordHasher, RateKey, RateLimiter, UserRepository, WindowLimit,
};
use crate::{policy::Limits, ports::Ports};

pub struct RegisterRequest {
    pub username: String,
    pub password: String,
    pub phone: Option<String>,
    /// The client's address (the TCP peer, or what a trusted proxy reported).
    pub client: IpAddr,
    pub idempotency_key: Option<IdempotencyKey>,
}

impl std::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("username", &domain::LoggedUsername::of(&self.username))
            .field("password", &"[REDACTED]")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("{field:?}: {message}")]
    Invalid { field: Field, message: String },
    #[error("username already taken")]
    UsernameTaken,
    /// Too many registrations from this client; retry after `retry_after`.
    #[error("too many registrations")]
    Throttled { retry_after: Duration },
    /// The idempotency key was used before for a different registration.
    #[error("idempotency key reused for a different request")]
    KeyReused,
    #[error("too many concurrent password hashes")]
    Overloaded,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("registration failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(RegisterError);

impl RegisterError {
    fn invalid(field: Field, err: impl std::fmt::Display) -> Self {
        RegisterError::Invalid {
            field,
            message: err.to_string(),
        }
    }
}

hash_failures!(RegisterError);

/// A registration's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    pub user: User,
    /// The answer of an earlier request with the same idempotency key, given again.
    pub replayed: bool,
}

pub struct Register {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    rate: Arc<dyn RateLimiter>,
    idempotency: Arc<dyn IdempotencyStore>,
    per_client: WindowLimit,
    idempotency_ttl: Duration,
    sms: Arc<SmsPolicy>,
}

impl std::fmt::Debug for Register {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Register")
            .field("per_client", &self.per_client)
            .finish_non_exhaustive()
    }
}

impl Register {
    pub fn new(ports: &Ports, limits: Limits, sms: Arc<SmsPolicy>) -> Self {
        Self {
            users: ports.users.clone(),
            hasher: ports.hasher.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
            rate: ports.rate_limiter.clone(),
            idempotency: ports.idempotency.clone(),
            per_client: limits.registrations_per_client,
            idempotency_ttl: limits.idempotency_ttl,
            sms,
        }
    }

    /// # Errors
    /// See [`RegisterError`]. Validation happens before any work or store access; the
    /// rate limit and the name check before any hashing.
    // Never the raw name: see `LoggedUsername`.
    #[instrument(name = "register", skip_all, fields(username = %domain::LoggedUsername::of(&request.username)))]
    pub async fn execute(&self, request: RegisterRequest) -> Result<Registered, RegisterError> {
        let username = Username::parse(&request.username)
            .map_err(|e| RegisterError::invalid(Field::Username, e))?;
        let password = NewPassword::parse(request.password)
            .map_err(|e| RegisterError::invalid(Field::Password, e))?;
        let phone = request
            .phone
            .as_deref()
            .map(PhoneNumber::parse)
            .transpose()
            .map_err(|e| RegisterError::invalid(Field::Phone, e))?;
        if phone.as_ref().is_some_and(|p| !self.sms.allows(p)) {
            return Err(RegisterError::invalid(
                Field::Phone,
                super::sms::COUNTRY_NOT_ALLOWED,
            ));
        }

        // Every attempt that could reach the store counts, a taken name included: that
        // also slows down anyone enumerating names through 409s.
        let client = RateKey::Registration(ClientAddress::from_ip(request.client));
        if let Admission::Refused { retry_after } = self.rate.hit(&client, self.per_client).await? {
            tracing::info!(
                retry_after_secs = retry_after.as_secs(),
                "registration throttled"
            );
            return Err(RegisterError::Throttled { retry_after });
        }

        let id = match &request.idempotency_key {
            None => UserId::from_uuid(self.ids.new_uuid()),
            Some(key) => {
                let ours = IdempotencyRecord {
                    fingerprint: fingerprint(&username, phone.as_ref()),
                    resource: self.ids.new_uuid(),
                };
                let held = self
                    .idempotency
                    .claim_registration(key, &ours, self.idempotency_ttl)
                    .await?;
                if held.fingerprint != ours.fingerprint {
                    return Err(RegisterError::KeyReused);
                }
                UserId::from_uuid(held.resource)
            }
        };

        if let Some(existing) = self.users.find_by_username(&username).await? {
            // Only a retry with the same key can find its own user: the password decides
            // whether it is the same request (it is part of the body, but never stored).
            if request.idempotency_key.is_some() && existing.id == id {
                return if self
                    .hasher
                    .verify(password.as_input(), Some(existing.password_hash.clone()))
                    .await?
                {
                    tracing::info!(user_id = %id, "registration replayed");
                    Ok(Registered {
                        user: existing,
                        replayed: true,
                    })
                } else {
                    Err(RegisterError::KeyReused)
                };
            }
            return Err(RegisterError::UsernameTaken);
        }

        let password_hash = self.hasher.hash(password.as_input()).await?;
        let user = User {
            id,
            username,
            password_hash,
            phone,
            phone_verified: false,
            password_changed_at: None,
            created_at: self.clock.now(),
        };
        match self.users.insert(&user).await {
            Ok(()) => {
                tracing::info!(user_id = %user.id, "user registered");
                Ok(Registered {
                    user,
                    replayed: false,
                })
            }
            Err(InsertUserError::UsernameTaken) => Err(RegisterError::UsernameTaken),
            Err(InsertUserError::Store(e)) => Err(e.into()),
        }
    }
}

/// A registration in canonical form, for comparing retries: the name as folded and the
/// phone as parsed. The password is compared against the created user's hash instead,
/// so that it is never stored anywhere else.
fn fingerprint(username: &Username, phone: Option<&PhoneNumber>) -> String {
    format!(
        "register\n{username}\n{}",
        phone.map_or("", PhoneNumber::as_str)
    )
}

#[cfg(test)]
mod tests;
