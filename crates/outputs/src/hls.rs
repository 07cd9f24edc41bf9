//! HLS (RFC 8216) with MPEG-TS segments and LL-HLS (draft-pantos-hls-rfc8216bis) with fMP4
//! parts: each stream's HLS muxed once, its segments and parts kept in memory (only those the
//! playlist lists, plus `hls.segRetain`), and, for a keep-all playlist (`hls.segNum=0`),
//! written to `{hls_save_path}/[{vhost}/]{app}/{stream}/` with only the last few in memory.
//!
//! A stream's HLS starts with its first request (from the registry's GOP cache, so the first
//! segment is complete one segment duration later) and stops when the stream ends or
//! [`HlsOptions::idle`] after its last request. Viewers, their on_play decisions and the HTTP
//! answers are the `api` crate's; this module answers what it asks: the playlist once it can
//! be served (blocking reload included), the init segment, segments and parts.

mod mux;

use bytes::{Bytes, BytesMut};
use hls::{Playlist, PlaylistConfig};
use media::StreamKey;
use registry::Registry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::ondemand::Task;

/// How long a first playlist request waits for the first segment (or part).
const FIRST_SEGMENT_WAIT: Duration = Duration::from_secs(20);

/// Requests one stream's HLS holds at most at a time (first playlists waiting for a segment,
/// blocking reloads, parts requested before they are complete); more are answered
/// [`PlaylistError::Busy`] / [`PartAnswer::Busy`] (503) at once. Each costs a task and a watch
/// receiver, and every held request is bounded in time too.
pub const MAX_WAITERS: usize = 4096;

/// The shortest LL-HLS part target `hls.partDurMS` may set.
const MIN_PART_MS: u64 = 100;

/// HLS settings (`[hls]`), built from a [`config::Config`].
#[derive(Debug, Clone)]
pub struct HlsOptions {
    /// `hls.segDur`: target segment duration.
    pub segment: Duration,
    /// `hls.segNum`: segments listed; 0 keeps them all, on disk.
    pub window: usize,
    /// `hls.segRetain`: segments kept after they leave the playlist.
    pub retain: usize,
    /// `hls.partDurMS`: the LL-HLS part target (at least 100 ms, at most `segment`).
    pub part: Duration,
    /// A stream's HLS (and, in `api`, a viewer) is forgotten this long after its last request
    /// (ZLMediaKit: 60 s). Not a config key. Default: 60 s.
    pub idle: Duration,
}

/// How long a stream's HLS (and a viewer) is kept after its last request; not a config key.
const IDLE: Duration = Duration::from_secs(60);

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
            part: config.hls.part_dur,
            idle: IDLE,
        }
    }
}

/// Which HLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HlsKind {
    /// MPEG-TS segments (`hls.m3u8`).
    Ts,
    /// fMP4 segments and LL-HLS parts (`hls.fmp4.m3u8`).
    Fmp4,
}

/// Why a playlist cannot be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlaylistError {
    /// No complete segment yet (or the stream ended first).
    #[error("no segment yet")]
    NotReady,
    /// A blocking reload asked for a segment more than two ahead of the last, or a part past
    /// the last by more than the Advance Part Limit ([`hls::Playlist::too_far_ahead`]).
    #[error("_HLS_msn or _HLS_part too far ahead")]
    TooFarAhead,
    /// [`MAX_WAITERS`] requests are held already.
    #[error("too many requests waiting")]
    Busy,
}

/// The answer to a part request ([`HlsStream::part`]).
#[derive(Debug)]
pub enum PartAnswer {
    /// The part is complete: its bytes.
    Whole(Bytes),
    /// The part is being produced (or was the next to come when asked for, the preload hint):
    /// its bytes as they are produced, from its first chunk on.
    Streamed(PartStream),
    /// No such part, and none is to come (or it did not start in time).
    Missing,
    /// [`MAX_WAITERS`] requests are held already.
    Busy,
}

