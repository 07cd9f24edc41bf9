//! HLS, LL-HLS, `.live.ts` and `.live.mp4` with real clients: ffmpeg publishes over RTMP;
//! ffprobe and ffmpeg play the MPEG-TS HLS and the fMP4 LL-HLS playlists and the continuous
//! streams; the LL-HLS playlist carries parts, preload hints and answers blocking reloads;
//! on_play is asked once per viewer, not per segment; an HLS viewer counts as a reader and is
//! reported by on_flow_report once it stops fetching.

use e2e::backend::Backend;
use e2e::*;
use media::StreamKey;
use std::time::Duration;

async fn get_text(url: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("GET");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_and_ll_hls_play_in_ffmpeg() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/hls"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "hls").expect("key"), 2).await;

    let ts = http_url(&server, "live/hls/hls.m3u8");
    let (status, text) = get_text(&ts).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.starts_with("#EXTM3U") && text.contains("#EXTINF:") && text.contains(".ts?fs_hls="),
        "{text}"
    );
    let probe = ffprobe(&ts, 0).await;
    assert_eq!(codecs(&probe), ["aac", "h264"], "{probe}");
    assert!(decode_frames(&ts, 50).await >= 50, "MPEG-TS HLS");

    let ll = http_url(&server, "live/hls/hls.fmp4.m3u8");
    let (status, text) = get_text(&ll).await;
    assert_eq!(status, 200, "{text}");
    for tag in [
        "#EXT-X-MAP:URI=\"hls_init.mp4",
        "#EXT-X-PART-INF:PART-TARGET=",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES",
        "#EXT-X-PART:",
        "#EXT-X-PRELOAD-HINT:",
    ] {
        assert!(text.contains(tag), "{tag} missing:\n{text}");
    }
    assert_eq!(codecs(&ffprobe(&ll, 0).await), ["aac", "h264"]);
    assert!(decode_frames(&ll, 50).await >= 50, "fMP4 HLS");

    // Blocking reload: ask for the part after the newest listed; the answer lists it.
    let last_part = text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-PART:"))
        .filter_map(|l| l.split("URI=\"hls_").nth(1))
        .filter_map(|u| u.split(".m4s").next())
        .next_back()
        .expect("a part")
        .to_owned();
    let (msn, part) = last_part.split_once('.').expect("msn.part");
    let (msn, part): (u64, u64) = (msn.parse().expect("msn"), part.parse().expect("part"));
    let want = format!("hls_{msn}.{}.m4s", part + 1);
    let want_next_segment = format!("hls_{}.0.m4s", msn + 1);
    let (status, text) = get_text(&format!("{ll}?_HLS_msn={msn}&_HLS_part={}", part + 1)).await;
    assert_eq!(status, 200);
    assert!(
        text.contains(&format!("URI=\"{want}"))
            || text.contains(&format!("URI=\"{want_next_segment}")),
        "blocking reload for {want}:\n{text}"
    );

    // Too far ahead (draft-pantos-hls-rfc8216bis §6.2.5.2): 400 at once.
    let (_, text) = get_text(&ll).await;
    let newest = text
        .lines()
        .filter_map(|l| l.split("URI=\"hls_").nth(1))
        .filter_map(|u| u.split('.').next()?.parse::<u64>().ok())
        .max()
        .expect("a part or segment");
    let started = std::time::Instant::now();
    let (status, _) = get_text(&format!("{ll}?_HLS_msn={}", newest + 3)).await;
    assert_eq!(status, 400);
    let (status, _) = get_text(&format!("{ll}?_HLS_msn={newest}&_HLS_part=40")).await;
    assert_eq!(status, 400);
    assert!(started.elapsed() < Duration::from_secs(1), "not held");

    // A part asked for before it exists (the one after the preload hint): answered at its
    // first chunk (a `moof`) and streamed, chunked, until complete; what came is the part as
    // later listed.
    let base = http_url(&server, "live/hls/");
    let client = reqwest::Client::new();
    let mut streamed = None;
    for _ in 0..5 {
        let (_, text) = get_text(&ll).await;
        let hint = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""))
            .and_then(|u| u.strip_suffix('"'))
            .expect("a preload hint")
            .to_owned();
        // The part after the hinted one, so it cannot be complete by the time we ask even on
        // a slow machine (it becomes the hint once the hinted part is out).
        let (name, query) = hint.split_once('?').expect("fs_hls");
        let (msn, index) = name
            .strip_prefix("hls_")
            .and_then(|n| n.strip_suffix(".m4s"))
            .and_then(|n| n.split_once('.'))
            .expect("hls_{msn}.{part}.m4s");
        let index: u64 = index.parse().expect("part index");
        let hint = format!("hls_{msn}.{}.m4s?{query}", index + 1);
        let asked = std::time::Instant::now();
        let mut resp = client
            .get(format!("{base}{hint}"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("GET hint");
        if resp.status() == 404 {
            continue; // the segment ended first: the hinted part never came
        }
        assert_eq!(resp.status(), 200);
        if resp.content_length().is_some() {
            continue; // complete already when asked for (a very slow machine): not streamed
        }
        let mut chunks = Vec::new();
        while let Some(chunk) = resp.chunk().await.expect("body") {
            chunks.push(chunk);
        }
        // A 200 ms part: complete well within a segment duration of the request.
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{:?}",
            asked.elapsed()
        );
        streamed = Some((hint, chunks));
        break;
    }
    let (hint, chunks) = streamed.expect("a part streamed in five tries");
    assert_eq!(&chunks[0][4..8], b"moof", "starts with a chunk's moof");
    let body: Vec<u8> = chunks.concat();
    let whole = client
        .get(format!("{base}{hint}"))
        .send()
        .await
        .expect("GET part")
        .bytes()
        .await
        .expect("part");
    assert_eq!(body, whole, "the streamed part is the part");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_viewers_are_authorized_once_counted_and_reported() {
    if !have_ffmpeg() {
        return;
    }
    let backend = Backend::start().await;
    let server = start_server_with(|o| {
        o.hooks = backend.config();
        o.lifecycle.flow_threshold = 1;
        o.hls.idle = Duration::from_secs(6);
    })
    .await;
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/auth"), &["-stream_loop", "-1"]);
    let key = StreamKey::new("live", "auth").expect("key");
    wait_live(&server, &key, 2).await;

    let url = http_url(&server, "live/auth/hls.m3u8?token=t1");
    assert!(decode_frames(&url, 60).await >= 60);
    let plays = backend.calls("on_play");
    assert_eq!(
        plays.len(),
        1,
        "one on_play for the playlist and all its segments"
    );
    assert_eq!(plays[0].body["schema"], "hls");
    assert_eq!(plays[0].body["params"], "token=t1");
    // While it watches it is a reader; once it stops, on_flow_report tells what it took.
    let flow = backend
        .wait_for("on_flow_report", 1, Duration::from_secs(15), |c| {
            c.body["player"] == true && c.body["schema"] == "hls"
        })
        .await;
    assert!(
        flow[0].body["totalBytes"]
            .as_u64()
            .is_some_and(|b| b > 10_000),
        "{}",
        flow[0].body
    );
    assert_eq!(server.registry.stream(&key).map(|s| s.readers), Some(0));

    // A refused viewer gets 401 with the backend's message.
    backend.reply(
        "on_play",
        e2e::backend::Reply::Json(serde_json::json!({"code": -1, "msg": "no ticket"})),
    );
    let (status, text) = get_text(&http_url(&server, "live/auth/hls.m3u8")).await;
    assert_eq!((status, text.as_str()), (401, "no ticket"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_ts_and_live_mp4_play_over_http_and_websocket() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/cont"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "cont").expect("key"), 2).await;
    for suffix in ["live.ts", "live.mp4"] {
        let url = http_url(&server, &format!("live/cont.{suffix}"));
        let probe = ffprobe(&url, 0).await;
        assert_eq!(codecs(&probe), ["aac", "h264"], "{suffix}: {probe}");
        assert!(decode_frames(&url, 50).await >= 50, "{suffix}");
    }
    // Over a WebSocket: the same bytes, one message per chunk.
    use futures_util::StreamExt;
    for (suffix, check) in [
        (
            "live.ts",
            (|m: &[u8]| m.first() == Some(&0x47)) as fn(&[u8]) -> bool,
        ),
        ("live.mp4", |m: &[u8]| m.get(4..8) == Some(&b"ftyp"[..])),
    ] {
        let ws_url = format!(
            "ws://{}/live/cont.{suffix}",
            server.http_addr.expect("http")
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.expect("ws");
        let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("ok");
        assert!(check(&first.into_data()), "{suffix}: first message");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_all_playlists_are_written_to_hls_save_path() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server_with(|o| {
        o.hls.window = 0;
        o.protocol.hls_save_path = dir.path().to_owned();
        // The publisher is killed below: end its stream at once, not after continue_push_ms.
        o.protocol.continue_push = Duration::ZERO;
    })
    .await;
    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/keep"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "keep").expect("key"), 2).await;
    // A viewer starts the HLS; segments pile up on disk as they finish.
    let url = http_url(&server, "live/keep/hls.m3u8");
    assert!(decode_frames(&url, 100).await >= 100);
    let playlist = dir.path().join("live/keep/hls.m3u8");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&playlist).unwrap_or_default();
        if text.matches("#EXTINF").count() >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no playlist on disk: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(dir.path().join("live/keep/hls_0.ts").exists());
    // The recording plays from disk on its own.
    let probe = ffprobe(playlist.to_str().expect("utf-8 path"), 0).await;
    assert_eq!(codecs(&probe), ["aac", "h264"], "{probe}");
    // The fMP4 HLS too: its segments (each part a run of one-frame chunks) play from disk.
    let url = http_url(&server, "live/keep/hls.fmp4.m3u8");
    assert!(decode_frames(&url, 50).await >= 50);
    let playlist_fmp4 = dir.path().join("live/keep/hls.fmp4.m3u8");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&playlist_fmp4)
        .unwrap_or_default()
        .matches("#EXTINF")
        .count()
        < 2
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no fMP4 playlist on disk"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let on_disk = playlist_fmp4.to_str().expect("utf-8 path");
    assert_eq!(codecs(&ffprobe(on_disk, 0).await), ["aac", "h264"]);
    assert!(decode_frames(on_disk, 50).await >= 50, "fMP4 HLS from disk");
    // When the stream ends, the playlist on disk is closed with EXT-X-ENDLIST.
    let _ = publisher.kill().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&playlist)
        .unwrap_or_default()
        .contains("#EXT-X-ENDLIST")
    {
        assert!(tokio::time::Instant::now() < deadline, "no ENDLIST on disk");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.shutdown().await;
}
