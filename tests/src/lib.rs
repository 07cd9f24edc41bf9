//! The end-to-end harness: an in-process server on 127.0.0.1:0 (or the real binary) and real
//! clients against it: ffmpeg/ffprobe, GStreamer, headless Chromium (pages that report, or
//! driven over the DevTools protocol), coturn's tools, our own RTMP/RTSP/HTTP clients for what
//! those cannot do, an axum hook backend, and a real `nats-server -js`.
//!
//! Each file in `tests/tests/` is one behaviour (STYLE §8) and uses this library.
// A test harness, not an API: its helpers are named for what they do and documented where
// that is not obvious.
#![allow(missing_docs)]

pub mod api;
pub mod backend;
pub mod browser;
pub mod cdp;
pub mod client;
pub mod envelope;
pub mod http1;
pub mod nats;
pub mod raw_rtsp;

use media::StreamKey;
use server::{Options, RtmpOptions, Server};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The `ferrostream` binary of this build (`target/<profile>/ferrostream`, beside the test
/// executable's `deps/` directory). `cargo test` builds it with the server crate's tests.
pub fn ferrostream_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join("ferrostream");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p server` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// Whether ffmpeg and ffprobe are installed. Missing tools skip a test locally and fail it in
/// CI (`CI` set), where `scripts/test` must have installed them.
pub fn have_ffmpeg() -> bool {
    let ok = ["ffmpeg", "ffprobe"].iter().all(|tool| {
        std::process::Command::new(tool)
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

/// A server with RTMP and HTTP on ephemeral loopback ports.
pub async fn start_server() -> Server {
    start_server_with(|_| {}).await
}

/// Like [`start_server`], with options adjusted by `tweak`.
pub async fn start_server_with(tweak: impl FnOnce(&mut Options)) -> Server {
    start_server_from(server::config::Config::default(), tweak).await
}

/// Like [`start_server_with`], from `config` instead of the defaults: what the API reads and
/// reports (getServerConfig, the secret) is then `config`, not only the options.
pub async fn start_server_from(
    config: server::config::Config,
    tweak: impl FnOnce(&mut Options),
) -> Server {
    let mut options = Options::from_config(&config);
    options.rtmp_addr = Some("127.0.0.1:0".parse().expect("addr"));
    options.http_addr = Some("127.0.0.1:0".parse().expect("addr"));
    options.rtsp_addr = Some("127.0.0.1:0".parse().expect("addr"));
    options.rtmp = RtmpOptions {
        handshake_timeout: Duration::from_secs(5),
        keep_alive: Duration::from_secs(10),
    };
    options.max_stream_wait = Duration::from_secs(5);
    // `turn.port` defaults to 3478: parallel test binaries would collide on it. A TURN test
    // turns it on at 127.0.0.1:0 in `tweak`.
    options.turn_addr = None;
    // `rtp_proxy.port` defaults to 10000: the same. An RTP test sets `rtp_server.shared`.
    options.rtp_server.shared = None;
    // `rtc.port` defaults to 8000: the same. A WebRTC test turns it on at 127.0.0.1:0.
    options.rtc.addr = None;
    options.rtc.tcp_addr = None;
    tweak(&mut options);
    Server::start(options).await.expect("server starts")
}

/// A loopback TCP port nobody listens on now (bound, then released).
pub fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    probe.local_addr().expect("addr").port()
}

pub fn rtmp_url(server: &Server, path: &str) -> String {
    format!("rtmp://{}/{path}", server.rtmp_addr.expect("rtmp on"))
}

pub fn rtsp_url(server: &Server, path: &str) -> String {
    format!("rtsp://{}/{path}", server.rtsp_addr.expect("rtsp on"))
}

pub fn http_url(server: &Server, path: &str) -> String {
    format!("http://{}/{path}", server.http_addr.expect("http on"))
}

/// A 10 s H.264 (320x240, 25 fps, keyframe every 1 s) + AAC FLV file, made once per test
/// binary with ffmpeg's own encoders.
pub fn sample_flv() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ferrostream-e2e-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("sample.flv");
        let status = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
            .args([
                "-t",
                "10",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "25",
            ])
            .args([
                "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-f", "flv",
            ])
            .arg(&path)
            .status()
            .expect("run ffmpeg");
        assert!(status.success(), "ffmpeg could not make the sample");
        path
    })
}

/// ffmpeg pushing the sample in real time to `url`; `input_args` go before `-i` (e.g.
/// `-stream_loop -1`).
pub fn ffmpeg_publish(url: &str, input_args: &[&str]) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(input_args)
        .args(["-re", "-i"])
        .arg(sample_flv())
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ffmpeg")
}

/// ffmpeg reading `url` to nowhere until it is stopped or its stream ends (a viewer that
/// only has to be there).
pub fn ffmpeg_view(url: &str) -> Child {
    Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            url,
            "-f",
            "null",
            "-",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ffmpeg")
}

/// Whether `child` exits within `limit`.
pub async fn exits_within(child: &mut Child, limit: Duration) -> bool {
    tokio::time::timeout(limit, child.wait()).await.is_ok()
}

/// Polls until `key` is live with its tracks known, or panics after 15 s.
pub async fn wait_live(server: &Server, key: &StreamKey, tracks: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if server
            .registry
            .stream(key)
            .is_some_and(|s| s.tracks.len() >= tracks)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} did not go live"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Output of a process that must finish within `limit` (a hang check, not a speed check).
pub async fn output_within(cmd: &mut Command, limit: Duration) -> std::process::Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().expect("spawn");
    tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{cmd:?} did not finish within {limit:?}"))
        .expect("wait")
}

/// ffprobe's JSON view of `url`: streams, and the first `frames` frames when non-zero.
pub async fn ffprobe(url: &str, frames: usize) -> serde_json::Value {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-of", "json", "-show_streams"]);
    if frames > 0 {
        cmd.args(["-show_frames", "-read_intervals"])
            .arg(format!("%+#{frames}"));
    }
    cmd.arg(url);
    let out = output_within(&mut cmd, Duration::from_secs(30)).await;
    assert!(
        out.status.success(),
        "ffprobe {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe json")
}

/// The codec of every stream ffprobe reports, sorted: one entry per stream, so a stream
/// without a codec (a data stream) shows up as `"none (data)"` instead of being left out.
pub fn codecs(probe: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = probe["streams"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|st| match st["codec_name"].as_str() {
                    Some(name) => name.to_owned(),
                    None => format!("none ({})", st["codec_type"].as_str().unwrap_or("?")),
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Decodes `frames` video frames of `url` with ffmpeg; returns how many it decoded.
pub async fn decode_frames(url: &str, frames: usize) -> usize {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostats", "-i", url, "-map", "0:v:0"])
        .args(["-frames:v", &frames.to_string(), "-f", "null", "-"])
        .args(["-progress", "pipe:1"]);
    let out = output_within(&mut cmd, Duration::from_secs(30)).await;
    assert!(
        out.status.success(),
        "ffmpeg decode of {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|n| n.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

/// WebRTC on loopback for a test server: `rtc.port` on an ephemeral port, candidates on
/// 127.0.0.1 (the harness turns WebRTC off by default).
pub fn rtc_on_loopback(o: &mut Options) {
    o.rtc.addr = Some("127.0.0.1:0".parse().expect("addr"));
    o.rtc.extern_ip = Some("127.0.0.1".parse().expect("ip"));
}

/// ffmpeg publishing the looped sample to `path` (`app/stream`) over RTMP, once the stream is
/// live with both tracks.
pub async fn publish_looped(server: &Server, path: &str) -> tokio::process::Child {
    let publisher = ffmpeg_publish(&rtmp_url(server, path), &["-stream_loop", "-1"]);
    let (app, stream) = path.split_once('/').expect("app/stream");
    wait_live(server, &media::StreamKey::new(app, stream).expect("key"), 2).await;
    publisher
}
