//! The STUN/TURN listener (RFC 8489, RFC 8656): sockets, timers and the hooks of seed 000
//! around the sans-IO [`::turn::server::Server`].
//!
//! One owner task holds the state machine (it is single-threaded) and follows its drain rule;
//! ChannelData on the channels it publishes takes a fast path around it, on a thread of its
//! own (the data plane: the listener and relay reader tasks, see [`data_plane`]):
//!
//! ```text
//!  UDP listener task ── recv_from ─┬─ ChannelData, published channel ─▶ relay socket send_to
//!                                  └─ anything else ── mpsc(256) ───┐        (fast path)
//!  TCP conn tasks ── next_frame ── mpsc(256) ───────────────────────┤
//!  relay reader tasks ── recv_from ─┬─ from a published channel's peer ─▶ ChannelData,
//!                                   │                          listener send_to (fast path)
//!                                   └─ anything else ── mpsc(1024) ─┤
//!  password lookups (spawned) ── mpsc ──────────────────────────────┤
//!  timer (poll_timeout) ────────────────────────────────────────────┘
//!        ▼
//!  owner: handle_* ─▶ poll_output until None
//!        ├─ ToClient ───────▶ UDP send_to / TCP mpsc(256)
//!        ├─ ToPeer ─────────▶ relay socket send_to
//!        ├─ AllocateRelay ──▶ bind, start its reader, relay_allocated
//!        ├─ ReleaseRelay ───▶ abort the reader, drop its channels from the table
//!        ├─ PublishChannel ─▶ table (client, channel) → relay, peer, deadline, and back
//!        ├─ WithdrawChannel ▶ out of the table
//!        └─ PasswordRequest ▶ spawn the lookup
//!
//!  handle_* ── WebhookHandler (a turn::handler::Handler) ── TurnHooks::event ─▶ POST /events
//! ```
//!
//! The fast path (`fast`): the state machine stays the only authority on allocations,
//! permissions and channels. With `Config::publish_channels` it publishes each channel of a
//! UDP client with a deadline (the earliest of the channel's, its peer permission's and the
//! allocation's expiry) and republishes it when a ChannelBind, CreatePermission or Refresh
//! moves that deadline; it withdraws it when it expires or its allocation goes. The listener
//! task and the relay readers look a datagram up in that read-mostly table and relay it
//! themselves only when they find it before its deadline, so an expired or unbound channel
//! stops at once, even before the owner's timer runs; everything else (STUN, Send and Data
//! indications, unknown channels, peers without a channel, TCP clients) goes to the owner,
//! which decides as before. What the fast path relays is counted in atomics that the owner
//! hands to the state machine (`Server::count_relayed`) every second, so `/metrics` stays
//! complete. Channels are not published when `turn.max_bytes_per_second` is set (the rate
//! limit needs every packet) or to the server's own addresses that `turn.allow_peers` does not
//! list (the policy allowed them for a relay's port and checks them per packet).
//!
//! The seed 000 web hooks themselves (the HTTP client, the bounded event queue, the `realm`
//! and `rid` headers) are [`::hooks::HttpTurnHooks`], behind the [`::hooks::TurnHooks`] trait;
//! this driver only calls it. Events reach the hook only through the state machine's
//! [`::turn::handler::Handler`]: the [`WebhookHandler`] installed with `Server::with_handler`
//! turns the lifecycle notifications into [`::hooks::TurnEvent`]s; it answers password
//! lookups with [`::turn::handler::Authorization::Ask`] when a hook is configured, which the
//! state machine turns into [`Output::PasswordRequest`] (the lookup is async, the handler is
//! not), run on its own task.
//!
//! A TCP connection must send a complete message within `tcp_first_message_timeout` (5 s) of
//! its accept and have an allocation within `tcp_allocation_timeout` (20 s), and at most
//! `tcp_max_unallocated` (256) connections wait for theirs at once: until a client has spent
//! valid credentials it holds a socket only briefly. With an allocation it may stay silent for
//! `turn.max_lifetime` + 60 s; one whose allocation ends is back to an allocation deadline. Relay sockets kept for a port reservation (EVEN-PORT with the
//! R bit) are bound and read like any relay until the state machine releases them.
//!
//! Layout: this file has the listener, the owner task and the relay sockets; `fast` the
//! ChannelData fast path (the table of published channels, the UDP listener's and the relay
//! sockets' reader tasks); `tcp` the TCP connections (accept, cap, deadlines); `hooks` the
//! state machine's handler wired to the seed 000 hooks.
//!
//! Every queue is bounded. Readers wait for room (the kernel drops datagrams meanwhile, and a
//! TCP client is slowed down); the owner never waits on a queue: a TCP client that does not
//! read, or a hook backend that does not keep up, loses messages, which are counted.

