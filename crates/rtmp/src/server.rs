//! The server side of one RTMP connection: a publisher (OBS, ffmpeg) or a player.
//!
//! The session answers the connection-level commands by itself (RTMP spec 1.0 §7.2.1: `connect`,
//! `createStream`, `deleteStream`; and the FMS-era `releaseStream`, `FCPublish`, `FCUnpublish`,
//! `getStreamLength`, `_checkbw` that encoders send), acknowledges bytes (§5.4.3) and answers
//! pings (§7.1.7). It asks the driver only about policy: [`Event::PublishRequested`] is answered
//! with [`Session::accept_publish`] or [`Session::reject_publish`], and
//! [`Event::PlayRequested`] with [`Session::accept_play`] or [`Session::reject_play`].
//!
//! It also keeps the connection's two clocks (`now` comes from the driver): the handshake and
//! `connect` must be done within [`Config::handshake_timeout`] of [`Session::new`], and after
//! `connect` a publisher, or a session that has not started publishing or playing, must not stay
//! silent for [`Config::keep_alive`]. A player is exempt: it only ever sends acknowledgements,
//! sometimes none for a long time. While a publish or play waits on the driver's answer neither
//! clock runs against the peer, and the answer restarts the keep-alive. A clock that runs out
//! ends the session with [`Event::TimedOut`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::amf0::Value;
use crate::chunk::{self, Decoder, Header, Message};
use crate::handshake::{ServerHandshake, RANDOM_SIZE};
use crate::message::{
    self, amf0_body, control_u32, metadata_body, split_query, Command, Outbox, UserControl,
    CSID_AUDIO, CSID_COMMAND, CSID_STREAM, CSID_VIDEO, LIMIT_DYNAMIC,
};
use crate::Error;

/// Server session settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The chunk size we send with (announced with Set Chunk Size after `connect`).
    /// Default: 4096.
    pub chunk_size: u32,
    /// Window Acknowledgement Size we announce, and the window we acknowledge with until the
    /// peer announces its own. Default: 2 500 000.
    pub window_ack_size: u32,
    /// Set Peer Bandwidth we announce (limit type dynamic). Default: 2 500 000.
    pub peer_bandwidth: u32,
    /// Longest message accepted from the peer. Default: 16 MiB.
    pub max_message_len: u32,
    /// Largest Set Chunk Size accepted from the peer. Default: 16 MiB.
    pub max_chunk_size: u32,
    /// Most chunk streams the peer may use at once. Default: 64.
    pub max_chunk_streams: usize,
    /// Most message streams (`createStream`) per connection. Default: 16.
    pub max_streams: u32,
    /// The handshake and `connect` must complete within this of [`Session::new`]
    /// (`rtmp.handshakeSecond`). Default: 15 s.
    pub handshake_timeout: Duration,
    /// A publisher, or a connected session not yet publishing or playing, that sends nothing for
    /// this long times out (`rtmp.keepAliveSecond`); a player may stay silent. Default: 15 s.
    pub keep_alive: Duration,
}

impl Default for Config {
    fn default() -> Self {
        let limits = chunk::Limits::default();
        Config {
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            peer_bandwidth: 2_500_000,
            max_message_len: limits.max_message_len,
            max_chunk_size: limits.max_chunk_size,
            max_chunk_streams: limits.max_chunk_streams,
            max_streams: 16,
            handshake_timeout: Duration::from_secs(15),
            keep_alive: Duration::from_secs(15),
        }
    }
}

