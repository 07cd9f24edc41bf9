//! The WebRTC driver (WHEP play, WHIP publish): one UDP socket (`rtc.port`) for every peer,
//! ICE-lite, DTLS-SRTP, around str0m's sans-IO [`Rtc`].
//!
//! ```text
//!  api (POST whep/whip) ─▶ Engine::offer: on_play / on_publish (schema rtc), Rtc + answer
//!                                 │ Command::Add (mpsc 64)
//!                                 ▼
//!  UDP socket ── recv_from ─▶ driver task ── demux: STUN USERNAME ufrag, then remote address
//!  outputs' Notify ─────────▶   │  players: RtcReader::try_recv ─▶ Writer::write
//!  tick (250 ms) ───────────▶   │  publishers: MediaData ─▶ Frame ─▶ PublisherGuard::push
//!                               └─ poll_output until Timeout: Transmit ─▶ send_to
//! ```
//!
//! One task holds every peer: peers are not a task each, and all of them share the socket.
//! Str0m's drain rule holds: after each input the peer's `poll_output` is drained until it
//! answers a timeout, and the task sleeps until the earliest of those.
//!
//! Bounds: at most `rtc.maxPeers` peers (an offer beyond gets 503); a peer that has not
//! finished ICE and DTLS within `rtc.connectTimeoutSec` is dropped, and so is one that has
//! sent nothing (no STUN consent, no media) for `rtc.timeoutSec`. A player's backlog is its
//! place in the stream's [`outputs::WebRtcOutput`] ring (`rtc.maxQueueBytes`): one that falls
//! behind skips to a keyframe, and one that keeps falling behind is dropped. A picture loss
//! report (PLI/FIR) is answered from the GOP cache, at most once a second, and never reaches
//! the publisher.

use crate::server::Shared;
use api::webrtc::{BoxFuture, IceServer, RtcAnswer, RtcKind, RtcOffer, RtcRefusal, WebRtc};
use bytes::Bytes;
use media::{Codec, Frame, StreamKey, TrackInfo, TrackKind};
use outputs::{RtcFrame, RtcReader};
use registry::{Ended, Protocol, PublisherGuard, SessionInfo, Viewer};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::media::{Direction, KeyframeRequest, MediaData, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol as NetProtocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Notify};

mod tcp;

/// Largest datagram read (the UDP maximum).
const RECV_BUF: usize = 0xFFFF;
/// Offers answered but not yet taken over by the driver.
const COMMAND_QUEUE: usize = 64;
/// How often kicks, closed streams and deadlines are looked at.
const TICK: Duration = Duration::from_millis(250);
/// How often a WHIP publisher is asked for a keyframe (a GOP for the stream's other outputs).
const PUBLISHER_KEYFRAME_INTERVAL: Duration = Duration::from_secs(2);
/// A player's picture loss reports are answered at most this often.
const PLI_INTERVAL: Duration = Duration::from_secs(1);
/// Frames handed to one player per wake-up before the others get theirs.
const FRAMES_PER_WAKE: usize = 64;
/// Why a session the client DELETEd ended.
const DELETED: &str = "deleted by the client";
/// Random bytes of a delete token (as hex-like text, twice as many characters).
const SESSION_ID_BYTES: usize = 16;

/// `[rtc]` as the driver takes it.
#[derive(Debug, Clone)]
pub struct RtcOptions {
    /// The UDP socket's address (`rtc.port`); `None` = WebRTC off.
    pub addr: Option<SocketAddr>,
    /// The ICE-TCP passive listener's address (`rtc.tcpPort`); `None` = off.
    pub tcp_addr: Option<SocketAddr>,
    /// `rtc.externIP`: the candidate address; `None` = the default-route interface's.
    pub extern_ip: Option<IpAddr>,
    /// `rtc.maxPeers`.
    pub max_peers: usize,
    /// `rtc.connectTimeoutSec`.
    pub connect_timeout: Duration,
    /// `rtc.timeoutSec`.
    pub idle_timeout: Duration,
    /// `rtc.maxQueueBytes`.
    pub max_queue_bytes: usize,
}

impl From<&config::Config> for RtcOptions {
    fn from(c: &config::Config) -> Self {
        RtcOptions {
            addr: c
                .rtc
                .listen_port()
                .map(|p| SocketAddr::from(([0, 0, 0, 0], p))),
            tcp_addr: c
                .rtc
                .tcp_listen_port()
                .map(|p| SocketAddr::from(([0, 0, 0, 0], p))),
            extern_ip: c.rtc.extern_ip,
            max_peers: usize::try_from(c.rtc.max_peers).unwrap_or(usize::MAX),
            connect_timeout: c.rtc.connect_timeout,
            idle_timeout: c.rtc.timeout,
            max_queue_bytes: usize::try_from(c.rtc.max_queue_bytes).unwrap_or(usize::MAX),
        }
    }
}

