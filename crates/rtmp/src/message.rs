//! RTMP messages above the chunk stream: type ids, protocol control (RTMP spec 1.0 §5.4), user
//! control events (§6.2, §7.1.7), commands (§7.1.1, §7.2) and aggregates (§7.1.6).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::amf0::{self, Value};
use crate::chunk::{Encoder, Header};
use crate::Error;

/// Set Chunk Size (§5.4.1): the sender's new maximum chunk payload.
pub const SET_CHUNK_SIZE: u8 = 0x01;
/// Abort Message (§5.4.2): drop the partial message on a chunk stream.
pub const ABORT: u8 = 0x02;
/// Acknowledgement (§5.4.3): bytes received so far.
pub const ACKNOWLEDGEMENT: u8 = 0x03;
/// User Control Message (§6.2).
pub const USER_CONTROL: u8 = 0x04;
/// Window Acknowledgement Size (§5.4.4): acknowledge every this many bytes.
pub const WINDOW_ACK_SIZE: u8 = 0x05;
/// Set Peer Bandwidth (§5.4.5).
pub const SET_PEER_BANDWIDTH: u8 = 0x06;
/// Audio data (§7.1.4): an FLV audio tag body.
pub const AUDIO: u8 = 0x08;
/// Video data (§7.1.5): an FLV video tag body.
pub const VIDEO: u8 = 0x09;
/// Data message in AMF3 (§7.1.2).
pub const DATA_AMF3: u8 = 0x0f;
/// Shared object message in AMF3 (§7.1.3).
pub const SHARED_OBJECT_AMF3: u8 = 0x10;
/// Command message in AMF3 (§7.1.1).
pub const COMMAND_AMF3: u8 = 0x11;
/// Data message in AMF0 (§7.1.2): `@setDataFrame`, `onMetaData`.
pub const DATA_AMF0: u8 = 0x12;
/// Shared object message in AMF0 (§7.1.3).
pub const SHARED_OBJECT_AMF0: u8 = 0x13;
/// Command message in AMF0 (§7.1.1).
pub const COMMAND_AMF0: u8 = 0x14;
/// Aggregate message (§7.1.6): FLV tags in one message.
pub const AGGREGATE: u8 = 0x16;

/// Chunk stream for protocol control and user control messages (§5.4: "chunk stream ID 2").
pub const CSID_CONTROL: u32 = 2;
/// Chunk stream for NetConnection commands (as nginx-rtmp and FMS use).
pub const CSID_COMMAND: u32 = 3;
/// Chunk stream for NetStream commands and data messages.
pub const CSID_STREAM: u32 = 5;
/// Chunk stream for audio, kept apart from video so each keeps compressible headers.
pub const CSID_AUDIO: u32 = 6;
/// Chunk stream for video.
pub const CSID_VIDEO: u32 = 7;

/// Set Peer Bandwidth limit type "dynamic" (§5.4.5).
pub const LIMIT_DYNAMIC: u8 = 0x02;

/// A user control event (§6.2 and §7.1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserControl {
    /// 0: the stream is now functional.
    StreamBegin(u32),
    /// 1: playback of the stream is over.
    StreamEof(u32),
    /// 2: no more data on the stream for now.
    StreamDry(u32),
    /// 3: the client's buffer length for a stream, milliseconds.
    SetBufferLength {
        /// The stream.
        stream_id: u32,
        /// Buffer length, milliseconds.
        buffer_ms: u32,
    },
    /// 4: the stream is a recorded one.
    StreamIsRecorded(u32),
    /// 6: the sender's timestamp; answer with [`UserControl::PingResponse`].
    PingRequest(u32),
    /// 7: the timestamp of the ping request being answered.
    PingResponse(u32),
    /// Any other event type.
    Other(u16),
}

impl UserControl {
    /// Parses a user control message payload.
    pub fn parse(payload: &[u8]) -> Result<Self, Error> {
        let mut b = payload;
        if b.len() < 2 {
            return Err(Error::malformed(0, "user control event type"));
        }
        let kind = b.get_u16();
        let mut word = |at| {
            if b.len() < 4 {
                Err(Error::malformed(at, "user control event data"))
            } else {
                Ok(b.get_u32())
            }
        };
        Ok(match kind {
            0 => UserControl::StreamBegin(word(2)?),
            1 => UserControl::StreamEof(word(2)?),
            2 => UserControl::StreamDry(word(2)?),
            3 => UserControl::SetBufferLength {
                stream_id: word(2)?,
                buffer_ms: word(6)?,
            },
            4 => UserControl::StreamIsRecorded(word(2)?),
            6 => UserControl::PingRequest(word(2)?),
            7 => UserControl::PingResponse(word(2)?),
            other => UserControl::Other(other),
        })
    }

