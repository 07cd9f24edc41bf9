//! Real MPEG-TS from ffmpeg through the TS [`Demuxer`] and [`Elementary`]: the tracks carry
//! the encoder's real picture size and sample rate, every frame arrives, in order, with the
//! encoder's timing, and the AVCC frames decode again (ffmpeg reads them back as an FLV made by
//! the `rtmp` crate's writer would be overkill; checking the NAL structure suffices here).
//!
//! Needs ffmpeg (with libx264, libx265, libmp3lame): skipped when missing, except under `CI`.

use std::process::{Command, Stdio};

use bytes::Bytes;
use hls::es::{Elementary, EsEvent};
use hls::ps::PsDemuxer;
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

    // hls_ps: ffmpeg's VOB and MPEG-1 system stream, and the GB28181 layout.
    let input = [
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
        "libmp3lame",
        "-b:a",
        "32k",
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/hls_ps");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (format, name) in [("vob", "ffmpeg.vob"), ("mpeg", "ffmpeg_mpeg1.mpg")] {
        std::fs::write(dir.join(name), ffmpeg_file(format, &input)).expect("write seed");
    }
    let mut gb = Vec::new();
    for (i, (stream_type, pts, dts, data)) in pes.iter().enumerate() {
        if i == 0 {
            gb.extend_from_slice(&[
                0, 0, 1, 0xba, 0x44, 0, 4, 0, 4, 1, 0x01, 0x89, 0xc3, 0xf9, 0xff,
            ]);
            gb.extend(ps_psm(&[(0x1b, 0xe0), (0x0f, 0xc0)]));
        }
        let id = if *stream_type == 0x1b { 0xe0 } else { 0xc0 };
        for (j, piece) in data.chunks(1000).enumerate() {
            let (p, d) = if j == 0 { (*pts, *dts) } else { (None, None) };
            gb.extend(ps_pes(id, p, d, piece));
        }
    }
    std::fs::write(dir.join("gb28181_h264_aac.ps"), gb).expect("write seed");
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

/// What ffmpeg writes to a file for `args` with `-f format` (PS must be seekable for ffmpeg's
/// mpeg muxer to finish cleanly; a file is simplest).
fn ffmpeg_file(format: &str, args: &[&str]) -> Vec<u8> {
    let path = std::env::temp_dir().join(format!("hls-es-{}-{format}", std::process::id()));
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .args(["-f", format])
        .arg(&path)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = std::fs::read(&path).expect("read ffmpeg output");
    let _ = std::fs::remove_file(&path);
    data
}

/// A program stream through [`PsDemuxer`] in `chunk`-byte pieces (an RTP payload's size),
/// then [`Elementary`].
fn read_ps(ps: &[u8], chunk: usize) -> (Vec<TrackInfo>, Vec<Frame>) {
    let mut demuxer = PsDemuxer::new();
    let mut es = Elementary::new();
    let mut tracks = Vec::new();
    let mut frames = Vec::new();
    let mut feed = |es: &mut Elementary, demuxer: &mut PsDemuxer| {
        while let Some(pes) = demuxer.pull() {
            es.push(pes.stream_type, pes.pts, pes.dts, pes.payload)
                .expect("clean PES");
        }
        while let Some(event) = es.pull() {
            match event {
                EsEvent::Track(t) => tracks.push(t),
                EsEvent::Frame(f) => frames.push(f),
            }
        }
    };
    for c in ps.chunks(chunk) {
        demuxer.push(c).expect("clean PS");
        feed(&mut es, &mut demuxer);
    }
    demuxer.finish().expect("finish");
    es.flush();
    feed(&mut es, &mut demuxer);
    (tracks, frames)
}

#[test]
fn h264_and_mp3_in_ffmpeg_vob_and_mpeg1() {
    if !have_ffmpeg() {
        return;
    }
    let input = [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25:duration=1",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=48000:duration=1",
        "-c:v",
        "libx264",
        "-g",
        "25",
        "-bf",
        "2",
        "-c:a",
        "libmp3lame",
    ];
    for format in ["vob", "mpeg"] {
        let ps = ffmpeg_file(format, &input);
        let (tracks, frames) = read_ps(&ps, 1400);
        let mut codecs: Vec<(Codec, u32, u32, u32, u8)> = tracks
            .iter()
            .map(|t| (t.codec, t.width, t.height, t.sample_rate, t.channels))
            .collect();
        codecs.sort_by_key(|c| c.0.zlm_id());
        assert_eq!(
            codecs,
            [(Codec::H264, 320, 240, 0, 0), (Codec::Mp3, 0, 0, 48000, 1)],
            "{format}"
        );
        let v = of(&frames, Codec::H264);
        assert_eq!(v.len(), 25, "{format}");
        assert!(v[0].keyframe);
        // ffmpeg packs small pictures two to a PES, and dates only the first: the second
        // gets the next frame's DTS.
        for pair in v.windows(2) {
            assert_eq!(pair[1].dts - pair[0].dts, 40, "{format}");
        }
        assert!(!of(&frames, Codec::Mp3).is_empty());
    }
}

