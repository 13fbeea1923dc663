//! The system clock and random ids: what production runs on, whichever the store.

use application::ports::{Clock, IdGenerator};
use domain::Timestamp;
use domain::ids::Uuid;

/// Reads the wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Timestamp::from_unix_seconds(i64::try_from(secs).unwrap_or(i64::MAX))
    }
}

/// Random (v4) UUIDs from the operating system's CSPRNG: ids double as unguessable
/// handles (a todo id or session id reveals nothing and cannot be enumerated).
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn new_uuid(&self) -> Uuid {
        Uuid::new_v4()
    }
}
