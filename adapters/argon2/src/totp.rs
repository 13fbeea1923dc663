//! The [`TotpEngine`] port: TOTP (RFC 6238) by `totp-rs`, over secrets sealed with
//! ChaCha20-Poly1305 (`ring`) under a key the server derives from its refresh-token
//! secret, as the code digests' key is: every replica unseals the same secrets, and a copy
//! of the store (or a backup) holds no working authenticator.
//!
//! Sealed form: `v1:` then hex of the 12-byte random nonce and the ciphertext with its
//! tag. Secrets are sealed under the current refresh secret's key and unsealed under it or
//! under any of `REFRESH_SECRETS_PREVIOUS`'s: after a rotation, a factor sealed under the
//! old secret still works while that secret is listed, and is sealed anew under the
//! current one at its next login ([`TotpEngine::reseal`]). A secret no listed key opens
//! cannot be checked: its logins fail (500, logged) until the key is listed again.

use application::ports::{NewTotp, SealedSecret, TotpEngine};
use domain::{Timestamp, Username};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use totp_rs::{Algorithm, Builder, Totp};

use crate::code_digest::hmac_sha256;

/// Domain separation: the derived key seals TOTP secrets and nothing else.
const LABEL: &[u8] = b"jwt-todo totp-secret v1";
const VERSION: &str = "v1:";
/// 160 bits, the length RFC 4226 §4 recommends and authenticator apps expect.
const SECRET_LEN: usize = 20;

/// TOTP over sealed secrets. `Debug` never shows the key.
pub struct SealedTotpEngine {
    /// The current key first (it seals), then the previous ones (they only unseal).
    keys: Vec<LessSafeKey>,
    issuer: String,
    random: SystemRandom,
}

impl std::fmt::Debug for SealedTotpEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedTotpEngine")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl SealedTotpEngine {
    /// The sealing key is `HMAC-SHA256(secret, "jwt-todo totp-secret v1")` of the current
    /// secret; those of `previous` secrets only unseal. `issuer` is the name
    /// authenticator apps show above the account (no `:`).
    ///
    /// # Errors
    /// When the issuer holds a `:` (the `otpauth` URI cannot carry it).
    pub fn derive(secret: &[u8], previous: &[&[u8]], issuer: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(!issuer.contains(':'), "a TOTP issuer may not contain ':'");
        let keys = std::iter::once(secret)
            .chain(previous.iter().copied())
            .map(|secret| {
                UnboundKey::new(&CHACHA20_POLY1305, &hmac_sha256(secret, &[LABEL]))
                    .map(LessSafeKey::new)
                    .map_err(|_| anyhow::anyhow!("ChaCha20-Poly1305 refused a 32-byte key"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            keys,
            issuer: issuer.to_owned(),
            random: SystemRandom::new(),
        })
    }

    fn sealing_key(&self) -> anyhow::Result<&LessSafeKey> {
        self.keys
            .first()
            .ok_or_else(|| anyhow::anyhow!("no TOTP sealing key"))
    }

    fn seal(&self, secret: &[u8]) -> anyhow::Result<SealedSecret> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| anyhow::anyhow!("no randomness for a nonce"))?;
        let mut sealed = secret.to_vec();
        self.sealing_key()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut sealed,
            )
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        Ok(SealedSecret(format!(
            "{VERSION}{}{}",
            hex::encode(nonce),
            hex::encode(&sealed)
        )))
    }

    /// The secret, and whether the current key opened it.
    fn unseal(&self, sealed: &SealedSecret) -> anyhow::Result<(Vec<u8>, bool)> {
        let bytes = sealed
            .0
            .strip_prefix(VERSION)
            .and_then(|text| hex::decode(text).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or_else(|| anyhow::anyhow!("a sealed TOTP secret of an unknown form"))?;
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        for (at, key) in self.keys.iter().enumerate() {
            let nonce = Nonce::try_assume_unique_for_key(nonce)
                .map_err(|_| anyhow::anyhow!("a sealed TOTP secret with a bad nonce"))?;
            let mut opened = sealed.to_vec();
            if let Ok(secret) = key.open_in_place(nonce, Aad::empty(), &mut opened) {
                return Ok((secret.to_vec(), at == 0));
            }
        }
        anyhow::bail!(
            "a TOTP secret no key unseals (sealed under a refresh secret no longer listed?)"
        )
    }

    fn totp(&self, secret: Vec<u8>, account: &str) -> anyhow::Result<Totp> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(30)
            .with_secret(secret)
            .with_account_name(account)
            .with_issuer(Some(self.issuer.as_str()))
            .build()
            .map_err(|e| anyhow::anyhow!("TOTP parameters refused: {e:?}"))
    }
}

impl TotpEngine for SealedTotpEngine {
    fn generate(&self, account: &Username) -> anyhow::Result<NewTotp> {
        let mut secret = [0u8; SECRET_LEN];
        self.random
            .fill(&mut secret)
            .map_err(|_| anyhow::anyhow!("no randomness for a TOTP secret"))?;
        let sealed = self.seal(&secret)?;
        let totp = self.totp(secret.to_vec(), account.as_str())?;
        Ok(NewTotp {
            sealed,
            secret: totp.secret().to_base32(),
            uri: totp
                .to_url()
                .map_err(|e| anyhow::anyhow!("no otpauth URI: {e:?}"))?,
        })
    }

