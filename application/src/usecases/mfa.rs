//! The second factor (TOTP, RFC 6238): enrolling, confirming, disabling, and completing a
//! login that a right password left waiting for its code.
//!
//! Every code checked first counts against the account's limit of failed codes per window
//! (`MFA_CODE_LIMIT`), whoever tries them, and is forgiven once the code turns out right:
//! counting first means a burst of guesses sent at once cannot all pass before any is
//! counted, and forgiving means the owner's own logins never use up the limit. Someone who
//! has the password gets a handful of guesses per window at a 6-digit code, not a million. A code is accepted once: the store
//! keeps the last time step accepted and takes only later ones (RFC 6238 §5.2), in the same
//! atomic step that spends the challenge or removes the factor. Recovery codes are single
//! use the same way (their keyed digests are removed as they are spent).

use std::sync::Arc;
use std::time::Duration;

use domain::{
    AuditKind, AuthMethods, LoginChallenge, RecoveryCode, SecondFactorCode, Timestamp, UserId,
};
use tracing::instrument;

use super::audit::{Audit, Origin};
use super::login::{LoggedIn, OpenError, Opening, SessionOpener};
use super::shared::{Caller, Field, store_failures};
use crate::policy::{Limits, TokenPolicy};
use crate::ports::{
    Admission, Clock, CodeDigest, CodeHasher, Enrolment, IdGenerator, Ports, Proof, ProofCheck,
    RateKey, RateLimiter, SecondFactors, SecretKind, Spend, TotpEngine, TotpFactor, WindowLimit,
};

/// How long an enrolment waits for its first code.
pub const ENROLMENT_TTL: Duration = Duration::from_secs(15 * 60);
/// Recovery codes a confirmation hands out.
pub const RECOVERY_CODES: usize = 10;