/// Gives the ICE servers an answer carries (the embedded TURN relay's short-lived
/// credentials), for the client's `host`.
pub(crate) type IceServers = Arc<dyn Fn(Option<&str>) -> Vec<IceServer> + Send + Sync>;

/// How long the TURN credentials of an answer stay valid: long enough for a session's ICE
/// restarts and allocation refreshes, short enough that a leaked one soon expires.
const TURN_CREDENTIAL_TTL: Duration = Duration::from_secs(3600);

/// The embedded TURN relay as ICE servers (UDP and TCP) with REST credentials (the coturn
/// convention: `expiry:name`, `base64(HMAC-SHA1(secret, username))`), or none while the relay
/// is off (`turn_port` 0). The URLs name `external_ip`, else the host the client asked for.
pub(crate) fn turn_ice_servers(
    turn_port: Arc<std::sync::atomic::AtomicU16>,
    credentials: tokio::sync::watch::Receiver<crate::turn::Credentials>,
    external_ip: Option<IpAddr>,
) -> IceServers {
    Arc::new(move |host: Option<&str>| {
        let port = turn_port.load(Ordering::Relaxed);
        let Some(secret) = credentials.borrow().1.clone() else {
            return Vec::new();
        };
        let host = match (external_ip, host) {
            (Some(IpAddr::V6(ip)), _) => format!("[{ip}]"),
            (Some(ip), _) => ip.to_string(),
            (None, Some(host)) => host.to_owned(),
            (None, None) => return Vec::new(),
        };
        if port == 0 {
            return Vec::new();
        }
        let expiry = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(TURN_CREDENTIAL_TTL)
            .as_secs();
        let username = format!("{expiry}:rtc{}", random_text(8));
        let credential = ::turn::auth::rest_password(secret.as_bytes(), &username);
        ["udp", "tcp"]
            .iter()
            .map(|transport| IceServer {
                url: format!("turn:{host}:{port}?transport={transport}"),
                username: username.clone(),
                credential: credential.clone(),
            })
            .collect()
    })
}

/// The engine the api's signalling routes call.
pub(crate) struct Engine {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    /// The candidate every answer carries.
    candidate: SocketAddr,
    /// The ICE-TCP passive candidate, when `rtc.tcpPort` is on.
    tcp_candidate: Option<SocketAddr>,
    peers: Arc<AtomicUsize>,
    max_peers: usize,
    /// Session id → delete token, for `delete_webrtc`.
    tokens: Arc<Mutex<HashMap<u64, String>>>,
    crypto: Arc<str0m::config::CryptoProvider>,
    ice_servers: IceServers,
}

enum Command {
    Add(Box<Peer>),
    Close(u64),
    /// An ICE-TCP connection from `SocketAddr` opened: frames for it go to the sender.
    TcpOpen(SocketAddr, mpsc::Sender<Bytes>),
    /// It sent a frame (RFC 6544 §3: RFC 4571 framing).
    TcpFrame(SocketAddr, Bytes),
    TcpClosed(SocketAddr),
}

/// Binds the socket and starts the driver; the bound address and the engine.
pub(crate) async fn start(
    options: &RtcOptions,
    shared: Arc<Shared>,
    ice_servers: IceServers,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<(SocketAddr, Arc<Engine>)>> {
    use anyhow::Context;
    let Some(addr) = options.addr else {
        return Ok(None);
    };
    let socket = UdpSocket::bind(addr)
        .await
        .with_context(|| format!("bind WebRTC UDP on {addr}"))?;
    let bound = socket.local_addr().context("WebRTC socket address")?;
    let ip = options
        .extern_ip
        .unwrap_or_else(|| crate::turn::relay_ip(bound.ip()));
    let candidate = SocketAddr::new(ip, bound.port());
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let tcp_candidate = match options.tcp_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("bind WebRTC ICE-TCP on {addr}"))?;
            let bound = listener.local_addr().context("ICE-TCP address")?;
            tracing::info!(%bound, "WebRTC listening (ICE-TCP passive)");
            tokio::spawn(tcp::accept(
                listener,
                tx.clone(),
                options.max_peers,
                options.connect_timeout,
                options.idle_timeout,
                shutdown.clone(),
            ));
            Some(SocketAddr::new(ip, bound.port()))
        }
        None => None,
    };
    let peers = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(Mutex::new(HashMap::new()));
    let driver = Driver {
        socket,
        // What str0m matches a datagram's destination against: the one candidate it offered
        // (a wildcard socket does not tell which of the host's addresses was hit).
        local: candidate,
        tcp_local: tcp_candidate,
        tcp_out: HashMap::new(),
        commands: rx,
        notify: Arc::new(Notify::new()),
        peers: HashMap::new(),
        by_ufrag: HashMap::new(),
        by_addr: HashMap::new(),
        count: Arc::clone(&peers),
        tokens: Arc::clone(&tokens),
        connect_timeout: options.connect_timeout,
        idle_timeout: options.idle_timeout,
    };
    tokio::spawn(driver.run(shutdown));
    tracing::info!(%bound, %candidate, "WebRTC listening (UDP)");
    let engine = Engine {
        shared,
        commands: tx,
        candidate,
        tcp_candidate,
        peers,
        max_peers: options.max_peers,
        tokens,
        crypto: Arc::new(str0m::crypto::from_feature_flags()),
        ice_servers,
    };
    Ok(Some((bound, Arc::new(engine))))
}

