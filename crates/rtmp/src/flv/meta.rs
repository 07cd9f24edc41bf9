//! `onMetaData` (Adobe FLV spec 10.1 §E.5) to and from the codec-neutral [`Metadata`].

use crate::amf0::{self, Value};
use bytes::{Bytes, BytesMut};
use media::{MetaValue, Metadata};

/// The name/value pairs of an `onMetaData` data message body (the AMF0 string `onMetaData`,
/// then an ECMA array or object). Numbers, booleans and strings are kept; nested values are
/// dropped; at most [`Metadata::MAX_ENTRIES`] entries, names and strings cut to
/// [`Metadata::MAX_TEXT`] bytes. `None` when the body is not `onMetaData`.
pub fn decode_metadata(body: &[u8]) -> Option<Metadata> {
    let values = amf0::decode_all(body).ok()?;
    let (name, props) = match values.as_slice() {
        [name, Value::EcmaArray(props) | Value::Object(props), ..] => (name, props),
        _ => return None,
    };
    if name.as_str() != Some("onMetaData") {
        return None;
    }
    let entries = props
        .iter()
        .filter_map(|(k, v)| {
            let v = match v {
                Value::Number(n) => MetaValue::Number(*n),
                Value::Boolean(b) => MetaValue::Bool(*b),
                Value::String(s) | Value::LongString(s) => MetaValue::Text(cut(s)),
                _ => return None,
            };
            Some((cut(k), v))
        })
        .take(Metadata::MAX_ENTRIES)
        .collect();
    Some(Metadata(entries))
}

/// `onMetaData` with `meta`'s entries as an ECMA array: the body of a script data tag or an
/// RTMP data message.
pub fn encode_metadata(meta: &Metadata) -> Bytes {
    let props = meta
        .0
        .iter()
        .map(|(k, v)| {
            let v = match v {
                MetaValue::Number(n) => Value::Number(*n),
                MetaValue::Bool(b) => Value::Boolean(*b),
                MetaValue::Text(s) => Value::string(s.clone()),
            };
            (k.clone(), v)
        })
        .collect();
    let mut out = BytesMut::new();
    amf0::encode(&Value::string("onMetaData"), &mut out);
    amf0::encode(&Value::EcmaArray(props), &mut out);
    out.freeze()
}

/// `s` cut to at most [`Metadata::MAX_TEXT`] bytes, at a character boundary.
fn cut(s: &str) -> String {
    let mut end = s.len().min(Metadata::MAX_TEXT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let meta = Metadata(vec![
            ("width".into(), MetaValue::Number(1280.0)),
            ("stereo".into(), MetaValue::Bool(true)),
            ("encoder".into(), MetaValue::Text("Lavf59.27.100".into())),
        ]);
        assert_eq!(decode_metadata(&encode_metadata(&meta)), Some(meta));
        // A nested value is dropped, a long text cut, extra entries left out.
        let mut props: Vec<(String, Value)> = vec![
            ("nested".into(), Value::object([("a", Value::Null)])),
            ("long".into(), Value::string("é".repeat(Metadata::MAX_TEXT))),
        ];
        for i in 0..100 {
            props.push((format!("k{i}"), Value::Number(f64::from(i))));
        }
        let mut body = BytesMut::new();
        amf0::encode(&Value::string("onMetaData"), &mut body);
        amf0::encode(&Value::Object(props), &mut body);
        let got = decode_metadata(&body).expect("metadata");
        assert_eq!(got.0.len(), Metadata::MAX_ENTRIES);
        assert_eq!(got.0[0].0, "long");
        match got.get("long") {
            Some(MetaValue::Text(t)) => assert!(t.len() <= Metadata::MAX_TEXT),
            other => panic!("{other:?}"),
        }
        let mut other = BytesMut::new();
        amf0::encode(&Value::string("onTextData"), &mut other);
        amf0::encode(&Value::EcmaArray(Vec::new()), &mut other);
        assert_eq!(decode_metadata(&other), None);
        assert_eq!(decode_metadata(b"\xff\x00"), None);
    }
}
