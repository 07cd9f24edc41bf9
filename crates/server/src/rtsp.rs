//! The RTSP listener and its session driver (RFC 2326): requests parsed by the sans-IO `rtsp`
//! crate, answered here where the sockets, the UDP port pairs, the timers and the hooks are.
//!
//! A connection is one RTSP session. Playing: DESCRIBE (auth: on_rtsp_realm, then Digest or
//! Basic through on_rtsp_auth, or else on_play), SETUP per track (TCP interleaved or a UDP
//! port pair), PLAY; the RTP comes from the stream's shared [`RtpOutput`]. Publishing:
//! ANNOUNCE (on_publish), SETUP with `mode=record`, RECORD; RTP from the client is
//! depacketized into frames for the registry. OPTIONS, GET_PARAMETER and SET_PARAMETER keep the
//! session alive; PAUSE stops sending; TEARDOWN ends the session.
//!
//! Drive loop: read → `Decoder::push` → `poll` each request and answer it, or each interleaved
//! RTP/RTCP frame and pass it on → while playing, the next shared packet is raced against the
//! next read; UDP datagrams come in through a bounded channel from one task per socket.
//!
//! Timers: the keep-alive (`rtsp.keepAliveSecond`, `rtsp.handshakeSecond` for the first
//! request) restarts on each complete request, interleaved frame or UDP datagram, never on
//! partial bytes; and a request, once its first byte is in, must be complete within
//! `rtsp.handshakeSecond` or it is answered 408 and the connection closed. Buffers start small
//! and grow on demand: 4 KiB to read with, doubled while reads fill it, up to the decoder's
//! 64 KiB message cap.

use crate::limits::{ConnGuard, Listener};
use crate::stall::StallGuard;
use crate::Shared;
use bytes::{Bytes, BytesMut};
use hooks::{PlayRefusal, PublishRefusal, Request as HookRequest};
use media::StreamKey;
use outputs::{RtpOutput, RtpReader};
use registry::{Protocol, PublisherGuard, SessionInfo, Viewer};
use rtsp::auth::{self, Credentials, Password};
use rtsp::demux::{DemuxEvent, Demuxer};
use rtsp::message::{Decoder, Input, Request, Response, RtpInfo, Transport};
use rtsp::sdp;
use rtsp::session::{Session, Step};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{field, Instrument};

/// Bytes of shared packets gathered into one socket write for a TCP viewer.
const WRITE_BATCH: usize = 128 * 1024;
/// UDP datagrams queued from the socket tasks to the session; more are dropped.
const UDP_QUEUE: usize = 1024;
/// A connection's first read buffer: requests are a few hundred bytes, so this is what an idle
/// session holds. A read that fills it doubles it, up to [`READ_BUF_MAX`].
const READ_BUF_MIN: usize = 4 * 1024;
/// The largest read buffer, the decoder's cap on one message: a publisher's interleaved frames
/// (up to 64 KiB + 4) come in a few reads at most.
const READ_BUF_MAX: usize = rtsp::message::MAX_MESSAGE;
/// Receive buffer of a UDP socket only RTCP arrives on, or a player's RTP socket (NAT punches
/// at most): RTCP compounds stay within the path MTU (RFC 3550 §6.1).
const UDP_BUF_SMALL: usize = 2 * 1024;
/// Receive buffer of a publisher's RTP socket: any UDP payload (65 507 bytes at most) fits.
const UDP_BUF_RTP: usize = 64 * 1024;

/// RTSP settings.
#[derive(Debug, Clone)]
pub struct RtspOptions {
    /// `rtsp.handshakeSecond`: the first request must arrive within this, and every request
    /// within this of its first byte.
    pub handshake_timeout: Duration,
    /// `rtsp.keepAliveSecond`: a session with no request, RTP or RTCP this long is closed.
    pub keep_alive: Duration,
    /// `rtsp.authBasic`: ask for Basic instead of Digest credentials.
    pub auth_basic: bool,
}