impl WebRtc for Engine {
    fn offer(&self, offer: RtcOffer) -> BoxFuture<'_, Result<RtcAnswer, RtcRefusal>> {
        Box::pin(self.answer(offer))
    }

    fn delete(&self, id: &str, token: &str) -> bool {
        let Ok(id) = id.parse::<u64>() else {
            return false;
        };
        let known = lock(&self.tokens)
            .get(&id)
            .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()));
        if known {
            lock(&self.tokens).remove(&id);
            // The driver may be busy: a full queue leaves the session to its timeouts, but
            // its token is gone already, so it cannot be deleted twice.
            let _ = self.commands.try_send(Command::Close(id));
        }
        known
    }
}

/// A reserved place among `rtc.maxPeers`, given back when the peer goes.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Engine {
    async fn answer(&self, offer: RtcOffer) -> Result<RtcAnswer, RtcRefusal> {
        let slot = self.reserve()?;
        let sdp = SdpOffer::from_sdp_string(&offer.sdp)
            .map_err(|e| RtcRefusal::BadOffer(e.to_string()))?;
        let id = self.shared.registry.next_session_id();
        let info = SessionInfo {
            id,
            protocol: Protocol::Rtc,
            peer: offer.peer,
            local: offer.local,
            params: offer.params.clone(),
        };
        let (role, tracks) = match offer.kind {
            RtcKind::Play => self.admit_player(&offer.key, info).await?,
            RtcKind::Publish => self.admit_publisher(offer.key.clone(), info).await?,
        };
        let ufrag = random_text(8);
        let mut config = Rtc::builder()
            .set_ice_lite(true)
            .set_crypto_provider(Arc::clone(&self.crypto))
            .set_local_ice_credentials(IceCreds {
                ufrag: ufrag.clone(),
                pass: random_text(24),
            })
            .clear_codecs();
        let video = tracks.iter().find(|t| t.kind() == TrackKind::Video);
        let audio = tracks.iter().find(|t| t.kind() == TrackKind::Audio);
        config = match video.map(|t| t.codec) {
            Some(Codec::H264) => config.enable_h264(true),
            Some(Codec::H265) => config.enable_h265(true),
            _ => config,
        };
        config = match audio.map(|t| t.codec) {
            Some(Codec::Opus) => config.enable_opus(true, false),
            Some(Codec::G711A) => config.enable_pcma(true, false),
            Some(Codec::G711U) => config.enable_pcmu(true, false),
            _ => config,
        };
        let now = Instant::now();
        let mut rtc = config.build(now);
        let candidate = Candidate::host(self.candidate, "udp")
            .map_err(|e| RtcRefusal::Unavailable(format!("no usable candidate address: {e}")))?;
        rtc.add_local_candidate(candidate);
        if let Some(addr) = self.tcp_candidate {
            // RFC 6544: the browser connects (active), we accept (passive).
            if let Ok(tcp) = Candidate::builder()
                .tcp()
                .host(addr)
                .tcptype(str0m::net::TcpType::Passive)
                .build()
            {
                rtc.add_local_candidate(tcp);
            }
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(sdp)
            .map_err(|e| RtcRefusal::BadOffer(e.to_string()))?;
        let token = random_text(SESSION_ID_BYTES * 2);
        lock(&self.tokens).insert(id, token.clone());
        let peer = Peer {
            id,
            rtc,
            ufrag,
            role,
            created: now,
            connected: false,
            last_input: now,
            timeout: now,
            dirty: true,
            _slot: slot,
        };
        if self
            .commands
            .send(Command::Add(Box::new(peer)))
            .await
            .is_err()
        {
            lock(&self.tokens).remove(&id);
            return Err(RtcRefusal::Unavailable("the WebRTC driver stopped".into()));
        }
        Ok(RtcAnswer {
            id: id.to_string(),
            token,
            sdp: answer.to_sdp_string(),
            ice_servers: (self.ice_servers)(offer.host.as_deref()),
        })
    }

    fn reserve(&self) -> Result<Slot, RtcRefusal> {
        let before = self.peers.fetch_add(1, Ordering::Relaxed);
        let slot = Slot(Arc::clone(&self.peers));
        if before >= self.max_peers {
            return Err(RtcRefusal::Unavailable(format!(
                "too many WebRTC peers (rtc.maxPeers={})",
                self.max_peers
            )));
        }
        Ok(slot)
    }

    async fn admit_player(
        &self,
        key: &StreamKey,
        info: SessionInfo,
    ) -> Result<(Role, Vec<TrackInfo>), RtcRefusal> {
        let shared = &self.shared;
        let viewer = hooks::admit_play(
            &shared.hooks,
            &shared.registry,
            key,
            info,
            shared.max_stream_wait,
        )
        .await
        .map_err(|r| match r {
            hooks::PlayRefusal::Denied(msg) => RtcRefusal::Denied(msg),
            _ => RtcRefusal::NotFound,
        })?;
        let output = shared
            .outputs
            .webrtc(viewer.key())
            .await
            .ok_or(RtcRefusal::NotFound)?;
        let tracks = output.tracks();
        if tracks.is_empty() {
            return Err(RtcRefusal::BadOffer(
                "the stream has no track WebRTC can carry".into(),
            ));
        }
        Ok((
            Role::Player(Box::new(Player {
                viewer,
                output,
                reader: None,
                video: None,
                audio: None,
                last_pli: None,
                replay: false,
                clocks: [0; 2],
            })),
            tracks,
        ))
    }

    async fn admit_publisher(
        &self,
        key: StreamKey,
        info: SessionInfo,
    ) -> Result<(Role, Vec<TrackInfo>), RtcRefusal> {
        let shared = &self.shared;
        let guard = hooks::admit_publish(
            &shared.hooks,
            &shared.registry,
            key,
            info,
            &shared.protocol(),
        )
        .await
        .map_err(|r| match r {
            hooks::PublishRefusal::Denied(msg) => RtcRefusal::Denied(msg),
            hooks::PublishRefusal::AlreadyPublishing => RtcRefusal::AlreadyPublishing,
            other => RtcRefusal::BadOffer(other.to_string()),
        })?;
        tracing::info!(stream = %guard.key(), "WHIP publish admitted");
        // What WHIP ingest takes: H.264 video and Opus audio.
        let tracks = vec![
            TrackInfo::new(Codec::H264, Bytes::new()),
            TrackInfo::new(Codec::Opus, Bytes::new()),
        ];
        Ok((
            Role::Publisher(Box::new(Publisher {
                guard,
                video: None,
                last_keyframe_request: None,
                video_config: None,
                opus_track: false,
                start: None,
                bases: [None; 2],
            })),
            tracks,
        ))
    }
}