/// The failures every code check shares.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// The code is not 6 digits (or, where one is taken, a recovery code).
    #[error("{0}")]
    InvalidCode(&'static str),
    /// Wrong, or already used within its window, or a spent recovery code.
    #[error("wrong code")]
    WrongCode,
    /// Too many codes were tried for this account in the current window.
    #[error("too many codes")]
    Throttled { retry_after: Duration },
    /// Enrolling: a factor is enabled already (disable it first).
    #[error("a second factor is enabled already")]
    AlreadyEnabled,
    /// Confirming: no enrolment is pending (none started, expired, or confirmed already).
    #[error("no enrolment pending")]
    NoPendingEnrolment,
    /// Disabling: the account has no second factor.
    #[error("no second factor")]
    NotEnabled,
    /// Completing a login: the challenge is unknown, malformed, expired or spent.
    #[error("invalid challenge")]
    InvalidChallenge,
    /// Enrolling: the caller's account was deleted meanwhile.
    #[error("user gone")]
    UserGone,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("second factor failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(MfaError);

impl MfaError {
    /// The field a validation failure is about.
    pub fn field(&self) -> Option<Field> {
        matches!(self, MfaError::InvalidCode(_)).then_some(Field::Code)
    }
}

impl From<OpenError> for MfaError {
    fn from(err: OpenError) -> Self {
        match err {
            OpenError::Store(e) => e.into(),
            OpenError::Codec(e) => MfaError::Unexpected(e),
        }
    }
}

/// What the code checks share: the engine, the store, the limit and the trail.
#[derive(Clone)]
struct Codes {
    factors: Arc<dyn SecondFactors>,
    totp: Arc<dyn TotpEngine>,
    hasher: Arc<dyn CodeHasher>,
    rate_limiter: Arc<dyn RateLimiter>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    limit: WindowLimit,
    audit: Audit,
}

impl Codes {
    fn new(ports: &Ports, limit: WindowLimit, audit: Audit) -> Self {
        Self {
            factors: ports.second_factors.clone(),
            totp: ports.totp.clone(),
            hasher: ports.code_hasher.clone(),
            rate_limiter: ports.rate_limiter.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
            limit,
            audit,
        }
    }

    /// A new set of recovery codes for `user`, and their keyed digests for the store.
    fn fresh_recovery_codes(&self, user: UserId) -> (RecoveryCodes, Vec<CodeDigest>) {
        let codes: Vec<RecoveryCode> = (0..RECOVERY_CODES)
            .map(|_| RecoveryCode::from_random_uuid(self.ids.new_uuid()))
            .collect();
        let digests = codes
            .iter()
            .map(|c| self.recovery_digest(user, c))
            .collect();
        (RecoveryCodes(codes), digests)
    }

    /// Spends a fresh code of the caller's enabled factor (or one of its recovery codes)
    /// on `spend`. What the caller does with a factor it already has (disable it, renew
    /// its recovery codes) goes through here.
    async fn spend_fresh(
        &self,
        user: UserId,
        code: &str,
        origin: Option<&Origin>,
        spend: Spend,
    ) -> Result<u32, MfaError> {
        let code = parse_code(code)?;
        let factor = match self.factors.totp(user).await? {
            Some(factor) if factor.enabled => factor,
            _ => return Err(MfaError::NotEnabled),
        };
        self.spend_code(user, &factor, &code, origin, MfaError::NotEnabled, || {
            Ok(spend)
        })
        .await
    }

    /// Every code checked against an enabled factor comes here: counted against the limit
    /// first, checked at `now`, spent on what `spend` makes (asked only once the code
    /// proved right), forgiven when the store accepts it, and a wrong or reused one written
    /// to the trail. `gone` answers when the store finds the factor (or the challenge)
    /// changed meanwhile. The recovery codes left are the answer.
    async fn spend_code(
        &self,
        user: UserId,
        factor: &TotpFactor,
        code: &SecondFactorCode,
        origin: Option<&Origin>,
        gone: MfaError,
        spend: impl FnOnce() -> Result<Spend, MfaError>,
    ) -> Result<u32, MfaError> {
        self.admit(user).await?;
        let now = self.clock.now();
        let Some(proof) = self.proof(user, factor, code, now)? else {
            return Err(self.failed(user, origin, "wrong code").await);
        };
        match self
            .factors
            .spend(user, &factor.sealed, &proof, &spend()?)
            .await?
        {
            ProofCheck::Accepted {
                recovery_codes_left,
            } => {
                self.forgive(user).await;
                Ok(recovery_codes_left)
            }
            ProofCheck::Reused => Err(self.failed(user, origin, "code used already").await),
            ProofCheck::NoChallenge | ProofCheck::Changed => Err(gone),
        }
    }

    /// Counts one code against the account's limit, before any work on it.
    async fn admit(&self, user: UserId) -> Result<(), MfaError> {
        match self
            .rate_limiter
            .hit(&RateKey::MfaCodes(user), self.limit)
            .await?
        {
            Admission::Admitted => Ok(()),
            Admission::Refused { retry_after } => {
                tracing::info!(user_id = %user, "second-factor code refused: too many tried");
                Err(MfaError::Throttled { retry_after })
            }
        }
    }

    /// What `code` proves against `factor` at `now`: the step of a right TOTP code, or the
    /// digest of what may be one of the recovery codes (the store decides that).
    fn proof(
        &self,
        user: UserId,
        factor: &TotpFactor,
        code: &SecondFactorCode,
        now: Timestamp,
    ) -> Result<Option<Proof>, MfaError> {
        Ok(match code {
            SecondFactorCode::Totp(digits) => self
                .totp
                .verify(&factor.sealed, digits, now)
                .map_err(MfaError::Unexpected)?
                .map(Proof::Step),
            SecondFactorCode::Recovery(code) => {
                Some(Proof::RecoveryCode(self.recovery_digest(user, code)))
            }
        })
    }

    /// Takes back the count of a code that was right: the limit is on failures.
    async fn forgive(&self, user: UserId) {
        if let Err(e) = self.rate_limiter.forgive(&RateKey::MfaCodes(user)).await {
            tracing::warn!(error = %e, user_id = %user, "a right code stays counted against the limit");
        }
    }

    fn recovery_digest(&self, user: UserId, code: &RecoveryCode) -> CodeDigest {
        self.hasher
            .secret_digest(user, SecretKind::RecoveryCode, code.expose())
    }

    /// Writes what the caller did to its own factor to the trail.
    async fn record(
        &self,
        caller: &Caller,
        kind: AuditKind,
        origin: Option<&Origin>,
        detail: String,
    ) {
        self.audit
            .record(
                caller.principal.user_id,
                kind,
                Some(caller.principal.session_id),
                origin,
                Some(detail),
            )
            .await;
    }

    async fn failed(&self, user: UserId, origin: Option<&Origin>, why: &str) -> MfaError {
        tracing::info!(user_id = %user, why, "second-factor code refused");
        self.audit
            .record(
                user,
                AuditKind::MfaFailed,
                None,
                origin,
                Some(why.to_owned()),
            )
            .await;
        MfaError::WrongCode
    }
}

/// A use case that checks the caller's codes through [`Codes`], under the account's limit:
/// the struct, its `Debug` (nothing of it is worth showing) and its constructor.
macro_rules! code_checking {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name {
            codes: Codes,
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }

        impl $name {
            pub(crate) fn new(ports: &Ports, limits: Limits, audit: Audit) -> Self {
                Self {
                    codes: Codes::new(ports, limits.mfa_codes_per_user, audit),
                }
            }
        }
    };
}

fn parse_code(raw: &str) -> Result<SecondFactorCode, MfaError> {
    SecondFactorCode::parse(raw).map_err(|_| {
        MfaError::InvalidCode(
            "code must be the 6 digits of the authenticator app, or a recovery code",
        )
    })
}

/// A new secret, for the user to add to an authenticator app.
#[derive(Debug)]
pub struct TotpEnrolment {
    pub secret: crate::ports::NewTotp,
    pub expires_at: Timestamp,
}

/// `POST /me/mfa/totp`: a new pending secret, replacing any pending one.
pub struct EnrolTotp {
    factors: Arc<dyn SecondFactors>,
    totp: Arc<dyn TotpEngine>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for EnrolTotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolTotp").finish_non_exhaustive()
    }
}

