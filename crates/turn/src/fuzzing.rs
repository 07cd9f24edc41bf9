//! Fuzz target bodies, shared by `fuzz/fuzz_targets/turn_*.rs` (cargo-fuzz, nightly) and
//! `tests/fuzz_corpus.rs` (stable replay of the committed corpus). Each must never panic.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::attr::{self, Attribute};
use crate::channel::{self, ChannelData, Frame};
use crate::server::{Config, Output, Protocol, RelayPort, Server, Transport};
use crate::stun::{Class, Limits, Message, MessageBuilder};

/// The fuzz targets, named as in `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: [&str; 3] = ["turn_stun", "turn_channel", "turn_server"];

/// The key the targets check MESSAGE-INTEGRITY with (the RFC 5769 §2.1 short-term password, so
/// the seeds from that vector take the "integrity matches" path).
pub const KEY: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

/// Runs the body of the fuzz target called `target` (one of [`TARGETS`]).
pub fn run(target: &str, data: &[u8]) {
    match target {
        "turn_stun" => stun_message(data),
        "turn_channel" => channel_data(data),
        "turn_server" => {
            server(data);
        }
        _ => {}
    }
}

/// One STUN message: decode; when that works, re-encode and decode again to the same message;
/// then the integrity and fingerprint checks.
pub fn stun_message(data: &[u8]) {
    let small = Limits {
        max_message_len: 2048,
        max_attributes: 16,
    };
    let _ = Message::decode_with(data, &small);
    if let Ok(msg) = Message::decode(data) {
        let _ = msg.unknown_comprehension_required();
        let Ok(bytes) = msg.encode() else {
            panic!("decoded message does not re-encode: {msg:?}");
        };
        match Message::decode(&bytes) {
            Ok(again) => assert_eq!(again, msg, "STUN round trip changed the message"),
            Err(e) => panic!("re-encoded message does not decode ({e}): {msg:?}"),
        }
    }
    let _ = Message::check_integrity(data, KEY);
    let _ = Message::check_integrity_sha256(data, KEY);
    let _ = Message::check_fingerprint(data);
}

/// UDP demultiplexing and ChannelData decoding of one datagram, then the same bytes as a TCP
/// stream through the framer (whole, and split in two to exercise partial input).
pub fn channel_data(data: &[u8]) {
    match channel::classify(data) {
        channel::Kind::Stun => stun_message(data),
        channel::Kind::ChannelData => {
            if let Ok(cd) = ChannelData::decode(data) {
                let mut out = Vec::new();
                assert!(cd.encode(true, &mut out).is_ok());
                assert_eq!(ChannelData::decode(&out), Ok(cd));
            }
        }
        channel::Kind::Other => {}
    }
    let whole = frames(data);
    let mid = data.len() / 2;
    let mut buf = data.get(..mid).unwrap_or_default().to_vec();
    let mut split = Vec::new();
    let mut rest = data.get(mid..).unwrap_or_default();
    loop {
        match channel::next_frame(&buf) {
            Ok(Some((f, used))) => {
                split.push(owned(f));
                buf.drain(..used);
            }
            Ok(None) if !rest.is_empty() => {
                buf.extend_from_slice(rest);
                rest = &[];
            }
            Ok(None) | Err(_) => break,
        }
    }
    assert_eq!(split, whole, "framing changed when the stream was split");
}

/// Owned copy of a frame: (is ChannelData, channel, bytes).
fn owned(f: Frame<'_>) -> (bool, u16, Vec<u8>) {
    match f {
        Frame::Stun(m) => {
            let _ = Message::decode(m);
            (false, 0, m.to_vec())
        }
        Frame::ChannelData(cd) => (true, cd.channel, cd.data.to_vec()),
    }
}

fn frames(mut data: &[u8]) -> Vec<(bool, u16, Vec<u8>)> {
    let mut out = Vec::new();
    while let Ok(Some((f, used))) = channel::next_frame(data) {
        assert!(used > 0 && used <= data.len());
        out.push(owned(f));
        data = data.get(used..).unwrap_or_default();
    }
    out
}

/// The user the `turn_server` target signs requests as (a static user), and the password it
/// gives for every [`Output::PasswordRequest`].
pub const SERVER_USER: (&str, &str) = ("alice", "pw");

/// One step of the `turn_server` target: a kind byte, then a big-endian u16 length and that
/// many bytes (see [`server`]).
pub fn server_step(kind: u8, bytes: &[u8], out: &mut Vec<u8>) {
    out.push(kind);
    out.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(bytes.get(..usize::from(u16::MAX)).unwrap_or(bytes));
}