/// One peer: its str0m state and what it plays or publishes.
struct Peer {
    id: u64,
    rtc: Rtc,
    /// Our ICE username fragment, which the peer's STUN USERNAME starts with.
    ufrag: String,
    role: Role,
    created: Instant,
    connected: bool,
    last_input: Instant,
    /// When str0m wants `handle_input(Timeout)` next (its last `Output::Timeout`).
    timeout: Instant,
    /// Input or media went in since its output was last drained.
    dirty: bool,
    _slot: Slot,
}

enum Role {
    Player(Box<Player>),
    Publisher(Box<Publisher>),
}

struct Player {
    viewer: Viewer,
    output: Arc<outputs::WebRtcOutput>,
    /// Opened once ICE and DTLS are up (frames before would be dropped by str0m).
    reader: Option<RtcReader>,
    video: Option<(Mid, Pt)>,
    audio: Option<(Mid, Pt)>,
    last_pli: Option<Instant>,
    /// A loss report asked for the GOP again.
    replay: bool,
    /// The last RTP time written per track (video, audio), milliseconds: a replay of the GOP
    /// after a loss report must not step back.
    clocks: [u64; 2],
}

struct Publisher {
    guard: PublisherGuard,
    /// The video m-line the publisher sends on.
    video: Option<Mid>,
    /// When the last keyframe was asked for.
    last_keyframe_request: Option<Instant>,
    /// The avcC the video track was last set with.
    video_config: Option<Bytes>,
    opus_track: bool,
    /// When the first frame of any track arrived.
    start: Option<Instant>,
    /// Per track (video, audio): its first media time (ms) and that frame's place on the
    /// stream's timeline.
    bases: [Option<(u64, u64)>; 2],
}

struct Driver {
    socket: UdpSocket,
    local: SocketAddr,
    /// The ICE-TCP candidate (the destination of TCP input), when on.
    tcp_local: Option<SocketAddr>,
    /// Each ICE-TCP connection's writer, by the client's address.
    tcp_out: HashMap<SocketAddr, mpsc::Sender<Bytes>>,
    commands: mpsc::Receiver<Command>,
    /// Signalled by the WebRTC outputs after each frame.
    notify: Arc<Notify>,
    /// Every peer by session id. Only the peers with input or an expired timeout are polled
    /// after a wake-up, so a packet costs one peer's work, not every peer's.
    peers: HashMap<u64, Peer>,
    by_ufrag: HashMap<String, u64>,
    by_addr: HashMap<(NetProtocol, SocketAddr), u64>,
    count: Arc<AtomicUsize>,
    tokens: Arc<Mutex<HashMap<u64, String>>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
}

