//! ffmpeg publishes H.264 + AAC over RTMP; headless Chromium plays our LL-HLS
//! (`hls.fmp4.m3u8`: fMP4 parts, preload hints, blocking reload) with hls.js in low-latency mode,
//! and our MPEG-TS HLS (`hls.m3u8`) with hls.js, decoding through Media Source Extensions.
//! hls.js is vendored in `tests/data/hls.min.js` (see its `.md`).
//!
//! A small axum server inside the test serves the page and hls.js from another origin than the
//! media server (so HLS needs CORS) and takes the page's reports on `POST /report`. For LL-HLS
//! the test also checks that hls.js saw and loaded parts, not just whole segments. hls.js's own
//! latency estimate is printed, never asserted.

use e2e::browser::{collect_reports, have_chromium, serve_page};
use e2e::*;
use media::StreamKey;
use std::time::Duration;

/// hls.js 1.7.4's minified browser build.
const HLS_JS: &str = include_str!("../data/hls.min.js");

/// What the page reports: the MSE check (`mse`) and one report per player.
const REPORTS: [&str; 3] = ["mse", "llhls", "hls"];

/// The page gives up on a player after this long; the test waits a little longer for the report.
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

/// The page: an MSE codec check, then one muted autoplaying `<video>` per playlist, each
/// reporting once: success when playback has advanced 1.5 s over 20 decoded 320-wide frames, or
/// the first fatal hls.js error, `<video>` error or the timeout. Each report carries hls.js's
/// `latency` estimate and, for LL-HLS, the most parts a playlist listed (`LEVEL_UPDATED`), the
/// parts loaded (`FRAG_LOADED` with `data.part`) and how often the most re-loaded part was loaded
/// (`partRepeats`). `__LLHLS__`, `__HLS__` and `__TIMEOUT__` are
/// filled in by [`page`].
const PAGE: &str = r#"<!doctype html>
<html><body>
<video id="llhls" muted autoplay></video>
<video id="hls" muted autoplay></video>
<script src="/hls.min.js"></script>
<script>
const report = (r) => fetch('/report', { method: 'POST', body: JSON.stringify(r) });
const codecs = 'video/mp4; codecs="avc1.42E01E,mp4a.40.2"';
report({ name: 'mse', ok: MediaSource.isTypeSupported(codecs) && Hls.isSupported(),
         detail: codecs + ' hls.js ' + Hls.version + ' supported=' + Hls.isSupported() });

// The parts of an hls.js error event that serialize (the event holds loaders and XHRs).
const describe = (data) => ({
  type: data.type, details: data.details, fatal: data.fatal, reason: data.reason,
  error: data.error ? String(data.error) : undefined,
  response: data.response ? { code: data.response.code, text: data.response.text } : undefined,
  url: data.url || (data.context && data.context.url) || (data.frag && data.frag.url),
  part: data.part ? data.part.url : undefined,
});

function play(name, url, config) {
  const video = document.getElementById(name);
  let done = false;
  let poll, timer;
  let partsListed = 0, partsLoaded = 0, fragsLoaded = 0, levelUpdates = 0;
  const errors = [];
  const frames = () => video.getVideoPlaybackQuality().totalVideoFrames;
  const hls = new Hls(config);
  const finish = (ok, detail) => {
    if (done) return;
    done = true;
    clearInterval(poll);
    clearTimeout(timer);
    report({ name, ok, detail, url, currentTime: video.currentTime, frames: frames(),
             width: video.videoWidth, height: video.videoHeight,
             latency: hls.latency, targetLatency: hls.targetLatency,
             partsListed, partsLoaded, partRepeats, fragsLoaded, levelUpdates, errors: errors.slice(-10) });
  };
  hls.on(Hls.Events.LEVEL_UPDATED, (event, data) => {
    levelUpdates++;
    const list = data.details.partList;
    if (list) partsListed = Math.max(partsListed, list.length);
  });
  // How often the most re-loaded part was loaded (1 when no part is fetched twice).
  const loads = {};
  let partRepeats = 0;
  hls.on(Hls.Events.FRAG_LOADED, (event, data) => {
    if (!data.part) { fragsLoaded++; return; }
    partsLoaded++;
    const key = data.frag.sn + '.' + data.part.index;
    loads[key] = (loads[key] || 0) + 1;
    partRepeats = Math.max(partRepeats, loads[key]);
  });
  hls.on(Hls.Events.ERROR, (event, data) => {
    errors.push(describe(data));
    if (data.fatal) finish(false, 'hls.js fatal error ' + JSON.stringify(describe(data)));
  });
  video.onerror = () => finish(false, 'video error ' +
    (video.error ? video.error.code + ' ' + video.error.message : '?'));
  hls.loadSource(url);
  hls.attachMedia(video);
  const played = video.play();
  if (played && played.catch) played.catch((e) => finish(false, 'play() rejected: ' + e));
  poll = setInterval(() => {
    if (video.currentTime > 1.5 && frames() > 20 && video.videoWidth === 320) {
      finish(true, 'playing');
    }
  }, 100);
  timer = setTimeout(() => finish(false, 'timeout'), __TIMEOUT__);
}

