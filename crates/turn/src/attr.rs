//! STUN and TURN attributes (RFC 8489 §14, RFC 8656 §18): type codes, the typed
//! [`Attribute`] enum, and the value codecs, including XOR address obfuscation (RFC 8489
//! §14.2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::stun::{TransactionId, MAGIC_COOKIE};
use crate::Error;

/// MAPPED-ADDRESS (RFC 8489 §14.1).
pub const MAPPED_ADDRESS: u16 = 0x0001;
/// USERNAME (RFC 8489 §14.3).
pub const USERNAME: u16 = 0x0006;
/// MESSAGE-INTEGRITY (RFC 8489 §14.5).
pub const MESSAGE_INTEGRITY: u16 = 0x0008;
/// ERROR-CODE (RFC 8489 §14.8).
pub const ERROR_CODE: u16 = 0x0009;
/// UNKNOWN-ATTRIBUTES (RFC 8489 §14.9).
pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
/// CHANNEL-NUMBER (RFC 8656 §18.1).
pub const CHANNEL_NUMBER: u16 = 0x000C;
/// LIFETIME (RFC 8656 §18.2).
pub const LIFETIME: u16 = 0x000D;
/// XOR-PEER-ADDRESS (RFC 8656 §18.3).
pub const XOR_PEER_ADDRESS: u16 = 0x0012;
/// DATA (RFC 8656 §18.4).
pub const DATA: u16 = 0x0013;
/// REALM (RFC 8489 §14.9).
pub const REALM: u16 = 0x0014;
/// NONCE (RFC 8489 §14.10).
pub const NONCE: u16 = 0x0015;
/// XOR-RELAYED-ADDRESS (RFC 8656 §18.5).
pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
/// REQUESTED-ADDRESS-FAMILY (RFC 8656 §18.6).
pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
/// EVEN-PORT (RFC 8656 §18.7).
pub const EVEN_PORT: u16 = 0x0018;
/// REQUESTED-TRANSPORT (RFC 8656 §18.8).
pub const REQUESTED_TRANSPORT: u16 = 0x0019;
/// DONT-FRAGMENT (RFC 8656 §18.9).
pub const DONT_FRAGMENT: u16 = 0x001A;
/// MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6).
pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
/// PASSWORD-ALGORITHM (RFC 8489 §14.12).
pub const PASSWORD_ALGORITHM: u16 = 0x001D;
/// USERHASH (RFC 8489 §14.4).
pub const USERHASH: u16 = 0x001E;
/// XOR-MAPPED-ADDRESS (RFC 8489 §14.2).
pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// RESERVATION-TOKEN (RFC 8656 §18.10).
pub const RESERVATION_TOKEN: u16 = 0x0022;
/// ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.11).
pub const ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8000;
/// PASSWORD-ALGORITHMS (RFC 8489 §14.11).
pub const PASSWORD_ALGORITHMS: u16 = 0x8002;
/// SOFTWARE (RFC 8489 §14.14).
pub const SOFTWARE: u16 = 0x8022;
/// ALTERNATE-SERVER (RFC 8489 §14.15).
pub const ALTERNATE_SERVER: u16 = 0x8023;
/// ICMP (RFC 8656 §18.13).
pub const ICMP: u16 = 0x8004;
/// FINGERPRINT (RFC 8489 §14.7).
pub const FINGERPRINT: u16 = 0x8028;

/// Most bytes allowed in USERNAME (RFC 8489 §14.3: fewer than 509).
pub const MAX_USERNAME_LEN: usize = 508;
/// Most bytes allowed in REALM, NONCE, SOFTWARE and an error reason phrase (RFC 8489 §14.8–14.10,
/// §14.14: fewer than 128 characters, up to 763 bytes).
pub const MAX_TEXT_LEN: usize = 763;

/// True for attribute types in the comprehension-required range 0x0000–0x7FFF (RFC 8489 §14):
/// an agent that does not know one must reject the message (a request with 420).
pub fn is_comprehension_required(kind: u16) -> bool {
    kind < 0x8000
}

