//! Lifecycle hooks against a real HTTP backend: on_stream_changed with the full stream
//! description and in order, on_flow_report for players and publishers, on_stream_none_reader
//! closing a stream, on_stream_not_found with the player waiting (or failed by `close`), the
//! server hooks, on_publish reply options, and continue_push_ms keeping viewers through a
//! publisher's reconnect.

use bytes::Bytes;
use e2e::backend::{Backend, Reply};
use e2e::client::{play_rtmp, Publisher, RtmpClient};
use e2e::*;
use media::StreamKey;
use rtmp::flv::TAG_VIDEO;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_changed_and_flow_report_arrive_in_order() {
    if !have_ffmpeg() {
        return;
    }
    let backend = Backend::start().await;
    let server = start_server_with(|o| {
        o.hooks = backend.config();
        o.lifecycle.flow_threshold = 1; // report every session that moved anything
    })
    .await;
    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/life?k=v"), &[]);
    let key = StreamKey::new("live", "life").expect("key");
    // Both outputs registered (rtmp, rtsp) before anyone plays, so the order below is fixed.
    let regist = backend
        .wait_for("on_stream_changed", 2, WAIT, |c| c.body["regist"] == true)
        .await;
    let body = &regist
        .iter()
        .find(|c| c.body["schema"] == "rtmp")
        .expect("rtmp registered")
        .body;
    for (field, value) in [
        ("schema", json!("rtmp")),
        ("vhost", json!("__defaultVhost__")),
        ("app", json!("live")),
        ("stream", json!("life")),
        ("params", json!("k=v")),
        ("originType", json!(1)),
        ("originTypeStr", json!("rtmp_push")),
        ("mediaServerId", json!("test-server")),
    ] {
        assert_eq!(body[field], value, "on_stream_changed.{field} in {body}");
    }
    assert!(
        body["originUrl"]
            .as_str()
            .is_some_and(|u| u.starts_with("rtmp://")),
        "{body}"
    );
    for field in [
        "createStamp",
        "aliveSecond",
        "bytesSpeed",
        "readerCount",
        "totalReaderCount",
    ] {
        assert!(body[field].is_u64(), "{field} in {body}");
    }
    assert!(
        body["originSock"]["peer_ip"] == "127.0.0.1" && body["originSock"]["local_port"].is_u64()
    );
    let tracks = body["tracks"].as_array().expect("tracks");
    let video = tracks.iter().find(|t| t["codec_type"] == 0).expect("video");
    let audio = tracks.iter().find(|t| t["codec_type"] == 1).expect("audio");
    assert_eq!(
        (&video["codec_id"], &video["codec_id_name"]),
        (&json!(0), &json!("H264"))
    );
    assert_eq!(
        (&video["width"], &video["height"]),
        (&json!(320), &json!(240))
    );
    assert!(video["fps"].is_f64(), "{video}");
    assert_eq!(
        (&audio["codec_id"], &audio["codec_id_name"]),
        (&json!(2), &json!("mpeg4-generic"))
    );
    assert_eq!(
        (&audio["sample_rate"], &audio["channels"]),
        (&json!(44100), &json!(1))
    );

    // A player that moves some bytes, then leaves: on_flow_report with player=true.
    assert!(decode_frames(&http_url(&server, "live/life.live.flv?who=viewer"), 10).await >= 10);
    let flow = backend
        .wait_for("on_flow_report", 1, WAIT, |c| c.body["player"] == true)
        .await;
    let f = &flow[0].body;
    assert_eq!(
        (&f["protocol"], &f["params"], &f["schema"]),
        (&json!("http"), &json!("who=viewer"), &json!("rtmp"))
    );
    assert!(
        f["totalBytes"].as_u64().is_some_and(|b| b > 0) && f["duration"].is_u64(),
        "{f}"
    );

    // The publisher finishes (ffmpeg unpublishes at the end of its file).
    let _ = tokio::time::timeout(Duration::from_secs(30), publisher.wait()).await;
    backend
        .wait_for("on_flow_report", 1, WAIT, |c| c.body["player"] == false)
        .await;
    assert!(!server.registry.is_live(&key));
    let unregist = backend
        .wait_for("on_stream_changed", 1, WAIT, |c| c.body["regist"] == false)
        .await;
    assert_eq!(unregist[0].body["schema"], "rtmp");

    // One stream's lifecycle in order: on_publish, registration of each output schema, the
    // player's on_play and flow report, unregistration, the publisher's flow report;
    // hook_index grows with it.
    let order: Vec<(String, u64)> = backend
        .all_calls()
        .iter()
        .filter(|c| c.body["stream"] == "life")
        .map(|c| {
            let what = match c.hook.as_str() {
                "on_stream_changed" => {
                    format!(
                        "changed:{}:{}",
                        c.body["regist"],
                        c.body["schema"].as_str().unwrap_or("")
                    )
                }
                "on_flow_report" => format!("flow:{}", c.body["player"]),
                h => h.to_owned(),
            };
            (what, c.body["hook_index"].as_u64().expect("index"))
        })
        .collect();
    let names: Vec<&str> = order.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "on_publish",
            "changed:true:rtmp",
            "changed:true:rtsp",
            "on_play",
            "flow:true",
            "changed:false:rtmp",
            "changed:false:rtsp",
            "flow:false"
        ],
        "{order:?}"
    );
    assert!(order.windows(2).all(|w| w[0].1 < w[1].1), "{order:?}");
    server.shutdown().await;
}