play('llhls', '__LLHLS__', { lowLatencyMode: true });
play('hls', '__HLS__', {});
</script>
</body></html>
"#;

/// The page playing `ll_hls_url` (low-latency mode) and `hls_url`.
fn page(ll_hls_url: &str, hls_url: &str) -> String {
    PAGE.replace("__LLHLS__", ll_hls_url)
        .replace("__HLS__", hls_url)
        .replace("__TIMEOUT__", &PAGE_TIMEOUT.as_millis().to_string())
}

/// The playlist at `url` as a player sees it now, for failure messages.
async fn playlist_text(url: &str) -> String {
    match reqwest::get(url).await {
        Ok(resp) => resp.text().await.unwrap_or_else(|e| format!("<body: {e}>")),
        Err(e) => format!("<GET failed: {e}>"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_ll_hls_and_hls_with_hls_js() {
    if !have_ffmpeg() || !have_chromium() {
        return;
    }
    let server = start_server().await;
    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/web"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "web").expect("key"), 2).await;

    let ll_hls_url = http_url(&server, "live/web/hls.fmp4.m3u8");
    let hls_url = http_url(&server, "live/web/hls.m3u8");
    let (addr, mut reports, page_server) =
        serve_page(page(&ll_hls_url, &hls_url), "/hls.min.js", HLS_JS).await;
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

    // The playlists as they stand, should an assertion below fail.
    let ll_playlist = playlist_text(&ll_hls_url).await;
    let ts_playlist = playlist_text(&hls_url).await;
    let _ = publisher.kill().await;
    server.shutdown().await;

    for name in ["llhls", "hls"] {
        let r = &got[name];
        eprintln!(
            "{name}: hls.js latency estimate {} s (target {} s), not asserted; \
             parts loaded {}, most loads of one part {}",
            r["latency"], r["targetLatency"], r["partsLoaded"], r["partRepeats"]
        );
    }
    assert_eq!(
        got["mse"]["ok"], true,
        "this Chromium cannot decode H.264/AAC through MSE: {}",
        got["mse"]
    );
    for (name, playlist) in [("llhls", &ll_playlist), ("hls", &ts_playlist)] {
        let report = &got[name];
        assert_eq!(
            report["ok"], true,
            "{name} did not play: {report:#}\nplaylist:\n{playlist}"
        );
        assert_eq!(
            (&report["width"], &report["height"]),
            (&320.into(), &240.into())
        );
    }
    let ll = &got["llhls"];
    assert!(
        ll["partsListed"].as_u64().unwrap_or(0) > 0,
        "hls.js saw no EXT-X-PART in the LL-HLS playlist: {ll:#}\nplaylist:\n{ll_playlist}"
    );
    assert!(
        ll["partsLoaded"].as_u64().unwrap_or(0) > 0,
        "hls.js loaded no parts of the LL-HLS playlist: {ll:#}\nplaylist:\n{ll_playlist}"
    );
    // Parts whose playlist durations and media agree are loaded once, with no stall: a hole in
    // the buffered media made hls.js reload the same parts dozens of times and stall.
    assert!(
        ll["partRepeats"].as_u64().unwrap_or(u64::MAX) <= 2,
        "hls.js loaded the same part again and again: {ll:#}\nplaylist:\n{ll_playlist}"
    );
    assert_eq!(
        ll["errors"].as_array().map(Vec::len),
        Some(0),
        "hls.js errors: {ll:#}\nplaylist:\n{ll_playlist}"
    );
}
