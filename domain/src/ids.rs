//! Typed identifiers. All are UUIDs underneath; generating them is the job of the
//! application's `IdGenerator` port, so this crate needs no randomness.

use std::fmt;
use std::str::FromStr;

pub use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A user's stable identity; the JWT `sub` claim.
    UserId
);
id_type!(
    /// One login (device, browser) of a user; the JWT `sid` claim. Revoking it ends both
    /// its access and refresh tokens at once.
    SessionId
);
id_type!(
    /// A todo item.
    TodoId
);
id_type!(
    /// One notification in the outbox.
    NotificationId
);
id_type!(
    /// The `jti` of one issued token. A session remembers the `jti` of the one refresh
    /// token it will accept next, which is what makes rotation and reuse detection work.
    TokenId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_strings() {
        let raw = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        let id: UserId = raw.parse().expect("valid uuid");
        assert_eq!(id.to_string(), raw);
        assert!("not-a-uuid".parse::<SessionId>().is_err());
    }
}