impl From<&config::Config> for RtspOptions {
    fn from(config: &config::Config) -> Self {
        RtspOptions {
            handshake_timeout: config.rtsp.handshake_second,
            keep_alive: config.rtsp.keep_alive_second,
            auth_basic: config.rtsp.auth_basic,
        }
    }
}

/// Accepts RTSP connections until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let limits = shared.limits.clone();
    let sessions = shutdown.clone();
    crate::limits::accept_loop(
        listener,
        Listener::Rtsp,
        limits,
        shutdown,
        move |socket, peer, guard| {
            let id = shared.registry.next_session_id();
            let span =
                tracing::info_span!("session", proto = "rtsp", id, %peer, stream = field::Empty);
            let (shared, shutdown) = (Arc::clone(&shared), sessions.clone());
            async move {
                match run(socket, peer, id, shared, shutdown, guard).await {
                    Ok(()) => tracing::debug!("session closed"),
                    Err(e) => tracing::info!("session closed: {e}"),
                }
            }
            .instrument(span)
        },
    )
    .await;
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad request: {0}")]
    Protocol(#[from] rtsp::Error),
    #[error("no request within {0:?}")]
    HandshakeTimeout(Duration),
    #[error("a request took longer than {0:?} to arrive")]
    RequestTimeout(Duration),
    #[error("nothing received for {0:?}")]
    Idle(Duration),
}

/// Where one track's packets go (playing) or come from (recording).
enum Dest {
    Tcp { rtp: u8, rtcp: u8 },
    Udp(UdpPair),
}

/// A track's UDP transport: the server's port pair, the client's ports, and the two tasks
/// reading the pair. The tasks hold the only other references to the sockets, so dropping the
/// pair (a repeated SETUP of the track replacing it, or the session ending) closes both
/// sockets at once instead of when the session ends.
struct UdpPair {
    rtp: Arc<UdpSocket>,
    rtcp: Arc<UdpSocket>,
    client_rtp: SocketAddr,
    client_rtcp: SocketAddr,
    readers: [JoinHandle<()>; 2],
}

impl Drop for UdpPair {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
    }
}

struct Setup {
    track: usize,
    dest: Dest,
}

struct Play {
    key: StreamKey,
    /// Counts this viewer in the registry (readers, on_flow_report); the media itself comes from
    /// the shared output.
    viewer: Viewer,
    output: Arc<RtpOutput>,
    tracks: Vec<sdp::Track>,
    setups: Vec<Setup>,
    reader: Option<RtpReader>,
    paused: bool,
}

struct Record {
    guard: PublisherGuard,
    demuxer: Demuxer,
    setups: Vec<Setup>,
    recording: bool,
    started: Instant,
}

enum Role {
    Init,
    Play(Box<Play>),
    Record(Box<Record>),
}

struct Conn {
    socket: StallGuard<TcpStream>,
    peer: SocketAddr,
    local: SocketAddr,
    id: u64,
    shared: Arc<Shared>,
    /// Which request is valid when, the session id, the transports.
    session: Session,
    /// The current Digest nonce (a new one with every challenge).
    nonce: String,
    role: Role,
    out: BytesMut,
    closing: bool,
    /// Datagrams from this session's UDP sockets. Made by the first UDP SETUP, so a TCP session
    /// holds no queue.
    udp_tx: Option<mpsc::Sender<Datagram>>,
    udp_rx: Option<mpsc::Receiver<Datagram>>,
}

/// A datagram from one of a session's UDP sockets.
struct Datagram {
    track: usize,
    /// From the RTCP socket of the pair.
    rtcp: bool,
    data: Bytes,
}