/// Every stream's HLS.
pub(crate) struct HlsOutputs {
    // Std Mutexes, held for look-ups and inserts, never across an `.await`.
    streams: Mutex<HashMap<(StreamKey, HlsKind), Arc<HlsStream>>>,
    /// HLS recordings (startRecord `type` 0 and 2): keep-all playlists written to disk,
    /// whoever watches, until stopped or their stream ends.
    recordings: Mutex<HashMap<(StreamKey, HlsKind), Arc<HlsStream>>>,
    janitor: OnceLock<()>,
}

/// One stream's HLS of one kind.
pub struct HlsStream {
    state: Mutex<State>,
    /// Bumped on every playlist change (and every chunk of a part); requests waiting for a
    /// segment or part watch it.
    changed: watch::Sender<u64>,
    /// Requests held now, at most `max_waiters` ([`MAX_WAITERS`]).
    waiters: Arc<AtomicUsize>,
    max_waiters: usize,
    last_request: Mutex<Instant>,
    task: OnceLock<Task>,
}

pub(crate) struct State {
    pub(crate) playlist: Playlist,
    /// `hls.segNum=0` keeps every segment (a recording): they go to this directory, and only
    /// the last few stay in memory.
    pub(crate) disk: Option<PathBuf>,
    pub(crate) on_disk: BTreeSet<u64>,
    /// msn → its parts (TS: one part, the whole segment, once complete).
    pub(crate) segments: BTreeMap<u64, Vec<Bytes>>,
    pub(crate) complete: BTreeMap<u64, bool>,
    /// LL-HLS: the part being written, its chunks (one `moof`+`mdat` per video frame) as they
    /// come; it moves into `segments` when complete.
    pub(crate) open_part: Option<OpenPart>,
    pub(crate) init: Option<Bytes>,
    pub(crate) ended: bool,
}

/// The LL-HLS part being written.
pub(crate) struct OpenPart {
    pub(crate) msn: u64,
    pub(crate) index: u64,
    /// Its chunks so far; concatenated they are the part.
    pub(crate) chunks: Vec<Bytes>,
}

impl State {
    /// Part `index` of segment `msn` when complete.
    fn complete_part(&self, msn: u64, index: u64) -> Option<&Bytes> {
        self.segments.get(&msn)?.get(usize::try_from(index).ok()?)
    }

