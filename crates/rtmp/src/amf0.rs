//! AMF0, the value encoding of RTMP commands and data messages (Adobe AMF0 specification,
//! 2007; RTMP spec 1.0 §7.1.1 and §7.1.2).
//!
//! Only the value types RTMP peers send are decoded. Reference (0x07), movie clip, record set,
//! XML document, typed object and the AVM+ switch (0x11) are [`Error::Unsupported`].
//!
//! Decoding is safe on hostile input: nesting is limited to [`MAX_DEPTH`] levels and no
//! allocation is sized from a count in the input (an array of 4 billion elements costs nothing
//! until its elements are actually there).

use bytes::{BufMut, BytesMut};

use crate::Error;

/// Deepest nesting of objects and arrays [`decode`] accepts.
pub const MAX_DEPTH: usize = 64;

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0a;
const DATE: u8 = 0x0b;
const LONG_STRING: u8 = 0x0c;

/// One AMF0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Number (0x00): an IEEE 754 double.
    Number(f64),
    /// Boolean (0x01).
    Boolean(bool),
    /// String (0x02), at most 65535 bytes of UTF-8. Longer strings are encoded as long strings.
    String(String),
    /// Anonymous object (0x03): ordered key/value pairs.
    Object(Vec<(String, Value)>),
    /// Null (0x05).
    Null,
    /// Undefined (0x06).
    Undefined,
    /// ECMA array (0x08): an associative array, as `onMetaData` usually is.
    EcmaArray(Vec<(String, Value)>),
    /// Strict array (0x0a).
    StrictArray(Vec<Value>),
    /// Date (0x0b): milliseconds since the epoch; the time zone field is ignored.
    Date(f64),
    /// Long string (0x0c).
    LongString(String),
}

impl Value {
    /// The value stored under `key` in an object or ECMA array.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(props) | Value::EcmaArray(props) => {
                props.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// The text of a string or long string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::LongString(s) => Some(s),
            _ => None,
        }
    }

    /// The number of a number or date.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) | Value::Date(n) => Some(*n),
            _ => None,
        }
    }

    /// The value of a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// A string value.
    pub fn string(s: impl Into<String>) -> Self {
        Value::String(s.into())
    }

    /// An object from `(key, value)` pairs.
    pub fn object<'a>(props: impl IntoIterator<Item = (&'a str, Value)>) -> Self {
        Value::Object(props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }
}

/// Decodes one value from the start of `buf`; returns it and the number of bytes it used.
///
/// Input that ends inside the value is [`Error::Malformed`]: AMF0 lives inside complete RTMP
/// messages, so unlike the chunk stream there is no "wait for more".
pub fn decode(buf: &[u8]) -> Result<(Value, usize), Error> {
    let mut r = Reader { buf, pos: 0 };
    let value = r.value(0)?;
    Ok((value, r.pos))
}

/// Decodes values until `buf` is used up, as in a command or data message body.
pub fn decode_all(buf: &[u8]) -> Result<Vec<Value>, Error> {
    let mut r = Reader { buf, pos: 0 };
    let mut out = Vec::new();
    while r.pos < buf.len() {
        out.push(r.value(0)?);
    }
    Ok(out)
}

