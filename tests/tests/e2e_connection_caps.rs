//! Connection caps: a client holding the process-wide, a listener's or its address's cap with
//! sockets that never finish their handshake cannot lock real viewers out, and past the cap of
//! established connections a new one is closed at once.

use e2e::client::RtmpClient;
use e2e::*;
use media::StreamKey;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

/// A connection from `from` (another loopback address) to `to`.
async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((from, 0)))
        .expect("bind the source address");
    socket.connect(to).await.expect("connect")
}

/// Whether the server closed `s` within `limit` (EOF or reset).
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(limit, s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// How many of `sockets` the server has closed within `limit`.
async fn count_closed(sockets: &mut [TcpStream], limit: Duration) -> usize {
    let mut n = 0;
    for s in sockets.iter_mut() {
        if closed_within(s, limit).await {
            n += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_at_the_process_cap_make_room_for_viewers() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server_with(|o| {
        o.limits.max_total = 40;
        o.rtmp.handshake_timeout = Duration::from_secs(60);
    })
    .await;
    let rtmp = server.rtmp_addr.expect("rtmp");
    let http = server.http_addr.expect("http");
    // The attacker holds the whole cap with sockets that never speak, on two listeners.
    let mut attacker = Vec::new();
    for i in 0..40 {
        let to = if i % 2 == 0 { rtmp } else { http };
        attacker.push(TcpStream::connect(to).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A publisher and two players still get in (each makes room by closing an attacker's
    // oldest socket), and play.
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/cap"), &["-stream_loop", "-1"]);
    let key = StreamKey::new("live", "cap").expect("key");
    wait_live(&server, &key, 2).await;
    assert!(decode_frames(&rtmp_url(&server, "live/cap"), 10).await >= 10);
    assert!(decode_frames(&http_url(&server, "live/cap.live.flv"), 10).await >= 10);
    // One attacker socket was closed for each newcomer that found the cap full: the publisher
    // and the RTMP player, and the HTTP-FLV player unless the RTMP player's slot was already
    // free when it came. The others are still open.
    let closed = count_closed(&mut attacker, Duration::from_millis(50)).await;
    assert!(
        (2..=3).contains(&closed),
        "{closed} attacker sockets closed"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_cap_of_established_connections_a_new_one_is_closed() {
    let server = start_server_with(|o| o.limits.max_total = 3).await;
    let rtmp = server.rtmp_addr.expect("rtmp");
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(RtmpClient::connect(rtmp, "live").await);
    }
    let mut fourth = TcpStream::connect(rtmp).await.expect("the kernel accepts");
    assert!(
        closed_within(&mut fourth, Duration::from_secs(2)).await,
        "a fourth connection was kept"
    );
    // One leaves: there is room again.
    clients.pop().expect("client").close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _again = RtmpClient::connect(rtmp, "live").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_the_listener() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server_with(|o| {
        o.limits.max_per_ip = 5;
        o.limits.rtmp = 8;
        o.rtmp.handshake_timeout = Duration::from_secs(60);
    })
    .await;
    let rtmp = server.rtmp_addr.expect("rtmp");
    // 127.0.0.2 opens 10: five are closed at once (its address cap).
    let mut from_attacker = Vec::new();
    for _ in 0..10 {
        from_attacker.push(connect_from([127, 0, 0, 2], rtmp).await);
    }
    let refused = count_closed(&mut from_attacker, Duration::from_millis(300)).await;
    assert_eq!(refused, 5, "connections from one address beyond its cap");
    // 127.0.0.3 fills the rest of the RTMP listener's cap of 8 with three more.
    let mut second = Vec::new();
    for _ in 0..3 {
        second.push(connect_from([127, 0, 0, 3], rtmp).await);
    }
    // A publisher and a player from 127.0.0.1 still get in and play (the listener's cap makes
    // room by closing the oldest silent socket).
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/ip"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "ip").expect("key"), 2).await;
    assert!(decode_frames(&rtmp_url(&server, "live/ip"), 10).await >= 10);
    server.shutdown().await;
}
