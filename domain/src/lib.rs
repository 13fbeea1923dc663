//! The pure model of jwt-todo.
//!
//! Everything here is a value that validated itself on construction ("parse, don't
//! validate"): once code holds a [`Username`], a [`TodoTitle`] or a [`PhoneNumber`], it is
//! valid, and no layer further in has to check it again.
//!
//! # Layout
//! - [`ids`]: typed identifiers, so a session id can never be passed where a user id goes.
//! - [`time`]: [`Timestamp`], seconds since the Unix epoch; the clock itself is a port.
//! - [`user`]: users, usernames, passwords (as secrets) and phone numbers.
//! - [`todo`]: todos and their titles.
//! - [`session`]: login sessions and the token pair issued for them.
//! - [`notification`]: the SMS a user gets (a todo was created, a phone code), as an
//!   outbox entry.
//! - [`phone`]: the one-time code that proves a phone number, and country codes.
//! - [`mfa`]: the second factor's codes (TOTP, recovery) and login challenges.
//! - [`audit`]: the events of an account's audit trail.
//! - [`client`]: a client's network address as login throttling counts it.
//! - [`oauth`]: the id of a registered OAuth 2.0 client, which tokens name.
//! - [`idempotency`]: idempotency keys, a client's name for one logical write.
//! - `text` (private): the Unicode rules the values share (NFKC, what is visible, bidi
//!   controls), from Unicode's own character properties.
//!
//! The crate depends on no async runtime, web framework, store or JWT library; the
//! workspace's manifests enforce that direction (`domain <- application <- adapters <- server`).

pub mod audit;
pub mod client;
pub mod idempotency;
pub mod ids;
pub mod mfa;
pub mod notification;
pub mod oauth;
pub mod phone;
pub mod session;
mod text;
pub mod time;
pub mod todo;
pub mod user;

pub use audit::{AuditEvent, AuditKind};
pub use client::ClientAddress;
pub use idempotency::{IdempotencyKey, IdempotencyKeyError};
pub use ids::{NotificationId, SessionId, TodoId, TokenId, UserId};
pub use mfa::{LoginChallenge, RecoveryCode, SecondFactorCode, SecondFactorCodeError};
pub use notification::{Notification, NotificationKind, Sms};
pub use oauth::{ClientId, ClientIdError};
pub use phone::{
    CountryCode, CountryCodeError, PhoneCode, PhoneCodeError, PhoneNumber, PhoneNumberError,
};
pub use session::{AccessClaims, AuthMethods, RefreshClaims, Session, TokenPair};
pub use time::Timestamp;
pub use todo::{Todo, TodoTitle, TodoTitleError};
pub use user::{
    LoggedUsername, NewPassword, PasswordError, PasswordHash, PasswordInput, User, Username,
    UsernameError,
};
