//! Real AAC from ffmpeg through [`AacToOpus`], decoded back with libopus: the 1 kHz tone is
//! what comes out, in every frame count and timestamp the input duration implies, at every
//! input rate from 8 to 96 kHz, in mono and stereo; timeline jumps anchor again; corrupt
//! access units are errors the stream survives.
//!
//! Needs ffmpeg: skipped when missing, except under `CI`.

#[path = "common/adts.rs"]
mod adts;

use adts::{have_ffmpeg, sine_aac};
use bytes::Bytes;
use media::{Codec, Frame};
use outputs::opus::{OPUS_FRAME, OPUS_FRAME_MS};
use outputs::{AacToOpus, TranscodeError};

/// Everything the transcoder makes of `frames`.
fn transcode(t: &mut AacToOpus, frames: &[Frame]) -> Vec<Frame> {
    let mut out = Vec::new();
    for f in frames {
        out.extend(t.push(f).expect("valid AAC"));
    }
    out
}

/// The Opus frames decoded by libopus, interleaved at 48 kHz.
fn decode(channels: u8, frames: &[Frame]) -> Vec<f32> {
    let ch = if channels == 1 {
        opus::Channels::Mono
    } else {
        opus::Channels::Stereo
    };
    let mut dec = opus::Decoder::new(48_000, ch).expect("decoder");
    let mut pcm = Vec::new();
    let mut buf = vec![0f32; 5760 * 2];
    for f in frames {
        assert_eq!(f.codec, Codec::Opus);
        let n = dec
            .decode_float(&f.data, &mut buf, false)
            .expect("Opus decodes");
        assert_eq!(n, OPUS_FRAME, "20 ms per frame");
        pcm.extend_from_slice(&buf[..n * usize::from(channels)]);
    }
    pcm
}

