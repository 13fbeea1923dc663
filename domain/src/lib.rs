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
//! - [`client`]: a client's network address as login throttling counts it.
//!
//! The crate depends on no async runtime, web framework, store or JWT library; the
//! workspace's manifests enforce that direction (`domain <- application <- adapters <- server`).

pub mod client;
pub mod ids;
pub mod notification;
pub mod phone;
pub mod session;
pub mod time;
pub mod todo;
pub mod user;

pub use client::ClientAddress;
pub use ids::{NotificationId, SessionId, TodoId, TokenId, UserId};
pub use notification::{Notification, NotificationKind, Sms};
pub use phone::{CountryCode, CountryCodeError, PhoneCode, PhoneCodeError};
pub use session::{AccessClaims, RefreshClaims, Session, TokenPair};
pub use time::Timestamp;
pub use todo::{Todo, TodoTitle, TodoTitleError};
pub use user::{
    NewPassword, PasswordError, PasswordHash, PasswordInput, PhoneNumber, PhoneNumberError, User,
    Username, UsernameError,
};