/// Address family of REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// 0x01.
    Ipv4,
    /// 0x02.
    Ipv6,
}

impl AddressFamily {
    fn code(self) -> u8 {
        match self {
            AddressFamily::Ipv4 => 0x01,
            AddressFamily::Ipv6 => 0x02,
        }
    }

    fn from_code(code: u8, offset: usize) -> Result<Self, Error> {
        match code {
            0x01 => Ok(AddressFamily::Ipv4),
            0x02 => Ok(AddressFamily::Ipv6),
            _ => Err(Error::malformed(offset, "address family")),
        }
    }
}

/// ERROR-CODE value (RFC 8489 §14.8): `code` is class × 100 + number, 300–699.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCode {
    /// The code, e.g. 401 Unauthorized, 420 Unknown Attribute, 438 Stale Nonce.
    pub code: u16,
    /// The reason phrase (UTF-8, at most [`MAX_TEXT_LEN`] bytes).
    pub reason: String,
}

impl ErrorCode {
    /// An error code with its reason phrase.
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        ErrorCode {
            code,
            reason: reason.into(),
        }
    }
}

/// One entry of PASSWORD-ALGORITHMS, or the value of PASSWORD-ALGORITHM (RFC 8489 §14.11,
/// §14.12). Algorithm 0x0001 is MD5, 0x0002 SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordAlgorithm {
    /// Algorithm number.
    pub algorithm: u16,
    /// Algorithm parameters (empty for MD5 and SHA-256).
    pub params: Vec<u8>,
}

/// A decoded STUN or TURN attribute. Addresses are the plain (un-XORed) ones; the codec applies
/// the XOR with the magic cookie and transaction id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attribute {
    /// MAPPED-ADDRESS (RFC 8489 §14.1), for RFC 3489 clients.
    MappedAddress(SocketAddr),
    /// XOR-MAPPED-ADDRESS (RFC 8489 §14.2).
    XorMappedAddress(SocketAddr),
    /// USERNAME (RFC 8489 §14.3).
    Username(String),
    /// USERHASH (RFC 8489 §14.4), parsed only.
    Userhash([u8; 32]),
    /// MESSAGE-INTEGRITY (RFC 8489 §14.5): the HMAC-SHA1 as received. Use
    /// [`MessageBuilder::add_message_integrity`](crate::stun::MessageBuilder::add_message_integrity)
    /// to compute one and [`Message::check_integrity`](crate::stun::Message::check_integrity)
    /// to verify one.
    MessageIntegrity([u8; 20]),
    /// MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6): 16 to 32 bytes, a multiple of 4.
    MessageIntegritySha256(Vec<u8>),
    /// FINGERPRINT (RFC 8489 §14.7): the CRC-32 as received.
    Fingerprint(u32),
    /// ERROR-CODE (RFC 8489 §14.8).
    ErrorCode(ErrorCode),
    /// UNKNOWN-ATTRIBUTES (RFC 8489 §14.9).
    UnknownAttributes(Vec<u16>),
    /// REALM (RFC 8489 §14.9).
    Realm(String),
    /// NONCE (RFC 8489 §14.10).
    Nonce(String),
    /// PASSWORD-ALGORITHMS (RFC 8489 §14.11), parsed only.
    PasswordAlgorithms(Vec<PasswordAlgorithm>),
    /// PASSWORD-ALGORITHM (RFC 8489 §14.12), parsed only.
    PasswordAlgorithm(PasswordAlgorithm),
    /// SOFTWARE (RFC 8489 §14.14).
    Software(String),
    /// ALTERNATE-SERVER (RFC 8489 §14.15).
    AlternateServer(SocketAddr),
    /// CHANNEL-NUMBER (RFC 8656 §18.1): the channel; the RFFU half is dropped.
    ChannelNumber(u16),
    /// LIFETIME in seconds (RFC 8656 §18.2).
    Lifetime(u32),
    /// XOR-PEER-ADDRESS (RFC 8656 §18.3); CreatePermission may carry several.
    XorPeerAddress(SocketAddr),
    /// DATA (RFC 8656 §18.4).
    Data(Vec<u8>),
    /// XOR-RELAYED-ADDRESS (RFC 8656 §18.5).
    XorRelayedAddress(SocketAddr),
    /// REQUESTED-ADDRESS-FAMILY (RFC 8656 §18.6).
    RequestedAddressFamily(AddressFamily),
    /// EVEN-PORT (RFC 8656 §18.7): the R bit (reserve the next port too).
    EvenPort(bool),
    /// REQUESTED-TRANSPORT (RFC 8656 §18.8): an IP protocol number, 17 for UDP.
    RequestedTransport(u8),
    /// DONT-FRAGMENT (RFC 8656 §18.9).
    DontFragment,
    /// RESERVATION-TOKEN (RFC 8656 §18.10).
    ReservationToken([u8; 8]),
    /// ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.11).
    AdditionalAddressFamily(AddressFamily),
    /// ICMP (RFC 8656 §18.13).
    Icmp {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
        /// Error data (e.g. the MTU of a "fragmentation needed").
        data: u32,
    },
    /// Any other attribute, kept as received. A `kind` below 0x8000 is comprehension-required
    /// (see [`is_comprehension_required`]).
    Unknown {
        /// Attribute type.
        kind: u16,
        /// Value, without padding.
        value: Vec<u8>,
    },
}

