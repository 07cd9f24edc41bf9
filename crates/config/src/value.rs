//! The value types of the key table that are ours rather than std's: [`Secret`],
//! [`StampMode`], [`IpRange`] and [`TurnUser`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A secret string (API secret, signing token, TURN credentials): `Debug` never shows it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it (comparing, signing).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no secret is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(\"\")")
        } else {
            f.write_str("Secret(<redacted>)")
        }
    }
}

/// How timestamps of a published stream are rewritten (`protocol.modify_stamp`, ZLMediaKit's
/// numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampMode {
    /// `0`: keep the publisher's timestamps.
    Absolute,
    /// `1`: replace them with the server's clock.
    System,
    /// `2`: relative to the first frame, with jumps and rollbacks smoothed out.
    Relative,
}

impl FromStr for StampMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "0" => Ok(StampMode::Absolute),
            "1" => Ok(StampMode::System),
            "2" => Ok(StampMode::Relative),
            _ => Err("expected 0 (absolute), 1 (system) or 2 (relative)".into()),
        }
    }
}

impl StampMode {
    /// ZLMediaKit's number for the mode (`0`, `1`, `2`), as on_publish replies carry it.
    pub fn number(self) -> u8 {
        match self {
            StampMode::Absolute => 0,
            StampMode::System => 1,
            StampMode::Relative => 2,
        }
    }
}

impl fmt::Display for StampMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

/// One entry of an address list (`http.allow_ip_range`, `turn.allow_peers`): a single address,
/// an inclusive `first-last` range (ZLMediaKit's form) or a CIDR block `addr/len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpRange {
    /// One address, e.g. `127.0.0.1` or `::1`.
    Single(IpAddr),
    /// `first-last`, both of the same family, `first <= last`.
    Span(IpAddr, IpAddr),
    /// `addr/len`; `len` is at most 32 (IPv4) or 128 (IPv6).
    Cidr(IpAddr, u8),
}

impl IpRange {
    /// Whether `ip` falls in this entry. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a
    /// dual-stack socket reports for an IPv4 peer) is matched as the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match *self {
            IpRange::Single(a) => a.to_canonical() == ip,
            IpRange::Span(first, last) => match (first, last, ip) {
                (IpAddr::V4(f), IpAddr::V4(l), IpAddr::V4(x)) => (f..=l).contains(&x),
                (IpAddr::V6(f), IpAddr::V6(l), IpAddr::V6(x)) => (f..=l).contains(&x),
                _ => false,
            },
            IpRange::Cidr(net, len) => match (net, ip) {
                (IpAddr::V4(n), IpAddr::V4(x)) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                    u32::from(n) & mask == u32::from(x) & mask
                }
                (IpAddr::V6(n), IpAddr::V6(x)) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                    u128::from(n) & mask == u128::from(x) & mask
                }
                _ => false,
            },
        }
    }

    /// Whether any entry of `list` contains `ip`.
    pub fn any_contains(list: &[IpRange], ip: IpAddr) -> bool {
        list.iter().any(|r| r.contains(ip))
    }

    /// The entry as aligned CIDR blocks `(network, prefix length)`, the TURN peer policy's
    /// form: one for an address or a block, the fewest blocks covering exactly a `first-last`
    /// span, largest first.
    pub fn blocks(&self) -> Vec<(IpAddr, u8)> {
        match *self {
            IpRange::Single(a) => vec![(a, if a.is_ipv4() { 32 } else { 128 })],
            IpRange::Cidr(a, len) => vec![(a, len)],
            IpRange::Span(IpAddr::V4(f), IpAddr::V4(l)) => {
                span_blocks(u128::from(f.to_bits()), u128::from(l.to_bits()), 32)
                    .into_iter()
                    .filter_map(|(start, len)| {
                        let start = u32::try_from(start).ok()?;
                        Some((IpAddr::V4(Ipv4Addr::from_bits(start)), len))
                    })
                    .collect()
            }
            IpRange::Span(IpAddr::V6(f), IpAddr::V6(l)) => {
                span_blocks(f.to_bits(), l.to_bits(), 128)
                    .into_iter()
                    .map(|(start, len)| (IpAddr::V6(Ipv6Addr::from_bits(start)), len))
                    .collect()
            }
            IpRange::Span(..) => Vec::new(),
        }
    }
}

