//! The client side of one RTMP connection: publish (as OBS or ffmpeg does) or play.
//!
//! Used by the load generator and pull proxies. The command sequence follows what ffmpeg and
//! OBS send (RTMP spec 1.0 §7.2): `connect`; for publishing `releaseStream`, `FCPublish`,
//! `createStream`, `publish`; for playing `createStream`, `play` and a Set Buffer Length.
//! Calls made before the handshake or `connect` completes are queued and sent in order.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::amf0::Value;
use crate::chunk::{self, Decoder, Header, Message};
use crate::handshake::{ClientHandshake, Scheme, RANDOM_SIZE};
use crate::message::{
    self, amf0_body, control_u32, metadata_body, Command, Outbox, UserControl, CSID_AUDIO,
    CSID_COMMAND, CSID_STREAM, CSID_VIDEO,
};
use crate::Error;

/// Client session settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The chunk size we send with, announced right after the handshake. Default: 4096.
    pub chunk_size: u32,
    /// Window Acknowledgement Size we announce when the server sets our bandwidth.
    /// Default: 2 500 000.
    pub window_ack_size: u32,
    /// Send a Flash-style digest C1 (as ffmpeg and OBS do) instead of the plain one.
    /// Default: true.
    pub digest_handshake: bool,
    /// `flashVer` in `connect`. Default: `FMLE/3.0 (compatible; ferrostream)`.
    pub flash_ver: String,
    /// Offer Enhanced RTMP codecs (`fourCcList: ["hvc1", "avc1"]`) in `connect`.
    /// Default: false.
    pub enhanced_rtmp: bool,
    /// Buffer length announced when playing, milliseconds. Default: 1000.
    pub buffer_ms: u32,
    /// Longest message accepted from the server. Default: 16 MiB.
    pub max_message_len: u32,
    /// Largest Set Chunk Size accepted from the server. Default: 16 MiB.
    pub max_chunk_size: u32,
}

impl Default for Config {
    fn default() -> Self {
        let limits = chunk::Limits::default();
        Config {
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            digest_handshake: true,
            flash_ver: "FMLE/3.0 (compatible; ferrostream)".to_owned(),
            enhanced_rtmp: false,
            buffer_ms: 1000,
            max_message_len: limits.max_message_len,
            max_chunk_size: limits.max_chunk_size,
        }
    }
}

/// What the session tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// `connect` succeeded.
    Connected,
    /// `NetStream.Publish.Start`: media may be sent now.
    PublishStarted,
    /// `NetStream.Play.Start`.
    PlayStarted,
    /// The server refused `connect`, `createStream`, `publish` or `play`.
    Rejected {
        /// The status code, e.g. `NetStream.Publish.BadName`.
        code: String,
        /// The server's description.
        description: String,
    },
    /// `onMetaData` from the server: the AMF0 body (name and object).
    Metadata {
        /// The data message body.
        data: Bytes,
    },
    /// An audio tag body.
    Audio {
        /// RTMP timestamp, milliseconds.
        timestamp: u32,
        /// The payload.
        payload: Bytes,
    },
    /// A video tag body.
    Video {
        /// RTMP timestamp, milliseconds.
        timestamp: u32,
        /// The payload.
        payload: Bytes,
    },
    /// The played stream ended (StreamEOF, `NetStream.Play.Stop` or `UnpublishNotify`;
    /// reported once).
    StreamEof,
}

#[derive(Debug)]
enum Phase {
    Handshake(ClientHandshake),
    Chunks,
    Dead,
}

#[derive(Debug, Clone)]
enum Op {
    Publish(String),
    Play(String),
}

#[derive(Debug)]
enum Pending {
    Connect,
    CreateStream(Op),
}

/// One client-side RTMP connection, sans-IO. The drive loop is the server's:
///
/// ```text
/// poll_transmit → write; read → handle_input → drain poll_event → poll_transmit → write
/// ```
#[derive(Debug)]
pub struct Session {
    config: Config,
    phase: Phase,
    decoder: Decoder,
    out: Outbox,
    events: VecDeque<Event>,
    connect: Option<(String, String)>,
    connect_sent: bool,
    connected: bool,
    queued: VecDeque<Op>,
    transactions: Vec<(u32, Pending)>,
    next_tid: u32,
    stream_id: Option<u32>,
    publish_name: Option<String>,
    publishing: bool,
    eof_reported: bool,
    received: u64,
    acked: u64,
    ack_window: u32,
    window_sent: bool,
}

