//! AAC from ffmpeg for the transcoder's tests and bench: ADTS (ISO/IEC 14496-3 §1.A.2) split
//! into raw access units with the AudioSpecificConfig its header implies.

use std::process::{Command, Stdio};

use bytes::Bytes;
use media::{Codec, Frame, TrackInfo};

/// Whether ffmpeg runs; in CI its absence is a failure, elsewhere a skip.
pub fn have_ffmpeg() -> bool {
    let ok = Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "ffmpeg missing in CI: scripts/test must install it"
        );
        eprintln!("skipped: ffmpeg not installed");
    }
    ok
}

/// `seconds` of a `freq` Hz sine at `rate` Hz in `channels` channels, encoded by ffmpeg's AAC-LC
/// encoder: the track and its access units with dts in ms as an RTMP or RTSP ingest gives them
/// (sample count × 1000 / rate, rounded down).
pub fn sine_aac(freq: u32, rate: u32, channels: u8, seconds: u32) -> (TrackInfo, Vec<Frame>) {
    let out = Command::new("ffmpeg")
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
            "sine=frequency={freq}:sample_rate={rate}:duration={seconds}"
        ))
        .args([
            "-ac",
            &channels.to_string(),
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-f",
            "adts",
            "-",
        ])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    adts(&out.stdout)
}

/// Splits ADTS into access units.
pub fn adts(mut data: &[u8]) -> (TrackInfo, Vec<Frame>) {
    let mut config = None;
    let mut frames = Vec::new();
    let mut rate = 0u64;
    while data.len() >= 7 {
        assert_eq!((data[0], data[1] & 0xf6), (0xff, 0xf0), "ADTS sync");
        let protection_absent = data[1] & 1 == 1;
        let profile = data[2] >> 6;
        let rate_index = (data[2] >> 2) & 0x0f;
        let channels = ((data[2] & 1) << 2) | (data[3] >> 6);
        let len = (usize::from(data[3] & 3) << 11)
            | (usize::from(data[4]) << 3)
            | usize::from(data[5] >> 5);
        let header = if protection_absent { 7 } else { 9 };
        assert!(len > header && len <= data.len(), "ADTS frame length {len}");
        let object_type = profile + 1;
        let asc = [
            (object_type << 3) | (rate_index >> 1),
            ((rate_index & 1) << 7) | (channels << 3),
        ];
        let track =
            config.get_or_insert_with(|| TrackInfo::new(Codec::Aac, Bytes::copy_from_slice(&asc)));
        rate = u64::from(track.sample_rate);
        let n = frames.len() as u64;
        frames.push(Frame {
            codec: Codec::Aac,
            dts: n * 1024 * 1000 / rate,
            cts: 0,
            keyframe: true,
            data: Bytes::copy_from_slice(&data[header..len]),
        });
        data = &data[len..];
    }
    assert!(rate > 0, "no ADTS frame");
    (config.expect("a frame"), frames)
}
