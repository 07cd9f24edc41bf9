//! STUN messages (RFC 8489 §5, §6): the 20-byte header, the [`Message`] decoder, the
//! [`MessageBuilder`] encoder, and the MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and
//! FINGERPRINT computations (§14.5–14.7), with the TURN methods of RFC 8656 §17.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |0 0|     STUN Message Type     |         Message Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Magic Cookie                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Transaction ID (96 bits)                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::SocketAddr;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use crate::attr::{self, pad, Attribute};
use crate::Error;

/// The magic cookie, bytes 4–7 of every RFC 5389/8489 message (§5).
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Size of the message header (§5).
pub const HEADER_LEN: usize = 20;
/// XORed into the CRC-32 of FINGERPRINT (§14.7): "STUN" in ASCII.
pub const FINGERPRINT_XOR: u32 = 0x5354_554E;

const MI_LEN: usize = 20;
const MI_ATTR_LEN: usize = 4 + MI_LEN;
const FINGERPRINT_ATTR_LEN: usize = 8;

/// The 96-bit transaction id (§5). The caller picks it (randomly, for requests): the codec has
/// no random number generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionId(pub [u8; 12]);

/// The message class, two bits interleaved into the message type (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// 0b00.
    Request,
    /// 0b01.
    Indication,
    /// 0b10.
    Success,
    /// 0b11.
    Error,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::Success => 0b10,
            Class::Error => 0b11,
        }
    }

    fn from_bits(bits: u16) -> Self {
        match bits & 0b11 {
            0b00 => Class::Request,
            0b01 => Class::Indication,
            0b10 => Class::Success,
            _ => Class::Error,
        }
    }
}

/// The message method (RFC 8489 §18.2, RFC 8656 §17), 12 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// 0x001 (RFC 8489).
    Binding,
    /// 0x003 (RFC 8656 §7).
    Allocate,
    /// 0x004 (RFC 8656 §8).
    Refresh,
    /// 0x006, indication only (RFC 8656 §11).
    Send,
    /// 0x007, indication only (RFC 8656 §11).
    Data,
    /// 0x008 (RFC 8656 §10).
    CreatePermission,
    /// 0x009 (RFC 8656 §12).
    ChannelBind,
    /// Any other 12-bit method, kept so the server can answer it with an error.
    Other(u16),
}

impl Method {
    /// The 12-bit method number.
    pub fn code(self) -> u16 {
        match self {
            Method::Binding => 0x001,
            Method::Allocate => 0x003,
            Method::Refresh => 0x004,
            Method::Send => 0x006,
            Method::Data => 0x007,
            Method::CreatePermission => 0x008,
            Method::ChannelBind => 0x009,
            Method::Other(m) => m & 0x0FFF,
        }
    }

    /// The method with number `code` (the low 12 bits are used).
    pub fn from_code(code: u16) -> Self {
        match code & 0x0FFF {
            0x001 => Method::Binding,
            0x003 => Method::Allocate,
            0x004 => Method::Refresh,
            0x006 => Method::Send,
            0x007 => Method::Data,
            0x008 => Method::CreatePermission,
            0x009 => Method::ChannelBind,
            m => Method::Other(m),
        }
    }
}

/// Interleaves method and class into the 14-bit message type (§5: M11–M7, C1, M6–M4, C0,
/// M3–M0).
pub fn message_type(class: Class, method: Method) -> u16 {
    let m = method.code();
    let c = class.bits();
    (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 0b01) << 4) | ((c & 0b10) << 7)
}

/// Splits a message type into class and method (the inverse of [`message_type`]).
pub fn split_message_type(ty: u16) -> (Class, Method) {
    let m = (ty & 0x000F) | ((ty >> 1) & 0x0070) | ((ty >> 2) & 0x0F80);
    let c = ((ty >> 4) & 0b01) | ((ty >> 7) & 0b10);
    (Class::from_bits(c), Method::from_code(m))
}

