//! The chunk stream (RTMP spec 1.0 §5.3): messages cut into chunks and interleaved.
//!
//! Every chunk is a basic header (§5.3.1.1: `fmt` and the chunk stream id, 1 to 3 bytes), a
//! message header whose size `fmt` selects (§5.3.1.2), an optional extended timestamp
//! (§5.3.1.3) and at most *chunk size* bytes of payload:
//!
//! ```text
//! fmt 0  11 bytes  timestamp(3) length(3) type(1) stream id(4, little endian)
//! fmt 1   7 bytes  timestamp delta(3) length(3) type(1)       same stream id
//! fmt 2   3 bytes  timestamp delta(3)                          same length, type, stream id
//! fmt 3   0 bytes  everything as before: a continuation, or a new message with the same delta
//! ```
//!
//! A timestamp field of `0xFFFFFF` means the real value follows in four bytes. A fmt 3 chunk
//! repeats those four bytes when the last fmt 0/1/2 header of its chunk stream had them
//! (§5.3.1.3; ffmpeg, OBS and nginx-rtmp all do). Timestamps add with wrapping `u32`
//! arithmetic: RTMP time wraps every 49.7 days.
//!
//! [`Decoder`] reassembles messages and applies what the peer says about chunking (Set Chunk
//! Size §5.4.1, Abort §5.4.2) itself, so a session cannot get the order wrong. [`Encoder`]
//! writes messages with our chunk size, choosing the smallest header that the peer will decode
//! the same way.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::message::{ABORT, SET_CHUNK_SIZE};
use crate::Error;

/// Chunk size both sides start with (§5.4.1).
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest chunk size the spec allows (the top bit of Set Chunk Size must be zero).
pub const SPEC_MAX_CHUNK_SIZE: u32 = 0x7fff_ffff;
/// Largest message length the 3-byte length field can carry.
pub const SPEC_MAX_MESSAGE_LEN: u32 = 0xff_ffff;
/// Smallest chunk stream id; 0 and 1 select the 2- and 3-byte basic headers.
pub const MIN_CSID: u32 = 2;
/// Largest chunk stream id (3-byte basic header: 64 + 0xffff).
pub const MAX_CSID: u32 = 65599;
/// Timestamp field value that announces an extended timestamp.
const EXTENDED: u32 = 0xff_ffff;

/// What the peer may ask of the decoder. Exceeding one is [`Error::LimitExceeded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest message accepted. Default: 16 MiB (the field cannot exceed 16 MiB − 1, so only a
    /// lower configured value bites).
    pub max_message_len: u32,
    /// Longest message of any type but audio (8), video (9) and aggregate (22): commands,
    /// data and control messages are small, so a peer announcing a 16 MiB `connect` is
    /// refused at the header instead of being buffered. Default: 1 MiB.
    pub max_control_len: u32,
    /// Largest Set Chunk Size accepted from the peer. Default: 16 MiB (the spec allows
    /// 0x7fffffff, which would let a peer make us buffer 2 GiB for one chunk).
    pub max_chunk_size: u32,
    /// Most chunk streams with state at once. Default: 64 (real peers use under ten).
    pub max_chunk_streams: usize,
    /// Most payload bytes held across all partly received messages. Default: 32 MiB.
    pub max_buffered: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_len: 16 * 1024 * 1024,
            max_control_len: 1024 * 1024,
            max_chunk_size: 16 * 1024 * 1024,
            max_chunk_streams: 64,
            max_buffered: 32 * 1024 * 1024,
        }
    }
}

/// A reassembled message (§6.1): header fields and the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The chunk stream it came on.
    pub csid: u32,
    /// Absolute timestamp, milliseconds (wrapping).
    pub timestamp: u32,
    /// Message type id (§5.4, §7.1), see [`crate::message`].
    pub type_id: u8,
    /// Message stream id: 0 for the connection, otherwise a `createStream` id.
    pub stream_id: u32,
    /// The payload.
    pub payload: Bytes,
}

/// Per chunk stream state of the decoder.
#[derive(Debug)]
struct InStream {
    csid: u32,
    timestamp: u32,
    /// The timestamp field of the last fmt 1/2 header, or the timestamp of the last fmt 0 (the
    /// delta a following fmt 3 that starts a message adds, §5.3.1.2.4).
    delta: u32,
    len: u32,
    type_id: u8,
    stream_id: u32,
    /// The last fmt 0/1/2 header had an extended timestamp, so fmt 3 chunks carry one too.
    extended: bool,
    /// Bytes still expected of the current message; 0 between messages.
    remaining: u32,
    partial: BytesMut,
}

