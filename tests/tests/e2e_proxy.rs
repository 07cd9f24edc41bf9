//! Pull and push proxies (addStreamProxy, addStreamPusherProxy and their list/info/del calls)
//! with real sources: ffmpeg publishing to the server itself (pulled back over RTMP and
//! HTTP-FLV), a source that goes away and comes back, pull on demand driven by the real
//! on_stream_not_found hook, and ffmpeg as the RTMP server a push goes to.

use e2e::api::{keys, Api};
use e2e::backend::{Backend, Reply};
use e2e::*;
use media::StreamKey;
use serde_json::{json, Value};
use std::time::Duration;

fn key(app: &str, stream: &str) -> StreamKey {
    StreamKey::new(app, stream).expect("key")
}

/// The getMediaList entries of `app/stream` (one per output schema).
async fn media_entries(api: &Api, app: &str, stream: &str) -> Vec<Value> {
    let list = api
        .call("getMediaList", &[("app", app), ("stream", stream)])
        .await;
    list["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_rtmp_and_http_flv_sources_and_lists_them() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    let api = Api::of(&server);
    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/src"), &["-stream_loop", "-1"]);
    wait_live(&server, &key("live", "src"), 2).await;

    // An RTMP source, with credentials in the URL that no answer repeats.
    let rtmp_addr = server.rtmp_addr.expect("rtmp");
    let source = format!("rtmp://user:hunter2@{rtmp_addr}/live/src");
    let added = api
        .call(
            "addStreamProxy",
            &[
                ("vhost", "__defaultVhost__"),
                ("app", "proxy"),
                ("stream", "a"),
                ("url", &source),
                ("retry_count", "3"),
                ("enable_hls", "0"),
            ],
        )
        .await;
    assert_eq!(
        added,
        json!({"code": 0, "data": {"key": "__defaultVhost__/proxy/a"}})
    );
    wait_live(&server, &key("proxy", "a"), 2).await;
    for url in [
        rtmp_url(&server, "proxy/a"),
        rtsp_url(&server, "proxy/a"),
        http_url(&server, "proxy/a.live.flv"),
    ] {
        let probe = ffprobe(&url, 0).await;
        assert_eq!(codecs(&probe), ["aac", "h264"], "{url}: {probe}");
    }
    // The ProtocolOption given with the call applies: no HLS for this stream.
    let hls = reqwest::get(http_url(&server, "proxy/a/hls.m3u8"))
        .await
        .expect("get");
    assert_eq!(hls.status(), 404);

    let entries = media_entries(&api, "proxy", "a").await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    for entry in &entries {
        assert_eq!(entry["originType"], 4, "{entry}");
        assert_eq!(entry["originTypeStr"], "pull", "{entry}");
        assert_eq!(
            entry["originUrl"],
            format!("rtmp://{rtmp_addr}/live/src"),
            "{entry}"
        );
    }

    let list = api.call("listStreamProxy", &[]).await;
    assert_eq!(list["code"], 0);
    let items = list["data"].as_array().expect("list");
    assert_eq!(items.len(), 1, "{list}");
    let item = &items[0];
    assert_eq!(
        keys(item),
        [
            "bytesSpeed",
            "key",
            "liveSecs",
            "rePullCount",
            "src",
            "status",
            "totalBytes",
            "totalReaderCount",
            "url"
        ]
    );
    assert_eq!(item["key"], "__defaultVhost__/proxy/a");
    assert_eq!(item["url"], format!("rtmp://{rtmp_addr}/live/src"));
    assert_eq!(item["status"], 0);
    assert_eq!(item["rePullCount"], 0);
    assert!(item["liveSecs"].is_u64(), "{item}");
    assert!(item["bytesSpeed"].is_u64(), "{item}");
    assert!(item["totalBytes"].as_u64().expect("bytes") > 0, "{item}");
    // ffprobe played it three times.
    assert!(
        item["totalReaderCount"].as_u64().expect("readers") >= 3,
        "{item}"
    );
    assert_eq!(
        item["src"],
        json!({"vhost": "__defaultVhost__", "app": "proxy", "stream": "a", "params": ""})
    );
    assert!(!list.to_string().contains("hunter2"), "{list}");
    let info = api
        .call("getProxyInfo", &[("key", "__defaultVhost__/proxy/a")])
        .await;
    let mut expected = item.clone();
    expected.as_object_mut().expect("object").remove("key");
    for moving in ["liveSecs", "bytesSpeed", "totalBytes", "totalReaderCount"] {
        expected[moving] = info["data"][moving].clone();
    }
    assert_eq!(info, json!({"code": 0, "data": expected}));

    // An HTTP-FLV source.
    let flv_source = http_url(&server, "live/src.live.flv");
    let added = api
        .call(
            "addStreamProxy",
            &[
                ("vhost", "__defaultVhost__"),
                ("app", "proxy"),
                ("stream", "b"),
                ("url", &flv_source),
            ],
        )
        .await;
    assert_eq!(
        added,
        json!({"code": 0, "data": {"key": "__defaultVhost__/proxy/b"}})
    );
    wait_live(&server, &key("proxy", "b"), 2).await;
    let probe = ffprobe(&rtmp_url(&server, "proxy/b"), 0).await;
    assert_eq!(codecs(&probe), ["aac", "h264"], "{probe}");
    assert!(decode_frames(&rtmp_url(&server, "proxy/b"), 30).await >= 30);

    // The same stream again is refused; so are sources that cannot be pulled, and none of
    // them leaves a proxy behind.
    let again = api
        .call(
            "addStreamProxy",
            &[
                ("vhost", "__defaultVhost__"),
                ("app", "proxy"),
                ("stream", "b"),
                ("url", &flv_source),
            ],
        )
        .await;
    assert_eq!(
        again,
        json!({"code": -1, "msg": "This stream already exists"})
    );
    let closed_port = free_port();
    for (url, msg) in [
        (
            "ftp://example/a".to_owned(),
            "unusable URL: ftp:// is not a source",
        ),
        (
            "https://example/a.flv".to_owned(),
            "unusable URL: https:// (TLS) sources are not supported",
        ),
        (
            "rtmp://127.0.0.1/live".to_owned(),
            "unusable URL: the path must be /app/stream",
        ),
        (
            format!("rtmp://127.0.0.1:{closed_port}/live/x"),
            "connect: Connection refused (os error 111)",
        ),
    ] {
        let refused = api
            .call(
                "addStreamProxy",
                &[
                    ("vhost", "__defaultVhost__"),
                    ("app", "proxy"),
                    ("stream", "c"),
                    ("url", &url),
                ],
            )
            .await;
        assert_eq!(refused, json!({"code": -1, "msg": msg}), "{url}");
    }
    let list = api.call("listStreamProxy", &[]).await;
    let listed: Vec<&str> = list["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["key"].as_str().expect("key"))
        .collect();
    assert_eq!(
        listed,
        ["__defaultVhost__/proxy/a", "__defaultVhost__/proxy/b"]
    );

    // delStreamProxy ends the stream; a second delete finds nothing.
    let del = api
        .call("delStreamProxy", &[("key", "__defaultVhost__/proxy/a")])
        .await;
    assert_eq!(del, json!({"code": 0, "data": {"flag": true}}));
    let online = api
        .call(
            "isMediaOnline",
            &[
                ("schema", "rtmp"),
                ("vhost", "__defaultVhost__"),
                ("app", "proxy"),
                ("stream", "a"),
            ],
        )
        .await;
    assert_eq!(online, json!({"code": 0, "online": false}));
    let del = api
        .call("delStreamProxy", &[("key", "__defaultVhost__/proxy/a")])
        .await;
    assert_eq!(del, json!({"code": 0, "data": {"flag": false}}));
    let info = api
        .call("getProxyInfo", &[("key", "__defaultVhost__/proxy/a")])
        .await;
    assert_eq!(info, json!({"code": -500, "msg": "can not find the proxy"}));
    let missing = api.call("addStreamProxy", &[("app", "proxy")]).await;
    assert_eq!(
        missing,
        json!({"code": -300, "msg": "Required parameter missed: \"vhost\",\"app\",\"stream\",\"url\""})
    );

    // The source's end reaches the proxy: with no retries left it is gone.
    let del = api
        .call("delStreamProxy", &[("key", "__defaultVhost__/proxy/b")])
        .await;
    assert_eq!(del["data"]["flag"], true);
    publisher.kill().await.expect("kill");
}

/// An RTMP camera: ffmpeg serving the sample in a loop to the one client that plays `url`.
fn camera(url: &str) -> tokio::process::Child {
    tokio::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
        ])
        .arg(sample_flv())
        .args(["-c", "copy", "-f", "flv", "-listen", "1", url])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn camera")
}