/// The fixed header of a STUN message (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Message class.
    pub class: Class,
    /// Message method.
    pub method: Method,
    /// Length of the attributes in bytes (a multiple of 4, not counting the header).
    pub length: u16,
    /// Transaction id.
    pub transaction_id: TransactionId,
}

impl Header {
    /// Decodes the first [`HEADER_LEN`] bytes of `raw`: the top two bits must be zero, the
    /// length a multiple of 4 and the magic cookie present.
    pub fn decode(raw: &[u8]) -> Result<Header, Error> {
        let h: &[u8; HEADER_LEN] = raw
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(Error::malformed(raw.len(), "STUN header"))?;
        let [t0, t1, l0, l1, c0, c1, c2, c3, tid @ ..] = *h;
        let ty = u16::from_be_bytes([t0, t1]);
        if ty & 0xC000 != 0 {
            return Err(Error::malformed(0, "STUN message type (top bits set)"));
        }
        let length = u16::from_be_bytes([l0, l1]);
        if length % 4 != 0 {
            return Err(Error::malformed(
                2,
                "STUN message length (not a multiple of 4)",
            ));
        }
        if u32::from_be_bytes([c0, c1, c2, c3]) != MAGIC_COOKIE {
            return Err(Error::malformed(4, "STUN magic cookie"));
        }
        let (class, method) = split_message_type(ty);
        Ok(Header {
            class,
            method,
            length,
            transaction_id: TransactionId(tid),
        })
    }
}

/// Decoding limits. The length field caps a message at 65 555 bytes anyway; these keep the
/// work per message small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole message (header included) accepted. Default: 65 556 (no extra limit).
    pub max_message_len: usize,
    /// Most attributes decoded from one message. Default: 64.
    pub max_attributes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_len: 0x1_0000 + HEADER_LEN,
            max_attributes: 64,
        }
    }
}

/// A decoded STUN message.
///
/// Decoding follows RFC 8489 §14.5–14.7: attributes after MESSAGE-INTEGRITY are ignored except
/// MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, those after MESSAGE-INTEGRITY-SHA256 except
/// FINGERPRINT, and FINGERPRINT must be the last attribute. Decoding checks neither the
/// integrity nor the fingerprint: that takes the raw bytes and the key, see
/// [`Message::check_integrity`] and [`Message::check_fingerprint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Message class.
    pub class: Class,
    /// Message method.
    pub method: Method,
    /// Transaction id.
    pub transaction_id: TransactionId,
    /// Attributes in wire order (unknown ones as [`Attribute::Unknown`]).
    pub attributes: Vec<Attribute>,
}

/// Walks the attribute TLVs of a whole message: yields (type, value, value offset).
fn walk(raw: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8], usize), Error>> {
    let mut at = HEADER_LEN;
    std::iter::from_fn(move || {
        if at >= raw.len() {
            return None;
        }
        let item = (|| {
            let h = raw
                .get(at..at + 4)
                .ok_or(Error::malformed(at, "attribute header"))?;
            let kind = u16::from_be_bytes([h[0], h[1]]);
            let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
            let value = raw
                .get(at + 4..at + 4 + len)
                .ok_or(Error::malformed(at + 2, "attribute length"))?;
            let start = at + 4;
            if start + len + pad(len) > raw.len() {
                return Err(Error::malformed(start + len, "attribute padding"));
            }
            at = start + len + pad(len);
            Ok((kind, value, start))
        })();
        if item.is_err() {
            at = raw.len();
        }
        Some(item)
    })
}

/// The message's bytes as the header says: header plus `length`, checked against `raw`.
fn framed<'a>(raw: &'a [u8], limits: &Limits) -> Result<(Header, &'a [u8]), Error> {
    let header = Header::decode(raw)?;
    let total = HEADER_LEN + usize::from(header.length);
    if total > limits.max_message_len {
        return Err(Error::limit(
            "STUN message length",
            total,
            limits.max_message_len,
        ));
    }
    if raw.len() != total {
        return Err(Error::malformed(
            raw.len().min(total),
            "STUN message length (does not match the datagram)",
        ));
    }
    Ok((header, raw))
}

