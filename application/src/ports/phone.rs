//! Phone verification (texted codes, kept only as keyed digests) and the SMS caps.

use async_trait::async_trait;
use std::time::Duration;

use domain::{PhoneCode, PhoneNumber, Timestamp, UserId};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

use super::store::StoreError;

/// The keyed digest of a phone code (HMAC-SHA256): what the store keeps instead of the
/// code. Without the key, a stolen store or backup tells nothing about a pending code.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CodeDigest(pub [u8; 32]);

impl CodeDigest {
    /// Lower-case hex, for stores that keep text.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The inverse of [`CodeDigest::to_hex`]; `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Self(bytes))
    }
}

impl std::fmt::Debug for CodeDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeDigest(..)")
    }
}

/// Makes phone codes storable: a keyed hash, the same on every replica.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait CodeHasher: Send + Sync {
    /// The digest of `code` texted to `phone` for `user`. It binds all three: a digest
    /// proves nothing about another user or another number.
    fn digest(&self, user: UserId, phone: &PhoneNumber, code: &PhoneCode) -> CodeDigest;

    /// The digest of a secret of `user` that is no phone code (a recovery code, a login
    /// challenge). It binds the user and the kind: a digest of one kind proves nothing of
    /// another, and none is ever a phone code's. A login challenge's is keyed (it lives
    /// minutes); a recovery code's is not (its 80 random bits need no key, and it must
    /// outlive a rotation of the key).
    fn secret_digest(&self, user: UserId, kind: SecretKind, secret: &str) -> CodeDigest;
}

/// Which secret [`CodeHasher::secret_digest`] hashes, for domain separation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    RecoveryCode,
    LoginChallenge,
}

impl SecretKind {
    pub const fn label(self) -> &'static str {
        match self {
            SecretKind::RecoveryCode => "recovery-code",
            SecretKind::LoginChallenge => "login-challenge",
        }
    }
}

/// A code waiting to be confirmed, as the store keeps it: never the code itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingCode {
    pub user_id: UserId,
    /// The number the code was texted to; it proves only this number.
    pub phone: PhoneNumber,
    pub digest: CodeDigest,
    /// After this the code is dead (and the store may forget it).
    pub expires_at: Timestamp,
    /// Wrong codes tried against it before it is dead.
    pub max_attempts: u32,
}

/// What [`PhoneVerifications::confirm`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeCheck {
    /// The digest matched the pending code of the user's current number: the number is
    /// verified now and the code spent. Also the answer, changing nothing, to the same
    /// digest presented again while that number is still the user's and verified (a retry
    /// of a confirmation whose reply was lost).
    Verified,
    /// The digest did not match; counted. `attempts_left` more may be tried (0: the code
    /// is dead now).
    Wrong { attempts_left: u32 },
    /// No live code for the user's current number: none was asked for, it expired, was
    /// spent, was replaced by a newer one, had too many wrong attempts, or was texted to
    /// a number that is no longer the user's.
    NoCode,
}

/// Phone verification: the user's number, whether it is proven, and their one pending code.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait PhoneVerifications: Send + Sync {
    /// In one atomic step: sets the user's phone to `code.phone`, unverified, and makes
    /// `code` their one pending code, replacing any earlier one (one per user: nothing
    /// piles up). Returns `false`, changing nothing, when the user does not exist.
    ///
    /// # Errors
    /// [`StoreError`] on store failure, in which case nothing changed that the caller was
    /// told about (the step may still have happened; asking again replaces it).
    async fn start(&self, code: &PendingCode) -> Result<bool, StoreError>;

    /// In one atomic step: checks `digest` against the user's pending code at `now` and, on
    /// a match, marks the phone verified and spends the code. A pending code whose number
    /// is no longer the user's verifies nothing.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; the check may or may not have been counted, and a
    /// retry with the right code still answers [`CodeCheck::Verified`].
    async fn confirm(
        &self,
        user: UserId,
        digest: &CodeDigest,
        now: Timestamp,
    ) -> Result<CodeCheck, StoreError>;
}

/// SMS caps, each a fixed window counted in the store (so every replica shares it): per
/// user and per recipient number, per hour and per day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmsCaps {
    pub user_hourly: u32,
    pub user_daily: u32,
    pub number_hourly: u32,
    pub number_daily: u32,
}

/// Which limit refused an SMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsLimit {
    /// A code was requested too soon after the last one.
    Cooldown,
    /// The user's hourly or daily cap.
    User,
    /// The recipient number's hourly or daily cap, whoever sends to it.
    Number,
}

/// The answer of [`SmsQuota::admit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsAdmission {
    /// Counted against every window; go on and queue the SMS.
    Admitted,
    /// A window is full and nothing was counted. `retry_after` is how long until the
    /// window that refused frees (the latest, if several did), at least one second.
    Refused {
        limit: SmsLimit,
        retry_after: Duration,
    },
}

/// Counts SMS against the caps, in the store, so that every replica shares the counts.
///
/// An SMS is counted when it is *queued*, in the step that checks the caps, so racing
/// requests cannot overshoot them. A count whose reply was lost stays counted: the caps
/// may be reached one SMS early, never passed.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait SmsQuota: Send + Sync {
    /// Admits one SMS from `user` to `to` and counts it in the user's and the number's
    /// windows, unless a window is full. With `cooldown` (a code request), the user's
    /// previous code request must also be at least that long ago, and this one starts a
    /// new cooldown.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; callers must fail closed (queue nothing).
    async fn admit(
        &self,
        user: UserId,
        to: &PhoneNumber,
        caps: &SmsCaps,
        cooldown: Option<Duration>,
    ) -> Result<SmsAdmission, StoreError>;

    /// Gives back what an admitted SMS counted (its cooldown too, with `cooldown`), when
    /// it was not queued after all.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; the SMS then stays counted until its window ends.
    async fn give_back(
        &self,
        user: UserId,
        to: &PhoneNumber,
        cooldown: bool,
    ) -> Result<(), StoreError>;
}