impl Session {
    /// Starts a connection: C0C1 is in the output at once. `random` is the random field of
    /// our C1 ([`RANDOM_SIZE`] bytes; the crate has no RNG).
    pub fn new(config: Config, random: [u8; RANDOM_SIZE]) -> Self {
        let mut out = Outbox::default();
        let scheme = config.digest_handshake.then_some(Scheme::Digest0);
        let hs = ClientHandshake::new(random, scheme, &mut out.buf);
        let limits = chunk::Limits {
            max_message_len: config.max_message_len,
            max_chunk_size: config.max_chunk_size,
            ..chunk::Limits::default()
        };
        Session {
            config,
            phase: Phase::Handshake(hs),
            decoder: Decoder::new(limits),
            out,
            events: VecDeque::new(),
            connect: None,
            connect_sent: false,
            connected: false,
            queued: VecDeque::new(),
            transactions: Vec::new(),
            next_tid: 2,
            stream_id: None,
            publish_name: None,
            publishing: false,
            eof_reported: false,
            received: 0,
            acked: 0,
            ack_window: 0,
            window_sent: false,
        }
    }

    /// Connects to `app` (`live`) at `tc_url` (`rtmp://host:1935/live`); sent once the
    /// handshake is done.
    pub fn connect(&mut self, app: &str, tc_url: &str) {
        self.connect = Some((app.to_owned(), tc_url.to_owned()));
        if matches!(self.phase, Phase::Chunks) {
            self.send_connect();
        }
    }

    /// Publishes `name` (may carry `?query`): `releaseStream`, `FCPublish`, `createStream`,
    /// then `publish` once the stream id arrives. Wait for [`Event::PublishStarted`] before
    /// sending media.
    pub fn publish(&mut self, name: &str) {
        self.start(Op::Publish(name.to_owned()));
    }

    /// Plays `name`: `createStream`, then `play`.
    pub fn play(&mut self, name: &str) {
        self.start(Op::Play(name.to_owned()));
    }

    /// Stops publishing or playing: `FCUnpublish` (when publishing) and `deleteStream`.
    pub fn delete_stream(&mut self) {
        let Some(id) = self.stream_id.take() else {
            return;
        };
        if let Some(name) = self.publish_name.take() {
            let tid = self.tid();
            self.out.command(
                CSID_COMMAND,
                0,
                "FCUnpublish",
                tid,
                &[Value::Null, Value::string(name)],
            );
        }
        self.publishing = false;
        let tid = self.tid();
        self.out.command(
            CSID_COMMAND,
            0,
            "deleteStream",
            tid,
            &[Value::Null, Value::Number(f64::from(id))],
        );
    }

    /// Feeds bytes read from the socket. After an `Err` the session is dead.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), Error> {
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
                if self.config.chunk_size != chunk::DEFAULT_CHUNK_SIZE {
                    self.out.set_chunk_size(self.config.chunk_size);
                }
                if self.connect.is_some() {
                    self.send_connect();
                }
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

    /// The next event, if any. Drain after every `handle_input`.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Appends the bytes to write to the socket onto `out` (without a copy when `out` is
    /// empty); false when there are none.
    pub fn poll_transmit(&mut self, out: &mut BytesMut) -> bool {
        self.out.transmit(out)
    }

    /// Whether [`Session::poll_transmit`] would give bytes.
    pub fn has_output(&self) -> bool {
        !self.out.buf.is_empty()
    }

    /// The message stream id from `createStream`, once known.
    pub fn stream_id(&self) -> Option<u32> {
        self.stream_id
    }

    /// Sends metadata while publishing: `data` is an AMF0 `onMetaData` body (name and
    /// object); it goes out as `@setDataFrame onMetaData {…}`. Ignored before
    /// [`Event::PublishStarted`].
    pub fn send_metadata(&mut self, data: &Bytes) {
        if let Some(id) = self.publish_stream() {
            self.out
                .data_with_prefix(data_header(id), "@setDataFrame", data);
        }
    }

