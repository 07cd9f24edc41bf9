//! Peer policy: which peer addresses an allocation may relay to (RFC 8656 §21.3, "TURN as an
//! open proxy into the internal network"). Refused unless an operator lists them in
//! [`Config::allow_peers`](crate::server::Config::allow_peers):
//!
//! - every range of the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and its
//!   updates: loopback, private, shared/CGNAT, link-local with the cloud metadata services,
//!   documentation, benchmarking, protocol assignments, NAT64, Teredo, unique-local …), plus
//!   multicast, the deprecated IPv4-compatible and site-local IPv6 forms ([`SPECIAL`]);
//! - addresses that carry such an IPv4 address: IPv4-mapped `::ffff:a.b.c.d`, 6to4
//!   `2002:aabb:ccdd::/48` and the NAT64 prefixes, whose embedded IPv4 address is judged too;
//! - the server's own addresses, except on its own relay ports and media ports.
//!
//! [`check_peer`] is the whole policy as a pure function; the [`Server`](crate::server::Server)
//! supplies the server-side facts (its addresses, relay ports and media ports).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
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

/// One entry of [`SPECIAL`]: a network and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialRange {
    /// The network.
    pub net: Cidr,
    /// What the registry calls it, with the RFC.
    pub name: &'static str,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8, name: &'static str) -> SpecialRange {
    SpecialRange {
        net: Cidr {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        },
        name,
    }
}

const fn v6(segments: [u16; 8], prefix: u8, name: &'static str) -> SpecialRange {
    let [a, b, c, d, e, f, g, h] = segments;
    SpecialRange {
        net: Cidr {
            addr: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix,
        },
        name,
    }
}

/// The ranges a relay never reaches unless allowed, most specific first (so a refusal names
/// the narrowest range): the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890
/// and its updates) with multicast and the deprecated IPv6 forms added.
///
/// Entries the registries mark "globally reachable" are refused too (the PCP and TURN anycast
/// addresses, AMT, AS112, ORCHIDv2 inside `2001::/23`): they are network infrastructure, never
/// a WebRTC peer, and `allow_peers` can still list them. `::ffff:0:0/96` is not here: an
/// IPv4-mapped address is judged as the IPv4 address it carries. `2002::/16` (6to4) is not
/// here either: it is judged by its embedded IPv4 address ([`check_peer`]).
pub const SPECIAL: &[SpecialRange] = &[
    v4(0, 0, 0, 0, 8, "\"this network\" (RFC 791)"),
    v4(10, 0, 0, 0, 8, "private (RFC 1918)"),
    v4(100, 64, 0, 0, 10, "shared address space, CGNAT (RFC 6598)"),
    v4(127, 0, 0, 0, 8, "loopback (RFC 1122)"),
    v4(
        169,
        254,
        169,
        254,
        32,
        "cloud metadata service (link-local)",
    ),
    v4(169, 254, 0, 0, 16, "link-local (RFC 3927)"),
    v4(172, 16, 0, 0, 12, "private (RFC 1918)"),
    v4(192, 0, 0, 0, 24, "IETF protocol assignments (RFC 6890)"),
    v4(192, 0, 2, 0, 24, "documentation TEST-NET-1 (RFC 5737)"),
    v4(192, 31, 196, 0, 24, "AS112-v4 (RFC 7535)"),
    v4(192, 52, 193, 0, 24, "AMT (RFC 7450)"),
    v4(
        192,
        88,
        99,
        0,
        24,
        "deprecated 6to4 relay anycast (RFC 7526)",
    ),
    v4(192, 168, 0, 0, 16, "private (RFC 1918)"),
    v4(192, 175, 48, 0, 24, "AS112 direct delegation (RFC 7534)"),
    v4(198, 18, 0, 0, 15, "benchmarking (RFC 2544)"),
    v4(198, 51, 100, 0, 24, "documentation TEST-NET-2 (RFC 5737)"),
    v4(203, 0, 113, 0, 24, "documentation TEST-NET-3 (RFC 5737)"),
    v4(224, 0, 0, 0, 4, "multicast (RFC 5771)"),
    v4(255, 255, 255, 255, 32, "limited broadcast (RFC 919)"),
    v4(240, 0, 0, 0, 4, "reserved (RFC 1112)"),
    v6([0; 8], 128, "unspecified (RFC 4291)"),
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback (RFC 4291)"),
    v6([0; 8], 96, "deprecated IPv4-compatible (RFC 4291)"),
    v6(
        [0x64, 0xff9b, 0, 0, 0, 0, 0, 0],
        96,
        "NAT64 well-known prefix (RFC 6052)",
    ),
    v6(
        [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
        48,
        "local-use NAT64 (RFC 8215)",
    ),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only (RFC 6666)"),
    v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64, "dummy prefix (IANA)"),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, "Teredo (RFC 4380)"),
    v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48, "benchmarking (RFC 5180)"),
    v6(
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "IETF protocol assignments (RFC 2928)",
    ),
    v6(
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
        32,
        "documentation (RFC 3849)",
    ),
    v6(
        [0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0],
        48,
        "AS112 direct delegation (RFC 7534)",
    ),
    v6(
        [0x3fff, 0, 0, 0, 0, 0, 0, 0],
        20,
        "documentation (RFC 9637)",
    ),
    v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, "SRv6 SIDs (RFC 9602)"),
    v6(
        [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254],
        128,
        "cloud metadata service (unique-local)",
    ),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique-local (RFC 4193)"),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local (RFC 4291)"),
    v6(
        [0xfec0, 0, 0, 0, 0, 0, 0, 0],
        10,
        "deprecated site-local (RFC 3879)",
    ),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast (RFC 4291)"),
];

