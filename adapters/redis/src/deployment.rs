//! Which Redis the store talks to: a [`Deployment`] is exactly one of three shapes (one
//! server, a cluster, a master watched by Sentinel), for which
//! [`RedisStore::connect`](crate::RedisStore::connect) builds the store. Having no
//! deployment at all (the server's embedded in-memory store) is not this crate's business.
//!
//! URLs may carry a password, so they are held as [`RedisUrl`], whose `Debug` leaves the
//! credentials out.

use std::fmt;

/// One Redis, a cluster, or a master watched by Sentinel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deployment {
    /// One Redis (`redis://[:password@]host:port[/db]`).
    Standalone(RedisUrl),
    /// Seed nodes of a Redis Cluster; the rest are discovered.
    Cluster(Vec<RedisUrl>),
    /// The sentinels to ask, and the name of the master they watch.
    Sentinel {
        sentinels: Vec<RedisUrl>,
        master: String,
    },
}

/// A Redis URL. `Debug` shows it without its credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// A URL as given; the driver checks it when the store is built.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// A comma-separated list of `redis://` or `rediss://` URLs, each naming a host; empty
    /// entries (a trailing comma) are skipped.
    ///
    /// # Errors
    /// An entry that is not such a URL, or no entry at all. Never quotes an entry: it may
    /// hold a password.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, UrlListError> {
        let urls = raw
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(|url| {
                let host = url
                    .strip_prefix("redis://")
                    .or_else(|| url.strip_prefix("rediss://"))
                    .map(|rest| rest.rsplit('@').next().unwrap_or_default());
                match host {
                    Some(host) if !host.is_empty() => Ok(Self::new(url)),
                    _ => Err(UrlListError::NotRedisUrl),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if urls.is_empty() {
            return Err(UrlListError::Empty);
        }
        Ok(urls)
    }

    /// The URL, credentials included: for the driver, never for a log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = match self.0.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://[REDACTED]@{host}"),
                None => self.0.clone(),
            },
            None if self.0.contains('@') => "[REDACTED]".to_owned(),
            None => self.0.clone(),
        };
        f.debug_tuple("RedisUrl").field(&shown).finish()
    }
}

/// Why [`RedisUrl::parse_list`] refused a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlListError {
    /// An entry is not a `redis://host:port` URL.
    NotRedisUrl,
    /// The list names no node.
    Empty,
}

impl fmt::Display for UrlListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotRedisUrl => "expected a comma-separated list of redis://host:port URLs",
            Self::Empty => "names no node",
        })
    }
}

impl std::error::Error for UrlListError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_lists_are_checked_and_never_printed_with_their_password() {
        let urls = RedisUrl::parse_list("redis://:hunter2@10.0.0.1:6379, rediss://10.0.0.2:6379,")
            .expect("valid");
        assert_eq!(urls.len(), 2);
        assert_eq!(urls[1].expose(), "rediss://10.0.0.2:6379");
        let printed = format!("{urls:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("10.0.0.1:6379"), "{printed}");
        assert_eq!(
            RedisUrl::parse_list("b:6379"),
            Err(UrlListError::NotRedisUrl)
        );
        assert_eq!(
            RedisUrl::parse_list("redis://:pw@"),
            Err(UrlListError::NotRedisUrl)
        );
        assert_eq!(RedisUrl::parse_list(" , "), Err(UrlListError::Empty));
        assert!(!format!("{:?}", RedisUrl::new("user:hunter2@host")).contains("hunter2"));
    }
}