impl EnrolTotp {
    pub(crate) fn new(ports: &Ports) -> Self {
        Self {
            factors: ports.second_factors.clone(),
            totp: ports.totp.clone(),
            clock: ports.clock.clone(),
        }
    }

    /// # Errors
    /// [`MfaError::AlreadyEnabled`]; store failures.
    #[instrument(name = "enrol_totp", skip_all, fields(user_id = %caller.principal.user_id))]
    pub async fn execute(&self, caller: &Caller) -> Result<TotpEnrolment, MfaError> {
        let user = caller.principal.user_id;
        let secret = self
            .totp
            .generate(&caller.user.username)
            .map_err(MfaError::Unexpected)?;
        let expires_at = self.clock.now().plus(ENROLMENT_TTL);
        match self.factors.enrol(user, &secret.sealed, expires_at).await? {
            Enrolment::Pending => Ok(TotpEnrolment { secret, expires_at }),
            Enrolment::AlreadyEnabled => Err(MfaError::AlreadyEnabled),
            // The caller's session was alive a moment ago: the account went since.
            Enrolment::Gone => Err(MfaError::UserGone),
        }
    }
}

/// The recovery codes of a confirmed factor, shown to the user once.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCodes(pub Vec<RecoveryCode>);

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecoveryCodes({} codes)", self.0.len())
    }
}

code_checking! {
    /// `POST /me/mfa/totp/confirm`: the first code enables the pending factor.
    ConfirmTotp
}

