//! Fuzz target bodies, shared by `fuzz/fuzz_targets/rtmp_*.rs` (cargo-fuzz, nightly) and
//! `tests/fuzz_corpus.rs` (stable replay of the committed corpus). Each must never panic.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::amf0;
use crate::chunk::{Decoder, Limits};
use crate::client;
use crate::flv::{self, DemuxEvent, Demuxer, FlvReader, FlvStream, Muxer};
use crate::handshake::{ClientHandshake, Scheme, ServerHandshake, PACKET_SIZE, RANDOM_SIZE};
use crate::message::{split_aggregate, Command, UserControl};
use crate::server;

/// The fuzz targets, named as in `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: [&str; 4] = ["rtmp_handshake", "rtmp_chunk", "rtmp_amf0", "rtmp_flv_tag"];

/// Runs the body of the fuzz target called `target` (one of [`TARGETS`]).
pub fn run(target: &str, data: &[u8]) {
    match target {
        "rtmp_handshake" => handshake(data),
        "rtmp_chunk" => chunk(data),
        "rtmp_amf0" => amf0(data),
        "rtmp_flv_tag" => flv_tag(data),
        _ => {}
    }
}

/// Small limits so the fuzzer explores limit paths instead of allocating.
fn limits() -> Limits {
    Limits {
        max_message_len: 1 << 16,
        max_control_len: 1 << 12,
        max_chunk_size: 1 << 16,
        max_chunk_streams: 8,
        max_buffered: 1 << 17,
    }
}

fn server_config() -> server::Config {
    server::Config {
        max_message_len: 1 << 16,
        max_chunk_size: 1 << 16,
        max_chunk_streams: 8,
        max_streams: 4,
        ..server::Config::default()
    }
}

/// A plain C0C1C2 that completes a server handshake.
pub fn plain_handshake() -> Vec<u8> {
    let mut v = vec![0; 1 + 2 * PACKET_SIZE];
    v[0] = crate::handshake::RTMP_VERSION;
    v
}

/// Handshake bytes from the peer, for both sides.
pub fn handshake(data: &[u8]) {
    let mut out = BytesMut::new();
    let mut server = ServerHandshake::new([0; RANDOM_SIZE]);
    let _ = server.handle_input(data, &mut out);
    for scheme in [None, Some(Scheme::Digest0), Some(Scheme::Digest1)] {
        let mut client = ClientHandshake::new([0; RANDOM_SIZE], scheme, &mut out);
        let _ = client.handle_input(data, &mut out);
    }
    let now = Instant::now();
    let mut session = server::Session::new(server_config(), [0; RANDOM_SIZE], now);
    let _ = session.handle_input(now, data);
    while session.poll_event().is_some() {}
    // Whatever state the bytes left, the clock must run out without a panic.
    if let Some(deadline) = session.poll_timeout() {
        session.handle_timeout(deadline);
        while session.poll_event().is_some() {}
    }
}

/// Chunk stream bytes: through a bare decoder, and into server and client sessions whose
/// handshakes completed.
pub fn chunk(data: &[u8]) {
    let mut decoder = Decoder::new(limits());
    decoder.push(data);
    while let Ok(Some(_)) = decoder.poll_message() {}

    let mut now = Instant::now();
    let mut session = server::Session::new(server_config(), [0; RANDOM_SIZE], now);
    let _ = session.handle_input(now, &plain_handshake());
    // Two halves a second apart, answering requests in between, to reach the accepted-stream
    // states; then the clock runs out.
    let (a, b) = data.split_at(data.len() / 2);
    let mut out = BytesMut::new();
    for part in [a, b] {
        now += Duration::from_secs(1);
        if session.handle_input(now, part).is_err() {
            break;
        }
        while let Some(ev) = session.poll_event() {
            match ev {
                server::Event::PublishRequested { stream_id, .. } => {
                    session.accept_publish(now, stream_id)
                }
                server::Event::PlayRequested { stream_id, .. } => {
                    session.accept_play(now, stream_id);
                    session.send_video(stream_id, 0, &Bytes::from_static(&[0x17, 0, 0, 0, 0]));
                    session.send_eof(stream_id);
                }
                _ => {}
            }
        }
        let _ = session.poll_transmit(&mut out);
        out.clear();
    }
    if let Some(deadline) = session.poll_timeout() {
        assert!(deadline > now, "a deadline already past at the last input");
        session.handle_timeout(deadline);
        let timed_out = std::iter::from_fn(|| session.poll_event())
            .any(|e| matches!(e, server::Event::TimedOut { .. }));
        assert!(timed_out, "a deadline that passed without a timeout");
    }

    let mut c = client::Session::new(client::Config::default(), [0; RANDOM_SIZE]);
    c.connect("live", "rtmp://fuzz/live");
    c.play("x");
    let mut c0c1 = BytesMut::new();
    let _ = c.poll_transmit(&mut c0c1);
    let mut s_out = BytesMut::new();
    let mut hs = ServerHandshake::new([1; RANDOM_SIZE]);
    if hs.handle_input(&c0c1, &mut s_out).is_ok() && c.handle_input(&s_out).is_ok() {
        let _ = c.handle_input(data);
        while c.poll_event().is_some() {}
    }
}