/// What the session tells the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// `connect` arrived and was accepted (informational). `app` has any `?query` removed.
    Connect {
        /// Application name.
        app: String,
        /// The `tcUrl` the client connected to.
        tc_url: String,
    },
    /// The client wants to publish; answer with `accept_publish` or `reject_publish`.
    /// Media on this stream is already reported before the answer; hold or drop it.
    PublishRequested {
        /// Message stream id.
        stream_id: u32,
        /// Application name (without query).
        app: String,
        /// Stream name, without query.
        name: String,
        /// The query of the stream name (`obs?token=abc` gives `token=abc`), else that of the
        /// app or tcUrl, else empty.
        query: String,
        /// `live`, `record` or `append`.
        publish_type: String,
    },
    /// The client wants to play; answer with `accept_play` or `reject_play`.
    PlayRequested {
        /// Message stream id.
        stream_id: u32,
        /// Application name.
        app: String,
        /// Stream name, without query.
        name: String,
        /// Query, merged as for `PublishRequested`.
        query: String,
    },
    /// Stream metadata to forward to players: the AMF0 string `onMetaData` and its object,
    /// `@setDataFrame` stripped.
    Metadata {
        /// Message stream id.
        stream_id: u32,
        /// AMF0 body for a data message.
        data: Bytes,
    },
    /// An audio message: an FLV audio tag body (see [`crate::flv`]).
    Audio {
        /// Message stream id.
        stream_id: u32,
        /// RTMP timestamp, milliseconds.
        timestamp: u32,
        /// A zero-copy slice of the reassembled message.
        payload: Bytes,
    },
    /// A video message: an FLV video tag body.
    Video {
        /// Message stream id.
        stream_id: u32,
        /// RTMP timestamp, milliseconds.
        timestamp: u32,
        /// A zero-copy slice of the reassembled message.
        payload: Bytes,
    },
    /// The publisher stopped (`FCUnpublish`, `closeStream` or `deleteStream`).
    Unpublished {
        /// Message stream id.
        stream_id: u32,
    },
    /// The player stopped (`closeStream` or `deleteStream`).
    PlayStopped {
        /// Message stream id.
        stream_id: u32,
    },
    /// One of the session's clocks ran out (reported by [`Session::handle_timeout`]). The
    /// session is dead: write what [`Session::poll_transmit`] still gives, then close.
    TimedOut {
        /// Which clock.
        reason: Timeout,
    },
}

/// Which of a session's clocks ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timeout {
    /// The handshake and `connect` were not done within [`Config::handshake_timeout`].
    Handshake,
    /// A publisher, or a session not yet publishing or playing, sent nothing for
    /// [`Config::keep_alive`].
    KeepAlive,
}

impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Timeout::Handshake => "no handshake and connect in time",
            Timeout::KeepAlive => "silent for the keep-alive time",
        })
    }
}

#[derive(Debug)]
enum Phase {
    /// Boxed: the caller's random bytes are 1.5 KB that are freed once the handshake is done.
    Handshake(Box<ServerHandshake>),
    Chunks,
    Dead,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    Idle,
    PublishPending,
    Publishing,
    PlayPending,
    Playing,
}

#[derive(Debug)]
struct Stream {
    id: u32,
    role: Role,
    name: String,
}

/// One server-side RTMP connection, sans-IO.
///
/// ```text
/// read → handle_input(now, ..) → while let Some(ev) = poll_event() { policy calls / send_* }
///      → poll_transmit → write → sleep until poll_timeout() → handle_timeout(now)
/// ```
#[derive(Debug)]
pub struct Session {
    config: Config,
    phase: Phase,
    decoder: Decoder,
    out: Outbox,
    events: VecDeque<Event>,
    connected: bool,
    app: String,
    app_query: String,
    streams: Vec<Stream>,
    next_stream_id: u32,
    received: u64,
    acked: u64,
    ack_window: u32,
    /// When the handshake and `connect` must be done by (until `connected`); `None` when the
    /// timeout is too long to represent.
    handshake_deadline: Option<Instant>,
    /// The last input or policy answer: the keep-alive counts from here.
    last_activity: Instant,
}

impl Session {
    /// A session waiting for C0C1, opened at `now`. `random` is the random field of our S1
    /// ([`RANDOM_SIZE`] bytes; the crate has no RNG).
    pub fn new(config: Config, random: [u8; RANDOM_SIZE], now: Instant) -> Self {
        let limits = chunk::Limits {
            max_message_len: config.max_message_len,
            max_chunk_size: config.max_chunk_size,
            max_chunk_streams: config.max_chunk_streams,
            ..chunk::Limits::default()
        };
        Session {
            ack_window: config.window_ack_size,
            handshake_deadline: now.checked_add(config.handshake_timeout),
            last_activity: now,
            config,
            phase: Phase::Handshake(Box::new(ServerHandshake::new(random))),
            decoder: Decoder::new(limits),
            out: Outbox::default(),
            events: VecDeque::new(),
            connected: false,
            app: String::new(),
            app_query: String::new(),
            streams: Vec::new(),
            next_stream_id: 1,
            received: 0,
            acked: 0,
        }
    }

