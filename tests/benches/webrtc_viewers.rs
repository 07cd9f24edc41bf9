//! CPU per WebRTC viewer (`cargo bench -p e2e --bench webrtc_viewers`):
//!
//! ffmpeg publishes a 640x360 30 fps H.264 + AAC stream over RTMP to an in-process server. One
//! headless Chromium page opens N WHEP players (video and audio), and once every one of them
//! has decoded 30 frames it keeps them playing for MEASURE_SECS (10). The server's CPU
//! (this process's utime + stime; ffmpeg and Chromium are other processes) is taken over the
//! window, first with one player, then with N (PLAYERS, default 50). Printed: both figures,
//! and (N-player − 1-player) / (N − 1) as the cost of each more viewer. The one-player figure
//! holds the per-stream work: the WebRTC output's frames and the AAC→Opus transcode, which
//! runs once per stream however many viewers there are.
//!
//! Chromium decodes every player on the same two cores, so the figures are of a busy machine;
//! compare runs, not machines.
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use e2e::browser::{collect_reports_with, serve_page, WEBRTC};
use media::StreamKey;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `__WHEP__`, `__N__` and `__SECONDS__` are filled in. Reports `ready` (with the time) once
/// every player decoded 30 frames, then `done` after `__SECONDS__` more with each player's
/// decoded video frames and received audio packets.
const PAGE: &str = r#"<!doctype html>
<html><body>
<script>
const report = (r) => fetch('/report', { method: 'POST', body: JSON.stringify(r) });
const pcs = [];
async function stats(pc) {
  let frames = 0, audio = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') frames = s.framesDecoded;
    if (s.type === 'inbound-rtp' && s.kind === 'audio') audio = s.packetsReceived;
  });
  return { frames, audio };
}
async function player() {
  const pc = new RTCPeerConnection();
  pcs.push(pc);
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  await pc.setLocalDescription(await pc.createOffer());
  const resp = await fetch('__WHEP__', { method: 'POST',
    headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  if (resp.status !== 201) throw new Error('WHEP answered ' + resp.status);
  await pc.setRemoteDescription({ type: 'answer', sdp: await resp.text() });
  const started = Date.now();
  while (Date.now() - started < 60000) {
    await new Promise((r) => setTimeout(r, 250));
    if ((await stats(pc)).frames > 30) return;
  }
  throw new Error('a player did not decode within 60 s');
}
Promise.all([...Array(__N__).keys()].map(player))
  .then(async () => {
    await report({ name: 'ready', at: Date.now() });
    const before = await Promise.all(pcs.map(stats));
    await new Promise((r) => setTimeout(r, (__SECONDS__ + 2) * 1000));
    const after = await Promise.all(pcs.map(stats));
    report({ name: 'done', players: after.map((a, i) => ({
      frames: a.frames - before[i].frames, audio: a.audio - before[i].audio })) });
  })
  .catch((e) => report({ name: 'ready', error: String(e) }));
</script>
</body></html>
"#;

/// This process's utime + stime, seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Server CPU (% of one core) over `seconds` while `n` WHEP players play.
async fn measure(server: &server::Server, n: u64, seconds: u64) -> f64 {
    let page = PAGE
        .replace(
            "__WHEP__",
            &e2e::http_url(server, "index/api/whep?app=live&stream=bench"),
        )
        .replace("__N__", &n.to_string())
        .replace("__SECONDS__", &seconds.to_string());
    let (addr, mut reports, page_server) = serve_page(page, "/unused.js", "").await;
    let dir = tempfile::tempdir().unwrap();
    let got = collect_reports_with(
        &format!("http://{addr}/"),
        dir.path(),
        WEBRTC,
        &mut reports,
        &["ready", "done"],
        Duration::from_secs(120 + seconds),
    )
    .await;
    page_server.abort();
    let ready = got["ready"]["at"]
        .as_u64()
        .unwrap_or_else(|| panic!("{}", got["ready"]));
    let players = got["done"]["players"].as_array().unwrap();
    assert_eq!(players.len() as u64, n);
    let least = players
        .iter()
        .filter_map(|p| p["frames"].as_u64())
        .min()
        .unwrap();
    assert!(least > 0, "a player stopped decoding: {players:?}");
    let least_audio = players
        .iter()
        .filter_map(|p| p["audio"].as_u64())
        .min()
        .unwrap();
    assert!(least_audio > 0, "a player got no audio: {players:?}");
    window_cpu(ready + 1000, ready + 1000 + seconds * 1000)
}

static SERIES: std::sync::Mutex<Vec<(u64, f64)>> = std::sync::Mutex::new(Vec::new());

/// CPU % of one core between the unix-ms times `from` and `to`, from [`SERIES`].
fn window_cpu(from: u64, to: u64) -> f64 {
    let series = SERIES.lock().unwrap();
    let at = |t: u64| {
        series
            .iter()
            .min_by_key(|(ms, _)| ms.abs_diff(t))
            .copied()
            .unwrap()
    };
    let ((t0, c0), (t1, c1)) = (at(from), at(to));
    (c1 - c0) / ((t1 - t0) as f64 / 1000.0) * 100.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !e2e::have_ffmpeg() || !e2e::browser::have_chromium() {
        println!("webrtc_viewers: needs ffmpeg and chromium");
        return;
    }
    let players = env("PLAYERS", 50).max(2);
    let seconds = env("MEASURE_SECS", 10).max(2);
    // The CPU series, taken on a thread of its own so a busy runtime does not skew it.
    std::thread::spawn(|| loop {
        SERIES.lock().unwrap().push((unix_ms(), cpu_seconds()));
        std::thread::sleep(Duration::from_millis(100));
    });
    let server = e2e::start_server_with(|o| {
        o.rtc.addr = Some("127.0.0.1:0".parse().unwrap());
        o.rtc.extern_ip = Some("127.0.0.1".parse().unwrap());
    })
    .await;
    let key = StreamKey::new("live", "bench").unwrap();
    let mut publisher = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args(["-g", "60", "-b:v", "1000k", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-b:a", "128k", "-f", "flv"])
        .arg(e2e::rtmp_url(&server, "live/bench"))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    e2e::wait_live(&server, &key, 2).await;
    let one = measure(&server, 1, seconds).await;
    let many = measure(&server, players, seconds).await;
    println!("server CPU over {seconds} s, % of one core (ffmpeg and Chromium excluded):");
    println!("  1 WHEP player (per-stream work incl. AAC→Opus): {one:6.1} %");
    println!("  {players} WHEP players:                           {many:6.1} %");
    println!(
        "  each more player:                               {:6.2} %",
        (many - one) / (players - 1) as f64
    );
    let _ = publisher.kill().await;
    server.shutdown().await;
}
