//! What the machine provides: the current time and fresh identifiers.

use domain::Timestamp;
use domain::ids::Uuid;

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// The current time.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// Fresh unique identifiers (random UUIDs in production).
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait IdGenerator: Send + Sync {
    fn new_uuid(&self) -> Uuid;
}
