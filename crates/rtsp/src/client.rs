//! The client side of one RTSP connection (RFC 2326 §A.1 from the other end), without IO: it
//! writes the requests, reads the server's responses and interleaved frames, and keeps the
//! connection's clocks. Two jobs, as ZLMediaKit's proxies have:
//!
//! ```text
//!  play (pull a camera):  OPTIONS ─▶ DESCRIBE ─▶ SETUP per track ─▶ PLAY   ─▶ media in
//!  record (push):         OPTIONS ─▶ ANNOUNCE ─▶ SETUP per track ─▶ RECORD ─▶ media out
//!                         then GET_PARAMETER (or OPTIONS) every half `Session: ;timeout=`,
//!                         TEARDOWN on close
//! ```
//!
//! A 401 is answered once per request with the URL's credentials: Digest (RFC 2617 / RFC 7616
//! with MD5, `qop=auth` when offered) or Basic, whichever the server asked for (Digest first);
//! later requests carry the same answer with the nonce count moving on. Track URLs resolve
//! against `Content-Base`, else `Content-Location`, else the request URL (RFC 2326 §C.1.1). A
//! play sets up at most one video and one audio track among those it can carry (H.264,
//! H.265, AAC, G.711, Opus), over TCP (`RTP/AVP/TCP;unicast;interleaved=`) or UDP
//! (`RTP/AVP;unicast;client_port=`, the driver binding the ports).
//!
//! ```text
//!   TCP socket ──read──▶ handle_input(now, &bytes)?     (Err: undecodable; close)
//!   UDP socket ──recv──▶ handle_udp_activity(now)       (the packet itself: to the demuxer)
//!   timer fires ───────▶ handle_timeout(now)
//!                             │
//!                             ▼
//!                        poll_event() until None
//!                          Described / SetUp ──▶ know the tracks and where their RTP goes
//!                          BindUdp{track} ──▶ bind an even/odd port pair, udp_bound(now, ..)
//!                          Playing / Recording ──▶ media flows
//!                          Media{track, rtcp, payload} ──▶ demuxer (play)
//!                          Refused / Ended / TimedOut ──▶ close
//!                             │
//!                             ▼
//!   TCP socket ◀─write── poll_transmit(&mut out)   (media out: interleave(..) or UDP)
//!                             │
//!                             ▼
//!                        poll_timeout() ──▶ sleep until then, then handle_timeout(now)
//! ```
//!
//! Drain rule: after every `handle_input`, `handle_timeout`, `udp_bound` and `teardown`, call
//! `poll_event` until `None`, then write what `poll_transmit` gives, then re-arm the timer.
//! Partial input is never an error. Clocks: every request must be answered within
//! [`ClientOptions::request_timeout`]; once playing, the server must send something (a
//! response, an interleaved frame, a UDP packet) every [`ClientOptions::media_timeout`]; while
//! recording, every keep-alive must be answered within the request timeout.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use media::TrackKind;

use crate::auth::{self, Challenge};
use crate::message::{self, Reply, ResponseDecoder, ServerInput, Transport};
use crate::{sdp, Error, RtspConfig};

/// Longest URL (request URL, `Content-Base`, a track's control) the client will use.
pub const MAX_URL: usize = 2048;
/// Longest `Session` id accepted from a server (RFC 2326 §3.4 asks for at least 8 octets;
/// real ones are under 40).
pub const MAX_SESSION_ID: usize = 256;
/// The `Session: ;timeout=` assumed when a server gives none (RFC 2326 §12.37).
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(60);

/// How RTP travels between the server and this client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RtpOver {
    /// Interleaved in the RTSP connection (RFC 2326 §10.12).
    #[default]
    Tcp,
    /// A UDP port pair per track, bound by the driver ([`Event::BindUdp`]).
    Udp,
}

