//! ICE-TCP passive (RFC 6544) on `rtc.tcpPort`: headless Chromium plays WHEP with the answer's
//! UDP candidate taken out, as a client without UDP would have to, so its only way in is a TCP
//! connection to the passive candidate; getStats shows the selected pair on TCP and decoded
//! H.264.

use e2e::browser::{have_chromium, run_webrtc_page};
use e2e::*;
use std::time::Duration;

const PAGE: &str = r#"<!doctype html>
<html><body>
<script>
const report = (r) => fetch('/report', { method: 'POST', body: JSON.stringify(r) });
async function main() {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  await pc.setLocalDescription(await pc.createOffer());
  const resp = await fetch('__WHEP__', { method: 'POST',
    headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  const answer = await resp.text();
  const candidates = answer.split('\r\n').filter((l) => l.startsWith('a=candidate'));
  const tcpOnly = answer.split('\r\n')
    .filter((l) => !(l.startsWith('a=candidate') && / udp /i.test(l))).join('\r\n');
  await pc.setRemoteDescription({ type: 'answer', sdp: tcpOnly });
  const started = Date.now();
  const poll = setInterval(async () => {
    const stats = await pc.getStats();
    const all = {};
    let video = null, pair = null;
    stats.forEach((s) => {
      all[s.id] = s;
      if (s.type === 'inbound-rtp' && s.kind === 'video') video = s;
      if (s.type === 'transport') pair = s.selectedCandidatePairId;
    });
    const remote = pair && all[pair] ? all[all[pair].remoteCandidateId] : null;
    const done = (ok, detail) => {
      clearInterval(poll);
      report({ name: 'video', ok, detail, candidates, ice: pc.iceConnectionState,
               framesDecoded: video ? video.framesDecoded : 0,
               remoteProtocol: remote ? remote.protocol : null,
               remoteTcpType: remote ? remote.tcpType : null });
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
async fn chromium_plays_whep_over_ice_tcp() {
    if !have_ffmpeg() || !have_chromium() {
        return;
    }
    let server = start_server_with(|o| {
        rtc_on_loopback(o);
        o.rtc.tcp_addr = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let mut publisher = publish_looped(&server, "live/tcp").await;
    let page = PAGE.replace(
        "__WHEP__",
        &http_url(&server, "index/api/whep?app=live&stream=tcp"),
    );
    let got = run_webrtc_page(page, &["video"], Duration::from_secs(40)).await;
    let video = &got["video"];
    let candidates: Vec<&str> = video["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert_eq!(candidates.len(), 2, "{candidates:?}");
    assert!(
        candidates
            .iter()
            .any(|c| c.contains(" tcp ") && c.contains("tcptype passive")),
        "{candidates:?}"
    );
    assert_eq!(video["ok"], true, "ICE-TCP WHEP did not decode: {video:#}");
    assert_eq!(video["remoteProtocol"], "tcp");
    assert_eq!(video["remoteTcpType"], "passive");
    let _ = publisher.kill().await;
    server.shutdown().await;
}
