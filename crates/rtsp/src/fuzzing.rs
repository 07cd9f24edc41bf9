//! Fuzz target bodies, shared by `fuzz/fuzz_targets/rtsp_*.rs` (cargo-fuzz, nightly) and
//! `tests/fuzz_corpus.rs` (stable replay of the committed corpus). Each must never panic.
//!
//! The depacketizer targets read their input as a sequence of RTP packets, each preceded by
//! its length as a big-endian u16 ([`packet_records`] writes that format).

use bytes::{BufMut, Bytes, BytesMut};

use crate::message::{Decoder, Input, Response, Transport};
use crate::rtp::{self, Packet, Rtcp};
use crate::{aac, auth, h264, h265, nal, sdp};

/// The fuzz targets, named as in `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: [&str; 6] = [
    "rtsp_message",
    "rtsp_sdp",
    "rtsp_rtp",
    "rtsp_h264",
    "rtsp_h265",
    "rtsp_aac",
];

/// Runs the body of the fuzz target called `target` (one of [`TARGETS`]).
pub fn run(target: &str, data: &[u8]) {
    match target {
        "rtsp_message" => message(data),
        "rtsp_sdp" => sdp(data),
        "rtsp_rtp" => rtp(data),
        "rtsp_h264" => h264(data),
        "rtsp_h265" => h265(data),
        "rtsp_aac" => aac(data),
        _ => {}
    }
}

/// Serialises packets as the depacketizer targets read them: u16 length, packet bytes.
pub fn packet_records(packets: &[Packet]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for p in packets {
        let bytes = p.to_bytes();
        out.put_u16(bytes.len().min(usize::from(u16::MAX)) as u16);
        out.put_slice(&bytes[..bytes.len().min(usize::from(u16::MAX))]);
    }
    out.to_vec()
}

/// The packets of a depacketizer target's input; records that do not parse are skipped.
fn packets(data: &[u8]) -> Vec<Packet> {
    let data = Bytes::copy_from_slice(data);
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(len) = data
        .get(pos..pos + 2)
        .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
    {
        let end = (pos + 2 + len).min(data.len());
        if let Ok(p) = Packet::parse(data.slice(pos + 2..end)) {
            out.push(p);
        }
        pos = end;
    }
    out
}

