//! The RTSP listener and its session driver (RFC 2326) around the sans-IO
//! [`rtsp::session::Session`], which decodes the requests, answers those that need no policy,
//! frames every reply and keeps the clocks; this file keeps the sockets, the UDP port pairs,
//! the sleeping and the policy (hooks, the registry).
//!
//! A connection is one RTSP session. Playing: DESCRIBE (auth: on_rtsp_realm, then Digest or
//! Basic through on_rtsp_auth, or else on_play), SETUP per track (TCP interleaved or a UDP
//! port pair), PLAY; the RTP comes from the stream's shared [`RtpOutput`]. Publishing:
//! ANNOUNCE (on_publish), SETUP with `mode=record`, RECORD; RTP from the client is
//! depacketized into frames for the registry. OPTIONS, GET_PARAMETER and SET_PARAMETER keep the
//! session alive; PAUSE stops sending; TEARDOWN ends the session.
//!
//! Drive loop: read → `handle_input(now, ..)` → drain `poll_event` (DESCRIBE, ANNOUNCE, SETUP
//! and PLAY answered with `describe_ok`/`announce_ok`/`setup_ok`/`play_ok`/`auth_required`/
//! `reject`; interleaved RTP/RTCP passed on) → write `poll_transmit` → sleep until
//! `poll_timeout` → `handle_timeout(now)`. While playing, the next shared packet is raced against
//! the next read; UDP datagrams come in through a bounded channel from one task per socket and
//! are reported to the session with `handle_udp_activity`.
//!
//! The session's clocks (`rtsp.keepAliveSecond`, `rtsp.handshakeSecond`; see its docs): the
//! keep-alive restarts on each complete request, interleaved frame or UDP datagram, never on
//! partial bytes, and a request must be complete within `rtsp.handshakeSecond` of its first byte
//! or it is answered 408 and the connection closed. Buffers start small and grow on demand:
//! 4 KiB to read with, doubled while reads fill it, up to the decoder's 64 KiB message cap.

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
use rtsp::message::{RtpInfo, Transport};
use rtsp::sdp;
use rtsp::session::{Event, Session, Timeout};
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