async fn run(
    socket: TcpStream,
    peer: SocketAddr,
    id: u64,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    guard: ConnGuard,
) -> Result<(), SessionError> {
    let local = socket.local_addr()?;
    let _ = socket.set_nodelay(true);
    let options = shared.rtsp.clone();
    let mut conn = Conn {
        socket: StallGuard::new(socket, shared.write_timeout),
        peer,
        local,
        id,
        session: Session::new(
            format!("{:016x}", rand::random::<u64>()),
            u32::try_from(options.keep_alive.as_secs()).unwrap_or(u32::MAX),
            &rtsp::RtspConfig::default(),
        ),
        nonce: new_nonce(),
        shared,
        role: Role::Init,
        out: BytesMut::new(),
        closing: false,
        udp_tx: None,
        udp_rx: None,
    };
    let mut decoder = Decoder::default();
    // Read with `read_buf` into spare capacity: nothing is zeroed, and an idle session holds
    // READ_BUF_MIN bytes rather than the largest message a publisher may send.
    let mut buf = BytesMut::with_capacity(READ_BUF_MIN);
    let mut timers = Timers::new(Instant::now(), &options);
    let timeout = tokio::time::sleep_until(timers.deadline());
    tokio::pin!(timeout);
    loop {
        if timeout.deadline() != timers.deadline() {
            timeout.as_mut().reset(timers.deadline());
        }
        tokio::select! {
            read = conn.socket.read_buf(&mut buf) => {
                if read? == 0 {
                    return Ok(());
                }
                let now = Instant::now();
                decoder.push(&buf);
                let filled = buf.len() == buf.capacity();
                buf.clear();
                if filled && buf.capacity() < READ_BUF_MAX {
                    // The peer sends more than this buffer holds per read: media, not requests.
                    buf.reserve((buf.capacity() * 2).min(READ_BUF_MAX));
                }
                let mut complete = false;
                loop {
                    match decoder.poll() {
                        Ok(Some(Input::Request(req))) => {
                            complete = true;
                            guard.established();
                            // Boxed: answering (hooks, auth, the registry) is most of this
                            // future's size, which an idle session would otherwise hold.
                            let resp = Box::pin(conn.handle(&req)).await;
                            resp.write(&mut conn.out);
                        }
                        Ok(Some(Input::Interleaved { channel, payload })) => {
                            complete = true;
                            conn.interleaved(channel, payload);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            Response::new(400, None).write(&mut conn.out);
                            let _ = conn.flush().await;
                            return Err(e.into());
                        }
                    }
                }
                if complete {
                    timers.alive(Instant::now());
                }
                timers.read(now, complete, decoder.buffered() > 0);
                conn.flush().await?;
                if conn.closing {
                    return Ok(());
                }
            }
            () = &mut timeout => {
                if decoder.buffered() > 0 {
                    // RFC 2326 §7.1.1 and RFC 2616 §10.4.9: the client did not produce a
                    // request within the time the server was prepared to wait.
                    Response::new(408, None).write(&mut conn.out);
                    let _ = conn.flush().await;
                }
                return Err(timers.expired(Instant::now()));
            }
            Some(datagram) = next_datagram(&mut conn.udp_rx) => {
                timers.alive(Instant::now());
                conn.udp(datagram);
            }
            next = next_for_role(&mut conn.role) => match next {
                RoleEvent::Packet(packet) => conn.send(packet).await?,
                RoleEvent::Ended(end) => {
                    tracing::info!("play ended: {end}");
                    return Ok(());
                }
                RoleEvent::Closed => {
                    tracing::info!("publish ended: the stream was closed by the server");
                    return Ok(());
                }
                RoleEvent::Kicked => {
                    tracing::info!("play ended: the session was kicked");
                    return Ok(());
                }
            },
            _ = shutdown.changed() => {
                if let Role::Record(record) = std::mem::replace(&mut conn.role, Role::Init) {
                    record.guard.finish();
                }
                return Ok(());
            }
        }
    }
}

/// A session's two clocks: when it is closed for silence, and by when the request now arriving
/// must be complete.
struct Timers {
    handshake: Duration,
    keep_alive: Duration,
    /// `handshake` after the connection opened, then `keep_alive` after the last complete
    /// request, interleaved frame or UDP datagram.
    idle: Instant,
    /// Whether anything complete has come in yet.
    started: bool,
    /// `handshake` after the first byte of the request (or interleaved frame) the decoder holds
    /// part of; `None` when it holds nothing.
    partial: Option<Instant>,
}

