//! Stream names are untrusted: names that would reach a file path outside the save
//! directories (`..` segments, absolute names, a `../..` app or vhost) are refused with each
//! protocol's own error, nothing is written outside `mp4_save_path` / `hls_save_path`, and a
//! name cannot forge a log line.

use e2e::client::RtmpClient;
use e2e::*;
use media::StreamKey;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The status line of a raw `GET {target}` (the target exactly as given, not normalised).
async fn raw_get(addr: std::net::SocketAddr, target: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    text.lines().next().unwrap_or_default().to_owned()
}

/// The status line answering an RTSP ANNOUNCE of `uri`.
async fn announce(addr: std::net::SocketAddr, uri: &str) -> String {
    let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\n\
               m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\n";
    let req = format!(
        "ANNOUNCE {uri} RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf[..n]);
    text.lines().next().unwrap_or_default().to_owned()
}

/// Every file and directory under `dir`, relative to it.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            out.push(
                path.strip_prefix(dir)
                    .expect("under dir")
                    .display()
                    .to_string(),
            );
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_climb_out_are_refused_everywhere() {
    if !have_ffmpeg() {
        return;
    }
    // The save directories sit two levels down, so a `../..` name would land in `top`.
    let top = tempfile::tempdir().expect("tempdir");
    let save = top.path().join("a").join("save");
    std::fs::create_dir_all(&save).expect("save dir");
    let server = start_server_with(|o| {
        o.enable_vhost = true;
        o.protocol.enable_mp4 = true;
        o.protocol.mp4_save_path = save.clone();
        o.protocol.hls_save_path = save.clone();
        o.hls.window = 0; // keep every segment: HLS goes to disk
    })
    .await;
    let rtmp = server.rtmp_addr.expect("rtmp");

    // RTMP publish: `..` in the stream, an absolute stream, a vhost of `../..`.
    for name in [
        "../../x",
        "a/../../../x",
        "/abs",
        "ok?vhost=../..",
        "nul\u{0}x",
    ] {
        let mut client = RtmpClient::connect(rtmp, "live").await;
        let refused = client.try_publish(name).await.expect_err(name);
        assert_eq!(
            refused.0, "NetStream.Publish.BadName",
            "{name}: {refused:?}"
        );
    }
    // An app of `../..`.
    let mut client = RtmpClient::connect(rtmp, "../..").await;
    let refused = client.try_publish("s").await.expect_err("app ../..");
    assert_eq!(refused.0, "NetStream.Publish.BadName", "{refused:?}");
    // RTMP play of such a name fails too, with a play error.
    let mut client = RtmpClient::connect(rtmp, "live").await;
    let refused = client.try_play("../x").await.expect_err("play ../x");
    assert_eq!(refused.0, "NetStream.Play.Failed", "{refused:?}");

    // RTSP ANNOUNCE and DESCRIBE of a climbing URI: 400.
    let rtsp = server.rtsp_addr.expect("rtsp");
    for uri in [
        format!("rtsp://{rtsp}/live/../../x"),
        format!("rtsp://{rtsp}/live/x?vhost=../.."),
        format!("rtsp://{rtsp}/../../x/y"),
    ] {
        assert_eq!(
            announce(rtsp, &uri).await,
            "RTSP/1.0 400 Bad Request",
            "{uri}"
        );
    }

    // HTTP: every output refuses such a path or vhost with 400.
    let http = server.http_addr.expect("http");
    for target in [
        "/live/../../x.live.flv",
        "/live/../../x.live.ts",
        "/live/../../x.live.mp4",
        "/live/../../x/hls.m3u8",
        "/live/../../x/hls.fmp4.m3u8",
        "/live/x.live.flv?vhost=../..",
        "/live/x/hls.m3u8?vhost=..",
    ] {
        assert_eq!(
            raw_get(http, target).await,
            "HTTP/1.1 400 Bad Request",
            "{target}"
        );
    }

    // A plain name still records and writes its HLS, under the save directory.
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/ok"), &["-stream_loop", "-1"]);
    let key = StreamKey::new("live", "ok").expect("key");
    wait_live(&server, &key, 2).await;
    assert_eq!(
        raw_get(http, "/live/ok/hls.m3u8").await,
        "HTTP/1.1 200 OK",
        "HLS of a plain name"
    );
    let mut written = Vec::new();
    for _ in 0..100 {
        written = tree(&save);
        // The segment first, then the playlist that lists it (written in the background).
        if written.iter().any(|p| p.ends_with(".mp4"))
            && written.iter().any(|p| p.ends_with("hls.m3u8"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        written
            .iter()
            .any(|p| p.starts_with("record/__defaultVhost__/live/ok/") && p.ends_with(".mp4")),
        "{written:?}"
    );
    assert!(
        written.contains(&"__defaultVhost__/live/ok/hls.m3u8".to_owned()),
        "{written:?}"
    );
    server.shutdown().await;
    // Nothing anywhere but under the save directory.
    assert_eq!(
        tree(top.path()),
        ["a", "a/save"]
            .iter()
            .map(|s| s.to_string())
            .chain(tree(&save).into_iter().map(|p| format!("a/save/{p}")))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_cannot_forge_a_log_line() {
    // The real binary, so its real log output is read.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    let mut child = tokio::process::Command::new(e2e::ferrostream_bin())
        .env("FERROSTREAM__RTMP__PORT", port.to_string())
        .env("FERROSTREAM__HTTP__PORT", "0")
        .env("FERROSTREAM__RTSP__PORT", "0")
        .env("FERROSTREAM__TURN__PORT", "0")
        .env("FERROSTREAM__RTC__PORT", "0")
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ferrostream");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut connected = None;
    for _ in 0..100 {
        if let Ok(s) = TcpStream::connect(addr).await {
            connected = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let socket = connected.expect("server listening");
    let forged = "FORGED 2026-01-01T00:00:00Z  INFO stream published";
    let mut client = RtmpClient::over(socket, addr, "live\nFORGED app").await;
    let refused = client
        .try_publish(&format!("x\n{forged}\r\x1b[2K"))
        .await
        .expect_err("refused");
    assert_eq!(refused.0, "NetStream.Publish.BadName");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = child.start_kill();
    let out = child.wait_with_output().await.expect("output");
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("refused"), "the refusal is logged: {log}");
    for line in log.lines() {
        assert!(!line.starts_with("FORGED"), "forged line: {line:?}\n{log}");
    }
    assert!(!log.contains('\x1b'), "an escape sequence reached the log");
}