use ::turn::attr::AddressFamily;
use ::turn::server::{AuthRequestId, Output, Protocol, RelayError, RelayPort, Transport};
use anyhow::Context;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

mod fast;
mod hooks;
mod tcp;

use ::hooks::{HttpTurnHooks, TurnHookConfig, TurnHooks};
use ::turn::channel::CHANNEL_HEADER_LEN;
use fast::FastPath;
use hooks::WebhookHandler;
use tcp::{TcpClient, TcpLimits, TcpMsg};

/// Largest datagram read from the listener (the UDP maximum).
const LISTENER_BUF: usize = 0xFFFF;
/// Largest datagram read from a peer. WebRTC keeps packets under the path MTU; anything longer
/// would not fit in a Data indication to a UDP client behind a typical MTU anyway.
const RELAY_BUF: usize = 0x4000;
/// Frames from all TCP connections waiting for the owner.
const TCP_IN_QUEUE: usize = 256;
/// Frames waiting to be written to one TCP client; past it they are dropped.
const TCP_OUT_QUEUE: usize = 256;
/// Datagrams from all relay sockets waiting for the owner (each at most [`RELAY_BUF`]).
const PEER_QUEUE: usize = 1024;
/// Datagrams from the UDP listener waiting for the owner (each at most [`LISTENER_BUF`]): the
/// ones the fast path does not take (STUN, Send indications, unpublished channels).
const CLIENT_QUEUE: usize = 256;
/// Datagrams handled per wake-up of the owner task before it looks at its other inputs.
const BATCH: usize = 32;
/// A dropped-message warning is logged once per this many drops.
const WARN_EVERY: u64 = 1000;
/// Random ports tried in the relay range before giving up with 508.
const BIND_ATTEMPTS: usize = 64;
/// Receive buffer asked for on the TURN listener and relay sockets. The kernel's default
/// (~208 KiB) overflowed under `scripts/bench-turn`'s 50 000 packets/s whenever the owner task
/// was descheduled for a moment; the kernel caps the request at `net.core.rmem_max`.
const UDP_RECV_BUFFER: usize = 4 << 20;

/// Asks for [`UDP_RECV_BUFFER`]; a smaller buffer still works, so a refusal is only logged.
fn grow_recv_buffer(socket: socket2::SockRef<'_>) {
    if let Err(e) = socket.set_recv_buffer_size(UDP_RECV_BUFFER) {
        tracing::debug!("TURN socket receive buffer left at its default: {e}");
    }
}

/// How often the interface addresses are read again for the peer policy: a DHCP lease or a
/// hot-plugged interface changes them, and the policy must know the host's addresses to keep
/// relays off its other services.
const OWN_ADDRESSES_EVERY: Duration = Duration::from_secs(60);
/// What ties a relay to the running server: its figures go out for `/metrics`, the
/// credentials and the drain switch come in from config changes.
pub(crate) struct Links {
    /// Where the relay's counters go every second.
    pub(crate) figures: watch::Sender<Option<api::TurnFigures>>,
    /// `turn.users` and `turn.auth_secret` now.
    pub(crate) credentials: watch::Receiver<Credentials>,
    /// Turns true when the relay moved to another port.
    pub(crate) drain: watch::Receiver<bool>,
    /// Seed 004's events: every TURN event also goes out as a `turn` envelope.
    pub(crate) events: events::Events,
}

/// `turn.users` (name, password) and `turn.auth_secret`, as the relay checks them.
pub(crate) type Credentials = (Vec<(String, String)>, Option<String>);

/// The credentials `options` give.
pub(crate) fn credentials(options: &TurnOptions) -> Credentials {
    (options.server.users.clone(), Some(rest_secret(options)))
}

/// The secret of the REST credentials the relay accepts: `turn.auth_secret`, or without one a
/// random secret of this process, with which the WebRTC answers hand out short-lived
/// credentials (RFC 9725 `Link` headers) that nobody else can make.
pub(crate) fn rest_secret(options: &TurnOptions) -> String {
    static PROCESS_SECRET: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    options.server.auth_secret.clone().unwrap_or_else(|| {
        PROCESS_SECRET
            .get_or_init(|| format!("{:032x}", rand::random::<u128>()))
            .clone()
    })
}

