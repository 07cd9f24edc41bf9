//! A second publisher to a live stream is refused while the first goes on; when the publisher
//! leaves, players get end of stream and the stream leaves the registry.

use e2e::*;
use media::StreamKey;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_publisher_refused_first_goes_on() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    let url = rtmp_url(&server, "live/dup");
    let _first = ffmpeg_publish(&url, &["-stream_loop", "-1"]);
    let key = StreamKey::new("live", "dup").expect("key");
    wait_live(&server, &key, 2).await;
    let first_id = server.registry.stream(&key).expect("live").publisher.id;

    let second = ffmpeg_publish(&url, &[]);
    let out = tokio::time::timeout(Duration::from_secs(20), second.wait_with_output())
        .await
        .expect("second publisher gives up")
        .expect("wait");
    assert!(!out.status.success(), "second publisher must fail");

    let info = server.registry.stream(&key).expect("still live");
    assert_eq!(
        info.publisher.id, first_id,
        "the first publisher keeps the stream"
    );
    assert!(decode_frames(&rtmp_url(&server, "live/dup"), 10).await >= 10);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_get_end_of_stream_when_publisher_leaves() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    // A 10 s sample, published once.
    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/eos"), &[]);
    let key = StreamKey::new("live", "eos").expect("key");
    wait_live(&server, &key, 2).await;
    // Both players read to the end; they must exit by themselves once the publisher is gone.
    let mut rtmp = tokio::process::Command::new("ffmpeg");
    rtmp.args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-i",
        &rtmp_url(&server, "live/eos"),
    ])
    .args(["-f", "null", "-"]);
    let mut flv = tokio::process::Command::new("ffmpeg");
    flv.args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-i",
        &http_url(&server, "live/eos.live.flv"),
    ])
    .args(["-f", "null", "-"]);
    let (a, b) = tokio::join!(
        output_within(&mut rtmp, Duration::from_secs(40)),
        output_within(&mut flv, Duration::from_secs(40)),
    );
    assert!(
        a.status.success(),
        "rtmp player: {}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert!(
        b.status.success(),
        "flv player: {}",
        String::from_utf8_lossy(&b.stderr)
    );
    let _ = publisher.wait().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.registry.is_live(&key) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stream left the registry"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
}
