//! The muxers' output read by real ffprobe and ffmpeg: fragmented files, their progressive
//! rewrite, and a fragmented file cut short as a crash leaves it.
//!
//! The media is real: ffmpeg encodes `testsrc` and `sine` into an MP4, and `ffprobe
//! -show_packets -show_data` hands back every packet with its decode and presentation times
//! (x264 writes B-frames, so composition offsets are exercised), plus the codec configuration
//! records. Skipped when ffmpeg is missing, except under CI where that is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use bytes::Bytes;
use media::{avc, Codec, Frame, TrackInfo, TrackKind};
use mp4::{Fmp4Muxer, Fragment, Progressive};

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

/// A directory of this test process under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("ferrostream-mp4-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, data).expect("write test file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run ffmpeg/ffprobe");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Encoded media as a publisher would hand it over: tracks and frames in decode order.
struct Media {
    tracks: Vec<TrackInfo>,
    frames: Vec<Frame>,
    /// (codec name as ffprobe says it, packet count) per track.
    counts: Vec<(&'static str, usize)>,
    /// Duration of the encoded file as ffprobe reads it, seconds.
    duration: f64,
}

/// The hex dump that follows `data=` or `extradata=` in ffprobe's default output.
fn hex_dump<'a>(lines: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line) = lines.next_if(|l| l.len() > 10 && l.as_bytes()[8] == b':') {
        let hex: String = line[10..line.len().min(49)]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        for pair in hex.as_bytes().chunks(2) {
            let s = std::str::from_utf8(pair).expect("ascii");
            out.push(u8::from_str_radix(s, 16).expect("hex"));
        }
    }
    out
}

fn seconds_to_ms(s: &str) -> i64 {
    (s.parse::<f64>().expect("time") * 1000.0).round() as i64
}

/// Encodes 4 s of `video` (libx264, libx265) and `audio` (aac, libopus, pcm_alaw) into an MP4
/// and reads its packets back.
fn encode(name: &str, video: &str, audio: &str, sample_rate: u32) -> Media {
    let dir = TempDir::new(name);
    let src = dir.0.join("src.mp4");
    let (ok, _, err) = run(Command::new("ffmpeg").args([
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        &format!("sine=frequency=440:sample_rate={sample_rate}"),
        "-t",
        "4",
        "-pix_fmt",
        "yuv420p",
        "-c:v",
        video,
        "-g",
        "25",
        "-x265-params",
        "log-level=error",
        "-c:a",
        audio,
        "-ac",
        if audio == "pcm_alaw" { "1" } else { "2" },
        "-f",
        // ffmpeg 5.1 writes G.711 only in QuickTime files; its demuxer reads both alike.
        if audio == "pcm_alaw" { "mov" } else { "mp4" },
        src.to_str().expect("utf-8 path"),
    ]));
    assert!(ok, "ffmpeg encode failed: {err}");
    let (ok, streams, err) = run(Command::new("ffprobe").args([
        "-v".as_ref(),
        "error".as_ref(),
        "-show_streams".as_ref(),
        "-show_format".as_ref(),
        "-show_data".as_ref(),
        "-show_entries".as_ref(),
        "stream=codec_name,extradata:format=duration".as_ref(),
        src.as_os_str(),
    ]));
    assert!(ok, "ffprobe streams: {err}");
    let mut tracks = Vec::new();
    let mut counts = Vec::new();
    let mut duration = 0.0;
    let mut lines = streams.lines().peekable();
    let mut codec = None;
    while let Some(line) = lines.next() {
        if let Some(c) = line.strip_prefix("codec_name=") {
            codec = Some(match c {
                "h264" => (Codec::H264, "h264"),
                "hevc" => (Codec::H265, "hevc"),
                "aac" => (Codec::Aac, "aac"),
                "opus" => (Codec::Opus, "opus"),
                "pcm_alaw" => (Codec::G711A, "pcm_alaw"),
                other => panic!("unexpected codec {other}"),
            });
        } else if line == "extradata=" {
            let extradata = hex_dump(&mut lines);
            let (codec, name) = codec.take().expect("codec before extradata");
            let config = match codec {
                // The avcC as a publisher's parameter sets would give it.
                Codec::H264 => {
                    let rec = avc::DecoderConfig::parse(&extradata).expect("avcC");
                    let pps: Vec<&[u8]> = rec.pps.iter().map(|p| p.as_ref()).collect();
                    avc::DecoderConfig::build(&rec.sps[0], &pps).expect("build avcC")
                }
                // ffmpeg's encoder appends the SBR sync extension (0x2b7); the two bytes of
                // AAC-LC are what RTMP publishers send.
                Codec::Aac => Bytes::copy_from_slice(&extradata[..2]),
                _ => Bytes::from(extradata),
            };
            tracks.push(TrackInfo::new(codec, config));
            counts.push((name, 0));
        } else if let Some(d) = line.strip_prefix("duration=") {
            duration = d.parse().expect("duration");
        }
    }
    assert_eq!(tracks.len(), 2, "{streams}");
    if audio == "aac" {
        assert_eq!(
            &tracks[1].config[..],
            [0x12, 0x10],
            "AAC-LC 44.1 kHz stereo"
        );
    }

    let (ok, packets, err) = run(Command::new("ffprobe").args([
        "-v".as_ref(),
        "error".as_ref(),
        "-show_packets".as_ref(),
        "-show_data".as_ref(),
        "-show_entries".as_ref(),
        "packet=stream_index,pts_time,dts_time,flags,data".as_ref(),
        src.as_os_str(),
    ]));
    assert!(ok, "ffprobe packets: {err}");
    let mut raw = Vec::new();
    let mut lines = packets.lines().peekable();
    let (mut index, mut pts, mut dts, mut key) = (0usize, 0, 0, false);
    while let Some(line) = lines.next() {
        if let Some(v) = line.strip_prefix("stream_index=") {
            index = v.parse().expect("index");
        } else if let Some(v) = line.strip_prefix("pts_time=") {
            pts = seconds_to_ms(v);
        } else if let Some(v) = line.strip_prefix("dts_time=") {
            dts = seconds_to_ms(v);
        } else if let Some(v) = line.strip_prefix("flags=") {
            key = v.starts_with('K');
        } else if line == "data=" {
            raw.push((index, dts, pts, key, hex_dump(&mut lines)));
        }
    }
    // Audio priming and B-frame delay put the first decode times below zero; a registry's
    // timeline starts at 0.
    let base = raw.iter().map(|r| r.1).min().expect("packets");
    let mut frames: Vec<Frame> = raw
        .into_iter()
        .map(|(index, dts, pts, key, data)| {
            counts[index].1 += 1;
            let codec = tracks[index].codec;
            Frame {
                codec,
                dts: (dts - base) as u64,
                cts: (pts - dts) as i32,
                keyframe: key || codec.kind() == TrackKind::Audio,
                data: Bytes::from(data),
            }
        })
        .collect();
    frames.sort_by_key(|f| f.dts); // stable: each track keeps its order
    Media {
        tracks,
        frames,
        counts,
        duration,
    }
}

