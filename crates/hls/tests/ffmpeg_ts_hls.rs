//! Real media through the muxer and the playlist, checked by ffprobe and ffmpeg: ffmpeg encodes
//! H.264 (with B-frames) and AAC into an FLV, the test reads it into frames with `rtmp::flv`,
//! muxes them into MPEG-TS segments cut at keyframes every ~2 s, writes those and the m3u8 to a
//! temp dir, and asks ffprobe and ffmpeg to read and decode the result.
//!
//! Needs ffmpeg and ffprobe (with libx264): skipped when missing, except under `CI`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bytes::{Bytes, BytesMut};
use hls::reader::Demuxer;
use hls::ts::{PID_AUDIO, PID_VIDEO, TIMESTAMP_OFFSET_MS};
use hls::{Playlist, PlaylistConfig, TsMuxer};
use media::{Frame, TrackInfo, TrackKind};
use rtmp::flv::{DemuxEvent, FlvReader, TAG_AUDIO, TAG_VIDEO};

/// Whether ffmpeg and ffprobe can run; panics when they cannot and `CI` is set.
fn have_ffmpeg() -> bool {
    let ok = ["ffmpeg", "ffprobe"].iter().all(|tool| {
        Command::new(tool)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "ffmpeg/ffprobe missing in CI: scripts/test must install them"
        );
        eprintln!("skipped: ffmpeg/ffprobe not installed");
    }
    ok
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("hls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a tool, panicking with its stderr when it fails; returns (stdout, stderr).
fn run(tool: &str, args: &[&str]) -> (String, String) {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{tool} {args:?} failed: {stderr}");
    (stdout, stderr)
}

/// The tracks and frames (in file order) of an FLV file.
fn read_flv(path: &Path) -> (Vec<TrackInfo>, Vec<Frame>) {
    let data = Bytes::from(std::fs::read(path).expect("read flv"));
    let mut reader = FlvReader::new(data).expect("FLV header");
    let mut demuxer = rtmp::flv::Demuxer::new();
    let mut frames = Vec::new();
    while let Some(tag) = reader.next_tag().expect("FLV tag") {
        let event = match tag.tag_type {
            TAG_VIDEO => demuxer.push_video(tag.timestamp, &tag.body),
            TAG_AUDIO => demuxer.push_audio(tag.timestamp, &tag.body),
            _ => continue,
        };
        let events = event.expect("tag body").into_iter().chain(demuxer.pull());
        for event in events {
            if let DemuxEvent::Frame { frame, .. } = event {
                frames.push(frame);
            }
        }
    }
    let tracks = [demuxer.video_track(), demuxer.audio_track()]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    (tracks, frames)
}

/// The distinct values of `key=value` lines of ffprobe's `default=nw=1` output, sorted (HLS
/// input lists each stream twice: in its program and on its own).
fn values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    let mut v: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// One finished segment: file name and duration.
struct Segment {
    name: String,
    duration_ms: u64,
}

/// Muxes `frames` into segments of `dir`, cut at the first video keyframe (any frame for
/// audio-only) at least `seg_ms` after the segment's start, and writes `playlist.m3u8`.
fn segment(dir: &Path, tracks: &[TrackInfo], frames: &[Frame], seg_ms: u64) -> Vec<Segment> {
    let has_video = tracks.iter().any(|t| t.kind() == TrackKind::Video);
    let mut muxer = TsMuxer::new(tracks);
    let mut playlist = Playlist::new(PlaylistConfig {
        target_duration_ms: seg_ms,
        window: 0,
        ..PlaylistConfig::default()
    });
    let mut segments = Vec::new();
    let mut bytes = BytesMut::new();
    let mut start: Option<(u64, String)> = None;
    let write = |name: String, bytes: &mut BytesMut| {
        std::fs::write(dir.join(&name), &bytes[..]).expect("write segment");
        bytes.clear();
    };
    for frame in frames {
        let cut_point = frame.keyframe && (frame.kind() == TrackKind::Video || !has_video);
        let cut = match &start {
            None => true,
            Some((at, _)) => cut_point && frame.dts >= at + seg_ms,
        };
        if cut {
            if let Some((at, name)) = start.take() {
                let duration_ms = frame.dts - at;
                assert!(playlist.end_segment(duration_ms).is_empty());
                write(name.clone(), &mut bytes);
                segments.push(Segment { name, duration_ms });
            }
            let name = format!("seg{}.ts", playlist.next_msn());
            let msn = playlist.start_segment(name.clone());
            assert_eq!(name, format!("seg{msn}.ts"));
            start = Some((if segments.is_empty() { 0 } else { frame.dts }, name));
        }
        muxer.push(frame, &mut bytes);
    }
    if let Some((at, name)) = start {
        let last = frames.iter().map(|f| f.dts).max().unwrap_or(at);
        let duration_ms = last + 40 - at;
        playlist.end_segment(duration_ms);
        write(name.clone(), &mut bytes);
        segments.push(Segment { name, duration_ms });
    }
    playlist.finish();
    std::fs::write(dir.join("playlist.m3u8"), playlist.render()).expect("write playlist");
    segments
}

#[test]
fn ffmpeg_reads_and_decodes_h264_aac_segments() {
    if !have_ffmpeg() {
        return;
    }
    let dir = TempDir::new("h264-aac");
    let flv = dir.0.join("source.flv");
    let flv_arg = flv.to_str().expect("utf-8 path");
    run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            "6",
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
            "-b:a",
            "64k",
            "-f",
            "flv",
            flv_arg,
        ],
    );
    let (tracks, frames) = read_flv(&flv);
    assert_eq!(tracks.len(), 2, "{tracks:?}");
    let video: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.kind() == TrackKind::Video)
        .collect();
    assert_eq!(video.len(), 150);
    assert!(video.iter().any(|f| f.cts > 0), "the source has B-frames");

    let segments = segment(&dir.0, &tracks, &frames, 2000);
    assert_eq!(segments.len(), 3, "keyframes every second, cut every 2 s");
    for s in &segments {
        // The last one ends with the audio, which runs a little past the video.
        assert!(
            (1900..=2200).contains(&s.duration_ms),
            "{}: {}",
            s.name,
            s.duration_ms
        );
    }

    // Our own reader: continuity, tables in every segment, PTS/DTS as given.
    let mut all = Vec::new();
    for s in &segments {
        let bytes = std::fs::read(dir.0.join(&s.name)).expect("segment");
        assert_eq!(bytes.len() % 188, 0);
        assert_eq!(bytes[1..3], [0x40, 0x00], "{} starts with a PAT", s.name);
        all.extend(bytes);
    }
    let mut reader = Demuxer::new();
    reader.push(&all).expect("continuity across segments");
    reader.finish().expect("whole PES");
    let pes: Vec<_> = std::iter::from_fn(|| reader.pull()).collect();
    let video_pes: Vec<_> = pes.iter().filter(|p| p.pid == PID_VIDEO).collect();
    let audio_pes = pes.iter().filter(|p| p.pid == PID_AUDIO).count();
    assert_eq!(video_pes.len(), 150);
    assert_eq!(audio_pes, frames.len() - 150);
    for (p, f) in video_pes.iter().zip(&video) {
        assert_eq!(p.header.pts, Some((f.pts() + TIMESTAMP_OFFSET_MS) * 90));
        let dts = (f.cts != 0).then_some((f.dts + TIMESTAMP_OFFSET_MS) * 90);
        assert_eq!(p.header.dts, dts);
        assert_eq!(p.random_access, f.keyframe);
    }

    // ffprobe: the playlist holds h264 + aac for the whole 6 s.
    let m3u8 = dir.0.join("playlist.m3u8");
    let m3u8_arg = m3u8.to_str().expect("utf-8 path");
    let (probe, _) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name:format=duration",
            "-of",
            "default=nw=1",
            m3u8_arg,
        ],
    );
    let codecs = values(&probe, "codec_name");
    assert_eq!(codecs, ["aac", "h264"], "{probe}");
    let duration: f64 = values(&probe, "duration")[0].parse().expect("duration");
    assert!((5.7..=6.3).contains(&duration), "duration {duration}");

    // ffmpeg decodes every frame without complaint.
    let (_, stderr) = run(
        "ffmpeg",
        &["-v", "warning", "-i", m3u8_arg, "-f", "null", "-"],
    );
    assert!(stderr.trim().is_empty(), "ffmpeg complained: {stderr}");
    let (count, _) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "default=nw=1",
            m3u8_arg,
        ],
    );
    assert_eq!(values(&count, "nb_read_frames"), ["150"], "{count}");

    // A segment alone is a complete stream too.
    let seg1 = dir.0.join(&segments[1].name);
    let (probe, _) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name:format=duration",
            "-of",
            "default=nw=1",
            seg1.to_str().expect("utf-8 path"),
        ],
    );
    let codecs = values(&probe, "codec_name");
    assert_eq!(codecs, ["aac", "h264"], "{probe}");
    let duration: f64 = values(&probe, "duration")[0].parse().expect("duration");
    assert!(
        (1.8..=2.3).contains(&duration),
        "segment duration {duration}"
    );
}

