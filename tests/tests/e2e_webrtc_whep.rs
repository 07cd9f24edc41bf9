//! ffmpeg publishes H.264 + AAC over RTMP; headless Chromium plays it over WHEP
//! (`POST /index/api/whep`): the H.264 passed through, the AAC (a 440 Hz sine) transcoded to
//! Opus, and the page reports what `getStats` says it decoded and heard. Then `DELETE` on the
//! answer's `Location` ends the session.
//!
//! The page posts a recvonly offer for video and audio, sets the answer, and reports once:
//! the signalling answer (status, headers), then the inbound video's codec, frames decoded and
//! size once more than 30 frames were decoded, or the failure or timeout.

use e2e::api::Api;
use e2e::backend::Backend;
use e2e::browser::{collect_reports_with, have_chromium, serve_page, WEBRTC};
use e2e::*;
use std::time::Duration;

/// The page gives up after this long; the test waits a little longer for the report.
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

/// `__WHEP__` and `__TIMEOUT__` are filled in by [`page`].
const PAGE: &str = r#"<!doctype html>
<html><body>
<video id="v" autoplay playsinline></video>
<script>
const report = (r) => fetch('/report', { method: 'POST', body: JSON.stringify(r) });
let signalling = {};
async function main() {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.ontrack = (e) => { document.getElementById('v').srcObject = e.streams[0] || new MediaStream([e.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  const resp = await fetch('__WHEP__', { method: 'POST',
    headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  const answer = await resp.text();
  signalling = { status: resp.status, type: resp.headers.get('Content-Type'),
                 location: resp.headers.get('Location'), answer };
  report({ name: 'answer', ...signalling });
  if (resp.status !== 201) return;
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  const started = Date.now();
  const poll = setInterval(async () => {
    const stats = await pc.getStats();
    let video = null, audio = null;
    const codecs = {};
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') video = s;
      if (s.type === 'inbound-rtp' && s.kind === 'audio') audio = s;
      if (s.type === 'codec') codecs[s.id] = s;
    });
    const done = (ok, detail) => {
      clearInterval(poll);
      report({ name: 'video', ok, detail, ice: pc.iceConnectionState,
               framesDecoded: video ? video.framesDecoded : 0,
               mimeType: video && codecs[video.codecId] ? codecs[video.codecId].mimeType : null,
               width: video ? video.frameWidth : 0, height: video ? video.frameHeight : 0,
               audioMimeType: audio && codecs[audio.codecId] ? codecs[audio.codecId].mimeType : null,
               audioSamples: audio ? audio.totalSamplesReceived : 0,
               audioEnergy: audio ? audio.totalAudioEnergy : 0,
               audioLevel: audio ? audio.audioLevel : 0,
               concealed: audio ? audio.concealedSamples : 0 });
    };
    if (video && video.framesDecoded > 30 && audio && audio.totalAudioEnergy > 0) {
      done(true, 'decoding');
    }
    else if (Date.now() - started > __TIMEOUT__) done(false, 'timeout');
  }, 200);
}
main().catch((e) => report({ name: 'answer', error: String(e), ...signalling }));
</script>
</body></html>
"#;

fn page(whep: &str) -> String {
    PAGE.replace("__WHEP__", whep)
        .replace("__TIMEOUT__", &PAGE_TIMEOUT.as_millis().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_whep_of_an_rtmp_publish_and_delete_ends_it() {
    if !have_ffmpeg() || !have_chromium() {
        return;
    }
    let backend = Backend::start().await;
    let server = start_server_with(|o| {
        o.hooks = backend.config();
        // Every session's on_flow_report, however little it moved.
        o.lifecycle.flow_threshold = 0;
        rtc_on_loopback(o);
    })
    .await;
    let mut publisher = publish_looped(&server, "live/rtc").await;

    let whep = http_url(&server, "index/api/whep?app=live&stream=rtc&who=browser");
    let (addr, mut reports, page_server) = serve_page(page(&whep), "/unused.js", "").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let got = collect_reports_with(
        &format!("http://{addr}/"),
        dir.path(),
        WEBRTC,
        &mut reports,
        &["answer", "video"],
        PAGE_TIMEOUT + Duration::from_secs(20),
    )
    .await;
    page_server.abort();

    let answer = &got["answer"];
    assert_eq!(answer["status"], 201, "{answer:#}");
    assert_eq!(answer["type"], "application/sdp");
    let location = answer["location"].as_str().expect("Location").to_owned();
    assert!(
        location.starts_with("/index/api/delete_webrtc?id="),
        "{location}"
    );
    assert!(location.contains("&token="), "{location}");
    let video = &got["video"];
    assert_eq!(video["ok"], true, "WHEP video did not decode: {video:#}");
    assert_eq!(video["mimeType"], "video/H264");
    assert_eq!(
        (&video["width"], &video["height"]),
        (&320.into(), &240.into())
    );

    // on_play was asked before the answer, with the rtc schema.
    let plays = backend.calls("on_play");
    assert_eq!(plays.len(), 1, "{plays:?}");
    let play = &plays[0].body;
    assert_eq!(
        (
            &play["schema"],
            &play["app"],
            &play["stream"],
            &play["params"]
        ),
        (
            &"rtc".into(),
            &"live".into(),
            &"rtc".into(),
            &"app=live&stream=rtc&who=browser".into()
        )
    );

    // The browser is gone (collect_reports killed it); the session stays listed until its
    // silence timeout or a DELETE.
    let api = Api::of(&server);
    let id = location
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("id="))
        .expect("id")
        .to_owned();
    let sessions = api.call("getAllSession", &[]).await;
    let listed = sessions["data"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["id"] == id.as_str())
        .unwrap_or_else(|| panic!("session {id} not in {sessions:#}"));
    assert_eq!(listed["typeid"], "mediakit::WebRtcSession");
    let players = api
        .call(
            "getMediaPlayerList",
            &[
                ("schema", "rtsp"),
                ("vhost", "__defaultVhost__"),
                ("app", "live"),
                ("stream", "rtc"),
            ],
        )
        .await;
    assert!(
        players["data"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["identifier"] == id.as_str())),
        "{players:#}"
    );
    let client = reqwest::Client::new();
    let url = http_url(&server, location.trim_start_matches('/'));
    let resp = client.delete(&url).send().await.expect("delete");
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body, serde_json::json!({"code": 0, "msg": "success"}));
    // The same Location again: no such session any more.
    let resp = client.delete(&url).send().await.expect("delete");
    assert_eq!(resp.status(), 404);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let rtc_sessions = server
            .registry
            .sessions()
            .into_iter()
            .filter(|s| s.info.protocol == registry::Protocol::Rtc)
            .count();
        if rtc_sessions == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the WebRTC session outlived its DELETE"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Leaving reports its traffic.
    let flow = backend
        .wait_for("on_flow_report", 1, Duration::from_secs(5), |c| {
            c.body["player"] == true
        })
        .await;
    let f = &flow[0].body;
    assert_eq!(
        (&f["schema"], &f["protocol"]),
        (&"rtc".into(), &"rtc".into())
    );
    assert!(f["totalBytes"].as_u64().is_some_and(|b| b > 10_000), "{f}");
    let _ = publisher.kill().await;
    server.shutdown().await;
}
