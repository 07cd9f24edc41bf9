//! The GB28181 RTP server (openRtpServer, closeRtpServer, listRtpServer, connectRtpServer, the
//! shared port, on_rtp_server_timeout) with a device stand-in: ffmpeg writes H.264 + AAC,
//! `tests/data/gb28181_device.py` repackages it into an MPEG-2 program stream as GB28181
//! cameras send it and sends it as RTP (payload type 96) over UDP, over TCP (RFC 4571) to us or
//! from a port we dial. Players: ffprobe over RTMP and RTSP. Hooks: a real axum backend.

use e2e::api::Api;
use e2e::backend::Backend;
use e2e::*;
use media::StreamKey;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

const SSRC: u32 = 0x0100_0001;

fn key(stream: &str) -> StreamKey {
    StreamKey::new("rtp", stream).expect("key")
}

fn device_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/gb28181_device.py")
}

/// 6 s of what a camera sends: H.264 (a keyframe a second, no B-frames) and AAC, as MPEG-TS
/// (ffmpeg's PS muxers take neither AAC nor G.711; the script makes the PS).
async fn camera_ts(dir: &Path) -> PathBuf {
    let path = dir.join("camera.ts");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100"])
        .args(["-t", "6", "-c:v", "libx264", "-g", "25", "-bf", "0"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mpegts"])
        .arg(&path);
    let out = output_within(&mut cmd, Duration::from_secs(60)).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// 6 s of G.711 A-law, 8 kHz mono, as raw bytes: the other audio GB28181 cameras send.
async fn camera_alaw(dir: &Path) -> PathBuf {
    let path = dir.join("camera.alaw");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i", "sine=frequency=800:sample_rate=8000"])
        .args(["-t", "6", "-ac", "1", "-c:a", "pcm_alaw", "-f", "alaw"])
        .arg(&path);
    let out = output_within(&mut cmd, Duration::from_secs(60)).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// The device sending `ts` to (or, for `tcp-listen`, waiting on) 127.0.0.1:`port`.
fn device(ts: &Path, mode: &str, port: u16, ssrc: u32, extra: &[&str]) -> Child {
    Command::new("python3")
        .arg(device_script())
        .arg("--ts")
        .arg(ts)
        .args(["--mode", mode, "--port", &port.to_string()])
        .args(["--ssrc", &ssrc.to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn python3")
}

async fn rtp_server(backend: &Backend, timeout: Duration) -> server::Server {
    let config = backend.config();
    start_server_with(move |o| {
        o.hooks = config;
        o.rtp_server.shared = Some("127.0.0.1:0".parse().expect("addr"));
        o.rtp_server.timeout = timeout;
    })
    .await
}

/// The codecs ffprobe reports for the stream over RTMP and over RTSP.
async fn probe_both(server: &server::Server, stream: &str) -> (Vec<String>, Vec<String>) {
    let rtmp = codecs(&ffprobe(&rtmp_url(server, &format!("rtp/{stream}")), 0).await);
    let rtsp = codecs(&ffprobe(&rtsp_url(server, &format!("rtp/{stream}")), 0).await);
    (rtmp, rtsp)
}

async fn wait_offline(api: &Api, stream: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let online = api
            .call(
                "isMediaOnline",
                &[
                    ("schema", "rtmp"),
                    ("vhost", "__defaultVhost__"),
                    ("app", "rtp"),
                    ("stream", stream),
                ],
            )
            .await;
        if online["online"] == json!(false) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rtp/{stream} still online: {online}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn port_of(answer: &Value) -> u16 {
    assert_eq!(answer["code"], 0, "{answer}");
    let port = answer["port"].as_u64().expect("port") as u16;
    assert_eq!(answer, &json!({"code": 0, "port": port}));
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_ps_plays_over_rtmp_and_rtsp_then_times_out() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let ts = camera_ts(dir.path()).await;
    let backend = Backend::start().await;
    let server = rtp_server(&backend, Duration::from_secs(2)).await;
    let api = Api::of(&server);

    let port = port_of(
        &api.call(
            "openRtpServer",
            &[
                ("port", "0"),
                ("stream_id", "cam1"),
                ("ssrc", &SSRC.to_string()),
            ],
        )
        .await,
    );
    assert!(
        (30000..=35000).contains(&port) && port.is_multiple_of(2),
        "{port}"
    );
    assert_eq!(
        api.call("listRtpServer", &[]).await,
        json!({"code": 0, "data": [{
            "vhost": "__defaultVhost__", "app": "rtp", "stream_id": "cam1", "port": port,
            "ssrc": SSRC, "tcp_mode": 0, "only_track": 0,
        }]})
    );
    assert_eq!(
        api.call("openRtpServer", &[("port", "0"), ("stream_id", "cam1")])
            .await,
        json!({"code": -300, "msg": "This stream already exists"})
    );
    assert_eq!(
        api.call("openRtpServer", &[("stream_id", "x")]).await,
        json!({"code": -300, "msg": "Required parameter missed: \"port\", \"stream_id\""})
    );

    // Junk datagrams between the packets must not harm the stream.
    let mut camera = device(&ts, "udp", port, SSRC, &["--loops", "4", "--garbage"]);
    wait_live(&server, &key("cam1"), 2).await;
    let (rtmp, rtsp) = probe_both(&server, "cam1").await;
    assert_eq!(rtmp, ["aac", "h264"]);
    assert_eq!(rtsp, ["aac", "h264"]);
    let media = api
        .call("getMediaList", &[("app", "rtp"), ("stream", "cam1")])
        .await;
    let entries = media["data"].as_array().expect("entries");
    assert!(!entries.is_empty(), "{media}");
    for entry in entries {
        assert_eq!(entry["originType"], 3, "{entry}");
        assert_eq!(entry["originTypeStr"], "rtp_push", "{entry}");
    }
    let published = backend.calls("on_publish");
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(
        (
            &published[0].body["app"],
            &published[0].body["stream"],
            &published[0].body["originType"],
            &published[0].body["ip"]
        ),
        (
            &json!("rtp"),
            &json!("cam1"),
            &json!(3),
            &json!("127.0.0.1")
        )
    );

    // The camera stops: after timeoutSec the hook fires with openRtpServer's arguments and the
    // port closes.
    camera.kill().await.expect("kill");
    let calls = backend
        .wait_for("on_rtp_server_timeout", 1, Duration::from_secs(10), |_| {
            true
        })
        .await;
    let mut body = calls[0].body.clone();
    assert!(body["hook_index"].is_u64(), "{body}");
    body.as_object_mut().expect("object").remove("hook_index");
    assert_eq!(
        body,
        json!({
            "local_port": port, "vhost": "__defaultVhost__", "app": "rtp", "stream_id": "cam1",
            "tcp_mode": 0, "re_use_port": false, "ssrc": SSRC, "mediaServerId": "test-server",
        })
    );
    wait_offline(&api, "cam1").await;
    assert_eq!(api.call("listRtpServer", &[]).await, json!({"code": 0}));
    std::net::UdpSocket::bind(("0.0.0.0", port)).expect("the port is free again");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_passive_ps_and_close() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let ts = camera_ts(dir.path()).await;
    let backend = Backend::start().await;
    let server = rtp_server(&backend, Duration::from_secs(15)).await;
    let api = Api::of(&server);
    let port = port_of(
        &api.call(
            "openRtpServer",
            &[
                ("port", "0"),
                ("stream_id", "cam2"),
                ("tcp_mode", "1"),
                ("re_use_port", "1"),
            ],
        )
        .await,
    );
    assert_eq!(
        api.call("listRtpServer", &[]).await["data"][0]["tcp_mode"],
        1
    );
    let mut camera = device(&ts, "tcp", port, SSRC, &["--loops", "4"]);
    wait_live(&server, &key("cam2"), 2).await;
    let (rtmp, rtsp) = probe_both(&server, "cam2").await;
    assert_eq!(rtmp, ["aac", "h264"]);
    assert_eq!(rtsp, ["aac", "h264"]);

    assert_eq!(
        api.call("closeRtpServer", &[("stream_id", "cam2")]).await,
        json!({"code": 0, "hit": 1})
    );
    assert_eq!(
        api.call("closeRtpServer", &[("stream_id", "cam2")]).await,
        json!({"code": 0, "hit": 0})
    );
    wait_offline(&api, "cam2").await;
    assert_eq!(api.call("listRtpServer", &[]).await, json!({"code": 0}));
    // Its connection was closed with it: the device stops with an error.
    let status = tokio::time::timeout(Duration::from_secs(10), camera.wait())
        .await
        .expect("the device's connection is closed")
        .expect("status");
    assert_eq!(status.code(), Some(1));
    // Closing does not fire the timeout hook.
    assert!(backend.calls("on_rtp_server_timeout").is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_port_names_streams_by_ssrc_and_the_ssrc_filter_drops_others() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let ts = camera_ts(dir.path()).await;
    let backend = Backend::start().await;
    let server = rtp_server(&backend, Duration::from_secs(15)).await;
    let api = Api::of(&server);

    // Nobody opened anything: the shared port makes the stream rtp/{SSRC as %08X}.
    let shared = server.rtp_proxy_addr.expect("shared port");
    // This one loses every 40th packet on the way: the frames it breaks are dropped, the
    // stream goes on and decodes.
    let _shared_camera = device(
        &ts,
        "udp",
        shared.port(),
        0x0A0B_0C0D,
        &["--loops", "4", "--drop-every", "40"],
    );
    wait_live(&server, &key("0A0B0C0D"), 2).await;
    let rtsp = codecs(&ffprobe(&rtsp_url(&server, "rtp/0A0B0C0D"), 0).await);
    assert_eq!(rtsp, ["aac", "h264"]);
    assert_eq!(
        decode_frames(&rtmp_url(&server, "rtp/0A0B0C0D"), 40).await,
        40
    );
    assert_eq!(api.call("listRtpServer", &[]).await, json!({"code": 0}));
    // Over TCP too.
    let _tcp_camera = device(&ts, "tcp", shared.port(), 7, &["--loops", "4"]);
    wait_live(&server, &key("00000007"), 2).await;

    // A port that only takes SSRC 5 (and only its video): a device sending SSRC 6 never
    // makes the stream.
    let port = port_of(
        &api.call(
            "openRtpServer",
            &[
                ("port", "0"),
                ("stream_id", "cam3"),
                ("ssrc", "5"),
                ("only_track", "2"),
            ],
        )
        .await,
    );
    let mut wrong = device(&ts, "udp", port, 6, &[]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!server.registry.is_live(&key("cam3")), "SSRC 6 was taken");
    wrong.kill().await.expect("kill");
    let _right = device(&ts, "udp", port, 5, &["--loops", "4"]);
    wait_live(&server, &key("cam3"), 1).await;
    let rtmp = codecs(&ffprobe(&rtmp_url(&server, "rtp/cam3"), 0).await);
    assert_eq!(rtmp, ["h264"], "only_track=2 keeps the video only");
    assert_eq!(
        api.call("listRtpServer", &[]).await["data"][0]["only_track"],
        2
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_active_dials_a_device_sending_h264_and_g711() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let ts = camera_ts(dir.path()).await;
    let alaw = camera_alaw(dir.path()).await;
    let alaw = alaw.to_str().expect("utf-8 path");
    let backend = Backend::start().await;
    let server = rtp_server(&backend, Duration::from_secs(15)).await;
    let api = Api::of(&server);
    assert_eq!(
        api.call(
            "connectRtpServer",
            &[
                ("stream_id", "nope"),
                ("dst_url", "127.0.0.1"),
                ("dst_port", "9")
            ]
        )
        .await,
        json!({"code": -1, "msg": "can not find the stream"})
    );
    port_of(
        &api.call("openRtpServer", &[("port", "0"), ("stream_id", "udp")])
            .await,
    );
    assert_eq!(
        api.call(
            "connectRtpServer",
            &[
                ("stream_id", "udp"),
                ("dst_url", "127.0.0.1"),
                ("dst_port", "9")
            ]
        )
        .await,
        json!({"code": -1, "msg": "Only support tcp active mode"})
    );

    port_of(
        &api.call(
            "openRtpServer",
            &[("port", "0"), ("stream_id", "cam4"), ("tcp_mode", "2")],
        )
        .await,
    );
    let device_port = free_port();
    let mut camera = device(
        &ts,
        "tcp-listen",
        device_port,
        SSRC,
        &["--loops", "4", "--alaw", alaw],
    );
    // Wait until it listens.
    let mut line = String::new();
    let stdout = camera.stdout.take().expect("stdout");
    tokio::io::AsyncBufReadExt::read_line(&mut tokio::io::BufReader::new(stdout), &mut line)
        .await
        .expect("read");
    assert_eq!(line.trim(), "listening");
    assert_eq!(
        api.call(
            "connectRtpServer",
            &[
                ("stream_id", "cam4"),
                ("dst_url", "127.0.0.1"),
                ("dst_port", &device_port.to_string())
            ]
        )
        .await,
        json!({"code": 0})
    );
    wait_live(&server, &key("cam4"), 2).await;
    let (rtmp, rtsp) = probe_both(&server, "cam4").await;
    assert_eq!(rtmp, ["h264", "pcm_alaw"]);
    assert_eq!(rtsp, ["h264", "pcm_alaw"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_server_config_moves_the_shared_port_and_sets_the_timeout() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let ts = camera_ts(dir.path()).await;
    let backend = Backend::start().await;
    let server = rtp_server(&backend, Duration::from_secs(15)).await;
    let api = Api::of(&server);

    // The shared port moves and the timeout goes from 15 s to 1 s, in one change.
    let old = server.rtp.shared_addr().expect("shared");
    let new_port = free_port();
    let set = api
        .call(
            "setServerConfig",
            &[
                ("rtp_proxy.port", &new_port.to_string()),
                ("rtp_proxy.timeoutSec", "1"),
            ],
        )
        .await;
    assert_eq!(set, json!({"code": 0, "changed": 2}));
    // The change is applied by the server's applier task, after the answer.
    let moved = Some(std::net::SocketAddr::new(old.ip(), new_port));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.rtp.shared_addr() != moved {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the shared port is still {:?}",
            server.rtp.shared_addr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::net::UdpSocket::bind(old).expect("the old shared port is free");
    let _camera = device(&ts, "udp", new_port, 0x0C0F_FEE0, &["--loops", "4"]);
    wait_live(&server, &key("0C0FFEE0"), 2).await;

    // A port opened from now on that gets nothing times out within the new second.
    let opened = tokio::time::Instant::now();
    let port = port_of(
        &api.call("openRtpServer", &[("port", "0"), ("stream_id", "cam5")])
            .await,
    );
    let calls = backend
        .wait_for("on_rtp_server_timeout", 1, Duration::from_secs(5), |_| true)
        .await;
    assert!(
        opened.elapsed() < Duration::from_secs(4),
        "{:?}",
        opened.elapsed()
    );
    assert_eq!(calls[0].body["local_port"], port);
    assert_eq!(calls[0].body["stream_id"], "cam5");
    server.shutdown().await;
}