impl Timers {
    fn new(now: Instant, options: &RtspOptions) -> Timers {
        Timers {
            handshake: options.handshake_timeout,
            keep_alive: options.keep_alive,
            idle: now + options.handshake_timeout,
            started: false,
            partial: None,
        }
    }

    fn deadline(&self) -> Instant {
        self.partial.map_or(self.idle, |p| p.min(self.idle))
    }

    /// A complete request, interleaved frame or UDP datagram came in.
    fn alive(&mut self, now: Instant) {
        self.started = true;
        self.idle = now + self.keep_alive;
    }

    /// Bytes were read at `now`: they completed an input (`complete`), and the decoder still
    /// holds the start of another (`partial`).
    fn read(&mut self, now: Instant, complete: bool, partial: bool) {
        self.partial = match (partial, self.partial) {
            (false, _) => None,
            // What is held began in this read: the earlier input ended in it.
            (true, _) if complete => Some(now + self.handshake),
            (true, pending) => Some(pending.unwrap_or(now + self.handshake)),
        };
    }

    /// Why the session ends once [`Timers::deadline`] has passed at `now`.
    fn expired(&self, now: Instant) -> SessionError {
        if self.partial.is_some_and(|p| p <= now) {
            SessionError::RequestTimeout(self.handshake)
        } else if !self.started {
            SessionError::HandshakeTimeout(self.handshake)
        } else {
            SessionError::Idle(self.keep_alive)
        }
    }
}

enum RoleEvent {
    /// The next shared packet for a player.
    Packet(rtsp::mux::MuxPacket),
    /// A player's stream ended (or the player fell behind too often).
    Ended(registry::Ended),
    /// A publisher's stream was closed (on_stream_none_reader, the API).
    Closed,
    /// A player was kicked (the API).
    Kicked,
}

/// The next datagram from the session's UDP sockets; never, while it has none.
async fn next_datagram(rx: &mut Option<mpsc::Receiver<Datagram>>) -> Option<Datagram> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// What a playing (unpaused) or publishing session must act on besides its socket.
async fn next_for_role(role: &mut Role) -> RoleEvent {
    match role {
        Role::Play(play) => {
            let reader = play.reader.as_mut().filter(|_| !play.paused);
            let packet = async {
                match reader {
                    Some(reader) => reader.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                packet = packet => match packet {
                    Ok(packet) => RoleEvent::Packet(packet),
                    Err(end) => RoleEvent::Ended(end),
                },
                () = play.viewer.kicked() => RoleEvent::Kicked,
            }
        }
        Role::Record(record) => {
            record.guard.closed().await;
            RoleEvent::Closed
        }
        _ => std::future::pending().await,
    }
}

fn new_nonce() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The path and query of an RTSP URL (`rtsp://host:port/app/stream?q`), and its host.
fn split_url(url: &str) -> (&str, &str, Option<&str>) {
    let (host, rest) = match url.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(i) => (Some(&rest[..i]), &rest[i..]),
            None => (Some(rest), "/"),
        },
        None => (None, url),
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    (path, query, host)
}