/// Reassembles messages from the chunk stream (after the handshake).
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    streams: Vec<InStream>,
    chunk_size: u32,
    limits: Limits,
    /// Bytes consumed so far: the offset of `buf[0]` in the chunk stream.
    offset: usize,
    /// Payload bytes held in `partial` buffers.
    buffered: usize,
}

/// A parsed chunk header, before anything is committed.
struct ChunkHeader {
    fmt: u8,
    csid: u32,
    /// Bytes of basic + message header + extended timestamp.
    header_len: usize,
    /// Timestamp or delta field (extended value when the field was 0xFFFFFF).
    time: u32,
    extended: bool,
    len: u32,
    type_id: u8,
    stream_id: u32,
}

fn be24(b: &[u8]) -> u32 {
    b.iter()
        .take(3)
        .fold(0, |acc, &x| (acc << 8) | u32::from(x))
}

fn be32(b: &[u8]) -> u32 {
    b.iter()
        .take(4)
        .fold(0, |acc, &x| (acc << 8) | u32::from(x))
}

impl Decoder {
    /// A decoder with the spec's initial chunk size of 128.
    pub fn new(limits: Limits) -> Self {
        Decoder {
            buf: BytesMut::new(),
            streams: Vec::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            limits,
            offset: 0,
            buffered: 0,
        }
    }