impl Message {
    /// A message with no attributes yet.
    pub fn new(class: Class, method: Method, transaction_id: TransactionId) -> Self {
        Message {
            class,
            method,
            transaction_id,
            attributes: Vec::new(),
        }
    }

    /// Decodes one whole message (exactly one UDP datagram, or one frame from
    /// [`next_frame`](crate::channel::next_frame)) with the default [`Limits`].
    pub fn decode(raw: &[u8]) -> Result<Message, Error> {
        Message::decode_with(raw, &Limits::default())
    }

    /// Decodes one whole message with the given limits.
    pub fn decode_with(raw: &[u8], limits: &Limits) -> Result<Message, Error> {
        let (header, raw) = framed(raw, limits)?;
        let tid = header.transaction_id;
        let mut attributes = Vec::new();
        // What may still follow: 0 = anything, 1 = after MI, 2 = after MI-SHA256, 3 = nothing.
        let mut stage = 0;
        for item in walk(raw) {
            let (kind, value, offset) = item?;
            if stage == 3 {
                return Err(Error::violation(offset - 4, "attribute after FINGERPRINT"));
            }
            let keep = match kind {
                attr::FINGERPRINT => {
                    stage = 3;
                    true
                }
                attr::MESSAGE_INTEGRITY_SHA256 if stage < 2 => {
                    stage = 2;
                    true
                }
                attr::MESSAGE_INTEGRITY if stage < 1 => {
                    stage = 1;
                    true
                }
                _ => stage == 0,
            };
            if !keep {
                continue;
            }
            if attributes.len() >= limits.max_attributes {
                return Err(Error::limit(
                    "STUN attributes",
                    attributes.len() + 1,
                    limits.max_attributes,
                ));
            }
            attributes.push(Attribute::decode(kind, value, offset, &tid)?);
        }
        Ok(Message {
            class: header.class,
            method: header.method,
            transaction_id: tid,
            attributes,
        })
    }

    /// Encodes the message: every attribute in order, as received (MESSAGE-INTEGRITY and
    /// FINGERPRINT values are copied, not recomputed).
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut b = MessageBuilder::new(self.class, self.method, self.transaction_id);
        for a in &self.attributes {
            b.add(a)?;
        }
        Ok(b.finish())
    }

    /// The first attribute of type `kind`.
    pub fn attribute(&self, kind: u16) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.kind() == kind)
    }

    /// Comprehension-required attributes (type < 0x8000) this crate does not know, for the
    /// UNKNOWN-ATTRIBUTES of a 420 answer (RFC 8489 §6.3.1). Empty when all is understood.
    pub fn unknown_comprehension_required(&self) -> Vec<u16> {
        self.attributes
            .iter()
            .filter_map(|a| match a {
                Attribute::Unknown { kind, .. } if attr::is_comprehension_required(*kind) => {
                    Some(*kind)
                }
                _ => None,
            })
            .collect()
    }

    /// USERNAME, if present.
    pub fn username(&self) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Username(s) => Some(s.as_str()),
            _ => None,
        })
    }

    /// REALM, if present.
    pub fn realm(&self) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Realm(s) => Some(s.as_str()),
            _ => None,
        })
    }

    /// NONCE, if present.
    pub fn nonce(&self) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Nonce(s) => Some(s.as_str()),
            _ => None,
        })
    }

    /// ERROR-CODE, if present.
    pub fn error_code(&self) -> Option<&attr::ErrorCode> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::ErrorCode(e) => Some(e),
            _ => None,
        })
    }

    /// Every XOR-PEER-ADDRESS, in order (CreatePermission may carry several; RFC 8656 §10).
    pub fn xor_peer_addresses(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.attributes.iter().filter_map(|a| match a {
            Attribute::XorPeerAddress(p) => Some(*p),
            _ => None,
        })
    }

    /// True when `raw` carries MESSAGE-INTEGRITY and its HMAC-SHA1 under `key` matches
    /// (RFC 8489 §14.5): computed over the bytes before the attribute, with the header length
    /// patched to end just after it. The comparison is constant-time.
    ///
    /// `key` is the short-term password, or [`long_term_key`](crate::auth::long_term_key).
    pub fn check_integrity(raw: &[u8], key: &[u8]) -> bool {
        let Some((offset, value)) = find(raw, attr::MESSAGE_INTEGRITY) else {
            return false;
        };
        if value.len() != MI_LEN {
            return false;
        }
        let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else {
            return false;
        };
        feed_patched(raw, offset, MI_ATTR_LEN, |b| mac.update(b));
        mac.verify_slice(value).is_ok()
    }

    /// Like [`check_integrity`](Self::check_integrity) for MESSAGE-INTEGRITY-SHA256 (RFC 8489
    /// §14.6), accepting the truncated forms (16 to 32 bytes).
    pub fn check_integrity_sha256(raw: &[u8], key: &[u8]) -> bool {
        let Some((offset, value)) = find(raw, attr::MESSAGE_INTEGRITY_SHA256) else {
            return false;
        };
        if !(16..=32).contains(&value.len()) || value.len() % 4 != 0 {
            return false;
        }
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
            return false;
        };
        feed_patched(raw, offset, 4 + value.len(), |b| mac.update(b));
        mac.verify_truncated_left(value).is_ok()
    }

    /// True when the last attribute of `raw` is a FINGERPRINT that matches (RFC 8489 §14.7).
    pub fn check_fingerprint(raw: &[u8]) -> bool {
        let Some(start) = raw.len().checked_sub(FINGERPRINT_ATTR_LEN) else {
            return false;
        };
        let Some((offset, value)) = find(raw, attr::FINGERPRINT) else {
            return false;
        };
        let Ok(value) = <[u8; 4]>::try_from(value) else {
            return false;
        };
        offset == start && fingerprint(raw, start) == u32::from_be_bytes(value)
    }
}

