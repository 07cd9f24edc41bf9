//! The RTP server's sockets: binding, the UDP and TCP readers of an opened port, the dial of
//! TCP active mode, and the shared port's demultiplexing by SSRC.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use media::StreamKey;
use registry::Protocol;
use rtsp::rfc4571::Deframer;
use socket2::{Domain, Protocol as SockProtocol, Socket, Type};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use super::receiver::{self, Ended, Inbound, OnlyTrack};
use super::{lock, RtpServerConfig};
use crate::{Context, Ingest};

/// The largest UDP datagram.
const MAX_DATAGRAM: usize = 65_536;
/// TCP connections one opened port takes at once (a device reconnecting while its old
/// connection times out needs two).
const MAX_TCP_PER_SERVER: usize = 4;
/// Sources the shared port receives at once (SSRCs over UDP plus TCP connections); more are
/// dropped.
const MAX_SHARED_STREAMS: usize = 256;
/// How long to wait for a device in TCP active mode (ZLMediaKit's 5 s).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a socket task waits after an error before it tries again.
const ERROR_PAUSE: Duration = Duration::from_millis(10);
/// A UDP socket's receive buffer: a burst of a 4K camera's keyframe.
const UDP_RECV_BUFFER: usize = 4 << 20;

/// The sockets of one opened port.
pub(super) struct Sockets {
    pub(super) udp: std::net::UdpSocket,
    pub(super) tcp: Option<std::net::TcpListener>,
}

impl Sockets {
    /// UDP on `addr`, and a TCP listener on the same port when `tcp`.
    pub(super) fn bind(addr: SocketAddr, tcp: bool, reuse: bool) -> std::io::Result<Sockets> {
        let udp = bind_udp(addr, reuse)?;
        let port = udp.local_addr()?.port();
        let tcp = if tcp {
            Some(bind_tcp(SocketAddr::new(addr.ip(), port), reuse)?)
        } else {
            None
        };
        Ok(Sockets { udp, tcp })
    }
}

fn bind_udp(addr: SocketAddr, reuse: bool) -> std::io::Result<std::net::UdpSocket> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::DGRAM,
        Some(SockProtocol::UDP),
    )?;
    if reuse {
        socket.set_reuse_address(true)?;
        #[cfg(unix)]
        socket.set_reuse_port(true)?;
    }
    // Best effort: the kernel may cap it.
    let _ = socket.set_recv_buffer_size(UDP_RECV_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

fn bind_tcp(addr: SocketAddr, reuse: bool) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(SockProtocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    if reuse {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(64)?;
    Ok(socket.into())
}

/// The SSRC of what looks like an RTP packet (version 2, a whole fixed header).
fn rtp_ssrc(data: &[u8]) -> Option<u32> {
    let head = data.get(..rtsp::rtp::HEADER_LEN)?;
    (head[0] >> 6 == 2).then(|| u32::from_be_bytes([head[8], head[9], head[10], head[11]]))
}

/// Reads datagrams of an opened port into `inbound`. The first valid RTP packet (of `ssrc`,
/// unless 0) binds its sender: datagrams from anyone else are dropped afterwards.
pub(super) fn spawn_udp(
    socket: std::net::UdpSocket,
    inbound: mpsc::Sender<Inbound>,
    ssrc: u32,
) -> std::io::Result<AbortHandle> {
    let socket = UdpSocket::from_std(socket)?;
    let local = socket.local_addr()?;
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut bound: Option<SocketAddr> = None;
        let mut dropped = 0u64;
        loop {
            let (n, peer) = match socket.recv_from(&mut buf).await {
                Ok(r) => r,
                Err(e) => {
                    // ICMP port unreachable and the like: not fatal for a server socket (a
                    // short pause, in case it keeps failing).
                    tracing::debug!(%local, "RTP UDP receive: {e}");
                    tokio::time::sleep(ERROR_PAUSE).await;
                    continue;
                }
            };
            let data = &buf[..n];
            match bound {
                Some(p) if p != peer => continue,
                Some(_) => {}
                None => match rtp_ssrc(data) {
                    Some(s) if ssrc == 0 || s == ssrc => bound = Some(peer),
                    _ => continue,
                },
            }
            let packet = Inbound {
                data: Bytes::copy_from_slice(data),
                peer,
                local,
            };
            match inbound.try_send(packet) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    dropped += 1;
                    if dropped.is_power_of_two() {
                        tracing::warn!(%local, dropped, "RTP packets dropped: the stream is behind");
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
    });
    Ok(task.abort_handle())
}

/// Accepts TCP connections on an opened port (tcp_mode 1), at most [`MAX_TCP_PER_SERVER`] at
/// once, each read by [`read_tcp`]. Aborting the task closes them all.
pub(super) fn spawn_accept(
    listener: std::net::TcpListener,
    inbound: mpsc::Sender<Inbound>,
    timeout: Duration,
) -> std::io::Result<AbortHandle> {
    let listener = TcpListener::from_std(listener)?;
    let task = tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(MAX_TCP_PER_SERVER));
        let mut readers = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else {
                        // Out of descriptors, most likely: let some close first.
                        tokio::time::sleep(ERROR_PAUSE).await;
                        continue;
                    };
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        tracing::warn!(%peer, "RTP over TCP refused: too many connections");
                        continue;
                    };
                    let inbound = inbound.clone();
                    readers.spawn(async move {
                        read_tcp(stream, inbound, timeout).await;
                        drop(slot);
                    });
                }
                Some(_) = readers.join_next(), if !readers.is_empty() => {}
            }
        }
    });
    Ok(task.abort_handle())
}

