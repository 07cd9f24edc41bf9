//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) and any past crashes
//! (`fuzz/regressions/<target>/`) through the same functions the cargo-fuzz targets call, on
//! stable Rust. `UPDATE_GOLDEN=1` rewrites the seed files this test generates.

mod common;

use bytes::{BufMut, BytesMut};
use common::{ffmpeg_tags, publish_tags, Pair, FFMPEG_FLV, FFMPEG_PUBLISH};
use rtmp::amf0::{self, Value};
use rtmp::chunk::{Encoder, Header};
use rtmp::handshake::{ClientHandshake, Scheme, ServerHandshake, PACKET_SIZE, RANDOM_SIZE};
use rtmp::{client, flv, fuzzing};

#[test]
fn corpus_replays_without_panic() {
    fuzzkit::replay(&fuzzing::TARGETS, fuzzing::run);
}

/// Writes the seed corpus when `UPDATE_GOLDEN=1`; otherwise checks the generated seeds are
/// still what is committed (so a format change cannot silently stale the corpus).
#[test]
fn seed_corpus_is_current() {
    fuzzkit::check_seeds(seeds());
}

fn amf(values: &[Value]) -> Vec<u8> {
    let mut b = BytesMut::new();
    for v in values {
        amf0::encode(v, &mut b);
    }
    b.to_vec()
}

fn chunks(messages: &[(u32, u32, u8, u32, Vec<u8>)], chunk_size: u32) -> Vec<u8> {
    let mut enc = Encoder::new();
    enc.set_chunk_size(chunk_size);
    let mut out = BytesMut::new();
    for (csid, timestamp, type_id, stream_id, payload) in messages {
        let h = Header {
            csid: *csid,
            timestamp: *timestamp,
            type_id: *type_id,
            stream_id: *stream_id,
        };
        enc.write(&mut out, h, payload).expect("encodes");
    }
    out.to_vec()
}