impl Attribute {
    /// The attribute type code.
    pub fn kind(&self) -> u16 {
        match self {
            Attribute::MappedAddress(_) => MAPPED_ADDRESS,
            Attribute::XorMappedAddress(_) => XOR_MAPPED_ADDRESS,
            Attribute::Username(_) => USERNAME,
            Attribute::Userhash(_) => USERHASH,
            Attribute::MessageIntegrity(_) => MESSAGE_INTEGRITY,
            Attribute::MessageIntegritySha256(_) => MESSAGE_INTEGRITY_SHA256,
            Attribute::Fingerprint(_) => FINGERPRINT,
            Attribute::ErrorCode(_) => ERROR_CODE,
            Attribute::UnknownAttributes(_) => UNKNOWN_ATTRIBUTES,
            Attribute::Realm(_) => REALM,
            Attribute::Nonce(_) => NONCE,
            Attribute::PasswordAlgorithms(_) => PASSWORD_ALGORITHMS,
            Attribute::PasswordAlgorithm(_) => PASSWORD_ALGORITHM,
            Attribute::Software(_) => SOFTWARE,
            Attribute::AlternateServer(_) => ALTERNATE_SERVER,
            Attribute::ChannelNumber(_) => CHANNEL_NUMBER,
            Attribute::Lifetime(_) => LIFETIME,
            Attribute::XorPeerAddress(_) => XOR_PEER_ADDRESS,
            Attribute::Data(_) => DATA,
            Attribute::XorRelayedAddress(_) => XOR_RELAYED_ADDRESS,
            Attribute::RequestedAddressFamily(_) => REQUESTED_ADDRESS_FAMILY,
            Attribute::EvenPort(_) => EVEN_PORT,
            Attribute::RequestedTransport(_) => REQUESTED_TRANSPORT,
            Attribute::DontFragment => DONT_FRAGMENT,
            Attribute::ReservationToken(_) => RESERVATION_TOKEN,
            Attribute::AdditionalAddressFamily(_) => ADDITIONAL_ADDRESS_FAMILY,
            Attribute::Icmp { .. } => ICMP,
            Attribute::Unknown { kind, .. } => *kind,
        }
    }

