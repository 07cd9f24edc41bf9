//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) and any past crashes
//! (`fuzz/regressions/<target>/`) through the same functions the cargo-fuzz targets call, on
//! stable Rust. `UPDATE_GOLDEN=1` rewrites the seed files this test generates.

use bytes::{BufMut, Bytes, BytesMut};
use hls::fuzzing::{self, read_all};
use hls::ts::PACKET_SIZE;
use hls::{Error, TsMuxer};
use media::{avc, hevc, Codec, Frame, TrackInfo};

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

/// The valid seeds read cleanly and give PES; each `bad_` seed gives the error it is named for.
#[test]
fn seeds_reach_what_they_were_made_for() {
    for (target, name, data) in seeds() {
        if target == "hls_es" {
            es_seed_reaches(name, &data);
            continue;
        }
        if target == "hls_m3u8" {
            assert!(hls::m3u8::parse(&data).is_ok(), "{name}");
            continue;
        }
        let (pes, errors) = read_all([&data[..]]);
        match name {
            // The counter jumps there and back: one error from the push, one from the last
            // packet, which waits for finish.
            "bad_cc_jump.ts" => assert!(
                !errors.is_empty()
                    && errors
                        .iter()
                        .all(|e| matches!(e, Error::ProtocolViolation { context, .. }
                        if context.contains("continuity"))),
                "{errors:?}"
            ),
            "bad_pmt_crc.ts" => assert!(
                matches!(errors[..], [Error::ProtocolViolation { context, .. }, ..]
                    if context.contains("CRC")),
                "{errors:?}"
            ),
            "bad_truncated.ts" => assert!(
                matches!(errors.last(), Some(Error::Malformed { .. })),
                "{errors:?}"
            ),
            _ => {
                assert!(errors.is_empty(), "{name}: {errors:?}");
                assert!(!pes.is_empty(), "{name}");
            }
        }
    }
}

const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
    0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60,
];
const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
const VPS_265: &[u8] = &[
    0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03,
    0x00, 0x00, 0x03, 0x00, 0x3c, 0x95, 0x98, 0x09,
];
const SPS_265: &[u8] = &[
    0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03,
    0x00, 0x3c, 0xa0, 0x0b, 0x08, 0x04, 0x85, 0x96, 0x56, 0x69, 0x24, 0xca, 0xf0, 0x16, 0x80, 0x80,
    0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x0c, 0x84,
];
const PPS_265: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];

fn avcc(nals: &[&[u8]]) -> Bytes {
    let mut b = BytesMut::new();
    for n in nals {
        b.put_u32(n.len() as u32);
        b.put_slice(n);
    }
    b.freeze()
}

fn body(first: u8, len: usize) -> Vec<u8> {
    let mut v = vec![first];
    v.extend((0..len).map(|i| (i * 13 % 251) as u8));
    v
}

fn frame(codec: Codec, dts: u64, cts: i32, keyframe: bool, data: Bytes) -> Frame {
    Frame {
        codec,
        dts,
        cts,
        keyframe,
        data,
    }
}

/// What our muxer writes for `frames` of `tracks`.
fn mux(tracks: &[TrackInfo], frames: &[Frame]) -> Vec<u8> {
    let mut m = TsMuxer::new(tracks);
    let mut out = BytesMut::new();
    for f in frames {
        m.push(f, &mut out);
    }
    out.to_vec()
}

