//! The on_publish reply: every key besides `code` and `msg` overrides `[protocol]` for that one
//! stream (ZLMediaKit's `ProtocolOption`, parsed from strings, numbers or booleans alike; JSON
//! null and unknown keys are ignored).

use registry::StreamOptions;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// `defaults` (the server's `[protocol]`) with the reply's keys applied, and the reply's
/// `stream_replace` (a new stream id for the stream), if any.
pub fn stream_options(
    reply: &Map<String, Value>,
    defaults: &StreamOptions,
) -> (StreamOptions, Option<String>) {
    let mut o = defaults.clone();
    let flag = |key: &str, into: &mut bool| {
        if let Some(v) = reply.get(key).and_then(as_bool) {
            *into = v;
        }
    };
    flag("enable_rtmp", &mut o.enable_rtmp);
    flag("enable_rtsp", &mut o.enable_rtsp);
    flag("enable_hls", &mut o.enable_hls);
    flag("enable_hls_fmp4", &mut o.enable_hls_fmp4);
    flag("enable_ts", &mut o.enable_ts);
    flag("enable_fmp4", &mut o.enable_fmp4);
    flag("enable_mp4", &mut o.enable_mp4);
    flag("enable_audio", &mut o.enable_audio);
    flag("auto_close", &mut o.auto_close);
    if let Some(path) = reply.get("mp4_save_path").and_then(as_path) {
        o.mp4_save_path = path;
    }
    if let Some(path) = reply.get("hls_save_path").and_then(as_path) {
        o.hls_save_path = path;
    }
    if let Some(secs) = reply.get("mp4_max_second").and_then(as_u64) {
        o.mp4_max_second = Duration::from_secs(secs);
    }
    if let Some(ms) = reply.get("continue_push_ms").and_then(as_u64) {
        o.continue_push = Duration::from_millis(ms);
    }
    if let Some(mode) = reply.get("modify_stamp") {
        if let Some(m) = as_u64(mode).filter(|m| *m <= 2) {
            o.modify_stamp = m as u8;
        } else if let Some(b) = as_bool(mode) {
            o.modify_stamp = u8::from(b);
        }
    }
    let replace = reply
        .get("stream_replace")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    (o, replace)
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        Value::String(s) => match s.trim() {
            "1" | "true" | "True" | "TRUE" => Some(true),
            "0" | "false" | "False" | "FALSE" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_path(v: &Value) -> Option<PathBuf> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reply_overrides_only_what_it_names() {
        let defaults = StreamOptions {
            continue_push: Duration::from_secs(15),
            ..StreamOptions::default()
        };
        let reply = json!({
            "code": 0, "msg": "ok",
            "enable_mp4": true, "enable_rtmp": "0", "enable_audio": 0,
            "mp4_max_second": "600", "continue_push_ms": 2000, "modify_stamp": false,
            "mp4_save_path": "/rec", "hls_save_path": "", "enable_hls": null,
            "stream_replace": "renamed", "unknown_key": 1,
        });
        let Value::Object(reply) = reply else {
            unreachable!()
        };
        let (o, replace) = stream_options(&reply, &defaults);
        assert!(o.enable_mp4 && !o.enable_rtmp && !o.enable_audio && o.enable_hls);
        assert_eq!(o.mp4_max_second, Duration::from_secs(600));
        assert_eq!(o.continue_push, Duration::from_secs(2));
        assert_eq!(o.modify_stamp, 0);
        assert_eq!(o.mp4_save_path, PathBuf::from("/rec"));
        assert_eq!(o.hls_save_path, defaults.hls_save_path);
        assert_eq!(replace.as_deref(), Some("renamed"));
        let (o, replace) = stream_options(&Map::new(), &defaults);
        assert_eq!((o, replace), (defaults, None));
    }
}