/// The [`SPECIAL`] range holding `ip` (an IPv4-mapped address is looked up as its IPv4
/// address). Embedded IPv4 addresses are not looked at: see [`is_restricted`].
pub fn special_range(ip: IpAddr) -> Option<&'static SpecialRange> {
    let ip = canonical(ip);
    SPECIAL.iter().find(|r| r.net.contains(ip))
}

/// The IPv4 address an IPv6 address carries for a translator or tunnel: the last 32 bits of
/// the NAT64 prefixes (RFC 6052 §2.2 with a /96 prefix; a local-use `64:ff9b:1::/48` network
/// may embed it elsewhere, but /96 is what translators deploy, and the range is refused
/// unless allowed anyway), or bits 16–47 of 6to4 `2002::/16` (RFC 3056 §2).
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    let nat64 = (s[0], s[1]) == (0x64, 0xff9b) && (s[2] == 1 || s[2..6] == [0; 4]);
    if nat64 {
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

/// True when `ip` is refused by the ranges alone (no allow list, no own addresses): it is in a
/// [`SPECIAL`] range, or it carries an IPv4 address ([`embedded_ipv4`]) that is.
pub fn is_restricted(ip: IpAddr) -> bool {
    check_peer(SocketAddr::new(ip, 0), &[], |_| false, |_| false).is_err()
}

/// Why [`check_peer`] refused a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The address (or the IPv4 address it carries) is in a special-purpose range.
    Special(&'static SpecialRange),
    /// The address (or the IPv4 address it carries) is one of the server's own, and the port
    /// is none of its relays' or media ports.
    OwnAddress(IpAddr),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Special(r) => write!(f, "in {} ({})", r.net, r.name),
            Refusal::OwnAddress(ip) => {
                write!(f, "{ip} is the server's own, not on a relay or media port")
            }
        }
    }
}

