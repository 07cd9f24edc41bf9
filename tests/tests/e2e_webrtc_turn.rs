//! With the embedded TURN relay on, every WHEP answer carries RFC 9725 `Link` headers with
//! short-lived REST credentials (the coturn convention) for the relay over UDP and TCP, which a
//! browser on another origin can read (`Access-Control-Expose-Headers`).

use e2e::browser::{collect_reports_with, have_chromium, serve_page, WEBRTC};
use e2e::*;
use media::StreamKey;
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
}
main().catch((e) => report({ name: 'links', error: String(e) }));
</script>
</body></html>
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_answers_carry_link_headers_for_the_embedded_turn() {
    if !have_ffmpeg() || !have_chromium() {
        return;
    }
    let server = start_server_with(|o| {
        o.rtc.addr = Some("127.0.0.1:0".parse().expect("addr"));
        o.rtc.extern_ip = Some("127.0.0.1".parse().expect("ip"));
        o.turn_addr = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let turn = server.turn_addr.expect("turn on");
    let key = StreamKey::new("live", "relayed").expect("key");
    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/relayed"), &["-stream_loop", "-1"]);
    wait_live(&server, &key, 2).await;
    let base = http_url(&server, "");
    let page = PAGE
        .replace(
            "__WHEP__",
            &http_url(&server, "index/api/whep?app=live&stream=relayed"),
        )
        .replace("__BASE__", base.trim_end_matches('/'));
    let (addr, mut reports, page_server) = serve_page(page, "/unused.js", "").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let got = collect_reports_with(
        &format!("http://{addr}/"),
        dir.path(),
        WEBRTC,
        &mut reports,
        &["links", "deleted"],
        Duration::from_secs(45),
    )
    .await;
    page_server.abort();

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
    let _ = publisher.kill().await;
    server.shutdown().await;
}
