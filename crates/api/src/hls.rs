//! HLS (RFC 8216) with MPEG-TS segments at `/{app}/{stream}/hls.m3u8`, and LL-HLS
//! (draft-pantos-hls-rfc8216bis) with fMP4 parts at `/{app}/{stream}/hls.fmp4.m3u8`.
//!
//! Each stream's HLS is muxed once, by a task that starts with the first playlist request
//! (from the registry's GOP cache, so the first segment is complete one segment duration
//! later) and stops when the stream ends or a minute after the last request. Segments and
//! parts live in memory, only those the playlist lists (plus `hls.segRetain`).
//!
//! Viewers: the first playlist request of a viewer goes through on_play (and waits for the
//! stream like any player); the decision is remembered for 60 s after the viewer's last
//! request under an id carried both as a cookie and as `fs_hls=` on every URI of the playlists
//! it gets (players that drop cookies, like ffmpeg's, still carry it). A remembered viewer is
//! counted in the stream's readers, and its bytes are reported by on_flow_report when it has
//! been gone for 60 s.
//!
//! LL-HLS: parts of about a sixth of the segment duration, EXT-X-PRELOAD-HINT for the next part
//! (its request is held until the part exists) and blocking playlist reload with `_HLS_msn`
//! and `_HLS_part`.

use crate::AppState;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use hls::{Playlist, PlaylistConfig, TsMuxer};
use media::{StreamKey, TrackKind};
use mp4::Fmp4Muxer;
use registry::{Item, Protocol, Registry, SessionInfo, Subscription};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The default of [`HlsOptions::idle`].
const IDLE: Duration = Duration::from_secs(60);
/// The id parameter added to every URI of a playlist.
const ID_PARAM: &str = "fs_hls";
const COOKIE: &str = "FERROSTREAM_HLS";
/// How long a first playlist request waits for the first segment (or part).
const FIRST_SEGMENT_WAIT: Duration = Duration::from_secs(20);
/// Viewers remembered at most (a flood of new ids cannot grow memory without bound).
const MAX_VIEWERS: usize = 100_000;

/// HLS settings (`[hls]`), built from a [`config::Config`].
#[derive(Debug, Clone)]
pub struct HlsOptions {
    /// `hls.segDur`: target segment duration.
    pub segment: Duration,
    /// `hls.segNum`: segments listed.
    pub window: usize,
    /// `hls.segRetain`: segments kept after they leave the playlist.
    pub retain: usize,
    /// A viewer (and a stream's HLS) is forgotten this long after its last request; its
    /// on_play decision is reused until then (ZLMediaKit: 60 s). Not a config key.
    /// Default: 60 s.
    pub idle: Duration,
}

impl Default for HlsOptions {
    /// The config table's defaults.
    fn default() -> Self {
        HlsOptions::from(&config::Config::default())
    }
}