/// Power at `freq` Hz (Goertzel) as a share of the total power of one channel of `pcm`.
fn tone_share(pcm: &[f32], channels: usize, channel: usize, freq: f64) -> (f64, f64) {
    let x: Vec<f64> = pcm
        .iter()
        .skip(channel)
        .step_by(channels)
        .map(|&s| f64::from(s))
        .collect();
    let n = x.len() as f64;
    let w = 2.0 * std::f64::consts::PI * freq / 48_000.0;
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in &x {
        let s = v + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let tone = (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) * 2.0 / (n * n);
    let total: f64 = x.iter().map(|v| v * v).sum::<f64>() / n;
    (tone / total, total.sqrt())
}

/// `seconds` of 1 kHz at `rate` Hz through the transcoder: exact frame count and timestamps,
/// and the tone in every channel.
fn tone_through(rate: u32, channels: u8, seconds: u32) {
    let (track, aac) = sine_aac(1000, rate, channels, seconds);
    assert_eq!((track.sample_rate, track.channels), (rate, channels));
    tone_of(track, &aac);
}

/// [`tone_through`] for the AAC `aac` of `track`.
fn tone_of(track: media::TrackInfo, aac: &[Frame]) {
    let (rate, channels) = (track.sample_rate, track.channels);
    let mut t = AacToOpus::new(&track).expect("AAC-LC");
    let opus_track = t.track();
    assert_eq!(
        (opus_track.codec, opus_track.sample_rate),
        (Codec::Opus, 48_000)
    );
    assert_eq!(opus_track.channels, channels);
    let out = transcode(&mut t, aac);

    // No 48 kHz sample the input carried is lost or doubled: the frames hold all of it but
    // what waits for a whole frame or is still inside the resampler (under one AAC frame plus
    // one Opus frame, plus the resampler's filter delay: 1024 × 48 kHz / rate + 2 × 960).
    let samples_48k = aac.len() as u64 * 1024 * 48_000 / u64::from(rate);
    let encoded = out.len() as u64 * OPUS_FRAME as u64;
    let bound = 1024 * 48_000 / u64::from(rate) + 2 * OPUS_FRAME as u64;
    assert!(
        encoded <= samples_48k && samples_48k - encoded < bound,
        "{rate} Hz: {} AAC frames ({samples_48k} samples at 48 kHz), {} Opus frames",
        aac.len(),
        out.len()
    );
    assert_eq!(t.delay() as u64, samples_48k - encoded);
    for (k, f) in out.iter().enumerate() {
        assert_eq!(f.dts, aac[0].dts + k as u64 * OPUS_FRAME_MS, "frame {k}");
        assert_eq!((f.cts, f.keyframe), (0, true));
    }

    let pcm = decode(channels, &out);
    // Past the encoders' start-up (AAC priming, Opus look-ahead): 200 ms.
    let steady = &pcm[9600 * usize::from(channels)..];
    for c in 0..usize::from(channels) {
        let (share, rms) = tone_share(steady, channels.into(), c, 1000.0);
        assert!(
            share > 0.95,
            "{rate} Hz channel {c}: 1 kHz is {share:.3} of the power"
        );
        // lavfi's sine has amplitude 1/8: RMS 0.088.
        assert!(
            (0.06..0.12).contains(&rms),
            "{rate} Hz channel {c}: RMS {rms:.3}"
        );
        let (off, _) = tone_share(steady, channels.into(), c, 3000.0);
        assert!(
            off < 0.01,
            "{rate} Hz channel {c}: 3 kHz is {off:.3} of the power"
        );
    }
}

#[test]
fn tone_44100_stereo() {
    if have_ffmpeg() {
        tone_through(44_100, 2, 5);
    }
}

#[test]
fn tone_48000_mono_needs_no_resampler() {
    if have_ffmpeg() {
        tone_through(48_000, 1, 3);
    }
}

#[test]
fn tone_8000_mono() {
    if have_ffmpeg() {
        tone_through(8_000, 1, 3);
    }
}

#[test]
fn tone_96000_stereo() {
    if have_ffmpeg() {
        tone_through(96_000, 2, 3);
    }
}

#[test]
fn tone_22050_stereo() {
    if have_ffmpeg() {
        tone_through(22_050, 2, 3);
    }
}

/// An HE-AAC config (explicit SBR signalling, as an encoder with SBR writes it) over AAC-LC
/// frames: the core is decoded at its 24 kHz and comes out as the tone. (No Debian encoder
/// writes SBR payloads, so the frames are plain LC; the decoder skips SBR fill elements.)
#[test]
fn he_aac_plays_its_lc_core() {
    if !have_ffmpeg() {
        return;
    }
    let (lc, aac) = sine_aac(1000, 24_000, 2, 3);
    assert_eq!(&lc.config[..], [0x13, 0x10]);
    let he = media::TrackInfo::new(Codec::Aac, Bytes::from_static(&[0x2b, 0x11, 0x88]));
    assert_eq!((he.sample_rate, he.channels), (24_000, 2));
    tone_of(he, &aac);
}

/// Silence, then the tone from 1 s: in the decoded Opus it starts at 1 s on the Opus frames'
/// timeline, late by only what the codecs themselves add (the AAC encoder's 1024 priming
/// samples, libopus's 6.5 ms look-ahead), never by the resampler's delay.
fn onset_through(rate: u32) {
    let out = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!(
            "aevalsrc=if(gte(t\\,1)\\,0.125*sin(2*PI*1000*t)\\,0):s={rate}:d=2"
        ))
        .args(["-c:a", "aac", "-f", "adts", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (track, aac) = adts::adts(&out.stdout);
    let mut t = AacToOpus::new(&track).expect("AAC-LC");
    let opus = transcode(&mut t, &aac);
    let pcm = decode(1, &opus);
    let first = pcm.iter().position(|s| s.abs() > 0.03).expect("the tone");
    let onset_ms = opus[0].dts as f64 + first as f64 / 48.0;
    let expected = 1000.0 + 1_024_000.0 / f64::from(rate) + 312.0 / 48.0;
    assert!(
        (onset_ms - expected).abs() < 3.0,
        "{rate} Hz: tone at {onset_ms:.1} ms, expected {expected:.1} ms"
    );
}

#[test]
fn resampled_audio_keeps_its_time() {
    if have_ffmpeg() {
        for rate in [44_100, 16_000, 48_000, 96_000] {
            onset_through(rate);
        }
    }
}

/// A jump forward of 3 s, then one back to the start: each anchors the output again on the
/// first AAC frame after it.
#[test]
fn timeline_jumps_anchor_again() {
    if !have_ffmpeg() {
        return;
    }
    let (track, aac) = sine_aac(1000, 44_100, 2, 3);
    let mut t = AacToOpus::new(&track).expect("AAC-LC");
    let (a, rest) = aac.split_at(40);
    let (b, c) = rest.split_at(40);
    let first = transcode(&mut t, a);
    let shifted: Vec<Frame> = b
        .iter()
        .map(|f| Frame {
            dts: f.dts + 3000,
            ..f.clone()
        })
        .collect();
    let second = transcode(&mut t, &shifted);
    let back: Vec<Frame> = c
        .iter()
        .map(|f| Frame {
            dts: f.dts - c[0].dts + 100,
            ..f.clone()
        })
        .collect();
    let third = transcode(&mut t, &back);
    for (part, start) in [(&first, a[0].dts), (&second, shifted[0].dts), (&third, 100)] {
        assert!(!part.is_empty());
        for (k, f) in part.iter().enumerate() {
            assert_eq!(f.dts, start + k as u64 * OPUS_FRAME_MS, "frame {k}");
        }
    }
    // A small jitter (an ingest's rounding, a 200 ms hiccup) keeps the timeline.
    let (track, aac) = sine_aac(1000, 48_000, 1, 1);
    let mut t = AacToOpus::new(&track).expect("AAC-LC");
    let jittered: Vec<Frame> = aac
        .iter()
        .enumerate()
        .map(|(i, f)| Frame {
            dts: f.dts + if i >= 20 { 200 } else { 0 },
            ..f.clone()
        })
        .collect();
    let out = transcode(&mut t, &jittered);
    for (k, f) in out.iter().enumerate() {
        assert_eq!(f.dts, k as u64 * OPUS_FRAME_MS, "frame {k}");
    }
}

/// Corrupt access units are errors; each still takes its place on the timeline (as silence),
/// so the frames stay continuous and complete, the good access units around them still give
/// the tone, and the buffers stay bounded.
#[test]
fn corrupt_access_units_are_errors_the_stream_survives() {
    if !have_ffmpeg() {
        return;
    }
    let (track, aac) = sine_aac(1000, 44_100, 2, 2);
    let mut t = AacToOpus::new(&track).expect("AAC-LC");
    let mut out = Vec::new();
    let mut errors = 0;
    let mut seed = 0x2545_f491_u32;
    for (i, f) in aac.iter().enumerate() {
        let frame = match i % 7 {
            3 => Frame {
                data: (0..f.data.len())
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 17;
                        seed ^= seed << 5;
                        seed as u8
                    })
                    .collect(),
                ..f.clone()
            },
            5 if i % 2 == 0 => Frame {
                data: Bytes::new(),
                ..f.clone()
            },
            5 => Frame {
                data: Bytes::from(vec![0u8; 9000]),
                ..f.clone()
            },
            _ => f.clone(),
        };
        match t.push(&frame) {
            Ok(frames) => out.extend(frames),
            Err(TranscodeError::Decode(_)) => errors += 1,
            Err(TranscodeError::AccessUnitSize(n)) => {
                assert!(n == 0 || n == 9000, "{n}");
                errors += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(
            t.pending_samples() < OPUS_FRAME * 2,
            "pending {}",
            t.pending_samples()
        );
    }
    assert!(
        errors >= aac.len() / 4,
        "{errors} errors in {} access units",
        aac.len()
    );
    let opus_in = Frame {
        codec: Codec::Opus,
        ..aac[0].clone()
    };
    assert!(matches!(
        t.push(&opus_in),
        Err(TranscodeError::NotAac(Codec::Opus))
    ));
    let samples_48k = aac.len() as u64 * 1024 * 48_000 / 44_100;
    let encoded = out.len() as u64 * OPUS_FRAME as u64;
    assert!(encoded <= samples_48k && samples_48k - encoded < 1115 + 2 * 960);
    for (k, f) in out.iter().enumerate() {
        assert_eq!(f.dts, k as u64 * OPUS_FRAME_MS, "frame {k}");
    }
    let pcm = decode(2, &out);
    let (share, _) = tone_share(&pcm[9600 * 2..], 2, 0, 1000.0);
    assert!(share > 0.5, "1 kHz is {share:.3} of the power");
}
