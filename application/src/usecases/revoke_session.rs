//! RevokeSession: end one of the caller's sessions by id (e.g. a lost phone).

use std::sync::Arc;

use domain::{AuditKind, SessionId};

use super::audit::{Audit, Origin};
use super::shared::{Principal, store_failures};
use crate::ports::Ports;
use crate::ports::SessionStore;

#[derive(Debug, thiserror::Error)]
pub enum RevokeSessionError {
    /// No live session with this id belongs to the caller.
    #[error("session not found")]
    NotFound,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("revoking the session failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(RevokeSessionError);

pub struct RevokeSession {
    audit: Audit,
    sessions: Arc<dyn SessionStore>,
}

impl std::fmt::Debug for RevokeSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokeSession").finish_non_exhaustive()
    }
}

impl RevokeSession {
    pub(crate) fn new(ports: &Ports, audit: Audit) -> Self {
        Self {
            audit,
            sessions: ports.sessions.clone(),
        }
    }

    /// # Errors
    /// See [`RevokeSessionError`]. The store is addressed through the caller's user id,
    /// so another user's session id is simply not found.
    pub async fn execute(
        &self,
        principal: Principal,
        id: SessionId,
        origin: Option<&Origin>,
    ) -> Result<(), RevokeSessionError> {
        if self.sessions.revoke(principal.user_id, id).await? {
            self.audit
                .record(
                    principal.user_id,
                    AuditKind::SessionRevoked,
                    Some(principal.session_id),
                    origin,
                    Some(format!("revoked={id}")),
                )
                .await;
            Ok(())
        } else {
            Err(RevokeSessionError::NotFound)
        }
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;

    use super::*;
    use crate::usecases::testkit::*;

    fn revoke(mocks: Mocks) -> RevokeSession {
        let ports = mocks.into_ports();
        RevokeSession::new(&ports, audit(&ports))
    }

    #[tokio::test]
    async fn revokes_the_named_session_of_the_caller() {
        let mut mocks = Mocks::new();
        mocks
            .sessions
            .expect_revoke()
            .with(eq(USER_ID), eq(OTHER_SESSION_ID))
            .times(1)
            .returning(|_, _| Ok(true));
        mocks.sessions.expect_revoke_all().never();

        revoke(mocks)
            .execute(principal(), OTHER_SESSION_ID, None)
            .await
            .expect("revoked");
    }

    #[tokio::test]
    async fn missing_or_foreign_session_is_not_found() {
        let mut mocks = Mocks::new();
        mocks
            .sessions
            .expect_revoke()
            .with(eq(USER_ID), eq(OTHER_SESSION_ID))
            .times(1)
            .returning(|_, _| Ok(false));

        let result = revoke(mocks)
            .execute(principal(), OTHER_SESSION_ID, None)
            .await;

        assert!(
            matches!(result, Err(RevokeSessionError::NotFound)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn store_unavailable_is_unavailable() {
        let mut mocks = Mocks::new();
        mocks
            .sessions
            .expect_revoke()
            .times(1)
            .returning(|_, _| Err(unavailable()));

        let result = revoke(mocks)
            .execute(principal(), OTHER_SESSION_ID, None)
            .await;

        assert!(
            matches!(result, Err(RevokeSessionError::Unavailable(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn store_failure_is_unexpected() {
        let mut mocks = Mocks::new();
        mocks
            .sessions
            .expect_revoke()
            .times(1)
            .returning(|_, _| Err(unexpected()));

        let result = revoke(mocks)
            .execute(principal(), OTHER_SESSION_ID, None)
            .await;

        assert!(
            matches!(result, Err(RevokeSessionError::Unexpected(_))),
            "{result:?}"
        );
    }
}
