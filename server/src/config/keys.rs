//! The token keys: which variables hold them, how they are read (a secret given or, in
//! development, drawn at random; an Ed25519 key inline or from a file; lists of previous
//! keys), and which variable (and list entry) an `adapter_jwt` refusal is about. The rules
//! themselves (lengths, repeats, one kind never passing for the other, strength) are the
//! adapter's: [`JwtConfig::check`](adapter_jwt::JwtConfig::check).

use std::time::Duration;

use adapter_jwt::{
    AccessSigningKey, AccessVerificationKey, Ed25519PrivateKey, Ed25519PublicKey, JwtConfig,
    JwtConfigError, KeySlot, MAX_CLAIM_LEN, MAX_PREVIOUS_KEYS, MIN_SECRET_LEN,
};
use clap::Args;
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use super::error::{ConfigError, err};
use super::service::Environment;
use super::values::{one_of, secret};
use super::vars::{
    ACCESS_ED25519_KEY, ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS, ACCESS_SECRET,
    ACCESS_SECRETS_PREVIOUS, ACCESS_SIGNING, JWT_AUDIENCE, JWT_ISSUER, JWT_LEEWAY, REFRESH_SECRET,
    REFRESH_SECRETS_PREVIOUS,
};

/// How access tokens are signed (`ACCESS_SIGNING`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    Hs256,
    EdDsa,
}

impl std::fmt::Display for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signing::Hs256 => "hs256",
            Signing::EdDsa => "eddsa",
        })
    }
}

const SIGNINGS: &[(&str, Signing)] = &[("hs256", Signing::Hs256), ("eddsa", Signing::EdDsa)];

#[derive(Args, Clone, Debug)]
pub struct KeyArgs {
    /// How access tokens are signed: `hs256` (HMAC) or `eddsa` (Ed25519, verifiable by
    /// other services from the published JWKS).
    #[arg(long, env = ACCESS_SIGNING, value_name = "ALG", default_value_t = Signing::Hs256,
        value_parser = one_of(SIGNINGS, true, "'hs256' or 'eddsa'"))]
    pub access_signing: Signing,

    /// HMAC key signing access tokens: at least 32 bytes, in production random-looking
    /// (`openssl rand -base64 48`). Unset: random per start in development, required in
    /// production. Not used with ACCESS_SIGNING=eddsa.
    #[arg(long, env = ACCESS_SECRET, value_name = "SECRET", value_parser = secret, hide_env_values = true)]
    pub access_secret: Option<SecretString>,

    /// HMAC key signing refresh tokens: at least 32 bytes, never an access key. Unset:
    /// random per start in development, required in production.
    #[arg(long, env = REFRESH_SECRET, value_name = "SECRET", value_parser = secret, hide_env_values = true)]
    pub refresh_secret: Option<SecretString>,

    /// Comma-separated HMAC keys that still verify access tokens but no longer sign
    /// (rotation): each at least 32 bytes, at most 10, never a refresh key.
    #[arg(long, env = ACCESS_SECRETS_PREVIOUS, value_name = "SECRETS", value_parser = secret, hide_env_values = true)]
    pub access_secrets_previous: Option<SecretString>,

    /// Comma-separated HMAC keys that still verify refresh tokens but no longer sign: each
    /// at least 32 bytes, at most 10, never an access key.
    #[arg(long, env = REFRESH_SECRETS_PREVIOUS, value_name = "SECRETS", value_parser = secret, hide_env_values = true)]
    pub refresh_secrets_previous: Option<SecretString>,

    /// With ACCESS_SIGNING=eddsa: the Ed25519 private key, PKCS#8 PEM, or the path of a
    /// file holding it. Unset: generated per start in development, required in production.
    #[arg(long, env = ACCESS_ED25519_KEY, value_name = "PEM_OR_PATH", value_parser = secret, hide_env_values = true)]
    pub access_ed25519_key: Option<SecretString>,

    /// Comma-separated Ed25519 public keys (SPKI PEM, or the JWK `x`) that still verify
    /// access tokens, published in the JWKS.
    #[arg(long, env = ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS, value_name = "KEYS")]
    pub access_ed25519_public_keys_previous: Option<String>,
}

/// Which variable holds which key of the [`JwtConfig`] [`KeyArgs::read`] made.
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    signing: Signing,
    /// `access_previous` holds these many `ACCESS_SECRETS_PREVIOUS` entries, then the
    /// `ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS` ones.
    hs_previous: usize,
    ed_previous: usize,
}

