//! [`KeyRing`]: everything needed to sign and check one kind of token, built once from a
//! checked configuration, so that a request never parses a key.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use crate::keys::{Ring, RingKey};

/// The key that signs one kind of token, with its header built once.
pub(crate) struct Signer {
    pub kid: String,
    /// `alg`, `typ`, `kid`: the header of every token this key signs.
    pub header: Header,
    pub encoding: EncodingKey,
}

/// A key that verifies one kind of token: its own algorithm and validation rules.
pub(crate) struct Verifier {
    pub kid: String,
    pub alg: Algorithm,
    pub decoding: DecodingKey,
    /// The shared rules (iss, aud, required claims) pinned to `alg` alone.
    pub validation: Validation,
}

/// Everything needed to sign and check one kind of token.
pub(crate) struct KeyRing {
    /// The exact `typ` this kind carries.
    pub typ: &'static str,
    pub signer: Signer,
    /// The signing key's own verifier first, then the previous keys. A handful at most,
    /// so a linear search by `kid` beats any map.
    pub verifiers: Vec<Verifier>,
}

impl KeyRing {
    /// The ring of tokens typed `typ`: `keys` verify (each pinned to its own algorithm
    /// on a copy of `base`), and the signing one signs with `encoding`. The keys must have
    /// passed [`JwtConfig::check`](crate::JwtConfig::check): one `kid` per key.
    pub fn new(
        typ: &'static str,
        keys: &Ring<'_>,
        encoding: EncodingKey,
        base: &Validation,
    ) -> Self {
        let (kid, alg) = (keys.signing.kid(), keys.signing.alg());
        Self {
            typ,
            signer: Signer {
                header: header(alg, typ, &kid),
                kid,
                encoding,
            },
            verifiers: keys.slots().map(|(_, key)| verifier(&key, base)).collect(),
        }
    }

    pub fn find(&self, kid: &str) -> Option<&Verifier> {
        self.verifiers.iter().find(|v| v.kid == kid)
    }

    /// Every `kid` accepted, the signing key's first.
    pub fn key_ids(&self) -> Vec<&str> {
        self.verifiers.iter().map(|v| v.kid.as_str()).collect()
    }
}

/// A verifier for `key`: its own algorithm pinned on a copy of `base`.
fn verifier(key: &RingKey<'_>, base: &Validation) -> Verifier {
    let alg = key.alg();
    let mut validation = base.clone();
    validation.algorithms = vec![alg];
    Verifier {
        kid: key.kid(),
        alg,
        decoding: match key {
            RingKey::Hs256(secret) => DecodingKey::from_secret(secret),
            RingKey::Ed25519Public(public) => public.decoding_key(),
        },
        validation,
    }
}

fn header(alg: Algorithm, typ: &'static str, kid: &str) -> Header {
    let mut header = Header::new(alg);
    header.typ = Some(typ.to_owned());
    header.kid = Some(kid.to_owned());
    header
}