    /// Decodes the value of an attribute of type `kind`. `offset` is where the value starts in
    /// the message (for errors); `tid` un-XORs the XOR-*-ADDRESS attributes.
    pub fn decode(
        kind: u16,
        value: &[u8],
        offset: usize,
        tid: &TransactionId,
    ) -> Result<Attribute, Error> {
        let v = Value {
            bytes: value,
            offset,
        };
        Ok(match kind {
            MAPPED_ADDRESS => Attribute::MappedAddress(v.address(None)?),
            XOR_MAPPED_ADDRESS => Attribute::XorMappedAddress(v.address(Some(tid))?),
            ALTERNATE_SERVER => Attribute::AlternateServer(v.address(None)?),
            XOR_PEER_ADDRESS => Attribute::XorPeerAddress(v.address(Some(tid))?),
            XOR_RELAYED_ADDRESS => Attribute::XorRelayedAddress(v.address(Some(tid))?),
            USERNAME => Attribute::Username(v.text(MAX_USERNAME_LEN, "USERNAME")?),
            REALM => Attribute::Realm(v.text(MAX_TEXT_LEN, "REALM")?),
            NONCE => Attribute::Nonce(v.text(MAX_TEXT_LEN, "NONCE")?),
            SOFTWARE => Attribute::Software(v.text(MAX_TEXT_LEN, "SOFTWARE")?),
            USERHASH => Attribute::Userhash(v.array("USERHASH")?),
            MESSAGE_INTEGRITY => Attribute::MessageIntegrity(v.array("MESSAGE-INTEGRITY")?),
            MESSAGE_INTEGRITY_SHA256 => {
                if !(16..=32).contains(&value.len()) || value.len() % 4 != 0 {
                    return Err(v.err("MESSAGE-INTEGRITY-SHA256 length"));
                }
                Attribute::MessageIntegritySha256(value.to_vec())
            }
            FINGERPRINT => Attribute::Fingerprint(u32::from_be_bytes(v.array("FINGERPRINT")?)),
            ERROR_CODE => {
                let [_, _, class, number] = v.prefix::<4>("ERROR-CODE")?;
                let class = class & 0x07;
                if !(3..=6).contains(&class) || number > 99 {
                    return Err(v.err("ERROR-CODE class or number"));
                }
                let reason = v.skip(4).text(MAX_TEXT_LEN, "ERROR-CODE reason")?;
                Attribute::ErrorCode(ErrorCode {
                    code: u16::from(class) * 100 + u16::from(number),
                    reason,
                })
            }
            UNKNOWN_ATTRIBUTES => {
                if value.len() % 2 != 0 {
                    return Err(v.err("UNKNOWN-ATTRIBUTES length"));
                }
                let kinds = value
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                Attribute::UnknownAttributes(kinds)
            }
            PASSWORD_ALGORITHMS => {
                let mut algs = Vec::new();
                let mut rest = v;
                while !rest.bytes.is_empty() {
                    let (alg, next) = rest.password_algorithm()?;
                    algs.push(alg);
                    rest = next;
                }
                Attribute::PasswordAlgorithms(algs)
            }
            PASSWORD_ALGORITHM => {
                let (alg, rest) = v.password_algorithm()?;
                if !rest.bytes.is_empty() {
                    return Err(rest.err("PASSWORD-ALGORITHM length"));
                }
                Attribute::PasswordAlgorithm(alg)
            }
            CHANNEL_NUMBER => {
                let [a, b, _, _] = v.array::<4>("CHANNEL-NUMBER")?;
                Attribute::ChannelNumber(u16::from_be_bytes([a, b]))
            }
            LIFETIME => Attribute::Lifetime(u32::from_be_bytes(v.array("LIFETIME")?)),
            DATA => Attribute::Data(value.to_vec()),
            REQUESTED_ADDRESS_FAMILY => {
                let [family, _, _, _] = v.array::<4>("REQUESTED-ADDRESS-FAMILY")?;
                Attribute::RequestedAddressFamily(AddressFamily::from_code(family, offset)?)
            }
            ADDITIONAL_ADDRESS_FAMILY => {
                let [family, _, _, _] = v.array::<4>("ADDITIONAL-ADDRESS-FAMILY")?;
                Attribute::AdditionalAddressFamily(AddressFamily::from_code(family, offset)?)
            }
            EVEN_PORT => {
                let [flags] = v.array::<1>("EVEN-PORT")?;
                Attribute::EvenPort(flags & 0x80 != 0)
            }
            REQUESTED_TRANSPORT => {
                let [protocol, _, _, _] = v.array::<4>("REQUESTED-TRANSPORT")?;
                Attribute::RequestedTransport(protocol)
            }
            DONT_FRAGMENT => {
                v.array::<0>("DONT-FRAGMENT")?;
                Attribute::DontFragment
            }
            RESERVATION_TOKEN => Attribute::ReservationToken(v.array("RESERVATION-TOKEN")?),
            ICMP => {
                let [_, _, icmp_type, code, d0, d1, d2, d3] = v.array::<8>("ICMP")?;
                Attribute::Icmp {
                    icmp_type,
                    code,
                    data: u32::from_be_bytes([d0, d1, d2, d3]),
                }
            }
            _ => Attribute::Unknown {
                kind,
                value: value.to_vec(),
            },
        })
    }

