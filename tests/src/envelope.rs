//! Checks of seed 004's envelopes as a consumer sees them: every field and its type, and the
//! sequence a publish and a play give.

use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn is_uint(v: &Value) -> bool {
    v.as_u64().is_some()
}

fn uint_or_null(v: &Value) -> bool {
    v.is_null() || is_uint(v)
}

fn str_or_null(v: &Value) -> bool {
    v.is_null() || v.is_string()
}

fn one_of(v: &Value, names: &[&str]) -> bool {
    v.as_str().is_some_and(|s| names.contains(&s))
}

/// Panics unless `env` is an envelope of node `node` with the seed's fields and types.
pub fn check(env: &Value, node: u32) {
    assert_eq!(
        keys(env),
        set(&["uuid", "node", "ts", "event", "payload"]),
        "{env}"
    );
    let uuid = env["uuid"].as_str().expect("uuid is a string");
    assert_eq!(uuid.len(), 36, "{uuid}");
    assert_eq!(&uuid[14..15], "4", "a v4 uuid: {uuid}");
    assert!(uuid
        .chars()
        .enumerate()
        .all(|(i, c)| if [8, 13, 18, 23].contains(&i) {
            c == '-'
        } else {
            c.is_ascii_hexdigit()
        }));
    assert_eq!(env["node"].as_u64(), Some(u64::from(node)), "{env}");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let ts = env["ts"].as_u64().expect("ts is a number");
    assert!(
        ts <= now && now - ts < 600_000,
        "ts {ts} is unix ms of the last minutes"
    );
    let p = &env["payload"];
    match env["event"].as_str().expect("event is a string") {
        "session" => {
            assert_eq!(
                keys(p),
                set(&[
                    "session",
                    "state",
                    "remote_ip",
                    "after_ms",
                    "duration",
                    "reason",
                    "error"
                ]),
                "{env}"
            );
            assert!(is_uint(&p["session"]), "{env}");
            assert!(
                one_of(
                    &p["state"],
                    &[
                        "connecting",
                        "connected",
                        "reconnect",
                        "disconnected",
                        "reconnected",
                        "connect_error"
                    ]
                ),
                "{env}"
            );
            assert!(str_or_null(&p["remote_ip"]), "{env}");
            for k in ["after_ms", "duration", "reason", "error"] {
                assert!(uint_or_null(&p[k]), "{env}");
            }
            if p["state"] == "disconnected" {
                assert!(
                    is_uint(&p["duration"]),
                    "a disconnect has its duration: {env}"
                );
            }
        }
        "peer" => {
            assert_eq!(keys(p), set(&["session", "peer", "room", "event"]), "{env}");
            assert!(is_uint(&p["session"]), "{env}");
            assert_eq!(
                p["peer"].as_str(),
                Some(p["session"].to_string().as_str()),
                "{env}"
            );
            assert!(p["room"].is_string(), "{env}");
            assert!(
                one_of(&p["event"], &["peer_joined", "peer_leaved"]),
                "{env}"
            );
        }
        "remote_track" => {
            assert_eq!(
                keys(p),
                set(&["session", "track", "kind", "event"]),
                "{env}"
            );
            assert!(is_uint(&p["session"]), "{env}");
            assert!(p["track"].is_string(), "{env}");
            assert!(matches!(p["kind"].as_u64(), Some(0 | 1)), "{env}");
            assert!(
                one_of(&p["event"], &["remote_track_started", "remote_track_ended"]),
                "{env}"
            );
        }
        "local_track" => {
            assert_eq!(
                keys(p),
                set(&[
                    "session",
                    "track",
                    "event",
                    "kind",
                    "remote_peer",
                    "remote_track"
                ]),
                "{env}"
            );
            assert!(is_uint(&p["session"]) && is_uint(&p["track"]), "{env}");
            assert!(
                one_of(
                    &p["event"],
                    &[
                        "local_track",
                        "local_track_attached",
                        "local_track_detached"
                    ]
                ),
                "{env}"
            );
            assert!(uint_or_null(&p["kind"]), "{env}");
            assert!(
                str_or_null(&p["remote_peer"]) && str_or_null(&p["remote_track"]),
                "{env}"
            );
        }
        "stream" => {
            let unpublished = p["event"] == "stream_unpublished";
            let mut want = vec!["session", "event", "stream", "media"];
            if unpublished {
                want.extend(["bytes", "duration"]);
            }
            assert_eq!(keys(p), set(&want), "{env}");
            assert!(
                one_of(&p["event"], &["stream_published", "stream_unpublished"]),
                "{env}"
            );
            assert!(is_uint(&p["session"]), "{env}");
            assert!(p["stream"].is_string() && p["media"].is_object(), "{env}");
            for k in [
                "vhost",
                "app",
                "stream",
                "originType",
                "originTypeStr",
                "tracks",
            ] {
                assert!(!p["media"][k].is_null(), "media has {k}: {env}");
            }
            if unpublished {
                assert!(is_uint(&p["bytes"]) && is_uint(&p["duration"]), "{env}");
            }
        }
        "record" | "turn" => assert!(p.is_object(), "{env}"),
        other => panic!("unknown event {other}: {env}"),
    }
}