/// Offset of the first attribute of type `kind` in a well-framed message, and its value.
fn find(raw: &[u8], kind: u16) -> Option<(usize, &[u8])> {
    if framed(raw, &Limits::default()).is_err() {
        return None;
    }
    for item in walk(raw) {
        let (k, value, value_offset) = item.ok()?;
        if k == kind {
            return Some((value_offset - 4, value));
        }
    }
    None
}

/// Feeds `raw[..offset]` to `update`, with the header's length patched to cover an attribute
/// of `attr_len` bytes starting at `offset` (RFC 8489 §14.5–14.7).
fn feed_patched(raw: &[u8], offset: usize, attr_len: usize, mut update: impl FnMut(&[u8])) {
    let len = u16::try_from(offset + attr_len - HEADER_LEN).unwrap_or(u16::MAX);
    update(raw.get(..2).unwrap_or_default());
    update(&len.to_be_bytes());
    update(raw.get(4..offset).unwrap_or_default());
}

/// The FINGERPRINT value for an attribute placed at `offset` (CRC-32 XOR 0x5354554E).
fn fingerprint(raw: &[u8], offset: usize) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    feed_patched(raw, offset, FINGERPRINT_ATTR_LEN, |b| crc.update(b));
    crc.finalize() ^ FINGERPRINT_XOR
}

/// Encodes a message, attribute by attribute, in wire order (RFC 8489 §5, §14).
///
/// ```
/// use turn::attr::Attribute;
/// use turn::stun::{Class, Message, MessageBuilder, Method, TransactionId};
///
/// let key = turn::auth::long_term_key("alice", "example.org", "secret");
/// let mut b = MessageBuilder::new(Class::Request, Method::Allocate, TransactionId([7; 12]));
/// b.add(&Attribute::RequestedTransport(17))?
///     .add(&Attribute::Username("alice".into()))?
///     .add_message_integrity(&key)?
///     .add_fingerprint()?;
/// let bytes = b.finish();
/// assert!(Message::check_integrity(&bytes, &key));
/// assert!(Message::check_fingerprint(&bytes));
/// assert_eq!(Message::decode(&bytes)?.username(), Some("alice"));
/// # Ok::<(), turn::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    buf: Vec<u8>,
    tid: TransactionId,
    // 0 = open, 1 = after MESSAGE-INTEGRITY, 2 = after MI-SHA256, 3 = after FINGERPRINT.
    stage: u8,
}