impl Driver {
    async fn run(mut self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut buf = vec![0u8; RECV_BUF];
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next = Instant::now() + TICK;
        loop {
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(next));
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, source)) => self.receive(NetProtocol::Udp, &buf[..n], source),
                    Err(e) => tracing::debug!("WebRTC socket: {e}"),
                },
                command = self.commands.recv() => match command {
                    Some(Command::Add(peer)) => self.add(*peer),
                    Some(Command::Close(id)) => self.close(id, DELETED),
                    Some(Command::TcpOpen(addr, out)) => {
                        self.tcp_out.insert(addr, out);
                    }
                    Some(Command::TcpFrame(addr, frame)) => {
                        self.receive(NetProtocol::Tcp, &frame, addr);
                    }
                    Some(Command::TcpClosed(addr)) => {
                        self.tcp_out.remove(&addr);
                        self.by_addr.remove(&(NetProtocol::Tcp, addr));
                    }
                    None => return,
                },
                () = self.notify.notified() => self.pump(),
                _ = tick.tick() => self.housekeeping(),
                () = sleep => self.timeout(),
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        for peer in self.peers.values_mut() {
                            peer.rtc.disconnect();
                        }
                        return;
                    }
                }
            }
            next = self.drain_all();
        }
    }

    fn add(&mut self, peer: Peer) {
        tracing::debug!(session = peer.id, "WebRTC peer added");
        self.by_ufrag.insert(peer.ufrag.clone(), peer.id);
        self.peers.insert(peer.id, peer);
    }

    fn close(&mut self, id: u64, why: &str) {
        if let Some(mut peer) = self.peers.remove(&id) {
            tracing::info!(session = id, "WebRTC session ended: {why}");
            peer.rtc.disconnect();
            self.forget(&peer);
            if why == DELETED {
                if let Role::Publisher(publisher) = peer.role {
                    // The publisher said it stops (WHIP DELETE): the stream ends now,
                    // continue_push is for publishers that drop.
                    publisher.guard.finish();
                }
            }
        }
    }

    fn forget(&mut self, peer: &Peer) {
        self.by_ufrag.remove(&peer.ufrag);
        self.by_addr.retain(|_, id| *id != peer.id);
        lock(&self.tokens).remove(&peer.id);
    }

    /// Routes a datagram: by the address of a peer already known, else a STUN request by its
    /// USERNAME (`ourUfrag:theirUfrag`, RFC 8445 §7.2.2).
    fn receive(&mut self, proto: NetProtocol, bytes: &[u8], source: SocketAddr) {
        let Ok(contents) = bytes.try_into() else {
            return; // not STUN, DTLS, RTP or RTCP
        };
        let destination = match proto {
            NetProtocol::Tcp => match self.tcp_local {
                Some(addr) => addr,
                None => return,
            },
            _ => self.local,
        };
        let now = Instant::now();
        let input = Input::Receive(
            now,
            Receive {
                proto,
                source,
                destination,
                contents,
            },
        );
        let mut id = self.by_addr.get(&(proto, source)).copied();
        if id.is_none() {
            id = str0m::ice::StunMessage::parse(bytes)
                .ok()
                .and_then(|m| m.split_username().map(|(ours, _)| ours.to_owned()))
                .and_then(|ours| self.by_ufrag.get(&ours).copied());
        }
        let Some(peer) = id.and_then(|id| self.peers.get_mut(&id)) else {
            return;
        };
        if !peer.rtc.accepts(&input) {
            return;
        }
        peer.dirty = true;
        if let Err(e) = peer.rtc.handle_input(input) {
            tracing::debug!(session = peer.id, "WebRTC input refused: {e}");
            return;
        }
        peer.last_input = now;
        let pid = peer.id;
        self.by_addr.insert((proto, source), pid);
    }

    /// Hands the time to the peers whose timeout has come.
    fn timeout(&mut self) {
        let now = Instant::now();
        for peer in self.peers.values_mut() {
            if peer.timeout <= now {
                let _ = peer.rtc.handle_input(Input::Timeout(now));
                peer.dirty = true;
            }
        }
    }

    /// Drops peers past their deadlines, kicked ones and those whose stream ended.
    fn housekeeping(&mut self) {
        let now = Instant::now();
        let mut gone = Vec::new();
        for peer in self.peers.values() {
            let why = if !peer.rtc.is_alive() {
                Some("the connection closed")
            } else if !peer.connected && now - peer.created > self.connect_timeout {
                Some("no ICE/DTLS within rtc.connectTimeoutSec")
            } else if now - peer.last_input > self.idle_timeout {
                Some("silent for rtc.timeoutSec")
            } else {
                match &peer.role {
                    Role::Player(p) if p.viewer.is_kicked() => Some("kicked"),
                    Role::Publisher(p) if p.guard.is_closed() => Some("the stream was closed"),
                    _ => None,
                }
            };
            if let Some(why) = why {
                gone.push((peer.id, why));
            }
        }
        for (id, why) in gone {
            self.close(id, why);
        }
        debug_assert!(self.count.load(Ordering::Relaxed) >= self.peers.len());
        for peer in self.peers.values_mut() {
            if peer.connected {
                if let Role::Publisher(publisher) = &mut peer.role {
                    request_keyframe(&mut peer.rtc, publisher, now);
                    peer.dirty = true;
                }
            }
        }
        self.timeout();
    }

    /// Hands every connected player the frames its output has ready.
    fn pump(&mut self) {
        let mut gone = Vec::new();
        let notify = Arc::clone(&self.notify);
        for peer in self.peers.values_mut() {
            let Role::Player(player) = &mut peer.role else {
                continue;
            };
            if !peer.connected {
                continue;
            }
            if player.replay {
                player.replay = false;
                player.reader = player.reader.as_ref().map(|r| r.restart(&notify));
            }
            let reader = player
                .reader
                .get_or_insert_with(|| player.output.reader(&notify));
            let mut frames = Vec::new();
            let mut ended = None;
            for _ in 0..FRAMES_PER_WAKE {
                match reader.try_recv() {
                    Some(Ok(frame)) => frames.push(frame),
                    Some(Err(e)) => {
                        ended = Some(e);
                        break;
                    }
                    None => break,
                }
            }
            if frames.len() == FRAMES_PER_WAKE {
                notify.notify_one(); // more to come: another round after the others
            }
            peer.dirty |= !frames.is_empty();
            for frame in frames {
                write_frame(&mut peer.rtc, player, &frame);
            }
            match ended {
                Some(Ended::Closed) => gone.push((peer.id, "the stream ended")),
                Some(_) => gone.push((peer.id, "too slow: fell behind the stream")),
                None => {}
            }
        }
        for (id, why) in gone {
            self.close(id, why);
        }
    }

    /// Drains the output of every peer that had input; the earliest timeout of all.
    fn drain_all(&mut self) -> Instant {
        let mut next = Instant::now() + TICK;
        let mut dead = Vec::new();
        let notify = Arc::clone(&self.notify);
        for peer in self.peers.values_mut() {
            if !peer.dirty {
                next = next.min(peer.timeout);
                continue;
            }
            peer.dirty = false;
            loop {
                match peer.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => {
                        peer.timeout = t;
                        next = next.min(t);
                        break;
                    }
                    Ok(Output::Transmit(t)) => {
                        if t.proto == NetProtocol::Tcp {
                            // A connection whose queue is full loses the frame, as a
                            // congested path would; ICE-TCP media is loss-tolerant RTP.
                            let mut framed = bytes::BytesMut::with_capacity(t.contents.len() + 2);
                            if rtsp::rfc4571::write(&t.contents, &mut framed).is_ok() {
                                if let Some(out) = self.tcp_out.get(&t.destination) {
                                    let _ = out.try_send(framed.freeze());
                                }
                            }
                        } else {
                            // A full socket buffer drops the datagram, as the network would.
                            let _ = self.socket.try_send_to(&t.contents, t.destination);
                        }
                        if let Role::Player(p) = &peer.role {
                            p.viewer.add_bytes(t.contents.len() as u64);
                        }
                    }
                    Ok(Output::Event(event)) => {
                        if on_event(peer, event) {
                            notify.notify_one();
                        }
                    }
                    Err(e) => {
                        tracing::debug!(session = peer.id, "WebRTC peer failed: {e}");
                        dead.push(peer.id);
                        break;
                    }
                }
                if !peer.rtc.is_alive() {
                    dead.push(peer.id);
                    break;
                }
            }
        }
        for id in dead {
            self.close(id, "the connection closed");
        }
        next
    }
}