/// Every seed: (target, file name, bytes), all written by our own muxer; malformed ones are
/// named for the fault.
fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let t = "hls_ts_reader";
    let h264 = TrackInfo::new(
        Codec::H264,
        avc::DecoderConfig::build(SPS, &[PPS]).expect("avcC"),
    );
    let aac = TrackInfo::new(Codec::Aac, Bytes::from_static(&[0x12, 0x10]));
    let av = [h264.clone(), aac.clone()];
    let idr = body(0x65, 60);
    let mut seeds = Vec::new();

    let keyframe_and_audio = mux(
        &av,
        &[
            frame(Codec::H264, 0, 80, true, avcc(&[&idr])),
            frame(Codec::Aac, 10, 0, true, Bytes::from(body(0x21, 40))),
        ],
    );
    seeds.push((t, "h264_aac_keyframe.ts", keyframe_and_audio.clone()));

    // I P B B in decode order, as x264 with -bf 2 orders them.
    let b_frames = mux(
        std::slice::from_ref(&h264),
        &[
            frame(Codec::H264, 0, 40, true, avcc(&[&idr])),
            frame(Codec::H264, 40, 120, false, avcc(&[&body(0x41, 30)])),
            frame(Codec::H264, 80, 0, false, avcc(&[&body(0x01, 10)])),
            frame(Codec::H264, 120, 0, false, avcc(&[&body(0x01, 10)])),
        ],
    );
    seeds.push((t, "h264_b_frames.ts", b_frames));

    let h265 = TrackInfo::new(
        Codec::H265,
        hevc::DecoderConfig::build(VPS_265, SPS_265, PPS_265).expect("hvcC"),
    );
    let mut irap = vec![0x26, 0x01];
    irap.extend(body(0xaf, 40));
    seeds.push((
        t,
        "h265_keyframe.ts",
        mux(&[h265], &[frame(Codec::H265, 0, 0, true, avcc(&[&irap]))]),
    ));

    let audio: Vec<Frame> = (0..3)
        .map(|i| frame(Codec::Aac, i * 23, 0, true, Bytes::from(body(0x21, 20))))
        .collect();
    seeds.push((t, "aac_only.ts", mux(&[aac], &audio)));

    seeds.push((
        t,
        "h264_large_frame.ts",
        mux(
            &av,
            &[frame(Codec::H264, 0, 0, true, avcc(&[&body(0x65, 1000)]))],
        ),
    ));

    // The continuity counter of the second video packet jumps.
    let mut cc_jump = mux(
        &av,
        &[frame(Codec::H264, 0, 0, true, avcc(&[&body(0x65, 400)]))],
    );
    if let Some(b) = cc_jump.get_mut(3 * PACKET_SIZE + 3) {
        *b = (*b & 0xf0) | ((*b + 5) & 0x0f);
    }
    seeds.push((t, "bad_cc_jump.ts", cc_jump));

    // A PMT whose CRC does not match (one bit of the PCR PID flipped).
    let mut bad_crc = keyframe_and_audio.clone();
    if let Some(b) = bad_crc.get_mut(PACKET_SIZE + 5 + 9) {
        *b ^= 0x01;
    }
    seeds.push((t, "bad_pmt_crc.ts", bad_crc));

    let cut = keyframe_and_audio.len() - 100;
    seeds.push((t, "bad_truncated.ts", keyframe_and_audio[..cut].to_vec()));
    seeds.extend(es_seeds());
    seeds.extend(m3u8_seeds());
    seeds
}

/// Seeds of `hls_m3u8`: what our own writer renders, and the shapes other servers write
/// (ffmpeg's own live and VOD playlists are committed beside them as `ffmpeg_*.m3u8`).
fn m3u8_seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let t = "hls_m3u8";
    let mut p = hls::Playlist::new(hls::PlaylistConfig::default());
    for i in 0..4 {
        p.start_segment(format!("{i}.ts"));
        p.end_segment(2000 + i);
    }
    let master = "#EXTM3U\n\
        #EXT-X-STREAM-INF:BANDWIDTH=1280000,RESOLUTION=640x360,CODECS=\"avc1.4d401e,mp4a.40.2\"\n\
        low/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=5000000\nhttp://h/high.m3u8\n";
    let vod = "#EXTM3U\r\n#EXT-X-TARGETDURATION:4\r\n#EXT-X-MEDIA-SEQUENCE:7\r\n\
        #EXT-X-KEY:METHOD=NONE\r\n#EXTINF:4.000,\r\na.ts\r\n#EXT-X-DISCONTINUITY\r\n\
        #EXTINF:3.5,title\r\n#EXT-X-BYTERANGE:100@0\r\nb.ts\r\n#EXT-X-ENDLIST\r\n";
    vec![
        (t, "own_live.m3u8", p.render().into_bytes()),
        (t, "master.m3u8", master.as_bytes().to_vec()),
        (t, "vod_crlf.m3u8", vod.as_bytes().to_vec()),
    ]
}

fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
    let mut b = Vec::new();
    for n in nals {
        b.extend_from_slice(&[0, 0, 0, 1]);
        b.extend_from_slice(n);
    }
    b
}

fn adts(body: &[u8]) -> Vec<u8> {
    let asc = media::aac::AudioSpecificConfig::parse(&[0x12, 0x10]).expect("asc");
    let mut v = asc.adts_header(body.len()).to_vec();
    v.extend_from_slice(body);
    v
}

