//! addStreamProxy of HTTP MPEG-TS and HLS sources: ffmpeg serving a live TS over HTTP, and
//! ffmpeg writing live HLS that an axum file server serves. Each pulled stream is played back
//! from ferrostream over RTMP and HLS by ffprobe (exactly h264 + aac), and getMediaList lists it
//! as a pull (originType 4) of its URL; a server's own `.live.ts` pulls back to the same tracks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use e2e::api::Api;
use e2e::*;
use media::StreamKey;
use serde_json::{json, Value};

fn key(app: &str, stream: &str) -> StreamKey {
    StreamKey::new(app, stream).expect("key")
}

/// A child process killed (and reaped) on drop.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ffmpeg(args: &[&str]) -> Process {
    let child = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn ffmpeg");
    Process(child)
}

/// The live test source ffmpeg encodes: 640x360 H.264 at 25 fps, a keyframe a second, AAC.
const SOURCE: [&str; 17] = [
    "-re",
    "-f",
    "lavfi",
    "-i",
    "testsrc2=size=640x360:rate=25",
    "-f",
    "lavfi",
    "-i",
    "sine=sample_rate=44100",
    "-c:v",
    "libx264",
    "-g",
    "25",
    "-bf",
    "0",
    "-c:a",
    "aac",
];

