//! [`UserRepository`] in process: users by id and the username index, under the state lock.

use std::collections::hash_map::Entry;

use application::ports::{InsertUserError, StoreError, UserRepository};
use async_trait::async_trait;
use domain::{User, UserId, Username};

use crate::MemoryStore;

#[async_trait]
impl UserRepository for MemoryStore {
    async fn insert(&self, user: &User) -> Result<(), InsertUserError> {
        let mut state = self.write();
        match state.usernames.entry(user.username.clone()) {
            // A retry of the same registration (same id) finds its own claim.
            Entry::Occupied(holder) if *holder.get() != user.id => {
                return Err(InsertUserError::UsernameTaken);
            }
            Entry::Occupied(_) => {}
            Entry::Vacant(slot) => {
                slot.insert(user.id);
            }
        }
        state.users.insert(user.id, user.clone());
        Ok(())
    }

    async fn find_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        let state = self.read();
        Ok(state
            .usernames
            .get(username)
            .and_then(|id| state.users.get(id))
            .cloned())
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.read().users.get(&id).cloned())
    }
}
