//! Fuzz target bodies, shared by `fuzz/fuzz_targets/turn_*.rs` (cargo-fuzz, nightly) and
//! `tests/fuzz_corpus.rs` (stable replay of the committed corpus). Each must never panic.

use crate::channel::{self, ChannelData, Frame};
use crate::stun::{Limits, Message};

/// The fuzz targets, named as in `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: [&str; 2] = ["turn_stun", "turn_channel"];

/// The key the targets check MESSAGE-INTEGRITY with (the RFC 5769 §2.1 short-term password, so
/// the seeds from that vector take the "integrity matches" path).
pub const KEY: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

/// Runs the body of the fuzz target called `target` (one of [`TARGETS`]).
pub fn run(target: &str, data: &[u8]) {
    match target {
        "turn_stun" => stun_message(data),
        "turn_channel" => channel_data(data),
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
