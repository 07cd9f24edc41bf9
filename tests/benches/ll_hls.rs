//! WebRTC and LL-HLS glass-to-glass latency (`scripts/bench-ll-hls`, or
//! `cargo bench -p e2e --bench ll_hls`):
//!
//! ffmpeg publishes a 320x240 25 fps test pattern over RTMP to an in-process server. A `geq`
//! filter paints the wall-clock time in ms (mod 2^32) into the top 32 rows as 32 black/white
//! blocks of 10 px, MSB first, twice (a sample counts only when both copies read alike):
//! OFFSET + T, where OFFSET is the Unix time taken right before spawning ffmpeg (`-re`) and T
//! the frame's time. Headless Chromium plays the stream over WHEP
//! (its own RTCPeerConnection), then the LL-HLS playlist
//! with hls.js (vendored in `tests/data/hls.min.js`) in low-latency mode; every 200 ms while
//! playing, the page draws the video into a canvas, decodes the blocks and reports
//! `(Date.now() mod 2^32) - value`. Printed: p50/p90 of those over SECONDS of playback and
//! hls.js's own `hls.latency` estimate; then the same for the MPEG-TS HLS playlist.
//!
//! The figure includes ffmpeg's start-up delay (the painted clock starts at OFFSET, before
//! ffmpeg made its first frame), an over-estimate by up to ~0.2 s. Needs ffmpeg and chromium;
//! Chromium, ffmpeg and the server share this machine's cores.
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use e2e::browser;
use media::StreamKey;
use serde_json::Value;
use server::{Options, Server};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const HLS_JS: &str = include_str!("../data/hls.min.js");

/// The page: LL-HLS, then MPEG-TS HLS, each played with hls.js for `__SECONDS__` s from its first
/// playing frame and sampled every 200 ms; one report per player. A sample whose block centres
/// are not clearly black or white counts as undecodable.
const PAGE: &str = r#"<!doctype html>
<html><body>
<script src="/hls.min.js"></script>
<script>
const SECONDS = __SECONDS__;
const WRAP = 4294967296;
const report = (r) => fetch('/report', { method: 'POST', body: JSON.stringify(r) });

// The painted clock: 32 blocks 10 px wide, MSB first, painted twice (rows 0-15 and 16-31);
// null unless every block of both copies is clean and the copies agree, so a block that
// compression turned into the other colour cannot pass as a sample.
function decodeRow(ctx, row) {
  const d = ctx.getImageData(0, row, 320, 1).data;
  let v = 0;
  for (let i = 0; i < 32; i++) {
    const o = (i * 10 + 5) * 4;
    const y = 0.299 * d[o] + 0.587 * d[o + 1] + 0.114 * d[o + 2];
    if (y > 64 && y < 192) return null;
    v = v * 2 + (y >= 128 ? 1 : 0);
  }
  return v;
}

function decode(ctx) {
  const a = decodeRow(ctx, 8), b = decodeRow(ctx, 24);
  return a !== null && a === b ? a : null;
}

function play(name, url, config, next) {
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  document.body.appendChild(video);
  const canvas = document.createElement('canvas');
  canvas.width = 320;
  canvas.height = 240;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const hls = new Hls(config);
  const samples = [], estimates = [];
  let bad = 0, started = null, error = null, finished = false;
  const done = () => {
    if (finished) return;
    finished = true;
    clearInterval(tick);
    clearTimeout(timer);
    report({ name, url, samples, estimates, bad, error, latency: hls.latency });
    hls.destroy();
    video.remove();
    if (next) next();
  };
  hls.on(Hls.Events.ERROR, (event, data) => {
    if (data.fatal) { error = data.type + ' ' + data.details; done(); }
  });
  hls.loadSource(url);
  hls.attachMedia(video);
  video.play().catch(() => {});
  const tick = setInterval(() => {
    if (video.paused || video.readyState < 2 || video.videoWidth !== 320) return;
    if (started === null) started = performance.now();
    ctx.drawImage(video, 0, 0, 320, 240);
    const now = Date.now() % WRAP;
    const value = decode(ctx);
    if (value === null) {
      bad++;
    } else {
      let ms = (now - value + WRAP) % WRAP;
      if (ms > WRAP / 2) ms -= WRAP;
      samples.push(ms);
    }
    if (hls.latency) estimates.push(hls.latency);
    if (performance.now() - started >= SECONDS * 1000) done();
  }, 200);
  const timer = setTimeout(() => { error = error || 'timeout'; done(); }, (SECONDS + 30) * 1000);
}