impl ConfirmTotp {
    /// # Errors
    /// [`MfaError::InvalidCode`] (6 digits only), `Throttled`, `NoPendingEnrolment`,
    /// `WrongCode`; store failures.
    #[instrument(name = "confirm_totp", skip_all, fields(user_id = %caller.principal.user_id))]
    pub async fn execute(
        &self,
        caller: &Caller,
        code: &str,
        origin: Option<&Origin>,
    ) -> Result<RecoveryCodes, MfaError> {
        let user = caller.principal.user_id;
        let digits = SecondFactorCode::parse_totp(code).map_err(|_| {
            MfaError::InvalidCode("code must be the 6 digits of the authenticator app")
        })?;
        let factor = match self.codes.factors.totp(user).await? {
            Some(factor) if !factor.enabled => factor,
            _ => return Err(MfaError::NoPendingEnrolment),
        };
        self.codes.admit(user).await?;
        let now = self.codes.clock.now();
        let Some(step) = self
            .codes
            .totp
            .verify(&factor.sealed, &digits, now)
            .map_err(MfaError::Unexpected)?
        else {
            tracing::info!(user_id = %user, "enrolment code refused");
            return Err(MfaError::WrongCode);
        };
        let (codes, digests) = self.codes.fresh_recovery_codes(user);
        if !self
            .codes
            .factors
            .enable(user, &factor.sealed, step, &digests)
            .await?
        {
            return Err(MfaError::NoPendingEnrolment);
        }
        self.codes.forgive(user).await;
        self.codes
            .record(caller, AuditKind::MfaEnabled, origin, "totp".into())
            .await;
        Ok(codes)
    }
}

code_checking! {
    /// `DELETE /me/mfa/totp`: removes the factor, on a fresh code (or a recovery code).
    DisableTotp
}

impl DisableTotp {
    /// # Errors
    /// [`MfaError::InvalidCode`], `Throttled`, `NotEnabled`, `WrongCode`; store failures.
    #[instrument(name = "disable_totp", skip_all, fields(user_id = %caller.principal.user_id))]
    pub async fn execute(
        &self,
        caller: &Caller,
        code: &str,
        origin: Option<&Origin>,
    ) -> Result<(), MfaError> {
        let user = caller.principal.user_id;
        self.codes
            .spend_fresh(user, code, origin, Spend::Disable)
            .await?;
        self.codes
            .record(caller, AuditKind::MfaDisabled, origin, "totp".into())
            .await;
        Ok(())
    }
}

code_checking! {
    /// `POST /me/mfa/recovery-codes`: new recovery codes for the caller's factor, on a fresh
    /// code (or one of the old recovery codes); the old ones stop working in the same step.
    /// For a user who used most of theirs, lost them, or never saw them (the answer to the
    /// confirmation was lost).
    RenewRecoveryCodes
}

impl RenewRecoveryCodes {
    /// # Errors
    /// [`MfaError::InvalidCode`], `Throttled`, `NotEnabled`, `WrongCode` (nothing
    /// changed: the old codes still work); store failures (the codes may have been
    /// renewed: renew again with the next code).
    #[instrument(name = "renew_recovery_codes", skip_all, fields(user_id = %caller.principal.user_id))]
    pub async fn execute(
        &self,
        caller: &Caller,
        code: &str,
        origin: Option<&Origin>,
    ) -> Result<RecoveryCodes, MfaError> {
        let user = caller.principal.user_id;
        let (codes, digests) = self.codes.fresh_recovery_codes(user);
        let stored = self
            .codes
            .spend_fresh(user, code, origin, Spend::Renew(digests))
            .await?;
        self.codes
            .record(
                caller,
                AuditKind::RecoveryCodesRenewed,
                origin,
                format!("codes={stored}"),
            )
            .await;
        Ok(codes)
    }
}

/// The caller's second factor, as `GET /me/mfa` tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondFactorState {
    /// None: the password alone logs in.
    Off,
    /// Enrolled, waiting for its first code (`POST /me/mfa/totp/confirm`).
    Pending,
    /// Every password login needs a code; this many recovery codes are unused.
    On { recovery_codes_left: u32 },
}

/// `GET /me/mfa`: whether the caller's second factor is on, and how many recovery codes
/// are left (the cue to renew them). One store read, off the hot path of `GET /me`.
pub struct MfaStatus {
    factors: Arc<dyn SecondFactors>,
}

