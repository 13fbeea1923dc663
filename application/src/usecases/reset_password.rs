//! Password reset by SMS, for a user with a verified number: [`RequestPasswordReset`]
//! texts a code, [`ResetPassword`] sets the new password with it and ends every session.
//!
//! Nothing here may tell whether an account exists, or has a verified number:
//! - a request is answered the same whoever it names. Only the per-client limit is
//!   checked before the answer ([`RequestPasswordReset::admit`], the same for every name);
//!   the work that depends on the account ([`RequestPasswordReset::execute`]) runs after
//!   the answer is sent, so its time is not the answer's;
//! - a confirmation hashes the new password before it looks the user up, so a known and
//!   an unknown name cost the same, and every way it fails (no such user, no number, no
//!   code, an expired, spent or wrong code) is one answer.
//!
//! Codes are 6 digits from the CSPRNG, kept only as their keyed digest (bound to the user
//! and the number), valid for `PHONE_CODE_TTL`, dead after `PHONE_CODE_MAX_ATTEMPTS` wrong
//! tries, single use; requests share the per-user cooldown and SMS caps of phone codes.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use domain::{
    AuditKind, ClientAddress, NewPassword, Notification, NotificationId, NotificationKind,
    PasswordError, PhoneCode, PhoneCodeError, Sms, User, Username,
};
use tracing::instrument;

use super::audit::{Audit, Origin};
use super::shared::{hash_failures, store_failures};
use super::sms::{SmsGate, SmsKind};
use crate::ports::{
    Admission, Clock, CodeHasher, IdGenerator, PasswordHasher, PasswordResets, Ports, RateKey,
    RateLimiter, ResetCheck, SmsAdmission, SmsLimit, UserRepository, WindowLimit,
};

/// Rounds of "read the record, act on it" before a reset reports the store busy.
const ROUNDS: usize = 3;

/// Reset requests whose work may run at once, after their answers: beyond it a request is
/// refused as busy (the same for every name), so a flood cannot pile up work unanswered.
pub const MAX_RESETS_IN_FLIGHT: usize = 64;

/// A place among the reset requests in flight; given back when dropped.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResetRequestError {
    /// Too many reset requests or confirmations from this client address.
    #[error("too many password resets from this client")]
    Throttled { retry_after: Duration },
    /// Too many reset requests are being worked on; try again shortly.
    #[error("too many password resets at once")]
    Busy,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("requesting a password reset failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(ResetRequestError);

/// What a reset request did. Logged and tested; never told to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetRequested {
    /// A code is on its way to the verified number.
    Texted,
    /// No such account (or not a valid name at all).
    NoSuchUser,
    /// The account has no verified number to text.
    NoVerifiedPhone,
    /// The cooldown or an SMS cap refused it.
    OverSmsLimit(SmsLimit),
    /// The account had as many reset codes texted as it may in the window.
    OverCodeLimit,
}

/// The per-client limit of reset requests and confirmations, counted in the store.
#[derive(Clone)]
struct ResetLimit {
    rate: Arc<dyn RateLimiter>,
    per_client: WindowLimit,
}

impl ResetLimit {
    /// `Ok(None)` when admitted, else how long until the window frees.
    async fn hit(&self, client: IpAddr) -> Result<Option<Duration>, crate::ports::StoreError> {
        let key = RateKey::PasswordReset(ClientAddress::from_ip(client));
        Ok(match self.rate.hit(&key, self.per_client).await? {
            Admission::Admitted => None,
            Admission::Refused { retry_after } => {
                tracing::info!(
                    retry_after_secs = retry_after.as_secs(),
                    "password reset throttled"
                );
                Some(retry_after)
            }
        })
    }
}

pub struct RequestPasswordReset {
    users: Arc<dyn UserRepository>,
    resets: Arc<dyn PasswordResets>,
    hasher: Arc<dyn CodeHasher>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    limit: ResetLimit,
    codes_per_user: WindowLimit,
    sms: SmsGate,
    in_flight: Arc<AtomicUsize>,
}

impl std::fmt::Debug for RequestPasswordReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestPasswordReset")
            .field("per_client", &self.limit.per_client)
            .finish_non_exhaustive()
    }
}

impl RequestPasswordReset {
    pub(crate) fn new(
        ports: &Ports,
        per_client: WindowLimit,
        codes_per_user: WindowLimit,
        sms: SmsGate,
    ) -> Self {
        Self {
            users: ports.users.clone(),
            resets: ports.resets.clone(),
            hasher: ports.code_hasher.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
            limit: ResetLimit {
                rate: ports.rate_limiter.clone(),
                per_client,
            },
            codes_per_user,
            sms,
            in_flight: Arc::default(),
        }
    }

