//! The server side of one RTSP connection (RFC 2326 §A.1), without IO: it decodes what the
//! client sends, answers what needs no policy, asks the driver about the rest, queues every
//! reply, and keeps the connection's clocks.
//!
//! Requests the session answers by itself: OPTIONS, GET_PARAMETER and SET_PARAMETER (the
//! keep-alives), PAUSE, RECORD and TEARDOWN (reported afterwards as [`Event::Pause`],
//! [`Event::Record`] and [`Event::Teardown`]), and every refusal the state machine can make
//! alone: 400 without a `CSeq`, 454 for another session's id, 455 out of order, 404, 453, 461
//! for a SETUP it cannot take, 501 for an unknown method; a stream that cannot be decoded gets
//! a 400 and ends the session. The others become an [`Event`] the driver answers with a call:
//!
//! ```text
//!  Event::Describe  ──▶ describe_ok(now, sdp, controls) | auth_required(now, challenge) | reject
//!  Event::Announce  ──▶ announce_ok(now, controls)                                      | reject
//!  Event::Setup     ──▶ setup_ok(now, transport)                                        | reject
//!  Event::Play      ──▶ play_ok(now, range, rtp_info)                                   | reject
//! ```
//!
//! One request at a time waits for its answer. What the client sent after it (RFC 2326 allows
//! pipelining) stays in the decoder and is decoded by the answer, so replies go out in request
//! order; the answer calls therefore return `Err` like [`Session::handle_input`].
//!
//! States, after the answers:
//!
//! ```text
//!  Init ──DESCRIBE──▶ Play (tracks known) ──SETUP…──▶ ──PLAY──▶ playing ⇄ PAUSE
//!    └───ANNOUNCE──▶ Record (tracks known) ──SETUP…──▶ ──RECORD──▶ recording
//!  any state ──TEARDOWN──▶ closed
//! ```
//!
//! Clocks (`now` comes from the driver), as `rtsp.handshakeSecond` and `rtsp.keepAliveSecond`
//! mean them: the first complete request must come within [`RtspConfig::handshake_timeout`] of
//! [`Session::new`]; after it, a complete request, interleaved frame or UDP packet
//! ([`Session::handle_udp_activity`]) must come every [`RtspConfig::keep_alive`]; partial bytes
//! never count, and a request (or frame) must be complete within `handshake_timeout` of its
//! first byte. A clock that runs out while bytes are held answers `408 Request Time-out` and
//! ends the session ([`Event::TimedOut`]). While a request waits for the driver's answer no
//! clock runs against the client, and the answer restarts them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::auth::{self, Credentials};
use crate::message::{Decoder, Input, Request, Response, RtpInfo, Transport};
use crate::{Error, RtspConfig};

/// The methods the server answers, for OPTIONS' `Public`.
pub const PUBLIC: &str =
    "OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, RECORD, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER";

/// What the session tells the driver. The first four wait for an answer; the session decodes
/// nothing more until it comes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// DESCRIBE: authorize, find the stream, then [`Session::describe_ok`],
    /// [`Session::auth_required`] or [`Session::reject`].
    Describe {
        /// The Request-URI as sent (Digest hashes it as written).
        uri: String,
        /// The `Authorization` header's credentials, when it has parsable ones.
        credentials: Option<Credentials>,
    },
    /// ANNOUNCE: admit the publisher of `sdp`, then [`Session::announce_ok`] or
    /// [`Session::reject`].
    Announce {
        /// The Request-URI.
        uri: String,
        /// The request body: the publisher's SDP.
        sdp: Bytes,
    },
    /// SETUP of `track` with `transport`, validated (unicast, a client port pair for UDP,
    /// interleaved channels chosen for TCP): bind what it needs, then [`Session::setup_ok`]
    /// or [`Session::reject`].
    Setup {
        /// Index of the track the URL names.
        track: usize,
        /// The transport to set up, as the server will answer it.
        transport: Transport,
    },
    /// PLAY: start (or, `first` false, resume) sending, then [`Session::play_ok`] or
    /// [`Session::reject`].
    Play {
        /// The Request-URI, the base of `RTP-Info`'s track URLs.
        uri: String,
        /// The first PLAY of the session rather than a resume after PAUSE.
        first: bool,
    },
    /// PAUSE was answered: stop sending.
    Pause,
    /// RECORD was answered: the publisher's media counts from now.
    Record,
    /// TEARDOWN was answered and the session is over: write what [`Session::poll_transmit`]
    /// gives, then close.
    Teardown,
    /// An interleaved frame (RFC 2326 §10.12): RTP or RTCP on a channel SETUP negotiated.
    Interleaved {
        /// The channel id.
        channel: u8,
        /// The packet.
        payload: Bytes,
    },
    /// A clock ran out and the session is over (with a 408 queued when a request was
    /// incomplete): write what [`Session::poll_transmit`] gives, then close.
    TimedOut {
        /// Which clock.
        reason: Timeout,
    },
}

