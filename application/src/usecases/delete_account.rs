//! DeleteAccount: the signed-in user deletes their account, proving their password: the
//! user, their todos, sessions, pending codes, per-user counters and idempotency records
//! go in one step, and the username is free again. Every token of the account fails at
//! once, on every replica (its sessions are gone).
//!
//! The password is checked under the login throttle, as [`super::ChangePassword`]'s is.
//! A lost reply: the deletion may have happened, and the client's retry (its session gone
//! with the account) is refused as unauthenticated: the end state is the one asked for.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use domain::{PasswordInput, User};

use super::password_check::{PasswordCheck, confirm_failures};
use super::shared::{Principal, hash_failures, store_failures};
use crate::ports::{AccountStore, AccountWrite, Ports, ThrottleLimits};

/// Rounds of "read the record, act on it" before a deletion reports the store busy.
const ROUNDS: usize = 3;

pub struct DeleteAccountRequest {
    pub password: String,
    /// The client's address (the TCP peer, or what a trusted proxy reported).
    pub client: IpAddr,
}

impl std::fmt::Debug for DeleteAccountRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeleteAccountRequest")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeleteAccountError {
    /// The password is wrong; counted as a failed login.
    #[error("password is wrong")]
    WrongPassword,
    /// Too many failed password checks for this account from this client (or from this
    /// client at all): refused without checking.
    #[error("too many failed password checks")]
    Throttled { retry_after: Duration },
    /// Too many passwords are being hashed right now; try again shortly.
    #[error("password hasher overloaded")]
    Overloaded,
    /// The caller's account is gone already.
    #[error("user gone")]
    UserGone,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("deleting the account failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(DeleteAccountError);

hash_failures!(DeleteAccountError);

confirm_failures!(DeleteAccountError);

pub struct DeleteAccount {
    check: PasswordCheck,
    accounts: Arc<dyn AccountStore>,
}

impl std::fmt::Debug for DeleteAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeleteAccount").finish_non_exhaustive()
    }
}

impl DeleteAccount {
    pub fn new(ports: &Ports, limits: ThrottleLimits) -> Self {
        Self {
            check: PasswordCheck::new(ports, limits),
            accounts: ports.accounts.clone(),
        }
    }

    /// # Errors
    /// See [`DeleteAccountError`].
    #[tracing::instrument(name = "delete_account", skip_all, fields(user_id = %principal.user_id))]
    pub async fn execute(
        &self,
        principal: Principal,
        request: DeleteAccountRequest,
    ) -> Result<(), DeleteAccountError> {
        let password = request.password;
        self.check
            .confirmed(principal.user_id, request.client, |user| {
                self.check_and_delete(user, password)
            })
            .await
    }

    async fn check_and_delete(
        &self,
        mut user: User,
        password: String,
    ) -> Result<(), DeleteAccountError> {
        let password =
            PasswordInput::new(password).map_err(|_| DeleteAccountError::WrongPassword)?;
        let mut verified_hash = None;
        for _ in 0..ROUNDS {
            if verified_hash.as_ref() != Some(&user.password_hash) {
                if !self.check.verifies(&user, &password).await? {
                    tracing::info!("account deletion refused: wrong password");
                    return Err(DeleteAccountError::WrongPassword);
                }
                verified_hash = Some(user.password_hash.clone());
            }
            match self.accounts.delete_account(&user).await? {
                AccountWrite::Done(()) => {
                    tracing::info!("account deleted");
                    return Ok(());
                }
                // Deleted by a concurrent request of the same user: what was asked is done.
                AccountWrite::Gone => return Ok(()),
                // Changed in between (a phone change): decide again on the record as it is
                // now; the password is checked again only if it changed too.
                AccountWrite::Changed => {
                    let Some(now) = self.check.reread(&user).await? else {
                        return Ok(());
                    };
                    user = now;
                }
            }
        }
        Err(DeleteAccountError::Unavailable(anyhow::anyhow!(
            "the user record kept changing while deleting the account"
        )))
    }
}

#[cfg(test)]
mod tests;