/// Waits until something listens on 127.0.0.1:`port`, without connecting (ffmpeg's
/// `-listen 1` serves one client only).
async fn wait_listening(port: u16) {
    let needle = format!("0100007F:{port:04X} 00000000:0000 0A");
    for _ in 0..200 {
        if std::fs::read_to_string("/proc/net/tcp").is_ok_and(|t| t.contains(&needle)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on port {port}");
}

/// Serves the files of `dir` under `/hls/`.
async fn file_server(dir: PathBuf) -> SocketAddr {
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    async fn file(
        State(dir): State<Arc<PathBuf>>,
        Path(name): Path<String>,
    ) -> axum::response::Response {
        if name.contains("..") {
            return StatusCode::BAD_REQUEST.into_response();
        }
        match tokio::fs::read(dir.join(&name)).await {
            Ok(bytes) => bytes.into_response(),
            Err(_) => StatusCode::NOT_FOUND.into_response(),
        }
    }

    let app = axum::Router::new()
        .route("/hls/{*name}", axum::routing::get(file))
        .with_state(Arc::new(dir));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

async fn add_proxy(api: &Api, stream: &str, url: &str) -> Value {
    api.call(
        "addStreamProxy",
        &[
            ("vhost", "__defaultVhost__"),
            ("app", "proxy"),
            ("stream", stream),
            ("url", url),
            ("retry_count", "2"),
            ("timeout_sec", "5"),
        ],
    )
    .await
}

/// The pulled stream, as a viewer and the API see it.
async fn check_pulled(server: &server::Server, api: &Api, stream: &str, source: &str) {
    wait_live(server, &key("proxy", stream), 2).await;
    let rtmp = rtmp_url(server, &format!("proxy/{stream}"));
    let probe = ffprobe(&rtmp, 0).await;
    assert_eq!(codecs(&probe), ["aac", "h264"], "{rtmp}: {probe}");
    let video = probe["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == "video"))
        .cloned()
        .expect("video stream");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert!(decode_frames(&rtmp, 50).await >= 50, "{rtmp}");
    let hls = http_url(server, &format!("proxy/{stream}/hls.m3u8"));
    let probe = ffprobe(&hls, 0).await;
    assert_eq!(codecs(&probe), ["aac", "h264"], "{hls}: {probe}");

    let list = api
        .call("getMediaList", &[("app", "proxy"), ("stream", stream)])
        .await;
    let entries = list["data"].as_array().cloned().unwrap_or_default();
    assert!(!entries.is_empty(), "{list}");
    for entry in &entries {
        assert_eq!(entry["originType"], 4, "{entry}");
        assert_eq!(entry["originTypeStr"], "pull", "{entry}");
        assert_eq!(entry["originUrl"], source, "{entry}");
        let mut tracks: Vec<&str> = entry["tracks"]
            .as_array()
            .expect("tracks")
            .iter()
            .filter_map(|t| t["codec_id_name"].as_str())
            .collect();
        tracks.sort_unstable();
        assert_eq!(tracks, ["H264", "mpeg4-generic"], "{entry}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_http_ts_and_hls_sources() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    let api = Api::of(&server);

    // HTTP-TS: ffmpeg is the HTTP server.
    let port = free_port();
    let ts_source = format!("http://127.0.0.1:{port}/live.ts");
    let mut args = SOURCE.to_vec();
    args.extend(["-f", "mpegts", "-listen", "1", &ts_source]);
    let _ts = ffmpeg(&args);
    wait_listening(port).await;
    let added = add_proxy(&api, "ts", &ts_source).await;
    assert_eq!(
        added,
        json!({"code": 0, "data": {"key": "__defaultVhost__/proxy/ts"}})
    );
    check_pulled(&server, &api, "ts", &ts_source).await;

    // HLS: ffmpeg writes a live playlist, a file server serves it.
    let dir = tempfile::tempdir().expect("tempdir");
    let playlist = dir.path().join("live.m3u8");
    let mut args = SOURCE.to_vec();
    let playlist_arg = playlist.to_str().expect("utf-8 path").to_owned();
    args.extend(["-f", "hls", "-hls_time", "1", "-hls_list_size", "5"]);
    args.extend(["-hls_flags", "delete_segments", &playlist_arg]);
    let _hls = ffmpeg(&args);
    for _ in 0..300 {
        let text = std::fs::read_to_string(&playlist).unwrap_or_default();
        if text.matches("#EXTINF").count() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let addr = file_server(dir.path().to_owned()).await;
    let hls_source = format!("http://{addr}/hls/live.m3u8");
    let added = add_proxy(&api, "hls", &hls_source).await;
    assert_eq!(
        added,
        json!({"code": 0, "data": {"key": "__defaultVhost__/proxy/hls"}})
    );
    check_pulled(&server, &api, "hls", &hls_source).await;

    let list = api.call("listStreamProxy", &[]).await;
    let mut urls: Vec<&str> = list["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["url"].as_str())
        .collect();
    urls.sort_unstable();
    let mut expected = [hls_source.as_str(), ts_source.as_str()];
    expected.sort_unstable();
    assert_eq!(urls, expected, "{list}");
    for item in list["data"].as_array().expect("list") {
        assert_eq!(item["status"], 0, "{item}");
        assert!(item["totalBytes"].as_u64().expect("bytes") > 0, "{item}");
    }

    // Sources that are not there, or not media, fail the call and leave no proxy behind.
    let closed = free_port();
    std::fs::write(dir.path().join("junk.ts"), vec![0x55u8; 50_000]).expect("write");
    for (url, msg) in [
        (
            format!("http://127.0.0.1:{closed}/live.ts"),
            "connect: Connection refused (os error 111)".to_owned(),
        ),
        (
            format!("http://{addr}/hls/missing.m3u8"),
            format!("refused by the peer: GET http://{addr}/hls/missing.m3u8: HTTP 404 Not Found"),
        ),
        (
            format!("http://{addr}/hls/junk.ts"),
            "protocol error: the body ended without an MPEG-TS program".to_owned(),
        ),
    ] {
        let refused = add_proxy(&api, "bad", &url).await;
        assert_eq!(refused, json!({"code": -1, "msg": msg}), "{url}");
    }
    assert!(!server.registry.is_live(&key("proxy", "bad")));

    for stream in ["ts", "hls"] {
        let deleted = api
            .call(
                "delStreamProxy",
                &[("key", &format!("__defaultVhost__/proxy/{stream}"))],
            )
            .await;
        assert_eq!(deleted, json!({"code": 0, "data": {"flag": true}}));
        assert!(!server.registry.is_live(&key("proxy", stream)));
    }
}

/// Another ZLMediaKit-style server's `.live.ts` and HLS (here ferrostream's own, of a stream
/// ffmpeg publishes over RTMP) pull like any HTTP-TS or HLS source: what the TS muxer and the
/// segmenter write, the pulls read back to the same tracks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_a_servers_live_ts() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    let api = Api::of(&server);
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/src"), &["-stream_loop", "-1"]);
    wait_live(&server, &key("live", "src"), 2).await;
    let source = http_url(&server, "live/src.live.ts");
    let added = add_proxy(&api, "own", &source).await;
    assert_eq!(
        added,
        json!({"code": 0, "data": {"key": "__defaultVhost__/proxy/own"}})
    );
    wait_live(&server, &key("proxy", "own"), 2).await;
    let original = server.registry.stream(&key("live", "src")).expect("live");
    let pulled = server.registry.stream(&key("proxy", "own")).expect("live");
    let dims = |tracks: &[media::TrackInfo]| -> Vec<(media::Codec, u32, u32, u32, u8)> {
        let mut t: Vec<_> = tracks
            .iter()
            .map(|t| (t.codec, t.width, t.height, t.sample_rate, t.channels))
            .collect();
        t.sort_by_key(|t| t.0.zlm_id());
        t
    };
    assert_eq!(dims(&pulled.tracks), dims(&original.tracks));
    let rtmp = rtmp_url(&server, "proxy/own");
    assert_eq!(codecs(&ffprobe(&rtmp, 0).await), ["aac", "h264"]);
    assert!(decode_frames(&rtmp, 30).await >= 30, "{rtmp}");
    let list = api
        .call("getMediaList", &[("app", "proxy"), ("stream", "own")])
        .await;
    for entry in list["data"].as_array().expect("entries") {
        assert_eq!(entry["originType"], 4, "{entry}");
        assert_eq!(entry["originUrl"], source, "{entry}");
    }

    // And its HLS (segment URIs with a session query, as ZLMediaKit writes them).
    let source = http_url(&server, "live/src/hls.m3u8");
    let added = add_proxy(&api, "own_hls", &source).await;
    assert_eq!(
        added,
        json!({"code": 0, "data": {"key": "__defaultVhost__/proxy/own_hls"}})
    );
    wait_live(&server, &key("proxy", "own_hls"), 2).await;
    let pulled = server
        .registry
        .stream(&key("proxy", "own_hls"))
        .expect("live");
    assert_eq!(dims(&pulled.tracks), dims(&original.tracks));
    let rtmp = rtmp_url(&server, "proxy/own_hls");
    assert_eq!(codecs(&ffprobe(&rtmp, 0).await), ["aac", "h264"]);
    assert!(decode_frames(&rtmp, 30).await >= 30, "{rtmp}");
}