/// Which of a session's clocks ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timeout {
    /// No complete request within [`RtspConfig::handshake_timeout`] of the connection.
    Handshake,
    /// A request (or frame) was not complete within [`RtspConfig::handshake_timeout`] of its
    /// first byte.
    Request,
    /// Nothing complete for [`RtspConfig::keep_alive`].
    KeepAlive,
}

impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Timeout::Handshake => "no request in time",
            Timeout::Request => "a request took too long to arrive",
            Timeout::KeepAlive => "nothing received for the keep-alive time",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Init,
    Play,
    Record,
}

/// What a request waiting for the driver's answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    Describe,
    Announce,
    Setup(usize),
    Play,
}

/// The request waiting for the driver's answer.
#[derive(Debug, Clone)]
struct Pending {
    asked: Asked,
    cseq: Option<u32>,
    uri: String,
}

/// One RTSP connection's session, sans-IO.
///
/// ```text
/// read → handle_input(now, ..)? → while let Some(ev) = poll_event() { answer(now, ..)? }
///      → poll_transmit → write → sleep until poll_timeout() → handle_timeout(now)
/// ```
#[derive(Debug)]
pub struct Session {
    id: String,
    timeout_secs: u32,
    decoder: Decoder,
    out: BytesMut,
    events: VecDeque<Event>,
    pending: Option<Pending>,
    /// TEARDOWN, a timeout or undecodable input ended the session.
    closed: bool,
    requests: u64,
    clocks: Clocks,
    /// Most bytes held while a request waits for its answer.
    max_held: usize,
    mode: Mode,
    /// Track controls, once described or announced.
    controls: Vec<String>,
    setups: Vec<(usize, Transport)>,
    /// SETUPs completed, repeats included, against `max_setups`.
    setups_done: usize,
    max_setups: usize,
    /// SETUPs refused for the cap: the first is logged as a warning, the rest at debug.
    setups_refused: usize,
    started: bool,
    paused: bool,
}

impl Session {
    /// A session opened at `now` with id `id` (random, from the driver). Its `Session` header
    /// says `timeout=` [`RtspConfig::keep_alive`]; it takes at most
    /// [`RtspConfig::max_setups`] SETUPs and requests of [`RtspConfig::max_message`] bytes.
    pub fn new(id: String, config: &RtspConfig, now: Instant) -> Session {
        Session {
            id,
            timeout_secs: u32::try_from(config.keep_alive.as_secs()).unwrap_or(u32::MAX),
            decoder: Decoder::new(config.max_message),
            out: BytesMut::new(),
            events: VecDeque::new(),
            pending: None,
            closed: false,
            requests: 0,
            clocks: Clocks::new(now, config),
            // One more message behind the one held back, and a read's worth of what follows.
            max_held: config.max_message.saturating_mul(2),
            mode: Mode::Init,
            controls: Vec::new(),
            setups: Vec::new(),
            setups_done: 0,
            max_setups: config.max_setups,
            setups_refused: 0,
            started: false,
            paused: false,
        }
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The tracks set up so far: (track index, transport).
    pub fn setups(&self) -> &[(usize, Transport)] {
        &self.setups
    }

    /// True between PLAY and PAUSE.
    pub fn is_playing(&self) -> bool {
        self.mode == Mode::Play && self.started && !self.paused
    }

    /// True after RECORD.
    pub fn is_recording(&self) -> bool {
        self.mode == Mode::Record && self.started
    }

    /// True once a complete request has arrived (the connection is past its opening).
    pub fn is_established(&self) -> bool {
        self.requests > 0
    }

    /// True once the session is over (TEARDOWN, a timeout, undecodable input): it decodes
    /// nothing more and has no clock; write what [`Session::poll_transmit`] gives and close.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Feeds bytes read from the TCP connection at `now`. Partial input is kept for later.
    ///
    /// `Err` means the stream cannot be decoded (or a client sent more than
    /// `2 × max_message` bytes behind a request waiting for its answer): a `400` is queued and
    /// the session is over. Input after the session is over is ignored.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error> {
        if self.closed {
            return Ok(());
        }
        self.decoder.push(bytes);
        if self.pending.is_some() {
            if self.decoder.buffered() > self.max_held {
                let held = self.decoder.buffered();
                return Err(self.fail(Error::limit(
                    "bytes behind an unanswered request",
                    held,
                    self.max_held,
                )));
            }
            return Ok(());
        }
        self.decode(now)
    }

