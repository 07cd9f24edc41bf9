//! A real publish captured from ffmpeg 5.1 (tests/data/ffmpeg5_publish_h264_aac.md) fed to the
//! server session whole, split at many offsets and byte by byte.

mod common;

use std::fmt::Write as _;

use common::{replay, FFMPEG_PUBLISH};
use media::Codec;
use rtmp::amf0;
use rtmp::chunk::{Decoder, Limits};
use rtmp::flv::{self, DemuxEvent, Demuxer};
use rtmp::handshake::{Kind, Scheme, ServerHandshake, PACKET_SIZE, RANDOM_SIZE};
use rtmp::message::{self, Command};
use rtmp::server::Event;

fn counts(events: &[Event]) -> (usize, usize) {
    let audio = events
        .iter()
        .filter(|e| matches!(e, Event::Audio { .. }))
        .count();
    let video = events
        .iter()
        .filter(|e| matches!(e, Event::Video { .. }))
        .count();
    (audio, video)
}

#[test]
fn ffmpeg_publish_is_understood() {
    let events = replay([FFMPEG_PUBLISH]);
    assert_eq!(
        events[0],
        Event::Connect {
            app: "live".into(),
            tc_url: "rtmp://127.0.0.1:19352/live".into()
        }
    );
    assert_eq!(
        events[1],
        Event::PublishRequested {
            stream_id: 1,
            app: "live".into(),
            name: "cap".into(),
            query: "token=abc".into(),
            publish_type: "live".into(),
        }
    );
    let Event::Metadata { data, .. } = &events[2] else {
        panic!("{:?}", events[2]);
    };
    let meta = amf0::decode_all(data).expect("metadata decodes");
    assert_eq!(meta[0].as_str(), Some("onMetaData"));
    assert_eq!(
        meta[1].get("width").and_then(amf0::Value::as_f64),
        Some(320.0)
    );
    assert_eq!(events.last(), Some(&Event::Unpublished { stream_id: 1 }));

    let mut demuxer = Demuxer::new();
    let mut tracks = Vec::new();
    let mut frames = 0;
    for e in &events {
        let r = match e {
            Event::Audio {
                timestamp, payload, ..
            } => demuxer.push_audio(*timestamp, payload),
            Event::Video {
                timestamp, payload, ..
            } => demuxer.push_video(*timestamp, payload),
            _ => continue,
        };
        match r.expect("demuxes") {
            Some(DemuxEvent::Track(t)) => tracks.push(t),
            Some(DemuxEvent::Frame { .. }) => frames += 1,
            None => {}
        }
    }
    let video = tracks
        .iter()
        .find(|t| t.codec == Codec::H264)
        .expect("H.264 track");
    assert_eq!((video.width, video.height), (320, 240));
    let audio = tracks
        .iter()
        .find(|t| t.codec == Codec::Aac)
        .expect("AAC track");
    assert_eq!((audio.sample_rate, audio.channels), (44100, 1));
    let (a, v) = counts(&events);
    assert!(a > 50 && v > 30, "{a} audio, {v} video");
    // Every message is a frame but the two sequence headers and the AVC end of sequence.
    assert_eq!(frames, a + v - 3);
}

#[test]
fn ffmpeg_c1_carries_a_scheme_0_digest() {
    let mut hs = ServerHandshake::new([0; RANDOM_SIZE]);
    let mut out = bytes::BytesMut::new();
    let used = hs
        .handle_input(&FFMPEG_PUBLISH[..1 + PACKET_SIZE], &mut out)
        .expect("C0C1");
    assert_eq!(used, 1 + PACKET_SIZE);
    assert_eq!(hs.kind(), Some(Kind::Digest(Scheme::Digest0)));
}

/// The capture split in two at every byte offset, plus fed byte by byte once. (About 2 s: the
/// workspace builds `rtmp` and `sha2` optimised even in dev/test profiles for this.)
#[test]
fn ffmpeg_publish_split_anywhere() {
    let expected = replay([FFMPEG_PUBLISH]);
    for at in 0..=FFMPEG_PUBLISH.len() {
        let (a, b) = FFMPEG_PUBLISH.split_at(at);
        let got = replay([a, b]);
        assert_eq!(counts(&got), counts(&expected), "split at {at}");
        assert_eq!(got, expected, "split at {at}");
    }
    assert_eq!(replay(FFMPEG_PUBLISH.chunks(1)), expected, "byte by byte");
}

/// One line per message of the capture; kept in the provenance file and checked here, so the
/// description cannot drift from the bytes. `UPDATE_GOLDEN=1` rewrites it.
#[test]
fn provenance_lists_every_message() {
    let mut dec = Decoder::new(Limits::default());
    dec.push(&FFMPEG_PUBLISH[1 + 2 * PACKET_SIZE..]);
    let mut list = String::from("```text\ncsid type msid      time    len  content\n");
    while let Some(m) = dec.poll_message().expect("decodes") {
        let what = match m.type_id {
            message::COMMAND_AMF0 => {
                let c = Command::parse(&m.payload).expect("command");
                let args: Vec<String> = c.args.iter().map(|a| format!("{a:?}")).collect();
                format!(
                    "command {} #{} {}",
                    c.name,
                    c.transaction_id,
                    args.join(" ")
                )
            }
            message::DATA_AMF0 => {
                let v = amf0::decode_all(&m.payload).expect("data");
                let names: Vec<&str> = v.iter().filter_map(amf0::Value::as_str).collect();
                format!("data {}", names.join(" "))
            }
            message::AUDIO => {
                let t = flv::parse_audio(&m.payload).expect("audio");
                format!("audio {:?} {:?}", t.codec, t.packet)
            }
            message::VIDEO => {
                let t = flv::parse_video(&m.payload).expect("video");
                format!(
                    "video {:?} {:?} frame type {} cts {}",
                    t.codec, t.packet, t.frame_type, t.cts
                )
            }
            message::SET_CHUNK_SIZE | message::WINDOW_ACK_SIZE => {
                let v = u32::from_be_bytes(m.payload[..4].try_into().expect("4 bytes"));
                let name = if m.type_id == message::SET_CHUNK_SIZE {
                    "Set Chunk Size"
                } else {
                    "Window Ack Size"
                };
                format!("{name} {v}")
            }
            t => format!("type {t}"),
        };
        let _ = writeln!(
            list,
            "{:4} {:4} {:4} {:9} {:6}  {}",
            m.csid,
            m.type_id,
            m.stream_id,
            m.timestamp,
            m.payload.len(),
            what
        );
    }
    list.push_str("```\n");

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/ffmpeg5_publish_h264_aac.md"
    );
    let doc = std::fs::read_to_string(path).expect("provenance file");
    const START: &str = "<!-- messages: generated by tests/ffmpeg5_publish.rs -->\n";
    const END: &str = "<!-- end of messages -->";
    let (head, rest) = doc.split_once(START).expect("start marker");
    let (old, tail) = rest.split_once(END).expect("end marker");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, format!("{head}{START}{list}{END}{tail}")).expect("write");
    } else {
        assert!(
            old == list,
            "message list changed; rerun with UPDATE_GOLDEN=1"
        );
    }
}
