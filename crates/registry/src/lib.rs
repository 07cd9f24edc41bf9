//! The live-stream registry: who publishes what, and how frames reach every viewer.
//!
//! One [`Registry`] per server. A publisher calls [`Registry::publish`] once its admission
//! hook allowed it and gets a [`PublisherGuard`]; dropping the guard unpublishes, so a session
//! that dies cannot leak a live stream. It pushes codec-neutral [`media::Frame`]s and
//! [`media::TrackInfo`]s: the registry knows no container and no protocol's framing. Outputs
//! (the `outputs` crate) read a stream with [`Registry::subscribe_output`] and mux it once for
//! all their viewers; a viewer itself joins with [`Registry::join`] (or [`Registry::wait_for`]
//! for a stream that is not live yet) and gets a [`Viewer`]: its place in the stream's reader
//! count and in the session table, while its media comes from an output.
//!
//! ```text
//!  publisher session ──push(Frame)──▶ Stream ──▶ Fanout<Item> (bounded in bytes and count) ──▶ StreamReader (outputs)
//!                                       │  header: metadata, tracks; GOP start ─┘
//!                                       ├─ sessions: publishers and viewers (kick)
//!                                       └─ lifecycle Event ──▶ Registry::events() (hooks, API)
//! ```
//!
//! Fan-out is one [`Fanout`] per stream, a ring of shared frames bounded in bytes and in count
//! ([`FanoutLimits`]): memory does not grow with readers, a frame is never copied per reader,
//! and a reader that stops reading holds nothing. From its last video keyframe the ring is also
//! the GOP cache a new reader starts with. A reader that falls more than the ring behind loses
//! its place, skips to the next video keyframe and goes on; one that falls behind too often is
//! dropped ([`Ended::TooSlow`]). Every output fans its muxed chunks out on the same [`Fanout`]
//! type.
//!
//! The registry never calls HTTP: hooks, API and metrics subscribe to [`Registry::events`].
//!
//! Layout:
//! - `lib.rs`: [`Registry`], [`RegistryConfig`], [`Event`], session info and the session table.
//! - `stream.rs`: per-stream state, [`PublisherGuard`], timestamp rebasing.
//! - `reader.rs`: [`Item`] and [`StreamReader`], an output's reader of the stream's ring.
//! - `viewer.rs`: [`Viewer`], a viewer's place in the stream and the session table.
//! - `fanout.rs`: [`Fanout`], the bounded ring with the start and lag policy.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![forbid(clippy::print_stdout)]

mod fanout;
mod options;
mod reader;
mod stream;
mod viewer;

pub use fanout::{
    fanout_drops, Ended, Fanout, FanoutDrops, FanoutLimits, FanoutStats, LagTracker, Reader,
    ITEM_OVERHEAD,
};
pub use options::StreamOptions;
pub use reader::{Item, StreamReader};
pub use stream::{PublisherGuard, StreamInfo, TrackStats};
pub use viewer::Viewer;

use media::{StreamKey, TrackInfo};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use stream::Stream;
use tokio::sync::{broadcast, watch};

/// Tunables of the registry.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Bounds and lag policy of each stream's ring. Default: [`FanoutLimits::default`] (16 MiB,
    /// 4096 frames, a viewer lagging 5 times in 30 s is dropped).
    pub fanout: FanoutLimits,
    /// Largest video frame accepted; a larger one is dropped and logged. Default: 8 MiB (an
    /// 8K intra frame at a high bitrate is a few MiB).
    pub max_video_frame: usize,
    /// Largest audio frame accepted. Default: 64 KiB (AAC frames are at most 768 bytes per
    /// channel; Opus and MP3 are smaller still).
    pub max_audio_frame: usize,
    /// A timestamp step larger than this (either way) is a jump and is rebased. Default: 10 s.
    pub jump_threshold_ms: u64,
    /// Capacity of the lifecycle event channel; a subscriber further behind misses events.
    /// Default: 4096.
    pub event_capacity: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            fanout: FanoutLimits::default(),
            max_video_frame: 8 << 20,
            max_audio_frame: 64 << 10,
            jump_threshold_ms: 10_000,
            event_capacity: 4096,
        }
    }
}

/// The protocol a session speaks, as ZLMediaKit's `schema` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// RTMP publish or play.
    Rtmp,
    /// RTSP publish or play.
    Rtsp,
    /// HTTP-FLV.
    HttpFlv,
    /// WebSocket FLV.
    WsFlv,
    /// HLS with MPEG-TS segments.
    Hls,
    /// HLS with fMP4 segments (LL-HLS).
    HlsFmp4,
    /// HTTP MPEG-TS (`.live.ts`).
    HttpTs,
    /// WebSocket MPEG-TS.
    WsTs,
    /// HTTP fMP4 (`.live.mp4`).
    HttpFmp4,
    /// WebSocket fMP4.
    WsFmp4,
    /// A stream the server pulls from another server or a camera (addStreamProxy); its
    /// session is the pulling connection.
    Pull,
    /// A stream received by the RTP server (openRtpServer, GB28181).
    Rtp,
    /// WebRTC: a WHEP player or a WHIP publisher.
    Rtc,
}