impl From<&config::Config> for HlsOptions {
    fn from(config: &config::Config) -> Self {
        let to_usize = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        HlsOptions {
            segment: config.hls.seg_dur,
            window: to_usize(config.hls.seg_num),
            retain: to_usize(config.hls.seg_retain),
            idle: IDLE,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Ts,
    Fmp4,
}

impl Kind {
    fn protocol(self) -> Protocol {
        match self {
            Kind::Ts => Protocol::Hls,
            Kind::Fmp4 => Protocol::HlsFmp4,
        }
    }
}

/// Every stream's HLS and every HLS viewer.
#[derive(Default)]
pub(crate) struct HlsOutputs {
    streams: Mutex<HashMap<(StreamKey, Kind), Arc<HlsStream>>>,
    viewers: Mutex<HashMap<String, Viewer>>,
    janitor: std::sync::OnceLock<()>,
    idle: Mutex<Option<Duration>>,
}

struct Viewer {
    key: StreamKey,
    kind: Kind,
    /// Counts the viewer in the registry; dropping it reports the bytes (on_flow_report).
    sub: Subscription,
    last: Instant,
}

struct HlsStream {
    state: Mutex<State>,
    /// Bumped on every playlist change; requests waiting for a segment or part watch it.
    changed: watch::Sender<u64>,
    last_request: Mutex<Instant>,
    task: Mutex<Option<JoinHandle<()>>>,
}

struct State {
    playlist: Playlist,
    /// `hls.segNum=0` keeps every segment (a recording): they go to this directory
    /// (`{hls_save_path}/{app}/{stream}`), and only the last few stay in memory.
    disk: Option<std::path::PathBuf>,
    on_disk: std::collections::BTreeSet<u64>,
    /// msn → its parts (TS: one part, the whole segment, once complete).
    segments: BTreeMap<u64, Vec<Bytes>>,
    complete: BTreeMap<u64, bool>,
    init: Option<Bytes>,
    ended: bool,
}

/// What a request names.
enum Resource {
    Playlist,
    Init,
    Segment(u64),
    Part(u64, u64),
}

fn parse(path: &str) -> Option<(&str, Kind, Resource)> {
    if let Some(stem) = path.strip_suffix("/hls.m3u8") {
        return Some((stem, Kind::Ts, Resource::Playlist));
    }
    if let Some(stem) = path.strip_suffix("/hls.fmp4.m3u8") {
        return Some((stem, Kind::Fmp4, Resource::Playlist));
    }
    let (stem, name) = path.rsplit_once('/')?;
    let name = name.strip_prefix("hls_")?;
    if name == "init.mp4" {
        return Some((stem, Kind::Fmp4, Resource::Init));
    }
    if let Some(msn) = name.strip_suffix(".ts") {
        return Some((stem, Kind::Ts, Resource::Segment(msn.parse().ok()?)));
    }
    let name = name.strip_suffix(".m4s")?;
    match name.split_once('.') {
        Some((msn, part)) => Some((
            stem,
            Kind::Fmp4,
            Resource::Part(msn.parse().ok()?, part.parse().ok()?),
        )),
        None => Some((stem, Kind::Fmp4, Resource::Segment(name.parse().ok()?))),
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
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
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
    let idle = state.options.hls.idle;
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
        let viewer = SessionInfo {
            id: state.registry.next_session_id(),
            protocol: kind.protocol(),
            peer,
            local: state.options.local_addr,
            params: params.clone(),
        };
        let admitted = hooks::admit_play(
            &state.hooks,
            &state.registry,
            &key,
            viewer,
            state.options.max_stream_wait,
        )
        .await;
        match admitted {
            Ok(sub) => outputs.add_viewer(key.clone(), kind, sub, query_uid),
            Err(hooks::PlayRefusal::Denied(msg)) => {
                return Some((StatusCode::UNAUTHORIZED, msg).into_response())
            }
            Err(_) => return Some((StatusCode::NOT_FOUND, "stream not found").into_response()),
        }
    };
    let Some(stream) = outputs
        .stream(
            &state.registry,
            &key,
            kind,
            &state.options.hls,
            state.options.enable_vhost,
        )
        .await
    else {
        return Some((StatusCode::NOT_FOUND, "stream not found").into_response());
    };
    *lock(&stream.last_request) = Instant::now();
    let resp = match resource {
        Resource::Playlist => stream.playlist(query, &id).await,
        Resource::Init => stream.init().map(|b| media_response(b, "video/mp4")),
        Resource::Segment(msn) => stream
            .segment(msn)
            .await
            .map(|b| media_response(b, segment_type(kind))),
        Resource::Part(msn, part) => stream
            .part(msn, part)
            .await
            .map(|b| media_response(b, "video/mp4")),
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

fn segment_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Ts => "video/mp2t",
        Kind::Fmp4 => "video/mp4",
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

impl HlsOutputs {
    /// Starts the task that every few seconds forgets idle viewers (their subscriptions end,
    /// reporting their bytes) and stops the HLS of streams nobody asked for in a minute.
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

    fn touch(&self, id: &str, key: &StreamKey, kind: Kind) -> bool {
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
        kind: Kind,
        sub: Subscription,
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
                    sub,
                    last: Instant::now(),
                },
            );
        }
        id
    }

    fn add_bytes(&self, id: &str, n: u64) {
        if let Some(v) = lock(&self.viewers).get(id) {
            v.sub.add_bytes(n);
        }
    }

    /// Drops what has been idle for [`IDLE`].
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
        lock(&self.streams).retain(|_, s| {
            let unused = now.duration_since(*lock(&s.last_request)) >= idle;
            let ended = lock(&s.state).ended;
            !(unused || ended)
        });
    }