/// A TURN server fed a sequence of steps, each `kind, len (u16 BE), bytes`. Kind modulo 5:
/// 0 = datagram from a UDP client, 1 = frame from a TCP client, 2 = datagram from a peer to
/// the last relay, 3 = a STUN message re-signed as [`SERVER_USER`] with the last NONCE the
/// server handed out, and its RESERVATION-TOKEN (if any) replaced by the last one handed out
/// (so the fuzzer reaches the authenticated and reservation paths), sent from the UDP client
/// when `kind / 5` is even and the TCP client when odd, 4 = advance the clock by `len`
/// seconds (no bytes follow). The driver's part is played here: every relay request
/// is granted, every password request answered. Checks that the server never panics and that
/// after `handle_timeout(now)` the next timeout is in the future. Returns the final counters.
pub fn server(mut data: &[u8]) -> crate::server::Stats {
    let peer = SocketAddr::from(([203, 0, 113, 9], 6000));
    let config = Config {
        users: vec![(SERVER_USER.0.into(), SERVER_USER.1.into())],
        password_hook: true,
        bytes_per_second_per_allocation: 100_000,
        max_allocations: 4,
        // The peer below sits in TEST-NET-3, which the peer policy refuses; listing it keeps
        // the committed seeds reaching the permission and relay paths.
        allow_peers: vec![crate::policy::Cidr {
            addr: std::net::IpAddr::from([203, 0, 113, 0]),
            prefix: 24,
        }],
        ..Config::default()
    };
    let mut s = Server::new(config, [3; 32]);
    let start = Instant::now();
    let mut now = start;
    let unix = 1_700_000_000u64;
    let server_addr = SocketAddr::from(([198, 51, 100, 1], 3478));
    let udp = Transport {
        protocol: Protocol::Udp,
        client: SocketAddr::from(([203, 0, 113, 5], 50000)),
        server: server_addr,
    };
    let tcp = Transport {
        protocol: Protocol::Tcp,
        ..udp
    };
    let mut relay = SocketAddr::from(([198, 51, 100, 1], 49152));
    let mut nonce = String::new();
    let mut token = None;
    let mut ports = 49152u16;
    while let (Some(&kind), Some(len)) = (data.first(), data.get(1..3)) {
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let elapsed = now.saturating_duration_since(start).as_secs();
        match kind % 5 {
            4 => {
                now += Duration::from_secs(len as u64);
                s.handle_timeout(now);
                if let Some(t) = s.poll_timeout() {
                    assert!(t > now, "timeout in the past after handle_timeout");
                }
                data = data.get(3..).unwrap_or_default();
            }
            k => {
                let Some(bytes) = data.get(3..3 + len) else {
                    break;
                };
                data = data.get(3 + len..).unwrap_or_default();
                match k {
                    0 => s.handle_client(now, unix + elapsed, udp, bytes),
                    1 => s.handle_client(now, unix + elapsed, tcp, bytes),
                    2 => s.handle_peer(now, relay, peer, bytes),
                    _ => {
                        let from = if (kind / 5) % 2 == 0 { udp } else { tcp };
                        if let Some(signed) = sign(bytes, &nonce, token) {
                            s.handle_client(now, unix + elapsed, from, &signed);
                        }
                    }
                }
            }
        }
        while let Some(out) = s.poll_output() {
            match out {
                Output::AllocateRelay { request, port, .. } => {
                    relay = match port {
                        RelayPort::Reserved(reserved) => reserved,
                        RelayPort::Any => SocketAddr::new(server_addr.ip(), ports),
                        RelayPort::Even | RelayPort::EvenReserveNext => {
                            SocketAddr::new(server_addr.ip(), ports & !1)
                        }
                    };
                    ports = ports.wrapping_add(2);
                    s.relay_allocated(now, request, Ok(relay));
                }
                Output::PasswordRequest { request, .. } => {
                    s.provide_password(now, request, Some(SERVER_USER.1.into()));
                }
                Output::ToClient { bytes, .. } => {
                    if let Ok(m) = Message::decode(&bytes) {
                        if let Some(n) = m.nonce() {
                            nonce = n.to_owned();
                        }
                        if let Some(Attribute::ReservationToken(t)) =
                            m.attribute(attr::RESERVATION_TOKEN)
                        {
                            token = Some(*t);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    s.stats()
}

/// `raw` decoded and rebuilt with USERNAME, REALM, NONCE, MESSAGE-INTEGRITY and FINGERPRINT,
/// and `token` in place of its RESERVATION-TOKEN.
fn sign(raw: &[u8], nonce: &str, token: Option<[u8; 8]>) -> Option<Vec<u8>> {
    let m = Message::decode(raw).ok()?;
    let mut b = MessageBuilder::new(Class::Request, m.method, m.transaction_id);
    for a in &m.attributes {
        if !matches!(
            a.kind(),
            attr::USERNAME
                | attr::REALM
                | attr::NONCE
                | attr::MESSAGE_INTEGRITY
                | attr::MESSAGE_INTEGRITY_SHA256
                | attr::FINGERPRINT
        ) {
            match (a, token) {
                (Attribute::ReservationToken(_), Some(t)) => {
                    b.add(&Attribute::ReservationToken(t)).ok()?;
                }
                _ => {
                    b.add(a).ok()?;
                }
            }
        }
    }
    let (user, pw) = SERVER_USER;
    let realm = Config::default().realm;
    b.add(&Attribute::Username(user.into())).ok()?;
    b.add(&Attribute::Realm(realm.clone())).ok()?;
    b.add(&Attribute::Nonce(nonce.into())).ok()?;
    b.add_message_integrity(&crate::auth::long_term_key(user, &realm, pw))
        .ok()?;
    b.add_fingerprint().ok()?;
    Some(b.finish())
}