/// How often the relay's counters are handed to `/metrics`.
const FIGURES_EVERY: Duration = Duration::from_secs(1);

/// The host's own addresses for the peer policy (`turn::server::Config::own_addresses`):
/// every interface's (getifaddrs(3)) and `extra` (the listener's and the advertised relay
/// address, in case listing fails).
fn own_addresses(extra: &[IpAddr]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces.iter().map(if_addrs::Interface::ip).collect(),
        Err(e) => {
            tracing::warn!(
                "TURN cannot list the interface addresses ({e}): only the listener's count as \
                 the server's own"
            );
            Vec::new()
        }
    };
    out.extend(extra.iter().copied());
    out.retain(|ip| !ip.is_unspecified());
    out.sort_unstable();
    out.dedup();
    out
}

/// A TCP client with an allocation silent for `turn.max_lifetime` plus this is closed. Clients
/// with an allocation send a Refresh within its lifetime, so only dead connections reach it;
/// their allocation is deleted with them.
const TCP_IDLE_MARGIN: Duration = Duration::from_secs(60);

/// TURN settings beyond the listener address.
#[derive(Debug, Clone)]
pub struct TurnOptions {
    /// The state machine's settings (`turn.realm`, `turn.users`, …). `password_hook` is set at
    /// start from [`TurnOptions::hook_url`].
    pub server: ::turn::server::Config,
    /// `turn.relay_port_range`: UDP ports relay sockets are bound on.
    pub relay_port_range: RangeInclusive<u16>,
    /// `turn.hook_url`: base URL of `GET /password` and `POST /events` (seed 000).
    pub hook_url: Option<String>,
    /// How long a hook call may take. Default: 5 s.
    pub hook_timeout: Duration,
    /// A TCP client's first complete STUN message (or ChannelData frame) must arrive within
    /// this of the accept, or the connection is closed: a client that connects and sends
    /// nothing, or one byte, holds a task, a socket and a 64 KiB buffer. Default: 5 s.
    pub tcp_first_message_timeout: Duration,
    /// A TCP client must have an allocation within this of the accept, or the connection is
    /// closed, however much it sends: a 401 round trip, the Allocate and a password hook
    /// (`hook_timeout`) fit well inside. After its allocation the connection lives until it
    /// is silent for `turn.max_lifetime` + 60 s; when the allocation ends (a Refresh to 0,
    /// expiry) and the connection stays, it gets this long again to allocate. Default: 20 s.
    pub tcp_allocation_timeout: Duration,
    /// Most TCP connections without an allocation at once; a new one past it is closed at
    /// accept (and counted in a warning logged at most every 10 s). Clients that allocate
    /// leave the count at once, so a flood of idle connections cannot hold more than this
    /// many sockets, for at most `tcp_allocation_timeout` each. Default: 256.
    pub tcp_max_unallocated: usize,
}

impl Default for TurnOptions {
    /// The config table's defaults.
    fn default() -> Self {
        TurnOptions::from(&config::Config::default())
    }
}

impl From<&config::Config> for TurnOptions {
    /// `[turn]`; the settings that are not config keys at their documented defaults (the
    /// state machine's own, from `turn::server::Config::default`).
    fn from(config: &config::Config) -> Self {
        let t = &config.turn;
        let count = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        let server = ::turn::server::Config {
            realm: t.realm.clone(),
            external_ip: t.external_ip,
            max_allocations: count(t.max_allocations),
            max_allocations_per_user: count(t.max_allocations_per_user),
            max_lifetime: t.max_lifetime,
            bytes_per_second_per_allocation: t.max_bytes_per_second,
            users: t
                .users
                .iter()
                .map(|u| (u.name.clone(), u.password.expose().to_owned()))
                .collect(),
            auth_secret: (!t.auth_secret.is_empty()).then(|| t.auth_secret.expose().to_owned()),
            allow_peers: t
                .allow_peers
                .iter()
                .flat_map(config::IpRange::blocks)
                .filter_map(|(addr, len)| ::turn::policy::Cidr::new(addr, len))
                .collect(),
            password_hook: t.hook_url.is_some(),
            ..::turn::server::Config::default()
        };
        TurnOptions {
            server,
            relay_port_range: t.relay_port_range.clone(),
            hook_url: t.hook_url.clone(),
            hook_timeout: Duration::from_secs(5),
            tcp_first_message_timeout: Duration::from_secs(5),
            tcp_allocation_timeout: Duration::from_secs(20),
            tcp_max_unallocated: 256,
        }
    }
}

