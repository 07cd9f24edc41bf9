//! setServerConfig applies while running, with real clients: hook URLs reach a real backend
//! from the next call on, `[protocol]` defaults shape the next stream, and a moved RTMP port
//! serves new clients while a viewer on the old one keeps playing. SIGHUP on the real binary
//! reads the file again the same way.

use e2e::api::Api;
use e2e::backend::{Backend, Reply};
use e2e::*;
use media::StreamKey;
use serde_json::json;
use std::time::Duration;
use tokio::process::Command;

/// The status line's code of a GET of `url`.
async fn status_of(url: &str) -> u16 {
    reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_protocol_and_ports_change_while_running() {
    if !have_ffmpeg() {
        return;
    }
    let backend = Backend::start().await;
    let server = start_server().await;
    let api = Api::of(&server);
    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/one"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "one").expect("key"), 2).await;
    let flv = http_url(&server, "live/one.live.flv");

    // Hooks off: the viewer plays. Then on_play at a backend that says no: refused at once.
    let mut viewer = ffmpeg_view(&rtmp_url(&server, "live/one"));
    let one = [
        ("schema", "rtmp"),
        ("vhost", "__defaultVhost__"),
        ("app", "live"),
        ("stream", "one"),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while api.call("getMediaPlayerList", &one).await["data"]
        .as_array()
        .map(Vec::len)
        != Some(1)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the viewer never joined"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    backend.reply("on_play", Reply::Json(json!({"code": 1, "msg": "no"})));
    let set = api
        .call(
            "setServerConfig",
            &[
                ("hook.enable", "1"),
                ("hook.on_play", &backend.url(hooks::Hook::OnPlay)),
                ("hook.timeoutSec", "2"),
            ],
        )
        .await;
    assert_eq!(set, json!({"code": 0, "changed": 3}));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while backend.calls("on_play").is_empty() {
        assert_eq!(status_of(&flv).await, 401, "a denied play answers 401");
        assert!(
            tokio::time::Instant::now() < deadline,
            "on_play never called"
        );
    }
    assert_eq!(backend.calls("on_play")[0].body["stream"], "one");

    // [protocol] defaults: the next stream has no RTSP.
    let set = api
        .call("setServerConfig", &[("protocol.enable_rtsp", "0")])
        .await;
    assert_eq!(set, json!({"code": 0, "changed": 1}));
    let mut second = ffmpeg_publish(&rtmp_url(&server, "live/two"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "two").expect("key"), 2).await;
    let listed = api.call("getMediaList", &[("stream", "two")]).await;
    let schemas: Vec<&str> = listed["data"]
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["schema"].as_str().expect("schema"))
        .collect();
    assert_eq!(schemas, ["rtmp"]);
    let first = api.call("getMediaList", &[("stream", "one")]).await;
    assert_eq!(
        first["data"].as_array().map(Vec::len),
        Some(2),
        "a live stream keeps its outputs"
    );

    // [hls]: HLS started from now on cuts 4 s segments (the default is 2 s).
    backend.reply("on_play", Reply::Json(json!({"code": 0})));
    let set = api.call("setServerConfig", &[("hls.segDur", "4")]).await;
    assert_eq!(set, json!({"code": 0, "changed": 1}));
    let playlist = reqwest::get(http_url(&server, "live/two/hls.m3u8"))
        .await
        .expect("playlist")
        .text()
        .await
        .expect("text");
    assert!(playlist.contains("#EXT-X-TARGETDURATION:4\n"), "{playlist}");

    // rtmp.port moves: the new port takes publishers, the old one refuses new connections, and
    // the viewer that came in on the old one is still playing.
    assert!(
        viewer.try_wait().expect("wait").is_none(),
        "the viewer ended before the move"
    );
    let old = server.rtmp_addr.expect("rtmp");
    let port = free_port();
    let set = api
        .call("setServerConfig", &[("rtmp.port", &port.to_string())])
        .await;
    assert_eq!(set, json!({"code": 0, "changed": 1}));
    let moved = format!("127.0.0.1:{port}").parse().expect("addr");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.rtmp_addr_now() != Some(moved) {
        assert!(tokio::time::Instant::now() < deadline, "RTMP did not move");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The old accept loop drops its socket as soon as it runs again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(old).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old port still accepts"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut third = ffmpeg_publish(
        &format!("rtmp://{moved}/live/three"),
        &["-stream_loop", "-1"],
    );
    wait_live(&server, &StreamKey::new("live", "three").expect("key"), 2).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        viewer.try_wait().expect("wait").is_none(),
        "the viewer on the old port was dropped"
    );
    let players = api
        .call(
            "getMediaPlayerList",
            &[
                ("schema", "rtmp"),
                ("vhost", "__defaultVhost__"),
                ("app", "live"),
                ("stream", "one"),
            ],
        )
        .await;
    assert_eq!(
        players["data"].as_array().map(Vec::len),
        Some(1),
        "{players}"
    );
    assert!(publisher.try_wait().expect("wait").is_none());
    for child in [&mut viewer, &mut publisher, &mut second, &mut third] {
        let _ = child.start_kill();
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reads_the_file_again() {
    if !have_ffmpeg() {
        return;
    }
    let backend = Backend::start().await;
    backend.reply("on_play", Reply::Json(json!({"code": 1, "msg": "no"})));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.ini");
    let (rtmp, http) = (free_port(), free_port());
    let base = format!(
        "[api]\nsecret=sighup-test-secret-0123456789abcd\n[rtmp]\nport={rtmp}\n[http]\nport={http}\n\
         [rtsp]\nport=0\n[turn]\nport=0\n"
    );
    std::fs::write(&path, &base).expect("write");
    let mut child = Command::new(ferrostream_bin())
        .arg("-c")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ferrostream");
    let flv = format!("http://127.0.0.1:{http}/live/hup.live.flv");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", rtmp))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _publisher = ffmpeg_publish(
        &format!("rtmp://127.0.0.1:{rtmp}/live/hup"),
        &["-stream_loop", "-1"],
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while status_of(&flv).await != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stream never played"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The file now sends on_play to a backend that refuses; SIGHUP applies it.
    std::fs::write(
        &path,
        format!(
            "{base}[hook]\nenable=1\non_play={}\n",
            backend.url(hooks::Hook::OnPlay)
        ),
    )
    .expect("write");
    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while status_of(&flv).await != 401 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "SIGHUP did not apply the hook"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!backend.calls("on_play").is_empty());
    assert!(
        child.try_wait().expect("wait").is_none(),
        "SIGHUP must not stop the server"
    );
    let _ = child.start_kill();
    let _ = child.wait().await;
}