/// AMF0 values: decode, and when that works, encode and decode again to the same bytes.
pub fn amf0(data: &[u8]) {
    if let Ok((v, used)) = amf0::decode(data) {
        assert!(used <= data.len());
        let mut first = BytesMut::new();
        amf0::encode(&v, &mut first);
        let Ok((again, used)) = amf0::decode(&first) else {
            panic!("re-encoded value does not decode: {v:?}");
        };
        assert_eq!(used, first.len());
        let mut second = BytesMut::new();
        amf0::encode(&again, &mut second);
        assert_eq!(first, second, "AMF0 round trip changed {v:?}");
    }
    let _ = amf0::decode_all(data);
    let _ = Command::parse(data);
    let _ = UserControl::parse(data);
    let _ = split_aggregate(&Bytes::copy_from_slice(data), 0);
}

/// FLV tag bodies and files: header parsing, the demuxer (whose frames must survive a mux and
/// demux round trip) and the file reader.
pub fn flv_tag(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    let _ = flv::parse_video(data);
    let _ = flv::parse_audio(data);
    let mut demuxer = Demuxer::new();
    let mut muxer = Muxer::default();
    let video = demuxer.push_video(1000, &body);
    let audio = demuxer
        .push_audio(1000, &body)
        .map(|ev| (ev, demuxer.pull()));
    let events = video.ok().flatten().into_iter().chain(
        audio
            .ok()
            .into_iter()
            .flat_map(|(a, b)| a.into_iter().chain(b)),
    );
    for ev in events {
        match ev {
            DemuxEvent::Track(t) => {
                let _ = muxer.sequence_header(&t);
            }
            DemuxEvent::Frame { frame, data_offset } => {
                assert_eq!(body.get(data_offset..), Some(&frame.data[..]));
                let remuxed = muxer.frame(&frame);
                let mut d = Demuxer::new();
                let back = if frame.kind() == media::TrackKind::Video {
                    d.push_video(1000, &remuxed)
                } else {
                    d.push_audio(1000, &remuxed)
                };
                let back = match back {
                    Ok(Some(DemuxEvent::Track(_))) => d.pull(),
                    other => other.ok().flatten(),
                };
                match back {
                    Some(DemuxEvent::Frame { frame: f, .. }) => assert_eq!(f, frame),
                    other => panic!("remuxed {frame:?} demuxed to {other:?}"),
                }
            }
        }
    }
    if let Ok(reader) = FlvReader::new(body.clone()) {
        for tag in reader.take(10_000) {
            let Ok(tag) = tag else { break };
            let _ = match tag.tag_type {
                flv::TAG_VIDEO => demuxer.push_video(tag.timestamp, &tag.body),
                flv::TAG_AUDIO => demuxer.push_audio(tag.timestamp, &tag.body),
                _ => Ok(None),
            };
        }
        // The same bytes as an HTTP-FLV body arriving in pieces give the same tags (a prefix
        // of them: the stream reader bounds the header's data offset and the tag size).
        let whole: Vec<_> = FlvReader::new(body.clone())
            .map(|r| r.take(10_000).map_while(Result::ok).collect())
            .unwrap_or_default();
        let mut stream = FlvStream::new(1 << 16);
        let mut streamed = Vec::new();
        'feed: for piece in data.chunks(7) {
            stream.push(piece);
            loop {
                match stream.next_tag() {
                    Ok(Some(tag)) => streamed.push(tag),
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
        }
        for (a, b) in streamed.iter().zip(&whole) {
            assert_eq!(a, b);
        }
    }
}
