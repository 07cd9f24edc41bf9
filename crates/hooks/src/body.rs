//! Request bodies, field for field as seed 002 and bodies captured from ZLMediaKit have them.

use media::{StreamKey, TrackKind};
use registry::{Protocol, SessionInfo, StreamInfo};
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::time::UNIX_EPOCH;

/// Who asks for what: the part of a body ZLMediaKit calls `make_json(MediaInfo)` plus the
/// session (`ip`, `port`, `id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The session's protocol.
    pub protocol: Protocol,
    /// The stream asked for.
    pub key: StreamKey,
    /// The raw query string (`params`).
    pub params: String,
    /// The client.
    pub peer: SocketAddr,
    /// The session id (`id`, sent as a string as ZLMediaKit does).
    pub id: u64,
}

impl Request {
    /// The request of `session` for `key`.
    pub fn new(key: StreamKey, session: &SessionInfo) -> Self {
        Request {
            protocol: session.protocol,
            key,
            params: session.params.clone(),
            peer: session.peer,
            id: session.id,
        }
    }

    /// `schema, protocol, vhost, app, stream, params, ip, port, id`.
    pub(crate) fn json(&self) -> Map<String, Value> {
        let mut body = media_json(self.protocol.schema(), &self.key, &self.params);
        body.insert("protocol".into(), self.protocol.name().into());
        body.insert(
            "ip".into(),
            self.peer.ip().to_canonical().to_string().into(),
        );
        body.insert("port".into(), self.peer.port().into());
        body.insert("id".into(), self.id.to_string().into());
        body
    }
}

/// `schema, vhost, app, stream, params`.
pub(crate) fn media_json(schema: &str, key: &StreamKey, params: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("schema".into(), schema.into());
    body.insert("vhost".into(), key.vhost().into());
    body.insert("app".into(), key.app().into());
    body.insert("stream".into(), key.stream().into());
    body.insert("params".into(), params.into());
    body
}

/// What on_rtp_server_timeout reports: the arguments openRtpServer was called with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpServerTimeout {
    /// The port the server was bound on (`local_port`).
    pub local_port: u16,
    /// The stream the server fed (`vhost`, `app`, `stream_id`).
    pub key: StreamKey,
    /// 0 UDP, 1 TCP passive, 2 TCP active.
    pub tcp_mode: u8,
    /// The `re_use_port` argument.
    pub re_use_port: bool,
    /// The `ssrc` argument (0 = any).
    pub ssrc: u32,
}

/// The on_rtp_server_timeout body: ZLMediaKit's `local_port, vhost, app, stream_id, tcp_mode,
/// re_use_port, ssrc` (numbers and a boolean, as its JSON has them).
pub fn rtp_server_timeout_json(ev: &RtpServerTimeout) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("local_port".into(), ev.local_port.into());
    body.insert("vhost".into(), ev.key.vhost().into());
    body.insert("app".into(), ev.key.app().into());
    body.insert("stream_id".into(), ev.key.stream().into());
    body.insert("tcp_mode".into(), ev.tcp_mode.into());
    body.insert("re_use_port".into(), ev.re_use_port.into());
    body.insert("ssrc".into(), ev.ssrc.into());
    body
}

/// ZLMediaKit's `originType` and `originTypeStr` of a stream published over `protocol`.
pub fn origin_type(protocol: Protocol) -> (u32, &'static str) {
    match protocol {
        Protocol::Rtmp => (1, "rtmp_push"),
        Protocol::Rtsp => (2, "rtsp_push"),
        Protocol::Rtp => (3, "rtp_push"),
        Protocol::Pull => (4, "pull"),
        Protocol::Rtc => (8, "rtc_push"),
        _ => (0, "unknown"),
    }
}

/// The on_record_mp4 body for a finished recording (ZLMediaKit's `makeRecordMp4Info` fields).
pub fn record_json(file: &outputs::RecordedFile) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("start_time".into(), file.start_time.into());
    body.insert("file_size".into(), file.file_size.into());
    body.insert("time_len".into(), file.time_len.into());
    body.insert("file_path".into(), file.file_path.as_str().into());
    body.insert("file_name".into(), file.file_name.as_str().into());
    body.insert("folder".into(), file.folder.as_str().into());
    body.insert("url".into(), file.url.as_str().into());
    body.insert("vhost".into(), file.key.vhost().into());
    body.insert("app".into(), file.key.app().into());
    body.insert("stream".into(), file.key.stream().into());
    body.insert("params".into(), file.params.as_str().into());
    body
}