/// Every seed: (target, file name, bytes). Valid inputs come from real captures and from our
/// own sessions; malformed ones are named for the fault.
fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let handshake_len = 1 + 2 * PACKET_SIZE;
    let mut seeds = Vec::new();

    // Handshakes.
    seeds.push((
        "rtmp_handshake",
        "ffmpeg5_c0c1c2.bin",
        FFMPEG_PUBLISH[..handshake_len].to_vec(),
    ));
    seeds.push((
        "rtmp_handshake",
        "plain_c0c1c2.bin",
        fuzzing::plain_handshake(),
    ));
    for (name, scheme) in [
        ("digest0_c0c1.bin", Scheme::Digest0),
        ("digest1_c0c1.bin", Scheme::Digest1),
    ] {
        let mut c0c1 = BytesMut::new();
        ClientHandshake::new([0x5a; RANDOM_SIZE], Some(scheme), &mut c0c1);
        let mut s0s1s2 = BytesMut::new();
        ServerHandshake::new([0xa5; RANDOM_SIZE])
            .handle_input(&c0c1, &mut s0s1s2)
            .expect("S0S1S2");
        seeds.push(("rtmp_handshake", name, c0c1.to_vec()));
        if scheme == Scheme::Digest0 {
            seeds.push(("rtmp_handshake", "digest0_s0s1s2.bin", s0s1s2.to_vec()));
        }
    }
    seeds.push((
        "rtmp_handshake",
        "bad_rtmpe_version.bin",
        vec![0x06, 0, 0, 0, 0],
    ));
    seeds.push((
        "rtmp_handshake",
        "bad_truncated_c1.bin",
        FFMPEG_PUBLISH[..700].to_vec(),
    ));

    // Chunk streams (fed after a completed handshake).
    seeds.push((
        "rtmp_chunk",
        "ffmpeg5_publish_head.bin",
        FFMPEG_PUBLISH[handshake_len..handshake_len + 6000].to_vec(),
    ));
    let tags: Vec<_> = ffmpeg_tags().into_iter().take(6).collect();
    let config = client::Config {
        chunk_size: 128,
        enhanced_rtmp: true,
        ..client::Config::default()
    };
    let mut pair = Pair::new(config, rtmp::server::Config::default());
    publish_tags(&mut pair, "cam?token=abc", &tags);
    pair.client.delete_stream();
    pair.pump_accept();
    seeds.push((
        "rtmp_chunk",
        "client_publish.bin",
        pair.client_bytes[handshake_len..].to_vec(),
    ));
    let mut player = Pair::default_pair();
    player.client.connect("live", "rtmp://h/live");
    player.client.play("cam");
    player.pump_accept();
    seeds.push((
        "rtmp_chunk",
        "client_play.bin",
        player.client_bytes[handshake_len..].to_vec(),
    ));
    let header_types = chunks(
        &[
            (6, 0, 8, 1, vec![0xaf, 1, 0x21]),
            (6, 23, 8, 1, vec![0xaf, 1, 0x22]),
            (6, 46, 8, 1, vec![0xaf, 1, 0x23]),
            (6, 69, 8, 1, vec![0xaf, 1, 0x24, 0x25]),
            (7, 0x0100_0000, 9, 1, vec![0x27; 300]),
            (7, 0x0200_0000, 9, 1, vec![0x27; 300]),
            (
                320,
                5,
                0x12,
                1,
                amf(&[Value::string("onMetaData"), Value::EcmaArray(vec![])]),
            ),
        ],
        128,
    );
    seeds.push(("rtmp_chunk", "all_header_types.bin", header_types));
    seeds.push((
        "rtmp_chunk",
        "bad_chunk_size_0x7fffffff.bin",
        vec![
            0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff,
        ],
    ));
    seeds.push((
        "rtmp_chunk",
        "bad_fmt1_first.bin",
        vec![0x43, 0, 0, 0, 0, 0, 4, 0x14, 1, 2, 3, 4],
    ));
    seeds.push((
        "rtmp_chunk",
        "bad_message_length.bin",
        vec![0x06, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0],
    ));

    // AMF0 values.
    let connect = Value::object([
        ("app", Value::string("live")),
        ("tcUrl", Value::string("rtmp://127.0.0.1/live")),
        (
            "fourCcList",
            Value::StrictArray(vec![Value::string("hvc1"), Value::string("avc1")]),
        ),
        ("objectEncoding", Value::Number(0.0)),
        ("fpad", Value::Boolean(false)),
        ("nothing", Value::Null),
        ("undef", Value::Undefined),
    ]);
    seeds.push(("rtmp_amf0", "connect_object.bin", amf(&[connect])));
    seeds.push((
        "rtmp_amf0",
        "ecma_array.bin",
        amf(&[Value::EcmaArray(vec![(
            "width".into(),
            Value::Number(320.0),
        )])]),
    ));
    seeds.push((
        "rtmp_amf0",
        "date_and_long_string.bin",
        amf(&[Value::Date(1.7e12), Value::LongString("x".repeat(300))]),
    ));
    seeds.push((
        "rtmp_amf0",
        "publish_command.bin",
        amf(&[
            Value::string("publish"),
            Value::Number(5.0),
            Value::Null,
            Value::string("cam"),
            Value::string("live"),
        ]),
    ));
    seeds.push((
        "rtmp_amf0",
        "bad_deep_nesting.bin",
        [0x0a, 0, 0, 0, 1].repeat(70),
    ));
    seeds.push((
        "rtmp_amf0",
        "bad_huge_count.bin",
        vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x05],
    ));
    seeds.push((
        "rtmp_amf0",
        "bad_reference_marker.bin",
        vec![0x07, 0x00, 0x01],
    ));
    seeds.push((
        "rtmp_amf0",
        "ecma_without_end.bin",
        vec![0x08, 0, 0, 0, 1, 0, 1, b'a', 0x05],
    ));
    let meta = FFMPEG_PUBLISH
        .windows(13)
        .position(|w| w == b"@setDataFrame")
        .expect("metadata");
    seeds.push((
        "rtmp_amf0",
        "ffmpeg5_metadata.bin",
        FFMPEG_PUBLISH[meta - 3..meta + 306].to_vec(),
    ));

    // FLV tag bodies and files.
    let all = ffmpeg_tags();
    let first = |t: u8, skip: usize| {
        all.iter()
            .filter(|x| x.0 == t)
            .nth(skip)
            .expect("tag")
            .2
            .to_vec()
    };
    seeds.push((
        "rtmp_flv_tag",
        "ffmpeg5_avc_sequence_header.bin",
        first(9, 0),
    ));
    seeds.push(("rtmp_flv_tag", "ffmpeg5_avc_inter_frame.bin", first(9, 3)));
    seeds.push((
        "rtmp_flv_tag",
        "ffmpeg5_aac_sequence_header.bin",
        first(8, 0),
    ));
    seeds.push(("rtmp_flv_tag", "ffmpeg5_aac_frame.bin", first(8, 1)));
    let mut small_flv = BytesMut::new();
    small_flv.put_slice(&flv::file_header(true, true));
    for (t, ts, body) in all.iter().filter(|t| t.2.len() < 600).take(8) {
        flv::write_tag(&mut small_flv, *t, *ts, body);
    }
    seeds.push(("rtmp_flv_tag", "small_file.flv", small_flv.to_vec()));
    let hvcc = [
        0x01, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x5d, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0,
        0, 0x0f, 0,
    ];
    let mut hvc1_seq = vec![0x90, b'h', b'v', b'c', b'1'];
    hvc1_seq.extend_from_slice(&hvcc);
    seeds.push(("rtmp_flv_tag", "hvc1_sequence_start.bin", hvc1_seq));
    seeds.push((
        "rtmp_flv_tag",
        "hvc1_coded_frames.bin",
        vec![
            0xa1, b'h', b'v', b'c', b'1', 0, 0, 0x28, 0, 0, 0, 2, 0x02, 0x01,
        ],
    ));
    seeds.push((
        "rtmp_flv_tag",
        "hvc1_coded_frames_x.bin",
        vec![0x93, b'h', b'v', b'c', b'1', 0, 0, 0, 2, 0x26, 0x01],
    ));
    seeds.push((
        "rtmp_flv_tag",
        "hevc_codec_id_12.bin",
        vec![0x1c, 0x01, 0, 0, 0x28, 0, 0, 0, 2, 0x26, 0x01],
    ));
    seeds.push(("rtmp_flv_tag", "g711a.bin", vec![0x72, 0xd5, 0xd5, 0xd5]));
    seeds.push((
        "rtmp_flv_tag",
        "mp3.bin",
        vec![0x2f, 0xff, 0xfb, 0x90, 0x64],
    ));
    seeds.push((
        "rtmp_flv_tag",
        "opus_sequence_start.bin",
        [
            &[0x90][..],
            b"Opus",
            b"OpusHead\x01\x02\x38\x01\x80\xbb\0\0\0\0\0",
        ]
        .concat(),
    ));
    seeds.push((
        "rtmp_flv_tag",
        "mp4a_coded_frames.bin",
        [&[0x91][..], b"mp4a", &[0x21, 0x10, 0x04]].concat(),
    ));
    seeds.push((
        "rtmp_flv_tag",
        "bad_av01.bin",
        vec![0x90, b'a', b'v', b'0', b'1', 0x81],
    ));
    seeds.push((
        "rtmp_flv_tag",
        "bad_multitrack.bin",
        vec![0x96, 0x00, b'h', b'v', b'c', b'1', 0, 0, 0],
    ));
    seeds.push((
        "rtmp_flv_tag",
        "bad_truncated_flv.flv",
        FFMPEG_FLV[..40].to_vec(),
    ));
    seeds
}