    fn verify(
        &self,
        sealed: &SealedSecret,
        code: &str,
        now: Timestamp,
    ) -> anyhow::Result<Option<u64>> {
        let totp = self.totp(self.unseal(sealed)?.0, "")?;
        let Ok(now) = u64::try_from(now.unix_seconds()) else {
            return Ok(None);
        };
        // `check` compares the codes of the three steps in constant time each (`Token`'s
        // equality), and answers the step that matched.
        Ok(totp.check(code, now))
    }

    fn reseal(&self, sealed: &SealedSecret) -> anyhow::Result<Option<SealedSecret>> {
        match self.unseal(sealed)? {
            (_, true) => Ok(None),
            (secret, false) => self.seal(&secret).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"refresh-secret-refresh-secret-32";

    fn engine() -> SealedTotpEngine {
        SealedTotpEngine::derive(SECRET, &[], "jwt-todo").expect("engine")
    }

    fn alice() -> Username {
        Username::parse("alice").expect("name")
    }

    /// The code an authenticator app shows for `secret` (base32) at `time`.
    fn app_code(secret: &str, time: u64) -> String {
        Builder::new()
            .with_secret(totp_rs::Secret::try_from_base32(secret).expect("base32"))
            .build()
            .expect("totp")
            .generate(time)
            .to_string()
    }

    #[test]
    fn an_apps_code_verifies_at_its_step_and_the_steps_beside_it_only() {
        let engine = engine();
        let new = engine.generate(&alice()).expect("generate");
        assert!(
            new.uri.starts_with("otpauth://totp/jwt-todo:alice?"),
            "{}",
            new.uri
        );
        assert!(new.uri.contains(&format!("secret={}", new.secret)));
        let t = 1_800_000_000u64; // a step boundary: 30 divides it
        let code = app_code(&new.secret, t);
        let at = |s: u64| Timestamp::from_unix_seconds(i64::try_from(s).expect("time"));
        let step = t / 30;
        assert_eq!(
            engine.verify(&new.sealed, &code, at(t)).expect("verify"),
            Some(step)
        );
        assert_eq!(
            engine
                .verify(&new.sealed, &code, at(t + 30))
                .expect("verify"),
            Some(step)
        );
        assert_eq!(
            engine
                .verify(&new.sealed, &code, at(t - 30))
                .expect("verify"),
            Some(step)
        );
        assert_eq!(
            engine
                .verify(&new.sealed, &code, at(t + 60))
                .expect("verify"),
            None
        );
        assert_eq!(
            engine
                .verify(&new.sealed, "000000x", at(t))
                .expect("verify"),
            None
        );
    }

    #[test]
    fn sealed_secrets_hide_the_secret_and_open_under_their_key_only() {
        let engine = engine();
        let new = engine.generate(&alice()).expect("generate");
        let again = engine.generate(&alice()).expect("generate");
        assert_ne!(
            new.secret, again.secret,
            "every enrolment has its own secret"
        );
        assert!(!new.sealed.0.contains(&new.secret));
        let other = SealedTotpEngine::derive(b"another-secret-another-secret-32", &[], "jwt-todo")
            .expect("engine");
        let now = Timestamp::from_unix_seconds(1_800_000_000);
        assert!(other.verify(&new.sealed, "123456", now).is_err());
        let mut tampered = new.sealed.0.clone();
        let last = tampered
            .pop()
            .map_or('0', |c| if c == '0' { '1' } else { '0' });
        tampered.push(last);
        assert!(
            engine
                .verify(&SealedSecret(tampered), "123456", now)
                .is_err()
        );
        assert!(
            engine
                .verify(&SealedSecret("v2:00".into()), "123456", now)
                .is_err()
        );
        assert!(!format!("{engine:?} {new:?}").contains(&new.secret));
    }

    #[test]
    fn after_a_rotation_old_secrets_unseal_and_are_sealed_anew() {
        let before = engine();
        let new = before.generate(&alice()).expect("generate");
        assert_eq!(before.reseal(&new.sealed).expect("current"), None);
        const NEXT: &[u8] = b"the-next-refresh-secret-32-bytes";
        let after = SealedTotpEngine::derive(NEXT, &[SECRET], "jwt-todo").expect("engine");
        let t = 1_800_000_000u64;
        let at = Timestamp::from_unix_seconds(1_800_000_000);
        let code = app_code(&new.secret, t);
        assert_eq!(
            after.verify(&new.sealed, &code, at).expect("old key"),
            Some(t / 30)
        );
        let resealed = after
            .reseal(&new.sealed)
            .expect("old key")
            .expect("sealed anew");
        assert_ne!(resealed, new.sealed);
        assert_eq!(after.reseal(&resealed).expect("current"), None);
        // Once the old secret is retired, only the resealed form still opens.
        let retired = SealedTotpEngine::derive(NEXT, &[], "jwt-todo").expect("engine");
        assert_eq!(
            retired.verify(&resealed, &code, at).expect("new key"),
            Some(t / 30)
        );
        assert!(retired.verify(&new.sealed, &code, at).is_err());
    }
}