    /// Appends the payload encoding.
    pub fn encode(&self, out: &mut BytesMut) {
        let (kind, a, b) = match *self {
            UserControl::StreamBegin(id) => (0, id, None),
            UserControl::StreamEof(id) => (1, id, None),
            UserControl::StreamDry(id) => (2, id, None),
            UserControl::SetBufferLength {
                stream_id,
                buffer_ms,
            } => (3, stream_id, Some(buffer_ms)),
            UserControl::StreamIsRecorded(id) => (4, id, None),
            UserControl::PingRequest(t) => (6, t, None),
            UserControl::PingResponse(t) => (7, t, None),
            UserControl::Other(kind) => {
                out.put_u16(kind);
                return;
            }
        };
        out.put_u16(kind);
        out.put_u32(a);
        if let Some(b) = b {
            out.put_u32(b);
        }
    }
}

/// A command message (§7.1.1): name, transaction id, command object, arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Procedure name: `connect`, `publish`, `_result`, `onStatus`, …
    pub name: String,
    /// Transaction id; 0 when no answer is expected.
    pub transaction_id: f64,
    /// Command object (`Null` for most NetStream commands).
    pub object: Value,
    /// The remaining values.
    pub args: Vec<Value>,
}

impl Command {
    /// Parses an AMF0 command payload. For AMF3 command messages (type 0x11) pass the payload
    /// without its leading format byte; the values themselves are AMF0 in practice.
    pub fn parse(payload: &[u8]) -> Result<Self, Error> {
        let mut values = amf0::decode_all(payload)?.into_iter();
        let name = match values.next() {
            Some(Value::String(s)) => s,
            _ => return Err(Error::malformed(0, "command name")),
        };
        // The spec requires a transaction id and command object; tolerate their absence in
        // one-way notifications.
        let transaction_id = values.next().and_then(|v| v.as_f64()).unwrap_or(0.0);
        let object = values.next().unwrap_or(Value::Null);
        Ok(Command {
            name,
            transaction_id,
            object,
            args: values.collect(),
        })
    }

    /// The first argument, where `publish`, `play`, `deleteStream` and `onStatus` put theirs.
    pub fn arg(&self, i: usize) -> Option<&Value> {
        self.args.get(i)
    }
}

/// The AMF0 body of a command, data or AMF3 message: AMF3 messages start with a format byte
/// that is 0 when the values are AMF0 (what every real encoder sends).
pub(crate) fn amf0_body(type_id: u8, payload: &Bytes) -> Bytes {
    match (type_id, payload.first()) {
        (COMMAND_AMF3 | DATA_AMF3, Some(0)) => payload.slice(1..),
        _ => payload.clone(),
    }
}

/// One message inside an aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubMessage {
    /// Message type ([`AUDIO`], [`VIDEO`], [`DATA_AMF0`], …).
    pub type_id: u8,
    /// Absolute timestamp: the aggregate's plus the offset from its first sub-message.
    pub timestamp: u32,
    /// The body, a slice of the aggregate's payload.
    pub payload: Bytes,
}

/// Splits an aggregate message (§7.1.6): FLV-style tags (11-byte header, body, 4-byte back
/// pointer). Sub-message times are relative to the first one's, rebased on the aggregate's.
pub fn split_aggregate(payload: &Bytes, timestamp: u32) -> Result<Vec<SubMessage>, Error> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut first_ts = None;
    while pos < payload.len() {
        let head = payload
            .get(pos..pos + 11)
            .ok_or(Error::malformed(pos, "aggregate sub-message header"))?;
        let type_id = head.first().copied().unwrap_or_default();
        let len = head[1..4]
            .iter()
            .fold(0usize, |a, &b| (a << 8) | usize::from(b));
        let ts = head[4..7]
            .iter()
            .fold(0u32, |a, &b| (a << 8) | u32::from(b))
            | (u32::from(head[7]) << 24);
        let body_at = pos + 11;
        let body_end = body_at + len;
        if payload.len() < body_end + 4 {
            return Err(Error::malformed(pos, "aggregate sub-message body"));
        }
        let base = *first_ts.get_or_insert(ts);
        out.push(SubMessage {
            type_id,
            timestamp: timestamp.wrapping_add(ts.wrapping_sub(base)),
            payload: payload.slice(body_at..body_end),
        });
        pos = body_end + 4;
    }
    Ok(out)
}

