//! The admin shell's protocol, sans-IO: bytes in, lines out, the login and the commands as
//! events the driver answers. No socket, no clock (`now` is passed in), no registry: the
//! driver looks things up and hands the answer back, and this module formats it.
//!
//! ```text
//!  connect ─▶ banner, "login: " ─▶ user line ─▶ "password: " ─▶ password line
//!                                                                │ Event::Login
//!               accept_login ◀──── driver asks on_shell_login ◀──┘
//!                    │                  (or admin + api.secret)      reject_login ─▶ one line, closed
//!                    ▼
//!   "ferrostream> " ─▶ command line ─▶ help / quit / unknown: answered here
//!                                  └─▶ Event::Command ─▶ driver ─▶ answer(..) ─▶ lines, prompt
//! ```
//!
//! Drain rule: after [`Console::new`], [`Console::handle_input`], [`Console::handle_timeout`]
//! and every answer, call [`Console::poll_event`] until `None` and answer each event before
//! polling the next (a command's lines are written in the order the commands came), then
//! [`Console::poll_transmit`] and write what it gave; close the socket once
//! [`Console::is_closed`] and the output is written. Sleep until [`Console::poll_timeout`].
//!
//! Lines end at `\n` (a `\r` before it is dropped, so telnet, nc and scripts all work) and are
//! at most [`MAX_LINE`] bytes. Before a login at most [`MAX_LINES_BEFORE_LOGIN`] lines are
//! taken (an empty user name asks again); the login must complete within
//! [`ConsoleConfig::login_timeout`] and a logged-in shell with no input for
//! [`ConsoleConfig::idle_timeout`] is closed. Every name or message that came from outside
//! (stream names, a backend's `msg`, an unknown command) is escaped before it is written, so
//! no control character, bidi override or line separator reaches the terminal.

use bytes::BytesMut;
use media::{Codec, StreamKey};
use registry::{Protocol, Role, SessionSnapshot, StreamInfo};
use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Longest line, in bytes, without its line ending (ZLMediaKit's `shell.maxReqSize` default).
pub(crate) const MAX_LINE: usize = 1024;
/// Lines taken before a login: the user name, the password and one empty retry.
pub(crate) const MAX_LINES_BEFORE_LOGIN: usize = 3;
/// Input kept while the driver answers (the login hook may take seconds); a client that sends
/// more ahead of the replies is cut off.
const MAX_AHEAD: usize = 4 * MAX_LINE;

/// What a line ends with on the way out (telnet's NVT newline).
const EOL: &str = "\r\n";
/// The prompt of a logged-in shell.
pub(crate) const PROMPT: &str = "ferrostream> ";

/// The commands, as `help` lists them.
const HELP: &[(&str, &str)] = &[
    ("help", "this list"),
    (
        "streams",
        "live streams: vhost/app/stream origin tracks readers bytes",
    ),
    (
        "sessions",
        "publishers and viewers: id role protocol peer stream bytes",
    ),
    ("kick <id>", "end the session <id>"),
    ("close <app>/<stream>", "end a stream (default vhost)"),
    ("quit, exit", "close the shell"),
];

/// The console's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsoleConfig {
    /// The first line written.
    pub(crate) banner: String,
    /// From connecting to a completed login.
    pub(crate) login_timeout: Duration,
    /// A logged-in shell with no input for this long is closed.
    pub(crate) idle_timeout: Duration,
}

/// What the driver must do for the console.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Check this login; answer with [`Console::accept_login`] or [`Console::reject_login`].
    Login {
        /// As typed (never written back to the client).
        user_name: String,
        /// As typed.
        passwd: String,
    },
    /// Look this up or do it; answer with [`Console::answer`].
    Command(Command),
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Login { user_name, .. } => f
                .debug_struct("Login")
                .field("user_name", user_name)
                .field("passwd", &"<redacted>")
                .finish(),
            Event::Command(command) => f.debug_tuple("Command").field(command).finish(),
        }
    }
}

/// A command that needs the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// List the live streams.
    Streams,
    /// List the publishers and viewers.
    Sessions,
    /// End a session.
    Kick(u64),
    /// End a stream.
    Close(StreamKey),
}

/// The driver's answer to a [`Command`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// For [`Command::Streams`].
    Streams(Vec<StreamRow>),
    /// For [`Command::Sessions`].
    Sessions(Vec<SessionRow>),
    /// For [`Command::Kick`]: whether such a session was there.
    Kicked(u64, bool),
    /// For [`Command::Close`]: whether the stream was live.
    Closed(StreamKey, bool),
}

/// One live stream, as `streams` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamRow {
    pub(crate) key: StreamKey,
    /// ZLMediaKit's `originTypeStr` (`rtmp_push`).
    pub(crate) origin: &'static str,
    pub(crate) tracks: Vec<media::TrackInfo>,
    pub(crate) readers: usize,
    /// Media bytes received from the publisher.
    pub(crate) bytes: u64,
}

