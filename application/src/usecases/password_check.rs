//! The password that confirms a change of the account (a new password, a deletion),
//! checked as a login checks it: under the login throttle, per (username, client) pair and
//! per client, so a stolen access token is no shortcut to the password.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use domain::{ClientAddress, PasswordInput, User};

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

/// What a [`PasswordCheck`] run reports to the throttle.
pub(crate) trait Judged {
    fn settlement(&self) -> Settlement;
}

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

    /// Runs `work` on the user's record under the login throttle: admitted first (or
    /// `Err(retry_after)` without any work), settled by what `work` answered.
    pub(crate) async fn throttled<T, E, F, Fut>(
        &self,
        user: &User,
        client: IpAddr,
        work: F,
    ) -> Result<Result<T, E>, ThrottleRefusal>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
        Result<T, E>: Judged,
    {
        let attempt = LoginAttempt {
            id: self.ids.new_uuid(),
            username: Some(user.username.clone()),
            client: ClientAddress::from_ip(client),
        };
        match self.throttle.admit(&attempt, &self.limits).await {
            Err(e) => return Err(ThrottleRefusal::Store(e)),
            Ok(Admission::Refused { retry_after }) => {
                tracing::info!(
                    retry_after_secs = retry_after.as_secs(),
                    "password check throttled"
                );
                return Err(ThrottleRefusal::Refused { retry_after });
            }
            Ok(Admission::Admitted) => {}
        }
        let outcome = work().await;
        let settlement = outcome.settlement();
        if let Err(e) = self
            .throttle
            .settle(&attempt, &self.limits, settlement)
            .await
        {
            // The hold lapses uncounted, as at login.
            tracing::warn!(error = %e, ?settlement, "could not settle a password check");
        }
        Ok(outcome)
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

    pub(crate) fn users(&self) -> &dyn UserRepository {
        self.users.as_ref()
    }
}

/// Why [`PasswordCheck::throttled`] did no work.
pub(crate) enum ThrottleRefusal {
    Refused { retry_after: Duration },
    Store(StoreError),
}