impl Protocol {
    /// ZLMediaKit's `schema` for this protocol.
    pub fn schema(self) -> &'static str {
        match self {
            Protocol::Rtmp | Protocol::HttpFlv | Protocol::WsFlv => "rtmp",
            Protocol::Rtsp => "rtsp",
            Protocol::Hls => "hls",
            Protocol::HlsFmp4 => "hls.fmp4",
            Protocol::HttpTs | Protocol::WsTs => "ts",
            Protocol::HttpFmp4 | Protocol::WsFmp4 => "fmp4",
            Protocol::Pull => "pull",
            Protocol::Rtp => "rtp",
            Protocol::Rtc => "rtc",
        }
    }

    /// ZLMediaKit's `protocol` field (`ws`/`http` for HTTP live, otherwise the schema).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::Rtsp => "rtsp",
            Protocol::HttpFlv
            | Protocol::Hls
            | Protocol::HlsFmp4
            | Protocol::HttpTs
            | Protocol::HttpFmp4 => "http",
            Protocol::WsFlv | Protocol::WsTs | Protocol::WsFmp4 => "ws",
            Protocol::Pull => "pull",
            Protocol::Rtp => "rtp",
            Protocol::Rtc => "rtc",
        }
    }
}

/// Who is on the other end of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Process-wide session id (see [`Registry::next_session_id`]).
    pub id: u64,
    /// The protocol of the session.
    pub protocol: Protocol,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Our local address.
    pub local: SocketAddr,
    /// The raw query string of the URL (`token=abc`), ZLMediaKit's `params`.
    pub params: String,
}

/// A lifecycle event; hooks, the API and metrics subscribe to these.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A stream went live.
    Published {
        /// The stream.
        key: StreamKey,
        /// The publisher.
        publisher: SessionInfo,
    },
    /// A stream's tracks are known or changed (a sequence header arrived).
    TracksChanged {
        /// The stream.
        key: StreamKey,
        /// Its tracks now.
        tracks: Vec<TrackInfo>,
    },
    /// A stream ended.
    Unpublished {
        /// The stream.
        key: StreamKey,
        /// The publisher.
        publisher: SessionInfo,
        /// Media bytes the publisher sent.
        bytes: u64,
        /// How long it was live.
        duration: Duration,
    },
    /// A viewer started reading a stream.
    ViewerJoined {
        /// The stream.
        key: StreamKey,
        /// The viewer.
        viewer: SessionInfo,
    },
    /// A viewer stopped reading a stream.
    ViewerLeft {
        /// The stream.
        key: StreamKey,
        /// The viewer.
        viewer: SessionInfo,
        /// Bytes sent to the viewer, as its driver reported them.
        bytes: u64,
        /// How long it watched.
        duration: Duration,
    },
}

/// Why [`Registry::publish`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// Somebody already publishes this key.
    #[error("stream {0} is already publishing")]
    AlreadyPublishing(StreamKey),
}

/// Whether a session publishes or watches a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// It publishes the stream.
    Publisher,
    /// It watches the stream.
    Viewer,
}

/// One publisher or viewer, as [`Registry::sessions`] lists it (getAllSession, kick_session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSnapshot {
    /// Who it is.
    pub info: SessionInfo,
    /// The stream it publishes or watches.
    pub key: StreamKey,
    /// Publisher or viewer.
    pub role: Role,
    /// When it started.
    pub started: SystemTime,
    /// Bytes it sent (publisher: media received; viewer: bytes sent to it).
    pub bytes: u64,
}

struct SessionEntry {
    info: SessionInfo,
    key: StreamKey,
    role: Role,
    started: SystemTime,
    bytes: Arc<AtomicU64>,
    kick: watch::Sender<bool>,
}

/// A cheap-to-clone handle on the set of live streams.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: RegistryConfig,
    // A std Mutex: it is held only for map look-ups and inserts, never across an `.await`,
    // so it cannot stall the runtime (mini-redis `Db` reasoning).
    streams: Mutex<HashMap<StreamKey, Arc<Stream>>>,
    /// Every publisher and viewer, by session id. A std Mutex for the same reason.
    sessions: Mutex<HashMap<u64, SessionEntry>>,
    events: broadcast::Sender<Event>,
    next_id: AtomicU64,
    /// Media bytes received from every publisher since the start.
    pub(crate) bytes_in: AtomicU64,
    /// Bytes sent to the viewers that have left (as drivers counted them).
    bytes_out_done: AtomicU64,
}