/// A TCP stream from an RTSP client: requests and interleaved frames, whole and in two halves
/// (which must give the same inputs); every request is answered and its headers and body
/// parsed as the server would.
pub fn message(data: &[u8]) {
    let mut whole = Decoder::new(4096);
    whole.push(data);
    let mut first = Vec::new();
    let whole_result = loop {
        match whole.poll() {
            Ok(Some(input)) => first.push(input),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let mut split = Decoder::new(4096);
    let mut second = Vec::new();
    let (a, b) = data.split_at(data.len() / 2);
    let mut split_result = Ok(());
    'outer: for part in [a, b] {
        split.push(part);
        loop {
            match split.poll() {
                Ok(Some(input)) => second.push(input),
                Ok(None) => break,
                Err(e) => {
                    split_result = Err(e);
                    break 'outer;
                }
            }
        }
    }
    if whole_result.is_ok() && split_result.is_ok() {
        assert_eq!(first, second, "splitting the stream changed the inputs");
    }
    for input in first {
        let Input::Request(req) = input else {
            continue;
        };
        let mut response = Response::to(&req, 200).session("s", Some(60));
        if let Some(t) = req
            .header("Transport")
            .and_then(|t| Transport::parse(t).ok())
        {
            response = response.transport(&t);
        }
        if let Some(a) = req.header("Authorization") {
            if let Ok(auth::Credentials::Digest(d)) = auth::parse_authorization(a) {
                let _ = d.verify(req.method().into(), "r", "n", auth::Password::Plain("p"));
            }
        }
        let _ = sdp::parse(req.body());
        let _ = response.to_bytes();
    }
}

/// An SDP: parse, and write what parsed and parse it again; plus the auth header parser.
pub fn sdp(data: &[u8]) {
    if let Ok(tracks) = sdp::parse(data) {
        let text = sdp::write(&tracks, "fuzz");
        let again = sdp::parse(text.as_bytes());
        assert!(again.is_ok(), "written SDP does not parse: {text}");
        let infos: Vec<_> = tracks.iter().map(|t| t.info.clone()).collect();
        let _ = sdp::describe(&infos, "fuzz");
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = auth::parse_authorization(s);
        let _ = Transport::parse(s);
    }
}

/// An RTP packet and a compound RTCP packet; what parses must survive a write and parse.
pub fn rtp(data: &[u8]) {
    if let Ok(p) = Packet::parse(Bytes::copy_from_slice(data)) {
        assert_eq!(Packet::parse(p.to_bytes()), Ok(p));
    }
    if let Ok(reports) = rtp::parse_rtcp(data) {
        let mut out = BytesMut::new();
        for r in &reports {
            match r {
                Rtcp::SenderReport(sr) => sr.write(&mut out),
                Rtcp::ReceiverReport(rr) => rr.write(&mut out),
            }
        }
        assert_eq!(rtp::parse_rtcp(&out), Ok(reports));
    }
}

/// Every access unit a video depacketizer hands out must survive packetizing (small MTU) and
/// depacketizing again unchanged.
fn video_round_trip(
    events: Vec<nal::Event>,
    mut packetize: impl FnMut(u32, &Bytes) -> Vec<Packet>,
    mut depacketize: impl FnMut(&[Packet]) -> Vec<nal::Event>,
) {
    for event in events {
        let nal::Event::AccessUnit(au) = event else {
            continue;
        };
        let packets = packetize(au.timestamp, &au.data);
        if packets.is_empty() {
            continue;
        }
        let back: Vec<_> = depacketize(&packets)
            .into_iter()
            .filter(|e| matches!(e, nal::Event::AccessUnit(_)))
            .collect();
        assert_eq!(back, vec![nal::Event::AccessUnit(au)]);
    }
}

/// H.264 RTP packets into the depacketizer.
pub fn h264(data: &[u8]) {
    let mut d = h264::Depacketizer::new(&[], 1 << 20);
    let mut events = Vec::new();
    for p in packets(data) {
        d.push(&p);
        events.extend(std::iter::from_fn(|| d.pull()));
    }
    video_round_trip(
        events,
        |ts, au| {
            let mut p = h264::Packetizer::new(64, 96, 1, 0);
            if p.push(ts, au).is_err() {
                return Vec::new();
            }
            std::iter::from_fn(|| p.pull()).collect()
        },
        |packets| {
            let mut d = h264::Depacketizer::new(&[], 1 << 20);
            let mut out = Vec::new();
            for p in packets {
                d.push(p);
                out.extend(std::iter::from_fn(|| d.pull()));
            }
            out
        },
    );
}

/// H.265 RTP packets into the depacketizer.
pub fn h265(data: &[u8]) {
    let mut d = h265::Depacketizer::new(&[], 1 << 20);
    let mut events = Vec::new();
    for p in packets(data) {
        d.push(&p);
        events.extend(std::iter::from_fn(|| d.pull()));
    }
    video_round_trip(
        events,
        |ts, au| {
            let mut p = h265::Packetizer::new(64, 97, 1, 0);
            if p.push(ts, au).is_err() {
                return Vec::new();
            }
            std::iter::from_fn(|| p.pull()).collect()
        },
        |packets| {
            let mut d = h265::Depacketizer::new(&[], 1 << 20);
            let mut out = Vec::new();
            for p in packets {
                d.push(p);
                out.extend(std::iter::from_fn(|| d.pull()));
            }
            out
        },
    );
}

/// RFC 3640 AAC-hbr RTP packets into the depacketizer; each frame must round-trip.
pub fn aac(data: &[u8]) {
    let mut d = aac::Depacketizer::new();
    for p in packets(data) {
        d.push(&p);
        while let Some(frame) = d.pull() {
            let mut pk = aac::Packetizer::new(64, 97, 1, 0);
            if pk.push(frame.timestamp, &frame.data).is_err() {
                continue;
            }
            let mut back = aac::Depacketizer::new();
            let mut got = Vec::new();
            while let Some(p) = pk.pull() {
                back.push(&p);
                got.extend(std::iter::from_fn(|| back.pull()));
            }
            assert_eq!(got, vec![frame]);
        }
    }
}
