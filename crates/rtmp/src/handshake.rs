//! The RTMP handshake (RTMP spec 1.0 §5.2), plain and digest.
//!
//! ```text
//!   client                          server
//!     | C0 (version 3) + C1 (1536 B) ->|
//!     |<- S0 + S1 + S2                 |   S2 answers C1
//!     | C2 (1536 B) ------------------>|   C2 answers S1; chunks may follow at once
//! ```
//!
//! The spec's plain handshake has four zero bytes after C1's timestamp and an echo for S2/C2.
//! Flash Player 9 and later (and ffmpeg, OBS, every CDN) send a *digest* C1 instead: bytes 4..8
//! hold a non-zero version and a 32-byte HMAC-SHA256 sits inside one of two 764-byte blocks. The
//! server must answer in kind or Flash-era players refuse the connection. This scheme is not in
//! Adobe's published spec; the layout below is the one librtmp, ffmpeg (`rtmpproto.c`) and
//! nginx-rtmp agree on:
//!
//! - **scheme 0**: the digest offset is `(c1[8] + c1[9] + c1[10] + c1[11]) % 728 + 12`;
//! - **scheme 1**: it is `(c1[772] + … + c1[775]) % 728 + 776`;
//! - the digest is HMAC-SHA256 over the 1536 bytes minus the digest itself, keyed with the first
//!   30 bytes of [`FP_KEY`] for a client and the first 36 bytes of [`FMS_KEY`] for a server;
//! - S2 (C2) is 1504 random bytes and an HMAC of them, keyed with HMAC(`FMS_KEY` (`FP_KEY`),
//!   the peer's C1 (S1) digest).
//!
//! Both sides here are sans-IO: [`ServerHandshake::handle_input`] and
//! [`ClientHandshake::handle_input`] take the bytes read so far, append their answer to an
//! output buffer and say how many input bytes they used (the rest is the chunk stream). The
//! crate has no random number generator, so the caller supplies the [`RANDOM_SIZE`] random bytes
//! of C1/S1; the random part of a digest S2/C2 is derived from them with SHA-256. The time fields
//! are zero (the crate keeps no clock); peers ignore them.

use bytes::{BufMut, BytesMut};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::Error;

/// Size of C1, S1, C2 and S2.
pub const PACKET_SIZE: usize = 1536;
/// Size of the random field of C1 and S1 (after the time and version fields), which the caller
/// supplies.
pub const RANDOM_SIZE: usize = PACKET_SIZE - 8;
/// The only RTMP version byte (C0/S0) accepted: 3, plain RTMP. 6 and 8 are RTMPE.
pub const RTMP_VERSION: u8 = 0x03;
/// Size of an HMAC-SHA256 digest.
const DIGEST_SIZE: usize = 32;

/// The client key: "Genuine Adobe Flash Player 001" and 32 more bytes. The first 30 bytes sign
/// C1; all 62 key the C2 signature.
pub const FP_KEY: [u8; 62] = *b"Genuine Adobe Flash Player 001\
    \xF0\xEE\xC2\x4A\x80\x68\xBE\xE8\x2E\x00\xD0\xD1\x02\x9E\x7E\x57\
    \x6E\xEC\x5D\x2D\x29\x80\x6F\xAB\x93\xB8\xE6\x36\xCF\xEB\x31\xAE";

/// The server key: "Genuine Adobe Flash Media Server 001" and the same 32 bytes. The first 36
/// bytes sign S1; all 68 key the S2 signature.
pub const FMS_KEY: [u8; 68] = *b"Genuine Adobe Flash Media Server 001\
    \xF0\xEE\xC2\x4A\x80\x68\xBE\xE8\x2E\x00\xD0\xD1\x02\x9E\x7E\x57\
    \x6E\xEC\x5D\x2D\x29\x80\x6F\xAB\x93\xB8\xE6\x36\xCF\xEB\x31\xAE";

const FP_KEY_C1_LEN: usize = 30;
const FMS_KEY_S1_LEN: usize = 36;

/// The version field a digest S1 carries (bytes 4..8), like FMS 5.0.3.1. ffmpeg only checks
/// the S1 digest when the first byte is ≥ 3.
const SERVER_VERSION: [u8; 4] = [0x05, 0x00, 0x03, 0x01];
/// The version field a digest C1 carries: Flash Player 9.0.124.2, as ffmpeg sends.
const CLIENT_VERSION: [u8; 4] = [0x09, 0x00, 0x7c, 0x02];