    /// The part of a request the client is told about: the per-client limit, and a place
    /// among the requests in flight (hold it until [`RequestPasswordReset::execute`] is
    /// done), the same for every name.
    ///
    /// # Errors
    /// [`ResetRequestError::Throttled`] over the limit, [`ResetRequestError::Busy`] when
    /// [`MAX_RESETS_IN_FLIGHT`] requests are being worked on; a store failure (fail
    /// closed).
    pub async fn admit(&self, client: IpAddr) -> Result<InFlight, ResetRequestError> {
        if let Some(retry_after) = self.limit.hit(client).await? {
            return Err(ResetRequestError::Throttled { retry_after });
        }
        let taken = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = InFlight(Arc::clone(&self.in_flight));
        if taken >= MAX_RESETS_IN_FLIGHT {
            drop(slot);
            return Err(ResetRequestError::Busy);
        }
        Ok(slot)
    }

    /// The part the client is never told about: texts a code to the account's verified
    /// number, within the cooldown and the SMS caps. Run after the answer is sent.
    ///
    /// # Errors
    /// A store failure; nothing was queued that the code was not stored for.
    #[instrument(name = "request_password_reset", skip_all, fields(username = %domain::LoggedUsername::of(username)))]
    pub async fn execute(&self, username: &str) -> Result<ResetRequested, ResetRequestError> {
        let Ok(username) = Username::parse(username) else {
            return Ok(ResetRequested::NoSuchUser);
        };
        let Some(user) = self.users.find_by_username(&username).await? else {
            tracing::info!("password reset for no account");
            return Ok(ResetRequested::NoSuchUser);
        };
        let (Some(phone), true) = (user.phone.clone(), user.phone_verified) else {
            self.sms
                .stats
                .count(SmsKind::PasswordReset, super::SmsOutcome::Unverified);
            tracing::info!(user_id = %user.id, "password reset without a verified number");
            return Ok(ResetRequested::NoVerifiedPhone);
        };
        // Before the SMS caps: whoever asks in the owner's name gets a few codes sent, and
        // never the account's whole SMS budget.
        if let Admission::Refused { .. } = self
            .limit
            .rate
            .hit(&RateKey::ResetCodes(user.id), self.codes_per_user)
            .await?
        {
            tracing::info!(user_id = %user.id, "password reset code refused: the account's daily codes are used");
            return Ok(ResetRequested::OverCodeLimit);
        }
        if let SmsAdmission::Refused { limit, .. } = self
            .sms
            .admit_code(SmsKind::PasswordReset, user.id, &phone)
            .await?
        {
            tracing::info!(user_id = %user.id, ?limit, "password reset code refused: over a limit");
            return Ok(ResetRequested::OverSmsLimit(limit));
        }
        let policy = Arc::clone(&self.sms.policy);
        let now = self.clock.now();
        let code = PhoneCode::from_random(self.ids.new_uuid().as_u128());
        let expires_at = now.plus(policy.code_ttl);
        let pending = crate::ports::PendingCode {
            user_id: user.id,
            phone: phone.clone(),
            digest: self.hasher.digest(user.id, &phone, &code),
            expires_at,
            max_attempts: policy.code_max_attempts,
        };
        match self.resets.start_reset(&pending).await {
            Ok(true) => {}
            Ok(false) => {
                self.sms.give_back(user.id, &phone, true).await;
                return Ok(ResetRequested::NoSuchUser);
            }
            Err(e) => {
                self.sms.give_back(user.id, &phone, true).await;
                return Err(e.into());
            }
        }
        let notification = Notification {
            id: NotificationId::from_uuid(self.ids.new_uuid()),
            user_id: user.id,
            kind: NotificationKind::PhoneCode { expires_at },
            sms: Sms::password_reset_code(&code, phone, policy.code_ttl),
            attempts: 0,
            created_at: now,
        };
        self.sms
            .queue_code(SmsKind::PasswordReset, &notification)
            .await?;
        tracing::info!(user_id = %user.id, notification_id = %notification.id, "password reset code queued");
        Ok(ResetRequested::Texted)
    }
}

pub struct ResetPasswordRequest {
    pub username: String,
    pub code: String,
    pub new_password: String,
    /// The client's address (the TCP peer, or what a trusted proxy reported).
    pub client: IpAddr,
    pub user_agent: Option<String>,
}

