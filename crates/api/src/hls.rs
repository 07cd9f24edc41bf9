//! HLS (RFC 8216) with MPEG-TS segments at `/{app}/{stream}/hls.m3u8`, and LL-HLS
//! (draft-pantos-hls-rfc8216bis) with fMP4 parts at `/{app}/{stream}/hls.fmp4.m3u8`.
//!
//! Each stream's HLS is muxed once by its [`outputs::HlsStream`], started by the first playlist
//! request and stopped when the stream ends or a minute after the last request; this module is
//! the HTTP side: paths, viewers, their on_play decisions and the answers.
//!
//! Viewers: the first playlist request of a viewer goes through on_play (and waits for the
//! stream like any player); the decision is remembered for 60 s after the viewer's last
//! request under an id carried both as a cookie and as `fs_hls=` on every URI of the playlists
//! it gets (players that drop cookies, like ffmpeg's, still carry it). A remembered viewer is
//! counted in the stream's readers, and its bytes are reported by on_flow_report when it has
//! been gone for 60 s.
//!
//! LL-HLS: parts of `hls.partDurMS` (200 ms), EXT-X-PRELOAD-HINT for the next part (its
//! request is answered the moment the part's first chunk exists, and the part's bytes follow,
//! chunked, as they are produced) and blocking playlist reload with `_HLS_msn` and `_HLS_part`
//! (answered as soon as that part exists; 400 when it asks too far ahead). Held requests are
//! bounded per stream ([`outputs::MAX_WAITERS`], then 503) and in time.

use crate::AppState;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use media::StreamKey;
use outputs::{HlsKind, PartAnswer, PlaylistError};
use registry::Protocol;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// How long a viewer is remembered after its last request until [`HlsViewers::set_idle`].
const IDLE: Duration = Duration::from_secs(60);
/// The id parameter added to every URI of a playlist.
const ID_PARAM: &str = "fs_hls";
const COOKIE: &str = "FERROSTREAM_HLS";
/// Viewers remembered at most (a flood of new ids cannot grow memory without bound).
const MAX_VIEWERS: usize = 100_000;

fn protocol(kind: HlsKind) -> Protocol {
    match kind {
        HlsKind::Ts => Protocol::Hls,
        HlsKind::Fmp4 => Protocol::HlsFmp4,
    }
}

/// Every HLS viewer.
#[derive(Default)]
pub(crate) struct HlsViewers {
    viewers: Mutex<HashMap<String, Viewer>>,
    janitor: std::sync::OnceLock<()>,
    idle: Mutex<Option<Duration>>,
}

struct Viewer {
    key: StreamKey,
    kind: HlsKind,
    /// Counts the viewer in the registry; dropping it reports the bytes (on_flow_report).
    viewer: registry::Viewer,
    last: Instant,
}

/// What a request names.
enum Resource {
    Playlist,
    Init,
    Segment(u64),
    Part(u64, u64),
}

fn parse(path: &str) -> Option<(&str, HlsKind, Resource)> {
    if let Some(stem) = path.strip_suffix("/hls.m3u8") {
        return Some((stem, HlsKind::Ts, Resource::Playlist));
    }
    if let Some(stem) = path.strip_suffix("/hls.fmp4.m3u8") {
        return Some((stem, HlsKind::Fmp4, Resource::Playlist));
    }
    let (stem, name) = path.rsplit_once('/')?;
    let name = name.strip_prefix("hls_")?;
    if name == "init.mp4" {
        return Some((stem, HlsKind::Fmp4, Resource::Init));
    }
    if let Some(msn) = name.strip_suffix(".ts") {
        return Some((stem, HlsKind::Ts, Resource::Segment(msn.parse().ok()?)));
    }
    let name = name.strip_suffix(".m4s")?;
    match name.split_once('.') {
        Some((msn, part)) => Some((
            stem,
            HlsKind::Fmp4,
            Resource::Part(msn.parse().ok()?, part.parse().ok()?),
        )),
        None => Some((stem, HlsKind::Fmp4, Resource::Segment(name.parse().ok()?))),
    }
}