impl KeyArgs {
    /// The keys, with the claims and leeway that complete a [`JwtConfig`] (unchecked:
    /// see [`Origin::blame`]), and which variable holds which key.
    ///
    /// # Errors
    /// A key missing in production, a key of the other signing mode, an unreadable or
    /// malformed Ed25519 key.
    pub fn read(
        self,
        environment: Environment,
        issuer: String,
        audience: String,
        leeway: Duration,
    ) -> Result<(JwtConfig, Origin), ConfigError> {
        let access_signing = match self.access_signing {
            Signing::Hs256 => {
                if self.access_ed25519_key.is_some() {
                    return Err(err(
                        ACCESS_ED25519_KEY,
                        "is only used with ACCESS_SIGNING=eddsa",
                    ));
                }
                AccessSigningKey::Hs256(given_or_random(
                    ACCESS_SECRET,
                    self.access_secret,
                    environment,
                )?)
            }
            Signing::EdDsa => {
                if self.access_secret.is_some() {
                    return Err(err(
                        ACCESS_SECRET,
                        "is not used with ACCESS_SIGNING=eddsa; to keep the access tokens it \
                         signed valid until they expire, move it to ACCESS_SECRETS_PREVIOUS",
                    ));
                }
                AccessSigningKey::Ed25519(Box::new(match (self.access_ed25519_key, environment) {
                    (Some(raw), _) => ed25519_private_key(&raw)?,
                    (None, Environment::Development) => Ed25519PrivateKey::generate(),
                    (None, Environment::Production) => {
                        return Err(err(
                            ACCESS_ED25519_KEY,
                            "is required when APP_ENV=production and ACCESS_SIGNING=eddsa",
                        ));
                    }
                }))
            }
        };
        let refresh_secret = given_or_random(REFRESH_SECRET, self.refresh_secret, environment)?;
        let hs_previous = secret_list(self.access_secrets_previous.as_ref());
        let ed_previous = match &self.access_ed25519_public_keys_previous {
            None => Vec::new(),
            Some(raw) => ed25519_public_keys(raw)?,
        };
        let origin = Origin {
            signing: self.access_signing,
            hs_previous: hs_previous.len(),
            ed_previous: ed_previous.len(),
        };
        let jwt = JwtConfig {
            access_signing,
            access_previous: hs_previous
                .into_iter()
                .map(AccessVerificationKey::Hs256)
                .chain(ed_previous.into_iter().map(AccessVerificationKey::Ed25519))
                .collect(),
            refresh_secret,
            refresh_secrets_previous: secret_list(self.refresh_secrets_previous.as_ref()),
            issuer,
            audience,
            leeway,
        };
        Ok((jwt, origin))
    }
}

impl Origin {
    /// The variable holding the key at `slot` of the `which` ring, and its entry number
    /// (from 1) when the variable is a list.
    fn of(self, which: &str, slot: KeySlot) -> (&'static str, Option<usize>) {
        match (which, slot) {
            ("access", KeySlot::Signing) => match self.signing {
                Signing::Hs256 => (ACCESS_SECRET, None),
                Signing::EdDsa => (ACCESS_ED25519_KEY, None),
            },
            ("access", KeySlot::Previous(i)) if i < self.hs_previous => {
                (ACCESS_SECRETS_PREVIOUS, Some(i + 1))
            }
            ("access", KeySlot::Previous(i)) => (
                ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS,
                Some(i - self.hs_previous + 1),
            ),
            (_, KeySlot::Signing) => (REFRESH_SECRET, None),
            (_, KeySlot::Previous(i)) => (REFRESH_SECRETS_PREVIOUS, Some(i + 1)),
        }
    }