/// A source that goes away and comes back: the proxy retries, its stream stays live, and a
/// viewer that stayed connected receives the source again on the same timeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_restarts_is_pulled_again_and_viewers_stay() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    let api = Api::of(&server);
    let port = free_port();
    let src = format!("rtmp://127.0.0.1:{port}/live/cam");
    let mut cam = camera(&src);
    // The first attempt is refused until ffmpeg listens.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let added = api
            .call(
                "addStreamProxy",
                &[
                    ("vhost", "__defaultVhost__"),
                    ("app", "proxy"),
                    ("stream", "cam"),
                    ("url", &src),
                    ("timeout_sec", "3"),
                ],
            )
            .await;
        if added["code"] == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{added}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_live(&server, &key("proxy", "cam"), 2).await;

    // A viewer records what it receives.
    let dir = tempfile::tempdir().expect("temp dir");
    let recording = dir.path().join("viewer.flv");
    let mut viewer = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(rtmp_url(&server, "proxy/cam"))
        .args(["-map", "0", "-c", "copy", "-f", "flv"])
        .arg(&recording)
        .stdin(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn viewer");
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The camera reboots.
    cam.kill().await.expect("kill camera");
    let _ = cam.wait().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        server.registry.is_live(&key("proxy", "cam")),
        "the proxied stream outlives its source's restart"
    );
    let info = api
        .call("getProxyInfo", &[("key", "__defaultVhost__/proxy/cam")])
        .await;
    assert_eq!(info["data"]["status"], 1, "{info}");
    let mut cam = camera(&src);

    // The proxy plays it again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let info = api
            .call("getProxyInfo", &[("key", "__defaultVhost__/proxy/cam")])
            .await;
        if info["data"]["status"] == 0 && info["data"]["rePullCount"].as_u64() >= Some(1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the proxy did not pull the source again: {info}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        viewer.try_wait().expect("viewer").is_none(),
        "the viewer stayed connected"
    );
    // `q` lets ffmpeg finish the file.
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = viewer.stdin.take().expect("stdin");
        stdin.write_all(b"q").await.expect("q");
    }
    assert!(
        exits_within(&mut viewer, Duration::from_secs(10)).await,
        "the viewer stops on q"
    );
    cam.kill().await.expect("kill camera");

    // What the viewer got: video from before and after the restart, on one rising timeline.
    let mut cmd = tokio::process::Command::new("ffprobe");
    cmd.args(["-v", "error", "-of", "json", "-select_streams", "v:0"])
        .args(["-show_entries", "packet=dts_time"])
        .arg(&recording);
    let out = output_within(&mut cmd, Duration::from_secs(30)).await;
    let probe: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let dts: Vec<f64> = probe["packets"]
        .as_array()
        .unwrap_or_else(|| {
            panic!(
                "no packets in what the viewer recorded ({} bytes): {}",
                std::fs::metadata(&recording).map_or(0, |m| m.len()),
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .iter()
        .filter_map(|p| p["dts_time"].as_str()?.parse().ok())
        .collect();
    assert!(
        dts.windows(2).all(|w| w[1] >= w[0]),
        "the timeline never goes back"
    );
    let largest_gap = dts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    assert!(
        largest_gap < 1.0,
        "the restart leaves no hole in the timeline: {largest_gap} s"
    );
    // About 3 s before, 3 s after (plus the time the proxy took to reconnect).
    let span = dts.last().expect("last") - dts.first().expect("first");
    assert!(span > 5.0, "video spans {span} s");
    // Every frame of the span arrived (the sample is 25 fps; how many seconds the viewer saw
    // depends on how fast a loaded machine starts ffmpeg, so the count follows the span).
    assert!(
        dts.len() as f64 >= span * 20.0,
        "{} video packets over {span} s",
        dts.len()
    );
}

/// Pull on demand: a player asks for a stream nobody publishes, the backend hears
/// on_stream_not_found and answers by calling addStreamProxy, and the player gets the stream;
/// when nobody watches, on_stream_none_reader's `close` ends the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_pulls_on_demand_and_closes_when_unwatched() {
    if !have_ffmpeg() {
        return;
    }
    let backend = Backend::start().await;
    let server = start_server_with(|o| {
        o.hooks = backend.config();
        o.max_stream_wait = Duration::from_secs(15);
        o.lifecycle.none_reader_delay = Duration::from_secs(2);
        // An HLS viewer counts as one until it has fetched nothing for this long.
        o.hls.idle = Duration::from_secs(2);
    })
    .await;
    let api = Api::of(&server);
    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/origin"), &["-stream_loop", "-1"]);
    wait_live(&server, &key("live", "origin"), 2).await;
    backend.reply(
        "on_stream_none_reader",
        Reply::Json(json!({"code": 0, "close": true})),
    );

    // The backend: adds a proxy for each missing stream the moment it hears of it.
    let source = rtmp_url(&server, "live/origin");
    let backend_task = {
        let (backend, api, source) = (backend.clone(), Api::of(&server), source.clone());
        tokio::spawn(async move {
            let mut answered = 0;
            let mut answers = Vec::new();
            loop {
                let asked = backend.calls("on_stream_not_found");
                for call in asked.iter().skip(answered) {
                    let app = call.body["app"].as_str().expect("app").to_owned();
                    let stream = call.body["stream"].as_str().expect("stream").to_owned();
                    let added = api
                        .call(
                            "addStreamProxy",
                            &[
                                ("vhost", "__defaultVhost__"),
                                ("app", &app),
                                ("stream", &stream),
                                ("url", &source),
                            ],
                        )
                        .await;
                    answers.push((stream, added));
                }
                answered = asked.len();
                if answers.len() >= 4 {
                    return answers;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // Players of every kind ask first; each gets its stream.
    let urls = [
        http_url(&server, "proxy/demand.live.flv"),
        rtmp_url(&server, "proxy/demand-rtmp"),
        rtsp_url(&server, "proxy/demand-rtsp"),
        http_url(&server, "proxy/demand-hls/hls.m3u8"),
    ];
    let (flv, rtmp, rtsp, hls) = tokio::join!(
        ffprobe(&urls[0], 0),
        ffprobe(&urls[1], 0),
        ffprobe(&urls[2], 0),
        ffprobe(&urls[3], 0),
    );
    for (player, probe) in [
        ("HTTP-FLV", flv),
        ("RTMP", rtmp),
        ("RTSP", rtsp),
        ("HLS", hls),
    ] {
        assert_eq!(codecs(&probe), ["aac", "h264"], "{player}: {probe}");
    }
    let mut answers = backend_task.await.expect("backend");
    answers.sort_by(|a, b| a.0.cmp(&b.0));
    for (stream, added) in &answers {
        assert_eq!(
            added,
            &json!({"code": 0, "data": {"key": format!("__defaultVhost__/proxy/{stream}")}})
        );
    }
    let streams: Vec<&str> = answers.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        streams,
        ["demand", "demand-hls", "demand-rtmp", "demand-rtsp"]
    );
    // The proxied stream was admitted like any other: on_publish, as a pull.
    let publish = backend
        .wait_for("on_publish", 1, Duration::from_secs(5), |c| {
            c.body["stream"] == "demand"
        })
        .await;
    let body = &publish[0].body;
    assert_eq!(body["app"], "proxy");
    assert_eq!(body["schema"], "pull");
    assert_eq!(body["originType"], 4);
    assert_eq!(body["originTypeStr"], "pull");

    // Nobody watches: on_stream_none_reader says close, and the proxy is gone with its stream.
    backend
        .wait_for("on_stream_none_reader", 1, Duration::from_secs(20), |c| {
            c.body["stream"] == "demand"
        })
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list = api.call("listStreamProxy", &[]).await;
        if list == json!({"code": 0}) && server.registry.streams().len() == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the proxy outlived its close: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    publisher.kill().await.expect("kill");
}

/// addStreamPusherProxy sends a live stream to another RTMP server (ffmpeg listening), which
/// records exactly the stream's two tracks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_a_stream_to_an_rtmp_server() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    let api = Api::of(&server);

    // Nothing to push yet.
    let port = free_port();
    let dst = format!("rtmp://127.0.0.1:{port}/live/copy");
    let args = [
        ("schema", "rtmp"),
        ("vhost", "__defaultVhost__"),
        ("app", "live"),
        ("stream", "src"),
        ("dst_url", dst.as_str()),
        ("retry_count", "0"),
    ];
    let none = api.call("addStreamPusherProxy", &args).await;
    assert_eq!(
        none,
        json!({"code": -1, "msg": "can not find the source stream"})
    );

    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/src"), &["-stream_loop", "-1"]);
    wait_live(&server, &key("live", "src"), 2).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let received = dir.path().join("received.flv");
    let mut receiver = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-listen", "1", "-i"])
        .arg(&dst)
        .args(["-map", "0", "-c", "copy", "-f", "flv"])
        .arg(&received)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn receiver");
    // ffmpeg listens once it has started: until then the push is refused (a refused connect
    // does not disturb ffmpeg's listener).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let pushed = loop {
        let pushed = api.call("addStreamPusherProxy", &args).await;
        if pushed["code"] == 0 {
            break pushed;
        }
        assert_eq!(
            pushed,
            json!({"code": -1, "msg": "connect: Connection refused (os error 111)"})
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "ffmpeg never listened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let push_key = pushed["data"]["key"].as_str().expect("key").to_owned();
    let md5: String = {
        use md5::{Digest, Md5};
        Md5::digest(dst.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(push_key, format!("rtmp/__defaultVhost__/live/src/{md5}"));
    // The same push again answers the same key.
    let again = api.call("addStreamPusherProxy", &args).await;
    assert_eq!(again, json!({"code": 0, "data": {"key": push_key}}));
    tokio::time::sleep(Duration::from_secs(3)).await;

    let list = api.call("listStreamPusherProxy", &[]).await;
    let items = list["data"].as_array().expect("list");
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(
        keys(&items[0]),
        [
            "bytesSpeed",
            "key",
            "liveSecs",
            "rePublishCount",
            "src",
            "status",
            "totalBytes",
            "url"
        ]
    );
    assert_eq!(items[0]["key"], push_key);
    assert_eq!(items[0]["url"], dst);
    assert_eq!(items[0]["status"], 0);
    assert_eq!(items[0]["rePublishCount"], 0);
    assert!(items[0]["totalBytes"].as_u64().expect("bytes") > 0);
    assert_eq!(
        items[0]["src"],
        json!({"vhost": "__defaultVhost__", "app": "live", "stream": "src", "params": ""})
    );
    let info = api.call("getProxyPusherInfo", &[("key", &push_key)]).await;
    assert_eq!(info["data"]["url"], dst, "{info}");
    // The push is a session of its stream: listed, and counted as a reader.
    let players = api
        .call(
            "getMediaPlayerList",
            &[
                ("schema", "rtmp"),
                ("vhost", "__defaultVhost__"),
                ("app", "live"),
                ("stream", "src"),
            ],
        )
        .await;
    assert_eq!(
        players["data"].as_array().map(Vec::len),
        Some(1),
        "{players}"
    );

    let del = api
        .call("delStreamPusherProxy", &[("key", &push_key)])
        .await;
    assert_eq!(del, json!({"code": 0, "data": {"flag": true}}));
    assert!(
        exits_within(&mut receiver, Duration::from_secs(10)).await,
        "the receiver sees the push end"
    );
    let probe = ffprobe(received.to_str().expect("utf-8"), 0).await;
    assert_eq!(codecs(&probe), ["aac", "h264"], "{probe}");
    let info = api.call("getProxyPusherInfo", &[("key", &push_key)]).await;
    assert_eq!(info, json!({"code": -500, "msg": "can not find pusher"}));
    publisher.kill().await.expect("kill");
}