impl std::fmt::Debug for MfaStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaStatus").finish_non_exhaustive()
    }
}

impl MfaStatus {
    pub(crate) fn new(ports: &Ports) -> Self {
        Self {
            factors: ports.second_factors.clone(),
        }
    }

    /// # Errors
    /// Store failures.
    #[instrument(name = "mfa_status", skip_all, fields(user_id = %caller.principal.user_id))]
    pub async fn execute(&self, caller: &Caller) -> Result<SecondFactorState, MfaError> {
        Ok(match self.factors.totp(caller.principal.user_id).await? {
            None => SecondFactorState::Off,
            Some(factor) if !factor.enabled => SecondFactorState::Pending,
            Some(factor) => SecondFactorState::On {
                recovery_codes_left: factor.recovery_codes_left,
            },
        })
    }
}

/// `POST /login/mfa`: a challenge and a code.
pub struct CompleteLoginRequest {
    pub challenge: String,
    pub code: String,
    pub origin: Origin,
}

impl std::fmt::Debug for CompleteLoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompleteLoginRequest")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Completes a login with its second factor: the challenge and the code are spent
/// together, and the session opened says so (`amr`).
pub struct CompleteLogin {
    codes: Codes,
    opener: SessionOpener,
}

impl std::fmt::Debug for CompleteLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompleteLogin").finish_non_exhaustive()
    }
}

impl CompleteLogin {
    pub(crate) fn new(ports: &Ports, policy: TokenPolicy, limits: Limits, audit: Audit) -> Self {
        Self {
            codes: Codes::new(ports, limits.mfa_codes_per_user, audit.clone()),
            opener: SessionOpener::new(ports, policy, limits, audit),
        }
    }

    /// # Errors
    /// [`MfaError::InvalidChallenge`] (malformed, unknown, expired, spent, or the factor
    /// is gone), `InvalidCode`, `Throttled`, `WrongCode` (the challenge stays usable
    /// until it expires); store failures.
    #[instrument(name = "complete_login", skip_all, fields(client = %request.origin.client))]
    pub async fn execute(&self, request: CompleteLoginRequest) -> Result<LoggedIn, MfaError> {
        let challenge =
            LoginChallenge::parse(request.challenge.trim()).ok_or(MfaError::InvalidChallenge)?;
        let code = parse_code(&request.code)?;
        let user = challenge.user_id;
        let digest = self.codes.hasher.secret_digest(
            user,
            SecretKind::LoginChallenge,
            &challenge.expose_secret(),
        );
        let now = self.codes.clock.now();
        let Some(pending) = self.codes.factors.challenge(user, &digest, now).await? else {
            return Err(MfaError::InvalidChallenge);
        };
        let factor = match self.codes.factors.totp(user).await? {
            Some(factor) if factor.enabled => factor,
            // Disabled since the password was checked: log in again.
            _ => return Err(MfaError::InvalidChallenge),
        };
        // The challenge is spent with the code; the secret moves to the current key with it.
        let left = self
            .codes
            .spend_code(
                user,
                &factor,
                &code,
                Some(&request.origin),
                MfaError::InvalidChallenge,
                || {
                    let reseal = self
                        .codes
                        .totp
                        .reseal(&factor.sealed)
                        .map_err(MfaError::Unexpected)?;
                    Ok(Spend::Challenge {
                        digest,
                        now,
                        reseal,
                    })
                },
            )
            .await?;
        let recovery = matches!(code, SecondFactorCode::Recovery(_));
        let detail = recovery.then(|| format!("recovery_code codes_left={left}"));
        self.opener
            .open(Opening {
                user_id: user,
                user_agent: pending.user_agent.as_deref(),
                oauth_client: None,
                amr: AuthMethods::PasswordAndOtp,
                origin: &request.origin,
                detail,
            })
            .await?
            .ok_or(MfaError::InvalidChallenge)
    }
}

#[cfg(test)]
mod tests;
