//! ffmpeg publishes H.264 + AAC over RTMP; headless Chromium plays it over WS-FLV and HTTP-FLV
//! with mpegts.js (vendored in `tests/data/mpegts.js`, see its `.md`), the player browsers use
//! for FLV, decoding through Media Source Extensions.
//!
//! A small axum server inside the test serves the page and mpegts.js from another origin than
//! the media server (so HTTP-FLV needs CORS) and takes the page's reports on `POST /report`.

use e2e::browser::{collect_reports, have_chromium, serve_page};
use e2e::*;
use media::StreamKey;
use std::time::Duration;

/// mpegts.js 1.8.2's browser build.
const MPEGTS_JS: &str = include_str!("../data/mpegts.js");

/// What the page reports per player, and the MSE check (`mse`).
const REPORTS: [&str; 3] = ["mse", "ws", "http"];

/// The page gives up on a player after this long; the test waits a little longer for the report.
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

/// The page: an MSE codec check, then one muted autoplaying `<video>` per transport, each
/// reporting once: success when playback has advanced 1.5 s over 20 decoded 320-wide frames, or
/// the first mpegts.js error, `<video>` error or the timeout. `__WS__`, `__HTTP__` and
/// `__TIMEOUT__` are filled in by [`page`].
const PAGE: &str = r#"<!doctype html>
<html><body>
<video id="ws" muted autoplay></video>
<video id="http" muted autoplay></video>
<script src="/mpegts.js"></script>
<script>
const report = (r) => fetch('/report', { method: 'POST', body: JSON.stringify(r) });
const log = [];
mpegts.LoggingControl.addLogListener((type, line) => log.push(type + ' ' + line));
const codecs = 'video/mp4; codecs="avc1.42E01E,mp4a.40.2"';
report({ name: 'mse', ok: MediaSource.isTypeSupported(codecs),
         detail: codecs + ' features=' + JSON.stringify(mpegts.getFeatureList()) });

function play(name, url) {
  const video = document.getElementById(name);
  let done = false;
  let poll, timer;
  const frames = () => video.getVideoPlaybackQuality().totalVideoFrames;
  const finish = (ok, detail) => {
    if (done) return;
    done = true;
    clearInterval(poll);
    clearTimeout(timer);
    report({ name, ok, detail, url, currentTime: video.currentTime, frames: frames(),
             width: video.videoWidth, height: video.videoHeight,
             log: ok ? [] : log.slice(-30) });
  };
  const player = mpegts.createPlayer({ type: 'flv', isLive: true, url });
  player.on(mpegts.Events.ERROR, (type, detail, info) =>
    finish(false, 'mpegts.js error ' + type + ' ' + detail + ' ' + JSON.stringify(info)));
  video.onerror = () => finish(false, 'video error ' +
    (video.error ? video.error.code + ' ' + video.error.message : '?'));
  player.attachMediaElement(video);
  player.load();
  const played = player.play();
  if (played && played.catch) played.catch((e) => finish(false, 'play() rejected: ' + e));
  poll = setInterval(() => {
    if (video.currentTime > 1.5 && frames() > 20 && video.videoWidth === 320) {
      finish(true, 'playing');
    }
  }, 100);
  timer = setTimeout(() => finish(false, 'timeout'), __TIMEOUT__);
}

play('ws', '__WS__');
play('http', '__HTTP__');
</script>
</body></html>
"#;

/// The page playing `ws_url` and `http_url`.
fn page(ws_url: &str, http_url: &str) -> String {
    PAGE.replace("__WS__", ws_url)
        .replace("__HTTP__", http_url)
        .replace("__TIMEOUT__", &PAGE_TIMEOUT.as_millis().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_ws_flv_and_http_flv_with_mpegts_js() {
    if !have_ffmpeg() || !have_chromium() {
        return;
    }
    let server = start_server().await;
    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/web"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "web").expect("key"), 2).await;

    let ws_url = format!("ws://{}/live/web.live.flv", server.http_addr.expect("http"));
    let http_flv_url = http_url(&server, "live/web.live.flv");
    let (addr, mut reports, page_server) =
        serve_page(page(&ws_url, &http_flv_url), "/mpegts.js", MPEGTS_JS).await;
    let dir = tempfile::tempdir().expect("temp dir");
    // One report each, or the deadline, or Chromium exiting.
    let got = collect_reports(
        &format!("http://{addr}/"),
        dir.path(),
        &mut reports,
        &REPORTS,
        PAGE_TIMEOUT + Duration::from_secs(20),
    )
    .await;
    page_server.abort();
    let _ = publisher.kill().await;
    server.shutdown().await;

    assert_eq!(
        got["mse"]["ok"], true,
        "this Chromium cannot decode H.264/AAC through MSE: {}",
        got["mse"]
    );
    for name in ["ws", "http"] {
        let report = &got[name];
        assert_eq!(report["ok"], true, "{name}-FLV did not play: {report:#}");
        assert_eq!(
            (&report["width"], &report["height"]),
            (&320.into(), &240.into())
        );
    }
}