    /// Sends an audio tag body while publishing. Ignored before [`Event::PublishStarted`].
    pub fn send_audio(&mut self, timestamp: u32, payload: &Bytes) {
        self.send_media(CSID_AUDIO, message::AUDIO, timestamp, payload);
    }

    /// Sends a video tag body while publishing. Ignored before [`Event::PublishStarted`].
    pub fn send_video(&mut self, timestamp: u32, payload: &Bytes) {
        self.send_media(CSID_VIDEO, message::VIDEO, timestamp, payload);
    }

    fn send_media(&mut self, csid: u32, type_id: u8, timestamp: u32, payload: &Bytes) {
        if let Some(stream_id) = self.publish_stream() {
            let h = Header {
                csid,
                timestamp,
                type_id,
                stream_id,
            };
            self.out.message(h, payload);
        }
    }

    fn publish_stream(&self) -> Option<u32> {
        self.stream_id.filter(|_| self.publishing)
    }

    fn tid(&mut self) -> f64 {
        let t = self.next_tid;
        self.next_tid += 1;
        f64::from(t)
    }

    fn send_connect(&mut self) {
        if self.connect_sent {
            return;
        }
        let Some((app, tc_url)) = self.connect.clone() else {
            return;
        };
        self.connect_sent = true;
        // The fields and values ffmpeg's rtmpproto.c and OBS send.
        let mut obj = vec![
            ("app".to_owned(), Value::string(app)),
            ("type".to_owned(), Value::string("nonprivate")),
            (
                "flashVer".to_owned(),
                Value::string(self.config.flash_ver.clone()),
            ),
            ("tcUrl".to_owned(), Value::string(tc_url)),
            ("fpad".to_owned(), Value::Boolean(false)),
            ("capabilities".to_owned(), Value::Number(15.0)),
            ("audioCodecs".to_owned(), Value::Number(4071.0)),
            ("videoCodecs".to_owned(), Value::Number(252.0)),
            ("videoFunction".to_owned(), Value::Number(1.0)),
        ];
        if self.config.enhanced_rtmp {
            let list = vec![Value::string("hvc1"), Value::string("avc1")];
            obj.push(("fourCcList".to_owned(), Value::StrictArray(list)));
        }
        self.transactions.push((1, Pending::Connect));
        self.out
            .command(CSID_COMMAND, 0, "connect", 1.0, &[Value::Object(obj)]);
    }

    fn start(&mut self, op: Op) {
        if !self.connected {
            self.queued.push_back(op);
            return;
        }
        if let Op::Publish(name) = &op {
            for cmd in ["releaseStream", "FCPublish"] {
                let tid = self.tid();
                let args = [Value::Null, Value::string(name.clone())];
                self.out.command(CSID_COMMAND, 0, cmd, tid, &args);
            }
        }
        let tid = self.tid();
        self.transactions
            .push((tid as u32, Pending::CreateStream(op)));
        self.out
            .command(CSID_COMMAND, 0, "createStream", tid, &[Value::Null]);
    }

    fn on_message(&mut self, msg: Message) -> Result<(), Error> {
        match msg.type_id {
            message::COMMAND_AMF0 | message::COMMAND_AMF3 => {
                let cmd = Command::parse(&amf0_body(msg.type_id, &msg.payload))?;
                self.on_command(cmd);
            }
            message::DATA_AMF0 | message::DATA_AMF3 => {
                self.on_data(amf0_body(msg.type_id, &msg.payload));
            }
            message::AUDIO | message::VIDEO => {
                self.on_media(msg.type_id, msg.timestamp, msg.payload);
            }
            message::AGGREGATE => {
                for sub in message::split_aggregate(&msg.payload, msg.timestamp)? {
                    match sub.type_id {
                        message::AUDIO | message::VIDEO => {
                            self.on_media(sub.type_id, sub.timestamp, sub.payload);
                        }
                        message::DATA_AMF0 => self.on_data(sub.payload),
                        _ => {}
                    }
                }
            }
            message::WINDOW_ACK_SIZE => {
                self.ack_window = control_u32(&msg.payload, "Window Acknowledgement Size")?;
            }
            message::SET_PEER_BANDWIDTH => {
                // §5.4.5: answer with our window size if we have not announced it.
                if !self.window_sent {
                    self.window_sent = true;
                    self.out.window_ack_size(self.config.window_ack_size);
                }
            }
            message::USER_CONTROL => match UserControl::parse(&msg.payload) {
                Ok(UserControl::PingRequest(t)) => {
                    self.out.user_control(UserControl::PingResponse(t));
                }
                Ok(UserControl::StreamEof(_)) => self.eof(),
                Ok(ev) => tracing::trace!(?ev, "user control"),
                Err(e) => tracing::warn!(error = %e, "ignoring malformed user control"),
            },
            t => tracing::trace!(type_id = t, "ignored message"),
        }
        Ok(())
    }

