//! Readiness: can this instance serve requests now? (Its store answers.)

use std::sync::Arc;

use super::shared::store_failures;
use crate::ports::Ports;
use crate::ports::SessionStore;

#[derive(Debug, thiserror::Error)]
pub enum ReadinessError {
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("store failure")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(ReadinessError);

pub struct Readiness {
    sessions: Arc<dyn SessionStore>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness").finish_non_exhaustive()
    }
}

impl Readiness {
    pub fn new(ports: &Ports) -> Self {
        Self {
            sessions: ports.sessions.clone(),
        }
    }

    /// # Errors
    /// See [`ReadinessError`].
    pub async fn execute(&self) -> Result<(), ReadinessError> {
        Ok(self.sessions.ping().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::testkit::*;

    #[tokio::test]
    async fn ready_when_the_store_answers() {
        let mut mocks = Mocks::new();
        mocks.sessions.expect_ping().times(1).returning(|| Ok(()));
        assert!(Readiness::new(&mocks.into_ports()).execute().await.is_ok());
    }

    #[tokio::test]
    async fn not_ready_when_the_store_is_down() {
        let mut mocks = Mocks::new();
        mocks
            .sessions
            .expect_ping()
            .times(1)
            .returning(|| Err(unavailable()));
        let result = Readiness::new(&mocks.into_ports()).execute().await;
        assert!(matches!(result, Err(ReadinessError::Unavailable(_))));
    }
}
