//! RTSP proxies through the REST API with a real camera (GStreamer's RTSP server 1.22 driven
//! by `tests/data/rtsp_camera.py`): addStreamProxy over TCP and UDP with Digest credentials,
//! the pulled stream played back over RTMP and RTSP, a camera that restarts under an RTMP
//! viewer, and addStreamPusherProxy to ffmpeg listening as an RTSP server.

use e2e::api::Api;
use e2e::*;
use media::StreamKey;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

fn key(app: &str, stream: &str) -> StreamKey {
    StreamKey::new(app, stream).expect("key")
}

/// The Python with Debian's `gi` (a pyenv `python3` first on PATH lacks it).
fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// GStreamer's RTSP server and x264 are installed; else the test is skipped (failed in CI).
fn have_camera() -> bool {
    let ok = std::process::Command::new(python())
        .args([
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0')",
        ])
        .status()
        .is_ok_and(|s| s.success())
        && std::process::Command::new("gst-inspect-1.0")
            .args(["--exists", "x264enc"])
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "GStreamer's RTSP server missing in CI: scripts/test must install it"
        );
        eprintln!("skipped: GStreamer's RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0)");
    }
    ok
}

/// A camera at `rtsp://127.0.0.1:port/live/cam` (H.264 + AAC), killed when dropped.
async fn camera(port: u16, args: &[&str]) -> Child {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/data/rtsp_camera.py");
    let mut child = Command::new(python())
        .arg(script)
        .arg(port.to_string())
        .arg("live/cam")
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the camera");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::time::timeout(
        Duration::from_secs(20),
        BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("the camera starts")
    .expect("read")
    .expect("a line");
    assert_eq!(line, format!("ready rtsp://127.0.0.1:{port}/live/cam"));
    child
}

/// The getMediaList entries of `app/stream` (one per output schema).
async fn media_entries(api: &Api, app: &str, stream: &str) -> Vec<Value> {
    let list = api
        .call("getMediaList", &[("app", app), ("stream", stream)])
        .await;
    list["data"].as_array().cloned().unwrap_or_default()
}

async fn add_proxy(api: &Api, stream: &str, url: &str, rtp_type: &str) -> Value {
    api.call(
        "addStreamProxy",
        &[
            ("vhost", "__defaultVhost__"),
            ("app", "proxy"),
            ("stream", stream),
            ("url", url),
            ("rtp_type", rtp_type),
            ("timeout_sec", "5"),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_a_camera_over_tcp_and_udp_with_digest() {
    if !have_ffmpeg() || !have_camera() {
        return;
    }
    let port = free_port();
    let _camera = camera(port, &["--user", "admin", "--pass", "s3cret"]).await;
    let server = start_server().await;
    let api = Api::of(&server);
    let origin = format!("rtsp://127.0.0.1:{port}/live/cam");
    for (stream, rtp_type) in [("tcp", "0"), ("udp", "1")] {
        let url = format!("rtsp://admin:s3cret@127.0.0.1:{port}/live/cam");
        let added = add_proxy(&api, stream, &url, rtp_type).await;
        assert_eq!(
            added,
            json!({"code": 0, "data": {"key": format!("__defaultVhost__/proxy/{stream}")}}),
            "{stream}"
        );
        wait_live(&server, &key("proxy", stream), 2).await;
        let path = format!("proxy/{stream}");
        for url in [rtmp_url(&server, &path), rtsp_url(&server, &path)] {
            let probe = ffprobe(&url, 0).await;
            assert_eq!(codecs(&probe), ["aac", "h264"], "{url}: {probe}");
            let video = probe["streams"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["codec_type"] == "video"))
                .expect("video");
            assert_eq!(
                (&video["width"], &video["height"]),
                (&json!(640), &json!(360))
            );
        }
        assert!(decode_frames(&rtmp_url(&server, &path), 50).await >= 50);
        let entries = media_entries(&api, "proxy", stream).await;
        assert!(!entries.is_empty());
        for entry in &entries {
            assert_eq!(entry["originType"], 4, "{entry}");
            assert_eq!(entry["originTypeStr"], "pull", "{entry}");
            assert_eq!(entry["originUrl"], origin, "{entry}");
        }
        assert!(!json!(entries).to_string().contains("s3cret"));
    }
    let list = api.call("listStreamProxy", &[]).await;
    let urls: Vec<&Value> = list["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(|p| &p["url"])
        .collect();
    assert_eq!(urls, [&json!(origin), &json!(origin)], "{list}");

    // A wrong password: addStreamProxy answers with the camera's refusal, and no proxy stays.
    let wrong = format!("rtsp://admin:nope@127.0.0.1:{port}/live/cam");
    let refused = add_proxy(&api, "wrong", &wrong, "0").await;
    assert_eq!(
        refused,
        json!({"code": -1, "msg": "refused by the peer: DESCRIBE answered 401"})
    );
    let list = api.call("listStreamProxy", &[]).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(2), "{list}");
}

/// The camera reboots under an RTMP viewer: the proxy retries, the stream stays live, and the
/// viewer receives the camera again once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_restart_keeps_the_viewer() {
    if !have_ffmpeg() || !have_camera() {
        return;
    }
    let port = free_port();
    let mut cam = camera(port, &[]).await;
    let server = start_server().await;
    let api = Api::of(&server);
    let src = format!("rtsp://127.0.0.1:{port}/live/cam");
    let added = add_proxy(&api, "cam", &src, "0").await;
    assert_eq!(added["code"], 0, "{added}");
    wait_live(&server, &key("proxy", "cam"), 2).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let recording = dir.path().join("viewer.flv");
    let mut viewer = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(rtmp_url(&server, "proxy/cam"))
        .args(["-map", "0", "-c", "copy", "-f", "flv"])
        .arg(&recording)
        .stdin(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn viewer");
    tokio::time::sleep(Duration::from_secs(3)).await;

    cam.kill().await.expect("kill camera");
    let _ = cam.wait().await;
    // The attempt ends (EOF) and the proxy waits to retry; the stream stays.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info = api
            .call("getProxyInfo", &[("key", "__defaultVhost__/proxy/cam")])
            .await;
        if info["data"]["status"] == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{info}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.registry.is_live(&key("proxy", "cam")));
    let _cam = camera(port, &[]).await;
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
            "the proxy did not pull the camera again: {info}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        viewer.try_wait().expect("viewer").is_none(),
        "the viewer stayed"
    );
    viewer
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"q")
        .await
        .expect("q");
    assert!(exits_within(&mut viewer, Duration::from_secs(10)).await);

    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-of", "json", "-select_streams", "v:0"])
        .args(["-show_entries", "packet=dts_time"])
        .arg(&recording);
    let out = output_within(&mut cmd, Duration::from_secs(30)).await;
    let probe: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let dts: Vec<f64> = probe["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .filter_map(|p| p["dts_time"].as_str()?.parse().ok())
        .collect();
    // 25 fps: about 3 s before the restart and 3 s after.
    assert!(dts.len() > 130, "{} video packets", dts.len());
    assert!(
        dts.windows(2).all(|w| w[1] >= w[0]),
        "the timeline never goes back"
    );
    let largest_gap = dts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    assert!(
        largest_gap < 1.0,
        "the restart leaves no hole in the timeline: {largest_gap} s"
    );
    let span = dts.last().expect("last") - dts.first().expect("first");
    assert!(span > 5.0, "video spans {span} s");
}

