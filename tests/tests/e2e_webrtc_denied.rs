//! on_play authorizes WebRTC players like every other: Chromium's WHEP offer for a stream the
//! backend refuses gets 403 with the backend's message and no SDP, and ZLMediaKit's JSON
//! flavour (`/index/api/webrtc?type=play`) a non-zero code and no `sdp`; on_play is asked with
//! `schema: "rtc"` each time.

use e2e::backend::{Backend, Reply};
use e2e::browser::{have_chromium, run_webrtc_page};
use e2e::*;
use serde_json::json;
use std::time::Duration;

/// `__WHEP__` and `__JSON__` are filled in by the test. One report with both answers.
const PAGE: &str = r#"<!doctype html>
<html><body>
<script>
const report = (r) => fetch('/report', { method: 'POST', body: JSON.stringify(r) });
async function main() {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  await pc.setLocalDescription(await pc.createOffer());
  const sdp = pc.localDescription.sdp;
  const whep = await fetch('__WHEP__', { method: 'POST',
    headers: { 'Content-Type': 'application/sdp' }, body: sdp });
  const json = await fetch('__JSON__', { method: 'POST', body: sdp });
  report({ name: 'denied', whep: whep.status, whepType: whep.headers.get('Content-Type'),
           location: whep.headers.get('Location'), whepBody: await whep.text(),
           json: json.status, jsonBody: await json.json() });
}
main().catch((e) => report({ name: 'denied', error: String(e) }));
</script>
</body></html>
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_webrtc_player_gets_no_answer() {
    if !have_ffmpeg() || !have_chromium() {
        return;
    }
    let backend = Backend::start().await;
    backend.reply(
        "on_play",
        Reply::Json(json!({"code": -1, "msg": "no ticket"})),
    );
    let server = start_server_with(|o| {
        o.hooks = backend.config();
        rtc_on_loopback(o);
    })
    .await;
    let mut publisher = publish_looped(&server, "live/closed").await;

    let page = PAGE
        .replace(
            "__WHEP__",
            &http_url(&server, "index/api/whep?app=live&stream=closed"),
        )
        .replace(
            "__JSON__",
            &http_url(&server, "index/api/webrtc?app=live&stream=closed&type=play"),
        );
    let got = run_webrtc_page(page, &["denied"], Duration::from_secs(30)).await;
    let denied = &got["denied"];
    assert_eq!(denied["whep"], 403, "{denied:#}");
    assert_eq!(denied["whepBody"], "no ticket");
    assert_eq!(denied["location"], serde_json::Value::Null);
    assert_ne!(denied["whepType"], "application/sdp");
    assert_eq!(denied["json"], 200);
    assert_eq!(
        denied["jsonBody"],
        json!({"code": -400, "msg": "no ticket"})
    );

    let plays = backend.calls("on_play");
    assert_eq!(plays.len(), 2, "{plays:?}");
    for call in &plays {
        assert_eq!(call.body["schema"], "rtc");
        assert_eq!(call.body["app"], "live");
        assert_eq!(call.body["stream"], "closed");
    }
    assert!(server
        .registry
        .sessions()
        .iter()
        .all(|s| s.info.protocol != registry::Protocol::Rtc));
    let _ = publisher.kill().await;
    server.shutdown().await;
}
