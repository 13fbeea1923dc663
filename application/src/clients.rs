//! The OAuth 2.0 clients the operator registered, and how a client proves who it is.
//!
//! A client is public (an id only: a command-line tool, a mobile app) or confidential
//! (an id and a secret: a server). Secrets are generated, high-entropy strings
//! (`server oauth-secret` prints one), so the registry keeps only their SHA-256 digest
//! and a check costs one hash: a slow password hash would hand anyone who can reach the
//! introspection endpoint a way to burn CPU. Digests are compared in constant time, and
//! an unknown client costs the same as a known one with a wrong secret.

use std::collections::HashMap;
use std::fmt;

use domain::{ClientId, ClientIdError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A grant type a client may use at the token endpoint (RFC 6749).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Grant {
    /// `password` (§4.3): the user's name and password for a token pair.
    Password,
    /// `refresh_token` (§6): a refresh token for the session's next pair.
    RefreshToken,
}

impl Grant {
    pub const ALL: [Grant; 2] = [Grant::Password, Grant::RefreshToken];

    /// The `grant_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::Password => "password",
            Grant::RefreshToken => "refresh_token",
        }
    }

    /// The grant a `grant_type` value names, if we support it.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == raw)
    }
}

/// The SHA-256 digest of a client secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretDigest([u8; 32]);

impl SecretDigest {
    /// The digest of `secret`.
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// A digest written as 64 hexadecimal digits.
    ///
    /// # Errors
    /// Anything else.
    pub fn from_hex(hex: &str) -> Result<Self, ClientsError> {
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex.trim(), &mut digest).map_err(|_| ClientsError::Digest)?;
        Ok(Self(digest))
    }

    /// As 64 lowercase hexadecimal digits.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    fn matches(&self, secret: &str) -> bool {
        bool::from(Self::of(secret).0.ct_eq(&self.0))
    }
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretDigest(..)")
    }
}

/// One client as the operator registers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRegistration {
    pub id: String,
    /// The digest of its secret: a confidential client. `None`: a public client.
    pub secret: Option<SecretDigest>,
    /// The grants it may use at the token endpoint.
    pub grants: Vec<Grant>,
    /// Whether it may introspect tokens (a resource server). Confidential clients only.
    pub introspection: bool,
}

/// A registered client, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthClient {
    pub id: ClientId,
    secret: Option<SecretDigest>,
    grants: Vec<Grant>,
    introspection: bool,
}

impl OAuthClient {
    pub fn is_confidential(&self) -> bool {
        self.secret.is_some()
    }

    pub fn may_use(&self, grant: Grant) -> bool {
        self.grants.contains(&grant)
    }

    pub fn may_introspect(&self) -> bool {
        self.introspection
    }
}

/// Why a registry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientsError {
    #[error("client id {id:?}: {source}")]
    Id {
        id: String,
        #[source]
        source: ClientIdError,
    },
    #[error("client {0:?} is registered twice")]
    Duplicate(String),
    #[error("a client secret digest is 64 hexadecimal digits (the SHA-256 of the secret)")]
    Digest,
    #[error("client {0:?} may introspect tokens, so it must be confidential (have a secret)")]
    PublicIntrospection(String),
    #[error("client {0:?} may do nothing: give it a grant or introspection")]
    Idle(String),
}

/// How a request presents its client.
#[derive(Clone, Copy, Debug)]
pub struct PresentedClient<'a> {
    pub id: &'a str,
    /// The secret, for a confidential client; `None` for a public one.
    pub secret: Option<&'a str>,
}

/// The client could not be authenticated: unknown, wrong secret, a public client that
/// sent a secret, or a confidential one that sent none. One answer for all (RFC 6749
/// §5.2 `invalid_client`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("client authentication failed")]
pub struct InvalidClient;

/// The registered clients.
#[derive(Clone, Debug, Default)]
pub struct OAuthClients {
    by_id: HashMap<ClientId, OAuthClient>,
}

