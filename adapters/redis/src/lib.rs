//! The production store: jwt-todo's store ports over Redis.
//!
//! # Layout
//! - `connection`: [`RedisStore`] and [`RedisStoreConfig`], over one Redis, a Redis Cluster
//!   or a Redis watched by Sentinel; every command under the command timeout, the
//!   reconciliation of lost replies, readiness and the memory of refused writes.
//! - `deployment`: the three deployments as a [`Deployment`] (URLs checked), and
//!   [`RedisStore::connect`] to any of them.
//! - `shared`: the one multiplexed connection every command goes through, whichever the
//!   deployment.
//! - `errors`: Redis errors translated into the ports' `StoreError` (below, "Failures").
//! - `keys`: the name of every key in the table below, [`account_keys`], and the tests that
//!   the keys of each atomic step share one cluster slot.
//! - `records`: the JSON records stored (user, todo, notification, dead letter) and how
//!   those written by older versions read.
//! - One module per port: `users`, `accounts` (new passwords, deletion, reset codes),
//!   `audit` (each account's trail),
//!   `sessions`, `todos`, `throttle` (login throttle and rate
//!   limits), `idempotency` (registrations' keys), `outbox`, `phone` (verification and SMS
//!   caps).
//! - `lua/`: the scripts, one file each, shared helpers in `*_prelude.lua`; the `lua!` and
//!   `lua_source!` macros below build them into the binary (`include_str!`).
//!
//! # Keys
//! Every key of a user shares the hash tag `{u:<user_id>}`, so it lives in one cluster slot
//! and the multi-key scripts stay atomic under Redis Cluster.
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `username:<name>` | string | user id; claimed with `SET NX` (the one cross-slot write) | never (a claim not yet confirmed by registration: after 60 s) |
//! | `{u:<uid>}:user` | string | the user record (JSON) | never |
//! | `{u:<uid>}:session:<sid>` | hash | `refresh_jti`, `previous_jti`, `created_at`, `refreshed_at`, `expires_at`, `user_agent`, `amr` (the login's methods, `pwd,otp,mfa`; absent: `pwd`), and `unanswered` after a rotation whose reply was lost | at the refresh token's `exp` |
//! | `{u:<uid>}:sessions` | sorted set | session ids scored by expiry, to list and revoke them | with the last session |
//! | `{u:<uid>}:todos` | hash | todo id -> `<seq>\|<JSON>` | never |
//! | `{u:<uid>}:todo_seq` | string | insertion counter that orders the list | never |
//! | `{u:<uid>}:todo_order` | sorted set | todo ids scored by insertion number: the listing order | never |
//! | `{u:<uid>}:todo_creations` | string | todos created in the current window | at the end of its window |
//! | `{u:<uid>}:todo_key:<key>` | hash | a todo creation's idempotency key: `fingerprint`, and the first answer's `todo` (JSON) | at the end of the key's lifetime |
//! | `{u:<uid>}:todo_keys` | sorted set | the user's todo idempotency keys, scored by when each record expires (ms), so deleting the account finds them | pruned as it grows; deleted with the account |
//! | `register_key:<key>` | hash | a registration's idempotency key: `fingerprint`, `resource` (the user id chosen) | at the end of the key's lifetime |
//! | `{u:<uid>}:phone_code` | hash | the pending phone code: number, HMAC digest, expiry, attempts (see `phone`) | at the code's expiry |
//! | `{u:<uid>}:reset_code` | hash | the pending password-reset code: HMAC digest, expiry, attempts, spent (see `accounts`) | at the code's expiry |
//! | `{u:<uid>}:sms:hour`, `:sms:day`, `:sms:cooldown` | string | SMS counted against the user's caps, and the code-request cooldown | at the end of each window |
//! | `{sms:<digits>}:hour`, `{sms:<digits>}:day` | string | SMS counted against one number's caps | at the end of each window |
//! | `{outbox}:due`, `:ready`, `:rounds`, `:round` | sorted sets, hash, string | the SMS queue: ids by due time, due ids by fair round, each user's last round, the current round (see `outbox`) | never |
//! | `{outbox}:messages` | hash | notification id -> JSON (kind, SMS, attempts) | removed when done |
//! | `{outbox}:dead`, `{outbox}:dead_at` | hash, sorted set | notification id -> JSON (notification, last error), and when it failed | trimmed by age and count |
//! | `{outbox}:sent:<id>` | string | the provider's receipt (`message_uuid`) | 7 days |
//! | `{login:<client>}:pair:<name>` | string | failed logins of one username from one client (`~` for a malformed name) | at the end of its window |
//! | `{login:<client>}:client` | string | failed logins of any username from one client | at the end of its window |
//! | `{login:<client>}:pair:<name>:holds`, `{login:<client>}:client:holds` | sorted sets | login attempts admitted and not settled yet, scored by when each hold lapses | with the last hold |
//! | `{rate:<client>}:register` | string | registrations from one client | at the end of its window |
//! | `{rate:<client>}:reset` | string | password-reset requests and confirmations from one client | at the end of its window |
//! | `{u:<uid>}:reset_codes` | string | password-reset codes texted to the user | at the end of its window |
//! | `{u:<uid>}:events` | stream | the account's audit trail: `kind`, `at`, `session`, `client`, `user_agent`, `detail` per entry (see `audit`) | trimmed by `AUDIT_MAX_EVENTS` and `AUDIT_RETENTION`; the whole stream `AUDIT_RETENTION` after its last event |
//! | `{u:<uid>}:totp` | hash | the TOTP factor: `sealed` secret (see `mfa`), `enabled` (`0` while the enrolment waits for its first code), `last_step` accepted | a pending one at the enrolment's expiry; an enabled one never |
//! | `{u:<uid>}:recovery_codes` | set | HMAC digests of the unused recovery codes | never (spent codes are removed) |
//! | `{u:<uid>}:mfa_challenges` | hash | login challenges waiting for a code: digest -> `<expiry>\|<user agent>` | with its last challenge |
//! | `{u:<uid>}:mfa_codes` | string | second-factor codes tried in the current window | at the end of its window |
//! | `{u:<uid>}:audit_noise` | string | failed logins stored in the trail in the current hour | at the end of its window |
//! | `jwt-todo:readiness-probe` | string | the readiness check's test write | 60 s |
//!
//! `<client>` is an IPv4 address or an IPv6 /64 (`2001:db8::/64`); both counters of a client
//! share its hash tag, so one script checks and counts them atomically.
//!
//! Every script and MULTI/EXEC declares each key it touches in `KEYS`, all in one slot, so
//! the same code runs on Redis Cluster (see the tests in `keys`, e.g.
//! `every_multi_key_step_stays_in_one_cluster_slot`). The username is claimed with an
//! expiry and made permanent after the user record is written, so a crash in between never
//! locks a name for good. Deleting an account (`accounts`) deletes every key of its hash tag
//! in one script, then frees the name; a name left held for good by an id whose record is
//! gone (a crash in between) is taken over by the next registration of it.
//!
//! The per-request check is one `EXISTS` on the session key: its TTL does the expiry.
//! Rotation, reuse detection and revocation are Lua scripts, one atomic step each, never
//! a lock or a `WATCH` loop.
//!
//! # Failures
//! Every command runs under [`RedisStoreConfig::command_timeout`]. A timeout, a refused or
//! dropped connection or an exhausted pool is
//! [`StoreError::Unavailable`](application::ports::StoreError::Unavailable) (the API answers
//! 503 and the client may retry); the pool reconnects by itself when Redis is back.

