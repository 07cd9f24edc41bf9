//! With the embedded TURN relay on, every WHEP answer carries RFC 9725 `Link` headers with
//! short-lived REST credentials (the coturn convention) for the relay over UDP and TCP, which a
//! browser on another origin can read (`Access-Control-Expose-Headers`). Headless Chromium
//! takes them from a first answer (then DELETEs that session) and plays WHEP again with
//! `iceTransportPolicy: "relay"`: all its media goes through the relay to the server's own
//! WebRTC port, which the relay permits although it is a loopback address.

use e2e::browser::{have_chromium, run_webrtc_page};
use e2e::*;
use std::time::Duration;

const PAGE: &str = r#"<!doctype html>
<html><body>
<script>
const report = (r) => fetch('/report', { method: 'POST', body: JSON.stringify(r) });
async function offer(pc) {
  pc.addTransceiver('video', { direction: 'recvonly' });
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((done) => {
      pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') done(); };
      setTimeout(done, 5000);
    });
  }
  return fetch('__WHEP__', { method: 'POST',
    headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
}
async function main() {
  const first = await offer(new RTCPeerConnection());
  const links = first.headers.get('Link') || '';
  const servers = [...links.matchAll(/<([^>]+)>; rel="ice-server"; username="([^"]*)"; credential="([^"]*)"/g)]
    .map((m) => ({ urls: m[1], username: m[2], credential: m[3] }));
  report({ name: 'links', links, servers });
  const del = await fetch(first.headers.get('Location').replace(/^/, '__BASE__'), { method: 'DELETE' });
  report({ name: 'deleted', status: del.status });
  const pc = new RTCPeerConnection({ iceServers: servers, iceTransportPolicy: 'relay' });
  const resp = await offer(pc);
  await pc.setRemoteDescription({ type: 'answer', sdp: await resp.text() });
  const started = Date.now();
  const poll = setInterval(async () => {
    const stats = await pc.getStats();
    let video = null, pair = null;
    const all = {};
    stats.forEach((s) => {
      all[s.id] = s;
      if (s.type === 'inbound-rtp' && s.kind === 'video') video = s;
      if (s.type === 'transport') pair = s.selectedCandidatePairId;
    });
    const local = pair && all[pair] ? all[all[pair].localCandidateId] : null;
    const done = (ok, detail) => {
      clearInterval(poll);
      report({ name: 'video', ok, detail, ice: pc.iceConnectionState,
               framesDecoded: video ? video.framesDecoded : 0,
               localCandidateType: local ? local.candidateType : null,
               candidates: pc.localDescription.sdp.split('\r\n').filter((l) => l.startsWith('a=candidate')) });
    };
    if (video && video.framesDecoded > 30) done(true, 'decoding');
    else if (Date.now() - started > 20000) done(false, 'timeout');
  }, 200);
}
main().catch((e) => report({ name: 'video', ok: false, detail: String(e) }));
</script>
</body></html>
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_whep_through_the_embedded_turn_with_the_link_credentials() {
    if !have_ffmpeg() || !have_chromium() {
        return;
    }
    let server = start_server_with(|o| {
        rtc_on_loopback(o);
        o.turn_addr = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let turn = server.turn_addr.expect("turn on");
    let mut publisher = publish_looped(&server, "live/relayed").await;
    let base = http_url(&server, "");
    let page = PAGE
        .replace(
            "__WHEP__",
            &http_url(&server, "index/api/whep?app=live&stream=relayed"),
        )
        .replace("__BASE__", base.trim_end_matches('/'));
    let got = run_webrtc_page(
        page,
        &["links", "deleted", "video"],
        Duration::from_secs(45),
    )
    .await;

    let servers = got["links"]["servers"].as_array().expect("servers").clone();
    let urls: Vec<&str> = servers.iter().filter_map(|s| s["urls"].as_str()).collect();
    assert_eq!(
        urls,
        vec![
            format!("turn:127.0.0.1:{}?transport=udp", turn.port()),
            format!("turn:127.0.0.1:{}?transport=tcp", turn.port()),
        ],
        "{:#}",
        got["links"]
    );
    let username = servers[0]["username"].as_str().expect("username");
    let (expiry, _) = username.split_once(':').expect("expiry:name");
    let expiry: u64 = expiry.parse().expect("unix time");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(expiry > now && expiry <= now + 3600, "{username}");
    assert_eq!(servers[0]["username"], servers[1]["username"]);
    assert_eq!(servers[0]["credential"], servers[1]["credential"]);
    assert_eq!(got["deleted"]["status"], 200);
    let video = &got["video"];
    assert_eq!(video["ok"], true, "relayed WHEP did not decode: {video:#}");
    assert_eq!(video["localCandidateType"], "relay");
    let _ = publisher.kill().await;
    server.shutdown().await;
}