/// Acts on one of a peer's events; true when a player became ready for frames.
fn on_event(peer: &mut Peer, event: Event) -> bool {
    match event {
        Event::Connected => {
            tracing::info!(session = peer.id, "WebRTC peer connected");
            peer.connected = true;
            return matches!(peer.role, Role::Player(_));
        }
        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
            peer.rtc.disconnect();
        }
        Event::MediaAdded(added) => {
            if let Role::Publisher(publisher) = &mut peer.role {
                if added.kind == MediaKind::Video {
                    publisher.video = Some(added.mid);
                }
            }
            if let Role::Player(player) = &mut peer.role {
                if added.direction == Direction::SendOnly || added.direction == Direction::SendRecv
                {
                    let slot = match added.kind {
                        MediaKind::Video => &mut player.video,
                        MediaKind::Audio => &mut player.audio,
                    };
                    if let Some(pt) = choose_pt(&mut peer.rtc, added.mid, &player.output.tracks()) {
                        *slot = Some((added.mid, pt));
                    }
                }
            }
        }
        Event::KeyframeRequest(req) => {
            if let Role::Player(player) = &mut peer.role {
                answer_keyframe_request(player, &req);
                return true;
            }
        }
        Event::MediaData(data) => {
            if let Role::Publisher(publisher) = &mut peer.role {
                publish(publisher, &data);
            }
        }
        _ => {}
    }
    false
}

