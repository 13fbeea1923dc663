//! Where a request comes from, as login throttling counts it.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// A client's network address, normalised for counting: an IPv4 address as it is (an
/// IPv4-mapped IPv6 address `::ffff:a.b.c.d` is the IPv4 address it maps), an IPv6
/// address reduced to its /64 network.
///
/// Why /64: one IPv6 subscriber is usually handed a whole /64 (often much more) and can
/// use any address in it, so counting single IPv6 addresses would give one attacker 2^64
/// fresh counters. Counting the /64 treats a subscriber as one client, as one IPv4
/// address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientAddress(IpAddr);

impl ClientAddress {
    pub fn from_ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let network = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(Ipv6Addr::from(network)))
                }
            },
        }
    }

    /// The IPv4 address, or the first address of the IPv6 /64.
    pub fn ip(self) -> IpAddr {
        self.0
    }
}

impl fmt::Display for ClientAddress {
    /// `203.0.113.7`, or `2001:db8:1:2::/64`: bounded length, no spaces or braces, so it
    /// is safe inside a store key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(raw: &str) -> ClientAddress {
        ClientAddress::from_ip(raw.parse().expect("valid ip"))
    }

    #[test]
    fn ipv4_is_kept_as_it_is() {
        assert_eq!(client("203.0.113.7").to_string(), "203.0.113.7");
        assert_ne!(client("203.0.113.7"), client("203.0.113.8"));
    }

    #[test]
    fn ipv4_mapped_ipv6_is_the_ipv4_address() {
        assert_eq!(client("::ffff:203.0.113.7"), client("203.0.113.7"));
    }

    #[test]
    fn ipv6_counts_per_64() {
        let a = client("2001:db8:1:2:aaaa:bbbb:cccc:dddd");
        assert_eq!(a, client("2001:db8:1:2::1"));
        assert_ne!(a, client("2001:db8:1:3::1"));
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(client("::1").to_string(), "::/64");
    }
}
