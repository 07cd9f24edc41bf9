//! Viewers that stop reading are cut off after the write timeout, and the stream goes on for
//! everybody else. (Their backlog costs no memory meanwhile: the registry's ring is shared and
//! bounded, and nothing is queued per viewer.)

mod common;

use common::client::RtmpClient;
use common::*;
use media::StreamKey;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A connection whose receive window is tiny, so the server's writes stall as soon as the
/// test stops reading.
async fn small_window(addr: std::net::SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    socket.connect(addr).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_viewers_are_dropped_and_others_play_on() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server_with(|o| o.write_timeout = Duration::from_secs(2)).await;
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/slow"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "slow"), 2).await;

    // A second stream at about 10 MB/s, so stalled viewers fill every kernel buffer in well
    // under a second: 64 KiB H.264 frames (their content is never decoded) every 5 ms.
    let rtmp = server.rtmp_addr.expect("rtmp");
    let mut heavy = RtmpClient::connect(rtmp, "live").await;
    heavy.publish("heavy").await;
    let pump = tokio::spawn(async move {
        let mut header = vec![0x17, 0x00, 0, 0, 0];
        header.extend_from_slice(&[1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]);
        heavy.send_tag(9, 0, &bytes::Bytes::from(header)).await;
        let mut frame = vec![0u8; 64 * 1024];
        for i in 0u32.. {
            frame[0] = if i % 25 == 0 { 0x17 } else { 0x27 };
            frame[1] = 0x01;
            heavy
                .send_tag(9, i * 5, &bytes::Bytes::copy_from_slice(&frame))
                .await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let key = StreamKey::new("live", "heavy");
    wait_live(&server, &key, 1).await;

    // An HTTP-FLV viewer that reads the response head and then nothing.
    let http = server.http_addr.expect("http");
    let mut flv = small_window(http).await;
    flv.write_all(b"GET /live/heavy.live.flv HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut head = [0u8; 64];
    let n = flv.read(&mut head).await.expect("response");
    assert!(head[..n].starts_with(b"HTTP/1.1 200"));

    // An RTMP viewer that starts playing and then reads nothing.
    let mut player = RtmpClient::over(small_window(rtmp).await, rtmp, "live").await;
    player.play("heavy").await;

    // Both are readers until their writes have stalled for the timeout…
    let readers = || server.registry.stream(&key).map_or(0, |s| s.readers);
    assert_eq!(readers(), 2);
    // …meanwhile a real player decodes the stream as if nothing happened…
    assert!(decode_frames(&http_url(&server, "live/slow.live.flv"), 25).await >= 25);
    // …and then both are dropped.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while readers() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stalled viewers still attached: {}",
            readers()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The server closed the HTTP-FLV connection: what the kernel buffered drains, then EOF.
    let mut buf = vec![0u8; 64 * 1024];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match flv.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "stalled HTTP-FLV connection left open");
    drop(player);
    assert!(server.registry.is_live(&key), "the stream went on");
    pump.abort();
    server.shutdown().await;
}
