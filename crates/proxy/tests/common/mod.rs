//! What the RTSP proxy tests share: a real camera (GStreamer's RTSP server driven by
//! `tests/data/rtsp_camera.py`), a registry with hooks disabled, and readers of what arrives.
#![allow(dead_code)] // each test file uses its own part

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use media::{Codec, Frame, StreamKey, TrackInfo};
use proxy::{Context, Ingest};
use registry::{Item, Protocol, Registry, StreamOptions};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The Python with Debian's `gi` (a pyenv `python3` first on PATH lacks it).
fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Whether `program args…` runs and exits 0; else skips the test locally, fails it in CI.
fn have(what: &str, program: &str, args: &[&str]) -> bool {
    let ok = std::process::Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} missing in CI: scripts/test must install it"
        );
        eprintln!("skipped: {what} missing");
    }
    ok
}

/// GStreamer's RTSP server from Python (gir1.2-gst-rtsp-server-1.0, python3-gi) with x264.
pub fn have_camera() -> bool {
    have(
        "GStreamer's RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0)",
        python(),
        &["-c", "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"],
    ) && have("x264enc (gstreamer1.0-plugins-ugly)", "gst-inspect-1.0", &["--exists", "x264enc"])
}

/// ffmpeg and ffprobe.
pub fn have_ffmpeg() -> bool {
    have("ffmpeg", "ffmpeg", &["-version"]) && have("ffprobe", "ffprobe", &["-version"])
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A live camera on `port` at `rtsp://127.0.0.1:port/live/cam`; `args` as the script takes
/// them (`--user`, `--pass`, `--h265`, `--audio`). Killed when dropped.
pub async fn camera(port: u16, args: &[&str]) -> Child {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/rtsp_camera.py"
    );
    let mut child = Command::new(python())
        .arg(script)
        .arg(port.to_string())
        .arg("live/cam")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the camera");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the camera starts within 20 s")
        .expect("read")
        .expect("a line");
    assert_eq!(ready, format!("ready rtsp://127.0.0.1:{port}/live/cam"));
    child
}

/// A registry with hooks disabled and the server's outputs, as the server builds them.
pub fn context() -> Context {
    let registry = Registry::default();
    Context {
        outputs: outputs::Outputs::new(registry.clone(), outputs::OutputsConfig::default()),
        hooks: hooks::Hooks::new(hooks::HookConfig::default()),
        registry,
        protocol: Arc::new(StreamOptions::default),
    }
}

/// `live/<name>`, pulled from `origin`.
pub fn ingest(ctx: &Context, name: &str, origin: &str) -> Ingest {
    let key = StreamKey::new("live", name).expect("key");
    Ingest::new(
        ctx.clone(),
        key,
        Protocol::Pull,
        Some(origin.into()),
        Default::default(),
    )
}

/// Waits (up to 20 s) for `key` to have a video and an audio track.
pub async fn tracks(registry: &Registry, key: &StreamKey) -> Vec<TrackInfo> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(info) = registry.stream(key) {
            let kinds: Vec<_> = info.tracks.iter().map(TrackInfo::kind).collect();
            if kinds.contains(&media::TrackKind::Video) && kinds.contains(&media::TrackKind::Audio)
            {
                return info.tracks;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no tracks: {:?}",
            registry.stream(key).map(|s| s.tracks)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The frames of `key` read for `time` from its last keyframe on.
pub async fn frames(registry: &Registry, key: &StreamKey, time: Duration) -> Vec<Frame> {
    let mut reader = registry.subscribe_output(key).expect("live");
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + time;
    while let Ok(Ok(item)) = tokio::time::timeout_at(deadline, reader.recv()).await {
        if let Item::Frame(f) = item {
            frames.push(f);
        }
    }
    frames
}

/// Checks `frames` hold about `secs` seconds of the camera's 25 fps video (starting at a
/// keyframe, a keyframe every 30 frames, dts rising) and of `audio` frames.
pub fn check_frames(frames: &[Frame], video: Codec, audio: Codec, secs: u64) {
    let v: Vec<&Frame> = frames.iter().filter(|f| f.codec == video).collect();
    let a: Vec<&Frame> = frames.iter().filter(|f| f.codec == audio).collect();
    assert_eq!(
        frames.len(),
        v.len() + a.len(),
        "only the camera's two codecs: {:?}",
        frames
            .iter()
            .map(|f| f.codec)
            .collect::<std::collections::HashSet<_>>()
    );
    let expected = 25 * secs as usize;
    assert!(
        v.len() >= expected * 7 / 10 && v.len() <= expected * 13 / 10 + 30,
        "{} video frames in {secs} s",
        v.len()
    );
    assert!(v[0].keyframe, "a reader starts at a keyframe");
    let keyframes = v.iter().filter(|f| f.keyframe).count();
    assert!(
        keyframes >= v.len() / 30,
        "{keyframes} keyframes in {} frames",
        v.len()
    );
    if let Some(w) = v.windows(2).find(|w| w[1].dts <= w[0].dts) {
        panic!(
            "video dts not rising: {} ({} bytes, key {}) then {} ({} bytes, key {})",
            w[0].dts,
            w[0].data.len(),
            w[0].keyframe,
            w[1].dts,
            w[1].data.len(),
            w[1].keyframe
        );
    }
    let span = v.last().expect("frames").dts - v[0].dts;
    assert!(
        span.abs_diff(v.len() as u64 * 40) < 400,
        "{span} ms for {} frames",
        v.len()
    );
    assert!(
        a.len() >= 5 * secs as usize,
        "{} audio frames in {secs} s",
        a.len()
    );
    assert!(
        a.windows(2).all(|w| w[1].dts >= w[0].dts),
        "audio dts rising"
    );
    assert!(v.iter().all(|f| !f.data.is_empty()) && a.iter().all(|f| !f.data.is_empty()));
}
