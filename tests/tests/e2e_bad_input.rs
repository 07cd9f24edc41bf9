//! Garbage, truncated handshakes and silent clients close their own session and nothing else.

use e2e::*;
use media::StreamKey;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection; panics if it stays open past `limit`.
async fn expect_closed(mut sock: TcpStream, limit: Duration) {
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(limit, async {
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "server kept a bad session open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_silence_are_survived() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server_with(|o| o.rtmp.handshake_timeout = Duration::from_secs(1)).await;
    let addr = server.rtmp_addr.expect("rtmp");
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/ok"), &["-stream_loop", "-1"]);
    let key = StreamKey::new("live", "ok").expect("key");
    wait_live(&server, &key, 2).await;

    // Not RTMP at all (an HTTP request).
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    expect_closed(s, Duration::from_secs(5)).await;

    // A valid C0+C1, then garbage chunks with an absurd message length.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0u8; 1536]);
    s.write_all(&c0c1).await.expect("write");
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    s.read_exact(&mut s0s1s2).await.expect("S0S1S2");
    s.write_all(&s0s1s2[1..1537]).await.expect("C2");
    // fmt 0, csid 3, timestamp 0, length 0xFFFFFF, type 20, stream 0, then junk.
    s.write_all(&[0x03, 0, 0, 0, 0xff, 0xff, 0xff, 0x14, 0, 0, 0, 0])
        .await
        .expect("write");
    s.write_all(&[0xAB; 8192]).await.expect("write");
    expect_closed(s, Duration::from_secs(5)).await;

    // Random bytes.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let junk: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = s.write_all(&junk).await;
    expect_closed(s, Duration::from_secs(5)).await;

    // A client that connects and says nothing is closed after the handshake timeout.
    let s = TcpStream::connect(addr).await.expect("connect");
    expect_closed(s, Duration::from_secs(5)).await;

    // A truncated handshake: half a C1, then silence.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(&c0c1[..700]).await.expect("write");
    expect_closed(s, Duration::from_secs(5)).await;

    // The real stream never noticed.
    assert!(server.registry.is_live(&key));
    assert!(decode_frames(&rtmp_url(&server, "live/ok"), 10).await >= 10);
    assert!(decode_frames(&http_url(&server, "live/ok.live.flv"), 10).await >= 10);
    server.shutdown().await;
}