impl Conn {
    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            let out = self.out.split();
            self.socket.write_all(&out).await?;
        }
        Ok(())
    }

    fn session_info(&self, params: &str) -> SessionInfo {
        SessionInfo {
            id: self.id,
            protocol: Protocol::Rtsp,
            peer: self.peer,
            local: self.local,
            params: params.to_owned(),
        }
    }

    /// The stream a Request-URI names, or the 400 to answer when it is not a valid name.
    fn stream_key(&self, req: &Request) -> Result<(StreamKey, String), Response> {
        let (path, query, host) = split_url(req.uri());
        match StreamKey::from_url(self.shared.enable_vhost, path, query, host) {
            Ok(key) => Ok((key, query.to_owned())),
            Err(e) => {
                tracing::info!("refused: {e}");
                Err(Response::to(req, 400))
            }
        }
    }

    async fn handle(&mut self, req: &Request) -> Response {
        tracing::debug!(
            method = <&str>::from(req.method()),
            uri = ?req.uri(),
            "request"
        );
        match self.session.request(req) {
            Step::Answer(resp) => resp,
            Step::Describe => self.describe(req).await,
            Step::Announce => self.announce(req).await,
            Step::Setup { track, transport } => self.setup(req, track, transport).await,
            Step::Play => self.play(req),
            Step::Record => self.record(req),
            Step::Pause => {
                if let Role::Play(play) = &mut self.role {
                    play.paused = true;
                }
                self.session.paused();
                self.session.ok(req)
            }
            Step::Teardown => {
                self.closing = true;
                if let Role::Record(record) = std::mem::replace(&mut self.role, Role::Init) {
                    record.guard.finish();
                }
                self.session.ok(req)
            }
        }
    }

    /// A 401 with a fresh challenge.
    fn challenge(&mut self, req: &Request, realm: &str) -> Response {
        self.nonce = new_nonce();
        let value = if self.shared.rtsp.auth_basic {
            auth::basic_challenge(realm)
        } else {
            auth::digest_challenge(realm, &self.nonce)
        };
        Response::to(req, 401).www_authenticate(value)
    }

    /// RTSP auth (DESIGN.md §1): on_rtsp_realm; a realm means credentials checked with
    /// on_rtsp_auth, and on_play is then skipped. `Ok(true)`: authorized by credentials;
    /// `Ok(false)`: no RTSP auth, on_play decides; `Err`: the answer to send.
    async fn authorize(&mut self, req: &Request, hook_req: &HookRequest) -> Result<bool, Response> {
        let realm = match self.shared.hooks.on_rtsp_realm(hook_req).await {
            Ok(Some(realm)) => realm,
            Ok(None) => return Ok(false),
            Err(refused) => {
                tracing::info!("play refused: {refused}");
                return Err(Response::to(req, 401));
            }
        };
        let Some(credentials) = req
            .header("Authorization")
            .and_then(|h| auth::parse_authorization(h).ok())
        else {
            return Err(self.challenge(req, &realm));
        };
        let basic = matches!(credentials, Credentials::Basic { .. });
        if basic != self.shared.rtsp.auth_basic {
            return Err(self.challenge(req, &realm));
        }
        let user = credentials.username().to_owned();
        let password = match self
            .shared
            .hooks
            .on_rtsp_auth(hook_req, &realm, &user, basic)
            .await
        {
            Ok(password) => password,
            Err(refused) => {
                tracing::info!(user, "RTSP auth refused: {refused}");
                return Err(self.challenge(req, &realm));
            }
        };
        let secret = if password.encrypted {
            Password::Ha1(&password.passwd)
        } else {
            Password::Plain(&password.passwd)
        };
        let ok = match &credentials {
            Credentials::Digest(digest) => digest.verify("DESCRIBE", &realm, &self.nonce, secret),
            Credentials::Basic { username, password } => {
                auth::verify_basic(username, password, &realm, secret)
            }
        };
        if ok {
            tracing::info!(user, "RTSP credentials accepted");
            Ok(true)
        } else {
            tracing::info!(user, "RTSP credentials wrong");
            Err(self.challenge(req, &realm))
        }
    }

    async fn describe(&mut self, req: &Request) -> Response {
        let (key, params) = match self.stream_key(req) {
            Ok(found) => found,
            Err(resp) => return resp,
        };
        tracing::Span::current().record("stream", field::display(&key));
        let viewer = self.session_info(&params);
        let hook_req = HookRequest::new(key.clone(), &viewer);
        let by_credentials = match self.authorize(req, &hook_req).await {
            Ok(by_credentials) => by_credentials,
            Err(resp) => return resp,
        };
        let shared = Arc::clone(&self.shared);
        let admitted = if by_credentials {
            hooks::find_stream(
                &shared.hooks,
                &shared.registry,
                &key,
                viewer,
                shared.max_stream_wait,
            )
            .await
        } else {
            hooks::admit_play(
                &shared.hooks,
                &shared.registry,
                &key,
                viewer,
                shared.max_stream_wait,
            )
            .await
        };
        let viewer = match admitted {
            Ok(viewer) => viewer,
            Err(PlayRefusal::Denied(msg)) => {
                tracing::info!("play refused: {msg}");
                return Response::to(req, 401);
            }
            Err(_) => {
                tracing::info!("play refused: stream not found");
                return Response::to(req, 404);
            }
        };
        let Some(output) = shared.outputs.rtp(&key).await else {
            tracing::info!("play refused: no track RTSP can carry");
            return Response::to(req, 415);
        };
        let (sdp, tracks) = output.describe();
        tracing::info!("describe");
        self.session
            .described(tracks.iter().map(|t| t.control.clone()).collect());
        self.role = Role::Play(Box::new(Play {
            key,
            viewer,
            output,
            tracks,
            setups: Vec::new(),
            reader: None,
            paused: false,
        }));
        Response::to(req, 200)
            .content_base(req.uri())
            .body("application/sdp", sdp)
    }

    async fn announce(&mut self, req: &Request) -> Response {
        let (key, params) = match self.stream_key(req) {
            Ok(found) => found,
            Err(resp) => return resp,
        };
        tracing::Span::current().record("stream", field::display(&key));
        let tracks = match sdp::parse(req.body()) {
            Ok(tracks) => tracks,
            Err(e) => {
                tracing::info!("publish refused: SDP: {e}");
                return Response::to(req, 415);
            }
        };
        let shared = Arc::clone(&self.shared);
        let publisher = self.session_info(&params);
        let guard = match hooks::admit_publish(
            &shared.hooks,
            &shared.registry,
            key,
            publisher,
            &shared.protocol,
        )
        .await
        {
            Ok(guard) => guard,
            Err(refusal) => {
                tracing::info!("publish refused: {refusal}");
                self.closing = true;
                return Response::to(
                    req,
                    match refusal {
                        PublishRefusal::Denied(_) => 401,
                        _ => 406,
                    },
                );
            }
        };
        tracing::info!(stream = %guard.key(), tracks = tracks.len(), "publish started");
        self.session
            .announced(tracks.iter().map(|t| t.control.clone()).collect());
        let demuxer = Demuxer::new(&tracks, &rtsp::RtspConfig::default());
        self.role = Role::Record(Box::new(Record {
            guard,
            demuxer,
            setups: Vec::new(),
            recording: false,
            started: Instant::now(),
        }));
        self.session.ok(req)
    }

    async fn setup(&mut self, req: &Request, track: usize, transport: Transport) -> Response {
        let mut answer = transport.clone();
        let dest = if let (true, Some((rtp, rtcp))) = (transport.tcp, transport.interleaved) {
            Dest::Tcp { rtp, rtcp }
        } else {
            let Some((client_rtp, client_rtcp)) = transport.client_port else {
                return Response::to(req, 461);
            };
            let (rtp, rtcp) = match udp_pair(self.local.ip()).await {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!("no UDP port pair: {e}");
                    return Response::to(req, 500);
                }
            };
            let server = (
                rtp.local_addr().map(|a| a.port()).unwrap_or(0),
                rtcp.local_addr().map(|a| a.port()).unwrap_or(0),
            );
            answer.server_port = Some(server);
            answer.client_port = Some((client_rtp, client_rtcp));
            let (rtp, rtcp) = (Arc::new(rtp), Arc::new(rtcp));
            // Only a publisher's RTP needs room for large datagrams.
            let rtp_buf = match self.role {
                Role::Record(_) => UDP_BUF_RTP,
                _ => UDP_BUF_SMALL,
            };
            let tx = self.udp_tx.get_or_insert_with(|| {
                let (tx, rx) = mpsc::channel(UDP_QUEUE);
                self.udp_rx = Some(rx);
                tx
            });
            let reader = |socket: &Arc<UdpSocket>, rtcp: bool, size: usize| {
                tokio::spawn(udp_reader(
                    Arc::clone(socket),
                    self.peer.ip(),
                    track,
                    rtcp,
                    size,
                    tx.clone(),
                ))
            };
            let readers = [
                reader(&rtp, false, rtp_buf),
                reader(&rtcp, true, UDP_BUF_SMALL),
            ];
            Dest::Udp(UdpPair {
                rtp,
                rtcp,
                client_rtp: SocketAddr::new(self.peer.ip(), client_rtp),
                client_rtcp: SocketAddr::new(self.peer.ip(), client_rtcp),
                readers,
            })
        };
        let setup = Setup { track, dest };
        // A repeated SETUP of a track replaces its transport; dropping the old one closes its
        // port pair (the session's cap on SETUPs bounds how often this can happen).
        match &mut self.role {
            Role::Play(play) => {
                play.setups.retain(|s| s.track != track);
                play.setups.push(setup);
            }
            Role::Record(record) => {
                record.setups.retain(|s| s.track != track);
                record.setups.push(setup);
            }
            Role::Init => {}
        }
        tracing::debug!(track, %answer, "setup");
        self.session.set_up(track, answer.clone());
        self.session.ok(req).transport(&answer)
    }

    fn play(&mut self, req: &Request) -> Response {
        let first = self.session.playing();
        let ok = self.session.ok(req).header("Range", "npt=0.000-");
        let Role::Play(play) = &mut self.role else {
            return Response::to(req, 455);
        };
        play.paused = false;
        if first {
            let (reader, info) = play.output.reader();
            play.reader = Some(reader);
            let base = req.uri().trim_end_matches('/');
            let rtp_info: Vec<RtpInfo> = info
                .into_iter()
                .filter(|(track, _, _)| play.setups.iter().any(|s| s.track == *track))
                .filter_map(|(track, seq, rtptime)| {
                    let control = &play.tracks.get(track)?.control;
                    Some(RtpInfo {
                        url: format!("{base}/{control}"),
                        seq,
                        rtptime,
                    })
                })
                .collect();
            tracing::info!(stream = %play.key, "play started");
            return ok.rtp_info(&rtp_info);
        }
        ok
    }

    fn record(&mut self, req: &Request) -> Response {
        let Role::Record(record) = &mut self.role else {
            return Response::to(req, 455);
        };
        record.recording = true;
        self.session.recording();
        self.session.ok(req)
    }

    /// An interleaved frame from the client: a publisher's RTP/RTCP, or a player's RTCP.
    fn interleaved(&mut self, channel: u8, payload: Bytes) {
        let Role::Record(record) = &mut self.role else {
            receiver_report(&payload);
            return;
        };
        let found = record.setups.iter().find_map(|s| match s.dest {
            Dest::Tcp { rtp, .. } if rtp == channel => Some((s.track, false)),
            Dest::Tcp { rtcp, .. } if rtcp == channel => Some((s.track, true)),
            _ => None,
        });
        if let Some((track, rtcp)) = found {
            record.ingest(track, rtcp, payload);
        }
    }

    fn udp(&mut self, Datagram { track, rtcp, data }: Datagram) {
        match &mut self.role {
            Role::Record(record) => record.ingest(track, rtcp, data),
            _ if rtcp => receiver_report(&data),
            _ => {}
        }
    }

    /// Sends one shared packet, and whatever else is ready, to a player.
    async fn send(&mut self, first: rtsp::mux::MuxPacket) -> std::io::Result<()> {
        let Role::Play(play) = &mut self.role else {
            return Ok(());
        };
        let mut next = Some(first);
        let mut sent = 0u64;
        while let Some(packet) = next.take() {
            if let Some(setup) = play.setups.iter().find(|s| s.track == packet.track) {
                match &setup.dest {
                    Dest::Tcp { rtp, rtcp } => {
                        let channel = if packet.rtcp { *rtcp } else { *rtp };
                        if rtsp::message::write_interleaved(channel, &packet.data, &mut self.out)
                            .is_ok()
                        {
                            sent += packet.data.len() as u64 + 4;
                        }
                    }
                    Dest::Udp(UdpPair {
                        rtp,
                        rtcp,
                        client_rtp,
                        client_rtcp,
                        ..
                    }) => {
                        let (socket, to) = if packet.rtcp {
                            (rtcp, client_rtcp)
                        } else {
                            (rtp, client_rtp)
                        };
                        // UDP is lossy by nature: a full socket buffer drops the packet.
                        if socket.try_send_to(&packet.data, *to).is_ok() {
                            sent += packet.data.len() as u64;
                        }
                    }
                }
            }
            if self.out.len() < WRITE_BATCH {
                next = play.reader.as_mut().and_then(RtpReader::try_recv);
            }
        }
        play.viewer.add_bytes(sent);
        if !self.out.is_empty() {
            let out = self.out.split();
            self.socket.write_all(&out).await?;
        }
        Ok(())
    }
}