fn h264_aac() -> &'static Media {
    static MEDIA: OnceLock<Media> = OnceLock::new();
    MEDIA.get_or_init(|| encode("h264_aac", "libx264", "aac", 44_100))
}

/// Muxes `media`, cutting a fragment before each video keyframe at least 900 ms in.
fn mux(media: &Media) -> (Fmp4Muxer, Bytes, Vec<Fragment>) {
    let mut muxer = Fmp4Muxer::new(&media.tracks).expect("muxer");
    let init = muxer.init_segment();
    let mut fragments = Vec::new();
    for frame in &media.frames {
        if frame.kind() == TrackKind::Video && frame.keyframe && muxer.buffered_ms() >= 900 {
            fragments.extend(muxer.fragment_before(frame.dts));
        }
        muxer.push(frame);
    }
    fragments.extend(muxer.fragment());
    (muxer, init, fragments)
}

fn fragmented_file(init: &Bytes, fragments: &[Fragment]) -> Vec<u8> {
    let mut file = init.to_vec();
    fragments
        .iter()
        .for_each(|f| file.extend_from_slice(&f.data));
    file
}

fn progressive_file(muxer: &Fmp4Muxer, fragments: &[Fragment]) -> Vec<u8> {
    let mut index = Progressive::new(muxer);
    fragments.iter().for_each(|f| index.add(f));
    let mut file = index.header().to_vec();
    for f in fragments {
        file.extend_from_slice(&f.data[f.mdat_payload.clone()]);
    }
    file
}

/// ffprobe's (codec, decoded frame count) per stream, and the format's duration in seconds.
fn probe(path: &Path) -> (Vec<(String, usize)>, f64) {
    let (ok, out, err) = run(Command::new("ffprobe").args([
        "-v".as_ref(),
        "error".as_ref(),
        "-count_frames".as_ref(),
        "-show_entries".as_ref(),
        "stream=codec_name,nb_read_frames:format=duration".as_ref(),
        "-of".as_ref(),
        "default=noprint_wrappers=1".as_ref(),
        path.as_os_str(),
    ]));
    assert!(ok, "ffprobe {}: {err}", path.display());
    let mut streams = Vec::new();
    let mut duration = 0.0;
    let mut codec = String::new();
    for line in out.lines() {
        if let Some(c) = line.strip_prefix("codec_name=") {
            codec = c.to_owned();
        } else if let Some(n) = line.strip_prefix("nb_read_frames=") {
            streams.push((codec.clone(), n.parse().expect("frame count")));
        } else if let Some(d) = line.strip_prefix("duration=") {
            duration = d.parse().expect("duration");
        }
    }
    (streams, duration)
}

/// Decodes every frame with ffmpeg: (exit status ok, error output).
fn decode(path: &Path) -> (bool, String) {
    let (ok, _, err) = run(Command::new("ffmpeg").args([
        "-v".as_ref(),
        "error".as_ref(),
        "-i".as_ref(),
        path.as_os_str(),
        "-f".as_ref(),
        "null".as_ref(),
        "-".as_ref(),
    ]));
    (ok, err)
}

