//! [`AccountStore`] in process: each step under the state lock (and the phone codes' and
//! SMS counters' locks after it, in the crate's lock order), so it is atomic.

use application::ports::{
    AccountStore, AccountWrite, CodeDigest, PasswordResets, PendingCode, RateKey, ResetCheck,
    StoreError,
};
use async_trait::async_trait;
use domain::{SessionId, Timestamp, User};

use crate::{CodeRecord, MemoryStore, SmsCounter, Tried};

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
        Self::forget_challenges(&mut state, read.id);
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
        state.mfa.remove(&id);
        // The other locks after the state's, as everywhere in this crate.
        self.codes().remove(&id);
        self.resets().remove(&id);
        self.sms_counters().retain(|counter, _| {
            !matches!(counter,
                SmsCounter::Cooldown(user) | SmsCounter::UserHour(user) | SmsCounter::UserDay(user)
                    if *user == id)
        });
        // The account's own rate counters, under their own lock, the state's released first.
        drop(state);
        self.forget_rate(&RateKey::ResetCodes(id));
        self.forget_rate(&RateKey::MfaCodes(id));
        self.forget_trail(id);
        Ok(AccountWrite::Done(()))
    }
}

#[async_trait]
impl PasswordResets for MemoryStore {
    async fn start_reset(&self, code: &PendingCode) -> Result<bool, StoreError> {
        let state = self.write();
        if !state.users.contains_key(&code.user_id) {
            return Ok(false);
        }
        self.resets()
            .insert(code.user_id, CodeRecord::new(code.clone()));
        Ok(true)
    }

    async fn finish_reset(
        &self,
        read: &User,
        digest: &CodeDigest,
        updated: &User,
        now: Timestamp,
    ) -> Result<ResetCheck, StoreError> {
        let mut state = self.write();
        let mut resets = self.resets();
        let (Some(stored), Some(record)) = (state.users.get(&read.id), resets.get_mut(&read.id))
        else {
            return Ok(ResetCheck::NoCode);
        };
        match record.try_digest(digest, now) {
            Tried::Dead | Tried::Spent(false) => return Ok(ResetCheck::NoCode),
            // Only the retry of the reset that spent it.
            Tried::Spent(true) => return Ok(ResetCheck::Reset { ended: 0 }),
            Tried::Wrong { attempts_left } => return Ok(ResetCheck::Wrong { attempts_left }),
            Tried::Right => {}
        }
        if stored != read {
            return Ok(ResetCheck::Changed);
        }
        record.spent = true;
        drop(resets);
        state.users.insert(read.id, updated.clone());
        Self::forget_challenges(&mut state, read.id);
        let ended = state.sessions.remove(&read.id).map_or(0, |sessions| {
            sessions
                .values()
                .filter(|s| !s.session.expires_at.has_passed(now))
                .count()
        });
        Ok(ResetCheck::Reset {
            ended: u64::try_from(ended).unwrap_or(u64::MAX),
        })
    }
}