/// A PS as GB28181 cameras write it: a pack header with stuffing and a PSM before each
/// keyframe, video cut into PES of at most 8 KiB (only the first with PTS/DTS), AAC in PES of
/// its own. The elementary streams are ffmpeg's (from its TS); what comes out of the PS must
/// be exactly what comes out of the TS.
#[test]
fn gb28181_style_ps_gives_what_the_ts_gives() {
    if !have_ffmpeg() {
        return;
    }
    let ts = ffmpeg_ts(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25:duration=2",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=44100:duration=2",
        "-c:v",
        "libx264",
        "-g",
        "25",
        "-c:a",
        "aac",
    ]);
    let (ts_tracks, ts_frames) = read(&ts);
    let mut demuxer = Demuxer::new();
    demuxer.push(&ts).expect("clean TS");
    demuxer.finish().expect("finish");
    let mut ps = Vec::new();
    while let Some(pes) = demuxer.pull() {
        let pmt = demuxer.pmt().expect("pmt");
        let video = pmt
            .streams
            .iter()
            .any(|(t, pid)| *t == 0x1b && *pid == pes.pid);
        if video && pes.random_access {
            ps.extend_from_slice(&[0, 0, 1, 0xba, 0x44, 0, 4, 0, 4, 1, 0x01, 0x89, 0xc3, 0xfa]);
            ps.extend_from_slice(&[0xff, 0xff]);
            ps.extend(ps_psm(&[(0x1b, 0xe0), (0x0f, 0xc0)]));
        }
        let id = if video { 0xe0 } else { 0xc0 };
        for (i, piece) in pes.data.chunks(8192).enumerate() {
            let (pts, dts) = if i == 0 {
                (pes.header.pts, pes.header.dts)
            } else {
                (None, None)
            };
            ps.extend(ps_pes(id, pts, dts, piece));
        }
    }
    let (ps_tracks, ps_frames) = read_ps(&ps, 1400);
    assert_eq!(ps_tracks, ts_tracks);
    assert_eq!(ps_frames.len(), ts_frames.len());
    assert!(ps_frames == ts_frames, "PS and TS frames differ");
    assert_eq!(of(&ps_frames, Codec::H264).len(), 50);
    assert_eq!(
        (
            ps_tracks[0].width,
            ps_tracks[0].height,
            ps_tracks[1].sample_rate
        ),
        (640, 360, 44100)
    );
}

fn ps_timestamp(prefix: u8, t: u64) -> [u8; 5] {
    [
        prefix << 4 | ((t >> 29) as u8 & 0x0e) | 1,
        (t >> 22) as u8,
        ((t >> 14) as u8 & 0xfe) | 1,
        (t >> 7) as u8,
        ((t << 1) as u8 & 0xfe) | 1,
    ]
}

fn ps_pes(id: u8, pts: Option<u64>, dts: Option<u64>, data: &[u8]) -> Vec<u8> {
    let mut optional = Vec::new();
    let mut flags = 0;
    if let Some(p) = pts {
        flags = 0x80;
        optional.extend(ps_timestamp(if dts.is_some() { 3 } else { 2 }, p));
    }
    if let Some(d) = dts {
        flags = 0xc0;
        optional.extend(ps_timestamp(1, d));
    }
    let mut v = vec![0, 0, 1, id];
    v.extend_from_slice(&((3 + optional.len() + data.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0x80, flags, optional.len() as u8]);
    v.extend(optional);
    v.extend_from_slice(data);
    v
}

fn ps_psm(entries: &[(u8, u8)]) -> Vec<u8> {
    let mut body = vec![0xe0, 0xff, 0, 0];
    body.extend_from_slice(&((entries.len() * 4) as u16).to_be_bytes());
    for (t, id) in entries {
        body.extend_from_slice(&[*t, *id, 0, 0]);
    }
    body.extend_from_slice(&[0, 0, 0, 0]);
    let mut v = vec![0, 0, 1, 0xbc];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend(body);
    v
}
