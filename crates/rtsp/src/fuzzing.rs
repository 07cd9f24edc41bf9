//! Fuzz target bodies, shared by `fuzz/fuzz_targets/rtsp_*.rs` (cargo-fuzz, nightly) and
//! `tests/fuzz_corpus.rs` (stable replay of the committed corpus). Each must never panic.
//!
//! The depacketizer targets read their input as a sequence of RTP packets, each preceded by
//! its length as a big-endian u16 ([`packet_records`] writes that format). `rtsp_demux` reads
//! one SDP selector byte, then records of a flags byte, a u16 length and an RTP or RTCP packet
//! ([`demux_records`] writes that format).

use bytes::{BufMut, Bytes, BytesMut};

use crate::demux::{DemuxEvent, Demuxer};
use std::time::{Duration, Instant};

use crate::message::{Decoder, Input, Response, RtpInfo, Transport};
use crate::mux::Muxer;
use crate::rtp::{self, Packet, Rtcp};
use crate::session::{self, Session};
use crate::{aac, auth, client, h264, h265, nal, sdp, RtspConfig};

/// The fuzz targets, named as in `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: [&str; 9] = [
    "rtsp_message",
    "rtsp_sdp",
    "rtsp_rtp",
    "rtsp_h264",
    "rtsp_h265",
    "rtsp_aac",
    "rtsp_demux",
    "rtsp_rfc4571",
    "rtsp_client",
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
        "rtsp_demux" => demux(data),
        "rtsp_rfc4571" => rfc4571(data),
        "rtsp_client" => client(data),
        _ => {}
    }
}

/// A server's side of an RTSP client connection (responses, server requests, interleaved
/// frames) fed to a [`client::Client`]: the first byte picks the job (bit 0: UDP, bit 1:
/// record), the rest is the stream, whole and in two halves (which must give the same events
/// and requests). The driver binds every UDP pair it is asked for, and afterwards the clocks
/// run out, which must end the session or send a keep-alive.
pub fn client(data: &[u8]) {
    let Some((&flags, stream)) = data.split_first() else {
        return;
    };
    let whole = client_converse(flags, &[stream]);
    let (a, b) = stream.split_at(stream.len() / 2);
    let halves = client_converse(flags, &[a, b]);
    if whole.2.is_ok() && halves.2.is_ok() {
        assert_eq!(
            (whole.0, whole.1),
            (halves.0, halves.1),
            "splitting the stream changed the client"
        );
    }
}

/// The client of [`client`]'s seeds: `rtsp://127.0.0.1:8554/live/cam`, admin/s3cret.
pub fn fuzz_client(flags: u8, now: Instant) -> client::Client {
    let config = RtspConfig {
        max_message: 4096,
        ..RtspConfig::default()
    };
    let options = client::ClientOptions {
        transport: if flags & 1 == 1 {
            client::RtpOver::Udp
        } else {
            client::RtpOver::Tcp
        },
        ..client::ClientOptions::default()
    };
    let login = Some(client::Login {
        username: "admin".into(),
        password: "s3cret".into(),
    });
    let url = "rtsp://127.0.0.1:8554/live/cam";
    let made = if flags & 2 == 2 {
        let infos = [
            media::TrackInfo::new(media::Codec::H264, Bytes::new()),
            media::TrackInfo::new(media::Codec::G711U, Bytes::new()),
        ];
        let tracks = sdp::describe(&infos, "cam").1;
        client::Client::record(url, login, tracks, "live/cam", options, &config, now)
    } else {
        client::Client::play(url, login, options, &config, now)
    };
    match made {
        Ok(c) => c,
        Err(e) => panic!("the seed client cannot be made: {e}"),
    }
}

type ClientRun = (Vec<client::Event>, Vec<u8>, Result<(), crate::Error>);

