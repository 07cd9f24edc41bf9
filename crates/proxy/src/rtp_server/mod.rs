//! ZLMediaKit's RTP server (GB28181 ingest): ports opened by `openRtpServer`, each feeding one
//! stream, and the shared port `rtp_proxy.port`, where every source is a stream of its own
//! named after its SSRC (`rtp/{SSRC as %08X}`, ZLMediaKit's `printSSRC`).
//!
//! ```text
//!  open(port, stream_id, tcp_mode, …) ─▶ UDP socket ──┐
//!                                        TCP listener ─┼─ Inbound (bounded) ─▶ receiver::run ─▶ Ingest
//!  connect(stream_id, dst) (tcp_mode 2) ─▶ TCP dial ──┘      no RTP for timeoutSec:
//!                                                            on_rtp_server_timeout, closed
//!  rtp_proxy.port ─▶ UDP / TCP ─ by SSRC ─▶ one receiver::run per SSRC (no hook on timeout)
//! ```
//!
//! Over TCP, RTP is framed as RFC 4571 says ([`rtsp::rfc4571`]). A dedicated port takes the
//! first source that sends valid RTP (with the `ssrc` asked for, if any) and drops datagrams
//! from anyone else, as ZLMediaKit binds the peer. Payload types: `ps_pt` MPEG-PS, 33 MPEG-TS,
//! `h264_pt` / `h265_pt` raw H.264 / H.265; others are dropped.

mod mpeg;
mod net;
mod receiver;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use media::StreamKey;
use registry::Protocol;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinHandle};

use crate::{Context, Ingest};
use receiver::{Ended, Inbound};

pub use receiver::OnlyTrack;

/// How the RTP server is set up (`[rtp_proxy]`).
#[derive(Debug, Clone)]
pub struct RtpServerConfig {
    /// Where the shared port listens (UDP and TCP, `rtp_proxy.port`); `None` = off.
    pub shared: Option<SocketAddr>,
    /// The address opened ports bind on. Default: `0.0.0.0`.
    pub bind_ip: IpAddr,
    /// Ports an `open` with port 0 picks from (`rtp_proxy.port_range`); even ones only, as
    /// ZLMediaKit keeps the odd one above for RTCP.
    pub port_range: RangeInclusive<u16>,
    /// `rtp_proxy.timeoutSec`: a source silent this long ends.
    pub timeout: Duration,
    /// `rtp_proxy.ps_pt`.
    pub ps_pt: u8,
    /// `rtp_proxy.h264_pt`.
    pub h264_pt: u8,
    /// `rtp_proxy.h265_pt`.
    pub h265_pt: u8,
}

impl Default for RtpServerConfig {
    fn default() -> Self {
        RtpServerConfig {
            shared: None,
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port_range: 30000..=35000,
            timeout: Duration::from_secs(15),
            ps_pt: 96,
            h264_pt: 98,
            h265_pt: 99,
        }
    }
}

/// openRtpServer's `tcp_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TcpMode {
    /// `0`: UDP only.
    #[default]
    Udp,
    /// `1`: UDP, and a TCP listener on the same port the device connects to.
    Passive,
    /// `2`: UDP, and [`RtpServers::connect`] dials the device from the same port.
    Active,
}

impl TcpMode {
    /// The argument's value; `None` for another number.
    pub fn from_arg(value: u8) -> Option<TcpMode> {
        match value {
            0 => Some(TcpMode::Udp),
            1 => Some(TcpMode::Passive),
            2 => Some(TcpMode::Active),
            _ => None,
        }
    }

    /// The number listRtpServer and on_rtp_server_timeout report.
    pub fn as_arg(self) -> u8 {
        match self {
            TcpMode::Udp => 0,
            TcpMode::Passive => 1,
            TcpMode::Active => 2,
        }
    }
}

/// The arguments of openRtpServer.
#[derive(Debug, Clone)]
pub struct OpenRequest {
    /// The port to bind; 0 = a free one from `port_range`.
    pub port: u16,
    /// The stream's vhost, app and id (`rtp/{stream_id}` by default).
    pub key: StreamKey,
    /// UDP only, TCP passive or TCP active.
    pub tcp_mode: TcpMode,
    /// Bind with `SO_REUSEADDR`/`SO_REUSEPORT`, so another socket may share the port.
    pub re_use_port: bool,
    /// Accept only this SSRC; 0 = the first one that comes.
    pub ssrc: u32,
    /// Which tracks to keep.
    pub only_track: OnlyTrack,
}

