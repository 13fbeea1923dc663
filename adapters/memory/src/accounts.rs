//! [`AccountStore`] in process: each step under the state lock (and the phone codes' and
//! SMS counters' locks after it, in the crate's lock order), so it is atomic.

use application::ports::{AccountStore, AccountWrite, StoreError};
use async_trait::async_trait;
use domain::{SessionId, User};

use crate::{MemoryStore, SmsCounter};

#[async_trait]
impl AccountStore for MemoryStore {
    async fn set_password(
        &self,
        read: &User,
        updated: &User,
        keep: Option<SessionId>,
    ) -> Result<AccountWrite<u64>, StoreError> {
        let mut state = self.write();
        match state.users.get(&read.id) {
            None => return Ok(AccountWrite::Gone),
            Some(stored) if stored != read => return Ok(AccountWrite::Changed),
            Some(_) => {}
        }
        state.users.insert(read.id, updated.clone());
        // Only live sessions count as ended: expired ones were dead already.
        let ended =
            Self::live_sessions(&mut state, read.id, self.clock.now()).map_or(0, |sessions| {
                let before = sessions.len();
                sessions.retain(|id, _| Some(*id) == keep);
                before - sessions.len()
            });
        Ok(AccountWrite::Done(u64::try_from(ended).unwrap_or(u64::MAX)))
    }

    async fn delete_account(&self, read: &User) -> Result<AccountWrite<()>, StoreError> {
        let id = read.id;
        let mut state = self.write();
        match state.users.get(&id) {
            None => return Ok(AccountWrite::Gone),
            Some(stored) if stored != read => return Ok(AccountWrite::Changed),
            Some(_) => {}
        }
        state.users.remove(&id);
        if state.usernames.get(&read.username) == Some(&id) {
            state.usernames.remove(&read.username);
        }
        state.todos.remove(&id);
        state.todo_keys.retain(|(user, _), _| *user != id);
        state.todo_creations.remove(&id);
        state.sessions.remove(&id);
        // The other locks after the state's, as everywhere in this crate.
        self.codes().remove(&id);
        self.sms_counters().retain(|counter, _| {
            !matches!(counter,
                SmsCounter::Cooldown(user) | SmsCounter::UserHour(user) | SmsCounter::UserDay(user)
                    if *user == id)
        });
        Ok(AccountWrite::Done(()))
    }
}