/// `key=value` pairs of a query, except HLS's and ours.
fn viewer_params(query: &str) -> String {
    query
        .split('&')
        .filter(|kv| {
            let k = kv.split('=').next().unwrap_or("");
            !kv.is_empty() && k != ID_PARAM && !k.starts_with("_HLS_")
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    crate::tokens::cookie(headers, COOKIE)
}

/// Serves an HLS path, or `None` when `path` is not one.
pub(crate) async fn serve(
    state: &AppState,
    peer: SocketAddr,
    path: &str,
    query: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    let (stem, kind, resource) = parse(path)?;
    let params = viewer_params(query);
    let key = match crate::stream_key(state, stem, &params, headers) {
        Ok(key) => key,
        Err(e) => return Some(crate::bad_name(&e)),
    };
    let outputs = &state.hls;
    outputs.start_janitor();
    // The viewer: our id on the URI, else our cookie, else (as ZLMediaKit) its query string
    // from its address, for players that keep neither across playlist reloads.
    let query_uid = (!params.is_empty()).then(|| format!("q:{}:{params}", peer.ip()));
    let id = param(query, ID_PARAM)
        .map(str::to_owned)
        .or_else(|| cookie(headers))
        .or_else(|| query_uid.clone());
    let idle = state.options.hls_idle;
    outputs.set_idle(idle);
    let known = id
        .as_deref()
        .is_some_and(|id| outputs.touch(id, &key, kind))
        || query_uid
            .as_deref()
            .is_some_and(|uid| outputs.touch(uid, &key, kind));
    let id = if known {
        match id {
            Some(id) if outputs.touch(&id, &key, kind) => id,
            _ => query_uid.unwrap_or_default(),
        }
    } else {
        // A new viewer (or one gone for over a minute): on_play, then wait for the stream.
        match crate::viewing::admit(state, &key, protocol(kind), peer, params.clone()).await {
            Ok((viewer, _span)) => outputs.add_viewer(key.clone(), kind, viewer, query_uid),
            Err(resp) => return Some(resp),
        }
    };
    let Some(stream) = state.outputs.hls(&key, kind).await else {
        return Some((StatusCode::NOT_FOUND, "stream not found").into_response());
    };
    stream.touch();
    let resp = match resource {
        Resource::Playlist => Some(playlist(&stream, query, &id).await),
        Resource::Init => stream.init().map(|b| media_response(b, "video/mp4")),
        Resource::Segment(msn) => stream
            .segment(msn)
            .await
            .map(|b| media_response(b, segment_type(kind))),
        Resource::Part(msn, part) => match stream.part(msn, part).await {
            PartAnswer::Whole(b) => Some(media_response(b, "video/mp4")),
            PartAnswer::Streamed(part) => Some(streamed_part(part, Arc::clone(outputs), &id)),
            PartAnswer::Missing => None,
            PartAnswer::Busy => Some(busy()),
        },
    };
    let mut resp = match resp {
        Some(resp) => resp,
        None => (StatusCode::NOT_FOUND, "no such segment").into_response(),
    };
    if let Some(len) = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        outputs.add_bytes(&id, len);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/; Max-Age={}",
        idle.as_secs().max(1)
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Some(resp)
}

/// A part being produced: its chunks as they come (chunked transfer encoding), each counted
/// in the viewer's bytes; cut short (the connection aborted) if the part is not completed.
fn streamed_part(part: outputs::PartStream, viewers: Arc<HlsViewers>, id: &str) -> Response {
    let id = id.to_owned();
    let body = futures_util::stream::unfold(Some(part), move |part| {
        let viewers = Arc::clone(&viewers);
        let id = id.clone();
        async move {
            let mut part = part?;
            match part.next().await? {
                Ok(bytes) => {
                    viewers.add_bytes(&id, bytes.len() as u64);
                    Some((Ok(bytes), Some(part)))
                }
                Err(e) => Some((Err(std::io::Error::other(e)), None)),
            }
        }
    });
    let mut resp = axum::body::Body::from_stream(body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    resp
}

/// 503 for a request that would be held when too many are (`outputs::MAX_WAITERS`).
fn busy() -> Response {
    let mut resp = (StatusCode::SERVICE_UNAVAILABLE, "too many requests waiting").into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

fn segment_type(kind: HlsKind) -> &'static str {
    match kind {
        HlsKind::Ts => "video/mp2t",
        HlsKind::Fmp4 => "video/mp4",
    }
}

fn media_response(bytes: Bytes, content_type: &'static str) -> Response {
    let len = bytes.len();
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    resp
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the data consistent; a poisoned lock is safe to reuse.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HlsViewers {
    /// Starts the task that every second forgets idle viewers (their registry viewers end,
    /// reporting their bytes). The streams' HLS have their own janitor in `outputs`.
    fn start_janitor(self: &Arc<Self>) {
        self.janitor.get_or_init(|| {
            let weak = Arc::downgrade(self);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    match weak.upgrade() {
                        Some(outputs) => outputs.sweep(),
                        None => return,
                    }
                }
            });
        });
    }

    fn set_idle(&self, idle: Duration) {
        *lock(&self.idle) = Some(idle);
    }

    fn idle(&self) -> Duration {
        lock(&self.idle).unwrap_or(IDLE)
    }

    fn touch(&self, id: &str, key: &StreamKey, kind: HlsKind) -> bool {
        let idle = self.idle();
        let mut viewers = lock(&self.viewers);
        let now = Instant::now();
        match viewers.get_mut(id) {
            Some(v) if &v.key == key && v.kind == kind && now.duration_since(v.last) < idle => {
                v.last = now;
                true
            }
            _ => false,
        }
    }

    /// Remembers an admitted viewer under `uid` (its query string) or a new random id.
    fn add_viewer(
        &self,
        key: StreamKey,
        kind: HlsKind,
        viewer: registry::Viewer,
        uid: Option<String>,
    ) -> String {
        let id = uid.unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
        let mut viewers = lock(&self.viewers);
        if viewers.len() >= MAX_VIEWERS {
            let now = Instant::now();
            let idle = self.idle();
            viewers.retain(|_, v| now.duration_since(v.last) < idle);
        }
        if viewers.len() < MAX_VIEWERS {
            viewers.insert(
                id.clone(),
                Viewer {
                    key,
                    kind,
                    viewer,
                    last: Instant::now(),
                },
            );
        }
        id
    }

    fn add_bytes(&self, id: &str, n: u64) {
        if let Some(v) = lock(&self.viewers).get(id) {
            v.viewer.add_bytes(n);
        }
    }

    /// Drops the viewers idle for [`HlsViewers::idle`].
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        let idle = self.idle();
        let gone: Vec<Viewer> = {
            let mut viewers = lock(&self.viewers);
            let ids: Vec<String> = viewers
                .iter()
                .filter(|(_, v)| now.duration_since(v.last) >= idle)
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| viewers.remove(id)).collect()
        };
        drop(gone); // each reports its bytes as it leaves
    }
}

