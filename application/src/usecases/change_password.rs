//! ChangePassword: the signed-in user replaces their password, proving the current one,
//! and every other session of theirs ends at once; the caller's stays.
//!
//! The current password is checked under the login throttle, per (username, client) pair
//! and per client exactly as a login is: a stolen access token does not make the account's
//! password any easier to guess than the login form does.
//!
//! A lost reply: the change may have happened. The client's retry then presents the old
//! password as current, which no longer verifies; when the password changed moments ago
//! ([`RETRY_WINDOW`]) and the *new* one verifies, the request is that retry, and it gets
//! the same answer, changing nothing more.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use domain::{AuditKind, NewPassword, PasswordError, PasswordInput, User};

use super::audit::{Audit, Origin};
use super::password_check::{PasswordCheck, confirm_failures};
use super::shared::{Principal, hash_failures, store_failures};
use crate::ports::{AccountStore, AccountWrite, Clock, Ports, ThrottleLimits};

/// How long after a change a request presenting the new password (with a stale current
/// one) is taken for the retry of that change.
pub const RETRY_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Rounds of "read the record, act on it" before a change reports the store busy: only
/// another change of the same record in between makes a round fail.
const ROUNDS: usize = 3;

pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
    /// The client's address (the TCP peer, or what a trusted proxy reported).
    pub client: IpAddr,
    pub user_agent: Option<String>,
}

impl std::fmt::Debug for ChangePasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangePasswordRequest")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChangePasswordError {
    /// The new password breaks the password policy; nothing was checked or changed.
    #[error("invalid new password: {0}")]
    InvalidNewPassword(#[source] PasswordError),
    /// The current password is wrong; counted as a failed login.
    #[error("current password is wrong")]
    WrongPassword,
    /// Too many failed password checks for this account from this client (or from this
    /// client at all): refused without checking.
    #[error("too many failed password checks")]
    Throttled { retry_after: Duration },
    /// Too many passwords are being hashed right now; try again shortly.
    #[error("password hasher overloaded")]
    Overloaded,
    /// The caller's account was deleted.
    #[error("user gone")]
    UserGone,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("changing the password failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(ChangePasswordError);

hash_failures!(ChangePasswordError);

confirm_failures!(ChangePasswordError);

pub struct ChangePassword {
    audit: Audit,
    check: PasswordCheck,
    accounts: Arc<dyn AccountStore>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ChangePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangePassword").finish_non_exhaustive()
    }
}

impl ChangePassword {
    pub(crate) fn new(ports: &Ports, limits: ThrottleLimits, audit: Audit) -> Self {
        Self {
            audit,
            check: PasswordCheck::new(ports, limits),
            accounts: ports.accounts.clone(),
            clock: ports.clock.clone(),
        }
    }

    /// Returns how many other sessions ended (0 for a retry: they ended the first time).
    ///
    /// # Errors
    /// See [`ChangePasswordError`]. The new password is checked against the policy before
    /// anything else; the throttle comes before any hashing.
    #[tracing::instrument(name = "change_password", skip_all, fields(user_id = %principal.user_id))]
    pub async fn execute(
        &self,
        principal: Principal,
        request: ChangePasswordRequest,
    ) -> Result<u64, ChangePasswordError> {
        let new = NewPassword::parse(request.new_password)
            .map_err(ChangePasswordError::InvalidNewPassword)?;
        let origin = Origin {
            client: request.client,
            user_agent: request.user_agent,
        };
        let current = request.current_password;
        self.check
            .confirmed(principal.user_id, request.client, |user| {
                self.check_and_set(user, current, new, principal, &origin)
            })
            .await
    }

    async fn check_and_set(
        &self,
        mut user: User,
        current: String,
        new: NewPassword,
        principal: Principal,
        origin: &Origin,
    ) -> Result<u64, ChangePasswordError> {
        // Over-long or empty: nobody's password, refused without hashing.
        let current =
            PasswordInput::new(current).map_err(|_| ChangePasswordError::WrongPassword)?;
        let (mut verified_hash, mut new_hash) = (None, None);
        for _ in 0..ROUNDS {
            if verified_hash.as_ref() != Some(&user.password_hash) {
                if !self.check.verifies(&user, &current).await? {
                    return self.retried(&user, &new).await;
                }
                verified_hash = Some(user.password_hash.clone());
            }
            let password_hash = match &new_hash {
                Some(hash) => Clone::clone(hash),
                None => new_hash
                    .insert(self.check.hasher().hash(new.as_input()).await?)
                    .clone(),
            };
            let updated = User {
                password_hash,
                password_changed_at: Some(self.clock.now()),
                ..user.clone()
            };
            match self
                .accounts
                .set_password(&user, &updated, Some(principal.session_id))
                .await?
            {
                AccountWrite::Done(ended) => {
                    self.audit
                        .record(
                            user.id,
                            AuditKind::PasswordChanged,
                            Some(principal.session_id),
                            Some(origin),
                            Some(format!("sessions_ended={ended}")),
                        )
                        .await;
                    return Ok(ended);
                }
                AccountWrite::Gone => return Err(ChangePasswordError::UserGone),
                // Changed in between (a phone change, another password change): decide
                // again on the record as it is now.
                AccountWrite::Changed => {
                    user = self
                        .check
                        .reread(&user)
                        .await?
                        .ok_or(ChangePasswordError::UserGone)?;
                }
            }
        }
        Err(ChangePasswordError::Unavailable(anyhow::anyhow!(
            "the user record kept changing while changing its password"
        )))
    }

    /// The current password did not verify: the retry of a change whose answer was lost
    /// (the new password is the user's already, set moments ago), or a wrong password.
    async fn retried(&self, user: &User, new: &NewPassword) -> Result<u64, ChangePasswordError> {
        let now = self.clock.now();
        let recent = user
            .password_changed_at
            .is_some_and(|at| !at.plus(RETRY_WINDOW).has_passed(now));
        if recent && self.check.verifies(user, new.as_input()).await? {
            tracing::info!("password change replayed");
            return Ok(0);
        }
        tracing::info!("password change refused: wrong current password");
        Err(ChangePasswordError::WrongPassword)
    }
}

#[cfg(test)]
mod tests;
