//! SetPhone: the caller sets their phone number, unverified, and a six-digit code is
//! texted to it through the outbox; [`VerifyPhone`](super::VerifyPhone) confirms it.
//!
//! Texting a code costs money and reaches someone else's phone if the number is not the
//! caller's, so a request is admitted first: the per-user cooldown, then the SMS caps per
//! user and per number, counted in the store. Over a limit nothing changes and nothing is
//! sent. Then, in this order: the code's keyed digest is stored with the number (one
//! atomic step that also marks the number unverified and replaces any earlier code), and
//! the SMS is queued. A failure between the two leaves a stored code nobody received,
//! which expires; never an SMS whose code was not stored.
//!
//! The code comes from the random ids (a CSPRNG) and exists in clear only in the queued
//! SMS: the store keeps its HMAC, and no log, `Debug` output or response shows it.

use std::sync::Arc;
use std::time::Duration;

use domain::{Notification, NotificationId, NotificationKind, PhoneCode, PhoneNumber, Sms};
use tracing::instrument;

use super::shared::{Principal, store_failures};
use super::sms::SmsGate;
use crate::ports::Ports;
use crate::ports::{
    Clock, CodeHasher, IdGenerator, PendingCode, PhoneVerifications, SmsAdmission, SmsLimit,
};

#[derive(Debug, Clone)]
pub struct SetPhoneRequest {
    pub phone: String,
}

/// A code is on its way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeSent {
    /// The number it goes to, now the user's (unverified).
    pub phone: PhoneNumber,
    /// How long the code works.
    pub expires_in: Duration,
    /// How long until another code may be requested.
    pub resend_after: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SetPhoneError {
    #[error("invalid phone: {0}")]
    InvalidPhone(#[source] domain::PhoneNumberError),
    /// The country allow-list excludes the number.
    #[error("{}", super::sms::COUNTRY_NOT_ALLOWED)]
    CountryNotAllowed,
    /// The cooldown or a cap: nothing changed, nothing was sent.
    #[error("too many SMS ({limit:?}); retry in {retry_after:?}")]
    TooManyRequests {
        limit: SmsLimit,
        retry_after: Duration,
    },
    /// The session is alive but its user was deleted.
    #[error("user no longer exists")]
    UserGone,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("setting the phone failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(SetPhoneError);

pub struct SetPhone {
    codes: Arc<dyn PhoneVerifications>,
    hasher: Arc<dyn CodeHasher>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    sms: SmsGate,
}

impl std::fmt::Debug for SetPhone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetPhone").finish_non_exhaustive()
    }
}

impl SetPhone {
    pub(crate) fn new(ports: &Ports, sms: SmsGate) -> Self {
        Self {
            codes: ports.phone_codes.clone(),
            hasher: ports.code_hasher.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
            sms,
        }
    }

    /// # Errors
    /// See [`SetPhoneError`]. Validation and the limits come before anything changes.
    #[instrument(name = "set_phone", skip_all, fields(user_id = %principal.user_id))]
    pub async fn execute(
        &self,
        principal: Principal,
        request: SetPhoneRequest,
    ) -> Result<CodeSent, SetPhoneError> {
        let phone = PhoneNumber::parse(&request.phone).map_err(SetPhoneError::InvalidPhone)?;
        let policy = Arc::clone(&self.sms.policy);
        if !policy.allows(&phone) {
            self.sms
                .stats
                .count(super::SmsKind::PhoneCode, super::SmsOutcome::Country);
            return Err(SetPhoneError::CountryNotAllowed);
        }
        let user = principal.user_id;
        if let SmsAdmission::Refused { limit, retry_after } = self
            .sms
            .admit_code(super::SmsKind::PhoneCode, user, &phone)
            .await?
        {
            tracing::info!(?limit, "phone code refused: over a limit");
            return Err(SetPhoneError::TooManyRequests { limit, retry_after });
        }

        let now = self.clock.now();
        let code = PhoneCode::from_random(self.ids.new_uuid().as_u128());
        let expires_at = now.plus(policy.code_ttl);
        let pending = PendingCode {
            user_id: user,
            phone: phone.clone(),
            digest: self.hasher.digest(user, &phone, &code),
            expires_at,
            max_attempts: policy.code_max_attempts,
        };
        match self.codes.start(&pending).await {
            Ok(true) => {}
            Ok(false) => {
                self.sms.give_back(user, &phone, true).await;
                return Err(SetPhoneError::UserGone);
            }
            Err(e) => {
                // Nothing was queued: the request may be retried at once.
                self.sms.give_back(user, &phone, true).await;
                return Err(e.into());
            }
        }
        let notification = Notification {
            id: NotificationId::from_uuid(self.ids.new_uuid()),
            user_id: user,
            kind: NotificationKind::PhoneCode { expires_at },
            sms: Sms::phone_code(&code, phone.clone(), policy.code_ttl),
            attempts: 0,
            created_at: now,
        };
        self.sms
            .queue_code(super::SmsKind::PhoneCode, &notification)
            .await?;
        tracing::info!(notification_id = %notification.id, "phone code queued");
        Ok(CodeSent {
            phone,
            expires_in: policy.code_ttl,
            resend_after: policy.code_cooldown,
        })
    }
}

#[cfg(test)]
mod tests;