/// Appends the encoding of `value` to `out`.
pub fn encode(value: &Value, out: &mut BytesMut) {
    match value {
        Value::Number(n) => {
            out.put_u8(NUMBER);
            out.put_f64(*n);
        }
        Value::Boolean(b) => {
            out.put_u8(BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Value::String(s) => match u16::try_from(s.len()) {
            Ok(len) => {
                out.put_u8(STRING);
                out.put_u16(len);
                out.put_slice(s.as_bytes());
            }
            Err(_) => encode_long_string(s, out),
        },
        Value::Object(props) => {
            out.put_u8(OBJECT);
            encode_props(props, out);
        }
        Value::Null => out.put_u8(NULL),
        Value::Undefined => out.put_u8(UNDEFINED),
        Value::EcmaArray(props) => {
            out.put_u8(ECMA_ARRAY);
            out.put_u32(u32::try_from(props.len()).unwrap_or(u32::MAX));
            encode_props(props, out);
        }
        Value::StrictArray(items) => {
            out.put_u8(STRICT_ARRAY);
            out.put_u32(u32::try_from(items.len()).unwrap_or(u32::MAX));
            for item in items {
                encode(item, out);
            }
        }
        Value::Date(ms) => {
            out.put_u8(DATE);
            out.put_f64(*ms);
            out.put_i16(0);
        }
        Value::LongString(s) => encode_long_string(s, out),
    }
}

/// Appends a bare (marker-less) UTF-8 string as used for object keys.
fn encode_key(key: &str, out: &mut BytesMut) {
    // Keys longer than 65535 bytes cannot be represented; cut at a character boundary.
    let mut end = key.len().min(usize::from(u16::MAX));
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    out.put_u16(end as u16);
    out.put_slice(&key.as_bytes()[..end]);
}

fn encode_long_string(s: &str, out: &mut BytesMut) {
    out.put_u8(LONG_STRING);
    out.put_u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
    out.put_slice(s.as_bytes());
}

fn encode_props(props: &[(String, Value)], out: &mut BytesMut) {
    for (k, v) in props {
        encode_key(k, out);
        encode(v, out);
    }
    out.put_u16(0);
    out.put_u8(OBJECT_END);
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, context: &'static str) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(Error::malformed(self.pos, context))?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or(Error::malformed(self.pos, context))?;
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self, context: &'static str) -> Result<u8, Error> {
        let b = self.take(1, context)?;
        Ok(b.first().copied().unwrap_or_default())
    }

    fn u16(&mut self, context: &'static str) -> Result<u16, Error> {
        let b = self.take(2, context)?;
        let mut a = [0; 2];
        a.copy_from_slice(b);
        Ok(u16::from_be_bytes(a))
    }

    fn u32(&mut self, context: &'static str) -> Result<u32, Error> {
        let b = self.take(4, context)?;
        let mut a = [0; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }

    fn f64(&mut self, context: &'static str) -> Result<f64, Error> {
        let b = self.take(8, context)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn utf8(&mut self, len: usize, context: &'static str) -> Result<String, Error> {
        // Peers (old Flash encoders) occasionally send Latin-1; keep the message usable.
        Ok(String::from_utf8_lossy(self.take(len, context)?).into_owned())
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        let at = self.pos;
        let marker = self.u8("AMF0 marker")?;
        Ok(match marker {
            NUMBER => Value::Number(self.f64("AMF0 number")?),
            BOOLEAN => Value::Boolean(self.u8("AMF0 boolean")? != 0),
            STRING => {
                let len = self.u16("AMF0 string length")?;
                Value::String(self.utf8(usize::from(len), "AMF0 string")?)
            }
            LONG_STRING => {
                let len = self.u32("AMF0 long string length")?;
                let len =
                    usize::try_from(len).map_err(|_| Error::malformed(at, "AMF0 long string"))?;
                Value::LongString(self.utf8(len, "AMF0 long string")?)
            }
            OBJECT => Value::Object(self.props(depth, at, false)?),
            NULL => Value::Null,
            UNDEFINED => Value::Undefined,
            ECMA_ARRAY => {
                // The count is advisory (the AMF0 spec says so); the end marker ends the array.
                let _count = self.u32("AMF0 ECMA array count")?;
                Value::EcmaArray(self.props(depth, at, true)?)
            }
            STRICT_ARRAY => {
                let count = self.u32("AMF0 strict array count")?;
                self.check_depth(depth, at)?;
                // Every element takes at least one byte, so a count beyond the remaining input
                // is malformed; checking first stops a huge count from spinning.
                let remaining = self.buf.len().saturating_sub(self.pos);
                if u64::from(count) > remaining as u64 {
                    return Err(Error::malformed(at, "AMF0 strict array count"));
                }
                let mut items = Vec::new();
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Value::StrictArray(items)
            }
            DATE => {
                let ms = self.f64("AMF0 date")?;
                let _time_zone = self.u16("AMF0 date time zone")?;
                Value::Date(ms)
            }
            OBJECT_END => return Err(Error::malformed(at, "AMF0 object end outside an object")),
            other => {
                return Err(Error::Unsupported(format!(
                    "AMF0 marker {other:#04x} at byte {at}"
                )))
            }
        })
    }

    fn check_depth(&self, depth: usize, at: usize) -> Result<(), Error> {
        if depth >= MAX_DEPTH {
            tracing::debug!(offset = at, "AMF0 nested too deep");
            return Err(Error::limit(
                "AMF0 nesting depth",
                depth as u64 + 1,
                MAX_DEPTH as u64,
            ));
        }
        Ok(())
    }

    /// Reads key/value pairs up to the empty key and object-end marker.
    fn props(
        &mut self,
        depth: usize,
        at: usize,
        ecma: bool,
    ) -> Result<Vec<(String, Value)>, Error> {
        self.check_depth(depth, at)?;
        let mut props = Vec::new();
        loop {
            if ecma && self.pos == self.buf.len() {
                // Some encoders end an ECMA array without the end marker when it is the last
                // value of a message; accept what is there.
                return Ok(props);
            }
            let key_len = self.u16("AMF0 property key length")?;
            if key_len == 0 {
                let end_at = self.pos;
                if self.u8("AMF0 object end")? != OBJECT_END {
                    return Err(Error::malformed(end_at, "AMF0 object end"));
                }
                return Ok(props);
            }
            let key = self.utf8(usize::from(key_len), "AMF0 property key")?;
            let value = self.value(depth + 1)?;
            props.push((key, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: &Value) -> Value {
        let mut out = BytesMut::new();
        encode(v, &mut out);
        let (back, used) = decode(&out).expect("decodes");
        assert_eq!(used, out.len());
        back
    }

    #[test]
    fn scalars_round_trip() {
        for v in [
            Value::Number(1.5),
            Value::Number(-0.0),
            Value::Boolean(true),
            Value::Boolean(false),
            Value::string("connect"),
            Value::string(""),
            Value::Null,
            Value::Undefined,
            Value::Date(1_700_000_000_000.0),
            Value::LongString("x".repeat(70_000)),
        ] {
            assert_eq!(round_trip(&v), v);
        }
    }

    #[test]
    fn containers_round_trip() {
        let v = Value::object([
            ("app", Value::string("live")),
            ("tcUrl", Value::string("rtmp://h/live")),
            (
                "fourCcList",
                Value::StrictArray(vec![Value::string("hvc1"), Value::string("avc1")]),
            ),
            (
                "meta",
                Value::EcmaArray(vec![
                    ("width".into(), Value::Number(320.0)),
                    ("nested".into(), Value::object([("a", Value::Null)])),
                ]),
            ),
        ]);
        assert_eq!(round_trip(&v), v);
        assert_eq!(v.get("app").and_then(Value::as_str), Some("live"));
        assert_eq!(
            v.get("meta")
                .and_then(|m| m.get("width"))
                .and_then(Value::as_f64),
            Some(320.0)
        );
        assert!(v.get("missing").is_none());
    }

    #[test]
    fn long_rust_string_encodes_as_long_string() {
        let s = "y".repeat(0x1_0000);
        let back = round_trip(&Value::String(s.clone()));
        assert_eq!(back, Value::LongString(s));
    }

    #[test]
    fn known_bytes() {
        // "connect" as emitted by every RTMP client.
        let bytes = [0x02, 0x00, 0x07, b'c', b'o', b'n', b'n', b'e', b'c', b't'];
        assert_eq!(decode(&bytes), Ok((Value::string("connect"), 10)));
        let mut out = BytesMut::new();
        encode(&Value::Number(1.0), &mut out);
        assert_eq!(&out[..], &[0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn decode_all_reads_a_command() {
        let mut out = BytesMut::new();
        for v in [Value::string("publish"), Value::Number(0.0), Value::Null] {
            encode(&v, &mut out);
        }
        let values = decode_all(&out).expect("decodes");
        assert_eq!(values.len(), 3);
        assert_eq!(values[2], Value::Null);
    }

    #[test]
    fn truncated_input_is_malformed() {
        let mut out = BytesMut::new();
        encode(&Value::object([("k", Value::string("value"))]), &mut out);
        for cut in 0..out.len() {
            assert!(
                matches!(decode(&out[..cut]), Err(Error::Malformed { .. })),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn ecma_array_without_end_marker_is_accepted() {
        let bytes = [0x08, 0, 0, 0, 1, 0, 1, b'a', 0x05];
        let (v, used) = decode(&bytes).expect("decodes");
        assert_eq!(used, bytes.len());
        assert_eq!(v.get("a"), Some(&Value::Null));
    }

    #[test]
    fn deep_nesting_is_limited() {
        let mut bytes = Vec::new();
        for _ in 0..1000 {
            bytes.extend_from_slice(&[0x0a, 0, 0, 0, 1]);
        }
        bytes.push(0x05);
        assert!(matches!(decode(&bytes), Err(Error::LimitExceeded { .. })));
        let mut ok = Vec::new();
        for _ in 0..MAX_DEPTH {
            ok.extend_from_slice(&[0x0a, 0, 0, 0, 1]);
        }
        ok.push(0x05);
        assert!(decode(&ok).is_ok());
    }

    #[test]
    fn huge_counts_do_not_allocate() {
        let bytes = [0x0a, 0xff, 0xff, 0xff, 0xff, 0x05];
        assert!(matches!(decode(&bytes), Err(Error::Malformed { .. })));
        let bytes = [0x0c, 0xff, 0xff, 0xff, 0xff, b'a'];
        assert!(matches!(decode(&bytes), Err(Error::Malformed { .. })));
    }

    #[test]
    fn unsupported_markers() {
        for m in [0x04, 0x07, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0xff] {
            assert!(
                matches!(decode(&[m, 0, 0]), Err(Error::Unsupported(_))),
                "{m}"
            );
        }
        assert!(matches!(decode(&[0x09]), Err(Error::Malformed { .. })));
    }
}