/// addStreamPusherProxy with schema rtsp: ANNOUNCE/SETUP/RECORD to ffmpeg listening as an
/// RTSP server, which records exactly the stream's two tracks; the push is a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_a_stream_to_an_rtsp_server() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    let api = Api::of(&server);
    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/src"), &["-stream_loop", "-1"]);
    wait_live(&server, &key("live", "src"), 2).await;
    let port = free_port();
    let dst = format!("rtsp://127.0.0.1:{port}/live/copy");
    let dir = tempfile::tempdir().expect("temp dir");
    let received = dir.path().join("received.mp4");
    let mut receiver = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-rtsp_flags",
            "listen",
            "-i",
        ])
        .arg(&dst)
        .args(["-c", "copy", "-t", "4"])
        .arg(&received)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn receiver");
    let args = [
        ("schema", "rtsp"),
        ("vhost", "__defaultVhost__"),
        ("app", "live"),
        ("stream", "src"),
        ("dst_url", dst.as_str()),
        ("retry_count", "0"),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let pushed = loop {
        let pushed = api.call("addStreamPusherProxy", &args).await;
        if pushed["code"] == 0 {
            break pushed;
        }
        assert_eq!(
            pushed,
            json!({"code": -1, "msg": "connecting to the RTSP server: Connection refused (os error 111)"})
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "ffmpeg never listened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let push_key = pushed["data"]["key"].as_str().expect("key").to_owned();
    assert!(
        push_key.starts_with("rtsp/__defaultVhost__/live/src/"),
        "{push_key}"
    );
    // Listed as a session of the stream, an RTSP one, from the push's own connection.
    let sessions = api.call("getAllSession", &[]).await;
    let pushing: Vec<&Value> = sessions["data"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter(|s| s["peer_port"] == port)
        .collect();
    assert_eq!(pushing.len(), 1, "{sessions}");
    assert_eq!(pushing[0]["typeid"], "mediakit::RtspSession");
    let info = api.call("getProxyPusherInfo", &[("key", &push_key)]).await;
    assert_eq!(info["data"]["url"], dst, "{info}");

    let status = tokio::time::timeout(Duration::from_secs(20), receiver.wait())
        .await
        .expect("ffmpeg stops after 4 s")
        .expect("wait");
    assert!(status.success(), "{status}");
    let probe = ffprobe(received.to_str().expect("utf-8"), 0).await;
    let streams: Vec<(&str, &str)> = probe["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            (
                s["codec_type"].as_str().unwrap_or(""),
                s["codec_name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(streams, [("video", "h264"), ("audio", "aac")], "{probe}");
    let del = api
        .call("delStreamPusherProxy", &[("key", &push_key)])
        .await;
    assert_eq!(del["code"], 0, "{del}");
    publisher.kill().await.expect("kill");
}