fn client_converse(flags: u8, parts: &[&[u8]]) -> ClientRun {
    let now = Instant::now();
    let mut c = fuzz_client(flags, now);
    let (mut events, mut out, mut result) = (Vec::new(), BytesMut::new(), Ok(()));
    let mut port = 40_000u16;
    for part in parts {
        if let Err(e) = c.handle_input(now, part) {
            result = Err(e);
        }
        while let Some(event) = c.poll_event() {
            if let client::Event::BindUdp { track } = &event {
                if let Err(e) = c.udp_bound(now, *track, port) {
                    result = Err(e);
                }
                port = port.wrapping_add(2);
            }
            if let client::Event::Media { track, payload, .. } = &event {
                let mut framed = BytesMut::new();
                let _ = c.interleave(*track, false, payload, &mut framed);
            }
            events.push(event);
        }
        c.poll_transmit(&mut out);
        if result.is_err() {
            break;
        }
    }
    if let Some(deadline) = c.poll_timeout() {
        assert!(deadline > now, "a deadline already past at the last input");
        let streaming = c.is_streaming();
        c.handle_timeout(deadline);
        let mut sent = BytesMut::new();
        let sent_any = c.poll_transmit(&mut sent);
        assert!(
            c.is_closed() || (streaming && sent_any),
            "the deadline passed and nothing happened"
        );
    }
    c.teardown(now);
    c.poll_transmit(&mut out);
    (events, out.to_vec(), result)
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
/// parsed as the server would. Then the same through a [`Session`], whole and in two halves
/// (which must give the same events and replies), with a driver that answers every question.
pub fn message(data: &[u8]) {
    decoder(data);
    let whole = converse(&[data]);
    let (a, b) = data.split_at(data.len() / 2);
    let halves = converse(&[a, b]);
    if whole.2.is_ok() && halves.2.is_ok() {
        assert_eq!(
            (whole.0, whole.1),
            (halves.0, halves.1),
            "splitting the stream changed the session"
        );
    }
}

/// Feeds `parts` to a session at one second intervals, answering its questions in turn with
/// each kind of answer; returns the events, the replies and the first error. Afterwards the
/// clocks run out, which must end the session.
fn converse(parts: &[&[u8]]) -> (Vec<session::Event>, Vec<u8>, Result<(), crate::Error>) {
    let config = RtspConfig {
        max_message: 4096,
        max_setups: 4,
        ..RtspConfig::default()
    };
    let mut now = Instant::now();
    let mut s = Session::new("f".into(), &config, now);
    let (mut events, mut out, mut result) = (Vec::new(), BytesMut::new(), Ok(()));
    let mut answers = 0u32;
    for part in parts {
        now += Duration::from_secs(1);
        if let Err(e) = s.handle_input(now, part) {
            result = Err(e);
            break;
        }
        while let Some(event) = s.poll_event() {
            answers += 1;
            let answered = match &event {
                session::Event::Describe { .. } if answers % 4 == 3 => {
                    s.auth_required(now, auth::digest_challenge("r", "n"))
                }
                session::Event::Describe { .. } => {
                    s.describe_ok(now, "v=0\r\n", vec!["trackID=0".into(), "trackID=1".into()])
                }
                session::Event::Announce { sdp, .. } => {
                    let controls = sdp::parse(sdp)
                        .map(|t| t.into_iter().map(|t| t.control).collect())
                        .unwrap_or_default();
                    s.announce_ok(now, controls)
                }
                session::Event::Setup { transport, .. } if answers % 5 != 4 => {
                    s.setup_ok(now, transport.clone())
                }
                session::Event::Play { uri, .. } => {
                    let info = RtpInfo {
                        url: uri.clone(),
                        seq: 1,
                        rtptime: 2,
                    };
                    s.play_ok(now, "npt=0.000-", &[info])
                }
                session::Event::Setup { .. } => s.reject(now, 500),
                _ => Ok(()),
            };
            events.push(event);
            if let Err(e) = answered {
                result = Err(e);
            }
        }
        s.poll_transmit(&mut out);
        if result.is_err() {
            break;
        }
    }
    if let Some(deadline) = s.poll_timeout() {
        assert!(deadline > now, "a deadline already past at the last input");
        s.handle_timeout(deadline);
        assert!(s.is_closed(), "the deadline passed and the session goes on");
    }
    s.poll_transmit(&mut out);
    (events, out.to_vec(), result)
}

/// The decoder alone, whole and in two halves, and what the server parses of each request.
fn decoder(data: &[u8]) {
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

/// RTP over TCP as the GB28181 RTP server reads it: the bytes go through the RFC 4571
/// deframer in reads of varying size (the first byte picks the sizes), each packet is parsed and
/// reordered. Every packet out of the reorder must be one that went in, in sequence order.
pub fn rfc4571(data: &[u8]) {
    use crate::reorder::Reorder;
    use crate::rfc4571::Deframer;
    let Some((&step, mut rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let mut deframer = Deframer::new();
    let mut reorder = Reorder::new(16);
    let (mut pushed, mut pulled) = (0u64, 0u64);
    while !rest.is_empty() {
        let take = step.min(rest.len()).min(deframer.room());
        let (chunk, tail) = rest.split_at(take);
        rest = tail;
        if deframer.push(chunk).is_err() {
            return;
        }
        while let Some(packet) = deframer.pull() {
            let Ok(packet) = packet else {
                return;
            };
            if let Ok(p) = Packet::parse(packet) {
                pushed += 1;
                reorder.push(p);
                while reorder.pull().is_some() {
                    pulled += 1;
                }
            }
        }
    }
    assert!(pulled + reorder.dropped() <= pushed);
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

/// The body of a video depacketizer target: `$codec`'s RTP packets cut from the input into its
/// depacketizer, then every access unit out of it re-packetized over a 64-byte MTU and
/// depacketized again, which must give it back.
macro_rules! video_target {
    ($codec:ident, $payload_type:expr, $data:expr) => {{
        let mut d = $codec::Depacketizer::new(&[], 1 << 20);
        let mut events = Vec::new();
        for p in packets($data) {
            d.push(&p);
            events.extend(std::iter::from_fn(|| d.pull()));
        }
        video_round_trip(
            events,
            |ts, au| {
                let mut p = $codec::Packetizer::new(64, $payload_type, 1, 0);
                if p.push(ts, au).is_err() {
                    return Vec::new();
                }
                std::iter::from_fn(|| p.pull()).collect()
            },
            |packets| {
                let mut d = $codec::Depacketizer::new(&[], 1 << 20);
                let mut out = Vec::new();
                for p in packets {
                    d.push(p);
                    out.extend(std::iter::from_fn(|| d.pull()));
                }
                out
            },
        );
    }};
}

/// H.264 RTP packets into the depacketizer.
pub fn h264(data: &[u8]) {
    video_target!(h264, 96, data);
}

/// H.265 RTP packets into the depacketizer.
pub fn h265(data: &[u8]) {
    video_target!(h265, 97, data);
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

/// The ANNOUNCE SDPs `rtsp_demux` picks from with its first byte: what ffmpeg 6.1 sends for
/// libx264 + aac (`-f rtsp`), and two without parameter sets (in-band only) for H.265 + PCMU
/// and H.264 + Opus.
pub const DEMUX_SDPS: [&str; 3] = [
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
     a=tool:libavformat 60.16.100\r\nm=video 0 RTP/AVP 96\r\nb=AS:1000\r\n\
     a=rtpmap:96 H264/90000\r\n\
     a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z2QAH6zZQFAFuwEQAAADABAAAAMDwPGDGWA=,aOvjyyLA; profile-level-id=64001F\r\n\
     a=control:streamid=0\r\nm=audio 0 RTP/AVP 97\r\nb=AS:128\r\n\
     a=rtpmap:97 MPEG4-GENERIC/44100/2\r\n\
     a=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=121056E500\r\n\
     a=control:streamid=1\r\n",
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nt=0 0\r\n\
     m=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\na=control:streamid=0\r\n\
     m=audio 0 RTP/AVP 0\r\na=control:streamid=1\r\n",
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nt=0 0\r\n\
     m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n\
     a=control:streamid=0\r\nm=audio 0 RTP/AVP 97\r\na=rtpmap:97 opus/48000/2\r\n\
     a=control:streamid=1\r\n",
];

/// One `rtsp_demux` record: the packet's track, whether it is RTCP, how many ms after the
/// previous record it arrives (0..=63) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemuxRecord {
    /// Track index (0 or 1).
    pub track: usize,
    /// An RTCP packet rather than RTP.
    pub rtcp: bool,
    /// Arrival after the previous record, in ms (0..=63).
    pub delay_ms: u8,
    /// The packet.
    pub data: Bytes,
}

/// Serialises an `rtsp_demux` input: the SDP selector, then per record a flags byte (bit 0
/// track, bits 1-6 delay, bit 7 RTCP), a u16 length and the packet.
pub fn demux_records(sdp_index: u8, records: &[DemuxRecord]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u8(sdp_index);
    for r in records {
        let len = r.data.len().min(usize::from(u16::MAX));
        out.put_u8((r.track & 1) as u8 | ((r.delay_ms & 0x3f) << 1) | (u8::from(r.rtcp) << 7));
        out.put_u16(len as u16);
        out.put_slice(r.data.get(..len).unwrap_or_default());
    }
    out.to_vec()
}

/// A publisher's RTP and RTCP into a [`Demuxer`] built from an ffmpeg-like SDP; per track the
/// frames' timestamps never decrease and video frames are well-formed AVCC. Every event is
/// then fed to a [`Muxer`], whose packets must parse.
pub fn demux(data: &[u8]) {
    demux_events(data);
}

/// The body of [`demux`], returning the demuxer's events (for the seed tests).
pub fn demux_events(data: &[u8]) -> Vec<DemuxEvent> {
    let mut events = Vec::new();
    let Some((&selector, mut rest)) = data.split_first() else {
        return events;
    };
    let sdp_text = DEMUX_SDPS
        .get(usize::from(selector) % DEMUX_SDPS.len())
        .copied()
        .unwrap_or_default();
    let Ok(tracks) = sdp::parse(sdp_text.as_bytes()) else {
        panic!("fuzz SDP does not parse");
    };
    let config = RtspConfig {
        max_rtp_payload: 200,
        max_access_unit: 1 << 20,
        ..RtspConfig::default()
    };
    let mut demuxer = Demuxer::new(&tracks, &config);
    let infos: Vec<_> = tracks.iter().map(|t| t.info.clone()).collect();
    let mut muxer = Muxer::new(&infos, &config, std::time::Duration::from_secs(1), 1);
    let mut last_dts = [0u64; 2];
    let mut arrival = 0u64;
    let mut check = |demuxer: &mut Demuxer, muxer: &mut Muxer| {
        while let Some(event) = demuxer.pull() {
            events.push(event.clone());
            match event {
                DemuxEvent::Track(info) => muxer.update_track(&info),
                DemuxEvent::Frame(frame) => {
                    let slot = usize::from(frame.kind() != media::TrackKind::Video);
                    if let Some(last) = last_dts.get_mut(slot) {
                        assert!(frame.dts >= *last, "dts went back");
                        *last = frame.dts;
                    }
                    assert_eq!(frame.cts, 0);
                    if frame.kind() == media::TrackKind::Video {
                        assert!(nal::split_avcc(&frame.data).is_ok(), "bad AVCC");
                    }
                    muxer.push(&frame);
                    while let Some(p) = muxer.pull() {
                        if p.rtcp {
                            assert!(rtp::parse_rtcp(&p.data).is_ok(), "muxer RTCP");
                        } else {
                            assert!(Packet::parse(p.data).is_ok(), "muxer RTP");
                        }
                    }
                }
            }
        }
    };
    check(&mut demuxer, &mut muxer);
    while let Some((&flags, tail)) = rest.split_first() {
        let Some(len) = tail
            .get(..2)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        else {
            break;
        };
        let end = (2 + len).min(tail.len());
        let packet = tail.get(2..end).unwrap_or_default();
        rest = tail.get(end..).unwrap_or_default();
        let track = usize::from(flags & 1);
        arrival += u64::from((flags >> 1) & 0x3f);
        let result = if flags & 0x80 != 0 {
            demuxer.push_rtcp(track, packet)
        } else {
            demuxer.push(track, Bytes::copy_from_slice(packet), arrival)
        };
        if result.is_err() {
            // An error changes nothing: no event may follow it.
            assert!(demuxer.pull().is_none(), "event after an error");
        }
        check(&mut demuxer, &mut muxer);
    }
    events
}