/// `kind:event` (or `session:state`) of each envelope of session `session`, in order.
pub fn sequence(envs: &[Value], session: u64) -> Vec<String> {
    envs.iter()
        .filter(|e| e["payload"]["session"].as_u64() == Some(session))
        .map(|e| {
            let p = &e["payload"];
            let what = p["event"].as_str().or(p["state"].as_str()).unwrap_or("?");
            format!("{}:{what}", e["event"].as_str().unwrap_or("?"))
        })
        .collect()
}

/// Checks what a publish of `room` (H.264 + AAC) and one play of it until the publisher left
/// give: the publisher's and the viewer's whole sequences, the tracks and their links.
pub fn check_publish_and_play(envs: &[Value], room: &str) {
    let published = envs
        .iter()
        .find(|e| e["event"] == "stream" && e["payload"]["event"] == "stream_published")
        .expect("a stream_published envelope");
    assert_eq!(published["payload"]["stream"], room);
    let publisher = envs
        .iter()
        .find(|e| e["event"] == "peer" && e["payload"]["room"] == room)
        .and_then(|e| e["payload"]["session"].as_u64())
        .expect("the publisher's peer_joined");
    assert_eq!(
        sequence(envs, publisher),
        [
            "session:connected",
            "peer:peer_joined",
            "stream:stream_published",
            "remote_track:remote_track_started",
            "remote_track:remote_track_started",
            "remote_track:remote_track_ended",
            "remote_track:remote_track_ended",
            "stream:stream_unpublished",
            "peer:peer_leaved",
            "session:disconnected",
        ]
    );
    let mut tracks: Vec<(String, u64)> = envs
        .iter()
        .filter(|e| e["event"] == "remote_track" && e["payload"]["event"] == "remote_track_started")
        .map(|e| {
            let p = &e["payload"];
            (
                p["track"].as_str().unwrap_or("").to_owned(),
                p["kind"].as_u64().unwrap_or(9),
            )
        })
        .collect();
    tracks.sort();
    assert_eq!(
        tracks,
        [("H264".to_owned(), 0), ("mpeg4-generic".to_owned(), 1)]
    );
    let viewer = envs
        .iter()
        .find(|e| {
            e["event"] == "peer"
                && e["payload"]["room"] == room
                && e["payload"]["session"].as_u64() != Some(publisher)
        })
        .and_then(|e| e["payload"]["session"].as_u64())
        .expect("the viewer's peer_joined");
    assert_eq!(
        sequence(envs, viewer),
        [
            "session:connected",
            "peer:peer_joined",
            "local_track:local_track_attached",
            "local_track:local_track_attached",
            "local_track:local_track_detached",
            "local_track:local_track_detached",
            "peer:peer_leaved",
            "session:disconnected",
        ]
    );
    for e in envs.iter().filter(|e| e["event"] == "local_track") {
        let p = &e["payload"];
        assert_eq!(
            p["remote_peer"].as_str(),
            Some(publisher.to_string().as_str()),
            "{e}"
        );
        assert!(
            one_of(&p["remote_track"], &["H264", "mpeg4-generic"]),
            "{e}"
        );
        let kind = if p["remote_track"] == "H264" { 0 } else { 1 };
        assert_eq!(p["kind"].as_u64(), Some(kind), "{e}");
    }
    for e in envs.iter().filter(|e| e["event"] == "session") {
        assert_eq!(e["payload"]["remote_ip"], "127.0.0.1", "{e}");
    }
}
