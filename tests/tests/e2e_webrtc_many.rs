//! Twenty WHEP players on one stream at once (one headless Chromium page with twenty peer
//! connections, all on the server's one UDP port and one driver task) all decode; the API
//! lists each, and kick_session ends the one it names.

use e2e::api::Api;
use e2e::browser::{have_chromium, run_webrtc_page};
use e2e::*;
use std::time::Duration;

const PLAYERS: usize = 20;

/// `__WHEP__` and `__N__` are filled in by the test. One report when every player decoded 30
/// frames (or 30 s passed), with each player's figures.
const PAGE: &str = r#"<!doctype html>
<html><body>
<script>
const report = (r) => fetch('/report', { method: 'POST', body: JSON.stringify(r) });
async function player(i) {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  await pc.setLocalDescription(await pc.createOffer());
  const resp = await fetch('__WHEP__', { method: 'POST',
    headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  const location = resp.headers.get('Location');
  await pc.setRemoteDescription({ type: 'answer', sdp: await resp.text() });
  const started = Date.now();
  while (Date.now() - started < 30000) {
    await new Promise((r) => setTimeout(r, 250));
    let frames = 0;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') frames = s.framesDecoded;
    });
    if (frames > 30) return { i, ok: true, frames, location };
  }
  return { i, ok: false, location };
}
Promise.all([...Array(__N__).keys()].map(player))
  .then((players) => report({ name: 'players', players }))
  .catch((e) => report({ name: 'players', error: String(e) }));
</script>
</body></html>
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_whep_players_all_decode_and_one_is_kicked() {
    if !have_ffmpeg() || !have_chromium() {
        return;
    }
    let server = start_server_with(|o| {
        rtc_on_loopback(o);
    })
    .await;
    let mut publisher = publish_looped(&server, "live/many").await;
    let page = PAGE
        .replace(
            "__WHEP__",
            &http_url(&server, "index/api/whep?app=live&stream=many"),
        )
        .replace("__N__", &PLAYERS.to_string());
    let got = run_webrtc_page(page, &["players"], Duration::from_secs(60)).await;
    let players = got["players"]["players"]
        .as_array()
        .unwrap_or_else(|| panic!("{:#}", got["players"]))
        .clone();
    assert_eq!(players.len(), PLAYERS);
    for p in &players {
        assert_eq!(p["ok"], true, "player did not decode: {p}");
    }

    // Every player is a session of its own; kick_session ends the one it names.
    let api = Api::of(&server);
    let rtc_ids = |sessions: &serde_json::Value| -> Vec<String> {
        sessions["data"]
            .as_array()
            .expect("sessions")
            .iter()
            .filter(|s| s["typeid"] == "mediakit::WebRtcSession")
            .filter_map(|s| s["id"].as_str().map(str::to_owned))
            .collect()
    };
    let ids = rtc_ids(&api.call("getAllSession", &[]).await);
    assert_eq!(ids.len(), PLAYERS, "{ids:?}");
    let victim = ids[0].clone();
    let kicked = api.call("kick_session", &[("id", &victim)]).await;
    assert_eq!(kicked["code"], 0, "{kicked}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let ids = rtc_ids(&api.call("getAllSession", &[]).await);
        if !ids.contains(&victim) {
            assert_eq!(ids.len(), PLAYERS - 1);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "kicked session still listed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = publisher.kill().await;
    server.shutdown().await;
}
