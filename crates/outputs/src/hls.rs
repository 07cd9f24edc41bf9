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
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::ondemand::Task;

/// How long a first playlist request waits for the first segment (or part).
const FIRST_SEGMENT_WAIT: Duration = Duration::from_secs(20);

/// HLS settings (`[hls]`), built from a [`config::Config`].
#[derive(Debug, Clone)]
pub struct HlsOptions {
    /// `hls.segDur`: target segment duration.
    pub segment: Duration,
    /// `hls.segNum`: segments listed; 0 keeps them all, on disk.
    pub window: usize,
    /// `hls.segRetain`: segments kept after they leave the playlist.
    pub retain: usize,
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
    /// A blocking reload asked for a segment more than two ahead of the next.
    #[error("_HLS_msn too far ahead")]
    TooFarAhead,
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
    /// Bumped on every playlist change; requests waiting for a segment or part watch it.
    changed: watch::Sender<u64>,
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
    pub(crate) init: Option<Bytes>,
    pub(crate) ended: bool,
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
    let part_ms = (seg_ms / 6).clamp(200, 500);
    let config = PlaylistConfig {
        target_duration_ms: seg_ms,
        window,
        part_target_ms: (kind == HlsKind::Fmp4).then_some(part_ms),
        map_uri: (kind == HlsKind::Fmp4).then(|| "hls_init.mp4".to_owned()),
    };
    let stream = Arc::new(HlsStream {
        state: Mutex::new(State {
            playlist: Playlist::new(config),
            disk,
            on_disk: BTreeSet::new(),
            segments: BTreeMap::new(),
            complete: BTreeMap::new(),
            init: None,
            ended: false,
        }),
        changed: watch::Sender::new(0),
        last_request: Mutex::new(Instant::now()),
        task: OnceLock::new(),
    });
    let weak: Weak<HlsStream> = Arc::downgrade(&stream);
    let retain = options.retain;
    let task = match kind {
        HlsKind::Ts => Task::spawn(mux::mux_ts(weak, reader, tracks, seg_ms, retain)),
        HlsKind::Fmp4 => Task::spawn(mux::mux_fmp4(weak, reader, tracks, seg_ms, part_ms, retain)),
    };
    let _ = stream.task.set(task);
    Some(stream)
}

impl HlsStream {
    /// A request came: the stream's HLS is kept for [`HlsOptions::idle`] more.
    pub fn touch(&self) {
        *lock(&self.last_request) = Instant::now();
    }

    pub(crate) fn bump(&self) {
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

    /// The playlist text, once there is a whole segment (players without LL-HLS, ffmpeg's and
    /// older hls.js, need one to start; LL-HLS players go on with parts from the next reload).
    /// With `msn` (`_HLS_msn`, and `part` for `_HLS_part`), a blocking reload: answered once
    /// that segment or part exists, or after three target durations.
    pub async fn playlist(
        &self,
        msn: Option<u64>,
        part: Option<u64>,
    ) -> Result<String, PlaylistError> {
        let first_ready = |s: &State| s.complete.values().any(|c| *c);
        if !self.wait(FIRST_SEGMENT_WAIT, first_ready).await {
            return Err(PlaylistError::NotReady);
        }
        if let Some(msn) = msn {
            let (next, target) = {
                let state = lock(&self.state);
                (state.playlist.next_msn(), state.playlist.target_duration())
            };
            if msn > next + 2 {
                return Err(PlaylistError::TooFarAhead);
            }
            let limit = Duration::from_secs(target.saturating_mul(3));
            self.wait(limit, |s| s.playlist.has(msn, part)).await;
        }
        Ok(lock(&self.state).playlist.render())
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

    /// A part; the next one (the preload hint) is waited for.
    pub async fn part(&self, msn: u64, part: u64) -> Option<Bytes> {
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
