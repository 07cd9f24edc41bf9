//! Opus audio (what a WHIP publisher sends) through every output with real clients: ffmpeg
//! publishes H.264 + Opus over RTSP (`opus/48000/2`); ffprobe sees exactly `h264, opus` over
//! RTSP, `.live.mp4`, LL-HLS (fMP4) and in the MP4 recording, and exactly `h264` (no phantom
//! audio track) over RTMP and HTTP-FLV (`rtmp.enhancedOpus=0`, the default) and MPEG-TS
//! (`.live.ts`, HLS). The Opus decodes to the 1 kHz tone that was published (volumedetect).

use e2e::*;
use media::{Codec, StreamKey};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::{Child, Command};

/// ffmpeg encoding a test picture and a 1 kHz tone in real time to H.264 + Opus and
/// publishing them to `url` over RTSP (TCP) until killed.
fn ffmpeg_publish_opus(url: &str) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(["-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
        .args([
            "-re",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000:sample_rate=48000",
        ])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "25"])
        .args([
            "-pix_fmt", "yuv420p", "-c:a", "libopus", "-ac", "2", "-b:a", "64k",
        ])
        .args(["-f", "rtsp", "-rtsp_transport", "tcp", url])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ffmpeg")
}

/// The mean volume (dB) of 2 s of `url`'s first audio track, decoded by ffmpeg.
async fn mean_volume(url: &str) -> f64 {
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-nostats",
        "-i",
        url,
        "-map",
        "0:a:0",
        "-t",
        "2",
    ])
    .args(["-af", "volumedetect", "-f", "null", "-"]);
    let out = output_within(&mut cmd, Duration::from_secs(30)).await;
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg decode of {url} failed: {log}");
    log.lines()
        .find_map(|l| l.split("mean_volume:").nth(1))
        .and_then(|v| v.trim().trim_end_matches("dB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no mean_volume for {url}: {log}"))
}

/// The codecs ffprobe reads in `url`, and the Opus track's sample rate and channels if any.
async fn probe(url: &str) -> (Vec<String>, Option<(String, i64)>) {
    let probe = ffprobe(url, 0).await;
    let opus = probe["streams"].as_array().and_then(|s| {
        s.iter().find(|st| st["codec_name"] == "opus").map(|st| {
            (
                st["sample_rate"].as_str().unwrap_or("?").to_owned(),
                st["channels"].as_i64().unwrap_or(0),
            )
        })
    });
    (codecs(&probe), opus)
}

/// Checks `url` shows H.264 and 48 kHz stereo Opus, and that the Opus is the published tone:
/// a sine of amplitude 1/8 is −21 dB mean; silence would be −91 dB.
async fn assert_h264_opus(url: &str) {
    let (codecs, opus) = probe(url).await;
    assert_eq!(codecs, ["h264", "opus"], "{url}");
    assert_eq!(opus, Some(("48000".to_owned(), 2)), "{url}");
    let volume = mean_volume(url).await;
    assert!(volume > -30.0, "{url}: mean volume {volume} dB");
    assert!(decode_frames(url, 25).await >= 25, "{url}: video decodes");
}

/// Every `.mp4` file under `dir`.
fn mp4_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "mp4") {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsp_opus_publish_plays_wherever_a_container_carries_opus() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server_with(|o| {
        o.protocol.enable_mp4 = true;
        o.protocol.mp4_save_path = dir.path().to_owned();
    })
    .await;
    let mut publisher = ffmpeg_publish_opus(&rtsp_url(&server, "live/opus"));
    let key = StreamKey::new("live", "opus").expect("key");
    wait_live(&server, &key, 2).await;
    let info = server.registry.stream(&key).expect("live");
    let tracks: Vec<(Codec, u32, u8)> = info
        .tracks
        .iter()
        .map(|t| (t.codec, t.sample_rate, t.channels))
        .collect();
    assert_eq!(tracks, [(Codec::H264, 0, 0), (Codec::Opus, 48_000, 2)]);

    let rtsp = rtsp_url(&server, "live/opus");
    let mp4 = http_url(&server, "live/opus.live.mp4");
    let ll_hls = http_url(&server, "live/opus/hls.fmp4.m3u8");
    let video_only = [
        rtmp_url(&server, "live/opus"),
        http_url(&server, "live/opus.live.flv"),
        http_url(&server, "live/opus/hls.m3u8"),
        http_url(&server, "live/opus.live.ts"),
    ];
    let video_only_check = async |url: &str| {
        let (codecs, _) = probe(url).await;
        assert_eq!(codecs, ["h264"], "{url}");
        assert!(decode_frames(url, 25).await >= 25, "{url}: video decodes");
    };
    tokio::join!(
        assert_h264_opus(&rtsp),
        assert_h264_opus(&mp4),
        assert_h264_opus(&ll_hls),
        video_only_check(&video_only[0]),
        video_only_check(&video_only[1]),
        video_only_check(&video_only[2]),
        video_only_check(&video_only[3]),
    );

    // The recording: closed by the stream's end, then played from the file.
    let _ = publisher.kill().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while server.registry.stream(&key).is_some() {
        assert!(tokio::time::Instant::now() < deadline, "the stream ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.shutdown().await;
    let files = mp4_files(dir.path());
    assert!(!files.is_empty(), "a recording");
    let longest = files
        .iter()
        .max_by_key(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .expect("a file");
    assert_h264_opus(longest.to_str().expect("utf-8 path")).await;
}