    /// A UDP packet for this session (RTP or RTCP on a port pair SETUP gave) arrived at `now`:
    /// it counts as activity for the keep-alive.
    pub fn handle_udp_activity(&mut self, now: Instant) {
        if !self.closed {
            self.clocks.alive(now);
        }
    }

    /// Tells the session the time is `now`: when a deadline of [`Session::poll_timeout`] has
    /// passed it queues a 408 if a request is incomplete, reports [`Event::TimedOut`] and is
    /// over. Early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.poll_timeout() {
            Some(deadline) if deadline <= now => {}
            _ => return,
        }
        if self.decoder.buffered() > 0 {
            // RFC 2326 §7.1.1 and RFC 2616 §10.4.9: the client did not produce a request
            // within the time the server was prepared to wait.
            Response::new(408, None).write(&mut self.out);
        }
        let reason = self.clocks.expired(now);
        tracing::debug!(%reason, "timed out");
        self.closed = true;
        self.events.push_back(Event::TimedOut { reason });
    }

    /// The next event, if any. Drain after every call that takes input or an answer.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Appends the replies to write to the TCP connection onto `out` (without a copy when
    /// `out` is empty); false when there are none.
    pub fn poll_transmit(&mut self, out: &mut BytesMut) -> bool {
        if self.out.is_empty() {
            return false;
        }
        out.unsplit(self.out.split());
        true
    }

    /// When [`Session::handle_timeout`] must next be called; `None` while a request waits for
    /// its answer, or once the session is over.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed || self.pending.is_some() {
            return None;
        }
        self.clocks.deadline()
    }

    /// Answers the waiting DESCRIBE with `200`, `sdp` as the body and its Request-URI as
    /// `Content-Base`; the stream's tracks have the `a=control` values `controls`.
    pub fn describe_ok(
        &mut self,
        now: Instant,
        sdp: impl Into<Bytes>,
        controls: Vec<String>,
    ) -> Result<(), Error> {
        let Some(pending) = self.answering(Asked::Describe) else {
            return Ok(());
        };
        self.mode = Mode::Play;
        self.controls = controls;
        let response = Response::new(200, pending.cseq)
            .content_base(&pending.uri)
            .body("application/sdp", sdp);
        self.answered(now, &response)
    }

    /// Answers the waiting ANNOUNCE with `200`; the announced tracks have the `a=control`
    /// values `controls`.
    pub fn announce_ok(&mut self, now: Instant, controls: Vec<String>) -> Result<(), Error> {
        let Some(pending) = self.answering(Asked::Announce) else {
            return Ok(());
        };
        self.mode = Mode::Record;
        self.controls = controls;
        let response = self.ok(pending.cseq);
        self.answered(now, &response)
    }

    /// Answers the waiting SETUP with `200` and `transport` (the server's ports filled in).
    /// A repeated SETUP of a track replaces its transport.
    pub fn setup_ok(&mut self, now: Instant, transport: Transport) -> Result<(), Error> {
        let Some(pending) = self.answering_setup() else {
            return Ok(());
        };
        let Asked::Setup(track) = pending.asked else {
            return Ok(());
        };
        self.setups_done += 1;
        self.setups.retain(|(t, _)| *t != track);
        let response = self.ok(pending.cseq).transport(&transport);
        self.setups.push((track, transport));
        self.answered(now, &response)
    }

    /// Answers the waiting PLAY with `200`, `Range: range` and, when there are any,
    /// `RTP-Info` entries (RFC 2326 §12.33: the first packet of each track).
    pub fn play_ok(
        &mut self,
        now: Instant,
        range: &str,
        rtp_info: &[RtpInfo],
    ) -> Result<(), Error> {
        let Some(pending) = self.answering(Asked::Play) else {
            return Ok(());
        };
        self.started = true;
        self.paused = false;
        let mut response = self.ok(pending.cseq).header("Range", range);
        if !rtp_info.is_empty() {
            response = response.rtp_info(rtp_info);
        }
        self.answered(now, &response)
    }

    /// Answers the waiting request with `401 Unauthorized` and `WWW-Authenticate: challenge`
    /// (built with [`auth::digest_challenge`] or [`auth::basic_challenge`]).
    pub fn auth_required(&mut self, now: Instant, challenge: String) -> Result<(), Error> {
        let Some(pending) = self.pending.take() else {
            tracing::debug!("an answer with no request waiting");
            return Ok(());
        };
        let response = Response::new(401, pending.cseq).www_authenticate(challenge);
        self.answered(now, &response)
    }

    /// Refuses the waiting request with `status` (e.g. 401, 404, 415, 500); the session's
    /// state stays as it was, so the client may try again.
    pub fn reject(&mut self, now: Instant, status: u16) -> Result<(), Error> {
        let Some(pending) = self.pending.take() else {
            tracing::debug!(status, "an answer with no request waiting");
            return Ok(());
        };
        self.answered(now, &Response::new(status, pending.cseq))
    }

    /// A 200 carrying the `Session` header.
    fn ok(&self, cseq: Option<u32>) -> Response {
        Response::new(200, cseq).session(&self.id, Some(self.timeout_secs))
    }

    /// Takes the waiting request if it is `asked`.
    fn answering(&mut self, asked: Asked) -> Option<Pending> {
        if self.pending.as_ref().is_some_and(|p| p.asked == asked) {
            return self.pending.take();
        }
        tracing::debug!(?asked, "an answer for a request not waiting");
        None
    }

    fn answering_setup(&mut self) -> Option<Pending> {
        if matches!(
            self.pending,
            Some(Pending {
                asked: Asked::Setup(_),
                ..
            })
        ) {
            return self.pending.take();
        }
        tracing::debug!("a SETUP answer with no SETUP waiting");
        None
    }

    /// Queues the answer, restarts the clocks at `now` (the client was waiting for us) and
    /// decodes what the client sent behind the request.
    fn answered(&mut self, now: Instant, response: &Response) -> Result<(), Error> {
        if self.closed {
            return Ok(());
        }
        response.write(&mut self.out);
        self.clocks.resume(now);
        self.decode(now)
    }

    /// Ends the session for undecodable input: a 400 (with no `CSeq`: there is no request to
    /// echo) and nothing more.
    fn fail(&mut self, error: Error) -> Error {
        tracing::debug!(%error, "undecodable input");
        Response::new(400, None).write(&mut self.out);
        self.closed = true;
        error
    }

    /// Decodes and handles inputs until the decoder needs more bytes, a request waits for an
    /// answer, or the session ends; then sets the clocks by what came in at `now`.
    fn decode(&mut self, now: Instant) -> Result<(), Error> {
        let mut complete = false;
        while self.pending.is_none() && !self.closed {
            match self.decoder.poll() {
                Ok(Some(Input::Request(req))) => {
                    complete = true;
                    self.requests += 1;
                    self.request(&req);
                }
                Ok(Some(Input::Interleaved { channel, payload })) => {
                    complete = true;
                    self.events
                        .push_back(Event::Interleaved { channel, payload });
                }
                Ok(None) => break,
                Err(e) => return Err(self.fail(e)),
            }
        }
        if complete {
            self.clocks.alive(now);
        }
        self.clocks.read(now, complete, self.decoder.buffered() > 0);
        Ok(())
    }

    /// Answers a request here or asks the driver.
    fn request(&mut self, req: &Request) {
        let method: &str = req.method().into();
        tracing::debug!(method, uri = ?req.uri(), "request");
        if req.cseq().is_none() {
            return self.reply(Response::to(req, 400));
        }
        let stateful = matches!(method, "PLAY" | "RECORD" | "PAUSE" | "TEARDOWN");
        if stateful && req.session().is_some_and(|s| s != self.id) {
            return self.reply(Response::to(req, 454)); // Session Not Found
        }
        let set_up = !self.setups.is_empty();
        match method {
            "OPTIONS" => self.reply(Response::to(req, 200).header("Public", PUBLIC)),
            "GET_PARAMETER" | "SET_PARAMETER" => self.reply(self.ok(req.cseq())),
            "DESCRIBE" if self.mode == Mode::Init => {
                let credentials = req
                    .header("Authorization")
                    .and_then(|h| auth::parse_authorization(h).ok());
                self.ask(req, Asked::Describe);
                self.events.push_back(Event::Describe {
                    uri: req.uri().to_owned(),
                    credentials,
                });
            }
            "ANNOUNCE" if self.mode == Mode::Init => {
                self.ask(req, Asked::Announce);
                self.events.push_back(Event::Announce {
                    uri: req.uri().to_owned(),
                    sdp: req.body().clone(),
                });
            }
            "SETUP" => match self.setup(req) {
                Ok((track, transport)) => {
                    self.ask(req, Asked::Setup(track));
                    self.events.push_back(Event::Setup { track, transport });
                }
                Err(status) => self.reply(Response::to(req, status)),
            },
            "PLAY" if self.mode == Mode::Play && set_up => {
                self.ask(req, Asked::Play);
                self.events.push_back(Event::Play {
                    uri: req.uri().to_owned(),
                    first: !self.started,
                });
            }
            "PAUSE" if self.mode == Mode::Play && set_up => {
                self.paused = true;
                self.reply(self.ok(req.cseq()));
                self.events.push_back(Event::Pause);
            }
            "RECORD" if self.mode == Mode::Record && set_up => {
                self.started = true;
                self.reply(self.ok(req.cseq()));
                self.events.push_back(Event::Record);
            }
            // Method Not Valid in This State.
            "DESCRIBE" | "ANNOUNCE" | "PLAY" | "RECORD" | "PAUSE" => {
                self.reply(Response::to(req, 455))
            }
            "TEARDOWN" => {
                self.reply(self.ok(req.cseq()));
                self.closed = true;
                self.events.push_back(Event::Teardown);
            }
            _ => self.reply(Response::to(req, 501)),
        }
    }

    fn reply(&mut self, response: Response) {
        response.write(&mut self.out);
    }

    fn ask(&mut self, req: &Request, asked: Asked) {
        self.pending = Some(Pending {
            asked,
            cseq: req.cseq(),
            uri: req.uri().to_owned(),
        });
    }

    /// The track and transport a SETUP asks for, or the status refusing it.
    fn setup(&mut self, req: &Request) -> Result<(usize, Transport), u16> {
        if self.mode == Mode::Init {
            return Err(455);
        }
        let track = track_of(req.uri(), &self.controls).ok_or(404u16)?;
        if self.setups_done >= self.max_setups {
            // Every UDP SETUP binds a port pair; a client repeating them without end is
            // refused the way RFC 2326 §11.3.3 refuses a failed resource reservation.
            let cseq = req.cseq();
            if self.setups_refused == 0 {
                tracing::warn!(
                    cseq,
                    max = self.max_setups,
                    "SETUP refused: too many SETUPs"
                );
            } else {
                tracing::debug!(cseq, "SETUP refused: too many SETUPs");
            }
            self.setups_refused = self.setups_refused.saturating_add(1);
            return Err(453); // Not Enough Bandwidth
        }
        const UNSUPPORTED: u16 = 461; // Unsupported Transport
        let mut transport = req
            .header("Transport")
            .and_then(|t| Transport::parse(t).ok())
            .ok_or(UNSUPPORTED)?;
        if transport.multicast {
            return Err(UNSUPPORTED);
        }
        if transport.tcp {
            let (rtp, rtcp) = match transport.interleaved {
                Some(pair) => pair,
                None => {
                    let base = u8::try_from(track * 2).unwrap_or(u8::MAX - 1);
                    (base, base.saturating_add(1))
                }
            };
            let taken = self.setups.iter().any(|(t, s)| {
                *t != track
                    && s.interleaved
                        .is_some_and(|(a, b)| [a, b].contains(&rtp) || [a, b].contains(&rtcp))
            });
            if taken {
                return Err(UNSUPPORTED);
            }
            transport.interleaved = Some((rtp, rtcp));
        } else if transport.client_port.is_none() {
            return Err(UNSUPPORTED);
        }
        Ok((track, transport))
    }
}