    /// Appends the value (without the type-length header or padding) to `out`.
    pub fn encode_value(&self, tid: &TransactionId, out: &mut Vec<u8>) {
        match self {
            Attribute::MappedAddress(a) | Attribute::AlternateServer(a) => {
                put_address(*a, None, out)
            }
            Attribute::XorMappedAddress(a)
            | Attribute::XorPeerAddress(a)
            | Attribute::XorRelayedAddress(a) => put_address(*a, Some(tid), out),
            Attribute::Username(s)
            | Attribute::Realm(s)
            | Attribute::Nonce(s)
            | Attribute::Software(s) => out.extend_from_slice(s.as_bytes()),
            Attribute::Userhash(h) => out.extend_from_slice(h),
            Attribute::MessageIntegrity(h) => out.extend_from_slice(h),
            Attribute::MessageIntegritySha256(h) => out.extend_from_slice(h),
            Attribute::Fingerprint(crc) => out.extend_from_slice(&crc.to_be_bytes()),
            Attribute::ErrorCode(e) => {
                let class = u8::try_from(e.code / 100).unwrap_or(0) & 0x07;
                let number = u8::try_from(e.code % 100).unwrap_or(0);
                out.extend_from_slice(&[0, 0, class, number]);
                out.extend_from_slice(e.reason.as_bytes());
            }
            Attribute::UnknownAttributes(kinds) => {
                for k in kinds {
                    out.extend_from_slice(&k.to_be_bytes());
                }
            }
            Attribute::PasswordAlgorithms(algs) => {
                for alg in algs {
                    put_password_algorithm(alg, out);
                }
            }
            Attribute::PasswordAlgorithm(alg) => put_password_algorithm(alg, out),
            Attribute::ChannelNumber(n) => {
                out.extend_from_slice(&n.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
            }
            Attribute::Lifetime(secs) => out.extend_from_slice(&secs.to_be_bytes()),
            Attribute::Data(d) => out.extend_from_slice(d),
            Attribute::RequestedAddressFamily(f) | Attribute::AdditionalAddressFamily(f) => {
                out.extend_from_slice(&[f.code(), 0, 0, 0])
            }
            Attribute::EvenPort(reserve) => out.push(if *reserve { 0x80 } else { 0 }),
            Attribute::RequestedTransport(p) => out.extend_from_slice(&[*p, 0, 0, 0]),
            Attribute::DontFragment => {}
            Attribute::ReservationToken(t) => out.extend_from_slice(t),
            Attribute::Icmp {
                icmp_type,
                code,
                data,
            } => {
                out.extend_from_slice(&[0, 0, *icmp_type, *code]);
                out.extend_from_slice(&data.to_be_bytes());
            }
            Attribute::Unknown { value, .. } => out.extend_from_slice(value),
        }
    }
}

fn put_password_algorithm(alg: &PasswordAlgorithm, out: &mut Vec<u8>) {
    out.extend_from_slice(&alg.algorithm.to_be_bytes());
    let len = u16::try_from(alg.params.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(alg.params.get(..usize::from(len)).unwrap_or_default());
    out.resize(out.len() + pad(usize::from(len)), 0);
}

/// Bytes of padding after a value of `len` bytes (RFC 8489 §14: values are padded to 4).
pub(crate) fn pad(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// The XOR pad for addresses: magic cookie then transaction id (RFC 8489 §14.2).
fn xor_pad(tid: &TransactionId) -> [u8; 16] {
    let mut pad = [0; 16];
    pad[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    pad[4..].copy_from_slice(&tid.0);
    pad
}

fn put_address(addr: SocketAddr, xor: Option<&TransactionId>, out: &mut Vec<u8>) {
    let pad = xor.map(xor_pad).unwrap_or([0; 16]);
    let port = addr.port() ^ u16::from_be_bytes([pad[0], pad[1]]);
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.extend_from_slice(&[0, 0x01]);
            out.extend_from_slice(&port.to_be_bytes());
            out.extend(ip.octets().iter().zip(pad).map(|(a, p)| a ^ p));
        }
        IpAddr::V6(ip) => {
            out.extend_from_slice(&[0, 0x02]);
            out.extend_from_slice(&port.to_be_bytes());
            out.extend(ip.octets().iter().zip(pad).map(|(a, p)| a ^ p));
        }
    }
}

/// An attribute value being decoded, with its offset in the message for errors.
#[derive(Clone, Copy)]
struct Value<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Value<'a> {
    fn err(&self, context: &'static str) -> Error {
        Error::malformed(self.offset, context)
    }

    /// The whole value as exactly `N` bytes.
    fn array<const N: usize>(&self, context: &'static str) -> Result<[u8; N], Error> {
        <[u8; N]>::try_from(self.bytes).map_err(|_| self.err(context))
    }

    /// The first `N` bytes.
    fn prefix<const N: usize>(&self, context: &'static str) -> Result<[u8; N], Error> {
        self.bytes
            .get(..N)
            .and_then(|b| <[u8; N]>::try_from(b).ok())
            .ok_or_else(|| self.err(context))
    }

    fn skip(&self, n: usize) -> Value<'a> {
        Value {
            bytes: self.bytes.get(n..).unwrap_or_default(),
            offset: self.offset + n,
        }
    }