/// A user name and password for Digest or Basic.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Settings of one client session.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How RTP travels. Default: TCP.
    pub transport: RtpOver,
    /// The longest a request may wait for its response. Default: 10 s.
    pub request_timeout: Duration,
    /// Once playing, the longest the server may send nothing. Default: 10 s.
    pub media_timeout: Duration,
    /// `User-Agent`. Default: `ferrostream`.
    pub user_agent: String,
    /// The Digest client nonce, used with `qop=auth` (randomness from the driver). Default:
    /// `0a4f113b`.
    pub cnonce: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            transport: RtpOver::Tcp,
            request_timeout: Duration::from_secs(10),
            media_timeout: Duration::from_secs(10),
            user_agent: "ferrostream".into(),
            cnonce: "0a4f113b".into(),
        }
    }
}

/// What the client tells the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// DESCRIBE was answered: the tracks that will be set up, in the order of their indexes
    /// everywhere else (a demuxer is built from them).
    Described {
        /// The tracks, control URLs resolved.
        tracks: Vec<sdp::Track>,
    },
    /// UDP: bind an even/odd port pair for `track`, then [`Client::udp_bound`]. The client
    /// waits (no clock runs) until then.
    BindUdp {
        /// The track.
        track: usize,
    },
    /// A track's SETUP was answered with `transport` (the server's ports, interleaved
    /// channels and SSRC).
    SetUp {
        /// The track.
        track: usize,
        /// The transport as the server answered it.
        transport: Transport,
    },
    /// PLAY was answered 200: media follows.
    Playing,
    /// RECORD was answered 200: send media.
    Recording,
    /// An interleaved RTP (or RTCP) packet of a track.
    Media {
        /// The track.
        track: usize,
        /// On the track's RTCP channel.
        rtcp: bool,
        /// The packet.
        payload: Bytes,
    },
    /// The server refused a request (after the credentials, if any, were tried): the session
    /// is over.
    Refused {
        /// The request.
        method: &'static str,
        /// The status.
        status: u16,
    },
    /// The server ended the session (a TEARDOWN request from it): the session is over.
    Ended,
    /// A clock ran out: the session is over.
    TimedOut {
        /// Which clock.
        reason: ClientTimeout,
    },
}

/// Which of the client's clocks ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientTimeout {
    /// A request got no response within [`ClientOptions::request_timeout`].
    Response(&'static str),
    /// Playing, the server sent nothing for [`ClientOptions::media_timeout`].
    Silence,
}

impl std::fmt::Display for ClientTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientTimeout::Response(method) => write!(f, "no response to {method}"),
            ClientTimeout::Silence => f.write_str("the server sent nothing"),
        }
    }
}

/// What the session is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Job {
    Play,
    /// Record the tracks of this SDP.
    Record {
        sdp: String,
    },
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Options,
    Describe,
    Announce,
    /// SETUP of this track is sent (or waits for its UDP ports).
    Setup(usize),
    Start,
    Streaming,
    Closed,
}

/// The request in flight, kept whole so a 401 can send it again with credentials.
#[derive(Debug, Clone)]
struct Pending {
    method: &'static str,
    uri: String,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
    cseq: u32,
    sent: Instant,
    /// Times sent again with credentials for a 401 (once, and once more for a stale nonce).
    retried: u8,
}

/// One track being set up or set up.
#[derive(Debug, Clone)]
struct TrackSetup {
    /// The SETUP Request-URI.
    url: String,
    /// Interleaved channels (TCP), from the answer.
    channels: Option<(u8, u8)>,
    /// The client ports (UDP), from the driver.
    client_ports: Option<(u16, u16)>,
    /// The transport as answered.
    answer: Option<Transport>,
}

/// One RTSP client session, sans-IO; see the [module docs](self).
#[derive(Debug)]
pub struct Client {
    job: Job,
    url: String,
    login: Option<Login>,
    options: ClientOptions,
    decoder: ResponseDecoder,
    out: BytesMut,
    events: VecDeque<Event>,
    step: Step,
    next_cseq: u32,
    pending: Option<Pending>,
    /// A keep-alive in flight while streaming: its CSeq and when it was sent.
    keep_alive: Option<(u32, Instant)>,
    /// The challenge answered on every request, and the nonce count of the last answer.
    auth: Option<Challenge>,
    nc: u32,
    /// OPTIONS' `Public` listed GET_PARAMETER.
    get_parameter: bool,
    base: String,
    tracks: Vec<sdp::Track>,
    setups: Vec<TrackSetup>,
    session: Option<String>,
    session_timeout: Duration,
    /// The next keep-alive, while streaming.
    next_keep_alive: Option<Instant>,
    /// The last time something came in.
    last_input: Instant,
    /// Most bytes held while the driver binds UDP ports.
    max_held: usize,
}