/// The peer policy. `peer` may be relayed to unless:
///
/// 1. its address is the server's own (`own_ip`, given IPv4-mapped addresses as IPv4) and its
///    port is not (`own_port`: a relay's port, a media port), and `allow` does not list it;
///    an own address on an own port is allowed whatever its range (a loopback relay is a
///    relay);
/// 2. its address is in a [`SPECIAL`] range that `allow` does not list;
/// 3. it carries an IPv4 address ([`embedded_ipv4`]) refused by 1 or 2. Both must pass: an
///    operator who lists `64:ff9b::/96` to reach IPv4 peers through NAT64 does not thereby
///    open `64:ff9b::127.0.0.1`, and listing `10.0.0.0/8` does not open its NAT64 form.
///
/// NAT64 addresses are refused as a range, not only by what they embed: WebRTC peers offer
/// their own addresses as candidates, never a translator's synthesized one, and the
/// translator sits in the server's network, where what it reaches is the operator's to say.
pub fn check_peer(
    peer: SocketAddr,
    allow: &[Cidr],
    own_ip: impl Fn(IpAddr) -> bool,
    own_port: impl Fn(u16) -> bool,
) -> Result<(), Refusal> {
    let mut ip = canonical(peer.ip());
    // At most one level of embedding: 6to4 and NAT64 carry IPv4, which carries nothing.
    for _ in 0..2 {
        let listed = allow.iter().any(|c| c.contains(ip));
        if own_ip(ip) {
            if own_port(peer.port()) || listed {
                return Ok(());
            }
            return Err(Refusal::OwnAddress(ip));
        }
        if let Some(range) = special_range(ip) {
            if !listed {
                return Err(Refusal::Special(range));
            }
        }
        match ip {
            IpAddr::V6(v6) => match embedded_ipv4(v6) {
                Some(inner) => ip = IpAddr::V4(inner),
                None => return Ok(()),
            },
            IpAddr::V4(_) => return Ok(()),
        }
    }
    Ok(())
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

    /// The first and last address of a network.
    fn ends(c: Cidr) -> (IpAddr, IpAddr) {
        match c.addr {
            IpAddr::V4(a) => {
                let host = u32::MAX.checked_shr(u32::from(c.prefix)).unwrap_or(0);
                let first = a.to_bits() & !host;
                (
                    IpAddr::V4(Ipv4Addr::from_bits(first)),
                    IpAddr::V4(Ipv4Addr::from_bits(first | host)),
                )
            }
            IpAddr::V6(a) => {
                let host = u128::MAX.checked_shr(u32::from(c.prefix)).unwrap_or(0);
                let first = a.to_bits() & !host;
                (
                    IpAddr::V6(Ipv6Addr::from_bits(first)),
                    IpAddr::V6(Ipv6Addr::from_bits(first | host)),
                )
            }
        }
    }

    fn none(_: IpAddr) -> bool {
        false
    }

    fn no_port(_: u16) -> bool {
        false
    }

    fn refused(s: &str) -> Option<Refusal> {
        check_peer(SocketAddr::new(ip(s), 9), &[], none, no_port).err()
    }

    #[test]
    fn every_special_range_is_refused_at_both_ends() {
        for r in SPECIAL {
            let (first, last) = ends(r.net);
            for a in [first, last] {
                let found = special_range(a).unwrap_or_else(|| panic!("{a} in {}", r.net));
                // The narrowest range is named: a listed sub-range comes before its parent.
                assert!(found.net.prefix >= r.net.prefix, "{a}: {found:?} for {r:?}");
                assert!(is_restricted(a), "{a} ({})", r.name);
                assert!(matches!(refused(&a.to_string()), Some(Refusal::Special(_))));
            }
        }
    }

    #[test]
    fn the_ranges_of_the_brief_and_the_issue() {
        // Issue 10 item 5 named these as accepted before.
        for (s, net) in [
            ("192.0.0.1", "192.0.0.0/24"),
            ("192.0.0.170", "192.0.0.0/24"),
            ("198.18.0.1", "198.18.0.0/15"),
            ("198.19.255.254", "198.18.0.0/15"),
            ("192.0.2.1", "192.0.2.0/24"),
            ("198.51.100.7", "198.51.100.0/24"),
            ("203.0.113.7", "203.0.113.0/24"),
            ("192.88.99.1", "192.88.99.0/24"),
            ("192.31.196.1", "192.31.196.0/24"),
            ("192.52.193.1", "192.52.193.0/24"),
            ("192.175.48.1", "192.175.48.0/24"),
            ("169.254.169.254", "169.254.169.254/32"),
            ("169.254.1.1", "169.254.0.0/16"),
            ("100.100.100.200", "100.64.0.0/10"),
            ("255.255.255.255", "255.255.255.255/32"),
            ("::", "::/128"),
            ("::1", "::1/128"),
            ("::10.0.0.1", "::/96"),
            ("::8.8.8.8", "::/96"),
            ("64:ff9b::808:808", "64:ff9b::/96"),
            ("64:ff9b:1::808:808", "64:ff9b:1::/48"),
            ("64:ff9b:1:ffff::1", "64:ff9b:1::/48"),
            ("100::1", "100::/64"),
            ("100:0:0:1::1", "100:0:0:1::/64"),
            ("2001::1", "2001::/32"),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::/32"),
            ("2001:1::2", "2001::/23"),
            ("2001:2::1", "2001:2::/48"),
            ("2001:1ff:ffff::1", "2001::/23"),
            ("2001:db8::1", "2001:db8::/32"),
            ("2620:4f:8000::1", "2620:4f:8000::/48"),
            ("3fff:fff::1", "3fff::/20"),
            ("5f00::1", "5f00::/16"),
            ("fd00:ec2::254", "fd00:ec2::254/128"),
            ("fd12::1", "fc00::/7"),
            ("fe80::1", "fe80::/10"),
            ("fec0::1", "fec0::/10"),
            ("feff::1", "fec0::/10"),
            ("ff02::1", "ff00::/8"),
            ("::ffff:127.0.0.1", "127.0.0.0/8"),
            ("::ffff:198.18.0.1", "198.18.0.0/15"),
        ] {
            match refused(s) {
                Some(Refusal::Special(r)) => assert_eq!(r.net.to_string(), net, "{s}"),
                other => panic!("{s}: {other:?}"),
            }
        }
    }

    #[test]
    fn embedded_ipv4_is_judged() {
        // 6to4 of private, loopback and metadata addresses; NAT64 of them (refused as NAT64
        // already); the 6to4 and NAT64 forms of public addresses.
        for (s, net) in [
            ("2002:a00:1::1", "10.0.0.0/8"),
            ("2002:7f00:1::", "127.0.0.0/8"),
            ("2002:a9fe:a9fe::1", "169.254.169.254/32"),
            ("2002:c612:1::1", "198.18.0.0/15"),
        ] {
            match refused(s) {
                Some(Refusal::Special(r)) => assert_eq!(r.net.to_string(), net, "{s}"),
                other => panic!("{s}: {other:?}"),
            }
        }
        assert_eq!(refused("2002:808:808::1"), None, "6to4 of 8.8.8.8");
        assert_eq!(
            embedded_ipv4("64:ff9b::a00:1".parse().expect("v6")),
            Some(Ipv4Addr::new(10, 0, 0, 1))
        );
        assert_eq!(
            embedded_ipv4("64:ff9b:1::7f00:1".parse().expect("v6")),
            Some(Ipv4Addr::new(127, 0, 0, 1))
        );
        assert_eq!(embedded_ipv4("64:ff9b:2::1".parse().expect("v6")), None);
        assert_eq!(embedded_ipv4("2003::1".parse().expect("v6")), None);
        // Allowing NAT64 opens what it embeds only where the IPv4 address is allowed too.
        let nat64: Cidr = "64:ff9b::/96".parse().expect("cidr");
        let peer = |s: &str| SocketAddr::new(ip(s), 9);
        let check = |s: &str, allow: &[Cidr]| check_peer(peer(s), allow, none, no_port);
        assert_eq!(check("64:ff9b::808:808", &[nat64]), Ok(()));
        assert!(check("64:ff9b::7f00:1", &[nat64]).is_err());
        assert!(check("64:ff9b::a00:1", &["10.0.0.0/8".parse().expect("cidr")]).is_err());
        let both = [nat64, "10.0.0.0/8".parse().expect("cidr")];
        assert_eq!(check("64:ff9b::a00:1", &both), Ok(()));
    }

    #[test]
    fn public_addresses_next_to_the_ranges_are_allowed() {
        for s in [
            "8.8.8.8",
            "1.0.0.1",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "191.255.255.255",
            "192.0.1.255",
            "192.0.3.0",
            "192.88.98.255",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.255",
            "198.51.101.0",
            "203.0.112.255",
            "203.0.114.0",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "::1:0:0:0",
            "64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff",
            "64:ff9b:0:1::1",
            "64:ff9b:2::1",
            "2001:200::1",
            "2001:db7:ffff::1",
            "2001:db9::1",
            "2003::1",
            "2606:4700::1111",
            "2a00:1450::1",
            "3ffe:ffff::1",
            "fbff:ffff::1",
        ] {
            assert_eq!(refused(s), None, "{s} should be allowed");
            assert!(!is_restricted(ip(s)), "{s}");
        }
    }

    #[test]
    fn own_addresses_only_on_own_ports() {
        let own = |a: IpAddr| a == ip("8.8.8.8") || a == ip("127.0.0.1") || a == ip("2606::1");
        let own_port = |p: u16| p == 50000 || p == 8000;
        let check =
            |s: &str, allow: &[Cidr]| check_peer(s.parse().expect("peer"), allow, own, own_port);
        // A public own address: refused on other ports (ssh, DNS), allowed on a relay or the
        // media port.
        assert_eq!(
            check("8.8.8.8:22", &[]),
            Err(Refusal::OwnAddress(ip("8.8.8.8")))
        );
        assert_eq!(
            check("8.8.8.8:53", &[]),
            Err(Refusal::OwnAddress(ip("8.8.8.8")))
        );
        assert_eq!(check("8.8.8.8:50000", &[]), Ok(()));
        assert_eq!(check("8.8.8.8:8000", &[]), Ok(()));
        assert_eq!(
            check("[::ffff:8.8.8.8]:22", &[]),
            Err(Refusal::OwnAddress(ip("8.8.8.8")))
        );
        assert_eq!(
            check("[2606::1]:22", &[]),
            Err(Refusal::OwnAddress(ip("2606::1")))
        );
        assert_eq!(check("[2606::1]:8000", &[]), Ok(()));
        // 6to4 of an own address is the own address.
        assert_eq!(
            check("[2002:808:808::1]:22", &[]),
            Err(Refusal::OwnAddress(ip("8.8.8.8")))
        );
        // A loopback relay is a relay; loopback elsewhere is refused as loopback or own.
        assert_eq!(check("127.0.0.1:50000", &[]), Ok(()));
        assert!(check("127.0.0.1:22", &[]).is_err());
        assert!(check("127.0.0.2:50000", &[]).is_err());
        // Listed addresses are allowed on any port.
        let listed = ["8.8.8.8/32".parse().expect("cidr")];
        assert_eq!(check("8.8.8.8:22", &listed), Ok(()));
        // Other public addresses are not affected.
        assert_eq!(check("8.8.4.4:22", &[]), Ok(()));
        assert_eq!(
            Refusal::OwnAddress(ip("8.8.8.8")).to_string(),
            "8.8.8.8 is the server's own, not on a relay or media port"
        );
        assert_eq!(
            refused("198.18.0.1").map(|r| r.to_string()).as_deref(),
            Some("in 198.18.0.0/15 (benchmarking (RFC 2544))")
        );
    }

    #[test]
    fn allow_list_opens_a_range() {
        let allow = ["10.0.0.0/8".parse().expect("cidr")];
        let check = |s: &str| check_peer(SocketAddr::new(ip(s), 1), &allow, none, no_port);
        assert_eq!(check("10.9.9.9"), Ok(()));
        assert_eq!(check("::ffff:10.9.9.9"), Ok(()));
        assert_eq!(check("2002:a09:909::1"), Ok(()));
        assert!(check("192.168.0.1").is_err());
    }
}