impl Inner {
    fn streams(&self) -> MutexGuard<'_, HashMap<StreamKey, Arc<Stream>>> {
        // A panic while holding the lock cannot leave the map half-updated (each operation is a
        // single insert or remove), so a poisoned lock is safe to keep using.
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn emit(&self, event: Event) {
        // No receiver is not an error: nobody listens yet.
        let _ = self.events.send(event);
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<u64, SessionEntry>> {
        // Single inserts and removes: a poisoned lock cannot hold a half-made entry.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lists a session; the receiver turns true when it is kicked.
    pub(crate) fn add_session(
        &self,
        info: &SessionInfo,
        key: &StreamKey,
        role: Role,
        bytes: &Arc<AtomicU64>,
    ) -> watch::Receiver<bool> {
        let (kick, kicked) = watch::channel(false);
        self.sessions().insert(
            info.id,
            SessionEntry {
                info: info.clone(),
                key: key.clone(),
                role,
                started: SystemTime::now(),
                bytes: Arc::clone(bytes),
                kick,
            },
        );
        kicked
    }

    pub(crate) fn remove_session(&self, id: u64) {
        // A viewer's bytes join the total when it leaves (under the table's lock, so
        // `traffic` sees each viewer once): counting them as they are sent would put one
        // atomic every viewer writes to on the fan-out's hot path.
        let mut sessions = self.sessions();
        if let Some(entry) = sessions.remove(&id) {
            if entry.role == Role::Viewer {
                self.bytes_out_done
                    .fetch_add(entry.bytes.load(Ordering::Relaxed), Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn remove(&self, key: &StreamKey, stream: &Arc<Stream>) {
        let mut streams = self.streams();
        if streams.get(key).is_some_and(|s| Arc::ptr_eq(s, stream)) {
            streams.remove(key);
        }
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(RegistryConfig::default())
    }
}

impl Registry {
    /// An empty registry.
    pub fn new(config: RegistryConfig) -> Self {
        let (events, _) = broadcast::channel(config.event_capacity.max(1));
        Registry {
            inner: Arc::new(Inner {
                config,
                streams: Mutex::new(HashMap::new()),
                sessions: Mutex::new(HashMap::new()),
                events,
                next_id: AtomicU64::new(1),
                bytes_in: AtomicU64::new(0),
                bytes_out_done: AtomicU64::new(0),
            }),
        }
    }

    /// The bounds every stream's ring has; outputs that fan a stream out again use the same.
    pub fn fanout_limits(&self) -> FanoutLimits {
        self.inner.config.fanout
    }

    /// A fresh process-wide session id.
    pub fn next_session_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Lifecycle events from now on. A receiver that falls more than the channel's capacity
    /// behind gets `RecvError::Lagged` and misses those events.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Makes `key` live with `publisher` as its only publisher, with default
    /// [`StreamOptions`] but no `continue_push`: the stream ends when the guard drops. See
    /// [`Registry::publish_with`].
    pub fn publish(
        &self,
        key: StreamKey,
        publisher: SessionInfo,
    ) -> Result<PublisherGuard, PublishError> {
        let options = StreamOptions {
            continue_push: Duration::ZERO,
            ..StreamOptions::default()
        };
        self.publish_with(key, publisher, options)
    }

    /// Makes `key` live with `publisher` as its only publisher. Call it after admission (the
    /// on_publish hook) succeeded. Dropping the guard unpublishes (or, with
    /// `options.continue_push`, keeps the stream that long for the publisher to resume: a
    /// publish of the same key meanwhile takes it over, viewers still attached).
    pub fn publish_with(
        &self,
        key: StreamKey,
        publisher: SessionInfo,
        options: StreamOptions,
    ) -> Result<PublisherGuard, PublishError> {
        let stream = {
            let mut streams = self.inner.streams();
            if let Some(stream) = streams.get(&key) {
                if stream.reclaim(publisher.clone(), options) {
                    tracing::info!(stream = %key, peer = %publisher.peer, "stream resumed by a new publisher");
                    return Ok(PublisherGuard::new(
                        Arc::clone(stream),
                        Arc::clone(&self.inner),
                    ));
                }
                return Err(PublishError::AlreadyPublishing(key));
            }
            let stream = Arc::new(Stream::new(
                key.clone(),
                publisher.clone(),
                options,
                &self.inner.config,
            ));
            streams.insert(key.clone(), Arc::clone(&stream));
            stream
        };
        tracing::info!(stream = %key, peer = %publisher.peer, "stream published");
        self.inner.emit(Event::Published { key, publisher });
        Ok(PublisherGuard::new(stream, Arc::clone(&self.inner)))
    }

    /// A viewer joins a live stream: `None` when `key` is not live or not served over the
    /// viewer's protocol ([`StreamOptions::serves`]).
    pub fn join(&self, key: &StreamKey, viewer: SessionInfo) -> Option<Viewer> {
        let stream = self.inner.streams().get(key).cloned()?;
        if !stream.lock().options.serves(viewer.protocol) {
            return None;
        }
        Some(Viewer::new(stream, viewer, Arc::clone(&self.inner)))
    }

    /// Reads a live stream's frames for an output that muxes it once for many viewers: not a
    /// viewer itself, so it is not counted in `readers` and emits no viewer events. `None` when
    /// `key` is not live.
    pub fn subscribe_output(&self, key: &StreamKey) -> Option<StreamReader> {
        let stream = self.inner.streams().get(key).cloned()?;
        Some(StreamReader::new(stream))
    }

    /// Every publisher and viewer now.
    pub fn sessions(&self) -> Vec<SessionSnapshot> {
        self.inner
            .sessions()
            .values()
            .map(|e| SessionSnapshot {
                info: e.info.clone(),
                key: e.key.clone(),
                role: e.role,
                started: e.started,
                bytes: e.bytes.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Asks session `id` to end: a viewer's [`Viewer::kicked`] resolves, a publisher's
    /// [`PublisherGuard::closed`] does. False when no such session is listed.
    pub fn kick(&self, id: u64) -> bool {
        match self.inner.sessions().get(&id) {
            Some(entry) => {
                entry.kick.send_replace(true);
                true
            }
            None => false,
        }
    }

    /// Like [`Registry::join`], but waits up to `timeout` for `key` to be published (a viewer
    /// may arrive before its publisher; ZLMediaKit's `maxStreamWaitMS`).
    pub async fn wait_for(
        &self,
        key: &StreamKey,
        viewer: SessionInfo,
        timeout: Duration,
    ) -> Option<Viewer> {
        // Subscribe to events before looking, so a publish between the look and the wait is
        // not missed.
        let mut events = self.events();
        if let Some(joined) = self.join(key, viewer.clone()) {
            return Some(joined);
        }
        let wait = async {
            loop {
                match events.recv().await {
                    Ok(Event::Published { key: k, .. }) if &k == key => return,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        if self.is_live(key) {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.ok()?;
        self.join(key, viewer)
    }

    /// Ends `key`: its publisher is asked to leave ([`PublisherGuard::closed`]); a stream whose
    /// publisher already dropped ends at once. Returns false when `key` is not live.
    pub fn close(&self, key: &StreamKey) -> bool {
        let Some(stream) = self.inner.streams().get(key).cloned() else {
            return false;
        };
        stream.request_close(&self.inner);
        true
    }

    /// The tracks of `key` once they are known: at once when it has audio and video, otherwise
    /// `late_track` after the first one shows up (a second may follow), or `None` when the
    /// stream is not live or has no track within `timeout`. Outputs that must know every
    /// track before they write a header (RTSP's SDP, MP4, HLS) wait here.
    pub async fn tracks_ready(
        &self,
        key: &StreamKey,
        late_track: Duration,
        timeout: Duration,
    ) -> Option<Vec<TrackInfo>> {
        let start = tokio::time::Instant::now();
        let mut first_seen = None;
        loop {
            let tracks = self.stream(key)?.tracks;
            let has = |kind| tracks.iter().any(|t| t.kind() == kind);
            if has(media::TrackKind::Video) && has(media::TrackKind::Audio) {
                return Some(tracks);
            }
            if !tracks.is_empty() {
                let since = *first_seen.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() >= late_track {
                    return Some(tracks);
                }
            } else if start.elapsed() >= timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether `key` is live.
    pub fn is_live(&self, key: &StreamKey) -> bool {
        self.inner.streams().contains_key(key)
    }

    /// Bytes received from publishers and sent to viewers since the start: `(in, out)`.
    pub fn traffic(&self) -> (u64, u64) {
        // The viewers there now and those gone, read under the table's lock (a leaving
        // viewer moves from one to the other under it).
        let sessions = self.inner.sessions();
        let live: u64 = sessions
            .values()
            .filter(|e| e.role == Role::Viewer)
            .map(|e| e.bytes.load(Ordering::Relaxed))
            .sum();
        let gone = self.inner.bytes_out_done.load(Ordering::Relaxed);
        drop(sessions);
        (self.inner.bytes_in.load(Ordering::Relaxed), live + gone)
    }

    /// A snapshot of every live stream.
    pub fn streams(&self) -> Vec<StreamInfo> {
        let streams: Vec<Arc<Stream>> = self.inner.streams().values().cloned().collect();
        streams.iter().map(|s| s.info()).collect()
    }

    /// A snapshot of one live stream.
    pub fn stream(&self, key: &StreamKey) -> Option<StreamInfo> {
        let stream = self.inner.streams().get(key).cloned()?;
        Some(stream.info())
    }
}

#[cfg(test)]
mod tests;