impl Client {
    /// A session playing `url` (`rtsp://host[:port]/path`, without credentials; `login`
    /// answers a 401). The OPTIONS request is queued at once.
    pub fn play(
        url: &str,
        login: Option<Login>,
        options: ClientOptions,
        config: &RtspConfig,
        now: Instant,
    ) -> Result<Client, Error> {
        Client::new(Job::Play, url, login, options, config, now, Vec::new())
    }

    /// A session recording `tracks` (from a stream's [`crate::mux::Muxer::tracks`], whose
    /// packets will be sent) to `url`, announced with the session name `name`.
    pub fn record(
        url: &str,
        login: Option<Login>,
        tracks: Vec<sdp::Track>,
        name: &str,
        options: ClientOptions,
        config: &RtspConfig,
        now: Instant,
    ) -> Result<Client, Error> {
        if tracks.is_empty() {
            return Err(Error::Unsupported("nothing to record".into()));
        }
        let sdp = sdp::write(&tracks, name);
        Client::new(
            Job::Record { sdp },
            url,
            login,
            options,
            config,
            now,
            tracks,
        )
    }

    fn new(
        job: Job,
        url: &str,
        login: Option<Login>,
        options: ClientOptions,
        config: &RtspConfig,
        now: Instant,
        tracks: Vec<sdp::Track>,
    ) -> Result<Client, Error> {
        let url = checked_url(url, "RTSP URL")?;
        let scheme_ok = url
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("rtsp://"));
        if !scheme_ok {
            return Err(Error::Unsupported(format!("URL scheme of {url}")));
        }
        let mut client = Client {
            job,
            base: url.clone(),
            url,
            login,
            options,
            decoder: ResponseDecoder::new(config.max_message),
            out: BytesMut::new(),
            events: VecDeque::new(),
            step: Step::Options,
            next_cseq: 1,
            pending: None,
            keep_alive: None,
            auth: None,
            nc: 0,
            get_parameter: false,
            tracks,
            setups: Vec::new(),
            session: None,
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            next_keep_alive: None,
            last_input: now,
            max_held: config.max_message.saturating_mul(2),
        };
        let uri = client.url.clone();
        client.send(now, "OPTIONS", uri, Vec::new(), Bytes::new());
        Ok(client)
    }

    /// The tracks: described (play) or announced (record), in index order.
    pub fn tracks(&self) -> &[sdp::Track] {
        &self.tracks
    }

    /// The transport `track` was set up with, as the server answered it.
    pub fn transport(&self, track: usize) -> Option<&Transport> {
        self.setups.get(track)?.answer.as_ref()
    }

    /// The server's session id, once a SETUP was answered.
    pub fn session_id(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// True once the session is over (refused, ended, timed out, torn down, undecodable).
    pub fn is_closed(&self) -> bool {
        self.step == Step::Closed
    }

    /// True between PLAY's (or RECORD's) 200 and the end.
    pub fn is_streaming(&self) -> bool {
        self.step == Step::Streaming
    }

    /// Feeds bytes read from the TCP connection at `now`. Partial input is kept for later.
    /// `Err`: the server's stream cannot be decoded, or broke the protocol (a 200 without
    /// what it must carry, an SDP with nothing to play); the session is over.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error> {
        if self.step == Step::Closed {
            return Ok(());
        }
        self.decoder.push(bytes);
        self.decode(now)
    }

    /// Handles what the decoder holds, until it needs more bytes, the driver must bind ports,
    /// or the session ends.
    fn decode(&mut self, now: Instant) -> Result<(), Error> {
        loop {
            if self.waiting_for_ports() {
                // The server cannot have answered a SETUP not sent yet; what it sent is held
                // (bounded) until the driver answers.
                let held = self.decoder.buffered();
                if held > self.max_held {
                    return Err(self.fail(Error::limit(
                        "bytes held while binding UDP ports",
                        held,
                        self.max_held,
                    )));
                }
                return Ok(());
            }
            let input = match self.decoder.poll() {
                Ok(Some(input)) => input,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.fail(e)),
            };
            self.last_input = now;
            match input {
                ServerInput::Interleaved { channel, payload } => self.interleaved(channel, payload),
                ServerInput::Request(request) => self.server_request(&request),
                ServerInput::Response(reply) => {
                    if let Err(e) = self.response(now, &reply) {
                        return Err(self.fail(e));
                    }
                }
            }
            if self.step == Step::Closed {
                return Ok(());
            }
        }
    }

    /// A UDP packet from the server arrived at `now`: it counts as the server being alive.
    pub fn handle_udp_activity(&mut self, now: Instant) {
        self.last_input = now;
    }

    /// The driver kept the client waiting until `now` (admitting the stream after
    /// [`Event::Playing`], say): the server's silence until then does not count against it.
    pub fn resume_clocks(&mut self, now: Instant) {
        self.last_input = self.last_input.max(now);
    }

    /// Tells the client the time is `now`: a keep-alive goes out when due, and a clock that
    /// ran out ends the session ([`Event::TimedOut`]). Early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.step == Step::Closed {
            return;
        }
        let expired =
            |since: Instant, limit: Duration| since.checked_add(limit).is_some_and(|d| d <= now);
        if let Some(p) = &self.pending {
            if !self.waiting_for_ports() && expired(p.sent, self.options.request_timeout) {
                let method = p.method;
                return self.time_out(ClientTimeout::Response(method));
            }
        }
        if self.step != Step::Streaming {
            return;
        }
        match self.job {
            Job::Play if expired(self.last_input, self.options.media_timeout) => {
                return self.time_out(ClientTimeout::Silence);
            }
            Job::Record { .. } => {
                if let Some((_, sent)) = self.keep_alive {
                    if expired(sent, self.options.request_timeout) {
                        return self.time_out(ClientTimeout::Response("keep-alive"));
                    }
                }
            }
            _ => {}
        }
        if self.next_keep_alive.is_some_and(|at| at <= now) {
            self.send_keep_alive(now);
        }
    }

    /// The next event, if any. Drain after every call that takes input or an answer.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Appends the requests (and replies) to write to the TCP connection onto `out`; false
    /// when there are none.
    pub fn poll_transmit(&mut self, out: &mut BytesMut) -> bool {
        if self.out.is_empty() {
            return false;
        }
        out.unsplit(self.out.split());
        true
    }

    /// When [`Client::handle_timeout`] must next be called; `None` while the driver binds
    /// UDP ports, or once the session is over.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.step == Step::Closed || self.waiting_for_ports() {
            return None;
        }
        let request = self
            .pending
            .as_ref()
            .and_then(|p| p.sent.checked_add(self.options.request_timeout));
        let mut deadline = request;
        let mut earliest = |d: Option<Instant>| {
            deadline = match (deadline, d) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        };
        if self.step == Step::Streaming {
            earliest(self.next_keep_alive);
            match self.job {
                Job::Play => earliest(self.last_input.checked_add(self.options.media_timeout)),
                Job::Record { .. } => earliest(
                    self.keep_alive
                        .and_then(|(_, sent)| sent.checked_add(self.options.request_timeout)),
                ),
            }
        }
        deadline
    }

    /// The driver bound `track`'s UDP port pair (`rtp`, `rtp + 1`) after [`Event::BindUdp`]:
    /// the SETUP goes out, and what the server sent meanwhile is decoded (so `Err` as for
    /// [`Client::handle_input`]).
    pub fn udp_bound(&mut self, now: Instant, track: usize, rtp: u16) -> Result<(), Error> {
        if self.step != Step::Setup(track) || !self.waiting_for_ports() {
            tracing::debug!(track, "UDP ports for a SETUP not waiting");
            return Ok(());
        }
        if let Some(setup) = self.setups.get_mut(track) {
            setup.client_ports = Some((rtp, rtp.saturating_add(1)));
        }
        self.pending = None;
        self.send_setup(now, track);
        self.decode(now)
    }

    /// Ends the session: a TEARDOWN is queued when the server gave a session (write it, then
    /// close the connection). Nothing more is decoded.
    pub fn teardown(&mut self, now: Instant) {
        if self.step == Step::Closed {
            return;
        }
        if self.session.is_some() {
            let uri = self.base.clone();
            self.pending = None;
            self.send(now, "TEARDOWN", uri, Vec::new(), Bytes::new());
        }
        self.step = Step::Closed;
    }

    /// Writes `payload` as an interleaved frame on `track`'s RTP (or RTCP) channel onto
    /// `out`; false when the track is not set up over TCP. A payload over 65 535 bytes is an
    /// error.
    pub fn interleave(
        &self,
        track: usize,
        rtcp: bool,
        payload: &[u8],
        out: &mut BytesMut,
    ) -> Result<bool, Error> {
        let Some((rtp_channel, rtcp_channel)) = self.setups.get(track).and_then(|s| s.channels)
        else {
            return Ok(false);
        };
        let channel = if rtcp { rtcp_channel } else { rtp_channel };
        message::write_interleaved(channel, payload, out)?;
        Ok(true)
    }

    /// While the driver binds UDP ports for the SETUP about to go out.
    fn waiting_for_ports(&self) -> bool {
        matches!(self.step, Step::Setup(_))
            && self.options.transport == RtpOver::Udp
            && self
                .pending
                .as_ref()
                .is_some_and(|p| p.method == "SETUP" && p.cseq == 0)
    }

    fn fail(&mut self, error: Error) -> Error {
        tracing::debug!(%error, "RTSP server input refused");
        self.step = Step::Closed;
        error
    }

    fn time_out(&mut self, reason: ClientTimeout) {
        tracing::debug!(%reason, "timed out");
        self.step = Step::Closed;
        self.events.push_back(Event::TimedOut { reason });
    }

    fn refused(&mut self, method: &'static str, status: u16) {
        tracing::debug!(method, status, "refused");
        self.step = Step::Closed;
        self.events.push_back(Event::Refused { method, status });
    }

    /// Writes a request with the session's headers (Session, Authorization, User-Agent) and
    /// keeps it as the one in flight.
    fn send(
        &mut self,
        now: Instant,
        method: &'static str,
        uri: String,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
    ) {
        let cseq = self.write(method, &uri, &headers, &body);
        self.pending = Some(Pending {
            method,
            uri,
            headers,
            body,
            cseq,
            sent: now,
            retried: 0,
        });
    }

    /// Writes a request; returns its CSeq.
    fn write(
        &mut self,
        method: &'static str,
        uri: &str,
        headers: &[(&'static str, String)],
        body: &[u8],
    ) -> u32 {
        let cseq = self.next_cseq;
        self.next_cseq = self.next_cseq.wrapping_add(1).max(1);
        let mut all: Vec<(&str, String)> = headers.iter().map(|(n, v)| (*n, v.clone())).collect();
        all.push(("User-Agent", self.options.user_agent.clone()));
        if let Some(session) = &self.session {
            all.push(("Session", session.clone()));
        }
        if let (Some(challenge), Some(login)) = (&self.auth, &self.login) {
            self.nc = self.nc.wrapping_add(1);
            let value = challenge.authorization(
                &login.username,
                &login.password,
                method,
                uri,
                &self.options.cnonce,
                self.nc,
            );
            all.push(("Authorization", value));
        }
        let refs: Vec<(&str, &str)> = all.iter().map(|(n, v)| (*n, v.as_str())).collect();
        message::write_request(method, uri, cseq, &refs, body, &mut self.out);
        cseq
    }

    /// A response: to the request in flight, to a keep-alive, or stray (ignored).
    fn response(&mut self, now: Instant, reply: &Reply) -> Result<(), Error> {
        let cseq = reply.cseq();
        if let Some((ka, _)) = self.keep_alive {
            if cseq == Some(ka) {
                self.keep_alive = None;
                if reply.status != 200 {
                    tracing::debug!(status = reply.status, "keep-alive answered");
                }
                return Ok(());
            }
        }
        let Some(pending) = self.pending.clone() else {
            tracing::debug!(?cseq, "response to no request");
            return Ok(());
        };
        // A response without CSeq answers the one request in flight (some cameras omit it).
        if cseq.is_some_and(|c| c != pending.cseq) || pending.cseq == 0 {
            tracing::debug!(?cseq, expected = pending.cseq, "stray response");
            return Ok(());
        }
        if reply.status == 401 {
            return self.unauthorized(now, reply, pending);
        }
        self.pending = None;
        match (pending.method, self.step) {
            ("OPTIONS", Step::Options) => {
                // A camera answering OPTIONS with an error may still DESCRIBE fine.
                self.get_parameter = reply.header("Public").is_some_and(|p| {
                    p.split(',')
                        .any(|m| m.trim().eq_ignore_ascii_case("GET_PARAMETER"))
                });
                self.after_options(now);
                Ok(())
            }
            ("DESCRIBE", Step::Describe) if reply.status == 200 => self.described(now, reply),
            ("ANNOUNCE", Step::Announce) if reply.status == 200 => {
                self.setups = self
                    .tracks
                    .iter()
                    .map(|t| TrackSetup {
                        url: join(&self.url, &t.control),
                        channels: None,
                        client_ports: None,
                        answer: None,
                    })
                    .collect();
                self.setup_next(now, 0);
                Ok(())
            }
            ("SETUP", Step::Setup(track)) if reply.status == 200 => self.set_up(now, track, reply),
            ("PLAY", Step::Start) | ("RECORD", Step::Start) if reply.status == 200 => {
                self.step = Step::Streaming;
                self.schedule_keep_alive(now);
                self.events.push_back(if pending.method == "PLAY" {
                    Event::Playing
                } else {
                    Event::Recording
                });
                Ok(())
            }
            (method, _) => {
                self.refused(method, reply.status);
                Ok(())
            }
        }
    }

    /// A 401: send the request again with the credentials, once.
    fn unauthorized(&mut self, now: Instant, reply: &Reply, pending: Pending) -> Result<(), Error> {
        let challenge = auth::choose_challenge(reply.headers_named("WWW-Authenticate"));
        let stale = matches!(challenge, Some(Challenge::Digest { stale: true, .. }));
        let (Some(challenge), true) = (challenge, self.login.is_some()) else {
            self.refused(pending.method, 401);
            return Ok(());
        };
        if pending.retried >= 2 || (pending.retried == 1 && !stale) {
            self.refused(pending.method, 401);
            return Ok(());
        }
        self.auth = Some(challenge);
        self.nc = 0;
        let cseq = self.write(
            pending.method,
            &pending.uri,
            &pending.headers,
            &pending.body,
        );
        self.pending = Some(Pending {
            cseq,
            sent: now,
            retried: pending.retried + 1,
            ..pending
        });
        Ok(())
    }

    fn after_options(&mut self, now: Instant) {
        match &self.job {
            Job::Play => {
                self.step = Step::Describe;
                let uri = self.url.clone();
                let headers = vec![("Accept", "application/sdp".to_owned())];
                self.send(now, "DESCRIBE", uri, headers, Bytes::new());
            }
            Job::Record { sdp } => {
                self.step = Step::Announce;
                let (uri, body) = (self.url.clone(), Bytes::from(sdp.clone()));
                let headers = vec![("Content-Type", "application/sdp".to_owned())];
                self.send(now, "ANNOUNCE", uri, headers, body);
            }
        }
    }

    /// DESCRIBE's 200: the base URL, the tracks to set up (the first of each kind we carry).
    fn described(&mut self, now: Instant, reply: &Reply) -> Result<(), Error> {
        let base = reply
            .header("Content-Base")
            .or_else(|| reply.header("Content-Location"))
            .filter(|b| !b.is_empty());
        if let Some(base) = base {
            self.base = checked_url(base, "Content-Base")?;
        }
        let offered = sdp::parse(&reply.body)?;
        let mut tracks: Vec<sdp::Track> = Vec::new();
        for track in offered {
            let kind = track.info.kind();
            if tracks.iter().any(|t| t.info.kind() == kind) {
                continue;
            }
            if kind == TrackKind::Video || kind == TrackKind::Audio {
                tracks.push(track);
            }
        }
        let mut setups = Vec::with_capacity(tracks.len());
        for t in &tracks {
            let url = match t.control.trim() {
                "" | "*" => self.base.clone(),
                c if c.len() > 7 && c[..7].eq_ignore_ascii_case("rtsp://") => c.to_owned(),
                c => join(&self.base, c),
            };
            setups.push(TrackSetup {
                url: checked_url(&url, "track control URL")?,
                channels: None,
                client_ports: None,
                answer: None,
            });
        }
        self.tracks = tracks;
        self.setups = setups;
        self.events.push_back(Event::Described {
            tracks: self.tracks.clone(),
        });
        self.setup_next(now, 0);
        Ok(())
    }

    /// SETUP of `track`, or PLAY/RECORD once every track is set up.
    fn setup_next(&mut self, now: Instant, track: usize) {
        if track >= self.setups.len() {
            self.step = Step::Start;
            let method = if self.job == Job::Play {
                "PLAY"
            } else {
                "RECORD"
            };
            let uri = self.base.clone();
            let headers = vec![("Range", "npt=0.000-".to_owned())];
            self.send(now, method, uri, headers, Bytes::new());
            return;
        }
        self.step = Step::Setup(track);
        match self.options.transport {
            RtpOver::Tcp => self.send_setup(now, track),
            RtpOver::Udp => {
                // Waiting for the driver: a placeholder with CSeq 0 marks it.
                self.pending = Some(Pending {
                    method: "SETUP",
                    uri: String::new(),
                    headers: Vec::new(),
                    body: Bytes::new(),
                    cseq: 0,
                    sent: now,
                    retried: 0,
                });
                self.events.push_back(Event::BindUdp { track });
            }
        }
    }

    fn send_setup(&mut self, now: Instant, track: usize) {
        let Some(setup) = self.setups.get(track) else {
            return;
        };
        let record = matches!(self.job, Job::Record { .. });
        let transport = match self.options.transport {
            RtpOver::Tcp => {
                let base = u8::try_from(track * 2).unwrap_or(u8::MAX - 1);
                Transport {
                    tcp: true,
                    interleaved: Some((base, base.saturating_add(1))),
                    record,
                    ..Transport::default()
                }
            }
            RtpOver::Udp => Transport {
                client_port: setup.client_ports,
                record,
                ..Transport::default()
            },
        };
        let uri = setup.url.clone();
        let headers = vec![("Transport", transport.to_string())];
        self.send(now, "SETUP", uri, headers, Bytes::new());
    }

    /// SETUP's 200: the session, the transport.
    fn set_up(&mut self, now: Instant, track: usize, reply: &Reply) -> Result<(), Error> {
        let session = reply.header("Session").ok_or(Error::ProtocolViolation {
            context: "SETUP answered without a Session",
        })?;
        let mut parts = session.split(';');
        let id = parts.next().unwrap_or("").trim();
        let id_ok = !id.is_empty()
            && id.len() <= MAX_SESSION_ID
            && id.bytes().all(|b| b.is_ascii_graphic() && b != b';');
        if !id_ok {
            return Err(Error::malformed(0, "Session id"));
        }
        match &self.session {
            Some(s) if s != id => {
                return Err(Error::ProtocolViolation {
                    context: "a second SETUP answered with another session",
                })
            }
            Some(_) => {}
            None => self.session = Some(id.to_owned()),
        }
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("timeout") {
                    if let Ok(secs) = v.trim().parse::<u64>() {
                        self.session_timeout = Duration::from_secs(secs.clamp(2, 3600));
                    }
                }
            }
        }
        let transport = reply
            .header("Transport")
            .map(Transport::parse)
            .transpose()?
            .ok_or(Error::ProtocolViolation {
                context: "SETUP answered without a Transport",
            })?;
        let Some(setup) = self.setups.get_mut(track) else {
            return Ok(());
        };
        let mut answer = transport.clone();
        match self.options.transport {
            RtpOver::Tcp => {
                if !transport.tcp && transport.client_port.is_some() {
                    return Err(Error::ProtocolViolation {
                        context: "TCP asked, UDP answered",
                    });
                }
                let asked = u8::try_from(track * 2).unwrap_or(u8::MAX - 1);
                let channels = transport
                    .interleaved
                    .unwrap_or((asked, asked.saturating_add(1)));
                answer.tcp = true;
                answer.interleaved = Some(channels);
                setup.channels = Some(channels);
            }
            RtpOver::Udp => {
                if transport.tcp {
                    return Err(Error::ProtocolViolation {
                        context: "UDP asked, TCP answered",
                    });
                }
                let record = matches!(self.job, Job::Record { .. });
                if record && transport.server_port.is_none() {
                    return Err(Error::ProtocolViolation {
                        context: "UDP SETUP for RECORD answered without server_port",
                    });
                }
                answer.client_port = answer.client_port.or(setup.client_ports);
            }
        }
        setup.answer = Some(answer.clone());
        self.events.push_back(Event::SetUp {
            track,
            transport: answer,
        });
        self.setup_next(now, track + 1);
        Ok(())
    }

    fn schedule_keep_alive(&mut self, now: Instant) {
        let every = (self.session_timeout / 2).max(Duration::from_secs(1));
        self.next_keep_alive = now.checked_add(every);
    }

    fn send_keep_alive(&mut self, now: Instant) {
        self.schedule_keep_alive(now);
        if self.keep_alive.is_some() && matches!(self.job, Job::Play) {
            // A player's liveness is its media; an unanswered keep-alive is only replaced.
            self.keep_alive = None;
        }
        if self.keep_alive.is_some() {
            return;
        }
        let method = if self.get_parameter {
            "GET_PARAMETER"
        } else {
            "OPTIONS"
        };
        let uri = self.base.clone();
        let cseq = self.write(method, &uri, &[], &[]);
        self.keep_alive = Some((cseq, now));
    }

    fn interleaved(&mut self, channel: u8, payload: Bytes) {
        let found = self
            .setups
            .iter()
            .enumerate()
            .find_map(|(i, s)| match s.channels {
                Some((rtp, _)) if rtp == channel => Some((i, false)),
                Some((_, rtcp)) if rtcp == channel => Some((i, true)),
                _ => None,
            });
        match found {
            Some((track, rtcp)) => self.events.push_back(Event::Media {
                track,
                rtcp,
                payload,
            }),
            None => tracing::trace!(channel, "interleaved frame on no track's channel"),
        }
    }

    /// A request from the server (RFC 2326 §10): keep-alives are answered, TEARDOWN ends the
    /// session, the rest is not implemented here.
    fn server_request(&mut self, request: &Reply) {
        let status = match request.method.as_str() {
            "OPTIONS" | "GET_PARAMETER" | "SET_PARAMETER" => 200,
            "TEARDOWN" => 200,
            _ => 501,
        };
        let cseq = request.cseq().map(|c| c.to_string());
        let mut response = message::Response::new(status, None);
        if let Some(cseq) = cseq {
            response = response.header("CSeq", cseq);
        }
        response.write(&mut self.out);
        if request.method == "TEARDOWN" {
            tracing::debug!("the server ended the session");
            self.step = Step::Closed;
            self.events.push_back(Event::Ended);
        }
    }
}

/// `control` below `base` as RTSP clients resolve it in practice (ffmpeg, live555): appended
/// after a `/` rather than replacing the last path segment (RFC 2326 §C.1.1 with the
/// `Content-Base` servers send ending in `/` gives the same).
fn join(base: &str, control: &str) -> String {
    if base.ends_with('/') {
        format!("{base}{control}")
    } else {
        format!("{base}/{control}")
    }
}

/// A URL the client will write on a request line: visible ASCII, no spaces, bounded.
fn checked_url(url: &str, what: &'static str) -> Result<String, Error> {
    let url = url.trim();
    if url.len() > MAX_URL {
        return Err(Error::limit(what, url.len(), MAX_URL));
    }
    if url.is_empty() || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::malformed(0, what));
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests;
