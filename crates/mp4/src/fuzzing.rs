//! Fuzz target bodies, shared by `fuzz/fuzz_targets/mp4_*.rs` (cargo-fuzz, nightly) and
//! `tests/fuzz_corpus.rs` (stable replay of the committed corpus). Each must never panic.
//!
//! `mp4_boxes` reads its input twice: as an MP4 file, walked box by box down every container
//! this crate writes; and as a stream of frame records ([`frame_records`] writes that format)
//! pushed through [`Fmp4Muxer`], whose fragments and progressive header must read back whole.

use bytes::{BufMut, Bytes, BytesMut};
use media::{avc, Codec, Frame, TrackInfo};

use crate::{payload, Fmp4Muxer, Progressive};

/// The fuzz targets, named as in `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: [&str; 1] = ["mp4_boxes"];

/// Runs the body of the fuzz target called `target` (one of [`TARGETS`]).
pub fn run(target: &str, data: &[u8]) {
    if target == "mp4_boxes" {
        boxes(data);
    }
}

/// Containers whose payload is boxes, and how many bytes of fields come before them.
fn children_at(fourcc: &[u8; 4]) -> Option<usize> {
    match fourcc {
        b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" | b"dinf" | b"mvex" | b"moof" | b"traf"
        | b"edts" | b"udta" => Some(0),
        b"stsd" | b"dref" => Some(8),
        b"avc1" | b"hvc1" => Some(78),
        b"mp4a" | b"Opus" | b"alaw" | b"ulaw" => Some(28),
        _ => None,
    }
}

fn walk(data: &[u8], depth: usize) -> usize {
    let mut count = 0;
    for item in crate::boxes(data) {
        let Ok((fourcc, range)) = item else {
            break;
        };
        assert!(range.start < range.end && range.end <= data.len());
        count += 1;
        let (Some(skip), Some(inner)) = (children_at(&fourcc), payload(data, &range)) else {
            continue;
        };
        if depth < 12 {
            let body = data.get(inner).unwrap_or_default();
            count += walk(body.get(skip..).unwrap_or_default(), depth + 1);
        }
    }
    count
}

/// One frame record of the `mp4_boxes` frame stream.
#[derive(Debug, Clone)]
pub struct FrameRecord {
    /// The frame; its `dts` is written as a delta from the previous record's.
    pub frame: Frame,
    /// Cut a fragment before this frame.
    pub cut_before: bool,
}

const CODECS: [Codec; 4] = [Codec::H264, Codec::Aac, Codec::Opus, Codec::G711A];

/// Serialises frames as the `mp4_boxes` target reads them after its box walk: a flags byte
/// (bit 0 keyframe, bits 1-2 codec H.264/AAC/Opus/G.711A, bit 7 cut first), the dts delta
/// (i16, so timestamps can go backwards), the composition offset (i8, ms), the payload length
/// (u8) and the payload.
pub fn frame_records(records: &[FrameRecord]) -> Vec<u8> {
    let mut out = BytesMut::new();
    let mut last = 0;
    for r in records {
        let codec = CODECS.iter().position(|c| *c == r.frame.codec).unwrap_or(0);
        let flags = u8::from(r.frame.keyframe) | (codec as u8) << 1 | u8::from(r.cut_before) << 7;
        out.put_u8(flags);
        let delta = r.frame.dts as i64 - last as i64;
        out.put_i16(delta.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16);
        out.put_i8(r.frame.cts.clamp(-128, 127) as i8);
        let len = r.frame.data.len().min(0xff);
        out.put_u8(len as u8);
        out.put_slice(r.frame.data.get(..len).unwrap_or_default());
        last = r.frame.dts;
    }
    out.to_vec()
}

/// The muxer the frame stream goes through: H.264 (an x264 320x240 SPS), AAC-LC 44.1 kHz
/// stereo, Opus and G.711 A-law.
pub fn fuzz_tracks() -> Vec<TrackInfo> {
    let sps = [
        0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
        0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x60,
    ];
    let pps = [0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
    let avcc = avc::DecoderConfig::build(&sps, &[&pps]).unwrap_or_default();
    vec![
        TrackInfo::new(Codec::H264, avcc),
        TrackInfo::new(Codec::Aac, Bytes::from_static(&[0x12, 0x10])),
        TrackInfo::new(Codec::Opus, Bytes::new()),
        TrackInfo::new(Codec::G711A, Bytes::new()),
    ]
}

fn frames(data: &[u8]) -> Vec<FrameRecord> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut dts = 0u64;
    while let Some(h) = data.get(pos..pos + 5) {
        let len = usize::from(h[4]);
        let end = (pos + 5 + len).min(data.len());
        dts = dts.saturating_add_signed(i64::from(i16::from_be_bytes([h[1], h[2]])));
        out.push(FrameRecord {
            frame: Frame {
                codec: CODECS[usize::from(h[0] >> 1 & 0x03)],
                dts,
                cts: i32::from(h[3] as i8),
                keyframe: h[0] & 0x01 != 0,
                data: Bytes::copy_from_slice(data.get(pos + 5..end).unwrap_or_default()),
            },
            cut_before: h[0] & 0x80 != 0,
        });
        pos = end;
    }
    out
}

/// Every box of a muxer's output must read back whole, with the samples where it says.
fn check_fragment(fragment: &crate::Fragment) {
    let top: Vec<_> = crate::boxes(&fragment.data).collect();
    assert!(top.iter().all(Result::is_ok), "fragment boxes: {top:?}");
    let types: Vec<_> = top.iter().flatten().map(|(t, _)| *t).collect();
    assert_eq!(types, [*b"moof", *b"mdat"]);
    assert_eq!(fragment.mdat_payload.end, fragment.data.len());
    let sizes: u64 = fragment.samples.iter().map(|s| u64::from(s.size)).sum();
    assert_eq!(sizes, fragment.mdat_payload.len() as u64);
}

/// The `mp4_boxes` target: walk the input as boxes, then mux it as frame records.
pub fn boxes(data: &[u8]) {
    walk(data, 0);
    let Ok(mut muxer) = Fmp4Muxer::new(&fuzz_tracks()) else {
        return;
    };
    let init = muxer.init_segment();
    assert!(walk(&init, 0) > 20, "init segment does not read back");
    let mut progressive = Progressive::new(&muxer);
    let mut cut = |muxer: &mut Fmp4Muxer, next: Option<u64>| {
        let fragment = match next {
            Some(dts) => muxer.fragment_before(dts),
            None => muxer.fragment(),
        };
        if let Some(f) = fragment {
            check_fragment(&f);
            progressive.add(&f);
        }
    };
    for record in frames(data) {
        if record.cut_before {
            cut(&mut muxer, Some(record.frame.dts));
        }
        muxer.push(&record.frame);
        let _ = muxer.buffered_ms();
    }
    cut(&mut muxer, None);
    let header = progressive.header();
    let top: Vec<_> = crate::boxes(&header)
        .take(2)
        .map(|b| b.map(|(t, _)| t))
        .collect();
    assert_eq!(top, [Ok(*b"ftyp"), Ok(*b"moov")]);
    walk(&header, 0);
    let _ = progressive.duration_ms();
}