    fn on_media(&mut self, type_id: u8, timestamp: u32, payload: Bytes) {
        if payload.is_empty() {
            return;
        }
        self.events.push_back(if type_id == message::AUDIO {
            Event::Audio { timestamp, payload }
        } else {
            Event::Video { timestamp, payload }
        });
    }

    fn on_data(&mut self, body: Bytes) {
        if let Some(data) = metadata_body(&body) {
            self.events.push_back(Event::Metadata { data });
        }
    }

    fn eof(&mut self) {
        if !self.eof_reported {
            self.eof_reported = true;
            self.events.push_back(Event::StreamEof);
        }
    }

    fn on_command(&mut self, cmd: Command) {
        tracing::debug!(name = ?cmd.name, "command");
        let info = cmd.arg(0);
        let text = |key| {
            info.and_then(|i| i.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        match cmd.name.as_str() {
            "_result" | "_error" => {
                let tid = cmd.transaction_id as u32;
                let Some(i) = self.transactions.iter().position(|(t, _)| *t == tid) else {
                    return;
                };
                let (_, pending) = self.transactions.swap_remove(i);
                if cmd.name == "_error" {
                    self.events.push_back(Event::Rejected {
                        code: text("code"),
                        description: text("description"),
                    });
                    return;
                }
                match pending {
                    Pending::Connect => {
                        self.connected = true;
                        self.events.push_back(Event::Connected);
                        while let Some(op) = self.queued.pop_front() {
                            self.start(op);
                        }
                    }
                    Pending::CreateStream(op) => {
                        let id = info.and_then(Value::as_f64).unwrap_or(0.0) as u32;
                        self.on_stream_created(id, op);
                    }
                }
            }
            "onStatus" => {
                let code = text("code");
                if info.and_then(|i| i.get("level")).and_then(Value::as_str) == Some("error") {
                    let description = text("description");
                    self.events.push_back(Event::Rejected { code, description });
                    return;
                }
                match code.as_str() {
                    "NetStream.Publish.Start" => {
                        self.publishing = true;
                        self.events.push_back(Event::PublishStarted);
                    }
                    "NetStream.Play.Start" => {
                        self.eof_reported = false;
                        self.events.push_back(Event::PlayStarted);
                    }
                    "NetStream.Play.UnpublishNotify"
                    | "NetStream.Play.Stop"
                    | "NetStream.Play.Complete" => self.eof(),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn on_stream_created(&mut self, id: u32, op: Op) {
        self.stream_id = Some(id);
        match op {
            Op::Publish(name) => {
                let args = [
                    Value::Null,
                    Value::string(name.clone()),
                    Value::string("live"),
                ];
                self.publish_name = Some(name);
                self.out.command(CSID_STREAM, id, "publish", 0.0, &args);
            }
            Op::Play(name) => {
                let args = [Value::Null, Value::string(name), Value::Number(-2000.0)];
                self.out.command(CSID_STREAM, id, "play", 0.0, &args);
                self.out.user_control(UserControl::SetBufferLength {
                    stream_id: id,
                    buffer_ms: self.config.buffer_ms,
                });
            }
        }
    }
}

fn data_header(stream_id: u32) -> Header {
    Header {
        csid: CSID_STREAM,
        timestamp: 0,
        type_id: message::DATA_AMF0,
        stream_id,
    }
}
