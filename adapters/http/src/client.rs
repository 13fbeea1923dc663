//! Who is calling, by network address: the TCP peer, unless the peer is a proxy we trust.
//!
//! `X-Forwarded-For` is anyone's to write, so it is read only when the TCP peer is in
//! [`TrustedProxies`]. Then the list is walked from the right (each proxy appends the
//! address it saw) past every trusted hop; the first address that is not a trusted proxy
//! is the client. Whatever a client puts at the left of the list is never reached while a
//! trusted proxy appended the real address after it. An entry that is not an address
//! stops the walk at the last trusted hop, which is then taken as the client: a malformed
//! header can make the client look like the proxy, never like someone else.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::IpNet;
use poem::Request;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Networks whose connections may report the client's address in `X-Forwarded-For`.
/// Empty (the default): the TCP peer is always the client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    pub fn networks(&self) -> &[IpNet] {
        &self.0
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for `req`. A connection that is not over IP (none today) is
    /// `0.0.0.0`: all such clients then share one address, which fails safe.
    pub fn client_of(&self, req: &Request) -> IpAddr {
        let peer = req
            .remote_addr()
            .as_socket_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), SocketAddr::ip);
        let headers = req
            .headers()
            .get_all(X_FORWARDED_FOR)
            .iter()
            .map(|value| value.to_str().unwrap_or(""));
        self.resolve(peer, headers)
    }

    /// [`TrustedProxies::client_of`] over plain values: the peer and the
    /// `X-Forwarded-For` header lines in the order received.
    pub fn resolve<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = canonical(peer);
        let mut client = peer;
        if !self.trusts(peer) {
            return client;
        }
        for line in forwarded_for.rev() {
            for entry in line.rsplit(',') {
                let Some(ip) = parse_entry(entry) else {
                    return client;
                };
                client = ip;
                if !self.trusts(ip) {
                    return client;
                }
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, perhaps with a port (`203.0.113.7:5123`,
/// `[2001:db8::1]:443`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(canonical)
}

/// `::ffff:a.b.c.d` (how a dual-stack listener reports IPv4 peers) is `a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(raw: &str) -> IpAddr {
        raw.parse().expect("valid ip")
    }

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().expect("cidr")).collect())
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let proxies = TrustedProxies::default();
        assert_eq!(
            proxies.resolve(ip("198.51.100.1"), ["203.0.113.7"].into_iter()),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let proxies = trusted(&["10.0.0.0/8"]);
        assert_eq!(
            proxies.resolve(ip("198.51.100.1"), ["203.0.113.7"].into_iter()),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn the_first_untrusted_hop_from_the_right_is_the_client() {
        let proxies = trusted(&["10.0.0.0/8", "192.0.2.1/32"]);
        // The client sent a forged entry; the edge proxy appended the real address, an
        // inner proxy appended the edge proxy's.
        let header = "1.1.1.1, 203.0.113.7, 192.0.2.1";
        assert_eq!(
            proxies.resolve(ip("10.1.2.3"), [header].into_iter()),
            ip("203.0.113.7")
        );
        // The same across several header lines.
        assert_eq!(
            proxies.resolve(
                ip("10.1.2.3"),
                ["1.1.1.1", "203.0.113.7:5123", "192.0.2.1"].into_iter()
            ),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn garbage_stops_at_the_last_trusted_hop() {
        let proxies = trusted(&["10.0.0.0/8"]);
        assert_eq!(
            proxies.resolve(
                ip("10.0.0.1"),
                ["203.0.113.7, nonsense, 10.0.0.2"].into_iter()
            ),
            ip("10.0.0.2")
        );
        assert_eq!(
            proxies.resolve(ip("10.0.0.1"), ["nonsense"].into_iter()),
            ip("10.0.0.1")
        );
        // No header at all: the proxy itself.
        assert_eq!(
            proxies.resolve(ip("10.0.0.1"), std::iter::empty()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn ipv6_entries_and_mapped_peers_work() {
        let proxies = trusted(&["127.0.0.1/32"]);
        assert_eq!(
            proxies.resolve(ip("::ffff:127.0.0.1"), ["[2001:db8::7]:443"].into_iter()),
            ip("2001:db8::7")
        );
    }
}
