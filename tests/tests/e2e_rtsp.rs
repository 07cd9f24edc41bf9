//! RTSP with real clients: ffmpeg publishes over RTMP and ffprobe/ffmpeg play over RTSP (TCP
//! and UDP); ffmpeg publishes over RTSP (TCP and UDP) and players read it over RTMP, HTTP-FLV and
//! RTSP; Digest and Basic credentials through a real hook backend; malformed requests.

use e2e::backend::{Backend, Reply};
use e2e::*;
use md5::Digest as _;
use media::StreamKey;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// ffprobe of an RTSP URL over `transport` (`tcp` or `udp`): the codec names.
async fn rtsp_codecs(url: &str, transport: &str) -> Vec<String> {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-of", "json", "-show_streams"])
        .args(["-rtsp_transport", transport])
        .arg(url);
    let out = output_within(&mut cmd, Duration::from_secs(30)).await;
    assert!(
        out.status.success(),
        "ffprobe {url} ({transport}) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    codecs(&serde_json::from_slice(&out.stdout).expect("ffprobe json"))
}

/// Video frames ffmpeg decodes from an RTSP URL over `transport`, up to `frames`; and its log.
async fn rtsp_decode(url: &str, transport: &str, frames: usize) -> (usize, String) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-nostats",
        "-rtsp_transport",
        transport,
        "-i",
        url,
    ])
    .args([
        "-map",
        "0:v:0",
        "-map",
        "0:a:0",
        "-frames:v",
        &frames.to_string(),
    ])
    .args(["-f", "null", "-", "-progress", "pipe:1"]);
    let out = output_within(&mut cmd, Duration::from_secs(40)).await;
    let decoded = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|n| n.trim().parse().ok())
        .max()
        .unwrap_or(0);
    (decoded, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// ffmpeg publishing the looped sample to `url` over RTSP with `transport`.
fn ffmpeg_publish_rtsp(url: &str, transport: &str) -> tokio::process::Child {
    Command::new("ffmpeg")
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
        .args([
            "-c",
            "copy",
            "-f",
            "rtsp",
            "-rtsp_transport",
            transport,
            url,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ffmpeg")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_publish_plays_over_rtsp_tcp_and_udp() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/obs"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "obs").expect("key"), 2).await;
    let url = rtsp_url(&server, "live/obs");
    for transport in ["tcp", "udp"] {
        assert_eq!(
            rtsp_codecs(&url, transport).await,
            ["aac", "h264"],
            "{transport}"
        );
        let (frames, log) = rtsp_decode(&url, transport, 50).await;
        assert!(frames >= 50, "{transport}: decoded {frames} frames\n{log}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsp_publish_plays_over_rtmp_flv_and_rtsp() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    for transport in ["tcp", "udp"] {
        let name = format!("cam_{transport}");
        let mut publisher =
            ffmpeg_publish_rtsp(&rtsp_url(&server, &format!("live/{name}")), transport);
        let key = StreamKey::new("live", &name).expect("key");
        wait_live(&server, &key, 2).await;
        let info = server.registry.stream(&key).expect("live");
        let video = info
            .tracks
            .iter()
            .find(|t| t.codec == media::Codec::H264)
            .expect("h264 track");
        assert_eq!((video.width, video.height), (320, 240));

        let rtmp = rtmp_url(&server, &format!("live/{name}"));
        assert_eq!(codecs(&ffprobe(&rtmp, 0).await), ["aac", "h264"]);
        assert!(decode_frames(&rtmp, 30).await >= 30, "{transport}: RTMP");
        let flv = http_url(&server, &format!("live/{name}.live.flv"));
        assert!(decode_frames(&flv, 30).await >= 30, "{transport}: HTTP-FLV");
        let (frames, log) =
            rtsp_decode(&rtsp_url(&server, &format!("live/{name}")), "tcp", 30).await;
        assert!(
            frames >= 30,
            "{transport}: RTSP replay decoded {frames}\n{log}"
        );
        let _ = publisher.kill().await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_and_basic_credentials_through_hooks() {
    if !have_ffmpeg() {
        return;
    }
    let backend = Backend::start().await;
    backend.reply(
        "on_rtsp_realm",
        Reply::Json(json!({"code": 0, "realm": "cams"})),
    );
    backend.reply(
        "on_rtsp_auth",
        Reply::Json(json!({"code": 0, "encrypted": false, "passwd": "s3cret"})),
    );
    let server = start_server_with(|o| o.hooks = backend.config()).await;
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/secure"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "secure").expect("key"), 2).await;
    let addr = server.rtsp_addr.expect("rtsp");

    let good = format!("rtsp://alice:s3cret@{addr}/live/secure");
    assert_eq!(rtsp_codecs(&good, "tcp").await, ["aac", "h264"]);
    let auth = backend
        .wait_for("on_rtsp_auth", 1, Duration::from_secs(5), |_| true)
        .await;
    assert_eq!(auth[0].body["user_name"], "alice");
    assert_eq!(auth[0].body["realm"], "cams");
    assert!(backend.calls("on_play").is_empty(), "a realm skips on_play");

    for url in [
        format!("rtsp://alice:wrong@{addr}/live/secure"),
        format!("rtsp://{addr}/live/secure"),
    ] {
        let mut cmd = Command::new("ffprobe");
        cmd.args(["-v", "error", "-rtsp_transport", "tcp", &url]);
        let out = output_within(&mut cmd, Duration::from_secs(30)).await;
        assert!(!out.status.success(), "{url} must be refused");
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(log.contains("401"), "{url}: {log}");
    }

    // The backend's password as md5(user:realm:password) (`encrypted: true`).
    let ha1 = format!("{:x}", md5::Md5::digest(b"alice:cams:s3cret"));
    backend.reply(
        "on_rtsp_auth",
        Reply::Json(json!({"code": 0, "encrypted": true, "passwd": ha1})),
    );
    assert_eq!(rtsp_codecs(&good, "tcp").await, ["aac", "h264"]);
    server.shutdown().await;

    // Basic, with rtsp.authBasic=1.
    let server = start_server_with(|o| {
        o.hooks = backend.config();
        o.rtsp.auth_basic = true;
    })
    .await;
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/secure"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "secure").expect("key"), 2).await;
    let addr = server.rtsp_addr.expect("rtsp");
    let good = format!("rtsp://alice:s3cret@{addr}/live/secure");
    assert_eq!(rtsp_codecs(&good, "tcp").await, ["aac", "h264"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_400_and_others_go_on() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/ok"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "ok").expect("key"), 2).await;
    let addr = server.rtsp_addr.expect("rtsp");
    for garbage in [
        &b"\x00\x01\x02garbage\r\n\r\n"[..],
        b"DESCRIBE\r\n\r\n",
        b"OPTIONS rtsp://x/ RTSP/1.0\r\nContent-Length: 99999999\r\nCSeq: 1\r\n\r\n",
    ] {
        let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
        socket.write_all(garbage).await.expect("write");
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer))
            .await
            .expect("the server closes the session");
        assert!(read.is_ok());
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("RTSP/1.0 400"), "{text:?}");
    }
    // A request without CSeq is answered 400, the session stays.
    let url = rtsp_url(&server, "live/ok");
    assert_eq!(rtsp_codecs(&url, "tcp").await, ["aac", "h264"]);
    server.shutdown().await;
}

/// A raw RTSP client: writes requests, reads responses, counts the interleaved frames between.
struct RawRtsp {
    socket: tokio::net::TcpStream,
    buf: Vec<u8>,
    interleaved: usize,
}

impl RawRtsp {
    async fn connect(addr: std::net::SocketAddr) -> RawRtsp {
        let socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
        RawRtsp {
            socket,
            buf: Vec::new(),
            interleaved: 0,
        }
    }

    /// Sends `method url` with `headers` and returns (status, head, body).
    async fn request(
        &mut self,
        method: &str,
        url: &str,
        cseq: u32,
        headers: &str,
    ) -> (u16, String, String) {
        let req = format!("{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\n{headers}\r\n");
        self.socket.write_all(req.as_bytes()).await.expect("write");
        self.response().await
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), self.socket.read(&mut chunk))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "connection closed");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    async fn response(&mut self) -> (u16, String, String) {
        loop {
            if self.buf.first() == Some(&b'$') {
                if self.buf.len() < 4 {
                    self.fill().await;
                    continue;
                }
                let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                if self.buf.len() < 4 + len {
                    self.fill().await;
                    continue;
                }
                self.buf.drain(..4 + len);
                self.interleaved += 1;
                continue;
            }
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let head = text[..end].to_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + length {
                    let body =
                        String::from_utf8_lossy(&self.buf[end + 4..end + 4 + length]).into_owned();
                    self.buf.drain(..end + 4 + length);
                    let status = head
                        .split_whitespace()
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .expect("status");
                    return (status, head, body);
                }
            }
            self.fill().await;
        }
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_sessions_and_rtp_info() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/raw"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "raw").expect("key"), 2).await;
    let addr = server.rtsp_addr.expect("rtsp");
    let url = format!("rtsp://{addr}/live/raw");
    let mut c = RawRtsp::connect(addr).await;

    let (status, head, _) = c.request("OPTIONS", &url, 1, "").await;
    assert_eq!(status, 200);
    assert_eq!(header(&head, "CSeq"), Some("1"));
    let public = header(&head, "Public").expect("Public");
    for m in [
        "DESCRIBE",
        "ANNOUNCE",
        "SETUP",
        "PLAY",
        "RECORD",
        "PAUSE",
        "TEARDOWN",
        "GET_PARAMETER",
    ] {
        assert!(public.contains(m), "{public}");
    }
    assert_eq!(
        c.request("PLAY", &url, 2, "").await.0,
        455,
        "PLAY before SETUP"
    );

    let (status, head, sdp) = c
        .request("DESCRIBE", &url, 3, "Accept: application/sdp\r\n")
        .await;
    assert_eq!(status, 200);
    assert_eq!(header(&head, "Content-Type"), Some("application/sdp"));
    assert!(header(&head, "Content-Base").is_some_and(|b| b.ends_with("/live/raw/")));
    assert!(sdp.contains("m=video") && sdp.contains("m=audio"), "{sdp}");
    assert!(
        sdp.contains("a=control:trackID=0") && sdp.contains("H264/90000"),
        "{sdp}"
    );

    let (status, head, _) = c
        .request(
            "SETUP",
            &format!("{url}/trackID=0"),
            4,
            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
        )
        .await;
    assert_eq!(status, 200);
    let session = header(&head, "Session").expect("Session");
    let (id, timeout) = session.split_once(';').expect("timeout");
    assert!(timeout.starts_with("timeout="), "{session}");
    assert!(header(&head, "Transport").is_some_and(|t| t.contains("interleaved=0-1")));

    let wrong = c.request("PLAY", &url, 5, "Session: nope\r\n").await.0;
    assert_eq!(wrong, 454, "an unknown session");
    let (status, head, _) = c
        .request("PLAY", &url, 6, &format!("Session: {id}\r\n"))
        .await;
    assert_eq!(status, 200);
    let rtp_info = header(&head, "RTP-Info").expect("RTP-Info");
    assert!(
        rtp_info.contains("trackID=0;seq=") && rtp_info.contains("rtptime="),
        "{rtp_info}"
    );
    // Keep-alives are answered, and RTP comes interleaved between the answers. The first RTP may
    // come after the first answer: the server takes the request and the stream's packets in
    // whichever order they are ready, and this DESCRIBE made the stream's RTSP output, whose
    // cache may still be empty. So ask again until RTP has come, within a deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut cseq = 7;
    loop {
        let (status, _, _) = c
            .request("GET_PARAMETER", &url, cseq, &format!("Session: {id}\r\n"))
            .await;
        assert_eq!(status, 200);
        cseq += 1;
        if c.interleaved > 0 || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(c.interleaved > 0, "RTP arrived interleaved after PLAY");
    assert_eq!(
        c.request("PAUSE", &url, cseq, &format!("Session: {id}\r\n"))
            .await
            .0,
        200
    );
    assert_eq!(
        c.request("TEARDOWN", &url, cseq + 1, &format!("Session: {id}\r\n"))
            .await
            .0,
        200
    );
    server.shutdown().await;
}
