//! A request is in flight until its response ends, and `http.keepAliveSecond` never cuts one:
//! ffmpeg plays HTTP-FLV for several times keepAliveSecond, and an LL-HLS blocking playlist
//! reload held longer than keepAliveSecond is answered (the connection closes only once it is
//! idle afterwards).

use e2e::http1::{Closed, Conn};
use e2e::*;
use media::StreamKey;
use std::time::Duration;
use tokio::time::Instant;

const KEEP_ALIVE: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_responses_outlive_keep_alive_second() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server_with(|o| o.http.keep_alive = KEEP_ALIVE).await;
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/long"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "long").expect("key"), 2).await;

    // 125 frames at 25 fps: 5 s of media. The GOP cache gives at most 1 s of it at once, so the
    // body streams for at least 4 s, four times keepAliveSecond.
    let started = Instant::now();
    let frames = decode_frames(&http_url(&server, "live/long.live.flv"), 125).await;
    let took = started.elapsed();
    assert!(
        frames >= 125,
        "HTTP-FLV cut after {frames} frames ({took:?})"
    );
    assert!(took >= KEEP_ALIVE * 3, "played for only {took:?}");

    // LL-HLS: ask for a segment two ahead of the newest part; the server holds the request
    // until it exists (a few seconds with 2 s segments).
    let ll = http_url(&server, "live/long/hls.fmp4.m3u8");
    let playlist = reqwest::get(&ll)
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    let newest_msn: u64 = playlist
        .lines()
        .filter_map(|l| l.split("URI=\"hls_").nth(1))
        .filter_map(|u| u.split('.').next())
        .filter_map(|m| m.parse().ok())
        .max()
        .unwrap_or_else(|| panic!("no part in\n{playlist}"));
    let want = newest_msn + 2;
    let mut conn = Conn::connect(server.http_addr.expect("http")).await;
    let request = format!(
        "GET /live/long/hls.fmp4.m3u8?_HLS_msn={want}&_HLS_part=0 HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    let asked = Instant::now();
    conn.send(request.as_bytes()).await;
    let resp = conn.response(Duration::from_secs(30)).await;
    let held = asked.elapsed();
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    let text = String::from_utf8_lossy(&resp.body);
    assert!(
        text.contains(&format!("URI=\"hls_{want}.0.m4s")),
        "the playlist lists the part asked for:\n{text}"
    );
    assert!(
        held > KEEP_ALIVE + KEEP_ALIVE / 2,
        "held only {held:?}: not a test of keepAliveSecond"
    );
    // Once answered, the connection is idle and goes after keepAliveSecond.
    let (how, after, _) = conn
        .closed_within(KEEP_ALIVE + Duration::from_secs(4))
        .await
        .expect("closed once idle");
    assert_eq!(how, Closed::Eof);
    assert!(
        after >= KEEP_ALIVE - Duration::from_millis(200),
        "{after:?}"
    );
    eprintln!("FLV played {took:?}; LL-HLS reload held {held:?}; then closed after {after:?}");
    server.shutdown().await;
}