/// Accepts RTSP connections until `accept` turns true (the listener moves or the server stops);
/// its sessions end when `shutdown` does.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    accept: watch::Receiver<bool>,
    shutdown: watch::Receiver<bool>,
) {
    let limits = shared.limits.clone();
    let sessions = shutdown;
    crate::limits::accept_loop(
        listener,
        Listener::Rtsp,
        limits,
        accept,
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
    // The session keeps the request deadline and the keep-alive; the loop only sleeps.
    let config = rtsp::RtspConfig {
        handshake_timeout: shared.rtsp.handshake_timeout,
        keep_alive: shared.rtsp.keep_alive,
        ..rtsp::RtspConfig::default()
    };
    let mut conn = Conn {
        socket: StallGuard::new(socket, shared.write_timeout),
        peer,
        local,
        id,
        session: Session::new(format!("{:016x}", rand::random::<u64>()), &config, now()),
        nonce: new_nonce(),
        shared,
        role: Role::Init,
        out: BytesMut::new(),
        closing: false,
        udp_tx: None,
        udp_rx: None,
    };
    // Read with `read_buf` into spare capacity: nothing is zeroed, and an idle session holds
    // READ_BUF_MIN bytes rather than the largest message a publisher may send.
    let mut buf = BytesMut::with_capacity(READ_BUF_MIN);
    let mut established = false;
    // Made once, not once per wake-up (a player wakes for every packet).
    let shutdown = shutdown.changed();
    tokio::pin!(shutdown);
    loop {
        let deadline = conn.session.poll_timeout();
        tokio::select! {
            read = conn.socket.read_buf(&mut buf) => {
                if read? == 0 {
                    return Ok(());
                }
                let input = conn.session.handle_input(now(), &buf);
                let filled = buf.len() == buf.capacity();
                buf.clear();
                if filled && buf.capacity() < READ_BUF_MAX {
                    // The peer sends more than this buffer holds per read: media, not requests.
                    buf.reserve((buf.capacity() * 2).min(READ_BUF_MAX));
                }
                if !established && conn.session.is_established() {
                    established = true;
                    guard.established();
                }
                if conn.turn(input).await? {
                    return Ok(());
                }
            }
            () = sleep_until(deadline) => {
                conn.session.handle_timeout(now());
                if conn.turn(Ok(())).await? {
                    return Ok(());
                }
            }
            Some(datagram) = next_datagram(&mut conn.udp_rx) => {
                conn.session.handle_udp_activity(now());
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
            _ = &mut shutdown => {
                if let Role::Record(record) = std::mem::replace(&mut conn.role, Role::Init) {
                    record.guard.finish();
                }
                return Ok(());
            }
        }
    }
}

/// The time as the sans-IO session counts it; tokio's clock, so paused-time tests move it too.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Sleeps until `at`; never, when no clock runs.
async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// How RTSP auth refuses a DESCRIBE: a plain status, or a 401 asking for credentials.
enum Denial {
    /// Answer with this status.
    Status(u16),
    /// Answer 401 with this `WWW-Authenticate` challenge.
    Challenge(String),
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
    /// Writes the session's replies (and any media batched with them).
    async fn flush(&mut self) -> std::io::Result<()> {
        self.session.poll_transmit(&mut self.out);
        if !self.out.is_empty() {
            let out = self.out.split();
            self.socket.write_all(&out).await?;
        }
        Ok(())
    }

    /// After input, a timer or an answer: acts on the session's events, writes its replies and
    /// says whether the connection is done. An `Err` (undecodable input, a timeout) is returned
    /// after the session's last reply (its 400 or 408) is written.
    async fn turn(&mut self, input: Result<(), rtsp::Error>) -> Result<bool, SessionError> {
        // Boxed: answering (hooks, auth, the registry) is most of this future's size, which an
        // idle session would otherwise hold.
        let result = match input {
            Ok(()) => Box::pin(self.drain()).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = result {
            let _ = self.flush().await;
            return Err(e);
        }
        self.flush().await?;
        Ok(self.closing || self.session.is_closed())
    }

    /// Acts on every event until the session has none (an answer may decode more requests).
    async fn drain(&mut self) -> Result<(), SessionError> {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Describe { uri, credentials } => self.describe(&uri, credentials).await?,
                Event::Announce { uri, sdp } => self.announce(&uri, &sdp).await?,
                Event::Setup { track, transport } => self.setup(track, transport).await?,
                Event::Play { uri, first } => self.play(&uri, first)?,
                Event::Pause => {
                    if let Role::Play(play) = &mut self.role {
                        play.paused = true;
                    }
                }
                Event::Record => {
                    if let Role::Record(record) = &mut self.role {
                        record.recording = true;
                    }
                }
                Event::Teardown => {
                    self.closing = true;
                    if let Role::Record(record) = std::mem::replace(&mut self.role, Role::Init) {
                        record.guard.finish();
                    }
                }
                Event::Interleaved { channel, payload } => self.interleaved(channel, payload),
                Event::TimedOut { reason } => {
                    let options = &self.shared.rtsp;
                    return Err(match reason {
                        Timeout::Request => SessionError::RequestTimeout(options.handshake_timeout),
                        Timeout::Handshake => {
                            SessionError::HandshakeTimeout(options.handshake_timeout)
                        }
                        _ => SessionError::Idle(options.keep_alive),
                    });
                }
                _ => {}
            }
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

    /// The stream a Request-URI names, or `None` (answered 400) when it is not a valid name.
    fn stream_key(&self, uri: &str) -> Option<(StreamKey, String)> {
        let (path, query, host) = split_url(uri);
        match StreamKey::from_url(self.shared.enable_vhost, path, query, host) {
            Ok(key) => Some((key, query.to_owned())),
            Err(e) => {
                tracing::info!("refused: {e}");
                None
            }
        }
    }

    /// A 401 with a fresh challenge.
    fn challenge(&mut self, realm: &str) -> Denial {
        self.nonce = new_nonce();
        Denial::Challenge(if self.shared.rtsp.auth_basic {
            auth::basic_challenge(realm)
        } else {
            auth::digest_challenge(realm, &self.nonce)
        })
    }

    fn deny(&mut self, denial: Denial) -> Result<(), rtsp::Error> {
        match denial {
            Denial::Status(status) => self.session.reject(now(), status),
            Denial::Challenge(challenge) => self.session.auth_required(now(), challenge),
        }
    }

    /// RTSP auth (DESIGN.md §1): on_rtsp_realm; a realm means credentials checked with
    /// on_rtsp_auth, and on_play is then skipped. `Ok(true)`: authorized by credentials;
    /// `Ok(false)`: no RTSP auth, on_play decides; `Err`: the refusal to answer.
    async fn authorize(
        &mut self,
        credentials: Option<Credentials>,
        hook_req: &HookRequest,
    ) -> Result<bool, Denial> {
        let realm = match self.shared.hooks.on_rtsp_realm(hook_req).await {
            Ok(Some(realm)) => realm,
            Ok(None) => return Ok(false),
            Err(refused) => {
                tracing::info!("play refused: {refused}");
                return Err(Denial::Status(401));
            }
        };
        let Some(credentials) = credentials else {
            return Err(self.challenge(&realm));
        };
        let basic = matches!(credentials, Credentials::Basic { .. });
        if basic != self.shared.rtsp.auth_basic {
            return Err(self.challenge(&realm));
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
                return Err(self.challenge(&realm));
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
            Err(self.challenge(&realm))
        }
    }

    async fn describe(
        &mut self,
        uri: &str,
        credentials: Option<Credentials>,
    ) -> Result<(), rtsp::Error> {
        let Some((key, params)) = self.stream_key(uri) else {
            return self.session.reject(now(), 400);
        };
        tracing::Span::current().record("stream", field::display(&key));
        let viewer = self.session_info(&params);
        let hook_req = HookRequest::new(key.clone(), &viewer);
        let by_credentials = match self.authorize(credentials, &hook_req).await {
            Ok(by_credentials) => by_credentials,
            Err(denial) => return self.deny(denial),
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
                return self.session.reject(now(), 401);
            }
            Err(_) => {
                tracing::info!("play refused: stream not found");
                return self.session.reject(now(), 404);
            }
        };
        let Some(output) = shared.outputs.rtp(&key).await else {
            tracing::info!("play refused: no track RTSP can carry");
            return self.session.reject(now(), 415);
        };
        let (sdp, tracks) = output.describe();
        tracing::info!("describe");
        let controls = tracks.iter().map(|t| t.control.clone()).collect();
        // The role first: the answer may decode a SETUP the client sent behind the DESCRIBE.
        self.role = Role::Play(Box::new(Play {
            key,
            viewer,
            output,
            tracks,
            setups: Vec::new(),
            reader: None,
            paused: false,
        }));
        self.session.describe_ok(now(), sdp, controls)
    }

    async fn announce(&mut self, uri: &str, sdp: &[u8]) -> Result<(), rtsp::Error> {
        let Some((key, params)) = self.stream_key(uri) else {
            return self.session.reject(now(), 400);
        };
        tracing::Span::current().record("stream", field::display(&key));
        let tracks = match sdp::parse(sdp) {
            Ok(tracks) => tracks,
            Err(e) => {
                tracing::info!("publish refused: SDP: {e}");
                return self.session.reject(now(), 415);
            }
        };
        let shared = Arc::clone(&self.shared);
        let publisher = self.session_info(&params);
        let guard = match hooks::admit_publish(
            &shared.hooks,
            &shared.registry,
            key,
            publisher,
            &shared.protocol(),
        )
        .await
        {
            Ok(guard) => guard,
            Err(refusal) => {
                tracing::info!("publish refused: {refusal}");
                self.closing = true;
                let status = match refusal {
                    PublishRefusal::Denied(_) => 401,
                    _ => 406,
                };
                return self.session.reject(now(), status);
            }
        };
        tracing::info!(stream = %guard.key(), tracks = tracks.len(), "publish started");
        let controls = tracks.iter().map(|t| t.control.clone()).collect();
        let demuxer = Demuxer::new(&tracks, &rtsp::RtspConfig::default());
        self.role = Role::Record(Box::new(Record {
            guard,
            demuxer,
            setups: Vec::new(),
            recording: false,
            started: Instant::now(),
        }));
        self.session.announce_ok(now(), controls)
    }

    async fn setup(&mut self, track: usize, transport: Transport) -> Result<(), rtsp::Error> {
        let mut answer = transport.clone();
        let dest = if let (true, Some((rtp, rtcp))) = (transport.tcp, transport.interleaved) {
            Dest::Tcp { rtp, rtcp }
        } else {
            let Some((client_rtp, client_rtcp)) = transport.client_port else {
                return self.session.reject(now(), 461);
            };
            let (rtp, rtcp) = match udp_pair(self.local.ip()).await {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!("no UDP port pair: {e}");
                    return self.session.reject(now(), 500);
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
        self.session.setup_ok(now(), answer)
    }

    fn play(&mut self, uri: &str, first: bool) -> Result<(), rtsp::Error> {
        let Role::Play(play) = &mut self.role else {
            return self.session.reject(now(), 455);
        };
        play.paused = false;
        let mut rtp_info = Vec::new();
        if first {
            let (reader, info) = play.output.reader();
            play.reader = Some(reader);
            let base = uri.trim_end_matches('/');
            rtp_info = info
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
        }
        self.session.play_ok(now(), "npt=0.000-", &rtp_info)
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
