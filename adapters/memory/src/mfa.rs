//! The second factor in process: each user's TOTP factor, recovery codes and login
//! challenges, in the state under its one lock, so that every step is atomic as the
//! Redis scripts are.

use application::ports::{
    CodeDigest, Enrolment, MAX_PENDING_CHALLENGES, MfaChallenge, Proof, ProofCheck, SealedSecret,
    SecondFactors, Spend, StoreError, TotpFactor,
};
use async_trait::async_trait;
use domain::{Timestamp, UserId};

use crate::MemoryStore;

/// One user's second-factor state.
#[derive(Default)]
pub(crate) struct UserMfa {
    totp: Option<StoredTotp>,
    recovery: Vec<CodeDigest>,
    challenges: Vec<MfaChallenge>,
}

struct StoredTotp {
    sealed: SealedSecret,
    /// `None` once enabled; until then the pending enrolment's expiry.
    pending_until: Option<Timestamp>,
    last_step: Option<u64>,
}

impl UserMfa {
    /// Drops expired challenges and an expired pending enrolment; `false` when nothing is
    /// left worth keeping.
    pub(crate) fn purge_expired(&mut self, now: Timestamp) -> bool {
        self.challenges.retain(|c| !c.expires_at.has_passed(now));
        if self.live_totp(now).is_none() {
            self.totp = None;
        }
        self.totp.is_some() || !self.recovery.is_empty() || !self.challenges.is_empty()
    }

    /// The factor as seen at `now`: a pending one that expired is none.
    fn live_totp(&self, now: Timestamp) -> Option<&StoredTotp> {
        self.totp
            .as_ref()
            .filter(|t| t.pending_until.is_none_or(|until| !until.has_passed(now)))
    }
}

impl MemoryStore {
    /// Drops the user's pending login challenges: they were issued on a password that is
    /// no longer the user's.
    pub(crate) fn forget_challenges(state: &mut crate::State, user: UserId) {
        if let Some(mfa) = state.mfa.get_mut(&user) {
            mfa.challenges.clear();
        }
    }
}

#[async_trait]
impl SecondFactors for MemoryStore {
    async fn totp(&self, user: UserId) -> Result<Option<TotpFactor>, StoreError> {
        let now = self.clock.now();
        let state = self.read();
        let Some(mfa) = state.mfa.get(&user) else {
            return Ok(None);
        };
        Ok(mfa.live_totp(now).map(|t| TotpFactor {
            sealed: t.sealed.clone(),
            enabled: t.pending_until.is_none(),
            last_step: t.last_step,
            recovery_codes_left: u32::try_from(mfa.recovery.len()).unwrap_or(u32::MAX),
        }))
    }

    async fn enrol(
        &self,
        user: UserId,
        sealed: &SealedSecret,
        expires_at: Timestamp,
    ) -> Result<Enrolment, StoreError> {
        let mut state = self.write();
        if !state.users.contains_key(&user) {
            return Ok(Enrolment::Gone);
        }
        let mfa = state.mfa.entry(user).or_default();
        if mfa.totp.as_ref().is_some_and(|t| t.pending_until.is_none()) {
            return Ok(Enrolment::AlreadyEnabled);
        }
        mfa.totp = Some(StoredTotp {
            sealed: sealed.clone(),
            pending_until: Some(expires_at),
            last_step: None,
        });
        Ok(Enrolment::Pending)
    }

    async fn enable(
        &self,
        user: UserId,
        sealed: &SealedSecret,
        step: u64,
        recovery: &[CodeDigest],
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        let Some(mfa) = state.mfa.get_mut(&user) else {
            return Ok(false);
        };
        let pending = mfa
            .live_totp(now)
            .is_some_and(|t| t.pending_until.is_some() && t.sealed == *sealed);
        if !pending {
            return Ok(false);
        }
        mfa.totp = Some(StoredTotp {
            sealed: sealed.clone(),
            pending_until: None,
            last_step: Some(step),
        });
        mfa.recovery = recovery.to_vec();
        Ok(true)
    }

    async fn spend(
        &self,
        user: UserId,
        sealed: &SealedSecret,
        proof: &Proof,
        spend: &Spend,
    ) -> Result<ProofCheck, StoreError> {
        let mut state = self.write();
        let Some(mfa) = state.mfa.get_mut(&user) else {
            return Ok(ProofCheck::Changed);
        };
        let Some(totp) = mfa
            .totp
            .as_mut()
            .filter(|t| t.pending_until.is_none() && t.sealed == *sealed)
        else {
            return Ok(ProofCheck::Changed);
        };
        let challenge = match spend {
            Spend::Challenge { digest, now, .. } => {
                mfa.challenges.retain(|c| !c.expires_at.has_passed(*now));
                match mfa.challenges.iter().position(|c| c.digest == *digest) {
                    Some(at) => Some(at),
                    None => return Ok(ProofCheck::NoChallenge),
                }
            }
            Spend::Disable | Spend::Renew(_) => None,
        };
        match proof {
            Proof::Step(step) => {
                if totp.last_step.is_some_and(|last| *step <= last) {
                    return Ok(ProofCheck::Reused);
                }
                totp.last_step = Some(*step);
            }
            Proof::RecoveryCode(digest) => {
                let Some(at) = mfa.recovery.iter().position(|d| d == digest) else {
                    return Ok(ProofCheck::Reused);
                };
                mfa.recovery.swap_remove(at);
            }
        }
        if let Some(at) = challenge {
            mfa.challenges.swap_remove(at);
        }
        if let Spend::Challenge {
            reseal: Some(resealed),
            ..
        } = spend
        {
            totp.sealed = resealed.clone();
        }
        match spend {
            Spend::Disable => {
                state.mfa.remove(&user);
                return Ok(ProofCheck::Accepted {
                    recovery_codes_left: 0,
                });
            }
            Spend::Renew(codes) => mfa.recovery.clone_from(codes),
            Spend::Challenge { .. } => {}
        }
        let recovery_codes_left = u32::try_from(mfa.recovery.len()).unwrap_or(u32::MAX);
        Ok(ProofCheck::Accepted {
            recovery_codes_left,
        })
    }

    async fn open_challenge(&self, challenge: &MfaChallenge) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut state = self.write();
        if !state.users.contains_key(&challenge.user_id) {
            return Ok(false);
        }
        let pending = &mut state.mfa.entry(challenge.user_id).or_default().challenges;
        pending.retain(|c| !c.expires_at.has_passed(now));
        if pending.len() >= MAX_PENDING_CHALLENGES {
            // The oldest goes: they all live equally long, so it expires first.
            if let Some(oldest) = pending
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| c.expires_at)
                .map(|(at, _)| at)
            {
                pending.remove(oldest);
            }
        }
        pending.push(challenge.clone());
        Ok(true)
    }

    async fn challenge(
        &self,
        user: UserId,
        digest: &CodeDigest,
        now: Timestamp,
    ) -> Result<Option<MfaChallenge>, StoreError> {
        let state = self.read();
        Ok(state.mfa.get(&user).and_then(|mfa| {
            mfa.challenges
                .iter()
                .find(|c| c.digest == *digest && !c.expires_at.has_passed(now))
                .cloned()
        }))
    }
}