    /// The chunks of part `index` of segment `msn` while it is being written.
    fn open_chunks(&self, msn: u64, index: u64) -> Option<&[Bytes]> {
        self.open_part
            .as_ref()
            .filter(|p| p.msn == msn && p.index == index)
            .map(|p| p.chunks.as_slice())
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the data consistent; a poisoned lock is safe to reuse.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for HlsOutputs {
    fn default() -> Self {
        HlsOutputs {
            streams: Mutex::new(HashMap::new()),
            recordings: Mutex::new(HashMap::new()),
            janitor: OnceLock::new(),
        }
    }
}

impl HlsOutputs {
    /// Stops, every second, the HLS of streams that ended or nobody asked for in `idle`.
    fn start_janitor(self: &Arc<Self>, idle: Duration) {
        self.janitor.get_or_init(|| {
            let weak = Arc::downgrade(self);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    let Some(outputs) = weak.upgrade() else {
                        return;
                    };
                    let now = Instant::now();
                    lock(&outputs.streams).retain(|_, s| {
                        let unused = now.duration_since(*lock(&s.last_request)) >= idle;
                        !(unused || lock(&s.state).ended)
                    });
                    lock(&outputs.recordings).retain(|_, s| !lock(&s.state).ended);
                }
            });
        });
    }

    /// The HLS of `key`, started by its first request.
    pub(crate) async fn stream(
        self: &Arc<Self>,
        registry: &Registry,
        key: &StreamKey,
        kind: HlsKind,
        options: &HlsOptions,
        enable_vhost: bool,
    ) -> Option<Arc<HlsStream>> {
        self.start_janitor(options.idle);
        let existing = lock(&self.streams).get(&(key.clone(), kind)).cloned();
        if let Some(s) = existing.filter(|s| !lock(&s.state).ended) {
            s.touch();
            return Some(s);
        }
        let stream = build(registry, key, kind, options, options.window, enable_vhost).await?;
        let mut streams = lock(&self.streams);
        if let Some(s) = streams.get(&(key.clone(), kind)) {
            if !lock(&s.state).ended {
                return Some(Arc::clone(s)); // another request started it meanwhile
            }
        }
        streams.insert((key.clone(), kind), Arc::clone(&stream));
        tracing::debug!(stream = %key, ?kind, "HLS started");
        Some(stream)
    }

    /// Starts recording `key`'s HLS of `kind` to disk (a keep-all playlist under
    /// `{hls_save_path}/[{vhost}/]{app}/{stream}/`), whoever watches, until
    /// [`HlsOutputs::stop_recording`] or the stream's end. With `hls.segNum=0` the viewers'
    /// HLS is that recording already and is kept running. False when the stream is not live
    /// (or its directory cannot be made).
    pub(crate) async fn record(
        self: &Arc<Self>,
        registry: &Registry,
        key: &StreamKey,
        kind: HlsKind,
        options: &HlsOptions,
        enable_vhost: bool,
    ) -> bool {
        if self.is_recording(key, kind) {
            return true;
        }
        let stream = if options.window == 0 {
            self.stream(registry, key, kind, options, enable_vhost)
                .await
        } else {
            build(registry, key, kind, options, 0, enable_vhost).await
        };
        let Some(stream) = stream else {
            return false;
        };
        self.start_janitor(options.idle);
        lock(&self.recordings)
            .entry((key.clone(), kind))
            .or_insert(stream);
        tracing::info!(stream = %key, ?kind, "HLS recording started");
        true
    }

    /// Stops recording `key`'s HLS of `kind` (what is on disk stays). False when it was not.
    pub(crate) fn stop_recording(&self, key: &StreamKey, kind: HlsKind) -> bool {
        let stopped = lock(&self.recordings)
            .remove(&(key.clone(), kind))
            .is_some();
        if stopped {
            tracing::info!(stream = %key, ?kind, "HLS recording stopped");
        }
        stopped
    }

    /// Whether `key`'s HLS of `kind` is being recorded.
    pub(crate) fn is_recording(&self, key: &StreamKey, kind: HlsKind) -> bool {
        lock(&self.recordings)
            .get(&(key.clone(), kind))
            .is_some_and(|s| !lock(&s.state).ended)
    }
}

