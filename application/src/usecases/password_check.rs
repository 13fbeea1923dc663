//! The password that confirms a change of the account (a new password, a deletion),
//! checked as a login checks it: under the login throttle, per (username, client) pair and
//! per client, so a stolen access token is no shortcut to the password.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use domain::{ClientAddress, PasswordInput, User, UserId};

use crate::ports::{
    Admission, HashError, IdGenerator, LoginAttempt, LoginThrottle, PasswordHasher, Ports,
    Settlement, StoreError, ThrottleLimits, UserRepository,
};

/// A password, checked against a user's: the step change and deletion share.
pub(crate) struct PasswordCheck {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    ids: Arc<dyn IdGenerator>,
    throttle: Arc<dyn LoginThrottle>,
    limits: ThrottleLimits,
}

/// The errors of an operation confirmed by the password: how [`PasswordCheck::confirmed`]
/// answers for it, and how it tells the throttle what its answer was.
pub(crate) trait ConfirmError: From<StoreError> {
    /// The caller's account is gone.
    fn user_gone() -> Self;
    /// The throttle refused the check: too many failures.
    fn throttled(retry_after: Duration) -> Self;
    /// A wrong password: a failure the throttle counts.
    fn is_wrong_password(&self) -> bool;
}

/// [`ConfirmError`] for a use-case error with `UserGone`, `Throttled { retry_after }` and
/// `WrongPassword` variants, as every operation confirmed by the password has.
macro_rules! confirm_failures {
    ($error:ident) => {
        impl $crate::usecases::password_check::ConfirmError for $error {
            fn user_gone() -> Self {
                $error::UserGone
            }

            fn throttled(retry_after: std::time::Duration) -> Self {
                $error::Throttled { retry_after }
            }

            fn is_wrong_password(&self) -> bool {
                matches!(self, $error::WrongPassword)
            }
        }
    };
}
pub(crate) use confirm_failures;

impl PasswordCheck {
    pub(crate) fn new(ports: &Ports, limits: ThrottleLimits) -> Self {
        Self {
            users: ports.users.clone(),
            hasher: ports.hasher.clone(),
            ids: ports.ids.clone(),
            throttle: ports.throttle.clone(),
            limits,
        }
    }

    /// Reads the caller's record and runs `work` on it under the login throttle: admitted
    /// first (or refused without any work), settled by what `work` answered (a wrong
    /// password counts as a failed login, success clears the pair's failures, anything
    /// else counts nothing).
    ///
    /// # Errors
    /// `E::user_gone()` for a deleted caller, `E::throttled` when refused, a store
    /// failure, or what `work` answered.
    pub(crate) async fn confirmed<T, E, F, Fut>(
        &self,
        user: UserId,
        client: IpAddr,
        work: F,
    ) -> Result<T, E>
    where
        E: ConfirmError,
        F: FnOnce(User) -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let user = self
            .users
            .find_by_id(user)
            .await?
            .ok_or_else(E::user_gone)?;
        let attempt = LoginAttempt {
            id: self.ids.new_uuid(),
            username: Some(user.username.clone()),
            client: ClientAddress::from_ip(client),
        };
        if let Admission::Refused { retry_after } =
            self.throttle.admit(&attempt, &self.limits).await?
        {
            tracing::info!(
                retry_after_secs = retry_after.as_secs(),
                "password check throttled"
            );
            return Err(E::throttled(retry_after));
        }
        let outcome = work(user).await;
        let settlement = match &outcome {
            Ok(_) => Settlement::Succeeded,
            Err(e) if e.is_wrong_password() => Settlement::Failed,
            Err(_) => Settlement::Unjudged,
        };
        if let Err(e) = self
            .throttle
            .settle(&attempt, &self.limits, settlement)
            .await
        {
            // The hold lapses uncounted, as at login.
            tracing::warn!(error = %e, ?settlement, "could not settle a password check");
        }
        outcome
    }

    /// Whether `password` is the user's.
    pub(crate) async fn verifies(
        &self,
        user: &User,
        password: &PasswordInput,
    ) -> Result<bool, HashError> {
        self.hasher
            .verify(password, Some(user.password_hash.clone()))
            .await
    }

    pub(crate) async fn reread(&self, user: &User) -> Result<Option<User>, StoreError> {
        self.users.find_by_id(user.id).await
    }

    pub(crate) fn hasher(&self) -> &dyn PasswordHasher {
        self.hasher.as_ref()
    }
}
