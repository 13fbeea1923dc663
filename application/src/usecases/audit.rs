//! The audit trail: [`Audit`], through which the use cases record what happened to an
//! account, and [`ListEvents`], the owner's view of it.
//!
//! Every event is logged as a structured line (target `audit`; the use cases log no line of
//! their own for what it says) and counted
//! ([`AuditStats`], the `/metrics` counters) whatever happens to it; it is stored in the
//! account's trail unless it is noise past the account's budget (failed and throttled
//! logins, which anyone knowing the name can cause, may not push the owner's own events
//! out of the bounded trail) or the store fails. A failure to store never fails the
//! operation it records: the log line stays.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use domain::{AuditEvent, AuditKind, Session, SessionId, UserId};

use super::shared::{Field, Principal, page_size, store_failures};
use crate::ports::{AuditCursor, AuditLog, AuditRetention, Clock, Page, Ports, TrailEntry};

/// Where a request came from, as the audit trail records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The client's address (the TCP peer, or what a trusted proxy reported).
    pub client: IpAddr,
    pub user_agent: Option<String>,
}

/// What became of the audit events, for logs and metrics.
#[derive(Debug, Default)]
pub struct AuditStats {
    recorded: [AtomicU64; AuditKind::ALL.len()],
    /// Noise past an account's budget: logged and counted, not stored.
    pub over_budget: AtomicU64,
    /// The store failed: logged and counted, not stored.
    pub lost: AtomicU64,
}

impl AuditStats {
    /// Events of `kind` so far (stored or not).
    pub fn recorded(&self, kind: AuditKind) -> u64 {
        self.recorded[kind as usize].load(Ordering::Relaxed)
    }
}

/// The one way the use cases record an event. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Audit {
    log: Arc<dyn AuditLog>,
    clock: Arc<dyn Clock>,
    retention: AuditRetention,
    stats: Arc<AuditStats>,
}

impl Audit {
    pub(crate) fn new(ports: &Ports, retention: AuditRetention, stats: Arc<AuditStats>) -> Self {
        Self {
            log: ports.audit.clone(),
            clock: ports.clock.clone(),
            retention,
            stats,
        }
    }

    /// A spent refresh token of `session` was presented (`where` says where): the
    /// session is revoked as stolen.
    pub(crate) async fn reuse_detected(
        &self,
        user: UserId,
        session: SessionId,
        origin: Option<&Origin>,
        presented: &str,
    ) {
        self.record(
            user,
            AuditKind::ReuseDetected,
            Some(session),
            origin,
            Some(format!("presented {presented}")),
        )
        .await;
    }

    /// The event [`Audit::record`] would store, for a store step that appends it with
    /// what it does ([`TrailEntry`]); nothing is logged or counted until
    /// [`Audit::stored_with`] says the step happened.
    pub(crate) fn entry(
        &self,
        kind: AuditKind,
        session: Option<SessionId>,
        origin: Option<&Origin>,
        detail: Option<String>,
    ) -> TrailEntry {
        TrailEntry {
            event: AuditEvent {
                kind,
                at: self.clock.now(),
                session_id: session,
                client: origin.map(|o| o.client.to_string()),
                user_agent: origin.and_then(|o| Session::clean_user_agent(o.user_agent.as_deref())),
                detail,
            },
            retention: self.retention,
        }
    }

    /// An event a store step appended with what it did (see [`Audit::entry`]): logged
    /// and counted as [`Audit::record`] does.
    pub(crate) fn stored_with(&self, user: UserId, entry: &TrailEntry) {
        self.note(user, &entry.event);
    }