/// The source of a script of `lua/` (its files concatenated, helpers first), behind the
/// shebang that tells Redis (7+) how it may run. Redis checks `maxmemory` only until a
/// script's first write and then lets every later write through, so a script that prunes
/// before it adds would slip past a full Redis; declared flags make Redis decide before the
/// script starts:
/// - `guarded`: refused whole with `OOM` while Redis is full (everything that adds data);
/// - `freeing`: runs even then (scripts that only delete, release or read, so logging out
///   and listing keep working on a full Redis).
macro_rules! lua_source {
    (guarded: $($file:literal),+) => {
        concat!("#!lua\n", $(include_str!($file), "\n"),+)
    };
    (freeing: $($file:literal),+) => {
        concat!("#!lua flags=allow-oom\n", $(include_str!($file), "\n"),+)
    };
}

/// A script of `lua/` as [`lua_source!`] makes it, sent by its hash (`EVALSHA`).
macro_rules! lua {
    ($mode:ident: $($file:literal),+) => {
        std::sync::LazyLock::new(|| redis::Script::new(lua_source!($mode: $($file),+)))
    };
}

mod accounts;
mod audit;
mod cache;
mod connection;
mod deployment;
mod errors;
mod idempotency;
mod keys;
mod mfa;
mod outbox;
mod phone;
mod records;
mod sessions;
mod shared;
mod throttle;
mod todos;
mod users;

pub use cache::{SessionCacheConfig, SessionCacheStats};
pub use connection::{PoolUsage, RedisStore, RedisStoreConfig};
pub use deployment::{Deployment, RedisUrl, UrlListError};
pub use keys::account_keys;