impl OAuthClients {
    /// # Errors
    /// A malformed or repeated id, a public client allowed to introspect, or a client
    /// allowed nothing.
    pub fn new(registrations: Vec<ClientRegistration>) -> Result<Self, ClientsError> {
        let mut by_id = HashMap::new();
        for r in registrations {
            let id = ClientId::parse(&r.id).map_err(|source| ClientsError::Id {
                id: r.id.clone(),
                source,
            })?;
            if r.introspection && r.secret.is_none() {
                return Err(ClientsError::PublicIntrospection(r.id));
            }
            if r.grants.is_empty() && !r.introspection {
                return Err(ClientsError::Idle(r.id));
            }
            let mut grants = r.grants;
            grants.sort_by_key(|g| g.as_str());
            grants.dedup();
            let client = OAuthClient {
                id,
                secret: r.secret,
                grants,
                introspection: r.introspection,
            };
            if by_id.insert(id, client).is_some() {
                return Err(ClientsError::Duplicate(r.id));
            }
        }
        Ok(Self { by_id })
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The client `presented` names, if it proves to be that client.
    ///
    /// # Errors
    /// [`InvalidClient`], whatever the reason.
    pub fn authenticate(
        &self,
        presented: PresentedClient<'_>,
    ) -> Result<&OAuthClient, InvalidClient> {
        let client = ClientId::parse(presented.id)
            .ok()
            .and_then(|id| self.by_id.get(&id));
        // Hash whatever was sent, whether or not the client exists, so that the time
        // to answer says nothing about which ids are registered.
        let expected = client
            .and_then(|c| c.secret)
            .unwrap_or(SecretDigest([0; 32]));
        let secret_ok = presented
            .secret
            .is_some_and(|secret| expected.matches(secret));
        match client {
            Some(c) if c.is_confidential() && secret_ok => Ok(c),
            Some(c) if !c.is_confidential() && presented.secret.is_none() => Ok(c),
            _ => Err(InvalidClient),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cret-generated-by-the-operator";

    fn registration(id: &str, secret: Option<&str>, introspection: bool) -> ClientRegistration {
        ClientRegistration {
            id: id.into(),
            secret: secret.map(SecretDigest::of),
            grants: if introspection {
                vec![]
            } else {
                Grant::ALL.to_vec()
            },
            introspection,
        }
    }

    fn clients() -> OAuthClients {
        OAuthClients::new(vec![
            registration("cli", None, false),
            registration("gateway", Some(SECRET), true),
        ])
        .expect("as set up")
    }

    fn presented<'a>(id: &'a str, secret: Option<&'a str>) -> PresentedClient<'a> {
        PresentedClient { id, secret }
    }

    #[test]
    fn a_public_client_is_its_id_and_a_confidential_one_needs_its_secret() {
        let clients = clients();
        assert_eq!(
            clients
                .authenticate(presented("cli", None))
                .expect("as set up")
                .id
                .as_str(),
            "cli"
        );
        let gateway = clients
            .authenticate(presented("gateway", Some(SECRET)))
            .expect("as set up");
        assert!(gateway.may_introspect() && gateway.is_confidential());
        assert!(!gateway.may_use(Grant::Password));
    }

    #[test]
    fn every_other_presentation_is_one_invalid_client() {
        let clients = clients();
        for (id, secret) in [
            ("gateway", None),
            ("gateway", Some("wrong")),
            ("gateway", Some("")),
            ("cli", Some(SECRET)),
            ("cli", Some("")),
            ("nobody", None),
            ("nobody", Some(SECRET)),
            ("", None),
            ("bad id", None),
        ] {
            assert_eq!(
                clients.authenticate(presented(id, secret)),
                Err(InvalidClient),
                "{id:?} {secret:?}"
            );
        }
    }

    #[test]
    fn digests_round_trip_through_hex_and_refuse_anything_else() {
        let digest = SecretDigest::of(SECRET);
        assert_eq!(SecretDigest::from_hex(&digest.to_hex()), Ok(digest));
        assert_eq!(digest.to_hex().len(), 64);
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(63), &"a".repeat(66)] {
            assert_eq!(
                SecretDigest::from_hex(bad),
                Err(ClientsError::Digest),
                "{bad:?}"
            );
        }
        assert_eq!(format!("{digest:?}"), "SecretDigest(..)");
    }

    #[test]
    fn a_registry_refuses_what_it_could_not_enforce() {
        let dup = OAuthClients::new(vec![
            registration("a", None, false),
            registration("a", None, false),
        ]);
        assert_eq!(
            dup.expect_err("refused"),
            ClientsError::Duplicate("a".into())
        );
        let public_introspection = OAuthClients::new(vec![registration("rs", None, true)]);
        assert_eq!(
            public_introspection.expect_err("refused"),
            ClientsError::PublicIntrospection("rs".into())
        );
        let idle = OAuthClients::new(vec![ClientRegistration {
            grants: vec![],
            ..registration("x", None, false)
        }]);
        assert_eq!(idle.expect_err("refused"), ClientsError::Idle("x".into()));
        assert!(matches!(
            OAuthClients::new(vec![registration("a b", None, false)]),
            Err(ClientsError::Id { .. })
        ));
    }

    #[test]
    fn grant_types_parse_by_their_rfc_names() {
        assert_eq!(Grant::parse("password"), Some(Grant::Password));
        assert_eq!(Grant::parse("refresh_token"), Some(Grant::RefreshToken));
        assert_eq!(Grant::parse("client_credentials"), None);
        assert_eq!(Grant::parse("Password"), None);
    }
}
