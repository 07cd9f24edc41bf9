//! Pushing a live stream to an RTSP server (ffmpeg 5.1 listening, `-rtsp_flags listen`):
//! ANNOUNCE/SETUP/RECORD of the stream's shared RTP, over TCP and UDP, the file ffmpeg writes
//! probed with ffprobe; the push is a session of the stream (listed, kickable) and ends with
//! the stream.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{camera, context, free_port, have_camera, have_ffmpeg, ingest, tracks};
use media::StreamKey;
use proxy::testing::{pull_rtsp, push_rtsp};
use proxy::{AttemptOptions, Context, ProxyError, RtpTransport, Started};
use registry::{Protocol, Role};
use tokio::process::{Child, Command};
use url::Url;

/// ffmpeg listening on `port` for an RTSP publisher, copying what it gets into `out`
/// (`-t secs` of it, or until the publisher leaves).
fn listener(port: u16, out: &Path, transport: &str, secs: Option<u32>) -> Child {
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-rtsp_flags",
        "listen",
    ])
    .args(["-rtsp_transport", transport])
    .arg("-i")
    .arg(format!("rtsp://127.0.0.1:{port}/live/x"))
    .args(["-c", "copy"]);
    if let Some(secs) = secs {
        cmd.args(["-t", &secs.to_string()]);
    }
    cmd.arg("-y")
        .arg(out)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ffmpeg")
}