impl From<&StreamInfo> for StreamRow {
    fn from(info: &StreamInfo) -> Self {
        StreamRow {
            key: info.key.clone(),
            origin: hooks::origin_type(info.publisher.protocol).1,
            tracks: info.tracks.clone(),
            readers: info.readers,
            bytes: info.bytes_in,
        }
    }
}

/// One publisher or viewer, as `sessions` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionRow {
    pub(crate) id: u64,
    pub(crate) role: Role,
    pub(crate) protocol: Protocol,
    pub(crate) peer: SocketAddr,
    pub(crate) key: StreamKey,
    pub(crate) bytes: u64,
}

impl From<&SessionSnapshot> for SessionRow {
    fn from(s: &SessionSnapshot) -> Self {
        SessionRow {
            id: s.info.id,
            role: s.role,
            protocol: s.info.protocol,
            peer: s.info.peer,
            key: s.key.clone(),
            bytes: s.bytes,
        }
    }
}

/// Why the console cut a client off (after writing one line that says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Error {
    /// A line longer than [`MAX_LINE`].
    #[error("a line longer than {MAX_LINE} bytes")]
    LineTooLong,
    /// More than [`MAX_LINES_BEFORE_LOGIN`] lines before a login.
    #[error("more than {MAX_LINES_BEFORE_LOGIN} lines before a login")]
    TooManyLines,
    /// More than [`MAX_AHEAD`] bytes sent while a reply was pending.
    #[error("more than {MAX_AHEAD} bytes sent ahead of the replies")]
    TooFarAhead,
}

/// Where the conversation is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// `login: ` was written.
    User,
    /// `password: ` was written.
    Password { user_name: String },
    /// [`Event::Login`] is out.
    Authenticating,
    /// The prompt was written.
    Ready,
    /// [`Event::Command`] is out.
    Busy,
    /// Nothing more is read or written.
    Closed,
}

/// One admin shell connection's protocol state.
#[derive(Debug)]
pub(crate) struct Console {
    config: ConsoleConfig,
    state: State,
    /// Input not yet taken as a line.
    input: Vec<u8>,
    out: BytesMut,
    events: VecDeque<Event>,
    /// Lines taken before a login.
    lines: usize,
    /// The login deadline, then the idle one.
    deadline: Instant,
}

impl Console {
    /// A console that has just written its banner and `login: `.
    pub(crate) fn new(now: Instant, config: ConsoleConfig) -> Console {
        let mut console = Console {
            deadline: now + config.login_timeout,
            state: State::User,
            input: Vec::new(),
            out: BytesMut::new(),
            events: VecDeque::new(),
            lines: 0,
            config,
        };
        let banner = escape_text(&console.config.banner);
        console.line(&banner);
        console.write("login: ");
        console
    }

    /// Takes bytes from the client. An `Err` means the client was cut off (the reason is
    /// written to it first): flush, then close.
    pub(crate) fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error> {
        if self.state == State::Closed {
            return Ok(());
        }
        if !bytes.is_empty() && matches!(self.state, State::Ready | State::Busy) {
            self.deadline = now + self.config.idle_timeout;
        }
        self.input.extend_from_slice(bytes);
        self.process(now)
    }

