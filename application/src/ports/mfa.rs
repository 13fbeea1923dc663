//! The second factor: TOTP secrets (RFC 6238) and their arithmetic ([`TotpEngine`]), and
//! what the store keeps of them, of recovery codes and of login challenges
//! ([`SecondFactors`]).

use async_trait::async_trait;

use domain::{Timestamp, UserId, Username};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

use super::phone::CodeDigest;
use super::store::StoreError;

/// A TOTP secret as the store keeps it: sealed (encrypted and authenticated) by the
/// [`TotpEngine`] under a key the store never sees, so a copy of the store (or a backup)
/// gives no one a working authenticator. `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(pub String);

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedSecret([REDACTED])")
    }
}

/// A secret just made for an enrolment: sealed for the store, and in the two forms an
/// authenticator app takes it (shown to the user once). `Debug` hides both.
#[derive(Clone, PartialEq, Eq)]
pub struct NewTotp {
    pub sealed: SealedSecret,
    /// The secret in base32 (RFC 4648), to type into an app.
    pub secret: String,
    /// `otpauth://totp/...`, to scan as a QR code.
    pub uri: String,
}

impl std::fmt::Debug for NewTotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewTotp([REDACTED])")
    }
}

/// TOTP arithmetic over sealed secrets: 6 digits, 30-second steps, HMAC-SHA1 (what every
/// authenticator app does by default).
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait TotpEngine: Send + Sync {
    /// A new random secret for `account` (the name authenticator apps show).
    ///
    /// # Errors
    /// Only if randomness or sealing fail.
    fn generate(&self, account: &Username) -> anyhow::Result<NewTotp>;

    /// The time step of `code` for this secret, if it is the code of the step of `now` or
    /// of the step just before or after it (clock drift); `None` when it is none of them.
    /// Says nothing about whether that step was used already: the store decides.
    ///
    /// # Errors
    /// When the secret cannot be unsealed (a different key, a damaged record).
    fn verify(
        &self,
        sealed: &SealedSecret,
        code: &str,
        now: Timestamp,
    ) -> anyhow::Result<Option<u64>>;

    /// The same secret sealed under the current key, when `sealed` was sealed under an
    /// older one (before the key's secret was rotated); `None` when it is current. Stores
    /// keep the new form at the factor's next use, so factors move to the new key.
    ///
    /// # Errors
    /// When the secret cannot be unsealed.
    fn reseal(&self, sealed: &SealedSecret) -> anyhow::Result<Option<SealedSecret>>;
}

/// A user's TOTP factor as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotpFactor {
    pub sealed: SealedSecret,
    /// `false` while the enrolment waits for its first code; a login needs it only once
    /// `true`.
    pub enabled: bool,
    /// The last time step a code was accepted for: no code of it or before it is
    /// accepted again (RFC 6238 §5.2).
    pub last_step: Option<u64>,
    /// Recovery codes not used yet.
    pub recovery_codes_left: u32,
}

/// What proves the second factor: a TOTP code (as its time step) or a recovery code (as
/// its keyed digest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proof {
    Step(u64),
    RecoveryCode(CodeDigest),
}

/// What a [`Proof`] is spent on, in the same atomic step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spend {
    /// Completing a login: the challenge with this digest must be alive at `now`, and is
    /// spent too; the factor's secret is replaced by `reseal` (the same secret under the
    /// current key, see [`TotpEngine::reseal`]) when there is one.
    Challenge {
        digest: CodeDigest,
        now: Timestamp,
        reseal: Option<SealedSecret>,
    },
    /// Removing the factor: the factor and every recovery code are deleted.
    Disable,
    /// Replacing the recovery codes: every one left is deleted and these keyed digests
    /// are the user's codes instead (a recovery code spent as the proof goes too).
    Renew(Vec<CodeDigest>),
}

/// What [`SecondFactors::spend`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofCheck {
    /// Accepted and spent; this many recovery codes are left (after [`Spend::Renew`], the
    /// new ones).
    Accepted { recovery_codes_left: u32 },
    /// The step is not after the last one accepted, or the recovery code is not (any
    /// more) one of the user's: nothing changed.
    Reused,
    /// The challenge is not alive (unknown, expired, spent): nothing changed.
    NoChallenge,
    /// The factor is not the enabled one the proof was checked against (disabled or
    /// replaced meanwhile), or there is none: nothing changed.
    Changed,
}

/// What [`SecondFactors::enrol`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enrolment {
    /// The secret is pending, replacing any earlier pending one.
    Pending,
    /// A factor is enabled already: nothing changed.
    AlreadyEnabled,
    /// The user does not exist (any more).
    Gone,
}

/// A login whose password was right, waiting for its second factor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MfaChallenge {
    pub user_id: UserId,
    /// Keyed digest of the challenge's secret part: the store never holds the challenge.
    pub digest: CodeDigest,
    pub expires_at: Timestamp,
    /// The `User-Agent` of the login, for the session it opens.
    pub user_agent: Option<String>,
}

/// The second factor in the store. Every write is one atomic step, so that a code or a
/// challenge is accepted at most once however many requests race with it.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait SecondFactors: Send + Sync {
    /// The user's TOTP factor, pending or enabled; `None` if they have none.
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn totp(&self, user: UserId) -> Result<Option<TotpFactor>, StoreError>;

    /// Makes `sealed` the user's pending factor until `expires_at`, replacing a pending
    /// one; refused when one is enabled.
    ///
    /// # Errors
    /// [`StoreError`] on store failure (the enrolment may be pending; enrolling again
    /// replaces it).
    async fn enrol(
        &self,
        user: UserId,
        sealed: &SealedSecret,
        expires_at: Timestamp,
    ) -> Result<Enrolment, StoreError>;

    /// Enables the pending factor `sealed` with the step of its first code as the last
    /// one used, and `recovery` as the user's recovery codes. `false`, changing nothing,
    /// when `sealed` is not pending any more (expired, replaced, enabled by a racing
    /// confirmation).
    ///
    /// # Errors
    /// [`StoreError`] on store failure; the factor may be enabled, and the recovery codes
    /// of this answer are then the ones stored.
    async fn enable(
        &self,
        user: UserId,
        sealed: &SealedSecret,
        step: u64,
        recovery: &[CodeDigest],
    ) -> Result<bool, StoreError>;

    /// Spends `proof` against the enabled factor `sealed`, and with it what `spend` says,
    /// in one atomic step.
    ///
    /// # Errors
    /// [`StoreError`] on store failure; the proof may have been spent, and presenting it
    /// again is then [`ProofCheck::Reused`].
    async fn spend(
        &self,
        user: UserId,
        sealed: &SealedSecret,
        proof: &Proof,
        spend: &Spend,
    ) -> Result<ProofCheck, StoreError>;

    /// Stores a login challenge until it expires. A user holds a bounded number of them:
    /// the oldest goes when a new one would exceed it. `false`, storing nothing, when the
    /// user does not exist (any more).
    ///
    /// # Errors
    /// [`StoreError`] on store failure (the challenge may be stored; it expires unused).
    async fn open_challenge(&self, challenge: &MfaChallenge) -> Result<bool, StoreError>;

    /// The user's challenge with this digest, if it is alive at `now`.
    ///
    /// # Errors
    /// [`StoreError`] on store failure.
    async fn challenge(
        &self,
        user: UserId,
        digest: &CodeDigest,
        now: Timestamp,
    ) -> Result<Option<MfaChallenge>, StoreError>;
}

/// Login challenges a user holds at once, at most.
pub const MAX_PENDING_CHALLENGES: usize = 16;
