//! ffmpeg publishes H.264 + AAC over RTMP; GStreamer, a second client implementation (librtmp's
//! `rtmpsrc`, libsoup's `souphttpsrc`, its own `flvdemux`, `rtspsrc` and RTP depayloaders),
//! plays it over RTMP, HTTP-FLV and RTSP and decodes video and audio.

use e2e::*;
use media::StreamKey;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// Video frames GStreamer must decode.
const FRAMES: u64 = 30;
/// One decoded 320x240 I420 frame.
const FRAME_BYTES: u64 = 320 * 240 * 3 / 2;

/// The GStreamer elements the pipelines use (Debian: gstreamer1.0-tools, -plugins-base,
/// -plugins-good, -plugins-bad, -libav).
const ELEMENTS: [&str; 13] = [
    "rtmpsrc",
    "rtspsrc",
    "rtph264depay",
    "rtpmp4gdepay",
    "souphttpsrc",
    "flvdemux",
    "h264parse",
    "avdec_h264",
    "aacparse",
    "avdec_aac",
    "identity",
    "queue",
    "filesink",
];

/// Whether gst-launch-1.0 and every element in [`ELEMENTS`] are installed. Missing ones skip
/// the test locally and fail it in CI (`CI` set), where `scripts/test` must have installed
/// them.
fn have_gstreamer() -> bool {
    let run = |tool: &str, args: &[&str]| {
        std::process::Command::new(tool)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let missing: Vec<&str> = if run("gst-launch-1.0", &["--version"]) {
        ELEMENTS
            .into_iter()
            .filter(|e| !run("gst-inspect-1.0", &["--exists", e]))
            .collect()
    } else {
        vec!["gst-launch-1.0"]
    };
    if !missing.is_empty() {
        assert!(
            std::env::var_os("CI").is_none(),
            "GStreamer missing in CI ({missing:?}): scripts/test must install it"
        );
        eprintln!("skipped: GStreamer missing ({missing:?})");
    }
    missing.is_empty()
}

/// Plays an FLV `source` (a GStreamer source element and its properties) with gst-launch-1.0
/// until [`FRAMES`] video frames and some audio are decoded; returns the decoded video frame
/// count and audio bytes. The capsfilter makes a size other than 320x240 fail negotiation.
async fn gst_play(source: &str, dir: &Path) -> (u64, u64) {
    let demux = format!("{source} ! flvdemux name=d");
    gst_decode(&demux, "d.video ! queue", "d.audio ! queue", 20, dir).await
}

/// Runs `demux` (elements ending in one named `d`) with a video branch starting at `video`
/// (H.264 out) and an audio branch at `audio` (AAC out) until [`FRAMES`] video frames and
/// `audio_buffers` audio buffers are decoded.
async fn gst_decode(
    demux: &str,
    video_branch: &str,
    audio_branch: &str,
    audio_buffers: u32,
    dir: &Path,
) -> (u64, u64) {
    let video = dir.join("video.yuv");
    let audio = dir.join("audio.raw");
    // `identity eos-after` ends each branch; it may let a frame or two more through.
    let pipeline = format!(
        "{demux} \
         {video_branch} ! h264parse ! avdec_h264 ! video/x-raw,format=I420,width=320,height=240 \
         ! identity eos-after={} ! filesink location={} \
         {audio_branch} ! aacparse ! avdec_aac ! audio/x-raw,rate=44100 \
         ! identity eos-after={audio_buffers} ! filesink location={}",
        FRAMES + 1,
        video.display(),
        audio.display(),
    );
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.arg("-q").args(pipeline.split_whitespace());
    let out = output_within(&mut cmd, Duration::from_secs(30)).await;
    let log = || {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    assert!(out.status.success(), "gst-launch-1.0 failed:\n{}", log());
    let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let video_bytes = len(&video);
    assert_eq!(video_bytes % FRAME_BYTES, 0, "partial frame\n{}", log());
    (video_bytes / FRAME_BYTES, len(&audio))
}

/// A server with ffmpeg publishing the looped sample to `live/gst`.
async fn publish() -> (server::Server, tokio::process::Child) {
    let server = start_server().await;
    let publisher = ffmpeg_publish(&rtmp_url(&server, "live/gst"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "gst").expect("key"), 2).await;
    (server, publisher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_plays_over_rtmp() {
    if !have_ffmpeg() || !have_gstreamer() {
        return;
    }
    let (server, mut publisher) = publish().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = rtmp_url(&server, "live/gst");
    let (frames, audio) = gst_play(&format!("rtmpsrc location={url}"), dir.path()).await;
    assert!(frames >= FRAMES, "decoded {frames} video frames");
    assert!(audio > 0, "decoded no audio");
    let _ = publisher.kill().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_plays_over_http_flv() {
    if !have_ffmpeg() || !have_gstreamer() {
        return;
    }
    let (server, mut publisher) = publish().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = http_url(&server, "live/gst.live.flv");
    let (frames, audio) = gst_play(&format!("souphttpsrc location={url}"), dir.path()).await;
    assert!(frames >= FRAMES, "decoded {frames} video frames");
    assert!(audio > 0, "decoded no audio");
    let _ = publisher.kill().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_plays_over_rtsp() {
    if !have_ffmpeg() || !have_gstreamer() {
        return;
    }
    let (server, mut publisher) = publish().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = rtsp_url(&server, "live/gst");
    // rtspsrc stops every branch once one ends: the audio branch waits for ~2 s of audio.
    let demux = format!("rtspsrc location={url} protocols=tcp name=d");
    let (frames, audio) = gst_decode(
        &demux,
        "d. ! rtph264depay",
        "d. ! rtpmp4gdepay",
        100,
        dir.path(),
    )
    .await;
    assert!(frames >= FRAMES, "decoded {frames} video frames");
    assert!(audio > 0, "decoded no audio");
    let _ = publisher.kill().await;
    server.shutdown().await;
}
