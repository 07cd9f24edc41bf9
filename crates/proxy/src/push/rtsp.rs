//! Pushing a live stream to an `rtsp://` server, as ffmpeg's `-f rtsp` publishes: OPTIONS,
//! ANNOUNCE with the SDP the server's own DESCRIBE answers, SETUP per track (`mode=record`,
//! TCP interleaved or a UDP port pair), RECORD, then the stream's RTP. The packets are the
//! stream's shared RTP output ([`outputs::RtpOutput`], muxed once for every RTSP viewer), so
//! the push costs no packetizing of its own; it starts at the output's last keyframe.
//!
//! The push is a session of the stream like a viewer ([`registry::Registry::join`]), so
//! getAllSession lists it and kick_session ends it.

use media::StreamKey;
use registry::{Protocol, SessionInfo};
use rtsp::client::{Client, Event};
use rtsp::mux::MuxPacket;
use rtsp::RtspConfig;
use url::Url;

use crate::pull::rtsp::{
    client_options, end_of, now, protocol, sleep_until, Conn, Target, UdpPairs,
};
use crate::{AttemptOptions, Context, ProxyError, Started, Status};

/// Bytes of packets gathered into one socket write.
const WRITE_BATCH: usize = 128 * 1024;

/// What woke the push up.
enum Wake {
    Packet(Result<MuxPacket, registry::Ended>),
    Read(Result<(), ProxyError>),
    Timer,
    Udp,
    Kicked,
}

/// Publishes `key` to `url` until the stream ends ([`ProxyError::Ended`]), the push is kicked
/// ([`ProxyError::Closed`]) or the server fails.
pub(crate) async fn push(
    url: &Url,
    opts: &AttemptOptions,
    ctx: &Context,
    key: &StreamKey,
    started: &mut Started,
    status: &Status,
) -> Result<(), ProxyError> {
    let target = Target::parse(url)?;
    let mut conn = Conn::connect(&target, opts).await?;
    let info = SessionInfo {
        id: ctx.registry.next_session_id(),
        protocol: Protocol::Rtsp,
        peer: conn.peer,
        local: conn.local,
        params: String::new(),
    };
    let mut viewer = ctx.registry.join(key, info).ok_or(ProxyError::Ended)?;
    let output = ctx.outputs.rtp(key).await.ok_or(ProxyError::Ended)?;
    let (_, tracks) = output.describe();
    let mut client = Client::record(
        &target.request_url,
        target.login.clone(),
        tracks,
        key.stream(),
        client_options(opts),
        &RtspConfig::default(),
        now(),
    )
    .map_err(|e| ProxyError::BadUrl(e.to_string()))?;
    let server_closed = || ProxyError::Io {
        context: "the RTSP server closed the connection",
        source: std::io::ErrorKind::UnexpectedEof.into(),
    };
    let mut udp = UdpPairs::new();
    let mut reader = None;
    loop {
        while let Some(event) = client.poll_event() {
            if let Some(end) = end_of(&event) {
                return Err(end);
            }
            match event {
                Event::BindUdp { track } => {
                    let port = udp.bind(track, conn.local.ip(), conn.peer.ip()).await?;
                    client.udp_bound(now(), track, port).map_err(protocol)?;
                }
                Event::SetUp { track, transport } => {
                    udp.set_server(track, conn.peer.ip(), transport.server_port);
                }
                Event::Recording => {
                    tracing::info!(stream = %key, to = %crate::redacted(url), "pushing");
                    started.done();
                    status.went_live();
                    reader = Some(output.reader().0);
                }
                _ => {}
            }
        }
        conn.flush(&mut client, opts).await?;
        if client.is_closed() {
            return Err(server_closed());
        }
        let deadline = client.poll_timeout();
        let wake = tokio::select! {
            biased;
            () = viewer.kicked() => Wake::Kicked,
            read = conn.read(&mut client, server_closed) => Wake::Read(read),
            () = sleep_until(deadline) => Wake::Timer,
            _ = udp.recv() => Wake::Udp,
            packet = async {
                match reader.as_mut() {
                    Some(reader) => reader.recv().await,
                    None => std::future::pending().await,
                }
            } => Wake::Packet(packet),
        };
        match wake {
            Wake::Kicked | Wake::Packet(Err(_)) => {
                client.teardown(now());
                let _ = conn.flush(&mut client, opts).await;
                return Err(if matches!(wake, Wake::Kicked) {
                    ProxyError::Closed
                } else {
                    ProxyError::Ended
                });
            }
            Wake::Packet(Ok(first)) => {
                let mut next = Some(first);
                let mut sent = 0u64;
                while let Some(packet) = next.take() {
                    sent += send(&client, &udp, &mut conn, &packet)?;
                    if conn.out.len() < WRITE_BATCH {
                        next = reader.as_mut().and_then(|r| r.try_recv());
                    }
                }
                viewer.add_bytes(sent);
                status.add_bytes(sent);
            }
            Wake::Read(read) => read?,
            Wake::Timer => client.handle_timeout(now()),
            // The server's RTCP receiver reports: it is alive.
            Wake::Udp => client.handle_udp_activity(now()),
        }
    }
}

/// Puts one packet on its track's transport: interleaved into `conn.out`, or sent on the
/// track's UDP socket (lossy by nature: a full socket buffer drops it). Returns the bytes.
fn send(
    client: &Client,
    udp: &UdpPairs,
    conn: &mut Conn,
    packet: &MuxPacket,
) -> Result<u64, ProxyError> {
    let framed = client
        .interleave(packet.track, packet.rtcp, &packet.data, &mut conn.out)
        .map_err(protocol)?;
    if framed {
        return Ok(packet.data.len() as u64 + 4);
    }
    let Some(pair) = udp.get(packet.track) else {
        return Ok(0);
    };
    let Some((rtp_to, rtcp_to)) = pair.server else {
        return Ok(0);
    };
    let (socket, to) = if packet.rtcp {
        (&pair.rtcp, rtcp_to)
    } else {
        (&pair.rtp, rtp_to)
    };
    Ok(match socket.try_send_to(&packet.data, to) {
        Ok(n) => n as u64,
        Err(_) => 0,
    })
}
