//! [`JwtConfig`]: what the codec is built from, and every rule it must keep. The rules live
//! here alone: [`JwtCodec::new`](crate::JwtCodec::new) checks them, and the server asks
//! [`JwtConfig::check`] (and, in production, [`JwtConfig::check_strength`]) to name the
//! variable at fault before it builds anything.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretSlice};

use crate::keys::{AccessSigningKey, AccessVerificationKey, Ring, RingKey};
use crate::rules::{
    JwtConfigError, KeySlot, MAX_CLAIM_LEN, MAX_LEEWAY, MAX_PREVIOUS_KEYS, MIN_SECRET_LEN,
};
use crate::strength::check_hmac_secret;

/// The clock-skew allowance used when none is configured.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// What [`JwtCodec::new`](crate::JwtCodec::new) needs. `Debug` shows the secrets as
/// `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct JwtConfig {
    /// Signs access tokens (and verifies them).
    pub access_signing: AccessSigningKey,
    /// Verify access tokens signed before a rotation; sign nothing. HS256 secrets here
    /// also let a switch from HS256 to Ed25519 keep the tokens already issued.
    pub access_previous: Vec<AccessVerificationKey>,
    /// HMAC key of refresh tokens, at least [`MIN_SECRET_LEN`] bytes, never one of the
    /// access secrets.
    pub refresh_secret: SecretSlice<u8>,
    /// Verify refresh tokens signed before a rotation; sign nothing.
    pub refresh_secrets_previous: Vec<SecretSlice<u8>>,
    /// The `iss` claim issued and required.
    pub issuer: String,
    /// The `aud` claim issued and required.
    pub audience: String,
    /// Clock-skew allowance on `exp`, at most [`MAX_LEEWAY`].
    pub leeway: Duration,
}