/// The track a SETUP URL names: the one whose control URL it is or ends with; the only track
/// when there is just one.
pub fn track_of(url: &str, controls: &[String]) -> Option<usize> {
    let url = url.trim_end_matches('/');
    controls
        .iter()
        .position(|control| {
            let control = control.trim_end_matches('/');
            !control.is_empty() && (url == control || url.ends_with(&format!("/{control}")))
        })
        .or_else(|| (controls.len() == 1).then_some(0))
}

/// A session's clocks: when it is closed for silence, and by when the request now arriving
/// must be complete. A deadline too far to represent is none.
#[derive(Debug, Clone)]
struct Clocks {
    handshake: Duration,
    keep_alive: Duration,
    /// `handshake` after the connection opened, then `keep_alive` after the last complete
    /// request, interleaved frame or UDP packet (or answer).
    idle: Option<Instant>,
    /// Whether anything complete has come in yet.
    started: bool,
    /// `handshake` after the first byte of the request (or interleaved frame) the decoder
    /// holds part of; `None` when it holds nothing.
    partial: Option<Instant>,
}

impl Clocks {
    fn new(now: Instant, config: &RtspConfig) -> Clocks {
        Clocks {
            handshake: config.handshake_timeout,
            keep_alive: config.keep_alive,
            idle: now.checked_add(config.handshake_timeout),
            started: false,
            partial: None,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match (self.idle, self.partial) {
            (Some(idle), Some(partial)) => Some(idle.min(partial)),
            (idle, partial) => idle.or(partial),
        }
    }

    /// Something complete came in.
    fn alive(&mut self, now: Instant) {
        self.started = true;
        self.idle = now.checked_add(self.keep_alive);
    }

    /// The driver answered at `now`: the client's wait for us does not count against it, so
    /// the keep-alive and a partial request held behind the answer start again.
    fn resume(&mut self, now: Instant) {
        self.alive(now);
        if self.partial.is_some() {
            self.partial = now.checked_add(self.handshake);
        }
    }

    /// Bytes were handled at `now`: they completed an input (`complete`), and the decoder
    /// still holds the start of another (`partial`).
    fn read(&mut self, now: Instant, complete: bool, partial: bool) {
        self.partial = match (partial, self.partial) {
            (false, _) => None,
            // What is held began in this read: the earlier input ended in it.
            (true, _) if complete => now.checked_add(self.handshake),
            (true, Some(pending)) => Some(pending),
            (true, None) => now.checked_add(self.handshake),
        };
    }

    /// Which clock ran out at `now`, once [`Clocks::deadline`] has passed.
    fn expired(&self, now: Instant) -> Timeout {
        if self.partial.is_some_and(|p| p <= now) {
            Timeout::Request
        } else if !self.started {
            Timeout::Handshake
        } else {
            Timeout::KeepAlive
        }
    }
}

#[cfg(test)]
mod tests;