/// The aligned blocks `(start, prefix length)` covering `first..=last` of a `width`-bit
/// address space, largest first.
fn span_blocks(first: u128, last: u128, width: u32) -> Vec<(u128, u8)> {
    let mut out = Vec::new();
    let mut start = first;
    loop {
        // The largest block aligned at `start` that does not run past `last`.
        let mut host_bits = start.trailing_zeros().min(width);
        while host_bits > 0 {
            let size_minus_one = if host_bits >= 128 {
                u128::MAX
            } else {
                (1u128 << host_bits) - 1
            };
            if start
                .checked_add(size_minus_one)
                .is_some_and(|end| end <= last)
            {
                break;
            }
            host_bits -= 1;
        }
        out.push((start, u8::try_from(width - host_bits).unwrap_or(0)));
        let size_minus_one = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        match start.checked_add(size_minus_one) {
            Some(end) if end < last => start = end + 1,
            _ => return out,
        }
    }
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let addr = |a: &str| {
            a.trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("{:?} is not an IP address", a.trim()))
        };
        if let Some((net, len)) = s.split_once('/') {
            let net = addr(net)?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            match len.trim().parse::<u8>() {
                Ok(len) if len <= max => Ok(IpRange::Cidr(net, len)),
                _ => Err(format!("{s:?}: prefix length must be 0..={max}")),
            }
        } else if let Some((first, last)) = s.split_once('-') {
            let (first, last) = (addr(first)?, addr(last)?);
            let ordered = match (first, last) {
                (IpAddr::V4(f), IpAddr::V4(l)) => f <= l,
                (IpAddr::V6(f), IpAddr::V6(l)) => f <= l,
                _ => return Err(format!("{s:?}: both ends must be IPv4 or both IPv6")),
            };
            if !ordered {
                return Err(format!("{s:?}: first address is after the last"));
            }
            Ok(IpRange::Span(first, last))
        } else {
            Ok(IpRange::Single(addr(s)?))
        }
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpRange::Single(a) => write!(f, "{a}"),
            IpRange::Span(a, b) => write!(f, "{a}-{b}"),
            IpRange::Cidr(a, len) => write!(f, "{a}/{len}"),
        }
    }
}

/// A static TURN user from `turn.users` (`name:password`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnUser {
    /// The long-term-credential user name.
    pub name: String,
    /// Its password.
    pub password: Secret,
}

impl FromStr for TurnUser {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some((name, password)) if !name.trim().is_empty() => Ok(TurnUser {
                name: name.trim().to_owned(),
                password: Secret::new(password.trim()),
            }),
            _ => Err(format!(
                "{:?} is not name:password",
                s.split(':').next().unwrap_or_default()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ranges() {
        let list: Vec<IpRange> = ["::1", "10.0.0.0-10.255.255.255", "fd00::/8"]
            .map(|s| s.parse().expect("parses"))
            .to_vec();
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(IpRange::any_contains(&list, ip("::1")));
        assert!(IpRange::any_contains(&list, ip("10.1.2.3")));
        assert!(IpRange::any_contains(&list, ip("::ffff:10.1.2.3")));
        assert!(IpRange::any_contains(&list, ip("fd12::1")));
        assert!(!IpRange::any_contains(&list, ip("11.0.0.1")));
        assert!(!IpRange::any_contains(&list, ip("127.0.0.1")));
        let cidrs = |s: &str| -> Vec<String> {
            let r: IpRange = s.parse().expect("range");
            r.blocks()
                .iter()
                .map(|(a, len)| format!("{a}/{len}"))
                .collect()
        };
        assert_eq!(cidrs("127.0.0.1"), ["127.0.0.1/32"]);
        assert_eq!(cidrs("10.0.0.0/8"), ["10.0.0.0/8"]);
        assert_eq!(
            cidrs("10.0.0.1-10.0.0.6"),
            ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
        );
        assert_eq!(cidrs("0.0.0.0-255.255.255.255"), ["0.0.0.0/0"]);
        assert_eq!(cidrs("192.168.0.0-192.168.255.255"), ["192.168.0.0/16"]);
        assert_eq!(
            cidrs("::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ["::/0"]
        );
        assert_eq!(cidrs("fd00::/8"), ["fd00::/8"]);
        assert!("10.0.0.9-10.0.0.1".parse::<IpRange>().is_err());
        assert!("10.0.0.1-::1".parse::<IpRange>().is_err());
        assert!("10.0.0.0/33".parse::<IpRange>().is_err());
        assert!(IpRange::Cidr(ip("0.0.0.0"), 0).contains(ip("1.2.3.4")));
    }
}