    fn text(&self, max: usize, context: &'static str) -> Result<String, Error> {
        if self.bytes.len() > max {
            return Err(Error::limit(context, self.bytes.len(), max));
        }
        std::str::from_utf8(self.bytes)
            .map(str::to_owned)
            .map_err(|e| Error::malformed(self.offset + e.valid_up_to(), context))
    }

    fn address(&self, xor: Option<&TransactionId>) -> Result<SocketAddr, Error> {
        let pad = xor.map(xor_pad).unwrap_or([0; 16]);
        let [_, family, p0, p1] = self.prefix::<4>("address header")?;
        let port = u16::from_be_bytes([p0, p1]) ^ u16::from_be_bytes([pad[0], pad[1]]);
        let rest = self.skip(4);
        let ip = match family {
            0x01 => {
                let mut o: [u8; 4] = rest.array("IPv4 address")?;
                o.iter_mut().zip(pad).for_each(|(a, p)| *a ^= p);
                IpAddr::V4(Ipv4Addr::from(o))
            }
            0x02 => {
                let mut o: [u8; 16] = rest.array("IPv6 address")?;
                o.iter_mut().zip(pad).for_each(|(a, p)| *a ^= p);
                IpAddr::V6(Ipv6Addr::from(o))
            }
            _ => return Err(Error::malformed(self.offset + 1, "address family")),
        };
        Ok(SocketAddr::new(ip, port))
    }

    fn password_algorithm(&self) -> Result<(PasswordAlgorithm, Value<'a>), Error> {
        let [a0, a1, l0, l1] = self.prefix::<4>("PASSWORD-ALGORITHM header")?;
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        let params = self
            .bytes
            .get(4..4 + len)
            .ok_or_else(|| Error::malformed(self.offset + 2, "PASSWORD-ALGORITHM length"))?;
        let alg = PasswordAlgorithm {
            algorithm: u16::from_be_bytes([a0, a1]),
            params: params.to_vec(),
        };
        let used = 4 + len + pad(len);
        if used > self.bytes.len() {
            return Err(Error::malformed(
                self.offset + 4 + len,
                "PASSWORD-ALGORITHM padding",
            ));
        }
        Ok((alg, self.skip(used)))
    }
}