/// Our side of the connection: the chunk encoder, the output buffer and a scratch buffer for
/// AMF bodies, so sending a command allocates nothing once the buffers have grown.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub(crate) enc: Encoder,
    pub(crate) buf: BytesMut,
    scratch: BytesMut,
}

impl Outbox {
    /// Moves what is waiting onto `out` (without a copy when `out` is empty); false when
    /// nothing was. The buffer itself goes with the bytes: an idle session keeps no
    /// allocation sized by its largest burst (a player's first GOP, a batch of tags).
    pub(crate) fn transmit(&mut self, out: &mut BytesMut) -> bool {
        if self.buf.is_empty() {
            return false;
        }
        if out.is_empty() {
            *out = std::mem::take(&mut self.buf);
        } else {
            out.extend_from_slice(&self.buf);
            self.buf.clear();
        }
        true
    }

    pub(crate) fn message(&mut self, h: Header, payload: &[u8]) {
        if let Err(e) = self.enc.write(&mut self.buf, h, payload) {
            tracing::warn!(error = %e, type_id = h.type_id, "dropping message that cannot be sent");
        }
    }

    fn control(&mut self, type_id: u8, payload: &[u8]) {
        let h = Header {
            csid: CSID_CONTROL,
            timestamp: 0,
            type_id,
            stream_id: 0,
        };
        self.message(h, payload);
    }

    /// Sends Set Chunk Size and starts using it.
    pub(crate) fn set_chunk_size(&mut self, size: u32) {
        let size = size.clamp(1, crate::chunk::SPEC_MAX_CHUNK_SIZE);
        self.control(SET_CHUNK_SIZE, &size.to_be_bytes());
        self.enc.set_chunk_size(size);
    }

    pub(crate) fn window_ack_size(&mut self, size: u32) {
        self.control(WINDOW_ACK_SIZE, &size.to_be_bytes());
    }

    pub(crate) fn set_peer_bandwidth(&mut self, size: u32, limit: u8) {
        let b = size.to_be_bytes();
        self.control(SET_PEER_BANDWIDTH, &[b[0], b[1], b[2], b[3], limit]);
    }

    pub(crate) fn acknowledgement(&mut self, sequence: u32) {
        self.control(ACKNOWLEDGEMENT, &sequence.to_be_bytes());
    }

    pub(crate) fn user_control(&mut self, event: UserControl) {
        let mut b = std::mem::take(&mut self.scratch);
        b.clear();
        event.encode(&mut b);
        self.control(USER_CONTROL, &b);
        self.scratch = b;
    }

    /// Sends AMF0 `values` as a command (type 0x14) or data (type 0x12) message.
    pub(crate) fn amf(&mut self, h: Header, values: &[Value]) {
        let mut b = std::mem::take(&mut self.scratch);
        b.clear();
        for v in values {
            amf0::encode(v, &mut b);
        }
        self.message(h, &b);
        self.scratch = b;
    }

    /// Sends an AMF0 string followed by already-encoded AMF0 `rest` as one data message.
    pub(crate) fn data_with_prefix(&mut self, h: Header, prefix: &str, rest: &[u8]) {
        let mut b = std::mem::take(&mut self.scratch);
        b.clear();
        amf0::encode(&Value::string(prefix), &mut b);
        b.extend_from_slice(rest);
        self.message(h, &b);
        self.scratch = b;
    }

    /// Sends a command with the conventional layout.
    pub(crate) fn command(
        &mut self,
        csid: u32,
        stream_id: u32,
        name: &str,
        transaction_id: f64,
        values: &[Value],
    ) {
        let mut b = std::mem::take(&mut self.scratch);
        b.clear();
        amf0::encode(&Value::string(name), &mut b);
        amf0::encode(&Value::Number(transaction_id), &mut b);
        for v in values {
            amf0::encode(v, &mut b);
        }
        let h = Header {
            csid,
            timestamp: 0,
            type_id: COMMAND_AMF0,
            stream_id,
        };
        self.message(h, &b);
        self.scratch = b;
    }

