//! [`SessionStore`] in process: each user's sessions under the state lock, so rotation and
//! ending sessions on a refresh token's word are each one atomic step. Expired sessions
//! are invisible at once and dropped whenever their user's sessions are touched.

use std::collections::HashMap;
use std::time::Duration;

use application::ports::{
    ActiveUser, AuditLog, EndOutcome, Page, PresentedRefresh, Rotation, RotationOutcome,
    SessionCursor, SessionScope, SessionStore, StoreError,
};
use async_trait::async_trait;
use domain::ids::Uuid;
use domain::{Session, SessionId, Timestamp, TokenId, UserId};

use crate::{MemoryStore, State};

/// A session as stored. `unanswered` is the Redis adapter's lost-reply mark; nothing here
/// loses a reply, so it is always `None`, and kept only so both stores check a presented
/// token by the same rule ([`StoredSession::accepts`]).
#[derive(Clone)]
pub(crate) struct StoredSession {
    pub(crate) session: Session,
    unanswered: Option<TokenId>,
}

impl StoredSession {
    /// Whether `presented` speaks for this session: its current refresh token, or the one
    /// the last rotation spent, within the grace window or when that rotation's answer was
    /// lost.
    fn accepts(&self, presented: TokenId, now: Timestamp, grace: Duration) -> bool {
        self.session.refresh_jti == presented || self.is_replay_of_last(presented, now, grace)
    }

    fn is_replay_of_last(&self, presented: TokenId, now: Timestamp, grace: Duration) -> bool {
        if self.session.previous_jti != Some(presented) {
            return false;
        }
        let elapsed = now.unix_seconds() - self.session.refreshed_at.unix_seconds();
        let within_grace =
            !grace.is_zero() && u64::try_from(elapsed).is_ok_and(|e| e <= grace.as_secs());
        within_grace || self.unanswered == Some(presented)
    }
}

impl State {
    /// Whether `session` of `user` exists and its refresh token has not expired.
    fn session_alive(&self, user: UserId, session: SessionId, now: Timestamp) -> bool {
        self.sessions
            .get(&user)
            .and_then(|s| s.get(&session))
            .is_some_and(|s| !s.session.expires_at.has_passed(now))
    }
}

impl MemoryStore {
    /// The user's live sessions, with the expired ones dropped on the way.
    pub(crate) fn live_sessions(
        state: &mut State,
        user: UserId,
        now: Timestamp,
    ) -> Option<&mut HashMap<SessionId, StoredSession>> {
        let sessions = state.sessions.get_mut(&user)?;
        sessions.retain(|_, s| !s.session.expires_at.has_passed(now));
        Some(sessions)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(
        &self,
        session: &Session,
        max_sessions: u32,
    ) -> Result<Option<u64>, StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        if !state.users.contains_key(&session.user_id) {
            return Ok(None);
        }
        let sessions = state.sessions.entry(session.user_id).or_default();
        sessions.retain(|_, s| !s.session.expires_at.has_passed(now));
        let mut evicted = 0;
        // The same session again (a retry of the very create) is stored again, counted once.
        while !sessions.contains_key(&session.id)
            && sessions.len() >= (max_sessions as usize).max(1)
        {
            // The one that expires first: the longest without a refresh.
            let Some(oldest) = sessions
                .values()
                .min_by_key(|s| (s.session.expires_at, s.session.created_at, s.session.id))
                .map(|s| s.session.id)
            else {
                break;
            };
            sessions.remove(&oldest);
            evicted += 1;
        }
        sessions.insert(
            session.id,
            StoredSession {
                session: session.clone(),
                unanswered: None,
            },
        );
        Ok(Some(evicted))
    }

    async fn is_active(&self, user: UserId, session: SessionId) -> Result<bool, StoreError> {
        Ok(self.read().session_alive(user, session, self.clock.now()))
    }

    async fn active_user(
        &self,
        user: UserId,
        session: SessionId,
    ) -> Result<ActiveUser, StoreError> {
        let state = self.read();
        let active = state.session_alive(user, session, self.clock.now());
        Ok(match (active, state.users.get(&user)) {
            (false, _) => ActiveUser::Revoked,
            (true, Some(found)) => ActiveUser::Active(found.clone()),
            (true, None) => ActiveUser::UserGone,
        })
    }