impl std::fmt::Debug for ResetPasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetPasswordRequest")
            .field("username", &domain::LoggedUsername::of(&self.username))
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResetPasswordError {
    /// The new password breaks the password policy; nothing was checked.
    #[error("invalid new password: {0}")]
    InvalidNewPassword(#[source] PasswordError),
    /// The code is not 6 digits; nothing was checked.
    #[error("invalid code: {0}")]
    InvalidCode(#[source] PhoneCodeError),
    /// No such user, no number, no live code, or a wrong one: one answer for all.
    #[error("wrong or expired code")]
    WrongCode,
    /// Too many reset requests or confirmations from this client address.
    #[error("too many password resets from this client")]
    Throttled { retry_after: Duration },
    /// Too many passwords are being hashed right now; try again shortly.
    #[error("password hasher overloaded")]
    Overloaded,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("resetting the password failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(ResetPasswordError);

hash_failures!(ResetPasswordError);

pub struct ResetPassword {
    audit: Audit,
    users: Arc<dyn UserRepository>,
    resets: Arc<dyn PasswordResets>,
    codes: Arc<dyn CodeHasher>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    limit: ResetLimit,
}

impl std::fmt::Debug for ResetPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetPassword").finish_non_exhaustive()
    }
}

impl ResetPassword {
    pub(crate) fn new(ports: &Ports, per_client: WindowLimit, audit: Audit) -> Self {
        Self {
            audit,
            users: ports.users.clone(),
            resets: ports.resets.clone(),
            codes: ports.code_hasher.clone(),
            hasher: ports.hasher.clone(),
            clock: ports.clock.clone(),
            limit: ResetLimit {
                rate: ports.rate_limiter.clone(),
                per_client,
            },
        }
    }

    /// Sets the new password with a texted code and ends every session of the account;
    /// returns how many ended.
    ///
    /// # Errors
    /// See [`ResetPasswordError`]: the input first, then the per-client limit, then the
    /// hash, and only then the account.
    #[instrument(name = "reset_password", skip_all, fields(username = %domain::LoggedUsername::of(&request.username), client = %request.client))]
    pub async fn execute(&self, request: ResetPasswordRequest) -> Result<u64, ResetPasswordError> {
        let new = NewPassword::parse(request.new_password)
            .map_err(ResetPasswordError::InvalidNewPassword)?;
        let code = PhoneCode::parse(&request.code).map_err(ResetPasswordError::InvalidCode)?;
        if let Some(retry_after) = self.limit.hit(request.client).await? {
            return Err(ResetPasswordError::Throttled { retry_after });
        }
        // Before the lookup: a known and an unknown name cost the same hash.
        let password_hash = self.hasher.hash(new.as_input()).await?;
        let Ok(username) = Username::parse(&request.username) else {
            return Err(ResetPasswordError::WrongCode);
        };
        for _ in 0..ROUNDS {
            let Some(user) = self.users.find_by_username(&username).await? else {
                tracing::info!("password reset refused: no account");
                return Err(ResetPasswordError::WrongCode);
            };
            let Some(phone) = user.phone.as_ref() else {
                tracing::info!(user_id = %user.id, "password reset refused: no number");
                return Err(ResetPasswordError::WrongCode);
            };
            let digest = self.codes.digest(user.id, phone, &code);
            let now = self.clock.now();
            let updated = User {
                password_hash: password_hash.clone(),
                password_changed_at: Some(now),
                ..user.clone()
            };
            match self
                .resets
                .finish_reset(&user, &digest, &updated, now)
                .await?
            {
                ResetCheck::Reset { ended } => {
                    let origin = Origin {
                        client: request.client,
                        user_agent: request.user_agent.clone(),
                    };
                    self.audit
                        .record(
                            user.id,
                            AuditKind::PasswordReset,
                            None,
                            Some(&origin),
                            Some(format!("sessions_ended={ended}")),
                        )
                        .await;
                    return Ok(ended);
                }
                ResetCheck::Wrong { attempts_left } => {
                    tracing::info!(user_id = %user.id, attempts_left, "password reset refused: wrong code");
                    return Err(ResetPasswordError::WrongCode);
                }
                ResetCheck::NoCode => {
                    tracing::info!(user_id = %user.id, "password reset refused: no live code");
                    return Err(ResetPasswordError::WrongCode);
                }
                // The record changed in between (a phone or password change): read it
                // again; the code was not counted.
                ResetCheck::Changed => {}
            }
        }
        Err(ResetPasswordError::Unavailable(anyhow::anyhow!(
            "the user record kept changing while resetting its password"
        )))
    }
}

#[cfg(test)]
mod tests;