/// Where the digest of a digest handshake sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Offset from bytes 8..12, digest in the first 764-byte block (ffmpeg's and OBS's C1).
    Digest0,
    /// Offset from bytes 772..776, digest in the second block.
    Digest1,
}

impl Scheme {
    fn base(self) -> usize {
        match self {
            Scheme::Digest0 => 8,
            Scheme::Digest1 => 772,
        }
    }

    /// Where the 32-byte digest starts in `packet`: at most 727 + 776 = 1503, so the digest
    /// always ends inside the 1536 bytes.
    fn offset(self, packet: &[u8; PACKET_SIZE]) -> usize {
        let base = self.base();
        let sum: usize = packet[base..base + 4].iter().map(|&b| usize::from(b)).sum();
        sum % 728 + base + 4
    }
}

/// What kind of handshake the peer used, once known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The spec's plain handshake: echoes.
    Plain,
    /// The Flash Player 9 digest handshake.
    Digest(Scheme),
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_SIZE] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail; fall back to a
    // zero digest rather than unwrap to keep the crate panic-free by construction.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return [0; DIGEST_SIZE];
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The digest of `packet` with the digest field at `offset` left out.
fn packet_digest(packet: &[u8; PACKET_SIZE], offset: usize, key: &[u8]) -> [u8; DIGEST_SIZE] {
    hmac(key, &[&packet[..offset], &packet[offset + DIGEST_SIZE..]])
}

/// The digest of `packet` if it carries a valid one under `scheme` and `key`.
fn find_digest(
    packet: &[u8; PACKET_SIZE],
    scheme: Scheme,
    key: &[u8],
) -> Option<[u8; DIGEST_SIZE]> {
    let offset = scheme.offset(packet);
    let expect = packet_digest(packet, offset, key);
    (packet[offset..offset + DIGEST_SIZE] == expect).then_some(expect)
}

/// A 32-byte key for [`expand`] from the caller's random bytes.
fn seed_of(random: &[u8; RANDOM_SIZE]) -> [u8; 32] {
    Sha256::digest(random).into()
}

/// Fills `out` with bytes derived from `seed` and `label` (SHA-256 in counter mode).
fn expand(seed: &[u8; 32], label: &[u8], out: &mut [u8]) {
    for (i, block) in out.chunks_mut(DIGEST_SIZE).enumerate() {
        let h = Sha256::new()
            .chain_update(seed)
            .chain_update(label)
            .chain_update((i as u32).to_be_bytes())
            .finalize();
        block.copy_from_slice(&h[..block.len()]);
    }
}

/// A C1 or S1: time 0, `version`, then the caller's random bytes.
fn random_packet(random: &[u8; RANDOM_SIZE], version: [u8; 4]) -> [u8; PACKET_SIZE] {
    let mut p = [0; PACKET_SIZE];
    p[4..8].copy_from_slice(&version);
    p[8..].copy_from_slice(random);
    p
}

/// Writes the digest of `packet` under `scheme` into it and returns the digest.
fn sign_packet(packet: &mut [u8; PACKET_SIZE], scheme: Scheme, key: &[u8]) -> [u8; DIGEST_SIZE] {
    let offset = scheme.offset(packet);
    let digest = packet_digest(packet, offset, key);
    packet[offset..offset + DIGEST_SIZE].copy_from_slice(&digest);
    digest
}

/// An S2 or C2 answering a digest packet: random bytes signed with a key derived from the
/// peer's digest.
fn digest_response(
    seed: &[u8; 32],
    label: &[u8],
    long_key: &[u8],
    peer_digest: &[u8; DIGEST_SIZE],
) -> [u8; PACKET_SIZE] {
    let mut p = [0; PACKET_SIZE];
    expand(seed, label, &mut p);
    let key = hmac(long_key, &[peer_digest]);
    let sig = hmac(&key, &[&p[..PACKET_SIZE - DIGEST_SIZE]]);
    p[PACKET_SIZE - DIGEST_SIZE..].copy_from_slice(&sig);
    p
}