fn expected(media: &Media) -> Vec<(String, usize)> {
    media
        .counts
        .iter()
        .map(|(c, n)| ((*c).to_owned(), *n))
        .collect()
}

fn top_level(data: &[u8]) -> Vec<[u8; 4]> {
    mp4::boxes(data).map(|b| b.expect("box").0).collect()
}

#[test]
fn fragmented_h264_aac_probes_and_decodes() {
    if !have_ffmpeg() {
        return;
    }
    let media = h264_aac();
    let dir = TempDir::new("fragmented");
    let (_, init, fragments) = mux(media);
    assert!(fragments.len() >= 4, "{} fragments", fragments.len());
    assert!(fragments.iter().all(|f| f.independent));
    let path = dir.write("fragmented.mp4", &fragmented_file(&init, &fragments));
    let (streams, duration) = probe(&path);
    assert_eq!(streams, expected(media));
    assert!((duration - media.duration).abs() < 0.1, "{duration} s");
    assert_eq!(decode(&path), (true, String::new()));
}

#[test]
fn progressive_h264_aac_probes_and_decodes() {
    if !have_ffmpeg() {
        return;
    }
    let media = h264_aac();
    let dir = TempDir::new("progressive");
    let (muxer, _, fragments) = mux(media);
    let file = progressive_file(&muxer, &fragments);
    assert_eq!(top_level(&file), [*b"ftyp", *b"moov", *b"mdat"]);
    assert!(mp4::find(
        &file,
        &[*b"moov", *b"trak", *b"mdia", *b"minf", *b"stbl", *b"ctts"]
    )
    .is_some());
    let path = dir.write("progressive.mp4", &file);
    let (streams, duration) = probe(&path);
    assert_eq!(streams, expected(media));
    assert!((duration - media.duration).abs() < 0.1, "{duration} s");
    assert_eq!(decode(&path), (true, String::new()));
}

#[test]
fn truncated_fragmented_file_plays_up_to_the_last_whole_fragment() {
    if !have_ffmpeg() {
        return;
    }
    let media = h264_aac();
    let dir = TempDir::new("truncated");
    let (_, init, fragments) = mux(media);
    let whole = fragments.len() - 1;
    let complete = init.len()
        + fragments[..whole]
            .iter()
            .map(|f| f.data.len())
            .sum::<usize>();
    let last = &fragments[whole];
    let mut file = fragmented_file(&init, &fragments);
    file.truncate(complete + last.mdat_payload.start + last.mdat_payload.len() / 2);
    let frames_before = |kind: TrackKind| {
        fragments[..whole]
            .iter()
            .flat_map(|f| &f.samples)
            .filter(|s| media.tracks[s.track].kind() == kind)
            .count()
    };

    // As a crash leaves it: ffprobe still reads it and every whole fragment decodes.
    let path = dir.write("truncated.mp4", &file);
    let (streams, _) = probe(&path);
    assert_eq!(streams.len(), 2);
    assert!(
        streams[0].1 >= frames_before(TrackKind::Video),
        "{streams:?}"
    );
    assert!(
        streams[1].1 >= frames_before(TrackKind::Audio),
        "{streams:?}"
    );
    let (ok, _) = decode(&path);
    assert!(ok);

    // The recovery check: the boxes read whole up to the cut, which ends the iteration; the
    // file is cut back to the end of the last whole mdat (a moof alone is no use).
    let items: Vec<_> = mp4::boxes(&file).collect();
    assert!(items.last().expect("boxes").is_err());
    let good_end = items
        .iter()
        .map_while(|b| b.as_ref().ok())
        .filter(|(t, _)| t == b"mdat")
        .last()
        .expect("a whole mdat")
        .1
        .end;
    assert_eq!(good_end, complete);
    let recovered = dir.write("recovered.mp4", &file[..good_end]);
    let (streams, _) = probe(&recovered);
    assert_eq!(
        streams,
        [
            ("h264".to_owned(), frames_before(TrackKind::Video)),
            ("aac".to_owned(), frames_before(TrackKind::Audio))
        ]
    );
}

#[test]
fn hevc_opus_and_h264_alaw_probe_and_decode() {
    if !have_ffmpeg() {
        return;
    }
    for (name, video, audio, rate) in [
        ("hevc_opus", "libx265", "libopus", 48_000),
        ("h264_alaw", "libx264", "pcm_alaw", 8000),
    ] {
        let media = encode(name, video, audio, rate);
        let dir = TempDir::new(name);
        let (muxer, init, fragments) = mux(&media);
        let fragmented = dir.write("fragmented.mp4", &fragmented_file(&init, &fragments));
        let progressive = dir.write("progressive.mp4", &progressive_file(&muxer, &fragments));
        for path in [fragmented, progressive] {
            let (streams, duration) = probe(&path);
            assert_eq!(streams, expected(&media), "{}", path.display());
            assert!(
                (duration - media.duration).abs() < 0.1,
                "{}: {duration} s",
                path.display()
            );
            assert_eq!(decode(&path), (true, String::new()), "{}", path.display());
        }
    }
}