/// Reads one TCP connection (tcp_mode 2, after the dial) into `inbound`.
pub(super) fn spawn_tcp_reader(
    stream: TcpStream,
    inbound: mpsc::Sender<Inbound>,
    timeout: Duration,
) -> AbortHandle {
    tokio::spawn(read_tcp(stream, inbound, timeout)).abort_handle()
}

/// Dials `target` from `local`'s port (ZLMediaKit dials from the opened port, so the device
/// sees the port it was told about), within [`CONNECT_TIMEOUT`] (or `timeout` if shorter).
pub(super) async fn dial(
    target: &str,
    local: SocketAddr,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    let limit = CONNECT_TIMEOUT.min(timeout);
    let attempt = async {
        let mut last = None;
        for addr in tokio::net::lookup_host(target).await? {
            let socket = if addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            if addr.is_ipv4() == local.is_ipv4() {
                socket.bind(SocketAddr::new(local.ip(), local.port()))?;
            }
            match socket.connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no address for the host")
        }))
    };
    tokio::time::timeout(limit, attempt)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
}

/// Reads RFC 4571 frames from `stream` into `inbound` (waiting when the stream is behind)
/// until the peer closes, is silent for `timeout`, breaks the framing, or the stream goes.
async fn read_tcp(mut stream: TcpStream, inbound: mpsc::Sender<Inbound>, timeout: Duration) {
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
        return;
    };
    let mut deframer = Deframer::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let room = deframer.room().min(buf.len());
        let n = match tokio::time::timeout(timeout, stream.read(&mut buf[..room])).await {
            Err(_) => {
                tracing::info!(%peer, "RTP over TCP: the device was silent, closed");
                return;
            }
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => n,
        };
        if deframer.push(&buf[..n]).is_err() {
            return;
        }
        while let Some(frame) = deframer.pull() {
            let data = match frame {
                Ok(data) => data,
                Err(e) => {
                    tracing::warn!(%peer, "RTP over TCP closed: {e}");
                    return;
                }
            };
            if inbound.send(Inbound { data, peer, local }).await.is_err() {
                return;
            }
        }
    }
}

/// The shared port's sources: one stream per SSRC over UDP.
struct SharedState {
    ctx: Context,
    config: RtpServerConfig,
    streams: HashMap<u32, mpsc::Sender<Inbound>>,
    /// SSRCs whose stream was refused or closed, with when they may try again (a source
    /// refused by on_publish must not ask again with every packet).
    refused: Arc<Mutex<HashMap<u32, Instant>>>,
}

/// ZLMediaKit's name of a stream received on the shared port: `rtp/{SSRC as %08X}`.
fn shared_key(ssrc: u32) -> Option<StreamKey> {
    StreamKey::new("rtp", format!("{ssrc:08X}")).ok()
}

impl SharedState {
    /// The stream of `ssrc`, started if new; `None` when refused or at the cap.
    fn stream_of(&mut self, ssrc: u32) -> Option<&mpsc::Sender<Inbound>> {
        if self.streams.get(&ssrc).is_some_and(mpsc::Sender::is_closed) {
            self.streams.remove(&ssrc);
        }
        if !self.streams.contains_key(&ssrc) {
            {
                let mut refused = lock(&self.refused);
                let now = Instant::now();
                refused.retain(|_, until| *until > now);
                if refused.contains_key(&ssrc) {
                    return None;
                }
            }
            self.streams.retain(|_, tx| !tx.is_closed());
            if self.streams.len() >= MAX_SHARED_STREAMS {
                return None;
            }
            let tx = spawn_shared_stream(&self.ctx, &self.config, ssrc, &self.refused)?;
            self.streams.insert(ssrc, tx);
        }
        self.streams.get(&ssrc)
    }
}

