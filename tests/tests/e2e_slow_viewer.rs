//! Viewers that stop reading (RTMP, HTTP-FLV, RTSP over TCP) are cut off after the write
//! timeout, and the stream goes on for everybody else. (Their backlog costs no memory meanwhile:
//! the rings are shared and bounded, and nothing is queued per viewer.)

use e2e::client::RtmpClient;
use e2e::*;
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
    wait_live(&server, &StreamKey::new("live", "slow").expect("key"), 2).await;

    // A second stream at about 10 MB/s, so stalled viewers fill every kernel buffer in well
    // under a second: 64 KiB H.264 frames (their content is never decoded) every 5 ms.
    let rtmp = server.rtmp_addr.expect("rtmp");
    let mut heavy = RtmpClient::connect(rtmp, "live").await;
    heavy.publish("heavy").await;
    // The sample's real AVC sequence header (RTSP needs SPS/PPS for its SDP), then frames of one
    // 64 KiB NAL unit each.
    let sample = bytes::Bytes::from(std::fs::read(sample_flv()).expect("sample"));
    let header = rtmp::flv::FlvReader::new(sample)
        .expect("flv")
        .filter_map(Result::ok)
        .find(|t| t.tag_type == 9)
        .expect("a video sequence header")
        .body;
    let pump = tokio::spawn(async move {
        heavy.send_tag(9, 0, &header).await;
        let mut frame = vec![0u8; 64 * 1024];
        let nal_len = (frame.len() - 9) as u32;
        frame[5..9].copy_from_slice(&nal_len.to_be_bytes());
        for i in 0u32.. {
            let key = i % 25 == 0;
            frame[0] = if key { 0x17 } else { 0x27 };
            frame[1] = 0x01;
            frame[9] = if key { 0x65 } else { 0x41 };
            heavy
                .send_tag(9, i * 5, &bytes::Bytes::copy_from_slice(&frame))
                .await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let key = StreamKey::new("live", "heavy").expect("key");
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

    // An RTSP viewer (TCP interleaved) that starts playing and then reads nothing.
    let rtsp = server.rtsp_addr.expect("rtsp");
    let mut rtsp_viewer = small_window(rtsp).await;
    let url = format!("rtsp://{rtsp}/live/heavy");
    for (cseq, request) in [
        format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
        format!("SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"),
    ]
    .into_iter()
    .enumerate()
    {
        rtsp_viewer.write_all(request.as_bytes()).await.expect("request");
        let mut answer = vec![0u8; 4096];
        let n = rtsp_viewer.read(&mut answer).await.expect("answer");
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with("RTSP/1.0 200"), "request {cseq}: {text}");
    }
    rtsp_viewer
        .write_all(format!("PLAY {url} RTSP/1.0\r\nCSeq: 3\r\n\r\n").as_bytes())
        .await
        .expect("PLAY");

    // All are readers until their writes have stalled for the timeout…
    let readers = || server.registry.stream(&key).map_or(0, |s| s.readers);
    assert_eq!(readers(), 3);
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
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rtsp_viewer.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "stalled RTSP connection left open");
    drop(player);
    assert!(server.registry.is_live(&key), "the stream went on");
    pump.abort();
    server.shutdown().await;
}