    /// Appends bytes read from the peer. Call [`Decoder::poll_message`] until it returns
    /// `Ok(None)` afterwards.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The peer's current chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Bytes received but not yet part of a complete chunk.
    pub fn buffered_input(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `Ok(None)` when more input is needed.
    ///
    /// Set Chunk Size and Abort messages are applied here and then returned like any other.
    pub fn poll_message(&mut self) -> Result<Option<Message>, Error> {
        loop {
            let Some(h) = self.parse_header()? else {
                return Ok(None);
            };
            if let Some(msg) = self.take_chunk(h)? {
                self.apply_control(&msg)?;
                return Ok(Some(msg));
            }
        }
    }

    fn stream_index(&self, csid: u32) -> Option<usize> {
        self.streams.iter().position(|s| s.csid == csid)
    }

    /// Parses the header of the chunk at the front of `buf` if the whole chunk is there.
    fn parse_header(&self) -> Result<Option<ChunkHeader>, Error> {
        let b = &self.buf[..];
        let Some(&b0) = b.first() else {
            return Ok(None);
        };
        let fmt = b0 >> 6;
        let (csid, basic_len) = match b0 & 0x3f {
            0 => match b.get(1) {
                Some(&b1) => (64 + u32::from(b1), 2),
                None => return Ok(None),
            },
            1 => match (b.get(1), b.get(2)) {
                (Some(&b1), Some(&b2)) => (64 + u32::from(b1) + 256 * u32::from(b2), 3),
                _ => return Ok(None),
            },
            n => (u32::from(n), 1),
        };
        let msg_header_len = [11, 7, 3, 0][usize::from(fmt)];
        let Some(mh) = b.get(basic_len..basic_len + msg_header_len) else {
            return Ok(None);
        };
        let index = self.stream_index(csid);
        let stream = index.and_then(|i| self.streams.get(i));
        let violation = |context| Error::ProtocolViolation {
            offset: self.offset,
            context,
        };
        if fmt != 0 && stream.is_none() {
            return Err(violation(
                "chunk header refers to a chunk stream with no fmt 0 yet",
            ));
        }
        if fmt != 3 && stream.is_some_and(|s| s.remaining > 0) {
            return Err(violation(
                "new message header before the last message completed",
            ));
        }
        if index.is_none() && self.streams.len() >= self.limits.max_chunk_streams {
            return Err(Error::limit(
                "chunk streams",
                self.streams.len() as u64 + 1,
                self.limits.max_chunk_streams as u64,
            ));
        }
        let mut h = ChunkHeader {
            fmt,
            csid,
            header_len: basic_len + msg_header_len,
            time: 0,
            extended: false,
            len: 0,
            type_id: 0,
            stream_id: 0,
        };
        if let Some(s) = stream {
            h.len = s.len;
            h.type_id = s.type_id;
            h.stream_id = s.stream_id;
            h.extended = s.extended;
        }
        if fmt <= 2 {
            h.time = be24(mh);
            h.extended = h.time == EXTENDED;
        }
        if fmt <= 1 {
            h.len = be24(mh.get(3..).unwrap_or_default());
            h.type_id = mh.get(6).copied().unwrap_or_default();
        }
        if fmt == 0 {
            let id = mh.get(7..11).unwrap_or_default();
            h.stream_id = id.iter().rev().fold(0, |acc, &x| (acc << 8) | u32::from(x));
        }
        if h.extended {
            let Some(ext) = b.get(h.header_len..h.header_len + 4) else {
                return Ok(None);
            };
            if fmt <= 2 {
                h.time = be32(ext);
            }
            h.header_len += 4;
        }
        let new_message = stream.is_none_or(|s| s.remaining == 0);
        if new_message && h.len > self.limits.max_message_len {
            return Err(Error::limit(
                "message length",
                h.len,
                self.limits.max_message_len,
            ));
        }
        let is_media = matches!(h.type_id, 0x08 | 0x09 | 0x16);
        if new_message && !is_media && h.len > self.limits.max_control_len {
            return Err(Error::limit(
                "non-media message length",
                h.len,
                self.limits.max_control_len,
            ));
        }
        let remaining = if new_message {
            h.len
        } else {
            stream.map_or(0, |s| s.remaining)
        };
        let payload_len = remaining.min(self.chunk_size) as usize;
        if b.len() < h.header_len + payload_len {
            return Ok(None);
        }
        Ok(Some(h))
    }

    /// Consumes the chunk `h` describes; returns the message it completes, if any.
    fn take_chunk(&mut self, h: ChunkHeader) -> Result<Option<Message>, Error> {
        let chunk_size = self.chunk_size;
        let index = match self.stream_index(h.csid) {
            Some(i) => i,
            None => {
                self.streams.push(InStream {
                    csid: h.csid,
                    timestamp: 0,
                    delta: 0,
                    len: 0,
                    type_id: 0,
                    stream_id: 0,
                    extended: false,
                    remaining: 0,
                    partial: BytesMut::new(),
                });
                self.streams.len() - 1
            }
        };
        let Some(s) = self.streams.get_mut(index) else {
            return Ok(None);
        };
        let new_message = s.remaining == 0;
        match h.fmt {
            0 => {
                s.timestamp = h.time;
                s.delta = h.time;
            }
            1 | 2 => {
                s.delta = h.time;
                s.timestamp = s.timestamp.wrapping_add(h.time);
            }
            _ if new_message => s.timestamp = s.timestamp.wrapping_add(s.delta),
            _ => {}
        }
        if h.fmt <= 2 {
            s.extended = h.extended;
        }
        s.len = h.len;
        s.type_id = h.type_id;
        s.stream_id = h.stream_id;
        if new_message {
            s.remaining = h.len;
        }
        let payload_len = s.remaining.min(chunk_size) as usize;
        self.buf.advance(h.header_len);
        self.offset += h.header_len + payload_len;

        let complete = payload_len as u32 == s.remaining;
        let payload = if new_message && complete {
            // The whole message is one chunk: hand out the input buffer itself, no copy.
            self.buf.split_to(payload_len).freeze()
        } else {
            if self.buffered + payload_len > self.limits.max_buffered {
                return Err(Error::limit(
                    "buffered partial messages",
                    (self.buffered + payload_len) as u64,
                    self.limits.max_buffered as u64,
                ));
            }
            s.partial
                .extend_from_slice(self.buf.get(..payload_len).unwrap_or_default());
            self.buf.advance(payload_len);
            self.buffered += payload_len;
            s.remaining -= payload_len as u32;
            if !complete {
                return Ok(None);
            }
            self.buffered -= s.partial.len();
            // `split` leaves the spare capacity behind for the next message on this stream.
            s.partial.split().freeze()
        };
        s.remaining = 0;
        Ok(Some(Message {
            csid: s.csid,
            timestamp: s.timestamp,
            type_id: s.type_id,
            stream_id: s.stream_id,
            payload,
        }))
    }

    /// Applies Set Chunk Size (§5.4.1) and Abort (§5.4.2).
    fn apply_control(&mut self, msg: &Message) -> Result<(), Error> {
        if msg.stream_id != 0 || !matches!(msg.type_id, SET_CHUNK_SIZE | ABORT) {
            return Ok(());
        }
        let Some(v) = msg.payload.get(..4).map(be32) else {
            return Err(Error::malformed(self.offset, "protocol control message"));
        };
        if msg.type_id == SET_CHUNK_SIZE {
            // The top bit "MUST be zero"; some encoders set it anyway, so ignore it.
            let size = v & SPEC_MAX_CHUNK_SIZE;
            if size == 0 {
                return Err(Error::ProtocolViolation {
                    offset: self.offset,
                    context: "Set Chunk Size of 0",
                });
            }
            if size > self.limits.max_chunk_size {
                return Err(Error::limit("chunk size", size, self.limits.max_chunk_size));
            }
            tracing::debug!(size, "peer set chunk size");
            self.chunk_size = size;
        } else if let Some(s) = self.streams.iter_mut().find(|s| s.csid == v) {
            tracing::debug!(csid = v, "peer aborted message");
            self.buffered -= s.partial.len();
            s.partial.clear();
            s.remaining = 0;
        }
        Ok(())
    }
}

/// Where a message goes: chunk stream, time, type and message stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Chunk stream id, [`MIN_CSID`]..=[`MAX_CSID`].
    pub csid: u32,
    /// Absolute timestamp, milliseconds.
    pub timestamp: u32,
    /// Message type id.
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
}

