//! OAuth 2.0: the service's public URL (the metadata's issuer and endpoint URLs) and the
//! registered clients. The registry's rules (ids, duplicates, who may introspect) are the
//! application's ([`OAuthClients::new`]); this section reads the JSON and names the
//! variable when a rule is broken.

use std::sync::Arc;

use application::clients::{ClientRegistration, Grant, OAuthClients, SecretDigest};
use clap::Args;
use serde::Deserialize;

use super::error::{ConfigError, err};
use super::vars::{OAUTH_CLIENTS, PUBLIC_URL};

/// The default public URL: the default bind address, as a developer reaches it.
pub const DEFAULT_PUBLIC_URL: &str = "http://localhost:8080";

#[derive(Clone, Debug)]
pub struct OAuthSettings {
    /// No trailing `/`.
    pub public_url: String,
    pub clients: Arc<OAuthClients>,
}

#[derive(Args, Clone, Debug)]
pub struct OAuthArgs {
    /// The URL clients reach this service at (`https://auth.example.com`): the issuer and
    /// the base of the endpoint URLs in `/.well-known/oauth-authorization-server`.
    #[arg(long, env = PUBLIC_URL, value_name = "URL", default_value = DEFAULT_PUBLIC_URL)]
    pub public_url: String,

    /// The OAuth clients, as a JSON array: `[{"client_id": "cli", "grant_types":
    /// ["password", "refresh_token"]}, {"client_id": "gateway", "client_secret_sha256":
    /// "<64 hex digits>", "introspection": true}]`. A client with a secret digest is
    /// confidential (HTTP Basic or `client_secret` in the form); without, public
    /// (`client_id` only). `server oauth-secret` prints a new secret and its digest.
    /// Unset: no clients, and the OAuth endpoints refuse every request.
    #[arg(long, env = OAUTH_CLIENTS, value_name = "JSON")]
    pub oauth_clients: Option<String>,
}

/// One client as written in `OAUTH_CLIENTS`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientEntry {
    client_id: String,
    #[serde(default)]
    client_secret_sha256: Option<String>,
    #[serde(default)]
    grant_types: Vec<String>,
    #[serde(default)]
    introspection: bool,
}

impl OAuthArgs {
    pub fn build(self) -> Result<OAuthSettings, ConfigError> {
        let public_url = self.public_url.trim().trim_end_matches('/').to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://"))
            || public_url.contains(char::is_whitespace)
        {
            return Err(err(PUBLIC_URL, "must be an http(s) URL"));
        }
        let entries: Vec<ClientEntry> = match self.oauth_clients.as_deref() {
            None => Vec::new(),
            Some(raw) => serde_json::from_str(raw)
                .map_err(|e| err(OAUTH_CLIENTS, format!("not a JSON array of clients: {e}")))?,
        };
        let registrations = entries
            .into_iter()
            .map(|entry| {
                let grants = entry
                    .grant_types
                    .iter()
                    .map(|g| {
                        Grant::parse(g).ok_or_else(|| {
                            err(
                                OAUTH_CLIENTS,
                                format!(
                                    "client {:?}: unknown grant type {g:?} (password, refresh_token)",
                                    entry.client_id
                                ),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let secret = entry
                    .client_secret_sha256
                    .as_deref()
                    .map(SecretDigest::from_hex)
                    .transpose()
                    .map_err(|e| err(OAUTH_CLIENTS, format!("client {:?}: {e}", entry.client_id)))?;
                Ok(ClientRegistration {
                    id: entry.client_id,
                    secret,
                    grants,
                    introspection: entry.introspection,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let clients =
            OAuthClients::new(registrations).map_err(|e| err(OAUTH_CLIENTS, e.to_string()))?;
        Ok(OAuthSettings {
            public_url,
            clients: Arc::new(clients),
        })
    }
}

/// A client secret just made, and the digest `OAUTH_CLIENTS` holds instead of it.
#[derive(Debug)]
pub struct NewSecret {
    /// 256 random bits as 64 hexadecimal digits: URL-unreserved, so it needs no escaping
    /// in HTTP Basic or a form.
    pub secret: String,
    pub digest: String,
}

/// A new client secret from the operating system's CSPRNG.
pub fn new_secret() -> NewSecret {
    let bytes: [u8; 32] = rand::random();
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let digest = SecretDigest::of(&secret).to_hex();
    NewSecret { secret, digest }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(clients: Option<&str>) -> OAuthArgs {
        OAuthArgs {
            public_url: "https://auth.example.com/".into(),
            oauth_clients: clients.map(str::to_owned),
        }
    }

    #[test]
    fn clients_are_read_from_json_and_checked_by_the_registry() {
        let secret = new_secret();
        let json = format!(
            r#"[{{"client_id":"cli","grant_types":["password","refresh_token"]}},
               {{"client_id":"gateway","client_secret_sha256":"{}","introspection":true}}]"#,
            secret.digest
        );
        let settings = args(Some(&json)).build().expect("valid clients");
        assert_eq!(settings.public_url, "https://auth.example.com");
        assert_eq!(settings.clients.len(), 2);
        let gateway = settings
            .clients
            .authenticate(application::clients::PresentedClient {
                id: "gateway",
                secret: Some(&secret.secret),
            })
            .expect("the gateway with its secret");
        assert!(gateway.may_introspect());
    }

    #[test]
    fn a_bad_registry_names_the_variable() {
        for bad in [
            "not json",
            r#"{"client_id":"x"}"#,
            r#"[{"client_id":"x","grant_types":["implicit"]}]"#,
            r#"[{"client_id":"x","grant_types":["password"],"colour":"red"}]"#,
            r#"[{"client_id":"x","client_secret_sha256":"zz","introspection":true}]"#,
            r#"[{"client_id":"x","introspection":true}]"#,
            r#"[{"client_id":"x"}]"#,
            r#"[{"client_id":"a b","grant_types":["password"]}]"#,
        ] {
            let e = args(Some(bad)).build().expect_err(bad);
            assert_eq!(e.variable, OAUTH_CLIENTS, "{bad}");
        }
        let e = OAuthArgs {
            public_url: "auth.example.com".into(),
            oauth_clients: None,
        }
        .build()
        .expect_err("not a URL");
        assert_eq!(e.variable, PUBLIC_URL);
    }

    #[test]
    fn new_secrets_are_random_and_match_their_digest() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.len(), 64);
        assert_eq!(SecretDigest::of(&a.secret).to_hex(), a.digest);
    }
}