/// Copies bytes from `input` into `buf` until it holds `want`; returns how many were used.
fn fill(buf: &mut Vec<u8>, want: usize, input: &[u8]) -> usize {
    let n = want.saturating_sub(buf.len()).min(input.len());
    buf.extend_from_slice(&input[..n]);
    n
}

fn to_packet(bytes: &[u8]) -> [u8; PACKET_SIZE] {
    let mut p = [0; PACKET_SIZE];
    let n = bytes.len().min(PACKET_SIZE);
    p[..n].copy_from_slice(&bytes[..n]);
    p
}

fn check_version(v: Option<&u8>) -> Result<(), Error> {
    match v {
        Some(&RTMP_VERSION) => Ok(()),
        Some(&v) => Err(Error::Unsupported(format!(
            "RTMP version {v} (RTMPE or unknown); only 3 is supported"
        ))),
        None => Err(Error::malformed(0, "handshake version")),
    }
}

#[derive(Debug)]
enum ServerState {
    /// Waiting for C0 and C1 (1537 bytes).
    C0C1,
    /// S0S1S2 sent; waiting for C2.
    C2,
    /// Done; every further byte is the chunk stream.
    Done,
}

/// The server side: reads C0C1, writes S0S1S2, reads C2.
#[derive(Debug)]
pub struct ServerHandshake {
    random: [u8; RANDOM_SIZE],
    state: ServerState,
    buf: Vec<u8>,
    kind: Option<Kind>,
}

impl ServerHandshake {
    /// A server handshake whose S1 carries `random`.
    pub fn new(random: [u8; RANDOM_SIZE]) -> Self {
        ServerHandshake {
            random,
            state: ServerState::C0C1,
            buf: Vec::with_capacity(1 + PACKET_SIZE),
            kind: None,
        }
    }

    /// Consumes handshake bytes from `input`, appending S0S1S2 to `out` once C0C1 is complete.
    /// Returns how many bytes of `input` belong to the handshake; the rest are chunks.
    pub fn handle_input(&mut self, input: &[u8], out: &mut BytesMut) -> Result<usize, Error> {
        let mut used = 0;
        loop {
            let rest = input.get(used..).unwrap_or_default();
            match self.state {
                ServerState::C0C1 => {
                    used += fill(&mut self.buf, 1 + PACKET_SIZE, rest);
                    if !self.buf.is_empty() {
                        check_version(self.buf.first())?;
                    }
                    if self.buf.len() < 1 + PACKET_SIZE {
                        return Ok(used);
                    }
                    let c1 = to_packet(self.buf.get(1..).unwrap_or_default());
                    self.respond(&c1, out);
                    self.buf.clear();
                    self.state = ServerState::C2;
                }
                ServerState::C2 => {
                    // C2 is not checked: Flash Player's digest C2 does not echo S1, and plain
                    // clients differ in what they copy. Nothing depends on its content.
                    used += fill(&mut self.buf, PACKET_SIZE, rest);
                    if self.buf.len() < PACKET_SIZE {
                        return Ok(used);
                    }
                    self.buf = Vec::new();
                    self.state = ServerState::Done;
                }
                ServerState::Done => return Ok(used),
            }
        }
    }

    fn respond(&mut self, c1: &[u8; PACKET_SIZE], out: &mut BytesMut) {
        let client_digest = if c1[4..8] == [0; 4] {
            None
        } else {
            [Scheme::Digest0, Scheme::Digest1]
                .into_iter()
                .find_map(|scheme| {
                    find_digest(c1, scheme, &FP_KEY[..FP_KEY_C1_LEN]).map(|d| (scheme, d))
                })
        };
        out.reserve(1 + 2 * PACKET_SIZE);
        out.put_u8(RTMP_VERSION);
        match client_digest {
            Some((scheme, digest)) => {
                let mut s1 = random_packet(&self.random, SERVER_VERSION);
                sign_packet(&mut s1, scheme, &FMS_KEY[..FMS_KEY_S1_LEN]);
                let s2 = digest_response(&seed_of(&self.random), b"S2", &FMS_KEY, &digest);
                out.put_slice(&s1);
                out.put_slice(&s2);
                self.kind = Some(Kind::Digest(scheme));
            }
            None => {
                let s1 = random_packet(&self.random, [0; 4]);
                out.put_slice(&s1);
                out.put_slice(c1);
                self.kind = Some(Kind::Plain);
            }
        }
        tracing::debug!(kind = ?self.kind, "RTMP handshake: sent S0S1S2");
    }