/// The description of a live stream as on_stream_changed (`regist: true`) and the API send it:
/// ZLMediaKit's `makeMediaSourceJson` for one output `schema`.
pub fn stream_json(info: &StreamInfo, schema: &str) -> Map<String, Value> {
    let key = &info.key;
    let publisher = &info.publisher;
    let mut body = media_json(schema, key, &publisher.params);
    let (origin, origin_str) = origin_type(publisher.protocol);
    let alive = info.alive.as_secs();
    let origin_url = match &info.origin_url {
        Some(url) => url.clone(),
        None => {
            let mut url = format!(
                "{}://{}/{}/{}",
                publisher.protocol.schema(),
                key.vhost(),
                key.app(),
                key.stream()
            );
            if !publisher.params.is_empty() {
                url.push('?');
                url.push_str(&publisher.params);
            }
            url
        }
    };
    let tracks: Vec<Value> = info
        .tracks
        .iter()
        .zip(&info.stats)
        .map(|(track, stats)| {
            let t = track;
            let mut obj = json!({
                "codec_id": t.codec.zlm_id(),
                "codec_id_name": t.codec.zlm_name(),
                "codec_type": if t.kind() == TrackKind::Video { 0 } else { 1 },
                "ready": true,
                "frames": stats.frames,
                "duration": stats.duration_ms(),
                "loss": -1.0,
            });
            if let Value::Object(map) = &mut obj {
                match t.kind() {
                    TrackKind::Video => {
                        map.insert("width".into(), t.width.into());
                        map.insert("height".into(), t.height.into());
                        map.insert("fps".into(), round2(stats.fps()).into());
                        map.insert("key_frames".into(), stats.key_frames.into());
                        map.insert("gop_size".into(), stats.gop_size.into());
                        map.insert("gop_interval_ms".into(), stats.gop_interval_ms.into());
                    }
                    TrackKind::Audio => {
                        map.insert("sample_rate".into(), t.sample_rate.into());
                        map.insert("channels".into(), t.channels.into());
                        map.insert("sample_bit".into(), 16.into());
                    }
                }
            }
            obj
        })
        .collect();
    let created = info
        .created
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let bytes_speed = info.bytes_in.checked_div(alive).unwrap_or(0);
    let extra = json!({
        "createStamp": created,
        "aliveSecond": alive,
        "bytesSpeed": bytes_speed,
        "totalBytes": info.bytes_in,
        "readerCount": info.readers,
        "totalReaderCount": info.total_readers,
        "originType": origin,
        "originTypeStr": origin_str,
        "originUrl": origin_url,
        "originSock": {
            "identifier": publisher.id.to_string(),
            "local_ip": publisher.local.ip().to_canonical().to_string(),
            "local_port": publisher.local.port(),
            "peer_ip": publisher.peer.ip().to_canonical().to_string(),
            "peer_port": publisher.peer.port(),
        },
        // A stream with `enable_mp4` is recorded from publish on; HLS files are written only
        // for keep-all playlists a viewer started, which this description does not track.
        "isRecordingMP4": info.options.enable_mp4,
        "isRecordingHLS": false,
        "tracks": tracks,
    });
    if let Value::Object(extra) = extra {
        body.extend(extra);
    }
    body
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The object counts on_server_keepalive and getStatistic report: `MediaSource` (one per
/// stream and output schema, as on_stream_changed counts them), `MultiMediaSourceMuxer` (one
/// per stream), and ours: `readers` (viewers now) and `hooksDropped` (hook calls dropped
/// from the bounded queue).
pub fn statistic_json(streams: &[StreamInfo], schemas: &[&str], hooks_dropped: u64) -> Value {
    let outputs: usize = streams
        .iter()
        .map(|s| s.options.schemas(schemas).len())
        .sum();
    let readers: usize = streams.iter().map(|s| s.readers).sum();
    json!({
        "MediaSource": outputs,
        "MultiMediaSourceMuxer": streams.len(),
        "readers": readers,
        "hooksDropped": hooks_dropped,
    })
}