    /// Records `kind` for `user`: logged, counted and (within the budget) stored.
    pub(crate) async fn record(
        &self,
        user: UserId,
        kind: AuditKind,
        session: Option<SessionId>,
        origin: Option<&Origin>,
        detail: Option<String>,
    ) {
        let TrailEntry { event, .. } = self.entry(kind, session, origin, detail);
        self.note(user, &event);
        match self.log.append(user, &event, self.retention).await {
            Ok(true) => {}
            Ok(false) => {
                self.stats.over_budget.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.stats.lost.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, event = kind.as_str(), user_id = %user, "an audit event was not stored; it is in this log");
            }
        }
    }

    /// The log line and the count of an event.
    fn note(&self, user: UserId, event: &AuditEvent) {
        let kind = event.kind;
        self.stats.recorded[kind as usize].fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            target: "audit",
            event = kind.as_str(),
            user_id = %user,
            session_id = ?event.session_id,
            client = event.client.as_deref().unwrap_or("-"),
            user_agent = event.user_agent.as_deref().unwrap_or("-"),
            detail = event.detail.as_deref().unwrap_or("-"),
            "audit event"
        );
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ListEventsError {
    /// `limit` is outside 1..=[`MAX_PAGE_SIZE`](crate::MAX_PAGE_SIZE).
    #[error("{field:?}: {message}")]
    Invalid { field: Field, message: String },
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("listing events failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(ListEventsError);

/// The caller's own trail, newest first.
pub struct ListEvents {
    log: Arc<dyn AuditLog>,
    clock: Arc<dyn Clock>,
    retention: AuditRetention,
}

impl std::fmt::Debug for ListEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListEvents")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl ListEvents {
    pub fn new(ports: &Ports, retention: AuditRetention) -> Self {
        Self {
            log: ports.audit.clone(),
            clock: ports.clock.clone(),
            retention,
        }
    }

    /// # Errors
    /// See [`ListEventsError`]. The trail is addressed through the caller's own id.
    pub async fn execute(
        &self,
        principal: Principal,
        before: Option<AuditCursor>,
        limit: Option<u32>,
    ) -> Result<Page<AuditEvent, AuditCursor>, ListEventsError> {
        let limit = page_size(limit).map_err(|message| ListEventsError::Invalid {
            field: Field::Limit,
            message,
        })?;
        Ok(self
            .log
            .events(
                principal.user_id,
                before,
                limit,
                self.retention.max_age,
                self.clock.now(),
            )
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mockall::predicate::eq;

    use super::*;
    use crate::ports::{MockAuditLog, WindowLimit};
    use crate::usecases::testkit::*;

    fn retention() -> AuditRetention {
        AuditRetention {
            max_age: Duration::from_secs(3600),
            max_events: 10,
            noise: WindowLimit {
                max: 2,
                window: Duration::from_secs(60),
            },
        }
    }

    #[tokio::test]
    async fn an_event_is_stored_with_its_origin_and_counted() {
        let mut mocks = Mocks::new();
        let mut log = MockAuditLog::new();
        log.expect_append()
            .withf(|user, event, kept| {
                *user == USER_ID
                    && event.kind == AuditKind::LoginSucceeded
                    && event.at == NOW
                    && event.session_id == Some(SESSION_ID)
                    && event.client.as_deref() == Some("203.0.113.5")
                    && event.user_agent.as_deref() == Some("curl/8 (test)")
                    && *kept == retention()
            })
            .times(1)
            .returning(|_, _, _| Ok(true));
        mocks.audit = log;
        let stats = Arc::new(AuditStats::default());
        let audit = Audit::new(&mocks.into_ports(), retention(), Arc::clone(&stats));
        let origin = Origin {
            client: "203.0.113.5".parse().expect("ip"),
            user_agent: Some(" curl/8\r\n (test) ".into()),
        };

        audit
            .record(
                USER_ID,
                AuditKind::LoginSucceeded,
                Some(SESSION_ID),
                Some(&origin),
                None,
            )
            .await;

        assert_eq!(stats.recorded(AuditKind::LoginSucceeded), 1);
    }

    #[tokio::test]
    async fn noise_past_the_budget_and_store_failures_are_counted_not_fatal() {
        let mut mocks = Mocks::new();
        let mut log = MockAuditLog::new();
        let mut order = mockall::Sequence::new();
        log.expect_append()
            .times(1)
            .in_sequence(&mut order)
            .returning(|_, _, _| Ok(false));
        log.expect_append()
            .times(1)
            .in_sequence(&mut order)
            .returning(|_, _, _| Err(unavailable()));
        mocks.audit = log;
        let stats = Arc::new(AuditStats::default());
        let audit = Audit::new(&mocks.into_ports(), retention(), Arc::clone(&stats));

        audit
            .record(USER_ID, AuditKind::LoginFailed, None, None, None)
            .await;
        audit
            .record(USER_ID, AuditKind::LoggedOut, None, None, None)
            .await;

        assert_eq!(stats.recorded(AuditKind::LoginFailed), 1);
        assert_eq!(stats.over_budget.load(Ordering::Relaxed), 1);
        assert_eq!(stats.lost.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn the_caller_lists_their_own_trail_within_its_age() {
        let mut mocks = Mocks::new();
        let mut log = MockAuditLog::new();
        log.expect_events()
            .with(
                eq(USER_ID),
                eq(Some(AuditCursor("c".into()))),
                eq(5),
                eq(Duration::from_secs(3600)),
                eq(NOW),
            )
            .times(1)
            .returning(|_, _, _, _, _| {
                Ok(Page {
                    items: Vec::new(),
                    next: None,
                })
            });
        mocks.audit = log;
        let list = ListEvents::new(&mocks.into_ports(), retention());

        let page = list
            .execute(principal(), Some(AuditCursor("c".into())), Some(5))
            .await
            .expect("listed");
        assert!(page.items.is_empty());
        let refused = list.execute(principal(), None, Some(0)).await;
        assert!(
            matches!(refused, Err(ListEventsError::Invalid { .. })),
            "{refused:?}"
        );
    }
}