/// One open server, as listRtpServer reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpServerInfo {
    /// The stream it feeds.
    pub key: StreamKey,
    /// The bound port.
    pub port: u16,
    /// The SSRC asked for (0 = any).
    pub ssrc: u32,
    /// Its TCP mode.
    pub tcp_mode: TcpMode,
    /// The `re_use_port` it was opened with.
    pub re_use_port: bool,
    /// Its `only_track`.
    pub only_track: OnlyTrack,
}

/// Why an RTP server call failed; the messages are ZLMediaKit's where it has one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RtpServerError {
    /// A server for the stream is already open (openRtpServer's -300).
    #[error("This stream already exists")]
    Exists,
    /// The port could not be bound.
    #[error("Create RTP port {addr} failed: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Every port of `port_range` is taken.
    #[error("no free port in rtp_proxy.port_range {first}-{last}")]
    NoFreePort {
        /// First port of the range.
        first: u16,
        /// Last port of the range.
        last: u16,
    },
    /// No server for the stream (connectRtpServer's -1).
    #[error("can not find the stream")]
    NotFound,
    /// connectRtpServer on a server not in TCP active mode.
    #[error("Only support tcp active mode")]
    NotActive,
    /// The device could not be reached.
    #[error("connect to {target} failed: {source}")]
    Connect {
        /// `host:port`.
        target: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The open servers and the shared port; a cheap-to-clone handle. [`RtpServers::shutdown`]
/// closes everything.
#[derive(Clone)]
pub struct RtpServers {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RtpServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtpServers")
            .field("shared", &self.shared_addr())
            .finish_non_exhaustive()
    }
}

struct Inner {
    ctx: Context,
    /// The settings new servers get ([`RtpServers::set_config`] replaces them).
    config: Mutex<RtpServerConfig>,
    /// A std lock: held only to look up, insert or remove, never across an `.await`.
    servers: Mutex<HashMap<StreamKey, Server>>,
    next_id: AtomicU64,
    /// Where the search for a free port starts next.
    next_port: Mutex<u16>,
    /// The shared port's address and tasks.
    shared: Mutex<(Option<SocketAddr>, Vec<AbortHandle>)>,
}

/// One open server: its tasks end when it is dropped (closeRtpServer, a timeout, shutdown).
struct Server {
    id: u64,
    info: RtpServerInfo,
    /// Where the socket tasks put packets (a TCP active connection gets a clone).
    inbound: mpsc::Sender<Inbound>,
    local: SocketAddr,
    tasks: Vec<AbortHandle>,
    /// The stream's task, which owns its [`Ingest`].
    stream: Option<JoinHandle<()>>,
    /// Whether its stream went live: only then is the live stream of its name its own.
    went_live: Arc<AtomicBool>,
    registry: registry::Registry,
}

