//! The envelope of seed 004 and the payloads the registry's lifecycle events map to.
//!
//! Seed 004's kinds, on a media server (DESIGN.md §1 "Events"):
//!
//! | registry event | envelopes, in order |
//! |---|---|
//! | `Published` | `session` connected, `peer` peer_joined, `stream` stream_published |
//! | `TracksChanged` | `remote_track` remote_track_started per new track, then `local_track` local_track_attached for each viewer already there |
//! | `ViewerJoined` | `session` connected, `peer` peer_joined, `local_track` local_track_attached per track |
//! | `ViewerLeft` | `local_track` local_track_detached per track, `peer` peer_leaved, `session` disconnected |
//! | `Unpublished` | `remote_track` remote_track_ended per track, `stream` stream_unpublished, `peer` peer_leaved, `session` disconnected |
//!
//! A session enters the registry only once it was admitted, so the `session` states sent are
//! `connected` and `disconnected`.

use crate::Kind;
use bytes::Bytes;
use media::{StreamKey, TrackInfo, TrackKind};
use registry::{Event, Registry, SessionInfo};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::Duration;

/// One envelope, serialized once and shared by every provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Its `uuid`.
    pub uuid: String,
    /// Its `event`.
    pub kind: Kind,
    /// The whole envelope as JSON.
    pub json: Bytes,
}

impl Envelope {
    /// `{uuid, node, ts, event, payload}` with a fresh v4 uuid.
    pub fn new(node: u32, ts: u64, kind: Kind, payload: Map<String, Value>) -> Envelope {
        let uuid = uuid_v4();
        let value = json!({
            "uuid": uuid,
            "node": node,
            "ts": ts,
            "event": kind.name(),
            "payload": payload,
        });
        Envelope {
            uuid,
            kind,
            json: Bytes::from(value.to_string()),
        }
    }
}

/// A random (version 4, RFC 9562 §5.4) UUID in its 36-character text form.
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// What the mapper remembers of a live stream.
struct Live {
    publisher: SessionInfo,
    tracks: Vec<TrackInfo>,
    /// The stream's MediaSource JSON as last seen (the `stream_unpublished` payload's `media`:
    /// the stream is gone from the registry by then).
    media: Map<String, Value>,
    /// Viewers now, with the tracks attached to them.
    viewers: HashMap<u64, (SessionInfo, Vec<TrackInfo>)>,
}

/// Turns registry events into `(kind, payload)` pairs, remembering per stream its publisher,
/// tracks and viewers.
#[derive(Default)]
pub(crate) struct Mapper {
    live: HashMap<StreamKey, Live>,
}

type Out = Vec<(Kind, Map<String, Value>)>;