/// Starts a push attempt to `port`, again while ffmpeg is not listening yet (as the manager
/// retries); returns the running attempt once RECORD was answered.
async fn push_when_listening(
    ctx: &Context,
    key: &StreamKey,
    port: u16,
    transport: RtpTransport,
) -> tokio::task::JoinHandle<Result<(), ProxyError>> {
    let url = Url::parse(&format!("rtsp://127.0.0.1:{port}/live/x")).expect("url");
    let opts = AttemptOptions {
        timeout: Duration::from_secs(5),
        rtp_transport: transport,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (mut started, rx) = Started::new();
        let (ctx, key, url, opts) = (ctx.clone(), key.clone(), url.clone(), opts.clone());
        let push = tokio::spawn(async move {
            let status = proxy::Status::default();
            push_rtsp(&url, &opts, &ctx, &key, &mut started, &status).await
        });
        if tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .is_ok_and(|r| r.is_ok())
        {
            return push;
        }
        let end = push.await.expect("no panic");
        assert!(
            matches!(end, Err(ProxyError::Io { .. })),
            "only a refused connect may come before RECORD: {end:?}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "ffmpeg never listened"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The codecs ffprobe finds in `file`, in stream order, and its duration.
async fn probe(file: &Path) -> (Vec<(String, String)>, f64) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name:format=duration",
        ])
        .args(["-of", "json"])
        .arg(file)
        .output()
        .await
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let streams = json["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            (
                s["codec_type"].as_str().unwrap_or("").to_owned(),
                s["codec_name"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let duration = json["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    (streams, duration)
}

/// The camera pulled into `live/cam` over TCP: a live H.264 + AAC stream to push.
async fn source(
    ctx: &Context,
) -> (
    tokio::process::Child,
    StreamKey,
    tokio::task::JoinHandle<Result<(), ProxyError>>,
) {
    let port = free_port();
    let camera = camera(port, &[]).await;
    let url = Url::parse(&format!("rtsp://127.0.0.1:{port}/live/cam")).expect("url");
    let mut ingest = ingest(ctx, "cam", url.as_str());
    let key = ingest.key().clone();
    let opts = AttemptOptions::default();
    let pull = tokio::spawn(async move { pull_rtsp(&url, &opts, &mut ingest).await });
    tracks(&ctx.registry, &key).await;
    (camera, key, pull)
}

async fn pushes_h264_aac(transport: RtpTransport, ffmpeg_transport: &str) {
    if !have_camera() || !have_ffmpeg() {
        return;
    }
    let ctx = context();
    let (_camera, key, _pull) = source(&ctx).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("out.mp4");
    let port = free_port();
    let mut ffmpeg = listener(port, &file, ffmpeg_transport, Some(4));
    let push = push_when_listening(&ctx, &key, port, transport).await;
    // The push is a session of the stream, as an RTSP viewer is.
    let sessions = ctx.registry.sessions();
    let pushing: Vec<_> = sessions
        .iter()
        .filter(|s| s.role == Role::Viewer && s.key == key)
        .collect();
    assert_eq!(pushing.len(), 1, "{sessions:?}");
    assert_eq!(pushing[0].info.protocol, Protocol::Rtsp);
    assert_eq!(pushing[0].info.peer.port(), port);
    let status = tokio::time::timeout(Duration::from_secs(20), ffmpeg.wait())
        .await
        .expect("ffmpeg stops after 4 s of media")
        .expect("wait");
    assert!(status.success(), "ffmpeg: {status}");
    // ffmpeg left: the push ends with an error the manager retries.
    let end = tokio::time::timeout(Duration::from_secs(10), push)
        .await
        .expect("the push sees the server go")
        .expect("no panic");
    let end = end.expect_err("a push ends with why");
    assert!(end.retryable(), "{end:?}");
    let bytes = sessions_bytes(&ctx, &key);
    assert_eq!(bytes, None, "the push's session is gone with it");
    let (streams, duration) = probe(&file).await;
    assert_eq!(
        streams,
        [
            ("video".to_owned(), "h264".to_owned()),
            ("audio".to_owned(), "aac".to_owned())
        ]
    );
    assert!((3.5..=4.5).contains(&duration), "{duration} s");
}

fn sessions_bytes(ctx: &Context, key: &StreamKey) -> Option<u64> {
    ctx.registry
        .sessions()
        .into_iter()
        .find(|s| s.role == Role::Viewer && &s.key == key)
        .map(|s| s.bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_over_tcp_to_ffmpeg() {
    pushes_h264_aac(RtpTransport::Tcp, "tcp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_over_udp_to_ffmpeg() {
    pushes_h264_aac(RtpTransport::Udp, "udp").await;
}

/// Kicking the push's session ends it for good; closing the stream ends it as the stream's
/// end, and ffmpeg gets a TEARDOWN (it exits and its file holds both tracks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_or_the_stream_end_stops_the_push() {
    if !have_camera() || !have_ffmpeg() {
        return;
    }
    let ctx = context();
    let (_camera, key, _pull) = source(&ctx).await;
    let dir = tempfile::tempdir().expect("tempdir");

    let port = free_port();
    let _kicked_ffmpeg = listener(port, &dir.path().join("kicked.mp4"), "tcp", None);
    let push = push_when_listening(&ctx, &key, port, RtpTransport::Tcp).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let session = ctx
        .registry
        .sessions()
        .into_iter()
        .find(|s| s.role == Role::Viewer && s.key == key)
        .expect("listed");
    assert!(
        session.bytes > 10_000,
        "{} bytes pushed in 1 s",
        session.bytes
    );
    assert!(ctx.registry.kick(session.info.id));
    let end = tokio::time::timeout(Duration::from_secs(5), push)
        .await
        .expect("kicked")
        .expect("no panic");
    assert!(matches!(end, Err(ProxyError::Closed)), "{end:?}");
    assert!(!ProxyError::Closed.retryable());

    let port = free_port();
    let file = dir.path().join("ended.mp4");
    let mut ffmpeg = listener(port, &file, "tcp", None);
    let push = push_when_listening(&ctx, &key, port, RtpTransport::Tcp).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(ctx.registry.close(&key));
    let end = tokio::time::timeout(Duration::from_secs(5), push)
        .await
        .expect("ended")
        .expect("no panic");
    assert!(matches!(end, Err(ProxyError::Ended)), "{end:?}");
    let status = tokio::time::timeout(Duration::from_secs(10), ffmpeg.wait())
        .await
        .expect("ffmpeg leaves on TEARDOWN")
        .expect("wait");
    assert!(status.success(), "ffmpeg: {status}");
    let (streams, duration) = probe(&file).await;
    assert_eq!(
        streams,
        [
            ("video".to_owned(), "h264".to_owned()),
            ("audio".to_owned(), "aac".to_owned())
        ]
    );
    assert!(duration > 1.0, "{duration} s");
}