/// Binds UDP and TCP on one port (with port 0: the port UDP got, retried a few times if TCP
/// cannot have it) and starts the owner task. Returns the bound address.
pub(crate) async fn start(
    addr: SocketAddr,
    options: TurnOptions,
    registry: registry::Registry,
    limits: crate::limits::Limits,
    links: Links,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let Links {
        figures,
        credentials,
        drain,
        events,
    } = links;
    let (udp, tcp) = bind_pair(addr).await?;
    let bound = udp.local_addr()?;
    let relay_ip = relay_ip(bound.ip());
    tracing::info!(
        "TURN listening on udp://{bound} and tcp://{bound} (relay {relay_ip}, ports {}-{})",
        options.relay_port_range.start(),
        options.relay_port_range.end()
    );
    let mut config = options.server.clone();
    config.auth_secret = Some(rest_secret(&options));
    config.password_hook = options.hook_url.is_some();
    config.own_addresses = own_addresses(&[bound.ip(), relay_ip]);
    // The webhook handler keeps the accepting defaults of the per-packet vetoes, so the
    // driver may relay published channels itself.
    config.publish_channels = true;
    tracing::debug!(own = ?config.own_addresses, "TURN peer policy: the server's own addresses");
    let hooks: Option<Arc<dyn TurnHooks>> = match &options.hook_url {
        Some(url) => {
            let mut hook_config = TurnHookConfig::new(url.as_str(), config.realm.as_str());
            hook_config.timeout = options.hook_timeout;
            let hooks = HttpTurnHooks::new(hook_config).context("TURN web hooks")?;
            Some(Arc::new(hooks))
        }
        None => None,
    };
    let handler = WebhookHandler::new(hooks.clone(), events);
    let (tcp_tx, tcp_rx) = mpsc::channel(TCP_IN_QUEUE);
    let (peer_tx, peer_rx) = mpsc::channel(PEER_QUEUE);
    let (client_tx, client_rx) = mpsc::channel(CLIENT_QUEUE);
    let (pw_tx, pw_rx) = mpsc::channel(config.max_parked_auth.max(1));
    let plane = data_plane()?;
    // Registered with the data plane's reactor, where its reader runs.
    let udp = udp.into_std()?;
    let udp = {
        let _plane = plane.enter();
        Arc::new(UdpSocket::from_std(udp)?)
    };
    let fast = Arc::new(FastPath::default());
    let span = tracing::info_span!("turn", %bound);
    // The readers are not instrumented with the span: entering it on every poll cost a few
    // per cent of the CPU per relayed packet, and their few log lines name their sockets.
    let listener = plane.spawn(fast::listener(
        Arc::clone(&udp),
        Arc::clone(&fast),
        client_tx,
    ));
    let owner = Owner {
        server: ::turn::server::Server::with_handler(config, rand::random(), Box::new(handler)),
        udp,
        fast,
        listener,
        plane,
        relayed_by_owner_reported: 0,
        local: bound,
        relay_ip,
        relay_ports: options.relay_port_range,
        relays: HashMap::new(),
        tcp_clients: HashMap::new(),
        limits,
        tcp_unallocated: 0,
        tcp_max_unallocated: options.tcp_max_unallocated,
        tcp_refused: 0,
        tcp_refusal_logged: None,
        tcp_limits: TcpLimits {
            first_message: options.tcp_first_message_timeout,
            allocation: options.tcp_allocation_timeout,
            idle: options.server.max_lifetime + TCP_IDLE_MARGIN,
        },
        peer_tx,
        pw_tx,
        hooks,
        tcp_dropped: 0,
        figures,
        credentials,
        drain,
        draining: false,
    };
    let task = tokio::spawn(
        owner
            .run(
                tcp, registry, tcp_tx, tcp_rx, client_rx, peer_rx, pw_rx, shutdown,
            )
            .instrument(span),
    );
    Ok((bound, task))
}

