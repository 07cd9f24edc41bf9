//! ffmpeg publishes H.264 + AAC over RTMP; ffprobe and ffmpeg play it back over RTMP,
//! HTTP-FLV and WS-FLV.

use e2e::*;
use futures_util::StreamExt;
use media::StreamKey;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_publish_plays_over_rtmp_http_flv_and_ws_flv() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    let mut publisher = ffmpeg_publish(
        &rtmp_url(&server, "live/obs?token=abc"),
        &["-stream_loop", "-1"],
    );
    let key = StreamKey::new("live", "obs").expect("key");
    wait_live(&server, &key, 2).await;
    let info = server.registry.stream(&key).expect("live");
    assert_eq!(info.publisher.params, "token=abc");
    let video = info
        .tracks
        .iter()
        .find(|t| t.codec == media::Codec::H264)
        .expect("h264 track");
    assert_eq!((video.width, video.height), (320, 240));

    // RTMP playback: exactly the two tracks (no data stream beside them).
    let rtmp = rtmp_url(&server, "live/obs");
    let probe = ffprobe(&rtmp, 0).await;
    assert_eq!(codecs(&probe), ["aac", "h264"], "{probe}");
    assert!(decode_frames(&rtmp, 30).await >= 30);
    // …so every stream of it remuxes into MP4 as is.
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("copy.mp4");
    let mut cmd = tokio::process::Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-i", &rtmp])
        .args(["-map", "0", "-c", "copy", "-t", "2"])
        .arg(&copy);
    let out = output_within(&mut cmd, Duration::from_secs(30)).await;
    assert!(
        out.status.success(),
        "ffmpeg -map 0 -c copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copied = ffprobe(copy.to_str().expect("utf-8 path"), 0).await;
    assert_eq!(codecs(&copied), ["aac", "h264"], "{copied}");

    // HTTP-FLV playback.
    let flv = http_url(&server, "live/obs.live.flv");
    let probe = ffprobe(&flv, 0).await;
    assert_eq!(codecs(&probe), ["aac", "h264"], "{probe}");
    let width = probe["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == "video"))
        .map(|s| s["width"].clone());
    assert_eq!(width, Some(serde_json::json!(320)));
    assert!(decode_frames(&flv, 30).await >= 30);

    // WS-FLV: the same bytes over a WebSocket, one tag per message after the file header.
    let ws_url = format!("ws://{}/live/obs.live.flv", server.http_addr.expect("http"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url)
        .await
        .expect("ws connect");
    let mut messages = Vec::new();
    while messages.len() < 10 {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("ws message in time")
            .expect("ws open")
            .expect("ws ok");
        if msg.is_binary() {
            messages.push(msg.into_data());
        }
    }
    assert_eq!(&messages[0][..3], b"FLV");
    assert_eq!(messages[0][4], 0x05, "audio and video flags");
    // Then script data (onMetaData), sequence headers, and a keyframe first among video tags.
    assert_eq!(messages[1][0], 0x12, "metadata tag first");
    let first_video = messages[2..]
        .iter()
        .find(|m| m[0] == 0x09 && m.get(12) == Some(&0x01))
        .expect("a video frame tag");
    assert_eq!(first_video[11] >> 4, 1, "first video frame is a keyframe");
    drop(ws);

    let _ = publisher.kill().await;
    server.shutdown().await;
}