    /// Whether C2 has arrived.
    pub fn is_done(&self) -> bool {
        matches!(self.state, ServerState::Done)
    }

    /// The kind of handshake the client used, once C1 has arrived.
    pub fn kind(&self) -> Option<Kind> {
        self.kind
    }
}

#[derive(Debug)]
enum ClientState {
    /// C0C1 written; waiting for S0S1S2 (3073 bytes).
    S0S1S2,
    /// C2 written; done.
    Done,
}

/// The client side: writes C0C1, reads S0S1S2, writes C2.
#[derive(Debug)]
pub struct ClientHandshake {
    seed: [u8; 32],
    state: ClientState,
    buf: Vec<u8>,
    /// Our C1 digest when we sent a digest C1.
    c1_digest: Option<[u8; DIGEST_SIZE]>,
    kind: Option<Kind>,
}

impl ClientHandshake {
    /// Starts a handshake, appending C0C1 (C1 carrying `random`) to `out`. `scheme` `None`
    /// sends the spec's plain C1; `Some` sends a Flash-style digest C1 as ffmpeg and OBS do.
    pub fn new(random: [u8; RANDOM_SIZE], scheme: Option<Scheme>, out: &mut BytesMut) -> Self {
        let mut c1_digest = None;
        let c1 = match scheme {
            None => random_packet(&random, [0; 4]),
            Some(scheme) => {
                let mut c1 = random_packet(&random, CLIENT_VERSION);
                c1_digest = Some(sign_packet(&mut c1, scheme, &FP_KEY[..FP_KEY_C1_LEN]));
                c1
            }
        };
        out.reserve(1 + PACKET_SIZE);
        out.put_u8(RTMP_VERSION);
        out.put_slice(&c1);
        ClientHandshake {
            seed: seed_of(&random),
            state: ClientState::S0S1S2,
            buf: Vec::with_capacity(1 + 2 * PACKET_SIZE),
            c1_digest,
            kind: None,
        }
    }

    /// Consumes S0S1S2 from `input`, appending C2 to `out` once complete. Returns how many bytes
    /// of `input` belong to the handshake.
    pub fn handle_input(&mut self, input: &[u8], out: &mut BytesMut) -> Result<usize, Error> {
        if matches!(self.state, ClientState::Done) {
            return Ok(0);
        }
        let used = fill(&mut self.buf, 1 + 2 * PACKET_SIZE, input);
        if !self.buf.is_empty() {
            check_version(self.buf.first())?;
        }
        if self.buf.len() < 1 + 2 * PACKET_SIZE {
            return Ok(used);
        }
        let s1 = to_packet(self.buf.get(1..).unwrap_or_default());
        let s2 = to_packet(self.buf.get(1 + PACKET_SIZE..).unwrap_or_default());
        let server_digest = match self.c1_digest {
            Some(_) if s1[4..8] != [0; 4] => [Scheme::Digest1, Scheme::Digest0]
                .into_iter()
                .find_map(|s| find_digest(&s1, s, &FMS_KEY[..FMS_KEY_S1_LEN]).map(|d| (s, d))),
            _ => None,
        };
        match (server_digest, self.c1_digest) {
            (Some((scheme, digest)), Some(c1_digest)) => {
                let key = hmac(&FMS_KEY, &[&c1_digest]);
                let sig = hmac(&key, &[&s2[..PACKET_SIZE - DIGEST_SIZE]]);
                if s2[PACKET_SIZE - DIGEST_SIZE..] != sig {
                    return Err(Error::ProtocolViolation {
                        offset: 1 + PACKET_SIZE,
                        context: "S2 signature does not match our C1 digest",
                    });
                }
                out.put_slice(&digest_response(&self.seed, b"C2", &FP_KEY, &digest));
                self.kind = Some(Kind::Digest(scheme));
            }
            _ => {
                out.put_slice(&s1);
                self.kind = Some(Kind::Plain);
            }
        }
        tracing::debug!(kind = ?self.kind, "RTMP handshake: sent C2");
        self.buf = Vec::new();
        self.state = ClientState::Done;
        Ok(used)
    }

