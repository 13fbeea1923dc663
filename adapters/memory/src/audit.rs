//! [`AuditLog`] in process: each account's trail under a lock of its own.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use application::ports::{AuditCursor, AuditLog, AuditRetention, Page, StoreError};
use async_trait::async_trait;
use domain::{AuditEvent, Timestamp, UserId};

use crate::{Counter, MemoryStore};

/// The trails, and the sequence that orders every event.
#[derive(Default)]
pub(crate) struct Trails {
    by_user: HashMap<UserId, Trail>,
    next_seq: u64,
}

/// One account's events, oldest first, with their sequence numbers, and its noise count.
#[derive(Default)]
struct Trail {
    events: VecDeque<(u64, AuditEvent)>,
    noise: Option<Counter>,
}

impl MemoryStore {
    /// Forgets the account's trail (its deletion).
    pub(crate) fn forget_trail(&self, user: UserId) {
        self.trails().by_user.remove(&user);
    }
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn append(
        &self,
        user: UserId,
        event: &AuditEvent,
        retention: AuditRetention,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut trails = self.trails();
        trails.next_seq += 1;
        let seq = trails.next_seq;
        let trail = trails.by_user.entry(user).or_default();
        if event.kind.is_noise() {
            let noise = Counter::live(trail.noise.as_ref(), now);
            if noise.is_some_and(|c| c.count >= retention.noise.max) {
                return Ok(false);
            }
            trail.noise = Some(Counter::counted(noise, retention.noise.window, now));
        }
        trail.events.push_back((seq, event.clone()));
        let oldest = now.minus(retention.max_age);
        while trail.events.len() > retention.max_events as usize
            || trail.events.front().is_some_and(|(_, e)| e.at < oldest)
        {
            trail.events.pop_front();
        }
        Ok(true)
    }

    async fn events(
        &self,
        user: UserId,
        before: Option<AuditCursor>,
        limit: usize,
        max_age: Duration,
        now: Timestamp,
    ) -> Result<Page<AuditEvent, AuditCursor>, StoreError> {
        let before = match before {
            None => u64::MAX,
            Some(cursor) => cursor.0.parse().unwrap_or(0),
        };
        let oldest = now.minus(max_age);
        let trails = self.trails();
        let page: Vec<(u64, AuditEvent)> = trails
            .by_user
            .get(&user)
            .map(|trail| {
                trail
                    .events
                    .iter()
                    .rev()
                    .filter(|(seq, e)| *seq < before && e.at >= oldest)
                    .take(limit + 1)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Ok(Page::from_one_more(
            page.into_iter()
                .map(|(seq, e)| (AuditCursor(seq.to_string()), e))
                .collect(),
            limit,
        ))
    }
}
