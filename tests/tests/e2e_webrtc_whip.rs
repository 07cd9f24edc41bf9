//! Headless Chromium publishes its fake camera and microphone (H.264 + Opus) over WHIP
//! (`POST /index/api/whip`); the offer's tracks become an ordinary stream: on_publish is asked
//! with `schema: "rtc"`, ffprobe reads it over RTMP (H.264 alone: Opus over RTMP is Enhanced
//! RTMP's, off by default) and RTSP (H.264 and Opus), and the stream ends when the browser goes
//! away.

use e2e::backend::Backend;
use e2e::browser::{chromium_with, have_chromium, serve_page, WEBRTC};
use e2e::*;
use media::StreamKey;
use std::time::Duration;

/// `__WHIP__` is filled in by [`page`]. The page reports the answer, then keeps publishing.
const PAGE: &str = r#"<!doctype html>
<html><body>
<script>
const report = (r) => fetch('/report', { method: 'POST', body: JSON.stringify(r) });
async function main() {
  const media = await navigator.mediaDevices.getUserMedia({
    video: { width: 320, height: 240, frameRate: 25 }, audio: true });
  const pc = new RTCPeerConnection();
  for (const track of media.getTracks()) {
    const t = pc.addTransceiver(track, { direction: 'sendonly' });
    if (track.kind === 'video') {
      const h264 = RTCRtpSender.getCapabilities('video').codecs
        .filter((c) => c.mimeType === 'video/H264');
      t.setCodecPreferences(h264);
    }
  }
  await pc.setLocalDescription(await pc.createOffer());
  const resp = await fetch('__WHIP__', { method: 'POST',
    headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  const answer = await resp.text();
  report({ name: 'answer', status: resp.status, type: resp.headers.get('Content-Type'),
           location: resp.headers.get('Location'), answer });
  if (resp.status === 201) await pc.setRemoteDescription({ type: 'answer', sdp: answer });
}
main().catch((e) => report({ name: 'answer', error: String(e) }));
</script>
</body></html>
"#;

fn page(whip: &str) -> String {
    PAGE.replace("__WHIP__", whip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_publishes_whip_and_rtmp_plays_it_until_the_browser_leaves() {
    if !have_ffmpeg() || !have_chromium() {
        return;
    }
    let backend = Backend::start().await;
    let mut hooks = backend.config();
    // ZLMediaKit's default list leaves rtc out; a backend that wants it names it.
    hooks.stream_changed_schemas.push("rtc".into());
    let server = start_server_with(|o| {
        o.hooks = hooks;
        rtc_on_loopback(o);
        o.rtc.idle_timeout = Duration::from_secs(3);
        // The stream ends with its publisher, without waiting for it to come back.
        o.protocol.continue_push = Duration::ZERO;
    })
    .await;
    let key = StreamKey::new("live", "whip").expect("key");
    let whip = http_url(&server, "index/api/whip?app=live&stream=whip&token=abc");
    let (addr, mut reports, page_server) = serve_page(page(&whip), "/unused.js", "").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut browser = chromium_with(&format!("http://{addr}/"), dir.path(), WEBRTC);

    let answer = tokio::time::timeout(Duration::from_secs(20), reports.recv())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no answer report:\n{}",
                e2e::browser::chromium_log(dir.path())
            )
        })
        .expect("page server running");
    assert_eq!(answer["status"], 201, "{answer:#}");
    assert_eq!(answer["type"], "application/sdp");

    // on_publish was asked before the answer, with the rtc schema and the URL's params.
    let publish = backend.calls("on_publish");
    assert_eq!(publish.len(), 1, "{publish:?}");
    let body = &publish[0].body;
    assert_eq!(body["schema"], "rtc");
    assert_eq!(body["app"], "live");
    assert_eq!(body["stream"], "whip");
    assert_eq!(body["originType"], 8);
    assert_eq!(body["originTypeStr"], "rtc_push");
    assert!(
        body["params"]
            .as_str()
            .unwrap_or_default()
            .contains("token=abc"),
        "{body}"
    );

    wait_live(&server, &key, 2).await;
    // A WHIP stream registers the rtc schema beside the outputs.
    let rtc = backend
        .wait_for("on_stream_changed", 1, Duration::from_secs(5), |c| {
            c.body["schema"] == "rtc" && c.body["regist"] == true
        })
        .await;
    assert_eq!(rtc[0].body["stream"], "whip");
    // RTMP: the video alone (Opus over RTMP is Enhanced RTMP's, off by default: ffmpeg 5.1
    // cannot read it). RTSP: both.
    let probe = ffprobe(&rtmp_url(&server, "live/whip"), 150).await;
    assert_eq!(codecs(&probe), vec!["h264"], "{probe:#}");
    // The server asks the browser for a keyframe every 2 s (it sends one only when asked), so
    // the stream has GOPs for its other viewers: 150 frames (5-6 s) hold at least two.
    let keyframes = probe["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .filter(|f| f["key_frame"] == 1)
        .count();
    assert!(keyframes >= 2, "{keyframes} keyframes in 150 frames");
    let video = &probe["streams"][0];
    assert_eq!(
        (&video["width"], &video["height"]),
        (&320.into(), &240.into())
    );
    let probe = ffprobe(&rtsp_url(&server, "live/whip"), 10).await;
    assert_eq!(codecs(&probe), vec!["h264", "opus"], "{probe:#}");
    let publisher = server
        .registry
        .sessions()
        .into_iter()
        .find(|s| s.role == registry::Role::Publisher)
        .expect("the WHIP publisher is listed");
    assert_eq!(publisher.info.protocol, registry::Protocol::Rtc);

    // The browser goes away without a word: the stream ends after rtc.timeoutSec.
    let _ = browser.kill().await;
    page_server.abort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.registry.is_live(&key) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the WHIP stream outlived its publisher"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    backend
        .wait_for("on_stream_changed", 1, Duration::from_secs(5), |c| {
            c.body["schema"] == "rtc" && c.body["regist"] == false
        })
        .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whip_delete_ends_the_stream_at_once() {
    if !have_ffmpeg() || !have_chromium() {
        return;
    }
    // continue_push_ms keeps a stream whose publisher dropped; a DELETE is no drop.
    let server = start_server_with(|o| {
        rtc_on_loopback(o);
        o.protocol.continue_push = Duration::from_secs(30);
    })
    .await;
    let key = StreamKey::new("live", "gone").expect("key");
    let whip = http_url(&server, "index/api/whip?app=live&stream=gone");
    let (addr, mut reports, page_server) = serve_page(page(&whip), "/unused.js", "").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut browser = chromium_with(&format!("http://{addr}/"), dir.path(), WEBRTC);
    let answer = tokio::time::timeout(Duration::from_secs(20), reports.recv())
        .await
        .expect("an answer report")
        .expect("page server running");
    assert_eq!(answer["status"], 201, "{answer:#}");
    wait_live(&server, &key, 2).await;
    let location = answer["location"].as_str().expect("Location");
    let resp = reqwest::Client::new()
        .delete(http_url(&server, location.trim_start_matches('/')))
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status(), 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while server.registry.is_live(&key) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream outlived its publisher's DELETE"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = browser.kill().await;
    page_server.abort();
    server.shutdown().await;
}