/// Starts the stream of `ssrc` on the shared port.
fn spawn_shared_stream(
    ctx: &Context,
    config: &RtpServerConfig,
    ssrc: u32,
    refused: &Arc<Mutex<HashMap<u32, Instant>>>,
) -> Option<mpsc::Sender<Inbound>> {
    let key = shared_key(ssrc)?;
    let (tx, rx) = mpsc::channel(receiver::INBOUND_QUEUE);
    let ingest = Ingest::new(
        ctx.clone(),
        key.clone(),
        Protocol::Rtp,
        None,
        serde_json::Map::new(),
    );
    let (ctx, config, refused) = (ctx.clone(), config.clone(), Arc::clone(refused));
    tokio::spawn(async move {
        let retry = config.timeout;
        let went_live = Arc::new(AtomicBool::new(false));
        let ended = receiver::run(
            ingest,
            rx,
            config,
            ssrc,
            OnlyTrack::All,
            Arc::clone(&went_live),
        )
        .await;
        match ended {
            Ended::Stream(e) => {
                tracing::info!(stream = %key, "RTP stream on the shared port ended: {e}");
                let mut refused = lock(&refused);
                if refused.len() < MAX_SHARED_STREAMS {
                    refused.insert(ssrc, Instant::now() + retry);
                }
            }
            Ended::Timeout => {
                tracing::info!(stream = %key, "RTP stream on the shared port timed out");
                // Its source is gone for good: no waiting for it to resume.
                if went_live.load(Ordering::Relaxed) {
                    ctx.registry.close(&key);
                }
            }
            Ended::Closed => {}
        }
    });
    Some(tx)
}

/// Binds the shared port (UDP and TCP on `addr`) and starts its tasks.
pub(super) fn start_shared(
    ctx: Context,
    config: RtpServerConfig,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, Vec<AbortHandle>)> {
    let sockets = Sockets::bind(addr, true, false)?;
    let udp = UdpSocket::from_std(sockets.udp)?;
    let local = udp.local_addr()?;
    let Some(listener) = sockets.tcp else {
        return Err(std::io::Error::other("no TCP listener"));
    };
    let listener = TcpListener::from_std(listener)?;
    let refused = Arc::new(Mutex::new(HashMap::new()));
    let mut state = SharedState {
        ctx: ctx.clone(),
        config: config.clone(),
        streams: HashMap::new(),
        refused: Arc::clone(&refused),
    };
    let udp_task = tokio::spawn(async move {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            };
            let data = &buf[..n];
            let Some(ssrc) = rtp_ssrc(data) else {
                continue;
            };
            let Some(tx) = state.stream_of(ssrc) else {
                continue;
            };
            let packet = Inbound {
                data: Bytes::copy_from_slice(data),
                peer,
                local,
            };
            if tx.try_send(packet).is_err() {
                tracing::debug!(ssrc, "RTP packet dropped on the shared port");
            }
        }
    });
    let tcp_task = tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(MAX_SHARED_STREAMS));
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else {
                        // Out of descriptors, most likely: let some close first.
                        tokio::time::sleep(ERROR_PAUSE).await;
                        continue;
                    };
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        tracing::warn!(%peer, "RTP over TCP refused on the shared port: too many");
                        continue;
                    };
                    let (ctx, config, refused) = (ctx.clone(), config.clone(), Arc::clone(&refused));
                    connections.spawn(async move {
                        shared_tcp(stream, ctx, config, refused).await;
                        drop(slot);
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    });
    Ok((
        local,
        vec![udp_task.abort_handle(), tcp_task.abort_handle()],
    ))
}

/// One TCP connection on the shared port: its first packet's SSRC names the stream.
async fn shared_tcp(
    stream: TcpStream,
    ctx: Context,
    config: RtpServerConfig,
    refused: Arc<Mutex<HashMap<u32, Instant>>>,
) {
    let (tx, mut rx) = mpsc::channel::<Inbound>(receiver::INBOUND_QUEUE);
    let timeout = config.timeout;
    let reader = read_tcp(stream, tx, timeout);
    tokio::pin!(reader);
    // Wait for the first packet to learn the SSRC, then hand the connection to a stream.
    let first = tokio::select! {
        _ = &mut reader => return,
        first = rx.recv() => first,
    };
    let Some(first) = first else { return };
    let Some(ssrc) = rtp_ssrc(&first.data) else {
        return;
    };
    let Some(stream_tx) = spawn_shared_stream(&ctx, &config, ssrc, &refused) else {
        return;
    };
    if stream_tx.send(first).await.is_err() {
        return;
    }
    let forward = async {
        while let Some(packet) = rx.recv().await {
            if stream_tx.send(packet).await.is_err() {
                return;
            }
        }
    };
    tokio::join!(reader, forward);
}