/// Per chunk stream state of the encoder: the last header we sent.
#[derive(Debug)]
struct OutStream {
    csid: u32,
    timestamp: u32,
    /// The delta a fmt 3 would repeat; `None` right after a fmt 0, where peers disagree about
    /// it (ffmpeg follows the spec and repeats the absolute timestamp, nginx-rtmp adds 0).
    delta: Option<u32>,
    len: u32,
    type_id: u8,
    stream_id: u32,
}

/// Writes messages as chunks of our chunk size.
#[derive(Debug)]
pub struct Encoder {
    chunk_size: u32,
    streams: Vec<OutStream>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    /// An encoder with the initial chunk size of 128.
    pub fn new() -> Self {
        Encoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: Vec::new(),
        }
    }

    /// Our chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Changes our chunk size, clamped to 1..=0x7fffffff. The caller must send the Set Chunk
    /// Size message (with the old size) before any message written with the new one.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, SPEC_MAX_CHUNK_SIZE);
    }

    /// Appends `payload` as chunks to `out`. The payload is copied once; `out` grows at most
    /// once. A payload longer than 16 MiB − 1 cannot be sent and is [`Error::LimitExceeded`].
    pub fn write(&mut self, out: &mut BytesMut, h: Header, payload: &[u8]) -> Result<(), Error> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&l| l <= SPEC_MAX_MESSAGE_LEN)
            .ok_or(Error::limit(
                "outgoing message length",
                payload.len() as u64,
                SPEC_MAX_MESSAGE_LEN,
            ))?;
        debug_assert!((MIN_CSID..=MAX_CSID).contains(&h.csid), "csid {}", h.csid);

        let (fmt, time) = match self.streams.iter().find(|s| s.csid == h.csid) {
            None => (0, h.timestamp),
            Some(p) if p.stream_id != h.stream_id || h.timestamp < p.timestamp => (0, h.timestamp),
            Some(p) => {
                let delta = h.timestamp - p.timestamp;
                if p.len != len || p.type_id != h.type_id {
                    (1, delta)
                } else if p.delta != Some(delta) {
                    (2, delta)
                } else {
                    (3, delta)
                }
            }
        };
        let extended = time >= EXTENDED;

        let basic_len = match h.csid {
            0..=63 => 1,
            64..=319 => 2,
            _ => 3,
        };
        let ext_len = if extended { 4 } else { 0 };
        let chunks = payload.len().div_ceil(self.chunk_size as usize).max(1);
        let header_len = basic_len + [11, 7, 3, 0][fmt as usize] + ext_len;
        out.reserve(header_len + (chunks - 1) * (basic_len + ext_len) + payload.len());

        put_basic_header(out, fmt, h.csid);
        let field = if extended { EXTENDED } else { time };
        if fmt <= 2 {
            put_u24(out, field);
        }
        if fmt <= 1 {
            put_u24(out, len);
            out.put_u8(h.type_id);
        }
        if fmt == 0 {
            out.put_u32_le(h.stream_id);
        }
        if extended {
            out.put_u32(time);
        }
        let mut pieces = payload.chunks(self.chunk_size as usize);
        if let Some(first) = pieces.next() {
            out.put_slice(first);
        }
        for piece in pieces {
            put_basic_header(out, 3, h.csid);
            if extended {
                out.put_u32(time);
            }
            out.put_slice(piece);
        }

        let state = OutStream {
            csid: h.csid,
            timestamp: h.timestamp,
            delta: (fmt != 0).then_some(time),
            len,
            type_id: h.type_id,
            stream_id: h.stream_id,
        };
        match self.streams.iter_mut().find(|s| s.csid == h.csid) {
            Some(s) => *s = state,
            None => self.streams.push(state),
        }
        Ok(())
    }
}

fn put_u24(out: &mut BytesMut, v: u32) {
    out.put_slice(&v.to_be_bytes()[1..]);
}

fn put_basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
    let fmt = fmt << 6;
    match csid {
        0..=63 => out.put_u8(fmt | csid as u8),
        64..=319 => {
            out.put_u8(fmt);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            let v = csid.saturating_sub(64).min(0xffff);
            out.put_u8(fmt | 1);
            out.put_u8((v & 0xff) as u8);
            out.put_u8((v >> 8) as u8);
        }
    }
}

#[cfg(test)]
mod tests;
