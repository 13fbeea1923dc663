//! The embedded outbox: pending SMS, dead letters and the last receipts, under a lock of
//! its own so that the delivery worker never contends with the per-request session checks.

use std::collections::{HashMap, VecDeque};
use std::sync::{MutexGuard, PoisonError};

use application::ports::{DeadLetter, Outbox, StoreError};
use async_trait::async_trait;
use domain::{Notification, NotificationId, Timestamp};

use crate::MemoryStore;

/// How many delivery receipts the embedded store remembers.
const MAX_RECEIPTS: usize = 1024;

#[derive(Default)]
pub(crate) struct OutboxState {
    /// Pending notifications: when each is next due, its enqueue number (FIFO among
    /// equals), and the notification.
    outbox: HashMap<NotificationId, (Timestamp, u64, Notification)>,
    next_outbox_seq: u64,
    dead_letters: Vec<DeadLetter>,
    /// Receipts of the last delivered notifications, bounded.
    receipts: VecDeque<(NotificationId, String)>,
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
        state.next_outbox_seq += 1;
        let seq = state.next_outbox_seq;
        state.outbox.insert(
            notification.id,
            (notification.created_at, seq, notification.clone()),
        );
        Ok(())
    }

    async fn claim(
        &self,
        now: Timestamp,
        lease: std::time::Duration,
    ) -> Result<Option<Notification>, StoreError> {
        let mut state = self.outbox();
        let next = state
            .outbox
            .iter()
            .filter(|(_, (due, _, _))| *due <= now)
            .min_by_key(|(_, (due, seq, _))| (*due, *seq))
            .map(|(id, _)| *id);
        Ok(next.and_then(|id| {
            let entry = state.outbox.get_mut(&id)?;
            entry.0 = now.plus(lease);
            Some(entry.2.clone())
        }))
    }

    async fn complete(&self, id: NotificationId, receipt: &str) -> Result<(), StoreError> {
        let mut state = self.outbox();
        state.outbox.remove(&id);
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
        if let Some(entry) = state.outbox.get_mut(&notification.id) {
            *entry = (due_at, entry.1, notification.clone());
        }
        Ok(())
    }

    async fn dead_letter(&self, dead: &DeadLetter) -> Result<(), StoreError> {
        let mut state = self.outbox();
        state.outbox.remove(&dead.notification.id);
        state.dead_letters.push(dead.clone());
        Ok(())
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self.outbox().dead_letters.clone())
    }
}