/// The payload type to send the stream's track on `mid` with: for H.264 the one whose
/// profile matches the stream's SPS (else any with packetization-mode 1).
fn choose_pt(rtc: &mut Rtc, mid: Mid, tracks: &[TrackInfo]) -> Option<Pt> {
    let writer = rtc.writer(mid)?;
    let params: Vec<_> = writer.payload_params().cloned().collect();
    let mut best = None;
    for track in tracks {
        let want = match track.codec {
            Codec::H264 => str0m::format::Codec::H264,
            Codec::H265 => str0m::format::Codec::H265,
            Codec::Opus => str0m::format::Codec::Opus,
            Codec::G711A => str0m::format::Codec::PCMA,
            Codec::G711U => str0m::format::Codec::PCMU,
            _ => continue,
        };
        let profile = (track.codec == Codec::H264)
            .then(|| media::avc::DecoderConfig::parse(&track.config).ok())
            .flatten()
            .map(|rec| rec.profile);
        for p in &params {
            let spec = p.spec();
            if spec.codec != want {
                continue;
            }
            if want == str0m::format::Codec::H264 {
                if spec.format.packetization_mode != Some(1) {
                    continue;
                }
                let offered = spec.format.profile_level_id.map(|id| (id >> 16) as u8);
                if profile.is_some() && offered == profile {
                    return Some(p.pt());
                }
            } else {
                return Some(p.pt());
            }
            best.get_or_insert(p.pt());
        }
    }
    best
}

/// Asks a WHIP publisher for a keyframe every [`PUBLISHER_KEYFRAME_INTERVAL`]: a browser sends
/// one only at the start and when asked, and the stream's other viewers (a new RTMP player, HLS
/// segments) need one every few seconds to start and to cut at.
fn request_keyframe(rtc: &mut Rtc, publisher: &mut Publisher, now: Instant) {
    let Some(mid) = publisher.video else {
        return;
    };
    if publisher
        .last_keyframe_request
        .is_some_and(|t| now.duration_since(t) < PUBLISHER_KEYFRAME_INTERVAL)
    {
        return;
    }
    publisher.last_keyframe_request = Some(now);
    if let Some(mut writer) = rtc.writer(mid) {
        if let Err(e) = writer.request_keyframe(None, str0m::media::KeyframeRequestKind::Pli) {
            tracing::debug!("keyframe request to the WHIP publisher: {e}");
        }
    }
}

/// A loss report: the player starts again at the GOP cache's keyframe (at most once per
/// [`PLI_INTERVAL`]); the publisher is never asked.
fn answer_keyframe_request(player: &mut Player, req: &KeyframeRequest) {
    let now = Instant::now();
    if player
        .last_pli
        .is_some_and(|t| now.duration_since(t) < PLI_INTERVAL)
    {
        return;
    }
    player.last_pli = Some(now);
    if player.reader.is_some() {
        tracing::debug!(mid = %req.mid, "loss report answered from the GOP cache");
        player.replay = true;
    }
}

fn write_frame(rtc: &mut Rtc, player: &mut Player, frame: &RtcFrame) {
    let (slot, clock) = match frame.kind() {
        TrackKind::Video => (player.video, 0),
        TrackKind::Audio => (player.audio, 1),
    };
    let Some((mid, pt)) = slot else {
        return;
    };
    // RTP time never steps back, even when a GOP is replayed after a loss report.
    if frame.kind() == TrackKind::Audio
        && player.clocks[clock] != 0
        && frame.pts <= player.clocks[clock]
    {
        return; // replayed audio was sent already
    }
    let ms = frame.pts.max(player.clocks[clock].saturating_add(1));
    player.clocks[clock] = ms;
    let time = match frame.codec {
        Codec::H264 | Codec::H265 => MediaTime::from_90khz(ms * 90),
        Codec::Opus => MediaTime::new(ms * 48, str0m::media::Frequency::FORTY_EIGHT_KHZ),
        _ => MediaTime::new(ms * 8, str0m::media::Frequency::EIGHT_KHZ),
    };
    let Some(writer) = rtc.writer(mid) else {
        return;
    };
    if let Err(e) = writer.write(pt, Instant::now(), time, frame.data.to_vec()) {
        tracing::debug!("WebRTC write: {e}");
    }
}