impl Record {
    fn ingest(&mut self, track: usize, rtcp: bool, data: Bytes) {
        if !self.recording {
            return;
        }
        if rtcp {
            let _ = self.demuxer.push_rtcp(track, &data);
            return;
        }
        let arrival = self.started.elapsed().as_millis() as u64;
        if let Err(e) = self.demuxer.push(track, data, arrival) {
            tracing::debug!("RTP packet dropped: {e}");
            return;
        }
        while let Some(event) = self.demuxer.pull() {
            match event {
                DemuxEvent::Track(info) => {
                    tracing::info!(codec = ?info.codec, width = info.width, height = info.height, sample_rate = info.sample_rate, "track");
                    self.guard.set_track(info);
                }
                DemuxEvent::Frame(frame) => {
                    self.guard.push(frame);
                }
            }
        }
    }
}

/// Logs what a player's RTCP receiver reports say about loss (RFC 3550 §6.4.2); they also
/// keep the session alive.
fn receiver_report(data: &[u8]) {
    let Ok(reports) = rtsp::rtp::parse_rtcp(data) else {
        return;
    };
    for report in reports {
        if let rtsp::rtp::Rtcp::ReceiverReport(rr) = report {
            for block in &rr.reports {
                tracing::trace!(
                    ssrc = block.ssrc,
                    fraction_lost = block.fraction_lost,
                    cumulative_lost = block.cumulative_lost,
                    jitter = block.jitter,
                    "receiver report"
                );
            }
        }
    }
}

/// Binds an RTP/RTCP UDP port pair (even, even + 1) on `ip`.
async fn udp_pair(ip: IpAddr) -> std::io::Result<(UdpSocket, UdpSocket)> {
    for _ in 0..64 {
        let rtp = UdpSocket::bind((ip, 0)).await?;
        let port = rtp.local_addr()?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind((ip, port + 1)).await {
            return Ok((rtp, rtcp));
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "no free even/odd UDP port pair",
    ))
}

/// Forwards datagrams from the client's address to the session, dropping what does not fit in
/// the queue. Datagrams are read into `buf_size` bytes; one that fills them may have been cut
/// short by the kernel and is dropped.
async fn udp_reader(
    socket: Arc<UdpSocket>,
    client: IpAddr,
    track: usize,
    rtcp: bool,
    buf_size: usize,
    tx: mpsc::Sender<Datagram>,
) {
    let mut buf = vec![0u8; buf_size];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            return;
        };
        if from.ip() != client || n == buf.len() {
            continue; // not our client (ignore, never forward), or truncated
        }
        let data = Bytes::copy_from_slice(&buf[..n]);
        if tx.try_send(Datagram { track, rtcp, data }).is_err() && tx.is_closed() {
            return;
        }
    }
}
