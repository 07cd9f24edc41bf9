//! Peer policy: which peer addresses an allocation may relay to (RFC 8656 §21.3, "TURN as an
//! open proxy into the internal network"). Loopback, private, link-local, CGNAT, multicast,
//! unspecified, broadcast and cloud-metadata addresses are refused unless an operator lists
//! them in [`Config::allow_peers`](crate::server::Config::allow_peers).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network: an address and a prefix length (`10.0.0.0/8`, `fd00::/8`, or a bare address
/// for a single host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network address (host bits are ignored by [`Cidr::contains`]).
    pub addr: IpAddr,
    /// Prefix length: at most 32 for IPv4, 128 for IPv6.
    pub prefix: u8,
}

/// Why a [`Cidr`] did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR {0:?} (expected ADDRESS or ADDRESS/PREFIX)")]
pub struct CidrParseError(pub String);

impl Cidr {
    /// A network; `None` when `prefix` is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// True when `ip` is inside the network. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is
    /// matched as the IPv4 address it carries, and the other way round.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (canonical(self.addr), canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let prefix = if self.addr.is_ipv6() {
                    self.prefix.saturating_sub(96)
                } else {
                    self.prefix
                };
                prefix_eq(
                    u128::from(net.to_bits()),
                    u128::from(ip.to_bits()),
                    prefix,
                    32,
                )
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(net.to_bits(), ip.to_bits(), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8, width: u32) -> bool {
    let prefix = u32::from(prefix).min(width);
    if prefix == 0 {
        return true;
    }
    let shift = width - prefix;
    (a >> shift) == (b >> shift)
}

/// The IPv4 address inside an IPv4-mapped IPv6 address, else the address itself.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

impl FromStr for Cidr {
    type Err = CidrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CidrParseError(s.to_owned());
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => {
                let addr: IpAddr = a.parse().map_err(|_| err())?;
                (addr, p.parse::<u8>().map_err(|_| err())?)
            }
            None => {
                let addr: IpAddr = s.parse().map_err(|_| err())?;
                (addr, if addr.is_ipv4() { 32 } else { 128 })
            }
        };
        Cidr::new(addr, prefix).ok_or_else(err)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// True when `ip` lies in a range a relay must not reach by default: loopback, RFC 1918
/// private, CGNAT (100.64/10), link-local (169.254/16, which holds the 169.254.169.254 cloud
/// metadata service, and fe80::/10), unique-local fc00::/7 (which holds AWS's fd00:ec2::254),
/// multicast, unspecified, 0.0.0.0/8, 240.0.0.0/4 (reserved, with the broadcast address), and
/// the IPv4-mapped forms of all the IPv4 ranges.
pub fn is_restricted(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_restricted_v4(v4),
        IpAddr::V6(v6) => is_restricted_v6(v6),
    }
}

fn is_restricted_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
}

fn is_restricted_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // IPv4-compatible (deprecated ::a.b.c.d) forms of the IPv4 ranges.
        || (ip.segments()[..6] == [0; 6] && is_restricted_v4(ip.to_ipv4().unwrap_or(Ipv4Addr::UNSPECIFIED)))
}

/// The peer policy: `ip` may be relayed to when it is in `allow` or not [`is_restricted`].
pub fn is_peer_allowed(ip: IpAddr, allow: &[Cidr]) -> bool {
    allow.iter().any(|c| c.contains(ip)) || !is_restricted(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn cidr_parses_and_contains() {
        let c: Cidr = "10.1.0.0/16".parse().expect("cidr");
        assert!(c.contains(ip("10.1.200.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(c.contains(ip("::ffff:10.1.0.9")));
        let host: Cidr = "127.0.0.1".parse().expect("cidr");
        assert_eq!(host.prefix, 32);
        assert!(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")));
        let v6: Cidr = "fd00::/8".parse().expect("cidr");
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        let all: Cidr = "0.0.0.0/0".parse().expect("cidr");
        assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("2001:db8::1")));
        for bad in ["", "10.0.0.0/33", "::/129", "x/8", "10.0.0.0/", "1.2.3/8"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(c.to_string(), "10.1.0.0/16");
    }

    #[test]
    fn restricted_ranges() {
        for s in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:192.168.0.1",
            "::127.0.0.1",
        ] {
            assert!(is_restricted(ip(s)), "{s} should be restricted");
            assert!(!is_peer_allowed(ip(s), &[]), "{s}");
        }
        for s in [
            "8.8.8.8",
            "203.0.113.7",
            "100.128.0.1",
            "172.32.0.1",
            "2001:db8::1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_restricted(ip(s)), "{s} should be allowed");
        }
        let allow = ["10.0.0.0/8".parse().expect("cidr")];
        assert!(is_peer_allowed(ip("10.9.9.9"), &allow));
        assert!(!is_peer_allowed(ip("192.168.0.1"), &allow));
    }
}