/// A WHIP publisher's media: H.264 (Annex B from str0m's depacketizer) and Opus become the
/// stream's frames.
fn publish(publisher: &mut Publisher, data: &MediaData) {
    let codec = data.params.spec().codec;
    let rate = u64::from(data.time.frequency().get().max(1));
    let ms = data.time.numer().saturating_mul(1000) / rate;
    match codec {
        str0m::format::Codec::H264 => {
            let nals = media::avc::annex_b_nals(&data.data);
            let mut sps = None;
            let mut pps = None;
            let mut keyframe = false;
            let mut avcc = Vec::with_capacity(data.data.len() + 16);
            for nal in &nals {
                match nal.first().map(|b| b & 0x1F) {
                    Some(media::avc::NAL_SPS) => sps = Some(*nal),
                    Some(media::avc::NAL_PPS) => pps = Some(*nal),
                    Some(media::avc::NAL_IDR) => keyframe = true,
                    _ => {}
                }
                let Ok(len) = u32::try_from(nal.len()) else {
                    return;
                };
                avcc.extend_from_slice(&len.to_be_bytes());
                avcc.extend_from_slice(nal);
            }
            if let (Some(sps), Some(pps)) = (sps, pps) {
                if let Ok(config) = media::avc::DecoderConfig::build(sps, &[pps]) {
                    if publisher.video_config.as_ref() != Some(&config) {
                        publisher.video_config = Some(config.clone());
                        publisher
                            .guard
                            .set_track(TrackInfo::new(Codec::H264, config));
                    }
                }
            }
            if publisher.video_config.is_none() || avcc.is_empty() {
                return; // nothing decodable before the first SPS/PPS
            }
            let dts = publisher.timeline(0, ms);
            publisher.guard.push(Frame {
                codec: Codec::H264,
                dts,
                cts: 0,
                keyframe,
                data: Bytes::from(avcc),
            });
        }
        str0m::format::Codec::Opus => {
            if !publisher.opus_track {
                publisher.opus_track = true;
                publisher
                    .guard
                    .set_track(TrackInfo::new(Codec::Opus, Bytes::new()));
            }
            let dts = publisher.timeline(1, ms);
            publisher.guard.push(Frame {
                codec: Codec::Opus,
                dts,
                cts: 0,
                keyframe: true,
                data: Bytes::copy_from_slice(&data.data),
            });
        }
        _ => {}
    }
}

impl Publisher {
    /// The stream time of a frame of `track` (0 video, 1 audio) at media time `ms`. Each
    /// track keeps its own RTP clock's spacing; the tracks (whose RTP clocks start at
    /// unrelated random values, RFC 3550 §5.1) are put on one timeline by when their first
    /// frames arrived.
    fn timeline(&mut self, track: usize, ms: u64) -> u64 {
        let now = Instant::now();
        let start = *self.start.get_or_insert(now);
        let (first, offset) = *self.bases[track].get_or_insert_with(|| {
            let offset = u64::try_from(now.duration_since(start).as_millis()).unwrap_or(0);
            (ms, offset)
        });
        offset.saturating_add(ms.saturating_sub(first))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Single inserts and removals: a poisoned lock holds a whole map.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `len` random characters from `[a-z0-9]` (ICE-char, RFC 8445 §15.4, and URL-safe).
fn random_text(len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| char::from(CHARS[rand::random_range(0..CHARS.len())]))
        .collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU16;

    fn servers(port: u16, secret: Option<&str>, external: Option<IpAddr>) -> IceServers {
        let credentials = tokio::sync::watch::channel((Vec::new(), secret.map(str::to_owned))).1;
        turn_ice_servers(Arc::new(AtomicU16::new(port)), credentials, external)
    }

    #[test]
    fn link_credentials_are_rest_credentials_of_the_relay_secret() {
        let list = servers(3478, Some("s3cret"), None)(Some("media.example"));
        let urls: Vec<&str> = list.iter().map(|s| s.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "turn:media.example:3478?transport=udp",
                "turn:media.example:3478?transport=tcp"
            ]
        );
        let server = &list[0];
        assert_eq!(
            server.credential,
            ::turn::auth::rest_password(b"s3cret", &server.username)
        );
        let (expiry, name) = server.username.split_once(':').expect("expiry:name");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let expiry: u64 = expiry.parse().expect("unix seconds");
        assert!(expiry > now && expiry <= now + TURN_CREDENTIAL_TTL.as_secs());
        assert!(name.starts_with("rtc"));
        // Each answer gets credentials of its own.
        let again = servers(3478, Some("s3cret"), None)(Some("media.example"));
        assert_ne!(again[0].username, server.username);
    }

    #[test]
    fn link_headers_name_the_external_address_and_need_a_running_relay() {
        let v6: IpAddr = "2001:db8::7".parse().expect("ip");
        let list = servers(3478, Some("s"), Some(v6))(Some("ignored.example"));
        assert_eq!(list[0].url, "turn:[2001:db8::7]:3478?transport=udp");
        assert!(servers(0, Some("s"), None)(Some("h")).is_empty());
        assert!(servers(3478, None, None)(Some("h")).is_empty());
        assert!(servers(3478, Some("s"), None)(None).is_empty());
    }

    #[test]
    fn tokens_and_ufrags_are_ice_chars_and_compared_in_full() {
        let text = random_text(32);
        assert_eq!(text.len(), 32);
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
