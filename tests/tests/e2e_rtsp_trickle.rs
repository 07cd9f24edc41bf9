//! A client trickling a request one byte every 500 ms is closed with a 408 once the request
//! has taken `rtsp.handshakeSecond` from its first byte, and partial bytes never restart the
//! keep-alive timer; an ffmpeg viewer on the same server plays on meanwhile.

use e2e::raw_rtsp::RawRtsp;
use e2e::*;
use media::StreamKey;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const TIMEOUT_408: &[u8] = b"RTSP/1.0 408 Request Time-out\r\n\r\n";

/// Writes `request` one byte every 500 ms until the server closes the connection; returns the
/// time from the first byte to the close and every byte the server sent meanwhile. Panics if
/// the connection is still open after `limit`.
async fn trickle(socket: TcpStream, request: &[u8], limit: Duration) -> (Duration, Vec<u8>) {
    let (mut rx, mut tx) = socket.into_split();
    let started = Instant::now();
    let request = request.to_vec();
    let writer = tokio::spawn(async move {
        for byte in request {
            if tx.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let mut received = Vec::new();
    let read = tokio::time::timeout(limit, rx.read_to_end(&mut received)).await;
    let elapsed = started.elapsed();
    writer.abort();
    assert!(
        read.is_ok(),
        "a trickling client was still connected after {limit:?}, having received {:?}",
        String::from_utf8_lossy(&received)
    );
    (elapsed, received)
}

/// A request long enough to trickle for a minute.
fn slow_request(url: &str) -> Vec<u8> {
    format!(
        "OPTIONS {url} RTSP/1.0\r\nCSeq: 9\r\nUser-Agent: {}\r\n\r\n",
        "t".repeat(80)
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_request_times_out_after_handshake_second() {
    if !have_ffmpeg() {
        return;
    }
    // keepAliveSecond stays at its 15 s default: only the request timer can close them sooner.
    let server = start_server_with(|o| o.rtsp.handshake_timeout = Duration::from_secs(2)).await;
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/trickle"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "trickle").expect("key"), 2).await;
    let addr = server.rtsp_addr.expect("rtsp");
    let url = rtsp_url(&server, "live/trickle");
    let request = slow_request(&url);

    // A well-behaved viewer decodes 6 s of video (it is live: 150 frames at 25 fps) while the
    // tricklers below come and go.
    let viewer_url = url.clone();
    let viewer = tokio::spawn(async move { decode_frames(&viewer_url, 150).await });

    // Trickling after a complete request, which is answered.
    let mut second = RawRtsp::connect(addr).await;
    assert_eq!(second.request("OPTIONS", &url, 1, "").await.status, 200);
    let after_request = trickle(second.socket, &request, Duration::from_secs(10));
    // Trickling from the first byte of the connection.
    let first = TcpStream::connect(addr).await.expect("connect");
    let from_start = trickle(first, &request, Duration::from_secs(10));

    let ((a, a_bytes), (b, b_bytes)) = tokio::join!(from_start, after_request);
    eprintln!("trickling clients closed after {a:?} and {b:?}");
    for (elapsed, bytes) in [(a, a_bytes), (b, b_bytes)] {
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(TIMEOUT_408)
        );
        // Not before the request's time is up; the upper margin is for a loaded machine.
        assert!(
            elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(4),
            "closed after {elapsed:?}, handshakeSecond is 2 s"
        );
    }

    assert!(viewer.await.expect("viewer") >= 150, "the viewer played on");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_bytes_do_not_restart_the_keep_alive_timer() {
    // handshakeSecond (15 s) is longer than keepAliveSecond here: what closes the session is
    // the keep-alive timer, started by the last complete request.
    let server = start_server_with(|o| {
        o.rtsp.handshake_timeout = Duration::from_secs(15);
        o.rtsp.keep_alive = Duration::from_secs(2);
    })
    .await;
    let addr = server.rtsp_addr.expect("rtsp");
    let url = rtsp_url(&server, "live/none");
    let mut c = RawRtsp::connect(addr).await;
    let answered = Instant::now();
    assert_eq!(c.request("OPTIONS", &url, 1, "").await.status, 200);
    let (_, bytes) = trickle(c.socket, &slow_request(&url), Duration::from_secs(10)).await;
    let elapsed = answered.elapsed();
    eprintln!("closed {elapsed:?} after its last complete request");
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(TIMEOUT_408)
    );
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(4),
        "closed {elapsed:?} after the last request, keepAliveSecond is 2 s"
    );
    server.shutdown().await;
}
