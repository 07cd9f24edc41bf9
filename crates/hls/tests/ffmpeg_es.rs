//! Real MPEG-TS from ffmpeg through the TS [`Demuxer`] and [`Elementary`]: the tracks carry
//! the encoder's real picture size and sample rate, every frame arrives, in order, with the
//! encoder's timing, and the AVCC frames decode again (ffmpeg reads them back as an FLV made by
//! the `rtmp` crate's writer would be overkill; checking the NAL structure suffices here).
//!
//! Needs ffmpeg (with libx264, libx265, libmp3lame): skipped when missing, except under `CI`.

use std::process::{Command, Stdio};

use bytes::Bytes;
use hls::es::{Elementary, EsEvent};
use hls::reader::Demuxer;
use media::{Codec, Frame, TrackInfo};

fn have_ffmpeg() -> bool {
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

/// What ffmpeg writes to stdout for `args` (inputs and codecs; `-f mpegts -` is added).
fn ffmpeg_ts(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(args)
        .args(["-f", "mpegts", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Demuxes `ts` in 1316-byte chunks (7 packets, as a UDP or HTTP source delivers them).
fn read(ts: &[u8]) -> (Vec<TrackInfo>, Vec<Frame>) {
    let mut demuxer = Demuxer::new();
    let mut es = Elementary::new();
    let mut tracks = Vec::new();
    let mut frames = Vec::new();
    let mut drain = |es: &mut Elementary| {
        while let Some(event) = es.pull() {
            match event {
                EsEvent::Track(t) => tracks.push(t),
                EsEvent::Frame(f) => frames.push(f),
            }
        }
    };
    for chunk in ts.chunks(1316) {
        demuxer.push(chunk).expect("clean TS");
        while let Some(pes) = demuxer.pull() {
            let pmt = demuxer.pmt().expect("PMT before PES");
            let stream_type = pmt
                .streams
                .iter()
                .find(|(_, pid)| *pid == pes.pid)
                .map(|(t, _)| *t)
                .expect("PES of a PMT stream");
            es.push(
                stream_type,
                pes.header.pts,
                pes.header.dts,
                Bytes::from(pes.data),
            )
            .expect("clean PES");
            drain(&mut es);
        }
    }
    demuxer.finish().expect("finish");
    while let Some(pes) = demuxer.pull() {
        let stream_type = demuxer
            .pmt()
            .and_then(|p| p.streams.iter().find(|(_, pid)| *pid == pes.pid))
            .map(|(t, _)| *t)
            .expect("stream type");
        es.push(
            stream_type,
            pes.header.pts,
            pes.header.dts,
            Bytes::from(pes.data),
        )
        .expect("clean PES");
    }
    es.flush();
    drain(&mut es);
    (tracks, frames)
}

fn of(frames: &[Frame], codec: Codec) -> Vec<&Frame> {
    frames.iter().filter(|f| f.codec == codec).collect()
}

/// Every NAL unit of an AVCC frame, checked for length and (H.264) header.
fn nal_types(frame: &Frame) -> Vec<u8> {
    let mut types = Vec::new();
    let mut pos = 0;
    let d = &frame.data;
    while pos < d.len() {
        let len = u32::from_be_bytes([d[pos], d[pos + 1], d[pos + 2], d[pos + 3]]) as usize;
        assert!(len > 0 && pos + 4 + len <= d.len(), "bad AVCC length");
        types.push(match frame.codec {
            Codec::H264 => d[pos + 4] & 0x1f,
            _ => (d[pos + 4] >> 1) & 0x3f,
        });
        pos += 4 + len;
    }
    types
}

#[test]
fn h264_and_aac_from_ffmpeg() {
    if !have_ffmpeg() {
        return;
    }
    // 2 s: 50 pictures with B-frames, a keyframe every 25; AAC at 48 kHz stereo.
    let ts = ffmpeg_ts(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25:duration=2",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000:duration=2",
        "-ac",
        "2",
        "-c:v",
        "libx264",
        "-g",
        "25",
        "-bf",
        "2",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
    ]);
    let (tracks, frames) = read(&ts);
    let video: Vec<&TrackInfo> = tracks.iter().filter(|t| t.codec == Codec::H264).collect();
    let audio: Vec<&TrackInfo> = tracks.iter().filter(|t| t.codec == Codec::Aac).collect();
    assert_eq!(video.len(), 1, "announced once: {tracks:?}");
    assert_eq!((video[0].width, video[0].height), (640, 360));
    assert_eq!(audio.len(), 1);
    assert_eq!((audio[0].sample_rate, audio[0].channels), (48000, 2));
    assert_eq!(&audio[0].config[..], &[0x11, 0x90]);

    let v = of(&frames, Codec::H264);
    assert_eq!(v.len(), 50);
    assert_eq!(v.iter().filter(|f| f.keyframe).count(), 2);
    assert!(v[0].keyframe && v[25].keyframe);
    // Decode order, 40 ms apart; B-frames make some composition offsets positive.
    for pair in v.windows(2) {
        assert_eq!(
            pair[1].dts - pair[0].dts,
            40,
            "{:?}",
            (pair[0].dts, pair[1].dts)
        );
    }
    assert!(v.iter().any(|f| f.cts > 0));
    let mut pts: Vec<u64> = v.iter().map(|f| f.pts()).collect();
    pts.sort_unstable();
    for pair in pts.windows(2) {
        assert_eq!(pair[1] - pair[0], 40);
    }
    for f in &v {
        let types = nal_types(f);
        assert!(!types.iter().any(|t| matches!(t, 7..=9)), "{types:?}");
        assert_eq!(f.keyframe, types.contains(&5));
    }

    // 2 s at 48 kHz: 93.75 frames of 1024 samples; the encoder writes 94 or 95.
    let a = of(&frames, Codec::Aac);
    assert!((94..=96).contains(&a.len()), "{}", a.len());
    for (i, f) in a.iter().enumerate() {
        let expected = a[0].dts + (i as u64 * 1024 * 1000) / 48000;
        assert!(
            f.dts.abs_diff(expected) <= 1,
            "frame {i}: {} vs {expected}",
            f.dts
        );
        assert!(f.data[0] != 0xff, "ADTS header stripped");
    }
    // Audio and video share a timeline: they start within 100 ms of each other.
    assert!(a[0].dts.abs_diff(v[0].dts) < 100);
}

/// `UPDATE_GOLDEN=1` writes `fuzz/corpus/hls_es/ffmpeg_h264_aac.bin`: the PES of a short,
/// small ffmpeg stream in the `hls_es` layout (the other seeds come from `tests/fuzz_corpus.rs`).
#[test]
fn ffmpeg_es_seed() {
    if std::env::var_os("UPDATE_GOLDEN").is_none() || !have_ffmpeg() {
        return;
    }
    let ts = ffmpeg_ts(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=96x64:rate=25:duration=0.2",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=48000:duration=0.2",
        "-c:v",
        "libx264",
        "-bf",
        "2",
        "-c:a",
        "aac",
        "-b:a",
        "32k",
    ]);
    let mut demuxer = Demuxer::new();
    demuxer.push(&ts).expect("clean TS");
    demuxer.finish().expect("finish");
    let mut pes = Vec::new();
    while let Some(p) = demuxer.pull() {
        let stream_type = demuxer
            .pmt()
            .and_then(|m| m.streams.iter().find(|(_, pid)| *pid == p.pid))
            .map(|(t, _)| *t)
            .expect("stream type");
        pes.push((stream_type, p.header.pts, p.header.dts, p.data));
    }
    let input: Vec<hls::fuzzing::EsInput<'_>> = pes
        .iter()
        .map(|(t, p, d, data)| (*t, *p, *d, &data[..]))
        .collect();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus/hls_es/ffmpeg_h264_aac.bin");
    std::fs::write(path, hls::fuzzing::es_input(&input)).expect("write seed");
}

#[test]
fn h265_and_mp3_from_ffmpeg() {
    if !have_ffmpeg() {
        return;
    }
    let ts = ffmpeg_ts(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=352x288:rate=25:duration=1",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=44100:duration=1",
        "-c:v",
        "libx265",
        "-x265-params",
        "log-level=error:keyint=25",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "libmp3lame",
    ]);
    let (tracks, frames) = read(&ts);
    let video: Vec<&TrackInfo> = tracks.iter().filter(|t| t.codec == Codec::H265).collect();
    assert_eq!(video.len(), 1, "{tracks:?}");
    assert_eq!((video[0].width, video[0].height), (352, 288));
    let mp3: Vec<&TrackInfo> = tracks.iter().filter(|t| t.codec == Codec::Mp3).collect();
    assert_eq!(mp3.len(), 1);
    assert_eq!((mp3[0].sample_rate, mp3[0].channels), (44100, 1));
    let v = of(&frames, Codec::H265);
    assert_eq!(v.len(), 25);
    assert!(v[0].keyframe);
    for f in &v {
        let types = nal_types(f);
        assert!(!types.iter().any(|t| matches!(t, 32..=35)), "{types:?}");
    }
    for pair in v.windows(2) {
        assert!(pair[1].dts > pair[0].dts);
    }
    let a = of(&frames, Codec::Mp3);
    assert!(!a.is_empty());
    for pair in a.windows(2) {
        assert!(pair[1].dts >= pair[0].dts);
    }
}