/// Publishes a synthetic H.264 stream (an avcC header, then a keyframe and deltas at 25 fps)
/// with our RTMP client.
async fn start_publisher(server: &server::Server, name: &str) -> Publisher {
    let header = Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]);
    let tags = (0..25u32)
        .map(|i| {
            let key = if i == 0 { 0x17 } else { 0x27 };
            let body = Bytes::from(vec![key, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]);
            (TAG_VIDEO, i * 40, body)
        })
        .collect();
    Publisher::start(
        server.rtmp_addr.expect("rtmp"),
        "live",
        name,
        vec![(TAG_VIDEO, header)],
        tags,
        1000,
        Duration::from_millis(40),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn none_reader_close_ends_the_stream() {
    let backend = Backend::start().await;
    backend.reply(
        "on_stream_none_reader",
        Reply::Json(json!({"code": 0, "close": true})),
    );
    let server = start_server_with(|o| {
        o.hooks = backend.config();
        o.lifecycle.none_reader_delay = Duration::from_millis(800);
    })
    .await;
    let key = StreamKey::new("live", "idle").expect("key");
    let publisher = start_publisher(&server, "idle").await;
    wait_live(&server, &key, 1).await;
    let calls = backend
        .wait_for("on_stream_none_reader", 1, WAIT, |_| true)
        .await;
    let body = &calls[0].body;
    assert_eq!(
        (&body["app"], &body["stream"], &body["schema"]),
        (&json!("live"), &json!("idle"), &json!("rtmp"))
    );
    assert_eq!(body["vhost"], "__defaultVhost__");
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.registry.is_live(&key) {
        assert!(tokio::time::Instant::now() < deadline, "stream not closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    publisher.abort();

    // Without `close`, the stream stays (and the backend is asked again later).
    backend.reply("on_stream_none_reader", Reply::Json(json!({"code": 0})));
    let key = StreamKey::new("live", "kept").expect("key");
    let publisher = start_publisher(&server, "kept").await;
    wait_live(&server, &key, 1).await;
    backend
        .wait_for("on_stream_none_reader", 2, WAIT, |c| {
            c.body["stream"] == "kept"
        })
        .await;
    assert!(server.registry.is_live(&key));
    publisher.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_then_published_or_closed() {
    let backend = Backend::start().await;
    let server = start_server_with(|o| {
        o.hooks = backend.config();
        o.max_stream_wait = Duration::from_secs(20);
    })
    .await;
    let rtmp = server.rtmp_addr.expect("rtmp");

    // The player comes first: on_stream_not_found, then it gets the stream once published.
    let player = tokio::spawn(async move {
        let mut client = RtmpClient::connect(rtmp, "live").await;
        client.try_play("later?p=1").await
    });
    let calls = backend
        .wait_for("on_stream_not_found", 1, WAIT, |_| true)
        .await;
    let body = &calls[0].body;
    assert_eq!(
        (&body["stream"], &body["params"], &body["protocol"]),
        (&json!("later"), &json!("p=1"), &json!("rtmp"))
    );
    assert!(body["ip"] == "127.0.0.1" && body["id"].is_string());
    let publisher = start_publisher(&server, "later").await;
    let played = tokio::time::timeout(WAIT, player)
        .await
        .expect("in time")
        .expect("task");
    assert_eq!(played, Ok(()));
    // on_play came before on_stream_not_found, as ZLMediaKit orders them.
    let play = &backend.calls("on_play")[0];
    assert!(play.at <= calls[0].at);
    publisher.stop().await;

    // `close: true`: the player fails at once instead of waiting maxStreamWaitMS (20 s).
    backend.reply(
        "on_stream_not_found",
        Reply::Json(json!({"code": 0, "close": true})),
    );
    let started = tokio::time::Instant::now();
    let resp = reqwest::get(http_url(&server, "live/never.live.flv"))
        .await
        .expect("GET");
    assert_eq!(resp.status().as_u16(), 404);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failed by close, not by the wait"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_started_keepalive_and_exited() {
    let backend = Backend::start().await;
    let mut config = server::config::Config::default();
    config.api.secret = server::config::Secret::new("top-secret");
    config.hook.admin_params = server::config::Secret::new("secret=bypass");
    config.hook.sign_token = server::config::Secret::new("sign-me");
    let mut options = server::Options::from_config(&config);
    options.rtmp_addr = Some("127.0.0.1:0".parse().expect("addr"));
    options.http_addr = None;
    options.turn_addr = None;
    options.rtsp_addr = None;
    options.hooks = backend.config();
    options.lifecycle.alive_interval = Duration::from_millis(300);
    let server = server::Server::start(options).await.expect("start");
    let started = backend
        .wait_for("on_server_started", 1, WAIT, |_| true)
        .await;
    let body = &started[0].body;
    assert_eq!(
        body["general.mediaServerId"], "your_server_id",
        "flat config: {body}"
    );
    assert_eq!(body["rtmp.port"], "1935");
    // Credentials and the auth bypass are blanked, not sent in clear.
    for key in ["api.secret", "hook.admin_params", "hook.sign_token"] {
        assert_eq!(body[key], "", "{key} is not blanked: {body}");
    }
    assert_eq!(body["mediaServerId"], "test-server");
    let alive = backend
        .wait_for("on_server_keepalive", 2, WAIT, |_| true)
        .await;
    assert!(alive[0].body["data"].is_object(), "{}", alive[0].body);
    // A stream live at shutdown is unregistered before the server says it exited.
    let _publisher = start_publisher(&server, "atexit").await;
    backend
        .wait_for("on_stream_changed", 1, WAIT, |c| c.body["regist"] == true)
        .await;
    server.shutdown().await;
    let calls = backend.all_calls();
    let unregist = calls
        .iter()
        .position(|c| c.hook == "on_stream_changed" && c.body["regist"] == false)
        .expect("regist=false sent during shutdown");
    let exited_at = calls
        .iter()
        .position(|c| c.hook == "on_server_exited")
        .expect("exited");
    assert!(unregist < exited_at);
    let exited = backend.calls("on_server_exited");
    assert_eq!(
        exited.len(),
        1,
        "on_server_exited sent before shutdown returns"
    );
    assert_eq!(exited[0].body["mediaServerId"], "test-server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_publish_reply_sets_stream_options() {
    let backend = Backend::start().await;
    backend.reply(
        "on_publish",
        Reply::Json(json!({"code": 0, "enable_rtmp": false, "stream_replace": "renamed"})),
    );
    let server = start_server_with(|o| {
        o.hooks = backend.config();
        o.max_stream_wait = Duration::from_millis(500);
    })
    .await;
    let publisher = start_publisher(&server, "orig").await;
    let key = StreamKey::new("live", "renamed").expect("key");
    wait_live(&server, &key, 1).await;
    assert!(!server
        .registry
        .is_live(&StreamKey::new("live", "orig").expect("key")));
    let info = server.registry.stream(&key).expect("live");
    assert!(!info.options.enable_rtmp);
    // RTMP/FLV output is off for this stream: players find nothing.
    let resp = reqwest::get(http_url(&server, "live/renamed.live.flv"))
        .await
        .expect("GET");
    assert_eq!(resp.status().as_u16(), 404);
    publisher.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_push_keeps_viewers_through_a_reconnect() {
    let backend = Backend::start().await;
    backend.reply(
        "on_publish",
        Reply::Json(json!({"code": 0, "continue_push_ms": 5000})),
    );
    let server = start_server_with(|o| o.hooks = backend.config()).await;
    let key = StreamKey::new("live", "flaky").expect("key");
    let first = start_publisher(&server, "flaky").await;
    wait_live(&server, &key, 1).await;
    let rtmp = server.rtmp_addr.expect("rtmp");
    let viewer = tokio::spawn(async move {
        play_rtmp(rtmp, "live", "flaky", Duration::from_secs(20), |got| {
            got.video.len() >= 60
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    // The publisher's network fails: no unpublish, the socket just goes.
    first.abort();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !server.registry.stream(&key).is_some_and(|s| s.orphaned) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream was not kept for its publisher: {:?}",
            server.registry.stream(&key).map(|s| s.orphaned)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = start_publisher(&server, "flaky").await;
    let got = viewer.await.expect("viewer");
    assert!(
        got.video.len() >= 60,
        "the viewer went on after the reconnect: {}",
        got.video.len()
    );
    let ts: Vec<u64> = got.video.iter().map(|f| f.dts).collect();
    assert!(
        ts.windows(2).all(|w| w[0] <= w[1]),
        "timestamps never step back: {ts:?}"
    );
    assert_eq!(backend.calls("on_publish").len(), 2);
    second.stop().await;
    server.shutdown().await;
}
