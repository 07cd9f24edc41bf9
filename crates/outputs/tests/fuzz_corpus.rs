//! Replays the committed fuzz corpus (`fuzz/corpus/aac_to_opus/`) and any past crashes
//! (`fuzz/regressions/aac_to_opus/`) through the function the cargo-fuzz target calls, on
//! stable Rust, then a deterministic mutation pass over it.
//!
//! The seeds are real AAC from ffmpeg, so they are not regenerated on every run (another
//! ffmpeg would encode other bytes): `UPDATE_GOLDEN=1` writes them again when ffmpeg is there.

#[path = "common/adts.rs"]
mod adts;

use bytes::Bytes;
use outputs::fuzzing;
use outputs::AacToOpus;

#[test]
fn corpus_replays_without_panic() {
    fuzzkit::replay(&fuzzing::TARGETS, fuzzing::run);
}

#[test]
fn mutations_do_not_panic() {
    fuzzkit::mutate(&fuzzing::TARGETS, fuzzing::run, 24);
}

/// Seed name, config byte (rate choice, stereo bit), ffmpeg rate, channels.
const SEEDS: [(&str, u8, u32, u8); 3] = [
    ("sine_44100_stereo.bin", 1 | 8, 44_100, 2),
    ("sine_8000_mono.bin", 2, 8_000, 1),
    ("sine_48000_stereo.bin", 8, 48_000, 2),
];

/// The seed file: the config byte, then each access unit as a record 23 ms (step 11 or 12)
/// after the one before, with a 1 s jump back after the 12th.
fn seed(config: u8, aus: &[Bytes]) -> Vec<u8> {
    let mut out = vec![config];
    for (i, au) in aus.iter().enumerate() {
        out.push(match i {
            0 => 0,
            12 => 255,
            _ if i % 2 == 0 => 11,
            _ => 12,
        });
        out.extend_from_slice(&u16::try_from(au.len()).expect("small AU").to_be_bytes());
        out.extend_from_slice(au);
    }
    out
}

#[test]
fn seeds_are_real_aac_that_transcodes() {
    let dir = fuzzkit::fuzz_dir().join("corpus/aac_to_opus");
    if std::env::var_os("UPDATE_GOLDEN").is_some() && adts::have_ffmpeg() {
        for (name, config, rate, channels) in SEEDS {
            let (_, frames) = adts::sine_aac(1000, rate, channels, 1);
            let aus: Vec<Bytes> = frames.iter().take(24).map(|f| f.data.clone()).collect();
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(dir.join(name), seed(config, &aus)).expect("write seed");
        }
    }
    for (name, config, rate, channels) in SEEDS {
        let data = std::fs::read(dir.join(name)).expect("committed seed");
        assert_eq!(data[0], config, "{name}");
        let index = match rate {
            44_100 => 4,
            8_000 => 11,
            _ => 3,
        };
        let track = media::TrackInfo::new(media::Codec::Aac, fuzzing::config(index, channels));
        let mut t = AacToOpus::new(&track).expect("AAC-LC");
        let (mut rest, mut frames, mut dts) = (&data[1..], 0, 0u64);
        while rest.len() >= 3 {
            let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
            dts = if rest[0] == 255 {
                dts.saturating_sub(1000)
            } else {
                dts + u64::from(rest[0]) * 2
            };
            let frame = media::Frame {
                codec: media::Codec::Aac,
                dts,
                cts: 0,
                keyframe: true,
                data: Bytes::copy_from_slice(&rest[3..3 + len]),
            };
            frames += t.push(&frame).expect("every access unit decodes").len();
            rest = &rest[3 + len..];
        }
        assert!(frames >= 15, "{name}: {frames} Opus frames");
    }
}