impl Mapper {
    pub(crate) fn map(&mut self, registry: &Registry, event: Event) -> Out {
        let mut out = Out::new();
        match event {
            Event::Published { key, publisher } => {
                let info = registry.stream(&key);
                let tracks = info.as_ref().map(|i| i.tracks.clone()).unwrap_or_default();
                let media = info
                    .as_ref()
                    .map(|i| hooks::stream_json(i, "rtmp"))
                    .unwrap_or_default();
                out.push(session(&publisher, "connected", None));
                out.push(peer(&key, &publisher, "peer_joined"));
                let mut stream = Map::new();
                stream.insert("session".into(), publisher.id.into());
                stream.insert("event".into(), "stream_published".into());
                stream.insert("stream".into(), key.to_string().into());
                stream.insert("media".into(), Value::Object(media.clone()));
                out.push((Kind::Stream, stream));
                for track in &tracks {
                    out.push(remote_track(&publisher, track, "remote_track_started"));
                }
                self.live.insert(
                    key,
                    Live {
                        publisher,
                        tracks,
                        media,
                        viewers: HashMap::new(),
                    },
                );
            }
            Event::TracksChanged { key, tracks } => {
                let Some(live) = self.live.get_mut(&key) else {
                    return out;
                };
                if let Some(info) = registry.stream(&key) {
                    live.media = hooks::stream_json(&info, "rtmp");
                }
                for track in &tracks {
                    if !live.tracks.iter().any(|t| t.codec == track.codec) {
                        out.push(remote_track(&live.publisher, track, "remote_track_started"));
                    }
                }
                live.tracks = tracks;
                for (viewer, attached) in live.viewers.values_mut() {
                    for track in &live.tracks {
                        if !attached.iter().any(|t| t.codec == track.codec) {
                            let index = attached.len();
                            out.push(local_track(
                                viewer,
                                index,
                                track,
                                &live.publisher,
                                "local_track_attached",
                            ));
                            attached.push(track.clone());
                        }
                    }
                }
            }
            Event::ViewerJoined { key, viewer } => {
                out.push(session(&viewer, "connected", None));
                out.push(peer(&key, &viewer, "peer_joined"));
                if let Some(live) = self.live.get_mut(&key) {
                    for (index, track) in live.tracks.iter().enumerate() {
                        out.push(local_track(
                            &viewer,
                            index,
                            track,
                            &live.publisher,
                            "local_track_attached",
                        ));
                    }
                    live.viewers
                        .insert(viewer.id, (viewer.clone(), live.tracks.clone()));
                }
            }
            Event::ViewerLeft {
                key,
                viewer,
                duration,
                ..
            } => {
                if let Some(live) = self.live.get_mut(&key) {
                    if let Some((_, attached)) = live.viewers.remove(&viewer.id) {
                        for (index, track) in attached.iter().enumerate() {
                            out.push(local_track(
                                &viewer,
                                index,
                                track,
                                &live.publisher,
                                "local_track_detached",
                            ));
                        }
                    }
                }
                out.push(peer(&key, &viewer, "peer_leaved"));
                out.push(session(&viewer, "disconnected", Some(duration)));
            }
            Event::Unpublished {
                key,
                publisher,
                bytes,
                duration,
            } => {
                let live = self.live.remove(&key);
                if let Some(live) = &live {
                    for track in &live.tracks {
                        out.push(remote_track(&publisher, track, "remote_track_ended"));
                    }
                }
                let mut stream = Map::new();
                stream.insert("session".into(), publisher.id.into());
                stream.insert("event".into(), "stream_unpublished".into());
                stream.insert("stream".into(), key.to_string().into());
                stream.insert(
                    "media".into(),
                    Value::Object(live.map(|l| l.media).unwrap_or_default()),
                );
                stream.insert("bytes".into(), bytes.into());
                stream.insert("duration".into(), millis(duration).into());
                out.push((Kind::Stream, stream));
                out.push(peer(&key, &publisher, "peer_leaved"));
                out.push(session(&publisher, "disconnected", Some(duration)));
            }
            _ => {}
        }
        out
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Seed 004's session payload.
fn session(s: &SessionInfo, state: &str, duration: Option<Duration>) -> (Kind, Map<String, Value>) {
    let payload = json!({
        "session": s.id,
        "state": state,
        "remote_ip": s.peer.ip().to_canonical().to_string(),
        "after_ms": null,
        "duration": duration.map(millis),
        "reason": null,
        "error": null,
    });
    (Kind::Session, object(payload))
}

/// Seed 004's peer payload: `room` is the stream, `peer` the session's id.
fn peer(key: &StreamKey, s: &SessionInfo, event: &str) -> (Kind, Map<String, Value>) {
    let payload = json!({
        "session": s.id,
        "peer": s.id.to_string(),
        "room": key.to_string(),
        "event": event,
    });
    (Kind::Peer, object(payload))
}

fn kind_number(track: &TrackInfo) -> u32 {
    match track.kind() {
        TrackKind::Video => 0,
        TrackKind::Audio => 1,
    }
}

/// Seed 004's remote track payload: `track` is the codec's name, `kind` 0 video / 1 audio.
fn remote_track(
    publisher: &SessionInfo,
    track: &TrackInfo,
    event: &str,
) -> (Kind, Map<String, Value>) {
    let payload = json!({
        "session": publisher.id,
        "track": track.codec.zlm_name(),
        "kind": kind_number(track),
        "event": event,
    });
    (Kind::RemoteTrack, object(payload))
}

/// Seed 004's local track payload: `track` is the viewer's track index, `remote_peer` the
/// publisher's session id and `remote_track` its track's codec name.
fn local_track(
    viewer: &SessionInfo,
    index: usize,
    track: &TrackInfo,
    publisher: &SessionInfo,
    event: &str,
) -> (Kind, Map<String, Value>) {
    let payload = json!({
        "session": viewer.id,
        "track": index,
        "event": event,
        "kind": kind_number(track),
        "remote_peer": publisher.id.to_string(),
        "remote_track": track.codec.zlm_name(),
    });
    (Kind::LocalTrack, object(payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::Codec;
    use registry::Protocol;

    fn info(id: u64, protocol: Protocol) -> SessionInfo {
        SessionInfo {
            id,
            protocol,
            peer: "127.0.0.1:5000".parse().expect("addr"),
            local: "127.0.0.1:1935".parse().expect("addr"),
            params: String::new(),
        }
    }

    #[test]
    fn uuid_is_version_4_text() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
        assert!(matches!(u.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        assert_eq!(u.matches('-').count(), 4);
        assert_ne!(uuid_v4(), u);
    }

    #[test]
    fn envelope_has_the_seed_fields() {
        let e = Envelope::new(7, 1234, Kind::Peer, Map::new());
        let v: Value = serde_json::from_slice(&e.json).expect("json");
        assert_eq!(v["uuid"], e.uuid.as_str());
        assert_eq!(v["node"], 7);
        assert_eq!(v["ts"], 1234);
        assert_eq!(v["event"], "peer");
        assert!(v["payload"].is_object());
    }

    #[tokio::test]
    async fn a_publish_and_a_view_map_to_the_seed_kinds_in_order() {
        let registry = Registry::default();
        let mut mapper = Mapper::default();
        let mut events = registry.events();
        let key = StreamKey::new("live", "a").expect("key");
        let guard = registry
            .publish(key.clone(), info(1, Protocol::Rtmp))
            .expect("publish");
        guard.set_track(TrackInfo::new(
            Codec::Aac,
            Bytes::from_static(&[0x12, 0x10]),
        ));
        let viewer = registry.join(&key, info(2, Protocol::Rtmp)).expect("join");
        drop(viewer);
        drop(guard);
        let mut seen = Vec::new();
        while let Ok(event) = events.try_recv() {
            for (kind, payload) in mapper.map(&registry, event) {
                let what = payload
                    .get("event")
                    .or_else(|| payload.get("state"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                seen.push(format!("{}:{what}", kind.name()));
            }
        }
        assert_eq!(
            seen,
            [
                "session:connected",
                "peer:peer_joined",
                "stream:stream_published",
                "remote_track:remote_track_started",
                "session:connected",
                "peer:peer_joined",
                "local_track:local_track_attached",
                "local_track:local_track_detached",
                "peer:peer_leaved",
                "session:disconnected",
                "remote_track:remote_track_ended",
                "stream:stream_unpublished",
                "peer:peer_leaved",
                "session:disconnected",
            ]
        );
    }
}