    /// The HLS of `key`, started by its first request.
    async fn stream(
        &self,
        registry: &Registry,
        key: &StreamKey,
        kind: Kind,
        options: &HlsOptions,
        enable_vhost: bool,
    ) -> Option<Arc<HlsStream>> {
        let existing = lock(&self.streams).get(&(key.clone(), kind)).cloned();
        if let Some(s) = existing.filter(|s| !lock(&s.state).ended) {
            return Some(s);
        }
        let tracks: Vec<media::TrackInfo> = registry
            .tracks_ready(key, Duration::from_secs(1), Duration::from_secs(10))
            .await?
            .into_iter()
            .map(|t| t.info)
            .collect();
        let output = SessionInfo {
            id: registry.next_session_id(),
            protocol: kind.protocol(),
            peer: ([0, 0, 0, 0], 0).into(),
            local: ([0, 0, 0, 0], 0).into(),
            params: String::new(),
        };
        let save_root = registry.stream(key)?.options.hls_save_path;
        let disk = if options.window == 0 {
            // `{hls_save_path}/[{vhost}/]{app}/{stream}`, made and checked to stay under the
            // save root before a file is written there.
            let rel = key.relative_dir(enable_vhost);
            let made =
                tokio::task::spawn_blocking(move || crate::paths::confined_dir(&save_root, &rel))
                    .await;
            match made {
                Ok(Ok(dir)) => Some(dir),
                Ok(Err(e)) => {
                    tracing::error!(stream = %key, "HLS not written to disk: {e}");
                    return None;
                }
                Err(e) => {
                    tracing::error!(stream = %key, "HLS not written to disk: {e}");
                    return None;
                }
            }
        } else {
            None
        };
        let sub = registry.subscribe_output(key, output)?;
        let seg_ms = options.segment.as_millis() as u64;
        let part_ms = (seg_ms / 6).clamp(200, 500);
        let config = PlaylistConfig {
            target_duration_ms: seg_ms,
            window: options.window,
            part_target_ms: (kind == Kind::Fmp4).then_some(part_ms),
            map_uri: (kind == Kind::Fmp4).then(|| "hls_init.mp4".to_owned()),
        };
        let mut streams = lock(&self.streams);
        if let Some(s) = streams.get(&(key.clone(), kind)) {
            if !lock(&s.state).ended {
                return Some(Arc::clone(s)); // another request started it meanwhile
            }
        }
        let stream = Arc::new(HlsStream {
            state: Mutex::new(State {
                playlist: Playlist::new(config),
                disk,
                on_disk: Default::default(),
                segments: BTreeMap::new(),
                complete: BTreeMap::new(),
                init: None,
                ended: false,
            }),
            changed: watch::Sender::new(0),
            last_request: Mutex::new(Instant::now()),
            task: Mutex::new(None),
        });
        let weak = Arc::downgrade(&stream);
        let retain = options.retain;
        let task = match kind {
            Kind::Ts => tokio::spawn(mux_ts(weak, sub, tracks, seg_ms, retain)),
            Kind::Fmp4 => tokio::spawn(mux_fmp4(weak, sub, tracks, seg_ms, part_ms, retain)),
        };
        *lock(&stream.task) = Some(task);
        streams.insert((key.clone(), kind), Arc::clone(&stream));
        tracing::debug!(stream = %key, ?kind, "HLS started");
        Some(stream)
    }
}

impl Drop for HlsStream {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

impl HlsStream {
    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Waits until `ready` holds for the state, the stream ends or `limit` passes.
    async fn wait(&self, limit: Duration, ready: impl Fn(&State) -> bool) -> bool {
        let mut rx = self.changed.subscribe();
        let deadline = Instant::now() + limit;
        loop {
            {
                let state = lock(&self.state);
                if ready(&state) {
                    return true;
                }
                if state.ended {
                    return false;
                }
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return false;
            }
        }
    }

    async fn playlist(&self, query: &str, id: &str) -> Option<Response> {
        // One whole segment first: players without LL-HLS (ffmpeg's, older hls.js) need a
        // full segment to start; LL-HLS players go on with parts from the next reload.
        let first_ready = |s: &State| s.complete.values().any(|c| *c);
        if !self.wait(FIRST_SEGMENT_WAIT, first_ready).await {
            return Some((StatusCode::NOT_FOUND, "no segment yet").into_response());
        }
        // Blocking playlist reload (LL-HLS): answer once the asked-for part or segment exists.
        if let Some(msn) = param(query, "_HLS_msn").and_then(|m| m.parse::<u64>().ok()) {
            let part = param(query, "_HLS_part").and_then(|p| p.parse::<u64>().ok());
            let (next, target) = {
                let state = lock(&self.state);
                (state.playlist.next_msn(), state.playlist.target_duration())
            };
            if msn > next + 2 {
                return Some((StatusCode::BAD_REQUEST, "_HLS_msn too far ahead").into_response());
            }
            let limit = Duration::from_secs(target.saturating_mul(3));
            self.wait(limit, |s| s.playlist.has(msn, part)).await;
        }
        let text = lock(&self.state).playlist.render();
        let text = with_id(&text, id);
        let mut resp = text.into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/vnd.apple.mpegurl"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Some(resp)
    }

