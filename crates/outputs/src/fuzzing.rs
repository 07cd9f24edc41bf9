//! Fuzz target bodies, shared by `fuzz/fuzz_targets/aac_to_opus.rs` (cargo-fuzz, nightly) and
//! `tests/fuzz_corpus.rs` (stable replay of the committed corpus). Each must never panic.
//!
//! Targets: `aac_to_opus`, the [`AacToOpus`] transcoder fed arbitrary access units after a valid
//! AudioSpecificConfig; `webrtc_frame`, a publisher's length-prefixed video access unit made
//! into the Annex B stream WebRTC players get.

use bytes::Bytes;
use media::{Codec, Frame, TrackInfo};

use crate::opus::{AacToOpus, OPUS_FRAME, OPUS_FRAME_MS};

/// The fuzz targets, named as in `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: [&str; 2] = ["aac_to_opus", "webrtc_frame"];

/// Runs the body of the fuzz target called `target` (one of [`TARGETS`]).
pub fn run(target: &str, data: &[u8]) {
    match target {
        "aac_to_opus" => aac_to_opus(data),
        "webrtc_frame" => webrtc_frame(data),
        _ => {}
    }
}

/// The rates the first byte picks from (bits 0-2); bit 3 picks stereo.
const RATES: [(u8, u32); 8] = [
    (3, 48_000),
    (4, 44_100),
    (11, 8_000),
    (0, 96_000),
    (8, 16_000),
    (7, 22_050),
    (5, 32_000),
    (10, 11_025),
];

/// The AAC-LC AudioSpecificConfig for `rate_index` and `channels`.
pub fn config(rate_index: u8, channels: u8) -> Bytes {
    Bytes::copy_from_slice(&[
        (2 << 3) | (rate_index >> 1),
        ((rate_index & 1) << 7) | (channels << 3),
    ])
}

/// The explicit HE-AAC AudioSpecificConfig (audioObjectType 5) over an AAC-LC core at
/// `rate_index` with `channels`, SBR at twice the rate (index 3 lower, 96 kHz at most).
pub fn he_aac_config(rate_index: u8, channels: u8) -> Bytes {
    let ext = u32::from(rate_index.saturating_sub(3));
    let bits = (5u32 << 19)
        | (u32::from(rate_index) << 15)
        | (u32::from(channels) << 11)
        | (ext << 7)
        | (2 << 2);
    Bytes::copy_from_slice(&bits.to_be_bytes()[1..])
}

/// Byte 0 chooses the track (bits 0-2: one of eight rates, 8-96 kHz, bit 3: stereo, bit 4:
/// signalled as HE-AAC); then records of
/// `[step][length: u16 BE][access unit]` (the last may be short). `step` 255 moves the dts 1 s
/// back, any other advances it by `step` × 2 ms. Every access unit is pushed; the outputs are
/// checked: Opus, 20 ms apart within a call unless re-anchored, and the buffers bounded.
pub fn aac_to_opus(data: &[u8]) {
    let Some((&head, mut rest)) = data.split_first() else {
        return;
    };
    let (rate_index, rate) = RATES[usize::from(head & 7)];
    let channels = if head & 8 == 0 { 1 } else { 2 };
    let config = if head & 0x10 == 0 {
        config(rate_index, channels)
    } else {
        he_aac_config(rate_index, channels)
    };
    let track = TrackInfo::new(Codec::Aac, config);
    let Ok(mut t) = AacToOpus::new(&track) else {
        panic!("AAC-LC {rate} Hz, {channels} channels is refused");
    };
    let mut dts = 0u64;
    while rest.len() >= 3 {
        let step = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        let au = &rest[3..(3 + len).min(rest.len())];
        rest = &rest[3 + au.len()..];
        dts = if step == 255 {
            dts.saturating_sub(1000)
        } else {
            dts + u64::from(step) * 2
        };
        let frame = Frame {
            codec: Codec::Aac,
            dts,
            cts: 0,
            keyframe: true,
            data: Bytes::copy_from_slice(au),
        };
        if let Ok(out) = t.push(&frame) {
            // 20 ms apart, unless the timeline was anchored again between frames carried over
            // from a failed call and this call's (a step back, or one of more than ~500 ms).
            for pair in out.windows(2) {
                assert!(
                    pair[1].dts == pair[0].dts + OPUS_FRAME_MS
                        || pair[1].dts < pair[0].dts
                        || pair[1].dts > pair[0].dts + 250,
                    "Opus dts {} then {}",
                    pair[0].dts,
                    pair[1].dts
                );
            }
            for f in &out {
                assert_eq!(f.codec, Codec::Opus);
                assert!(!f.data.is_empty() && f.data.len() <= 1500);
            }
        }
        assert!(t.pending_samples() < OPUS_FRAME * usize::from(channels));
        // One AAC frame at 8 kHz is 6144 samples at 48 kHz; the resampler holds less.
        assert!(t.delay() < 6144 + 2 * OPUS_FRAME, "delay {}", t.delay());
    }
}

/// A video access unit for WebRTC. The first byte: bit 0 a keyframe, bit 1 H.265 instead of
/// H.264, bits 2-3 the NAL length size minus one; the rest is the access unit. The output
/// must hold every NAL unit of the input behind a start code.
pub fn webrtc_frame(data: &[u8]) {
    let Some((&flags, au)) = data.split_first() else {
        return;
    };
    crate::webrtc::fuzz_annex_b(
        flags & 1 == 1,
        flags & 2 == 2,
        usize::from((flags >> 2) & 3) + 1,
        au,
    );
}