/// A new HLS of `key` listing `window` segments (0: every one, on disk), its muxer running.
async fn build(
    registry: &Registry,
    key: &StreamKey,
    kind: HlsKind,
    options: &HlsOptions,
    window: usize,
    enable_vhost: bool,
) -> Option<Arc<HlsStream>> {
    let tracks = registry
        .tracks_ready(key, Duration::from_secs(1), Duration::from_secs(10))
        .await?;
    let save_root = registry.stream(key)?.options.hls_save_path;
    let disk = if window == 0 {
        // `{hls_save_path}/[{vhost}/]{app}/{stream}`, made and checked to stay under the
        // save root before a file is written there.
        let rel = key.relative_dir(enable_vhost);
        let made = tokio::task::spawn_blocking(move || crate::confined_dir(&save_root, &rel)).await;
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
    let reader = registry.subscribe_output(key)?;
    let seg_ms = options.segment.as_millis() as u64;
    let part_ms = part_target_ms(options);
    let config = PlaylistConfig {
        target_duration_ms: seg_ms,
        window,
        part_target_ms: (kind == HlsKind::Fmp4).then_some(part_ms),
        map_uri: (kind == HlsKind::Fmp4).then(|| "hls_init.mp4".to_owned()),
    };
    let stream = Arc::new(HlsStream::new(config, disk, MAX_WAITERS));
    let weak: Weak<HlsStream> = Arc::downgrade(&stream);
    let retain = options.retain;
    let task = match kind {
        HlsKind::Ts => Task::spawn(mux::mux_ts(weak, reader, tracks, seg_ms, retain)),
        HlsKind::Fmp4 => Task::spawn(mux::mux_fmp4(weak, reader, tracks, seg_ms, part_ms, retain)),
    };
    let _ = stream.task.set(task);
    Some(stream)
}

/// The LL-HLS part target: `hls.partDurMS`, at least [`MIN_PART_MS`] and at most a segment.
fn part_target_ms(options: &HlsOptions) -> u64 {
    let seg_ms = options.segment.as_millis() as u64;
    (options.part.as_millis() as u64).clamp(MIN_PART_MS, seg_ms.max(MIN_PART_MS))
}

/// One held request's place among [`HlsStream`]'s waiters; leaving frees it.
#[derive(Debug)]
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waited {
    Ready,
    /// Timed out, or the stream ended first.
    Gave,
    Busy,
}

impl HlsStream {
    fn new(config: PlaylistConfig, disk: Option<PathBuf>, max_waiters: usize) -> HlsStream {
        HlsStream {
            state: Mutex::new(State {
                playlist: Playlist::new(config),
                disk,
                on_disk: BTreeSet::new(),
                segments: BTreeMap::new(),
                complete: BTreeMap::new(),
                open_part: None,
                init: None,
                ended: false,
            }),
            changed: watch::Sender::new(0),
            waiters: Arc::new(AtomicUsize::new(0)),
            max_waiters,
            last_request: Mutex::new(Instant::now()),
            task: OnceLock::new(),
        }
    }

    /// A place among the held requests, or `None` when [`MAX_WAITERS`] are held.
    fn enter(&self) -> Option<Waiting> {
        self.waiters
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_waiters).then_some(n + 1)
            })
            .ok()
            .map(|_| Waiting(Arc::clone(&self.waiters)))
    }

    /// A request came: the stream's HLS is kept for [`HlsOptions::idle`] more.
    pub fn touch(&self) {
        *lock(&self.last_request) = Instant::now();
    }

    pub(crate) fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Waits until `ready` holds for the state, the stream ends or `limit` passes; a request
    /// that has to wait takes a place among the held ones first ([`MAX_WAITERS`]).
    async fn wait(&self, limit: Duration, ready: impl Fn(&State) -> bool) -> Waited {
        let mut rx = self.changed.subscribe();
        let deadline = Instant::now() + limit;
        let mut place = None;
        loop {
            {
                let state = lock(&self.state);
                if ready(&state) {
                    return Waited::Ready;
                }
                if state.ended {
                    return Waited::Gave;
                }
            }
            if place.is_none() {
                match self.enter() {
                    Some(p) => place = Some(p),
                    None => return Waited::Busy,
                }
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return Waited::Gave;
            }
        }
    }

    /// The playlist text. A plain request (no `msn`) waits for a whole segment: players without
    /// LL-HLS (ffmpeg's) need one to start, and so does hls.js (a playlist whose only segment
    /// is in progress has no segment for it, LEVEL_EMPTY_ERROR, and it retries a second
    /// later). With `msn` (`_HLS_msn`, and `part` for `_HLS_part`), a blocking reload:
    /// answered the moment that segment or part exists (no whole segment needed), after three
    /// target durations with the playlist as it is, or at once with
    /// [`PlaylistError::TooFarAhead`] when it asks too far ahead.
    pub async fn playlist(
        &self,
        msn: Option<u64>,
        part: Option<u64>,
    ) -> Result<String, PlaylistError> {
        let Some(msn) = msn else {
            let first_ready = |s: &State| s.complete.values().any(|c| *c);
            return match self.wait(FIRST_SEGMENT_WAIT, first_ready).await {
                Waited::Ready => Ok(lock(&self.state).playlist.render()),
                Waited::Gave => Err(PlaylistError::NotReady),
                Waited::Busy => Err(PlaylistError::Busy),
            };
        };
        let target = {
            let state = lock(&self.state);
            if state.playlist.too_far_ahead(msn, part) {
                return Err(PlaylistError::TooFarAhead);
            }
            state.playlist.target_duration()
        };
        let limit = Duration::from_secs(target.saturating_mul(3));
        if self.wait(limit, |s| s.playlist.has(msn, part)).await == Waited::Busy {
            return Err(PlaylistError::Busy);
        }
        let state = lock(&self.state);
        let empty = state.segments.values().all(Vec::is_empty) && state.open_part.is_none();
        if empty && !state.playlist.has(msn, part) {
            return Err(PlaylistError::NotReady);
        }
        Ok(state.playlist.render())
    }

    /// The fMP4 init segment.
    pub fn init(&self) -> Option<Bytes> {
        lock(&self.state).init.clone()
    }

    /// A complete segment, from memory or (keep-all playlists) from disk.
    pub async fn segment(&self, msn: u64) -> Option<Bytes> {
        let on_disk = {
            let state = lock(&self.state);
            match (
                &state.disk,
                state.on_disk.contains(&msn) && !state.segments.contains_key(&msn),
            ) {
                (Some(dir), true) => {
                    Some(dir.join(mux::segment_name(state.playlist.config(), msn)))
                }
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

    /// Part `part` of segment `msn`: whole when complete; else, when it is being written or
    /// may still come (the preload hint, or any later part of a segment in progress), held
    /// until its first chunk exists (two target durations at most) and then streamed as it is
    /// produced; missing at once when it can no longer come.
    pub async fn part(self: &Arc<Self>, msn: u64, part: u64) -> PartAnswer {
        let limit = Duration::from_secs(lock(&self.state).playlist.target_duration() * 2);
        let started = |s: &State| {
            s.complete_part(msn, part).is_some()
                || s.open_chunks(msn, part).is_some_and(|c| !c.is_empty())
                || !s.playlist.part_may_come(msn, part)
        };
        // Too far ahead to be the next part of anything: not held.
        if lock(&self.state).playlist.too_far_ahead(msn, Some(part)) {
            return PartAnswer::Missing;
        }
        if self.wait(limit, started).await == Waited::Busy {
            return PartAnswer::Busy;
        }
        let state = lock(&self.state);
        if let Some(bytes) = state.complete_part(msn, part) {
            return PartAnswer::Whole(bytes.clone());
        }
        if state.open_chunks(msn, part).is_none_or(|c| c.is_empty()) {
            return PartAnswer::Missing;
        }
        drop(state);
        let Some(place) = self.enter() else {
            return PartAnswer::Busy;
        };
        PartAnswer::Streamed(PartStream {
            stream: Arc::clone(self),
            msn,
            index: part,
            sent: 0,
            rx: self.changed.subscribe(),
            deadline: Instant::now() + limit,
            _place: place,
        })
    }
}

/// A part's bytes as they are produced ([`PartAnswer::Streamed`]): each chunk once, then the
/// end when the part is complete. Held among the stream's waiters, and for two target
/// durations at most.
pub struct PartStream {
    stream: Arc<HlsStream>,
    msn: u64,
    index: u64,
    /// Bytes of the part given out so far.
    sent: usize,
    rx: watch::Receiver<u64>,
    deadline: Instant,
    _place: Waiting,
}

/// A streamed part did not complete: it left memory, the stream stopped, or its time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the part was not completed")]
pub struct PartCut;

impl std::fmt::Debug for PartStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartStream")
            .field("msn", &self.msn)
            .field("index", &self.index)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl PartStream {
    /// The part's next bytes: `None` once it is all given, an error when it will not be.
    pub async fn next(&mut self) -> Option<Result<Bytes, PartCut>> {
        loop {
            {
                let state = lock(&self.stream.state);
                if let Some(whole) = state.complete_part(self.msn, self.index) {
                    if self.sent >= whole.len() {
                        return None;
                    }
                    let rest = whole.slice(self.sent..);
                    self.sent = whole.len();
                    return Some(Ok(rest));
                }
                let Some(chunks) = state.open_chunks(self.msn, self.index) else {
                    return Some(Err(PartCut));
                };
                // The chunk that starts where the given bytes end.
                let mut at = 0;
                for chunk in chunks {
                    if at >= self.sent {
                        self.sent = at + chunk.len();
                        return Some(Ok(chunk.clone()));
                    }
                    at += chunk.len();
                }
                if state.ended {
                    return Some(Err(PartCut));
                }
            }
            if tokio::time::timeout_at(self.deadline, self.rx.changed())
                .await
                .map_or(true, |r| r.is_err())
            {
                return Some(Err(PartCut));
            }
        }
    }
}

#[cfg(test)]
#[path = "hls/tests.rs"]
mod tests;