    fn init(&self) -> Option<Bytes> {
        lock(&self.state).init.clone()
    }

    async fn segment(&self, msn: u64) -> Option<Bytes> {
        let on_disk = {
            let state = lock(&self.state);
            match (
                &state.disk,
                state.on_disk.contains(&msn) && !state.segments.contains_key(&msn),
            ) {
                (Some(dir), true) => Some(dir.join(segment_name(state.playlist.config(), msn))),
                _ => None,
            }
        };
        if let Some(path) = on_disk {
            return tokio::fs::read(path).await.ok().map(Bytes::from);
        }
        let state = lock(&self.state);
        if !state.complete.get(&msn).copied().unwrap_or(false) {
            return None;
        }
        let parts = state.segments.get(&msn)?;
        Some(if parts.len() == 1 {
            parts[0].clone()
        } else {
            let mut all = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
            for p in parts {
                all.extend_from_slice(p);
            }
            all.freeze()
        })
    }

    /// A part; the next one (the preload hint) is waited for.
    async fn part(&self, msn: u64, part: u64) -> Option<Bytes> {
        let get = |s: &State| {
            s.segments
                .get(&msn)
                .and_then(|parts| parts.get(usize::try_from(part).ok()?))
                .cloned()
        };
        let limit = Duration::from_secs(lock(&self.state).playlist.target_duration() * 2);
        self.wait(limit, |s| get(s).is_some()).await;
        get(&lock(&self.state))
    }
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

/// The file name of segment `msn`.
fn segment_name(config: &PlaylistConfig, msn: u64) -> String {
    match config.map_uri {
        Some(_) => format!("hls_{msn}.m4s"),
        None => format!("hls_{msn}.ts"),
    }
}

/// Segments kept in memory when every segment goes to disk (`hls.segNum=0`).
const MEMORY_SEGMENTS: u64 = 4;

/// A finished segment of a keep-all playlist goes to disk with the playlist (and the init
/// segment), written in the background; all but the last few leave memory.
fn save(state: &mut State, msn: u64) {
    let Some(dir) = state.disk.clone() else {
        return;
    };
    let Some(parts) = state.segments.get(&msn) else {
        return;
    };
    let mut data = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
    for p in parts {
        data.extend_from_slice(p);
    }
    let name = segment_name(state.playlist.config(), msn);
    let playlist_name = match state.playlist.config().map_uri {
        Some(_) => "hls.fmp4.m3u8",
        None => "hls.m3u8",
    };
    let playlist = state.playlist.render();
    let init = state.init.clone();
    state.on_disk.insert(msn);
    let old: Vec<u64> = state
        .segments
        .range(..msn.saturating_sub(MEMORY_SEGMENTS))
        .map(|(m, _)| *m)
        .filter(|m| state.on_disk.contains(m))
        .collect();
    for m in old {
        state.segments.remove(&m);
    }
    tokio::task::spawn_blocking(move || {
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            if let Some(init) = init {
                std::fs::write(dir.join("hls_init.mp4"), init)?;
            }
            std::fs::write(dir.join(&name), data)?;
            // The playlist last, once what it lists is there.
            let tmp = dir.join(format!(".{playlist_name}.tmp"));
            std::fs::write(&tmp, playlist)?;
            std::fs::rename(tmp, dir.join(playlist_name))
        };
        if let Err(e) = write() {
            tracing::error!(dir = %dir.display(), "HLS recording: {e}");
        }
    });
}

/// Forgets the media of segments that left the playlist, `retain` of them later.
fn drop_old(state: &mut State, dropped: Vec<u64>, retain: usize) {
    for msn in dropped {
        // Keep `retain` more for players a little behind.
        let Some(cutoff) = msn.checked_sub(retain as u64) else {
            continue;
        };
        let old: Vec<u64> = state.segments.range(..=cutoff).map(|(m, _)| *m).collect();
        for m in old {
            state.segments.remove(&m);
            state.complete.remove(&m);
        }
    }
}

async fn mux_ts(
    stream: Weak<HlsStream>,
    mut sub: Subscription,
    mut tracks: Vec<media::TrackInfo>,
    seg_ms: u64,
    retain: usize,
) {
    let mut muxer = TsMuxer::new(&tracks);
    let mut current: Option<(u64, BytesMut, u64)> = None; // msn, data, first dts
    let mut last_dts = 0;
    let has_video =
        |tracks: &[media::TrackInfo]| tracks.iter().any(|t| t.kind() == TrackKind::Video);
    loop {
        let item = sub.recv().await;
        let Some(out) = stream.upgrade() else { return };
        match item {
            Ok(Item::Packet(p)) => {
                let f = &p.frame;
                last_dts = f.dts;
                let boundary = (f.kind() == TrackKind::Video && f.keyframe) || !has_video(&tracks);
                let cut = current
                    .as_ref()
                    .is_some_and(|(_, _, start)| f.dts.saturating_sub(*start) >= seg_ms);
                if boundary && (cut || current.is_none()) {
                    let mut state = lock(&out.state);
                    if let Some((msn, data, start)) = current.take() {
                        state.segments.insert(msn, vec![data.freeze()]);
                        state.complete.insert(msn, true);
                        let dropped = state.playlist.end_segment(f.dts.saturating_sub(start));
                        drop_old(&mut state, dropped, retain);
                        save(&mut state, msn);
                    }
                    let next = state.playlist.next_msn();
                    let msn = state.playlist.start_segment(format!("hls_{next}.ts"));
                    let mut data = BytesMut::new();
                    muxer.write_tables(&mut data);
                    current = Some((msn, data, f.dts));
                    drop(state);
                    out.bump();
                }
                if let Some((_, data, _)) = current.as_mut() {
                    muxer.push(f, data);
                }
            }
            Ok(Item::Track(t)) => {
                match tracks.iter_mut().find(|x| x.kind() == t.info.kind()) {
                    Some(x) => *x = t.info,
                    None => tracks.push(t.info),
                }
                muxer = TsMuxer::new(&tracks);
            }
            Ok(Item::Metadata(_)) => {}
            Err(_) => {
                // The stream ended: its last segment ends at its last frame, the playlist with
                // EXT-X-ENDLIST (and so do the files of a keep-all playlist).
                let mut state = lock(&out.state);
                match current.take() {
                    Some((msn, data, start)) => {
                        state.segments.insert(msn, vec![data.freeze()]);
                        state.complete.insert(msn, true);
                        state
                            .playlist
                            .end_segment(last_dts.saturating_sub(start).max(1));
                        state.playlist.finish();
                        save(&mut state, msn);
                    }
                    None => {
                        state.playlist.finish();
                    }
                }
                state.ended = true;
                drop(state);
                out.bump();
                return;
            }
        }
    }
}

async fn mux_fmp4(
    stream: Weak<HlsStream>,
    mut sub: Subscription,
    tracks: Vec<media::TrackInfo>,
    seg_ms: u64,
    part_ms: u64,
    retain: usize,
) {
    let Ok(mut muxer) = Fmp4Muxer::new(&tracks) else {
        if let Some(out) = stream.upgrade() {
            lock(&out.state).ended = true;
            out.bump();
        }
        return;
    };
    if let Some(out) = stream.upgrade() {
        lock(&out.state).init = Some(muxer.init_segment());
    }
    let has_video = tracks.iter().any(|t| t.kind() == TrackKind::Video);
    // The segment being written: its msn and the dts it started at; and where the current part
    // started. Durations come from these dts (the video timeline), so parts, segments and
    // what players buffer agree.
    let mut current: Option<Current> = None;
    loop {
        let item = sub.recv().await;
        let Some(out) = stream.upgrade() else { return };
        match item {
            Ok(Item::Packet(p)) => {
                let f = &p.frame;
                let boundary = (f.kind() == TrackKind::Video && f.keyframe) || !has_video;
                let new_segment = match &current {
                    None => boundary,
                    Some(c) => boundary && f.dts.saturating_sub(c.segment_start) >= seg_ms,
                };
                if let Some(c) = current.as_mut() {
                    // Cut so no part exceeds the part target: before the frame that would
                    // take it within PART_HEADROOM_MS of it (frames are closer than that), and
                    // only before a video frame, so each part's video runs up to the next
                    // part's without a hole.
                    let cut_point = f.kind() == TrackKind::Video || !has_video;
                    let due = f.dts + PART_HEADROOM_MS > c.part_start + part_ms;
                    if new_segment || (cut_point && due) {
                        cut_part(&out, &mut muxer, c, Some(f.dts));
                    }
                }
                if new_segment {
                    let mut state = lock(&out.state);
                    if let Some(c) = current.take() {
                        let dropped = state
                            .playlist
                            .end_segment(f.dts.saturating_sub(c.segment_start));
                        state.complete.insert(c.msn, true);
                        drop_old(&mut state, dropped, retain);
                        save(&mut state, c.msn);
                    }
                    let next = state.playlist.next_msn();
                    let msn = state.playlist.start_segment(format!("hls_{next}.m4s"));
                    state.segments.insert(msn, Vec::new());
                    state
                        .playlist
                        .set_preload_hint(Some(format!("hls_{msn}.0.m4s")));
                    current = Some(Current {
                        msn,
                        segment_start: f.dts,
                        part_start: f.dts,
                    });
                    drop(state);
                    out.bump();
                }
                if current.is_some() {
                    muxer.push(f);
                }
            }
            Ok(Item::Track(_)) | Ok(Item::Metadata(_)) => {}
            Err(_) => {
                if let Some(c) = current.as_mut() {
                    cut_part(&out, &mut muxer, c, None);
                }
                let mut state = lock(&out.state);
                state.playlist.finish();
                if let Some(c) = &current {
                    state.complete.insert(c.msn, true);
                    save(&mut state, c.msn);
                }
                state.ended = true;
                drop(state);
                out.bump();
                return;
            }
        }
    }
}

/// Room left under the part target when deciding to cut: more than the gap between two frames
/// of any usual stream (40 ms at 25 fps, 23 ms of AAC).
const PART_HEADROOM_MS: u64 = 50;

/// The LL-HLS segment being written.
struct Current {
    msn: u64,
    segment_start: u64,
    part_start: u64,
}

/// Cuts what the muxer holds, up to `until` (the next frame's dts; `None` at the end), into the
/// next part of the current segment.
fn cut_part(out: &HlsStream, muxer: &mut Fmp4Muxer, current: &mut Current, until: Option<u64>) {
    // Every track's last sample keeps its own length (the video frame interval, 1024 AAC
    // samples), so neither timeline gets a hole at the cut; the playlist gets the video's.
    let Some(fragment) = muxer.fragment() else {
        return;
    };
    let duration = match until {
        Some(dts) => dts.saturating_sub(current.part_start),
        None => fragment.duration_ms,
    };
    let msn = current.msn;
    let mut state = lock(&out.state);
    let index = state.segments.get(&msn).map_or(0, Vec::len);
    state.playlist.add_part(
        format!("hls_{msn}.{index}.m4s"),
        duration,
        fragment.independent,
    );
    state.segments.entry(msn).or_default().push(fragment.data);
    state
        .playlist
        .set_preload_hint(Some(format!("hls_{msn}.{}.m4s", index + 1)));
    drop(state);
    current.part_start = until.unwrap_or(current.part_start);
    out.bump();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert!(matches!(
            parse("/live/a/hls.m3u8"),
            Some(("/live/a", Kind::Ts, Resource::Playlist))
        ));
        assert!(matches!(
            parse("/live/a/hls.fmp4.m3u8"),
            Some(("/live/a", Kind::Fmp4, Resource::Playlist))
        ));
        assert!(matches!(
            parse("/live/a/b/hls_7.ts"),
            Some(("/live/a/b", Kind::Ts, Resource::Segment(7)))
        ));
        assert!(matches!(
            parse("/live/a/hls_7.m4s"),
            Some((_, Kind::Fmp4, Resource::Segment(7)))
        ));
        assert!(matches!(
            parse("/live/a/hls_7.2.m4s"),
            Some((_, Kind::Fmp4, Resource::Part(7, 2)))
        ));
        assert!(matches!(
            parse("/live/a/hls_init.mp4"),
            Some((_, Kind::Fmp4, Resource::Init))
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