    /// Sends `onStatus` on a stream (§7.2.2): `{level, code, description}`.
    pub(crate) fn on_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        let info = Value::object([
            ("level", Value::string(level)),
            ("code", Value::string(code)),
            ("description", Value::string(description)),
        ]);
        self.command(
            CSID_STREAM,
            stream_id,
            "onStatus",
            0.0,
            &[Value::Null, info],
        );
    }
}

/// Reads the big-endian `u32` a protocol control message carries.
pub(crate) fn control_u32(payload: &[u8], context: &'static str) -> Result<u32, Error> {
    let b = payload.get(..4).ok_or(Error::malformed(0, context))?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Splits `name?query` at the first `?`.
pub(crate) fn split_query(s: &str) -> (&str, &str) {
    s.split_once('?').unwrap_or((s, ""))
}

/// The `onMetaData` body of a data message: the message itself when it starts with
/// `onMetaData`, the rest after `@setDataFrame` when it starts with that. `None` when it is
/// something else, has nothing after the name, or does not decode.
pub(crate) fn metadata_body(body: &Bytes) -> Option<Bytes> {
    let (first, used) = amf0::decode(body).ok()?;
    let data = match first.as_str()? {
        "onMetaData" => body.clone(),
        "@setDataFrame" => body.slice(used..),
        _ => return None,
    };
    let values = amf0::decode_all(&data).ok()?;
    match values.as_slice() {
        [name, _, ..] if name.as_str() == Some("onMetaData") => Some(data),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_control_round_trip() {
        for ev in [
            UserControl::StreamBegin(1),
            UserControl::StreamEof(7),
            UserControl::StreamDry(2),
            UserControl::SetBufferLength {
                stream_id: 1,
                buffer_ms: 3000,
            },
            UserControl::StreamIsRecorded(1),
            UserControl::PingRequest(123),
            UserControl::PingResponse(456),
            UserControl::Other(0x1a),
        ] {
            let mut b = BytesMut::new();
            ev.encode(&mut b);
            assert_eq!(UserControl::parse(&b), Ok(ev));
        }
        assert!(UserControl::parse(&[0]).is_err());
        assert!(UserControl::parse(&[0, 0, 0]).is_err());
        assert!(UserControl::parse(&[0, 3, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn command_parse() {
        let mut b = BytesMut::new();
        for v in [
            Value::string("publish"),
            Value::Number(5.0),
            Value::Null,
            Value::string("obs?token=abc"),
            Value::string("live"),
        ] {
            amf0::encode(&v, &mut b);
        }
        let c = Command::parse(&b).expect("parses");
        assert_eq!(c.name, "publish");
        assert_eq!(c.transaction_id, 5.0);
        assert_eq!(c.object, Value::Null);
        assert_eq!(c.arg(0).and_then(Value::as_str), Some("obs?token=abc"));
        assert!(Command::parse(&[0x05]).is_err());
    }

    #[test]
    fn aggregate_split() {
        let mut agg = BytesMut::new();
        for (t, ts, body) in [(AUDIO, 1000u32, &b"ab"[..]), (VIDEO, 1040, &b"xyz"[..])] {
            agg.put_u8(t);
            agg.put_slice(&(body.len() as u32).to_be_bytes()[1..]);
            agg.put_slice(&ts.to_be_bytes()[1..]);
            agg.put_u8((ts >> 24) as u8);
            agg.put_slice(&[0, 0, 0]);
            agg.put_slice(body);
            agg.put_u32(11 + body.len() as u32);
        }
        let agg = agg.freeze();
        let subs = split_aggregate(&agg, 50).expect("splits");
        assert_eq!(subs.len(), 2);
        assert_eq!((subs[0].type_id, subs[0].timestamp), (AUDIO, 50));
        assert_eq!((subs[1].type_id, subs[1].timestamp), (VIDEO, 90));
        assert_eq!(&subs[1].payload[..], b"xyz");
        assert!(split_aggregate(&agg.slice(..agg.len() - 1), 0).is_err());
    }

    #[test]
    fn query_split() {
        assert_eq!(split_query("obs?token=abc"), ("obs", "token=abc"));
        assert_eq!(split_query("obs"), ("obs", ""));
    }
}