// WHEP: the browser's own RTCPeerConnection, sampled the same way.
function playWebRtc(name, url, next) {
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  document.body.appendChild(video);
  const canvas = document.createElement('canvas');
  canvas.width = 320;
  canvas.height = 240;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const pc = new RTCPeerConnection();
  const samples = [];
  let bad = 0, started = null, error = null, finished = false, tick = null;
  const done = () => {
    if (finished) return;
    finished = true;
    clearInterval(tick);
    clearTimeout(timer);
    report({ name, url, samples, estimates: [], bad, error });
    pc.close();
    video.remove();
    if (next) next();
  };
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.ontrack = (e) => { video.srcObject = new MediaStream([e.track]); };
  (async () => {
    await pc.setLocalDescription(await pc.createOffer());
    const resp = await fetch(url, { method: 'POST',
      headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
    if (resp.status !== 201) throw new Error('WHEP ' + resp.status);
    await pc.setRemoteDescription({ type: 'answer', sdp: await resp.text() });
  })().catch((e) => { error = String(e); done(); });
  tick = setInterval(() => {
    if (video.readyState < 2 || video.videoWidth !== 320) return;
    if (started === null) started = performance.now();
    ctx.drawImage(video, 0, 0, 320, 240);
    const now = Date.now() % WRAP;
    const value = decode(ctx);
    if (value === null) {
      bad++;
    } else {
      let ms = (now - value + WRAP) % WRAP;
      if (ms > WRAP / 2) ms -= WRAP;
      samples.push(ms);
    }
    if (performance.now() - started >= SECONDS * 1000) done();
  }, 200);
  const timer = setTimeout(() => { error = error || 'timeout'; done(); }, (SECONDS + 30) * 1000);
}

playWebRtc('whep', '__WHEP__',
  () => play('llhls', '__LLHLS__', { lowLatencyMode: true },
    () => play('hls', '__HLS__', {}, null)));
</script>
</body></html>
"#;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn start() -> Server {
    let mut options = Options::from_config(&server::config::Config::default());
    options.rtmp_addr = Some("127.0.0.1:0".parse().unwrap());
    options.http_addr = Some("127.0.0.1:0".parse().unwrap());
    options.turn_addr = None;
    options.rtsp_addr = None;
    options.rtp_server.shared = None;
    options.rtc.addr = Some("127.0.0.1:0".parse().unwrap());
    options.rtc.tcp_addr = None;
    options.rtc.extern_ip = Some("127.0.0.1".parse().unwrap());
    Server::start(options).await.unwrap()
}

/// The `-vf` chain painting `offset_ms + T` (mod 2^32) as 32 blocks into rows 0-31 (two copies
/// of 16 rows, read at rows 8 and 24): luma 0/255, chroma 128 (rows 0-15 of the half-height
/// chroma planes); the rest of the picture untouched.
fn clock_filter(offset_ms: u64) -> String {
    let value = format!("mod(floor({offset_ms}+T*1000+0.5),4294967296)");
    let bit = format!("mod(floor({value}/pow(2,31-floor(X/10))),2)");
    let chroma = "'if(lt(Y,16),128,p(X,Y))'";
    format!("format=yuv420p,geq=lum='if(lt(Y,32),255*{bit},p(X,Y))':cb={chroma}:cr={chroma}")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn numbers(report: &Value, key: &str) -> Vec<f64> {
    let mut v: Vec<f64> = report[key]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

fn print(label: &str, report: &Value, seconds: u64) {
    let samples = numbers(report, "samples");
    let estimates = numbers(report, "estimates");
    if let Some(error) = report["error"].as_str() {
        println!("{label}: the player stopped early: {error}");
    }
    if samples.is_empty() {
        println!("{label}: no decodable samples ({report})");
        return;
    }
    if std::env::var_os("DUMP").is_some() {
        println!("{label}: samples {}", report["samples"]);
    }
    println!(
        "{label}: glass-to-glass p50 {:5.0} ms   p90 {:5.0} ms   min {:5.0} ms   max {:5.0} ms   \
         ({} samples over {seconds} s, {} undecodable)",
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        samples[0],
        samples[samples.len() - 1],
        samples.len(),
        report["bad"]
    );
    if !estimates.is_empty() {
        println!(
            "{label}: hls.js latency estimate p50 {:.2} s   p90 {:.2} s   (last {:.2} s)",
            percentile(&estimates, 0.5),
            percentile(&estimates, 0.9),
            report["latency"].as_f64().unwrap_or(f64::NAN)
        );
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let seconds = env("SECONDS", 20);
    let server = start().await;
    let http = server.http_addr.unwrap();
    let url = format!("rtmp://{}/live/clock", server.rtmp_addr.unwrap());

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let offset_ms = (now.as_millis() % (1 << 32)) as u64;
    let mut ffmpeg = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
        .args(["-vf", &clock_filter(offset_ms)])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
        ])
        .args(["-crf", "18", "-g", "50", "-pix_fmt", "yuv420p", "-f", "flv"])
        .arg(&url)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg");
    let key = StreamKey::new("live", "clock").expect("key");
    while server
        .registry
        .stream(&key)
        .is_none_or(|s| s.tracks.is_empty())
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let html = PAGE
        .replace("__SECONDS__", &seconds.to_string())
        .replace(
            "__LLHLS__",
            &format!("http://{http}/live/clock/hls.fmp4.m3u8"),
        )
        .replace("__HLS__", &format!("http://{http}/live/clock/hls.m3u8"))
        .replace(
            "__WHEP__",
            &format!("http://{http}/index/api/whep?app=live&stream=clock"),
        );
    let (addr, mut reports, _page_server) = browser::serve_page(html, "/hls.min.js", HLS_JS).await;
    let dir = tempfile::tempdir().unwrap();
    let mut chromium =
        browser::chromium_with(&format!("http://{addr}/"), dir.path(), browser::WEBRTC);

    let limit = Duration::from_secs(2 * (seconds + 40));
    for (name, label) in [
        ("whep", "WebRTC  (WHEP)                        "),
        ("llhls", "LL-HLS  (hls.fmp4.m3u8, lowLatencyMode)"),
        ("hls", "MPEG-TS (hls.m3u8)                    "),
    ] {
        let report = tokio::time::timeout(limit, reports.recv())
            .await
            .expect("no report from the page in time")
            .unwrap();
        assert_eq!(report["name"], name, "unexpected report {report}");
        print(label, &report, seconds);
    }
    println!(
        "note: the figures include ffmpeg's start-up delay (the painted clock starts when ffmpeg \
         is spawned), an over-estimate by up to ~0.2 s; Chromium, ffmpeg and the server share \
         this machine's {} cores.",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = chromium.kill().await;
    let _ = ffmpeg.kill().await;
    server.shutdown().await;
}