    /// `error`, from `adapter_jwt`, as the variable it is about. Never quotes a key.
    pub fn blame(self, error: JwtConfigError) -> ConfigError {
        let too_long = || format!("must be at most {MAX_CLAIM_LEN} characters");
        let entry = |n: Option<usize>| match n {
            Some(n) => format!("entry {n}"),
            None => "the secret".to_owned(),
        };
        match error {
            JwtConfigError::SecretTooShort { which, slot } => match self.of(which, slot) {
                (variable, None) => {
                    err(variable, format!("must be at least {MIN_SECRET_LEN} bytes"))
                }
                (variable, n) => err(
                    variable,
                    format!("{} must be at least {MIN_SECRET_LEN} bytes", entry(n)),
                ),
            },
            JwtConfigError::SameSecret {
                refresh: KeySlot::Signing,
            } => err(
                REFRESH_SECRET,
                "must differ from ACCESS_SECRET and ACCESS_SECRETS_PREVIOUS, so one kind of \
                 token can never pass for the other",
            ),
            JwtConfigError::SameSecret { .. } => err(
                REFRESH_SECRETS_PREVIOUS,
                "must not list ACCESS_SECRET or an ACCESS_SECRETS_PREVIOUS entry, so one kind \
                 of token can never pass for the other",
            ),
            JwtConfigError::DuplicateKey {
                which,
                slot,
                earlier,
            } => {
                let (variable, n) = self.of(which, slot);
                let message = match (earlier, self.of(which, earlier).0) {
                    (KeySlot::Signing, ACCESS_ED25519_KEY) => {
                        "lists the public key of the current ACCESS_ED25519_KEY".to_owned()
                    }
                    (KeySlot::Signing, current) => format!("lists the current {current}"),
                    (KeySlot::Previous(_), _) => format!("{} repeats an earlier one", entry(n)),
                };
                err(variable, message)
            }
            JwtConfigError::TooManyPreviousKeys { which: "access" }
                if self.hs_previous > MAX_PREVIOUS_KEYS =>
            {
                err(
                    ACCESS_SECRETS_PREVIOUS,
                    format!("lists more than {MAX_PREVIOUS_KEYS} secrets"),
                )
            }
            JwtConfigError::TooManyPreviousKeys { which: "access" } => err(
                ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS,
                if self.ed_previous > MAX_PREVIOUS_KEYS {
                    format!("lists more than {MAX_PREVIOUS_KEYS} keys")
                } else {
                    format!(
                        "and ACCESS_SECRETS_PREVIOUS list more than {MAX_PREVIOUS_KEYS} keys together"
                    )
                },
            ),
            JwtConfigError::TooManyPreviousKeys { .. } => err(
                REFRESH_SECRETS_PREVIOUS,
                format!("lists more than {MAX_PREVIOUS_KEYS} secrets"),
            ),
            JwtConfigError::WeakSecret {
                which,
                slot,
                weakness,
            } => {
                let (variable, n) = self.of(which, slot);
                err(
                    variable,
                    format!(
                        "{} is too weak for APP_ENV=production: it {weakness}",
                        entry(n)
                    ),
                )
            }
            JwtConfigError::BadEd25519Key => err(ACCESS_ED25519_KEY, error.to_string()),
            JwtConfigError::EmptyIssuer => err(JWT_ISSUER, "must not be empty"),
            JwtConfigError::IssuerTooLong => err(JWT_ISSUER, too_long()),
            JwtConfigError::AudienceTooLong => err(JWT_AUDIENCE, too_long()),
            JwtConfigError::EmptyAudience => err(JWT_AUDIENCE, "must not be empty"),
            JwtConfigError::LeewayTooLarge => err(
                JWT_LEEWAY,
                "must be at most 5m: more is a longer lifetime, not clock skew",
            ),
        }
    }
}

/// The secret in `variable`; in development, 32 random bytes when unset (tokens of a
/// development server die with it).
fn given_or_random(
    variable: &'static str,
    given: Option<SecretString>,
    environment: Environment,
) -> Result<SecretSlice<u8>, ConfigError> {
    match (given, environment) {
        (Some(secret), _) => Ok(SecretSlice::from(
            secret.expose_secret().as_bytes().to_vec(),
        )),
        (None, Environment::Development) => {
            use rand::RngCore;
            let mut bytes = vec![0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            Ok(SecretSlice::from(bytes))
        }
        (None, Environment::Production) => {
            Err(err(variable, "is required when APP_ENV=production"))
        }
    }
}

/// A comma-separated list of HMAC secrets, each trimmed; an empty entry stays (and is
/// refused as too short). A secret containing a comma cannot be listed: generate secrets
/// without one.
fn secret_list(raw: Option<&SecretString>) -> Vec<SecretSlice<u8>> {
    raw.map(|raw| {
        raw.expose_secret()
            .split(',')
            .map(|entry| SecretSlice::from(entry.trim().as_bytes().to_vec()))
            .collect()
    })
    .unwrap_or_default()
}

/// `ACCESS_ED25519_KEY`: the PKCS#8 PEM itself (it starts with `-----BEGIN`), or the path
/// of a file holding it.
fn ed25519_private_key(raw: &SecretString) -> Result<Ed25519PrivateKey, ConfigError> {
    let trimmed = raw.expose_secret().trim();
    let pem = if trimmed.starts_with("-----BEGIN") {
        SecretString::from(trimmed)
    } else {
        let text = std::fs::read_to_string(trimmed).map_err(|e| {
            err(
                ACCESS_ED25519_KEY,
                format!("cannot read the key file '{trimmed}': {e}"),
            )
        })?;
        SecretString::from(text)
    };
    Ed25519PrivateKey::from_pkcs8_pem(pem.expose_secret()).map_err(|_| {
        err(
            ACCESS_ED25519_KEY,
            "expected an Ed25519 private key in PKCS#8 PEM (-----BEGIN PRIVATE KEY-----), \
             or the path of a file holding one, as `openssl genpkey -algorithm ed25519` writes",
        )
    })
}

/// `ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS`: comma-separated, each an SPKI PEM public key or
/// the base64url `x` of its JWK.
fn ed25519_public_keys(raw: &str) -> Result<Vec<Ed25519PublicKey>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .enumerate()
        .map(|(i, entry)| {
            Ed25519PublicKey::parse(entry).map_err(|_| {
                err(
                    ACCESS_ED25519_PUBLIC_KEYS_PREVIOUS,
                    format!(
                        "entry {} is neither an Ed25519 SPKI PEM public key nor a JWK 'x' value",
                        i + 1
                    ),
                )
            })
        })
        .collect()
}
