//! The embedded outbox: pending SMS, dead letters and the last receipts, under a lock of
//! its own so that the delivery worker never contends with the per-request session checks.
//!
//! Claims are fair, round robin over users, exactly as the Redis outbox does it: a message
//! that falls due is given a round, one more than the later of the current round and its
//! user's last round, and claims take the lowest round first. A user with a thousand
//! messages holds rounds far ahead; another user's message lands in the next round.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{MutexGuard, PoisonError};

use application::ports::{DeadLetter, Outbox, StoreError};
use async_trait::async_trait;
use domain::{Notification, NotificationId, Timestamp, UserId};

use crate::MemoryStore;

/// How many delivery receipts the embedded store remembers.
const MAX_RECEIPTS: usize = 1024;

/// Where a pending message is: waiting for its time (or leased), or due and queued in a
/// round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// In `due`: (when, enqueue number).
    Due(Timestamp, u64),
    /// In `ready`: (round, enqueue number).
    Ready(u64, u64),
}

struct Pending {
    notification: Notification,
    place: Place,
}

#[derive(Default)]
pub(crate) struct OutboxState {
    messages: HashMap<NotificationId, Pending>,
    /// Not due yet, or leased until the lease ends: (when, enqueue number, id).
    due: BTreeSet<(Timestamp, u64, NotificationId)>,
    /// Due, in claim order: (round, enqueue number, id).
    ready: BTreeSet<(u64, u64, NotificationId)>,
    /// Each user's last round, while they have messages in `ready`.
    rounds: HashMap<UserId, u64>,
    /// The round of the last claimed message.
    round: u64,
    next_seq: u64,
    dead_letters: Vec<DeadLetter>,
    /// Receipts of the last delivered notifications, bounded.
    receipts: VecDeque<(NotificationId, String)>,
}

impl OutboxState {
    /// Takes a message out of whichever queue holds it.
    fn unplace(&mut self, id: NotificationId) -> Option<Pending> {
        let pending = self.messages.remove(&id)?;
        match pending.place {
            Place::Due(at, seq) => {
                self.due.remove(&(at, seq, id));
            }
            Place::Ready(round, seq) => {
                self.ready.remove(&(round, seq, id));
                let user = pending.notification.user_id;
                if self.rounds.get(&user) == Some(&round) {
                    self.rounds.remove(&user);
                }
            }
        }
        Some(pending)
    }

    fn place_due(&mut self, notification: Notification, at: Timestamp, seq: u64) {
        let id = notification.id;
        self.due.insert((at, seq, id));
        self.messages.insert(
            id,
            Pending {
                notification,
                place: Place::Due(at, seq),
            },
        );
    }

    /// Moves every message due by `now` into its round.
    fn release_due(&mut self, now: Timestamp) {
        while let Some(&(at, seq, id)) = self.due.first() {
            if at > now {
                break;
            }
            self.due.remove(&(at, seq, id));
            let Some(pending) = self.messages.get_mut(&id) else {
                continue;
            };
            let user = pending.notification.user_id;
            let round = self.round.max(self.rounds.get(&user).copied().unwrap_or(0)) + 1;
            self.rounds.insert(user, round);
            self.ready.insert((round, seq, id));
            pending.place = Place::Ready(round, seq);
        }
    }
}

impl MemoryStore {
    fn outbox(&self) -> MutexGuard<'_, OutboxState> {
        self.outbox.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Outbox for MemoryStore {
    async fn enqueue(&self, notification: &Notification) -> Result<(), StoreError> {
        let mut state = self.outbox();
        state.next_seq += 1;
        let seq = state.next_seq;
        // Enqueueing an id again replaces it (a retried request), never duplicates it.
        state.unplace(notification.id);
        state.place_due(notification.clone(), notification.created_at, seq);
        Ok(())
    }

    async fn claim(
        &self,
        now: Timestamp,
        lease: std::time::Duration,
    ) -> Result<Option<Notification>, StoreError> {
        let mut state = self.outbox();
        state.release_due(now);
        let Some(&(round, seq, id)) = state.ready.first() else {
            return Ok(None);
        };
        state.round = round;
        let Some(pending) = state.unplace(id) else {
            return Ok(None);
        };
        let notification = pending.notification.clone();
        state.place_due(pending.notification, now.plus(lease), seq);
        Ok(Some(notification))
    }

    async fn complete(&self, id: NotificationId, receipt: &str) -> Result<(), StoreError> {
        let mut state = self.outbox();
        state.unplace(id);
        if state.receipts.len() == MAX_RECEIPTS {
            state.receipts.pop_front();
        }
        state.receipts.push_back((id, receipt.to_owned()));
        Ok(())
    }

    async fn retry(
        &self,
        notification: &Notification,
        due_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut state = self.outbox();
        // Only a message still pending is rescheduled: one completed meanwhile stays done.
        if let Some(pending) = state.unplace(notification.id) {
            let seq = match pending.place {
                Place::Due(_, seq) | Place::Ready(_, seq) => seq,
            };
            state.place_due(notification.clone(), due_at, seq);
        }
        Ok(())
    }

    async fn dead_letter(&self, dead: &DeadLetter) -> Result<(), StoreError> {
        let mut state = self.outbox();
        state.unplace(dead.notification.id);
        state.dead_letters.push(dead.clone());
        Ok(())
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let mut dead = self.outbox().dead_letters.clone();
        dead.sort_by_key(|d| (d.failed_at, d.notification.id));
        Ok(dead)
    }

    async fn trim_dead_letters(
        &self,
        failed_before: Timestamp,
        keep_at_most: usize,
    ) -> Result<u64, StoreError> {
        let mut state = self.outbox();
        let before = state.dead_letters.len();
        state.dead_letters.retain(|d| d.failed_at >= failed_before);
        state
            .dead_letters
            .sort_by_key(|d| (d.failed_at, d.notification.id));
        let over = state.dead_letters.len().saturating_sub(keep_at_most);
        state.dead_letters.drain(..over);
        Ok((before - state.dead_letters.len()) as u64)
    }
}
