//! The RTP server at the crate level, on real sockets and a real registry: raw H.264 over RTP
//! (RFC 6184, payload type 98) sent over UDP and RFC 4571 TCP becomes a live stream; the SSRC
//! filter, garbage datagrams, close, list and the timeout with its hook.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use hooks::{Answer, Hook, HookClient, Hooks, RecordingHooks};
use media::{Codec, StreamKey};
use proxy::{
    Context, OnlyTrack, OpenRequest, RtpServerConfig, RtpServerError, RtpServers, TcpMode,
};
use registry::{Registry, RegistryConfig, StreamOptions};
use tokio::io::AsyncWriteExt;

const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
    0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60,
];
const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

fn avcc(nals: &[&[u8]]) -> Bytes {
    let mut b = BytesMut::new();
    for n in nals {
        b.put_u32(n.len() as u32);
        b.put_slice(n);
    }
    b.freeze()
}

/// `frames` frames of H.264 at 25 fps as RTP packets (a keyframe with SPS/PPS every 10).
fn h264_packets(ssrc: u32, frames: u32) -> Vec<Bytes> {
    let mut p = rtsp::h264::Packetizer::new(1400, 98, ssrc, 1000);
    let mut out = Vec::new();
    for i in 0..frames {
        let key = i.is_multiple_of(10);
        let mut body = vec![if key { 0x65 } else { 0x41 }, 0x88];
        body.extend((0..3000).map(|n| (n % 251) as u8));
        let au = if key {
            avcc(&[SPS, PPS, &body])
        } else {
            avcc(&[&body])
        };
        p.push(i * 3600, &au).expect("packetize");
        out.extend(std::iter::from_fn(|| p.pull()).map(|p| p.to_bytes()));
    }
    out
}

struct Fixture {
    registry: Registry,
    recording: Arc<RecordingHooks>,
    servers: RtpServers,
}

async fn fixture(timeout: Duration) -> Fixture {
    let registry = Registry::new(RegistryConfig::default());
    let recording = Arc::new(RecordingHooks::new());
    recording.answer(Hook::OnRtpServerTimeout, Answer::allow());
    let hooks = Hooks::from_client(Arc::clone(&recording) as Arc<dyn HookClient>);
    let outputs = outputs::Outputs::new(registry.clone(), outputs::OutputsConfig::default());
    let ctx = Context {
        registry: registry.clone(),
        hooks,
        outputs,
        protocol: Arc::new(StreamOptions::default),
    };
    let config = RtpServerConfig {
        shared: Some("127.0.0.1:0".parse().expect("addr")),
        bind_ip: "127.0.0.1".parse().expect("ip"),
        port_range: 40000..=40999,
        timeout,
        ..RtpServerConfig::default()
    };
    let servers = RtpServers::start(ctx, config).await.expect("start");
    Fixture {
        registry,
        recording,
        servers,
    }
}

fn request(stream: &str, tcp_mode: TcpMode, ssrc: u32) -> OpenRequest {
    OpenRequest {
        port: 0,
        key: StreamKey::new("rtp", stream).expect("key"),
        tcp_mode,
        re_use_port: false,
        ssrc,
        only_track: OnlyTrack::All,
    }
}

async fn wait_h264(registry: &Registry, key: &StreamKey) {
    for _ in 0..100 {
        if let Some(info) = registry.stream(key) {
            if info.tracks.iter().any(|t| t.codec == Codec::H264) && info.bytes_in > 0 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{key} never got H.264 frames: {:?}",
        registry.stream(key).map(|s| s.tracks)
    );
}

async fn wait_gone(registry: &Registry, key: &StreamKey) {
    for _ in 0..100 {
        if !registry.is_live(key) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{key} still live");
}

#[tokio::test]
async fn udp_h264_becomes_a_stream_and_close_ends_it() {
    let f = fixture(Duration::from_secs(10)).await;
    let port = f
        .servers
        .open(request("cam1", TcpMode::Udp, 0))
        .expect("open");
    assert!(
        (40000..=40999).contains(&port) && port.is_multiple_of(2),
        "{port}"
    );
    assert!(matches!(
        f.servers.open(request("cam1", TcpMode::Udp, 0)),
        Err(RtpServerError::Exists)
    ));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let to: SocketAddr = ([127, 0, 0, 1], port).into();
    // Garbage first and in between: neither binds the port nor harms the stream.
    socket.send_to(b"not rtp at all", to).await.expect("send");
    for (i, packet) in h264_packets(0x0100_0001, 30).into_iter().enumerate() {
        if i % 7 == 3 {
            socket
                .send_to(&[0x80, 98, 0, 1, 0xff], to)
                .await
                .expect("send");
        }
        socket.send_to(&packet, to).await.expect("send");
    }
    let key = StreamKey::new("rtp", "cam1").expect("key");
    wait_h264(&f.registry, &key).await;
    let list = f.servers.list();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].port, list[0].ssrc, list[0].tcp_mode),
        (port, 0, TcpMode::Udp)
    );
    assert_eq!(f.servers.close(&key), 1);
    assert_eq!(f.servers.close(&key), 0);
    wait_gone(&f.registry, &key).await;
    assert!(f.servers.list().is_empty());
    // The port is free again.
    std::net::UdpSocket::bind(("127.0.0.1", port)).expect("port released");
}