impl Drop for Server {
    /// Stops the sockets and the stream. A publisher that merely drops leaves its stream
    /// waiting `continue_push_ms` for it to come back; a closed server's stream ends at once.
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(stream) = self.stream.take() {
            stream.abort();
            let (registry, key) = (self.registry.clone(), self.info.key.clone());
            let went_live = Arc::clone(&self.went_live);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = stream.await;
                    if went_live.load(Ordering::Relaxed) {
                        registry.close(&key);
                    }
                });
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RtpServers {
    /// The RTP server of `ctx`'s streams; binds the shared port if `config.shared` is set.
    pub async fn start(ctx: Context, mut config: RtpServerConfig) -> std::io::Result<RtpServers> {
        // A zero timeout would end every source at once.
        config.timeout = config.timeout.max(Duration::from_secs(1));
        let (shared_addr, shared_tasks) = match config.shared {
            Some(addr) => {
                let (addr, tasks) = net::start_shared(ctx.clone(), config.clone(), addr)?;
                (Some(addr), tasks)
            }
            None => (None, Vec::new()),
        };
        if let Some(addr) = shared_addr {
            tracing::info!(%addr, "RTP server shared port listening (UDP and TCP)");
        }
        let first = *config.port_range.start();
        Ok(RtpServers {
            inner: Arc::new(Inner {
                ctx,
                next_port: Mutex::new(first + first % 2),
                config: Mutex::new(config),
                servers: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                shared: Mutex::new((shared_addr, shared_tasks)),
            }),
        })
    }

    /// The bound shared port, if on.
    pub fn shared_addr(&self) -> Option<SocketAddr> {
        lock(&self.inner.shared).0
    }

    /// Applies changed settings (setServerConfig, SIGHUP): servers opened from now on use
    /// them; when `config.shared` differs from the shared port's address, the port moves
    /// (the new one is bound first; its old streams end) or closes (`None`).
    pub fn set_config(&self, mut config: RtpServerConfig) -> std::io::Result<()> {
        config.timeout = config.timeout.max(Duration::from_secs(1));
        let mut shared = lock(&self.inner.shared);
        let moved = match (config.shared, shared.0) {
            (None, None) => false,
            (Some(new), Some(old)) => new != old && !(new.port() == 0 && new.ip() == old.ip()),
            _ => true,
        };
        if moved {
            let started = match config.shared {
                Some(addr) => {
                    let (addr, tasks) =
                        net::start_shared(self.inner.ctx.clone(), config.clone(), addr)?;
                    tracing::info!(%addr, "RTP server shared port moved");
                    (Some(addr), tasks)
                }
                None => (None, Vec::new()),
            };
            for task in std::mem::replace(&mut *shared, started).1 {
                task.abort();
            }
        }
        *lock(&self.inner.config) = config;
        Ok(())
    }

    /// openRtpServer: binds the port (UDP, and TCP for [`TcpMode::Passive`]) and waits for
    /// RTP; answers the bound port.
    pub fn open(&self, req: OpenRequest) -> Result<u16, RtpServerError> {
        let inner = &self.inner;
        let config = lock(&inner.config).clone();
        let mut servers = lock(&inner.servers);
        if servers.contains_key(&req.key) {
            return Err(RtpServerError::Exists);
        }
        let sockets = self.bind(&req, &config)?;
        let local = sockets
            .udp
            .local_addr()
            .map_err(|source| RtpServerError::Bind {
                addr: SocketAddr::new(config.bind_ip, req.port),
                source,
            })?;
        let port = local.port();
        let (tx, rx) = mpsc::channel(receiver::INBOUND_QUEUE);
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let info = RtpServerInfo {
            key: req.key.clone(),
            port,
            ssrc: req.ssrc,
            tcp_mode: req.tcp_mode,
            re_use_port: req.re_use_port,
            only_track: req.only_track,
        };
        let mut tasks = Vec::new();
        let udp = net::spawn_udp(sockets.udp, tx.clone(), req.ssrc).map_err(|source| {
            RtpServerError::Bind {
                addr: local,
                source,
            }
        })?;
        tasks.push(udp);
        if let Some(listener) = sockets.tcp {
            let accept =
                net::spawn_accept(listener, tx.clone(), config.timeout).map_err(|source| {
                    RtpServerError::Bind {
                        addr: local,
                        source,
                    }
                })?;
            tasks.push(accept);
        }
        let ingest = Ingest::new(
            inner.ctx.clone(),
            req.key.clone(),
            Protocol::Rtp,
            None,
            serde_json::Map::new(),
        );
        let went_live = Arc::new(AtomicBool::new(false));
        let stream = tokio::spawn(self.clone().stream(
            id,
            info.clone(),
            ingest,
            rx,
            config,
            Arc::clone(&went_live),
        ));
        tracing::info!(stream = %req.key, port, tcp_mode = req.tcp_mode.as_arg(), "RTP server opened");
        servers.insert(
            req.key,
            Server {
                id,
                info,
                inbound: tx,
                local,
                tasks,
                stream: Some(stream),
                went_live,
                registry: inner.ctx.registry.clone(),
            },
        );
        Ok(port)
    }

    /// closeRtpServer: closes the server of `key` and ends its stream; the number closed (0 or
    /// 1, ZLMediaKit's `hit`).
    pub fn close(&self, key: &StreamKey) -> u32 {
        let removed = lock(&self.inner.servers).remove(key);
        match removed {
            Some(server) => {
                tracing::info!(stream = %key, port = server.info.port, "RTP server closed");
                drop(server);
                1
            }
            None => 0,
        }
    }

    /// listRtpServer: every open server.
    pub fn list(&self) -> Vec<RtpServerInfo> {
        let mut list: Vec<RtpServerInfo> = lock(&self.inner.servers)
            .values()
            .map(|s| s.info.clone())
            .collect();
        list.sort_by_key(|info| info.port);
        list
    }

    /// connectRtpServer: for a server in [`TcpMode::Active`], dials the device at
    /// `dst_url:dst_port` from the server's port (5 s at most) and reads RTP from it.
    pub async fn connect(
        &self,
        key: &StreamKey,
        dst_url: &str,
        dst_port: u16,
    ) -> Result<(), RtpServerError> {
        let (id, local, inbound) = {
            let servers = lock(&self.inner.servers);
            let server = servers.get(key).ok_or(RtpServerError::NotFound)?;
            if server.info.tcp_mode != TcpMode::Active {
                return Err(RtpServerError::NotActive);
            }
            (server.id, server.local, server.inbound.clone())
        };
        let target = format!("{dst_url}:{dst_port}");
        let timeout = lock(&self.inner.config).timeout;
        let stream =
            net::dial(&target, local, timeout)
                .await
                .map_err(|source| RtpServerError::Connect {
                    target: target.clone(),
                    source,
                })?;
        let reader = net::spawn_tcp_reader(stream, inbound, timeout);
        let mut servers = lock(&self.inner.servers);
        match servers.get_mut(key).filter(|s| s.id == id) {
            Some(server) => server.tasks.push(reader),
            // Closed meanwhile.
            None => reader.abort(),
        }
        tracing::info!(stream = %key, %target, "RTP server connected to the device");
        Ok(())
    }

    /// Closes every server and the shared port; their streams end.
    pub fn shutdown(&self) {
        let servers: Vec<Server> = lock(&self.inner.servers).drain().map(|(_, s)| s).collect();
        drop(servers);
        let tasks = std::mem::take(&mut lock(&self.inner.shared).1);
        for task in tasks {
            task.abort();
        }
    }

    /// The stream task of server `id`: receives until the stream ends, then closes the server
    /// (firing on_rtp_server_timeout when it was a timeout).
    async fn stream(
        self,
        id: u64,
        info: RtpServerInfo,
        ingest: Ingest,
        rx: mpsc::Receiver<Inbound>,
        config: RtpServerConfig,
        went_live: Arc<AtomicBool>,
    ) {
        let (ssrc, only) = (info.ssrc, info.only_track);
        let ended = receiver::run(ingest, rx, config, ssrc, only, went_live).await;
        match &ended {
            Ended::Timeout => {
                tracing::info!(stream = %info.key, port = info.port, "RTP server timed out");
                self.inner
                    .ctx
                    .hooks
                    .on_rtp_server_timeout(&hooks::RtpServerTimeout {
                        local_port: info.port,
                        key: info.key.clone(),
                        tcp_mode: info.tcp_mode.as_arg(),
                        re_use_port: info.re_use_port,
                        ssrc: info.ssrc,
                    });
            }
            Ended::Closed => return,
            Ended::Stream(e) => tracing::info!(stream = %info.key, "RTP server stream ended: {e}"),
        }
        let removed = {
            let mut servers = lock(&self.inner.servers);
            match servers.get(&info.key) {
                Some(s) if s.id == id => servers.remove(&info.key),
                _ => None,
            }
        };
        // Dropping it aborts this task too, which has nothing left to do.
        drop(removed);
    }

    /// Binds the sockets of `req`: its port, or the first free even port of the range.
    fn bind(
        &self,
        req: &OpenRequest,
        config: &RtpServerConfig,
    ) -> Result<net::Sockets, RtpServerError> {
        let ip = config.bind_ip;
        let tcp = req.tcp_mode == TcpMode::Passive;
        if req.port != 0 {
            let addr = SocketAddr::new(ip, req.port);
            return net::Sockets::bind(addr, tcp, req.re_use_port)
                .map_err(|source| RtpServerError::Bind { addr, source });
        }
        let range = config.port_range.clone();
        let (first, last) = (*range.start(), *range.end());
        let first_even = first + first % 2;
        let count = if last >= first_even {
            usize::from((last - first_even) / 2 + 1)
        } else {
            0
        };
        let mut next = lock(&self.inner.next_port);
        for _ in 0..count {
            let port = if range.contains(&*next) {
                *next
            } else {
                first_even
            };
            *next = port
                .checked_add(2)
                .filter(|p| range.contains(p))
                .unwrap_or(first_even);
            if let Ok(sockets) = net::Sockets::bind(SocketAddr::new(ip, port), tcp, req.re_use_port)
            {
                return Ok(sockets);
            }
        }
        Err(RtpServerError::NoFreePort { first, last })
    }
}