/// Seeds of `hls_es`: PES runs in [`fuzzing::es_input`]'s layout. (`ffmpeg_h264_aac.bin`,
/// the first PES of a real ffmpeg stream, is written by `tests/ffmpeg_es.rs`.)
fn es_seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let t = "hls_es";
    let aud: &[u8] = &[0x09, 0xf0];
    let mut idr = vec![0x65, 0x88];
    idr.extend(body(0x10, 60).iter().map(|b| b | 0x02));
    let mut p = vec![0x41, 0x9a];
    p.extend(body(0x10, 20).iter().map(|b| b | 0x02));
    let h264 = annex_b(&[aud, SPS, PPS, &idr]);
    let h264_p = annex_b(&[aud, &p]);
    let mut seeds = vec![(
        t,
        "h264_idr_p.bin",
        fuzzing::es_input(&[
            (0x1b, Some(9000), Some(5400), &h264),
            (0x1b, Some(18000), Some(9000), &h264_p),
        ]),
    )];
    // A picture cut over three PES, parameter sets each in their own, as GB28181 sends them.
    let whole = annex_b(&[&idr]);
    seeds.push((
        t,
        "h264_cut_pes.bin",
        fuzzing::es_input(&[
            (0x1b, Some(0), None, &annex_b(&[SPS])),
            (0x1b, Some(0), None, &annex_b(&[PPS])),
            (0x1b, Some(0), None, &whole[..30]),
            (0x1b, None, None, &whole[30..]),
            (0x1b, Some(3600), None, &annex_b(&[&p])),
        ]),
    ));
    let mut irap = vec![0x26, 0x01, 0xaf];
    irap.extend(body(0x10, 40).iter().map(|b| b | 0x02));
    seeds.push((
        t,
        "h265_irap.bin",
        fuzzing::es_input(&[
            (
                0x24,
                Some(0),
                None,
                &annex_b(&[&[0x46, 0x01, 0x50], VPS_265, SPS_265, PPS_265, &irap]),
            ),
            (
                0x24,
                Some(3600),
                None,
                &annex_b(&[&[0x46, 0x01, 0x50], &irap]),
            ),
        ]),
    ));
    let mut three = Vec::new();
    for i in 0..3u8 {
        three.extend(adts(&[0x21, i, i]));
    }
    let (a, b) = three.split_at(12);
    seeds.push((
        t,
        "aac_adts_cut.bin",
        fuzzing::es_input(&[(0x0f, Some(90_000), None, a), (0x0f, Some(94_180), None, b)]),
    ));
    seeds.push((
        t,
        "g711_wrap.bin",
        fuzzing::es_input(&[
            (0x90, Some((1 << 33) - 900), None, &[0xd5; 160]),
            (0x91, Some(900), None, &[0xff; 160]),
        ]),
    ));
    let mut mp3 = vec![0xff, 0xfb, 0x94, 0x44];
    mp3.resize(100, 0x55);
    seeds.push((
        t,
        "mp3.bin",
        fuzzing::es_input(&[(0x03, Some(0), None, &mp3)]),
    ));
    // A loss in the middle of a picture.
    seeds.push((
        t,
        "h264_loss.bin",
        fuzzing::es_input(&[
            (0x1b, Some(0), None, &annex_b(&[SPS, PPS, &idr])),
            (0x1b, Some(3600), None, &whole[..20]),
            (0xff, None, None, &[]),
            (0x1b, Some(7200), None, &annex_b(&[&p])),
        ]),
    ));
    seeds
}

/// Each `hls_es` seed gives the tracks it was made for.
fn es_seed_reaches(name: &str, data: &[u8]) {
    let mut es = hls::es::Elementary::new();
    let mut codecs = Vec::new();
    let mut frames = 0;
    for (stream_type, pts, dts, payload) in fuzzing::es_parse(data) {
        if stream_type == 0xff {
            es.discard();
            continue;
        }
        es.push(stream_type, pts, dts, Bytes::copy_from_slice(payload))
            .expect("clean seed");
    }
    es.flush();
    while let Some(event) = es.pull() {
        match event {
            hls::es::EsEvent::Track(t) => codecs.push(t.codec),
            hls::es::EsEvent::Frame(_) => frames += 1,
        }
    }
    let expected: &[Codec] = match name {
        "h264_idr_p.bin" | "h264_cut_pes.bin" | "h264_loss.bin" => &[Codec::H264],
        "h265_irap.bin" => &[Codec::H265],
        "aac_adts_cut.bin" => &[Codec::Aac],
        "g711_wrap.bin" => &[Codec::G711A, Codec::G711U],
        "mp3.bin" => &[Codec::Mp3],
        other => panic!("no expectation for {other}"),
    };
    assert_eq!(codecs, expected, "{name}");
    assert!(frames >= 1, "{name}");
}