    /// Closes the shell once its deadline has passed: the login's, or the idle one.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed || now < self.deadline {
            return;
        }
        let line = match self.state {
            State::Ready | State::Busy => {
                format!("idle for {}, closing", seconds(self.config.idle_timeout))
            }
            _ => format!("no login within {}", seconds(self.config.login_timeout)),
        };
        self.line(&line);
        self.close();
    }

    /// Moves what is to be written into `out`; false when there is nothing.
    pub(crate) fn poll_transmit(&mut self, out: &mut BytesMut) -> bool {
        if self.out.is_empty() {
            return false;
        }
        out.extend_from_slice(&self.out);
        self.out.clear();
        true
    }

    /// The next thing the driver must do.
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Console::handle_timeout`] must be called; `None` once closed.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        (self.state != State::Closed).then_some(self.deadline)
    }

    /// Whether the connection is to be closed (once the output is written).
    pub(crate) fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether the login was accepted.
    #[cfg(test)]
    pub(crate) fn logged_in(&self) -> bool {
        matches!(self.state, State::Ready | State::Busy)
    }

    /// The login was accepted: the prompt, then the lines that arrived meanwhile.
    pub(crate) fn accept_login(&mut self, now: Instant) -> Result<(), Error> {
        if self.state != State::Authenticating {
            return Ok(());
        }
        self.line("logged in; type `help` for the commands");
        self.ready(now);
        self.process(now)
    }

    /// The login was refused for `reason` (a backend's `msg`, escaped here): one line, closed.
    pub(crate) fn reject_login(&mut self, reason: &str) {
        if self.state != State::Authenticating {
            return;
        }
        let line = format!("login refused: {}", escape_text(reason));
        self.line(&line);
        self.close();
    }

    /// The answer to the pending [`Event::Command`]: its lines, the prompt, then the lines
    /// that arrived meanwhile.
    pub(crate) fn answer(&mut self, now: Instant, answer: Answer) -> Result<(), Error> {
        if self.state != State::Busy {
            return Ok(());
        }
        let mut text = String::new();
        format_answer(&mut text, &answer);
        self.write(&text);
        self.ready(now);
        self.process(now)
    }

    /// Takes complete lines while the state accepts them.
    fn process(&mut self, now: Instant) -> Result<(), Error> {
        loop {
            match self.state {
                State::User | State::Password { .. } | State::Ready => {}
                State::Authenticating | State::Busy => {
                    if self.input.len() > MAX_AHEAD {
                        return Err(self.fail(Error::TooFarAhead));
                    }
                    return Ok(());
                }
                State::Closed => {
                    self.input = Vec::new();
                    return Ok(());
                }
            }
            let Some(end) = self.input.iter().position(|&b| b == b'\n') else {
                // A full-length line may already have its `\r`.
                let len = self.input.len() - usize::from(self.input.last() == Some(&b'\r'));
                if len > MAX_LINE {
                    return Err(self.fail(Error::LineTooLong));
                }
                return Ok(());
            };
            let mut line: Vec<u8> = self.input.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.len() > MAX_LINE {
                return Err(self.fail(Error::LineTooLong));
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            self.take_line(now, line)?;
        }
    }

    fn take_line(&mut self, now: Instant, line: String) -> Result<(), Error> {
        if matches!(self.state, State::User | State::Password { .. }) {
            self.lines += 1;
            if self.lines > MAX_LINES_BEFORE_LOGIN {
                return Err(self.fail(Error::TooManyLines));
            }
        }
        match std::mem::replace(&mut self.state, State::Closed) {
            State::User => {
                let user_name = line.trim().to_owned();
                if user_name.is_empty() {
                    self.state = State::User;
                    self.write("login: ");
                } else {
                    self.state = State::Password { user_name };
                    self.write("password: ");
                }
            }
            State::Password { user_name } => {
                // Only the line ending is dropped: a password may start or end with a space.
                self.state = State::Authenticating;
                self.events.push_back(Event::Login {
                    user_name,
                    passwd: line,
                });
            }
            State::Ready => {
                self.state = State::Ready;
                self.command(now, &line);
            }
            other => self.state = other,
        }
        Ok(())
    }

    /// One command line of a logged-in shell.
    fn command(&mut self, now: Instant, line: &str) {
        let mut words = line.split_ascii_whitespace();
        let Some(name) = words.next() else {
            self.write(PROMPT);
            return;
        };
        let args: Vec<&str> = words.collect();
        let is = |s: &str| name.eq_ignore_ascii_case(s);
        let command = if is("help") || name == "?" {
            let mut text = String::from("commands:\r\n");
            for (usage, what) in HELP {
                let _ = write!(text, "  {usage:<22}{what}{EOL}");
            }
            self.write(&text);
            None
        } else if is("quit") || is("exit") {
            self.line("bye");
            self.close();
            return;
        } else if is("streams") || is("sessions") {
            if args.is_empty() {
                Some(if is("streams") {
                    Command::Streams
                } else {
                    Command::Sessions
                })
            } else {
                let line = format!("usage: {}", name.to_ascii_lowercase());
                self.line(&line);
                None
            }
        } else if is("kick") {
            match args.as_slice() {
                [id] => match id.parse::<u64>() {
                    Ok(id) => Some(Command::Kick(id)),
                    Err(_) => {
                        let line = format!("not a session id: {}", escape_name(id));
                        self.line(&line);
                        None
                    }
                },
                _ => {
                    self.line("usage: kick <id>");
                    None
                }
            }
        } else if is("close") {
            match args.as_slice() {
                [path] => match path.split_once('/') {
                    Some((app, stream)) => match StreamKey::new(app, stream) {
                        Ok(key) => Some(Command::Close(key)),
                        Err(e) => {
                            let line = format!("bad stream name: {}", escape_text(&e.to_string()));
                            self.line(&line);
                            None
                        }
                    },
                    None => {
                        self.line("usage: close <app>/<stream>");
                        None
                    }
                },
                _ => {
                    self.line("usage: close <app>/<stream>");
                    None
                }
            }
        } else {
            let line = format!(
                "unknown command {}; type `help` for the commands",
                escape_name(name)
            );
            self.line(&line);
            None
        };
        match command {
            Some(command) => {
                self.state = State::Busy;
                self.events.push_back(Event::Command(command));
            }
            None => self.ready(now),
        }
    }

    /// Cuts the client off for `error`, saying so.
    fn fail(&mut self, error: Error) -> Error {
        let line = format!("error: {error}, closing");
        self.line(&line);
        self.close();
        error
    }

    fn ready(&mut self, now: Instant) {
        self.state = State::Ready;
        self.deadline = now + self.config.idle_timeout;
        self.write(PROMPT);
    }

    fn close(&mut self) {
        self.state = State::Closed;
        self.input = Vec::new();
        self.events.clear();
    }

    fn write(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    fn line(&mut self, text: &str) {
        self.write(text);
        self.write(EOL);
    }
}

/// `15s`, `1.5s`.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// The lines of an answer.
fn format_answer(text: &mut String, answer: &Answer) {
    match answer {
        Answer::Streams(rows) => {
            for row in rows {
                let _ = write!(
                    text,
                    "{} origin={} tracks={} readers={} bytes={}{EOL}",
                    escape_name(&row.key.to_string()),
                    row.origin,
                    tracks(&row.tracks),
                    row.readers,
                    row.bytes
                );
            }
            let _ = write!(text, "{}{EOL}", count(rows.len(), "live stream"));
        }
        Answer::Sessions(rows) => {
            for row in rows {
                let _ = write!(
                    text,
                    "id={} role={} protocol={} peer={} stream={} bytes={}{EOL}",
                    row.id,
                    match row.role {
                        Role::Publisher => "publisher",
                        Role::Viewer => "viewer",
                    },
                    protocol_name(row.protocol),
                    row.peer,
                    escape_name(&row.key.to_string()),
                    row.bytes
                );
            }
            let _ = write!(text, "{}{EOL}", count(rows.len(), "session"));
        }
        Answer::Kicked(id, true) => {
            let _ = write!(text, "kicked session {id}{EOL}");
        }
        Answer::Kicked(id, false) => {
            let _ = write!(text, "no session {id}{EOL}");
        }
        Answer::Closed(key, hit) => {
            let key = escape_name(&key.to_string());
            let _ = if *hit {
                write!(text, "closed {key}{EOL}")
            } else {
                write!(text, "no live stream {key}{EOL}")
            };
        }
    }
}

/// `no live streams`, `1 live stream`, `2 live streams`.
fn count(n: usize, what: &str) -> String {
    match n {
        0 => format!("no {what}s"),
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}

/// `H264(320x240),AAC(44100Hz)`; `-` when none is known yet.
fn tracks(tracks: &[media::TrackInfo]) -> String {
    if tracks.is_empty() {
        return "-".into();
    }
    let mut text = String::new();
    for (i, t) in tracks.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(codec_name(t.codec));
        if t.width != 0 && t.height != 0 {
            let _ = write!(text, "({}x{})", t.width, t.height);
        } else if t.sample_rate != 0 {
            let _ = write!(text, "({}Hz)", t.sample_rate);
        }
    }
    text
}

fn codec_name(codec: Codec) -> &'static str {
    match codec {
        Codec::H264 => "H264",
        Codec::H265 => "H265",
        Codec::Aac => "AAC",
        Codec::G711A => "G711A",
        Codec::G711U => "G711U",
        Codec::Opus => "Opus",
        Codec::Mp3 => "MP3",
    }
}

/// How a session's protocol is shown: the transport and the container, one word.
fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Rtmp => "rtmp",
        Protocol::Rtsp => "rtsp",
        Protocol::HttpFlv => "http-flv",
        Protocol::WsFlv => "ws-flv",
        Protocol::Hls => "hls",
        Protocol::HlsFmp4 => "hls-fmp4",
        Protocol::HttpTs => "http-ts",
        Protocol::WsTs => "ws-ts",
        Protocol::HttpFmp4 => "http-fmp4",
        Protocol::WsFmp4 => "ws-fmp4",
        _ => protocol.schema(),
    }
}

/// Characters that would move the cursor, reorder or hide text, or break a line on a
/// terminal: the C0 and C1 controls and DEL, and Unicode's invisible format characters (bidi
/// embeddings, overrides and isolates, zero-width characters, line and paragraph separators,
/// the BOM, interlinear annotations).
pub(crate) fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00ad}' | '\u{061c}' | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}')
}

/// `text` safe to write to a terminal: unsafe characters and the backslash written as Rust
/// escapes (`\u{1b}`, `\\`), so the result is one line that shows what was there.
pub(crate) fn escape_text(text: &str) -> String {
    escape(text, false)
}

/// Like [`escape_text`], and whitespace escaped too, so that a name is one word on its line.
pub(crate) fn escape_name(text: &str) -> String {
    escape(text, true)
}

fn escape(text: &str, whitespace: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if is_unsafe(c) || (whitespace && c.is_whitespace()) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[path = "console_tests.rs"]
mod tests;