async fn bind_pair(addr: SocketAddr) -> anyhow::Result<(UdpSocket, TcpListener)> {
    let attempts = if addr.port() == 0 { 8 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(addr)
            .await
            .with_context(|| format!("bind TURN UDP on {addr}"))?;
        let port_addr = udp.local_addr()?;
        grow_recv_buffer(socket2::SockRef::from(&udp));
        match TcpListener::bind(port_addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    let e = last.map_or_else(|| anyhow::anyhow!("no attempt"), anyhow::Error::from);
    Err(e.context(format!("bind TURN TCP on {addr}")))
}

/// The IP relay sockets advertise: the listener's, or for a wildcard listener the address of
/// the interface holding the default route (a connected UDP socket sends nothing), else
/// loopback: a host without a route is reachable only there, and a wildcard address in
/// XOR-RELAYED-ADDRESS would be unusable to any client. Behind NAT set `turn.external_ip`.
pub(crate) fn relay_ip(listener: IpAddr) -> IpAddr {
    if !listener.is_unspecified() {
        return listener;
    }
    let probe: SocketAddr = match listener {
        IpAddr::V4(_) => (Ipv4Addr::new(192, 0, 2, 1), 9).into(),
        IpAddr::V6(_) => (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 9).into(),
    };
    let loopback = match listener {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    std::net::UdpSocket::bind(SocketAddr::new(listener, 0))
        .and_then(|s| s.connect(probe).and_then(|()| s.local_addr()))
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(loopback)
}

/// A datagram the UDP listener received that the fast path did not take.
struct ClientPacket {
    client: SocketAddr,
    bytes: Vec<u8>,
}

/// A datagram a relay socket received that the fast path did not take.
struct PeerPacket {
    relay: SocketAddr,
    peer: SocketAddr,
    bytes: Vec<u8>,
}

struct Relay {
    socket: Arc<UdpSocket>,
    reader: JoinHandle<()>,
}

struct Owner {
    server: ::turn::server::Server,
    udp: Arc<UdpSocket>,
    /// The published channels, read by the listener task and the relay readers.
    fast: Arc<FastPath>,
    /// The UDP listener's reader task.
    listener: JoinHandle<()>,
    /// Where the readers run and the UDP sockets are registered ([`data_plane`]).
    plane: tokio::runtime::Handle,
    /// `Stats::relayed_packets` at the last report (for the debug log of the split).
    relayed_by_owner_reported: u64,
    local: SocketAddr,
    relay_ip: IpAddr,
    relay_ports: RangeInclusive<u16>,
    relays: HashMap<SocketAddr, Relay>,
    tcp_clients: HashMap<SocketAddr, TcpClient>,
    /// The process-wide connection caps every TCP listener shares.
    limits: crate::limits::Limits,
    /// Entries of `tcp_clients` without an allocation yet.
    tcp_unallocated: usize,
    tcp_max_unallocated: usize,
    /// Connections closed at accept because `tcp_unallocated` was at the cap.
    tcp_refused: u64,
    tcp_refusal_logged: Option<Instant>,
    tcp_limits: TcpLimits,
    peer_tx: mpsc::Sender<PeerPacket>,
    pw_tx: mpsc::Sender<(AuthRequestId, Option<String>)>,
    /// The seed 000 hooks, when `turn.hook_url` is set.
    hooks: Option<Arc<dyn TurnHooks>>,
    tcp_dropped: u64,
    /// The relay's counters for `/metrics`, refreshed every [`FIGURES_EVERY`].
    figures: watch::Sender<Option<api::TurnFigures>>,
    /// `turn.users` and `turn.auth_secret` as the running config has them.
    credentials: watch::Receiver<Credentials>,
    /// Turns true when `turn.port` moved: this relay takes no new allocation and ends once
    /// its last one does (the new port's relay reports the figures meanwhile).
    drain: watch::Receiver<bool>,
    draining: bool,
}

impl Owner {
    #[allow(clippy::too_many_arguments)]
    async fn run(
        mut self,
        tcp: TcpListener,
        registry: registry::Registry,
        tcp_tx: mpsc::Sender<TcpMsg>,
        mut tcp_rx: mpsc::Receiver<TcpMsg>,
        mut client_rx: mpsc::Receiver<ClientPacket>,
        mut peer_rx: mpsc::Receiver<PeerPacket>,
        mut pw_rx: mpsc::Receiver<(AuthRequestId, Option<String>)>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut conns = tokio::task::JoinSet::new();
        // One timer for the life of the loop, re-armed only when the state machine's deadline
        // moves: a fresh timer per packet costs a timer-wheel insert and removal each time.
        let far = || Instant::now() + Duration::from_secs(3600);
        let mut armed = self.server.poll_timeout().map(Instant::from_std);
        let timer = tokio::time::sleep_until(armed.unwrap_or_else(far));
        tokio::pin!(timer);
        let mut reread =
            tokio::time::interval_at(Instant::now() + OWN_ADDRESSES_EVERY, OWN_ADDRESSES_EVERY);
        let mut report = tokio::time::interval(FIGURES_EVERY);
        loop {
            let deadline = self.server.poll_timeout().map(Instant::from_std);
            if deadline != armed {
                armed = deadline;
                timer.as_mut().reset(deadline.unwrap_or_else(far));
            }
            tokio::select! {
                Some(p) = client_rx.recv() => {
                    // Take what else is already queued (up to a batch) before going back to
                    // select: one wake-up for many datagrams under load.
                    self.udp_client(p);
                    for _ in 1..BATCH {
                        let Ok(p) = client_rx.try_recv() else { break };
                        self.drain().await;
                        self.udp_client(p);
                    }
                }
                accepted = tcp.accept() => match accepted {
                    Ok((socket, client)) => {
                        if let Some(conn) = self.tcp_accept(socket, client, &registry, &tcp_tx) {
                            conns.spawn(conn);
                        }
                    }
                    Err(e) => {
                        tracing::error!("TURN accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(msg) = tcp_rx.recv() => match msg {
                    TcpMsg::Frame { transport, bytes } => {
                        let (now, unix) = clocks();
                        self.server.handle_client(now, unix, transport, &bytes);
                        // A Refresh to 0 deletes the allocation at once.
                        self.tcp_allocations_lost(Some(transport.client));
                    }
                    TcpMsg::Closed { transport } => {
                        if let Some(c) = self.tcp_clients.remove(&transport.client) {
                            if !c.has_allocation() {
                                self.tcp_unallocated -= 1;
                            }
                        }
                        self.server.close_transport(clocks().0, transport);
                    }
                },
                Some(p) = peer_rx.recv() => {
                    self.server.handle_peer(clocks().0, p.relay, p.peer, &p.bytes);
                    for _ in 1..BATCH {
                        let Ok(p) = peer_rx.try_recv() else { break };
                        self.drain().await;
                        self.server.handle_peer(clocks().0, p.relay, p.peer, &p.bytes);
                    }
                }
                Some((request, password)) = pw_rx.recv() => {
                    self.server.provide_password(clocks().0, request, password);
                }
                () = &mut timer, if armed.is_some() => {
                    self.server.handle_timeout(clocks().0);
                    self.tcp_allocations_lost(None);
                }
                _ = reread.tick() => {
                    let own = own_addresses(&[self.local.ip(), self.relay_ip]);
                    if own != self.server.config().own_addresses {
                        tracing::info!(?own, "TURN: the server's addresses changed");
                        self.server.set_own_addresses(own);
                    }
                }
                Ok(()) = self.credentials.changed() => {
                    let (users, secret) = self.credentials.borrow_and_update().clone();
                    tracing::info!(users = users.len(), "TURN credentials changed");
                    self.server.set_credentials(users, secret);
                }
                Ok(()) = self.drain.changed(), if !self.draining => {
                    if *self.drain.borrow_and_update() {
                        self.draining = true;
                        self.server.set_draining(true);
                        tracing::info!(
                            allocations = self.server.stats().allocations,
                            "TURN moved to another port: this one ends with its last allocation"
                        );
                    }
                }
                _ = report.tick() => {
                    let (packets, bytes) = self.fast.take_counts();
                    let before = self.server.stats().relayed_packets;
                    self.server.count_relayed(packets, bytes);
                    let stats = self.server.stats();
                    if stats.relayed_packets != self.relayed_by_owner_reported {
                        tracing::debug!(
                            fast = packets,
                            owner = before - self.relayed_by_owner_reported,
                            "TURN packets relayed in the last second"
                        );
                    }
                    self.relayed_by_owner_reported = stats.relayed_packets;
                    if self.draining {
                        if stats.allocations == 0 {
                            tracing::info!("TURN on the old port drained");
                            break;
                        }
                        continue;
                    }
                    self.figures.send_replace(Some(api::TurnFigures {
                        allocations: stats.allocations as u64,
                        relayed_bytes: stats.relayed_bytes,
                        relayed_packets: stats.relayed_packets,
                        auth_failures: stats.auth_failures,
                        dropped: stats.malformed + stats.discarded,
                    }));
                }
                Some(_) = conns.join_next() => {}
                _ = shutdown.changed() => break,
            }
            self.drain().await;
        }
        self.listener.abort();
        for (_, relay) in self.relays.drain() {
            relay.reader.abort();
        }
        conns.abort_all();
    }

    /// A datagram from a UDP client that the fast path did not take.
    fn udp_client(&mut self, p: ClientPacket) {
        let transport = Transport {
            protocol: Protocol::Udp,
            client: p.client,
            server: self.local,
        };
        let (now, unix) = clocks();
        self.server.handle_client(now, unix, transport, &p.bytes);
    }

    /// Carries out every pending output (the drain rule).
    async fn drain(&mut self) {
        while let Some(out) = self.server.poll_output() {
            match out {
                Output::ToClient { to, bytes } => self.send_to_client(to, bytes).await,
                Output::ToPeer { relay, peer, bytes } => {
                    if let Some(r) = self.relays.get(&relay) {
                        if let Err(e) = r.socket.send_to(&bytes, peer).await {
                            tracing::debug!("relay {relay} to {peer}: {e}");
                        }
                    }
                }
                Output::AllocateRelay {
                    request,
                    transport,
                    family,
                    port,
                } => {
                    let result = self.bind_relay(family, port);
                    self.server.relay_allocated(clocks().0, request, result);
                    if transport.protocol == Protocol::Tcp && self.server.has_allocation(&transport)
                    {
                        self.tcp_allocated(transport.client);
                    }
                }
                Output::ReleaseRelay { relay } => self.release(relay),
                Output::PublishChannel {
                    transport,
                    relay,
                    channel,
                    peer,
                    expires,
                } => {
                    // Only UDP clients of this listener are published.
                    if let Some(r) = self.relays.get(&relay) {
                        let socket = Arc::clone(&r.socket);
                        self.fast
                            .publish(transport.client, relay, socket, channel, peer, expires);
                    }
                }
                Output::WithdrawChannel {
                    transport,
                    relay,
                    channel,
                    peer,
                } => self.fast.withdraw(transport.client, relay, channel, peer),
                Output::PasswordRequest {
                    request,
                    username,
                    realm: _,
                    client,
                } => match &self.hooks {
                    Some(hooks) => {
                        // Off the owner task: the state machine parks the request (at most
                        // `max_parked_auth`, each answered 401 after `password_timeout`).
                        let (hooks, answer) = (Arc::clone(hooks), self.pw_tx.clone());
                        tokio::spawn(
                            async move {
                                let password = hooks.password(&username, client).await;
                                let _ = answer.send((request, password)).await;
                            }
                            .instrument(tracing::Span::current()),
                        );
                    }
                    None => self.server.provide_password(clocks().0, request, None),
                },
            }
        }
    }

    async fn send_to_client(&mut self, to: Transport, bytes: Vec<u8>) {
        match to.protocol {
            Protocol::Udp => {
                if let Err(e) = self.udp.send_to(&bytes, to.client).await {
                    tracing::debug!("TURN UDP send to {}: {e}", to.client);
                }
            }
            Protocol::Tcp => {
                let Some(c) = self.tcp_clients.get(&to.client) else {
                    return;
                };
                if c.out.try_send(bytes).is_err() {
                    self.tcp_dropped += 1;
                    if self.tcp_dropped % WARN_EVERY == 1 {
                        tracing::warn!(
                            dropped = self.tcp_dropped,
                            "TURN TCP client not reading: messages dropped"
                        );
                    }
                }
            }
        }
    }

    /// A UDP socket on a random free port of the relay range (even, or even with the next one
    /// bound too and kept for a reservation, as `port` asks), its reader task started; or the
    /// socket a reservation kept.
    fn bind_relay(
        &mut self,
        family: AddressFamily,
        port: RelayPort,
    ) -> Result<SocketAddr, RelayError> {
        if let RelayPort::Reserved(relay) = port {
            // Kept since the reservation was made, its reader running (what peers sent it
            // meanwhile was dropped: no allocation had it).
            return if self.relays.contains_key(&relay) {
                Ok(relay)
            } else {
                Err(RelayError::Failed)
            };
        }
        // A wildcard listener gets wildcard relays (peers may come in on any interface); the
        // advertised address is `relay_ip` either way.
        let bind_ip = self.local.ip();
        let family_ok = match family {
            AddressFamily::Ipv4 => bind_ip.is_ipv4(),
            AddressFamily::Ipv6 => bind_ip.is_ipv6(),
        };
        if !family_ok {
            return Err(RelayError::FamilyUnsupported);
        }
        let even = port != RelayPort::Any;
        let pair = port == RelayPort::EvenReserveNext;
        let (first, last) = (*self.relay_ports.start(), *self.relay_ports.end());
        let span = usize::from(last - first) + 1;
        for _ in 0..BIND_ATTEMPTS.min(span.saturating_mul(2)) {
            let mut port = rand::random_range(first..=last);
            if even && port % 2 == 1 {
                port = if port == last { port - 1 } else { port + 1 };
            }
            if pair && port == last {
                port = port.saturating_sub(2);
            }
            if port < first || (pair && port >= last) {
                continue;
            }
            let Some(socket) = bind_port(bind_ip, port)? else {
                continue;
            };
            let next = if pair {
                match bind_port(bind_ip, port + 1)? {
                    Some(next) => Some(next),
                    None => continue,
                }
            } else {
                None
            };
            let relay = self.register(port, socket)?;
            if let Some(next) = next {
                if let Err(e) = self.register(port + 1, next) {
                    self.release(relay);
                    return Err(e);
                }
            }
            return Ok(relay);
        }
        tracing::warn!("TURN relay ports {first}-{last} exhausted");
        Err(RelayError::Exhausted)
    }

    /// Starts the reader of a bound relay socket and keeps it under its advertised address.
    fn register(
        &mut self,
        port: u16,
        socket: std::net::UdpSocket,
    ) -> Result<SocketAddr, RelayError> {
        grow_recv_buffer(socket2::SockRef::from(&socket));
        let _plane = self.plane.enter();
        let socket = match socket
            .set_nonblocking(true)
            .and_then(|()| UdpSocket::from_std(socket))
        {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::warn!("TURN relay socket: {e}");
                return Err(RelayError::Failed);
            }
        };
        let relay = SocketAddr::new(self.relay_ip, port);
        let reader = self.plane.spawn(fast::relay_reader(
            Arc::clone(&socket),
            relay,
            self.peer_tx.clone(),
            Arc::clone(&self.udp),
            Arc::clone(&self.fast),
        ));
        if let Some(old) = self.relays.insert(relay, Relay { socket, reader }) {
            self.fast.release(relay);
            old.reader.abort();
        }
        Ok(relay)
    }

    /// Closes the relay socket at `relay` (its reader and the fast path's table hold the
    /// other references; the table drops its entries here).
    fn release(&mut self, relay: SocketAddr) {
        self.fast.release(relay);
        if let Some(r) = self.relays.remove(&relay) {
            r.reader.abort();
        }
    }
}

/// The TURN relays' data plane: one thread running a single-threaded runtime of its own, on
/// which the UDP listener's and the relay sockets' readers run (the fast path) and with whose
/// reactor those sockets are registered; started by the first relay, shared by all. On the
/// server's multi-threaded runtime each datagram woke a reader on one worker and often
/// unparked the other to steal it (a futex wake and a context switch per packet); here the
/// thread that waits in epoll runs the reader and sends, and the relays' packets do not wait
/// behind the rest of the server's tasks. The owner task stays on the server's runtime and
/// sends on these sockets from there (a tokio socket may be used from any runtime while the
/// one holding its registration runs, and this one runs for the life of the process).
fn data_plane() -> anyhow::Result<tokio::runtime::Handle> {
    static PLANE: std::sync::Mutex<Option<tokio::runtime::Handle>> = std::sync::Mutex::new(None);
    let mut plane = PLANE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(handle) = plane.as_ref() {
        return Ok(handle.clone());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("TURN data plane runtime")?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("turn-relay".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .context("TURN data plane thread")?;
    *plane = Some(handle.clone());
    Ok(handle)
}

/// A UDP socket on `ip:port`, or `None` when the port is taken.
fn bind_port(ip: IpAddr, port: u16) -> Result<Option<std::net::UdpSocket>, RelayError> {
    match std::net::UdpSocket::bind(SocketAddr::new(ip, port)) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Ok(None),
        Err(e) => {
            tracing::warn!("TURN relay bind on {ip}:{port}: {e}");
            Err(RelayError::Failed)
        }
    }
}

/// The server's clock and the UNIX time (REST credential expiry).
fn clocks() -> (std::time::Instant, u64) {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (Instant::now().into_std(), unix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_addresses_are_the_interfaces_and_the_listener() {
        let extra: IpAddr = "192.0.2.44".parse().expect("ip");
        let own = own_addresses(&[extra, IpAddr::V4(Ipv4Addr::UNSPECIFIED)]);
        assert!(own.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)), "{own:?}");
        assert!(own.contains(&extra), "{own:?}");
        assert!(!own.iter().any(IpAddr::is_unspecified), "{own:?}");
        let mut sorted = own.clone();
        sorted.dedup();
        assert_eq!(sorted, own);
    }

    #[test]
    fn relay_ip_keeps_a_specific_listener_address() {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        assert_eq!(relay_ip(ip), ip);
    }
}