impl JwtConfig {
    /// An HS256 configuration without previous keys, with the [`DEFAULT_LEEWAY`]. Secrets
    /// from text configuration convert with `SecretSlice::from(text.into_bytes())`.
    pub fn new(
        access_secret: SecretSlice<u8>,
        refresh_secret: SecretSlice<u8>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            access_signing: AccessSigningKey::Hs256(access_secret),
            access_previous: Vec::new(),
            refresh_secret,
            refresh_secrets_previous: Vec::new(),
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: DEFAULT_LEEWAY,
        }
    }

    /// Every rule [`JwtCodec::new`](crate::JwtCodec::new) holds a configuration to.
    ///
    /// # Errors
    /// The first rule broken: an HMAC secret in both the access and the refresh keys, a
    /// secret shorter than [`MIN_SECRET_LEN`] bytes, more than [`MAX_PREVIOUS_KEYS`]
    /// previous keys, one key twice in a ring (a previous key that is the signing key
    /// included), an empty or over-long issuer or audience, a leeway over [`MAX_LEEWAY`].
    pub fn check(&self) -> Result<(), JwtConfigError> {
        self.check_kinds_apart()?;
        self.check_keys()
    }

    /// One kind of token must never verify as the other: no HMAC secret may be in both
    /// rings, current or previous.
    pub(crate) fn check_kinds_apart(&self) -> Result<(), JwtConfigError> {
        let access = self.access_ring();
        let refresh = self.refresh_ring();
        match refresh
            .slots()
            .find(|(_, key)| access.slots().any(|(_, a)| a == *key))
        {
            Some((refresh, _)) => Err(JwtConfigError::SameSecret { refresh }),
            None => Ok(()),
        }
    }

    /// Every rule but [`JwtConfig::check_kinds_apart`] (which tests skip to show that the
    /// `typ` check alone keeps the kinds apart).
    pub(crate) fn check_keys(&self) -> Result<(), JwtConfigError> {
        let rings = [
            ("access", self.access_ring()),
            ("refresh", self.refresh_ring()),
        ];
        for (which, ring) in &rings {
            for (slot, key) in ring.slots() {
                if let RingKey::Hs256(secret) = key
                    && secret.len() < MIN_SECRET_LEN
                {
                    return Err(JwtConfigError::SecretTooShort { which, slot });
                }
            }
        }
        for (which, ring) in &rings {
            if ring.previous.len() > MAX_PREVIOUS_KEYS {
                return Err(JwtConfigError::TooManyPreviousKeys { which });
            }
        }
        for (which, ring) in &rings {
            let keys: Vec<(KeySlot, RingKey<'_>)> = ring.slots().collect();
            for (i, (slot, key)) in keys.iter().enumerate() {
                if let Some((earlier, _)) = keys[..i].iter().find(|(_, k)| k == key) {
                    return Err(JwtConfigError::DuplicateKey {
                        which,
                        slot: *slot,
                        earlier: *earlier,
                    });
                }
            }
        }
        if self.issuer.is_empty() {
            return Err(JwtConfigError::EmptyIssuer);
        }
        if self.issuer.chars().count() > MAX_CLAIM_LEN {
            return Err(JwtConfigError::IssuerTooLong);
        }
        if self.audience.is_empty() {
            return Err(JwtConfigError::EmptyAudience);
        }
        if self.audience.chars().count() > MAX_CLAIM_LEN {
            return Err(JwtConfigError::AudienceTooLong);
        }
        if self.leeway > MAX_LEEWAY {
            return Err(JwtConfigError::LeewayTooLarge);
        }
        Ok(())
    }

    /// Whether every HMAC secret looks drawn at random ([`check_hmac_secret`]): what a
    /// production deployment needs, since anyone who guesses a secret forges tokens.
    /// Development and tests use any secret of the minimum length, so
    /// [`JwtCodec::new`](crate::JwtCodec::new) does not ask this; the server does, in
    /// production.
    ///
    /// # Errors
    /// [`JwtConfigError::WeakSecret`] for the first weak secret: the signing secrets
    /// (access, then refresh), then the previous ones in order.
    pub fn check_strength(&self) -> Result<(), JwtConfigError> {
        let (access, refresh) = (self.access_ring(), self.refresh_ring());
        let signing = [("access", &access), ("refresh", &refresh)]
            .map(|(which, ring)| (which, KeySlot::Signing, ring.signing));
        let previous = [("access", &access), ("refresh", &refresh)]
            .into_iter()
            .flat_map(|(which, ring)| {
                ring.slots()
                    .skip(1)
                    .map(move |(slot, key)| (which, slot, key))
            });
        for (which, slot, key) in signing.into_iter().chain(previous) {
            if let RingKey::Hs256(secret) = key {
                check_hmac_secret(secret).map_err(|weakness| JwtConfigError::WeakSecret {
                    which,
                    slot,
                    weakness,
                })?;
            }
        }
        Ok(())
    }

    /// The access keys: the signing key (an HMAC secret or an Ed25519 key's public half),
    /// then the previous keys.
    pub(crate) fn access_ring(&self) -> Ring<'_> {
        Ring {
            signing: match &self.access_signing {
                AccessSigningKey::Hs256(secret) => RingKey::Hs256(secret.expose_secret()),
                AccessSigningKey::Ed25519(private) => RingKey::Ed25519Public(private.public_key()),
            },
            previous: self
                .access_previous
                .iter()
                .map(|key| match key {
                    AccessVerificationKey::Hs256(secret) => RingKey::Hs256(secret.expose_secret()),
                    AccessVerificationKey::Ed25519(public) => RingKey::Ed25519Public(*public),
                })
                .collect(),
        }
    }

    /// The refresh keys: HMAC secrets only, the signing one first.
    pub(crate) fn refresh_ring(&self) -> Ring<'_> {
        Ring {
            signing: RingKey::Hs256(self.refresh_secret.expose_secret()),
            previous: self
                .refresh_secrets_previous
                .iter()
                .map(|secret| RingKey::Hs256(secret.expose_secret()))
                .collect(),
        }
    }
}