impl MessageBuilder {
    /// Starts a message with the given header.
    pub fn new(class: Class, method: Method, transaction_id: TransactionId) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&message_type(class, method).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&transaction_id.0);
        MessageBuilder {
            buf,
            tid: transaction_id,
            stage: 0,
        }
    }

    /// Appends an attribute. A MESSAGE-INTEGRITY(-SHA256) or FINGERPRINT value given here is
    /// copied as is; use [`add_message_integrity`](Self::add_message_integrity) and
    /// [`add_fingerprint`](Self::add_fingerprint) to compute them.
    ///
    /// Errors: an attribute where RFC 8489 §14.5–14.7 forbids it (after FINGERPRINT, or other
    /// than those after MESSAGE-INTEGRITY), or a value or message past 65 535 bytes.
    pub fn add(&mut self, attribute: &Attribute) -> Result<&mut Self, Error> {
        let kind = attribute.kind();
        let stage = match kind {
            attr::FINGERPRINT if self.stage < 3 => 3,
            attr::MESSAGE_INTEGRITY_SHA256 if self.stage < 2 => 2,
            attr::MESSAGE_INTEGRITY if self.stage < 1 => 1,
            _ if self.stage == 0 => 0,
            _ => {
                return Err(Error::violation(
                    self.buf.len(),
                    "attribute after MESSAGE-INTEGRITY or FINGERPRINT",
                ))
            }
        };
        let start = self.buf.len();
        self.buf.extend_from_slice(&kind.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
        attribute.encode_value(&self.tid, &mut self.buf);
        let len = self.buf.len() - start - 4;
        let Ok(len16) = u16::try_from(len) else {
            self.buf.truncate(start);
            return Err(Error::limit("attribute value length", len, 0xFFFF));
        };
        self.buf.resize(self.buf.len() + pad(len), 0);
        let Ok(total) = u16::try_from(self.buf.len() - HEADER_LEN) else {
            let total = self.buf.len() - HEADER_LEN;
            self.buf.truncate(start);
            return Err(Error::limit("STUN message length", total, 0xFFFF));
        };
        self.buf[start + 2..start + 4].copy_from_slice(&len16.to_be_bytes());
        self.buf[2..4].copy_from_slice(&total.to_be_bytes());
        self.stage = stage;
        Ok(self)
    }

    /// Appends MESSAGE-INTEGRITY: HMAC-SHA1 under `key` of the message so far, its length field
    /// covering the attribute (RFC 8489 §14.5). Call after every other attribute but
    /// MESSAGE-INTEGRITY-SHA256 and FINGERPRINT.
    pub fn add_message_integrity(&mut self, key: &[u8]) -> Result<&mut Self, Error> {
        let mut mac =
            Hmac::<Sha1>::new_from_slice(key).map_err(|_| Error::Unsupported("HMAC key".into()))?;
        feed_patched(&self.buf, self.buf.len(), MI_ATTR_LEN, |b| mac.update(b));
        let digest: [u8; MI_LEN] = mac.finalize().into_bytes().into();
        self.add(&Attribute::MessageIntegrity(digest))
    }

    /// Appends a full-length (32-byte) MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6).
    pub fn add_message_integrity_sha256(&mut self, key: &[u8]) -> Result<&mut Self, Error> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key)
            .map_err(|_| Error::Unsupported("HMAC key".into()))?;
        feed_patched(&self.buf, self.buf.len(), 4 + 32, |b| mac.update(b));
        let digest = mac.finalize().into_bytes().to_vec();
        self.add(&Attribute::MessageIntegritySha256(digest))
    }

    /// Appends FINGERPRINT (RFC 8489 §14.7). Nothing may follow it.
    pub fn add_fingerprint(&mut self) -> Result<&mut Self, Error> {
        let crc = fingerprint(&self.buf, self.buf.len());
        self.add(&Attribute::Fingerprint(crc))
    }

    /// The encoded message.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}