/// The playlist answer: the stream's playlist once it can be served (a whole segment first;
/// a blocking reload once its segment or part exists), with the viewer's id on every URI.
async fn playlist(stream: &outputs::HlsStream, query: &str, id: &str) -> Response {
    let msn = param(query, "_HLS_msn").and_then(|m| m.parse::<u64>().ok());
    let part = param(query, "_HLS_part").and_then(|p| p.parse::<u64>().ok());
    let text = match stream.playlist(msn, part).await {
        Ok(text) => text,
        Err(e @ PlaylistError::NotReady) => {
            return (StatusCode::NOT_FOUND, e.to_string()).into_response()
        }
        Err(e @ PlaylistError::TooFarAhead) => {
            return (StatusCode::BAD_REQUEST, e.to_string()).into_response()
        }
        Err(PlaylistError::Busy) => return busy(),
    };
    let mut resp = with_id(&text, id).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.apple.mpegurl"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The playlist with `fs_hls=<id>` on every URI, so the viewer's segment requests carry it.
fn with_id(text: &str, id: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        if line.is_empty() {
            out.push('\n');
            continue;
        }
        if !line.starts_with('#') {
            out.push_str(&format!("{line}?{ID_PARAM}={id}\n"));
        } else if let Some(start) = line.find("URI=\"") {
            let value_start = start + 5;
            match line[value_start..].find('"') {
                Some(end) => {
                    let end = value_start + end;
                    out.push_str(&line[..end]);
                    out.push_str(&format!("?{ID_PARAM}={id}"));
                    out.push_str(&line[end..]);
                    out.push('\n');
                }
                None => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert!(matches!(
            parse("/live/a/hls.m3u8"),
            Some(("/live/a", HlsKind::Ts, Resource::Playlist))
        ));
        assert!(matches!(
            parse("/live/a/hls.fmp4.m3u8"),
            Some(("/live/a", HlsKind::Fmp4, Resource::Playlist))
        ));
        assert!(matches!(
            parse("/live/a/b/hls_7.ts"),
            Some(("/live/a/b", HlsKind::Ts, Resource::Segment(7)))
        ));
        assert!(matches!(
            parse("/live/a/hls_7.m4s"),
            Some((_, HlsKind::Fmp4, Resource::Segment(7)))
        ));
        assert!(matches!(
            parse("/live/a/hls_7.2.m4s"),
            Some((_, HlsKind::Fmp4, Resource::Part(7, 2)))
        ));
        assert!(matches!(
            parse("/live/a/hls_init.mp4"),
            Some((_, HlsKind::Fmp4, Resource::Init))
        ));
        assert!(parse("/live/a/index.html").is_none());
        assert!(parse("/live/a/hls_x.ts").is_none());
    }

    #[test]
    fn ids_go_on_every_uri() {
        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"hls_init.mp4\"\n#EXT-X-PART:DURATION=0.333,URI=\"hls_1.0.m4s\"\n#EXTINF:2.000,\nhls_1.m4s\n";
        let out = with_id(text, "abc");
        assert!(out.contains("URI=\"hls_init.mp4?fs_hls=abc\""), "{out}");
        assert!(out.contains("URI=\"hls_1.0.m4s?fs_hls=abc\""), "{out}");
        assert!(out.contains("\nhls_1.m4s?fs_hls=abc\n"), "{out}");
        assert_eq!(viewer_params("token=1&_HLS_msn=3&fs_hls=x"), "token=1");
    }
}
