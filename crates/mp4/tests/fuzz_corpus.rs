//! Replays the committed fuzz corpus (`fuzz/corpus/mp4_*/`) and any past crashes
//! (`fuzz/regressions/mp4_*/`) through the same functions the cargo-fuzz targets call, on stable
//! Rust, and runs a deterministic mutation pass over the seeds. `UPDATE_GOLDEN=1` rewrites the
//! seed files this test generates.

use bytes::Bytes;
use media::{Codec, Frame};
use mp4::fuzzing::{self, frame_records, fuzz_tracks, FrameRecord};
use mp4::{Fmp4Muxer, Progressive};

#[test]
fn corpus_replays_without_panic() {
    fuzzkit::replay(&fuzzing::TARGETS, fuzzing::run);
}

#[test]
fn mutated_seeds_never_panic() {
    fuzzkit::mutate(&fuzzing::TARGETS, fuzzing::run, 200);
}

/// Writes the seed corpus when `UPDATE_GOLDEN=1`; otherwise checks the generated seeds are
/// still what is committed (so a format change cannot silently stale the corpus).
#[test]
fn seed_corpus_is_current() {
    fuzzkit::check_seeds(seeds());
}

/// Two seconds of a stream: H.264 at 25 fps (a keyframe each second, a B-frame pattern's
/// composition offsets), AAC, Opus and G.711 A-law, with small made-up payloads.
fn records() -> Vec<FrameRecord> {
    let mut out = Vec::new();
    for i in 0..50u64 {
        let key = i % 25 == 0;
        let mut nal = vec![
            0,
            0,
            0,
            4,
            if key { 0x65 } else { 0x41 },
            0x88,
            0x84,
            i as u8,
        ];
        if key {
            nal.extend_from_slice(&[0, 0, 0, 2, 0x06, 0x05]);
        }
        out.push(FrameRecord {
            frame: Frame {
                codec: Codec::H264,
                dts: i * 40,
                cts: if key {
                    40
                } else {
                    [80, 0, 40][(i % 3) as usize]
                },
                keyframe: key,
                data: Bytes::from(nal),
            },
            cut_before: key && i > 0,
        });
        let audio = [
            (Codec::Aac, vec![0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c]),
            (Codec::Opus, vec![0xfc, 0xff, 0xfe]),
            (Codec::G711A, vec![0xd5; 160]),
        ];
        let (codec, data) = audio[(i % 3) as usize].clone();
        out.push(FrameRecord {
            frame: Frame {
                codec,
                dts: i * 40 + 20,
                cts: 0,
                keyframe: true,
                data: Bytes::from(data),
            },
            cut_before: false,
        });
    }
    out
}

/// Every seed: (target, file name, bytes). Muxer output for the box walk, frame records for the
/// muxer, and malformed boxes named for the fault.
fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let records = records();
    let mut muxer = Fmp4Muxer::new(&fuzz_tracks()).expect("muxer");
    let mut progressive = Progressive::new(&muxer);
    let init = muxer.init_segment();
    let mut fragments = Vec::new();
    for r in &records {
        if r.cut_before {
            fragments.extend(muxer.fragment_before(r.frame.dts));
        }
        muxer.push(&r.frame);
    }
    fragments.extend(muxer.fragment());
    assert_eq!(fragments.len(), 2);
    fragments.iter().for_each(|f| progressive.add(f));
    let mut file = progressive.header().to_vec();
    for f in &fragments {
        file.extend_from_slice(&f.data[f.mdat_payload.clone()]);
    }
    vec![
        ("mp4_boxes", "init_h264_aac_opus_alaw.mp4", init.to_vec()),
        ("mp4_boxes", "fragment_1.m4s", fragments[0].data.to_vec()),
        ("mp4_boxes", "progressive.mp4", file),
        (
            "mp4_boxes",
            "frames_two_fragments.bin",
            frame_records(&records),
        ),
        (
            "mp4_boxes",
            "bad_size_past_end.bin",
            vec![
                0, 0, 0, 8, b'f', b'r', b'e', b'e', 0, 0, 0, 0xff, b'm', b'o', b'o', b'v',
            ],
        ),
        (
            "mp4_boxes",
            "bad_largesize_nested.bin",
            vec![
                0, 0, 0, 32, b'm', b'o', b'o', b'v', 0, 0, 0, 1, b't', b'r', b'a', b'k', 0, 0, 0,
                0, 0, 0, 0, 9, 0, 0, 0, 0, b'u', b'd', b't', b'a',
            ],
        ),
    ]
}

/// The frame-record seed goes through the muxer the way it was made: the same fragments.
#[test]
fn frame_seed_gives_two_fragments() {
    let data = frame_records(&records());
    fuzzing::run("mp4_boxes", &data);
    let mut muxer = Fmp4Muxer::new(&fuzz_tracks()).expect("muxer");
    for r in records() {
        muxer.push(&r.frame);
    }
    let fragment = muxer.fragment().expect("fragment");
    assert_eq!(fragment.samples.len(), 100);
    assert_eq!(fragment.start_ms, 0);
    // The last Opus frame (1980 ms) lasts as long as the one before it: 120 ms.
    assert_eq!(fragment.duration_ms, 2100);
}