#[tokio::test]
async fn tcp_passive_rfc4571_and_the_ssrc_filter() {
    let f = fixture(Duration::from_secs(10)).await;
    let port = f
        .servers
        .open(request("cam2", TcpMode::Passive, 0x0200_0002))
        .expect("open");
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut bytes = BytesMut::new();
    // Another SSRC first: dropped by the filter, so it cannot make the stream.
    for packet in h264_packets(0x0300_0003, 12) {
        rtsp::rfc4571::write(&packet, &mut bytes).expect("fits");
    }
    tcp.write_all(&bytes).await.expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let key = StreamKey::new("rtp", "cam2").expect("key");
    assert!(
        !f.registry.is_live(&key),
        "another SSRC made the stream live"
    );
    bytes.clear();
    for packet in h264_packets(0x0200_0002, 30) {
        rtsp::rfc4571::write(&packet, &mut bytes).expect("fits");
    }
    tcp.write_all(&bytes).await.expect("write");
    wait_h264(&f.registry, &key).await;
    f.servers.shutdown();
    wait_gone(&f.registry, &key).await;
}

#[tokio::test]
async fn silence_fires_the_timeout_hook_and_closes_the_port() {
    let f = fixture(Duration::from_secs(1)).await;
    let port = f
        .servers
        .open(OpenRequest {
            re_use_port: true,
            ..request("cam3", TcpMode::Passive, 7)
        })
        .expect("open");
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    for packet in h264_packets(7, 12) {
        socket
            .send_to(&packet, ("127.0.0.1", port))
            .await
            .expect("send");
    }
    let key = StreamKey::new("rtp", "cam3").expect("key");
    wait_h264(&f.registry, &key).await;
    let bodies = f
        .recording
        .wait_for(Hook::OnRtpServerTimeout, 1, Duration::from_secs(5))
        .await;
    let serde_json::Value::Object(expected) = serde_json::json!({
        "local_port": port, "vhost": "__defaultVhost__", "app": "rtp", "stream_id": "cam3",
        "tcp_mode": 1, "re_use_port": true, "ssrc": 7,
    }) else {
        unreachable!()
    };
    assert_eq!(bodies, vec![expected]);
    wait_gone(&f.registry, &key).await;
    assert!(f.servers.list().is_empty());
}

#[tokio::test]
async fn the_shared_port_names_streams_by_ssrc() {
    let f = fixture(Duration::from_secs(10)).await;
    let shared = f.servers.shared_addr().expect("shared port on");
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    for packet in h264_packets(0x0A0B_0C0D, 12) {
        socket.send_to(&packet, shared).await.expect("send");
    }
    let mut tcp = tokio::net::TcpStream::connect(shared)
        .await
        .expect("connect");
    let mut bytes = BytesMut::new();
    for packet in h264_packets(0x1, 12) {
        rtsp::rfc4571::write(&packet, &mut bytes).expect("fits");
    }
    tcp.write_all(&bytes).await.expect("write");
    wait_h264(
        &f.registry,
        &StreamKey::new("rtp", "0A0B0C0D").expect("key"),
    )
    .await;
    wait_h264(
        &f.registry,
        &StreamKey::new("rtp", "00000001").expect("key"),
    )
    .await;
    // No openRtpServer was called: nothing to list.
    assert!(f.servers.list().is_empty());
}

#[tokio::test]
async fn a_name_taken_by_another_stream_is_left_alone() {
    let f = fixture(Duration::from_secs(10)).await;
    let shared = f.servers.shared_addr().expect("shared port on");
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    for packet in h264_packets(9, 12) {
        socket.send_to(&packet, shared).await.expect("send");
    }
    let taken = StreamKey::new("rtp", "00000009").expect("key");
    wait_h264(&f.registry, &taken).await;
    // A port opened for the same name: its RTP is refused (the name is live), the port
    // closes, and the stream that has the name goes on.
    let port = f
        .servers
        .open(request("00000009", TcpMode::Udp, 0))
        .expect("open");
    for packet in h264_packets(10, 12) {
        socket
            .send_to(&packet, ("127.0.0.1", port))
            .await
            .expect("send");
    }
    for _ in 0..100 {
        if f.servers.list().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(f.servers.list().is_empty(), "the refused server is closed");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(f.registry.is_live(&taken), "the other stream was closed");
}
