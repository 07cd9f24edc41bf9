//! A viewer who joins mid-GOP gets a picture at once: its first video frame is the cached
//! keyframe, not a frame it cannot decode.

use e2e::*;
use media::StreamKey;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_viewer_starts_at_a_keyframe() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/late"), &["-stream_loop", "-1"]);
    let key = StreamKey::new("live", "late").expect("key");
    wait_live(&server, &key, 2).await;
    // Join well after the first keyframe, at some point inside a 1 s GOP.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    for url in [
        rtmp_url(&server, "live/late"),
        http_url(&server, "live/late.live.flv"),
    ] {
        let mut cmd = tokio::process::Command::new("ffprobe");
        cmd.args(["-v", "error", "-of", "json", "-select_streams", "v:0"])
            .args(["-show_packets", "-read_intervals", "%+#5", &url]);
        let out = output_within(&mut cmd, Duration::from_secs(30)).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let first = &json["packets"][0];
        assert_eq!(
            first["flags"].as_str().map(|f| f.starts_with('K')),
            Some(true),
            "{url}: {first}"
        );
        // The cached GOP starts at the last keyframe, which is at most 1 s old.
        let pts = first["pts_time"]
            .as_str()
            .and_then(|t| t.parse::<f64>().ok())
            .expect("pts");
        assert!(
            pts >= 1.0,
            "{url}: started from the cache, not the beginning: {pts}"
        );
        assert!(decode_frames(&url, 10).await >= 10);
    }
    server.shutdown().await;
}