    /// Whether S0S1S2 arrived and C2 was written.
    pub fn is_done(&self) -> bool {
        matches!(self.state, ClientState::Done)
    }

    /// The kind of handshake the server answered with, once known.
    pub fn kind(&self) -> Option<Kind> {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(scheme: Option<Scheme>) -> (Kind, Kind) {
        let mut c_out = BytesMut::new();
        let mut client = ClientHandshake::new([1; RANDOM_SIZE], scheme, &mut c_out);
        assert_eq!(c_out.len(), 1 + PACKET_SIZE);
        let mut server = ServerHandshake::new([2; RANDOM_SIZE]);
        let mut s_out = BytesMut::new();
        // Byte by byte, to check partial input.
        for (i, b) in c_out.iter().enumerate() {
            assert_eq!(server.handle_input(&[*b], &mut s_out), Ok(1), "byte {i}");
        }
        assert_eq!(s_out.len(), 1 + 2 * PACKET_SIZE);
        let mut c2 = BytesMut::new();
        assert_eq!(client.handle_input(&s_out, &mut c2), Ok(s_out.len()));
        assert!(client.is_done());
        assert_eq!(c2.len(), PACKET_SIZE);
        // C2 followed by the first chunk: only C2 is the handshake's.
        let mut more = c2.to_vec();
        more.extend_from_slice(&[0x02, 0x00]);
        assert_eq!(server.handle_input(&more, &mut s_out), Ok(PACKET_SIZE));
        assert!(server.is_done());
        (
            client.kind().expect("client kind"),
            server.kind().expect("server kind"),
        )
    }

    #[test]
    fn plain_handshake() {
        assert_eq!(run(None), (Kind::Plain, Kind::Plain));
    }

    #[test]
    fn digest_handshake_both_schemes() {
        for s in [Scheme::Digest0, Scheme::Digest1] {
            assert_eq!(run(Some(s)), (Kind::Digest(s), Kind::Digest(s)));
        }
    }

    #[test]
    fn plain_server_echoes_c1() {
        let mut c_out = BytesMut::new();
        ClientHandshake::new([7; RANDOM_SIZE], None, &mut c_out);
        let mut server = ServerHandshake::new([2; RANDOM_SIZE]);
        let mut s_out = BytesMut::new();
        server.handle_input(&c_out, &mut s_out).expect("ok");
        assert_eq!(&s_out[1 + PACKET_SIZE..], &c_out[1..]);
    }

    #[test]
    fn corrupt_digest_falls_back_to_plain() {
        let mut c_out = BytesMut::new();
        ClientHandshake::new([7; RANDOM_SIZE], Some(Scheme::Digest0), &mut c_out);
        // Flip a byte outside the offset fields: the digest no longer verifies.
        c_out[1500] ^= 0xff;
        let mut server = ServerHandshake::new([2; RANDOM_SIZE]);
        let mut s_out = BytesMut::new();
        server.handle_input(&c_out, &mut s_out).expect("ok");
        assert_eq!(server.kind(), Some(Kind::Plain));
    }

    #[test]
    fn rtmpe_is_unsupported() {
        let mut server = ServerHandshake::new([2; RANDOM_SIZE]);
        let mut out = BytesMut::new();
        assert!(matches!(
            server.handle_input(&[0x06, 0, 0], &mut out),
            Err(Error::Unsupported(_))
        ));
        let mut fresh = ServerHandshake::new([2; RANDOM_SIZE]);
        assert_eq!(fresh.handle_input(&[], &mut out), Ok(0));
    }

    #[test]
    fn forged_s2_is_rejected() {
        let mut c_out = BytesMut::new();
        let mut client = ClientHandshake::new([1; RANDOM_SIZE], Some(Scheme::Digest0), &mut c_out);
        let mut server = ServerHandshake::new([2; RANDOM_SIZE]);
        let mut s_out = BytesMut::new();
        server.handle_input(&c_out, &mut s_out).expect("ok");
        let last = s_out.len() - 1;
        s_out[last] ^= 1;
        let mut c2 = BytesMut::new();
        assert!(matches!(
            client.handle_input(&s_out, &mut c2),
            Err(Error::ProtocolViolation { .. })
        ));
    }
}