    /// Feeds bytes read from the socket at `now`. After an `Err` the session is dead and every
    /// later call returns [`Error::Closed`]; close the connection.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error> {
        if !bytes.is_empty() {
            // Any byte counts against silence, partial chunks included: RTMP's keep-alive is
            // about a dead peer, not a slow one (the read buffers bound what a slow one holds).
            self.last_activity = now;
        }
        let result = self.input(bytes);
        if result.is_err() {
            self.phase = Phase::Dead;
        }
        result
    }

    fn input(&mut self, mut bytes: &[u8]) -> Result<(), Error> {
        self.received += bytes.len() as u64;
        match &mut self.phase {
            Phase::Dead => return Err(Error::Closed),
            Phase::Handshake(hs) => {
                let used = hs.handle_input(bytes, &mut self.out.buf)?;
                if !hs.is_done() {
                    return Ok(());
                }
                self.phase = Phase::Chunks;
                bytes = bytes.get(used..).unwrap_or_default();
            }
            Phase::Chunks => {}
        }
        self.decoder.push(bytes);
        while let Some(msg) = self.decoder.poll_message()? {
            self.on_message(msg)?;
        }
        if self.ack_window > 0 && self.received - self.acked >= u64::from(self.ack_window) {
            self.acked = self.received;
            self.out.acknowledgement(self.received as u32);
        }
        Ok(())
    }

    /// The next event, if any. Drain after every `handle_input` and `handle_timeout`.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Appends the bytes to write to the socket onto `out` (without a copy when `out` is
    /// empty); false when there are none.
    pub fn poll_transmit(&mut self, out: &mut BytesMut) -> bool {
        self.out.transmit(out)
    }

    /// When [`Session::handle_timeout`] must next be called; `None` while no clock runs (a
    /// player, a publish or play waiting on the driver's answer, a dead session).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.phase, Phase::Dead) {
            return None;
        }
        if !self.connected {
            return self.handshake_deadline;
        }
        let pending = self
            .streams
            .iter()
            .any(|s| matches!(s.role, Role::PublishPending | Role::PlayPending));
        let publishing = self.streams.iter().any(|s| s.role == Role::Publishing);
        let playing = self.streams.iter().any(|s| s.role == Role::Playing);
        if pending || (playing && !publishing) {
            return None;
        }
        self.last_activity.checked_add(self.config.keep_alive)
    }

    /// Tells the session the time is `now`: when a deadline of [`Session::poll_timeout`] has
    /// passed, it reports [`Event::TimedOut`] and is dead from then on. Early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        let reason = if self.connected {
            Timeout::KeepAlive
        } else {
            Timeout::Handshake
        };
        tracing::debug!(%reason, "timed out");
        self.phase = Phase::Dead;
        self.events.push_back(Event::TimedOut { reason });
    }

    /// Whether [`Session::poll_transmit`] would give bytes.
    pub fn has_output(&self) -> bool {
        !self.out.buf.is_empty()
    }

    /// How many output bytes are waiting: a slow player's backlog, for the driver's
    /// backpressure policy.
    pub fn pending_output(&self) -> usize {
        self.out.buf.len()
    }

    /// Whether the handshake has completed.
    pub fn is_handshake_done(&self) -> bool {
        !matches!(self.phase, Phase::Handshake(_))
    }

    /// Total bytes received, handshake included.
    pub fn bytes_received(&self) -> u64 {
        self.received
    }

    /// Accepts a publish at `now` (the keep-alive counts from here): sends StreamBegin and
    /// `onStatus NetStream.Publish.Start`.
    pub fn accept_publish(&mut self, now: Instant, stream_id: u32) {
        self.last_activity = now;
        let Some(s) = self.stream_mut(stream_id) else {
            tracing::debug!(stream_id, "accept_publish for an unknown stream");
            return;
        };
        s.role = Role::Publishing;
        let description = format!("{} is now published.", s.name);
        self.out.user_control(UserControl::StreamBegin(stream_id));
        self.out
            .on_status(stream_id, "status", "NetStream.Publish.Start", &description);
    }

    /// Refuses a publish with `onStatus` level `error`, e.g. `NetStream.Publish.BadName` or
    /// `NetStream.Publish.BadAuth`, at `now`. The connection stays open; the driver may close
    /// it.
    pub fn reject_publish(&mut self, now: Instant, stream_id: u32, code: &str, description: &str) {
        self.last_activity = now;
        if let Some(s) = self.stream_mut(stream_id) {
            s.role = Role::Idle;
        }
        self.out.on_status(stream_id, "error", code, description);
    }

    /// Accepts a play at `now`: StreamBegin, `NetStream.Play.Reset`, `NetStream.Play.Start` and
    /// `|RtmpSampleAccess`. No `onStatus NetStream.Data.Start` data message: ffmpeg (libavformat's
    /// FLV demuxer, 5.1 and 6.x) skips `|RtmpSampleAccess` but turns any other script-data
    /// message into a data stream, so `ffprobe` listed a third stream of codec "none" and
    /// `ffmpeg -map 0 -c copy out.mp4` failed on it.
    pub fn accept_play(&mut self, now: Instant, stream_id: u32) {
        self.last_activity = now;
        let Some(s) = self.stream_mut(stream_id) else {
            tracing::debug!(stream_id, "accept_play for an unknown stream");
            return;
        };
        s.role = Role::Playing;
        let name = s.name.clone();
        self.out.user_control(UserControl::StreamBegin(stream_id));
        let reset = format!("Playing and resetting {name}.");
        self.out
            .on_status(stream_id, "status", "NetStream.Play.Reset", &reset);
        let start = format!("Started playing {name}.");
        self.out
            .on_status(stream_id, "status", "NetStream.Play.Start", &start);
        let h = data_header(stream_id, 0);
        self.out.amf(
            h,
            &[
                Value::string("|RtmpSampleAccess"),
                Value::Boolean(true),
                Value::Boolean(true),
            ],
        );
    }

    /// Refuses a play with `onStatus` level `error`, e.g. `NetStream.Play.StreamNotFound` or
    /// `NetStream.Play.BadAuth`, at `now`.
    pub fn reject_play(&mut self, now: Instant, stream_id: u32, code: &str, description: &str) {
        self.last_activity = now;
        if let Some(s) = self.stream_mut(stream_id) {
            s.role = Role::Idle;
        }
        self.out.on_status(stream_id, "error", code, description);
    }

    /// Sends metadata (an `onMetaData` AMF0 body, as [`Event::Metadata`] carries) to a player.
    pub fn send_metadata(&mut self, stream_id: u32, data: &Bytes) {
        self.out.message(data_header(stream_id, 0), data);
    }

    /// Sends an audio tag body to a player. Copies the payload once into the output.
    pub fn send_audio(&mut self, stream_id: u32, timestamp: u32, payload: &Bytes) {
        let h = Header {
            csid: CSID_AUDIO,
            timestamp,
            type_id: message::AUDIO,
            stream_id,
        };
        self.out.message(h, payload);
    }

    /// Sends a video tag body to a player. Copies the payload once into the output.
    pub fn send_video(&mut self, stream_id: u32, timestamp: u32, payload: &Bytes) {
        let h = Header {
            csid: CSID_VIDEO,
            timestamp,
            type_id: message::VIDEO,
            stream_id,
        };
        self.out.message(h, payload);
    }

    /// Tells a player the stream ended: `NetStream.Play.UnpublishNotify`,
    /// `NetStream.Play.Stop`, then the StreamEOF user control event.
    pub fn send_eof(&mut self, stream_id: u32) {
        let name = self
            .streams
            .iter()
            .find(|s| s.id == stream_id)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        self.out.on_status(
            stream_id,
            "status",
            "NetStream.Play.UnpublishNotify",
            &format!("{name} is now unpublished."),
        );
        self.out.on_status(
            stream_id,
            "status",
            "NetStream.Play.Stop",
            &format!("Stopped playing {name}."),
        );
        self.out.user_control(UserControl::StreamEof(stream_id));
    }

    /// Sends a ping request (User Control 6) carrying `timestamp`; the peer echoes it.
    pub fn send_ping(&mut self, timestamp: u32) {
        self.out.user_control(UserControl::PingRequest(timestamp));
    }

    fn stream_mut(&mut self, id: u32) -> Option<&mut Stream> {
        self.streams.iter_mut().find(|s| s.id == id)
    }

    fn violation(&self, context: &'static str) -> Error {
        Error::ProtocolViolation {
            offset: self.received as usize,
            context,
        }
    }

    fn on_message(&mut self, msg: Message) -> Result<(), Error> {
        match msg.type_id {
            message::COMMAND_AMF0 | message::COMMAND_AMF3 => {
                let cmd = Command::parse(&amf0_body(msg.type_id, &msg.payload))?;
                self.on_command(msg.stream_id, cmd)
            }
            message::DATA_AMF0 | message::DATA_AMF3 => {
                let body = amf0_body(msg.type_id, &msg.payload);
                self.on_data(msg.stream_id, body);
                Ok(())
            }
            message::AUDIO | message::VIDEO => {
                self.on_media(msg.type_id, msg.stream_id, msg.timestamp, msg.payload);
                Ok(())
            }
            message::AGGREGATE => {
                for sub in message::split_aggregate(&msg.payload, msg.timestamp)? {
                    match sub.type_id {
                        message::AUDIO | message::VIDEO => {
                            self.on_media(sub.type_id, msg.stream_id, sub.timestamp, sub.payload);
                        }
                        message::DATA_AMF0 => self.on_data(msg.stream_id, sub.payload),
                        _ => {}
                    }
                }
                Ok(())
            }
            message::WINDOW_ACK_SIZE => {
                let size = control_u32(&msg.payload, "Window Acknowledgement Size")?;
                tracing::debug!(size, "peer window acknowledgement size");
                self.ack_window = size;
                Ok(())
            }
            message::USER_CONTROL => {
                match UserControl::parse(&msg.payload) {
                    Ok(UserControl::PingRequest(t)) => {
                        self.out.user_control(UserControl::PingResponse(t));
                    }
                    Ok(ev) => tracing::trace!(?ev, "user control"),
                    Err(e) => tracing::warn!(error = %e, "ignoring malformed user control"),
                }
                Ok(())
            }
            // Set Chunk Size and Abort were applied by the decoder; acknowledgements and
            // bandwidth hints from a client need no action.
            t => {
                tracing::trace!(type_id = t, len = msg.payload.len(), "ignored message");
                Ok(())
            }
        }
    }

    fn on_media(&mut self, type_id: u8, stream_id: u32, timestamp: u32, payload: Bytes) {
        let publishing = self.streams.iter().any(|s| {
            s.id == stream_id && matches!(s.role, Role::Publishing | Role::PublishPending)
        });
        // Empty messages are keep-alives some encoders send; they carry no tag header.
        if !publishing || payload.is_empty() {
            tracing::trace!(stream_id, "dropping media not on a publishing stream");
            return;
        }
        self.events.push_back(if type_id == message::AUDIO {
            Event::Audio {
                stream_id,
                timestamp,
                payload,
            }
        } else {
            Event::Video {
                stream_id,
                timestamp,
                payload,
            }
        });
    }

    /// Data messages: `@setDataFrame onMetaData {…}` (FMLE, OBS, ffmpeg) or a bare
    /// `onMetaData {…}` become [`Event::Metadata`]; anything else is ignored.
    fn on_data(&mut self, stream_id: u32, body: Bytes) {
        let publishing = self.streams.iter().any(|s| {
            s.id == stream_id && matches!(s.role, Role::Publishing | Role::PublishPending)
        });
        if !publishing {
            return;
        }
        match metadata_body(&body) {
            Some(data) => self.events.push_back(Event::Metadata { stream_id, data }),
            None => tracing::debug!(stream_id, "ignoring data message"),
        }
    }

    fn on_command(&mut self, stream_id: u32, cmd: Command) -> Result<(), Error> {
        tracing::debug!(name = ?cmd.name, stream_id, "command");
        let tid = cmd.transaction_id;
        let needs_connection = matches!(
            cmd.name.as_str(),
            "createStream" | "publish" | "play" | "releaseStream" | "FCPublish"
        );
        if needs_connection && !self.connected {
            return Err(self.violation("command before connect"));
        }
        match cmd.name.as_str() {
            "connect" => self.on_connect(&cmd)?,
            "createStream" => {
                if self.streams.len() >= self.config.max_streams as usize {
                    return Err(Error::limit(
                        "message streams",
                        self.streams.len() as u64 + 1,
                        self.config.max_streams,
                    ));
                }
                let id = self.next_stream_id;
                self.next_stream_id += 1;
                self.streams.push(Stream {
                    id,
                    role: Role::Idle,
                    name: String::new(),
                });
                let id = Value::Number(f64::from(id));
                self.out
                    .command(CSID_COMMAND, 0, "_result", tid, &[Value::Null, id]);
            }
            "releaseStream" | "getStreamLength" | "_checkbw" => {
                let answer = if cmd.name == "getStreamLength" {
                    Value::Number(0.0)
                } else {
                    Value::Undefined
                };
                self.out
                    .command(CSID_COMMAND, 0, "_result", tid, &[Value::Null, answer]);
            }
            "FCPublish" | "FCUnpublish" => {
                let name = arg_str(&cmd, 0);
                let (event, code) = if cmd.name == "FCPublish" {
                    ("onFCPublish", "NetStream.Publish.Start")
                } else {
                    ("onFCUnpublish", "NetStream.Unpublish.Success")
                };
                let info = Value::object([
                    ("code", Value::string(code)),
                    ("description", Value::string(name)),
                ]);
                self.out
                    .command(CSID_COMMAND, 0, event, 0.0, &[Value::Null, info]);
                self.out.command(
                    CSID_COMMAND,
                    0,
                    "_result",
                    tid,
                    &[Value::Null, Value::Undefined],
                );
                if cmd.name == "FCUnpublish" {
                    let (name, _) = split_query(name);
                    let id = self
                        .streams
                        .iter()
                        .find(|s| s.name == name && is_publishing(&s.role))
                        .map(|s| s.id);
                    if let Some(id) = id {
                        self.end_stream(id);
                    }
                }
            }
            "publish" => self.on_publish(stream_id, &cmd)?,
            "play" => self.on_play(stream_id, &cmd)?,
            "deleteStream" => {
                let id = cmd.arg(0).and_then(Value::as_f64).unwrap_or(0.0) as u32;
                self.end_stream(id);
                self.streams.retain(|s| s.id != id);
            }
            "closeStream" => self.end_stream(stream_id),
            other => tracing::debug!(name = other, "ignoring command"),
        }
        Ok(())
    }

    fn on_connect(&mut self, cmd: &Command) -> Result<(), Error> {
        if self.connected {
            return Err(self.violation("second connect"));
        }
        let obj = &cmd.object;
        let app_full = obj.get("app").and_then(Value::as_str).unwrap_or_default();
        let tc_url = obj.get("tcUrl").and_then(Value::as_str).unwrap_or_default();
        let (app, query) = split_query(app_full);
        let query = if query.is_empty() {
            split_query(tc_url).1
        } else {
            query
        };
        self.app = app.trim_end_matches('/').to_owned();
        self.app_query = query.to_owned();
        self.connected = true;

        self.out.window_ack_size(self.config.window_ack_size);
        self.out
            .set_peer_bandwidth(self.config.peer_bandwidth, LIMIT_DYNAMIC);
        self.out.set_chunk_size(self.config.chunk_size);
        let mut props = vec![
            ("fmsVer".to_owned(), Value::string("FMS/3,0,1,123")),
            ("capabilities".to_owned(), Value::Number(31.0)),
        ];
        // Enhanced RTMP v1 "Enhancing NetConnection connect Command": the server answers a
        // client's fourCcList with the FourCCs it supports.
        if obj.get("fourCcList").is_some() {
            let list = vec![Value::string("hvc1"), Value::string("avc1")];
            props.push(("fourCcList".to_owned(), Value::StrictArray(list)));
        }
        let encoding = obj
            .get("objectEncoding")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let info = Value::object([
            ("level", Value::string("status")),
            ("code", Value::string("NetConnection.Connect.Success")),
            ("description", Value::string("Connection succeeded.")),
            ("objectEncoding", Value::Number(encoding)),
        ]);
        let tid = cmd.transaction_id;
        self.out.command(
            CSID_COMMAND,
            0,
            "_result",
            tid,
            &[Value::Object(props), info],
        );
        tracing::debug!(app = ?self.app, tc_url, "connected");
        self.events.push_back(Event::Connect {
            app: self.app.clone(),
            tc_url: tc_url.to_owned(),
        });
        Ok(())
    }

    /// The stream a NetStream command arrived on. Encoders that skip `createStream` (some old
    /// hardware) still get one.
    fn netstream(&mut self, stream_id: u32) -> Result<&mut Stream, Error> {
        if stream_id == 0 {
            return Err(self.violation("NetStream command on stream 0"));
        }
        if !self.streams.iter().any(|s| s.id == stream_id) {
            if self.streams.len() >= self.config.max_streams as usize {
                return Err(Error::limit(
                    "message streams",
                    self.streams.len() as u64 + 1,
                    self.config.max_streams,
                ));
            }
            self.streams.push(Stream {
                id: stream_id,
                role: Role::Idle,
                name: String::new(),
            });
        }
        let violation = self.violation("stream vanished");
        self.stream_mut(stream_id).ok_or(violation)
    }

    fn on_publish(&mut self, stream_id: u32, cmd: &Command) -> Result<(), Error> {
        let (name, query) = split_query(arg_str(cmd, 0));
        let query = if query.is_empty() {
            &self.app_query
        } else {
            query
        }
        .to_owned();
        let publish_type = cmd
            .arg(1)
            .and_then(Value::as_str)
            .unwrap_or("live")
            .to_owned();
        let name = name.to_owned();
        let violation = self.violation("publish on a stream already in use");
        let s = self.netstream(stream_id)?;
        if s.role != Role::Idle {
            return Err(violation);
        }
        s.role = Role::PublishPending;
        s.name.clone_from(&name);
        self.events.push_back(Event::PublishRequested {
            stream_id,
            app: self.app.clone(),
            name,
            query,
            publish_type,
        });
        Ok(())
    }

    fn on_play(&mut self, stream_id: u32, cmd: &Command) -> Result<(), Error> {
        let (name, query) = split_query(arg_str(cmd, 0));
        let query = if query.is_empty() {
            &self.app_query
        } else {
            query
        }
        .to_owned();
        let name = name.to_owned();
        let violation = self.violation("play on a stream already in use");
        let s = self.netstream(stream_id)?;
        if s.role != Role::Idle {
            return Err(violation);
        }
        s.role = Role::PlayPending;
        s.name.clone_from(&name);
        self.events.push_back(Event::PlayRequested {
            stream_id,
            app: self.app.clone(),
            name,
            query,
        });
        Ok(())
    }

    /// Ends what a stream is doing, telling the driver if it was publishing or playing.
    fn end_stream(&mut self, stream_id: u32) {
        let Some(s) = self.stream_mut(stream_id) else {
            return;
        };
        let role = std::mem::replace(&mut s.role, Role::Idle);
        match role {
            Role::Publishing | Role::PublishPending => {
                self.events.push_back(Event::Unpublished { stream_id });
            }
            Role::Playing | Role::PlayPending => {
                self.events.push_back(Event::PlayStopped { stream_id });
            }
            Role::Idle => {}
        }
    }
}

fn is_publishing(role: &Role) -> bool {
    matches!(role, Role::Publishing | Role::PublishPending)
}

fn arg_str(cmd: &Command, i: usize) -> &str {
    cmd.arg(i).and_then(Value::as_str).unwrap_or_default()
}

fn data_header(stream_id: u32, timestamp: u32) -> Header {
    Header {
        csid: CSID_STREAM,
        timestamp,
        type_id: message::DATA_AMF0,
        stream_id,
    }
}

#[cfg(test)]
mod tests;