#[test]
fn ffmpeg_reads_audio_only_segments() {
    if !have_ffmpeg() {
        return;
    }
    let dir = TempDir::new("aac-only");
    let flv = dir.0.join("source.flv");
    let flv_arg = flv.to_str().expect("utf-8 path");
    run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "5",
            "-c:a",
            "aac",
            "-f",
            "flv",
            flv_arg,
        ],
    );
    let (tracks, frames) = read_flv(&flv);
    assert_eq!(tracks.len(), 1);
    let segments = segment(&dir.0, &tracks, &frames, 2000);
    assert_eq!(segments.len(), 3);
    let m3u8 = dir.0.join("playlist.m3u8");
    let m3u8_arg = m3u8.to_str().expect("utf-8 path");
    let (probe, _) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name:format=duration",
            "-of",
            "default=nw=1",
            m3u8_arg,
        ],
    );
    assert_eq!(values(&probe, "codec_name"), ["aac"], "{probe}");
    let duration: f64 = values(&probe, "duration")[0].parse().expect("duration");
    assert!((4.7..=5.3).contains(&duration), "duration {duration}");
    let (_, stderr) = run(
        "ffmpeg",
        &["-v", "warning", "-i", m3u8_arg, "-f", "null", "-"],
    );
    assert!(stderr.trim().is_empty(), "ffmpeg complained: {stderr}");
}