    async fn refresh_holder(
        &self,
        user: UserId,
        session: SessionId,
        presented: TokenId,
    ) -> Result<ActiveUser, StoreError> {
        let state = self.read();
        let current = state.session_alive(user, session, self.clock.now())
            && state
                .sessions
                .get(&user)
                .and_then(|s| s.get(&session))
                .is_some_and(|s| s.session.refresh_jti == presented);
        Ok(match (current, state.users.get(&user)) {
            (false, _) => ActiveUser::Revoked,
            (true, Some(found)) => ActiveUser::Active(found.clone()),
            (true, None) => ActiveUser::UserGone,
        })
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotationOutcome, StoreError> {
        let outcome = self.rotate_now(rotation);
        // Nothing can fail between the rotation and this, so the event is in the trail
        // exactly when the rotation happened, as the Redis script does it.
        if let (RotationOutcome::Rotated(_), Some(entry)) = (&outcome, &rotation.trail) {
            // Never fails: the embedded trail only takes its lock.
            let _stored =
                AuditLog::append(self, rotation.user_id, &entry.event, entry.retention).await;
        }
        Ok(outcome)
    }

    async fn end_with_refresh(
        &self,
        presented: &PresentedRefresh,
        scope: SessionScope,
    ) -> Result<EndOutcome, StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        let Some(sessions) = Self::live_sessions(&mut state, presented.user_id, now) else {
            return Ok(EndOutcome::NotFound);
        };
        let Some(stored) = sessions.get(&presented.session_id) else {
            return Ok(EndOutcome::NotFound);
        };
        if !stored.accepts(presented.presented, presented.now, presented.grace) {
            sessions.remove(&presented.session_id);
            return Ok(EndOutcome::ReuseDetected);
        }
        let before = sessions.len();
        match scope {
            SessionScope::This => {
                sessions.remove(&presented.session_id);
            }
            SessionScope::Others => sessions.retain(|id, _| *id == presented.session_id),
            SessionScope::All => sessions.clear(),
        }
        Ok(EndOutcome::Ended((before - sessions.len()) as u64))
    }

    async fn revoke(&self, user: UserId, session: SessionId) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        Ok(
            Self::live_sessions(&mut state, user, now)
                .is_some_and(|s| s.remove(&session).is_some()),
        )
    }

    async fn revoke_all(&self, user: UserId, keep: Option<SessionId>) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        let Some(sessions) = Self::live_sessions(&mut state, user, now) else {
            return Ok(0);
        };
        let before = sessions.len();
        sessions.retain(|id, _| Some(*id) == keep);
        Ok((before - sessions.len()) as u64)
    }

    async fn list(
        &self,
        user: UserId,
        after: Option<SessionCursor>,
        limit: usize,
    ) -> Result<Page<Session, SessionCursor>, StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        // At most the per-user cap of sessions: sorting them all is bounded.
        let mut sessions: Vec<Session> = Self::live_sessions(&mut state, user, now)
            .map(|s| {
                s.values()
                    .map(|s| s.session.clone())
                    .filter(|s| after.is_none_or(|a| cursor_of(s) > a))
                    .collect()
            })
            .unwrap_or_default();
        sessions.sort_by_key(cursor_of);
        let next = (sessions.len() > limit).then(|| {
            sessions.truncate(limit);
            sessions.last().map_or(
                SessionCursor {
                    created_at: now,
                    id: SessionId::from_uuid(Uuid::nil()),
                },
                cursor_of,
            )
        });
        Ok(Page {
            items: sessions,
            next,
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A session's place in the listing order.
fn cursor_of(session: &Session) -> SessionCursor {
    SessionCursor {
        created_at: session.created_at,
        id: session.id,
    }
}

impl MemoryStore {
    /// [`SessionStore::rotate`] under the lock, the trail aside.
    fn rotate_now(&self, rotation: &Rotation) -> RotationOutcome {
        let now = self.clock.now();
        let mut state = self.write();
        let Some(sessions) = Self::live_sessions(&mut state, rotation.user_id, now) else {
            return RotationOutcome::NotFound;
        };
        let Some(stored) = sessions.get_mut(&rotation.session_id) else {
            return RotationOutcome::NotFound;
        };
        if stored.session.refresh_jti != rotation.presented {
            if stored.is_replay_of_last(rotation.presented, rotation.now, rotation.grace) {
                if stored.unanswered == Some(rotation.presented) {
                    stored.unanswered = None;
                }
                return RotationOutcome::Replayed(stored.session.clone());
            }
            sessions.remove(&rotation.session_id);
            return RotationOutcome::ReuseDetected;
        }
        let session = &mut stored.session;
        session.previous_jti = Some(rotation.presented);
        session.refresh_jti = rotation.next;
        session.refreshed_at = rotation.now;
        session.expires_at = rotation.expires_at;
        stored.unanswered = None;
        RotationOutcome::Rotated(stored.session.clone())
    }
}
