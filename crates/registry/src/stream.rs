//! One live stream: its tracks, metadata, ring and publisher guard.

use crate::fanout::{Fanout, FanoutStats};
use crate::reader::Item;
use crate::{Event, Inner, RegistryConfig, SessionInfo, StreamOptions};
use media::{Frame, Metadata, StreamKey, TrackInfo, TrackKind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// A snapshot of a live stream for the API and hooks.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    /// The stream.
    pub key: StreamKey,
    /// The publisher.
    pub publisher: SessionInfo,
    /// Its tracks.
    pub tracks: Vec<TrackInfo>,
    /// When it went live.
    pub created: SystemTime,
    /// How long it has been live.
    pub alive: Duration,
    /// Media bytes received from the publisher.
    pub bytes_in: u64,
    /// Viewers now.
    pub readers: usize,
    /// Viewers ever.
    pub total_readers: u64,
    /// Its settings (`[protocol]` and the on_publish reply).
    pub options: StreamOptions,
    /// Frame counts and timing per track, in the order of `tracks`.
    pub stats: Vec<TrackStats>,
    /// The publisher dropped and the stream waits `continue_push` for it to come back.
    pub orphaned: bool,
    /// How full the stream's ring is.
    pub ring: FanoutStats,
    /// Where a pulled stream comes from (ZLMediaKit's `originUrl` of a proxy), without
    /// credentials; `None` for a pushed stream.
    pub origin_url: Option<String>,
}

/// Frame counts and timing of one track, for the hooks' and API's stream descriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackStats {
    /// The track.
    pub kind: TrackKind,
    /// Frames pushed.
    pub frames: u64,
    /// Keyframes pushed (video).
    pub key_frames: u64,
    /// Decode timestamp of the first frame (ms, rebased).
    pub first_dts: u64,
    /// Decode timestamp of the last frame (ms, rebased).
    pub last_dts: u64,
    /// Frames in the last complete GOP (video).
    pub gop_size: u64,
    /// Milliseconds between the last two keyframes (video).
    pub gop_interval_ms: u64,
    frames_since_key: u64,
    last_key_dts: Option<u64>,
}

impl TrackStats {
    fn new(kind: TrackKind) -> Self {
        TrackStats {
            kind,
            frames: 0,
            key_frames: 0,
            first_dts: 0,
            last_dts: 0,
            gop_size: 0,
            gop_interval_ms: 0,
            frames_since_key: 0,
            last_key_dts: None,
        }
    }

    /// Milliseconds between the first and the last frame.
    pub fn duration_ms(&self) -> u64 {
        self.last_dts.saturating_sub(self.first_dts)
    }

    /// Frames per second measured over the frames so far (0 before two frames).
    pub fn fps(&self) -> f64 {
        let ms = self.duration_ms();
        if self.frames < 2 || ms == 0 {
            return 0.0;
        }
        (self.frames - 1) as f64 * 1000.0 / ms as f64
    }

    fn count(&mut self, frame: &Frame) {
        if self.frames == 0 {
            self.first_dts = frame.dts;
        }
        self.frames += 1;
        self.last_dts = frame.dts;
        if self.kind == TrackKind::Video && frame.keyframe {
            self.key_frames += 1;
            if let Some(last) = self.last_key_dts {
                self.gop_size = self.frames_since_key;
                self.gop_interval_ms = frame.dts.saturating_sub(last);
            }
            self.last_key_dts = Some(frame.dts);
            self.frames_since_key = 0;
        }
        self.frames_since_key += 1;
    }
}

pub(crate) struct Stream {
    pub(crate) key: StreamKey,
    created: SystemTime,
    started: Instant,
    // A std Mutex, held only while a frame is counted and put on the ring (or a reader takes
    // its place in it), never across an `.await`. Holding it across the push is what lets a new
    // reader take the header and its start in the ring atomically.
    state: Mutex<State>,
    pub(crate) readers: AtomicUsize,
    pub(crate) total_readers: AtomicU64,
    /// Media bytes from the publishers (shared with the session table).
    bytes_in: Arc<AtomicU64>,
    /// Turned true to ask the publisher to leave ([`crate::Registry::close`]).
    pub(crate) close: watch::Sender<bool>,
}

pub(crate) struct State {
    pub(crate) publisher: SessionInfo,
    pub(crate) options: StreamOptions,
    /// The publisher dropped; the stream waits for it (`continue_push`).
    orphaned: bool,
    /// Bumped each time a publisher takes the stream over, so a stale expiry timer is ignored.
    generation: u64,
    stats: Vec<TrackStats>,
    pub(crate) tracks: Vec<TrackInfo>,
    pub(crate) metadata: Option<Metadata>,
    /// The ring every viewer and output reads, bounded in bytes and count; from its last video
    /// keyframe it is also the GOP cache a new viewer starts with.
    pub(crate) fanout: Fanout<Item>,
    /// Set once the stream ended (the fan-out is closed).
    ended: bool,
    rebase: Rebaser,
    max_video_frame: usize,
    max_audio_frame: usize,
    /// Frames refused for their size (logged on the first and every 100th).
    oversized: u64,
    /// See [`StreamInfo::origin_url`].
    origin_url: Option<String>,
}

impl Stream {
    pub(crate) fn new(
        key: StreamKey,
        publisher: SessionInfo,
        options: StreamOptions,
        config: &RegistryConfig,
    ) -> Self {
        Stream {
            key,
            created: SystemTime::now(),
            started: Instant::now(),
            close: watch::Sender::new(false),
            state: Mutex::new(State {
                publisher,
                options,
                orphaned: false,
                generation: 0,
                stats: Vec::new(),
                tracks: Vec::new(),
                metadata: None,
                fanout: Fanout::new(config.fanout),
                ended: false,
                rebase: Rebaser::new(config.jump_threshold_ms),
                max_video_frame: config.max_video_frame,
                max_audio_frame: config.max_audio_frame,
                oversized: 0,
                origin_url: None,
            }),
            readers: AtomicUsize::new(0),
            total_readers: AtomicU64::new(0),
            bytes_in: Arc::new(AtomicU64::new(0)),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves State consistent before it can panic, so a poisoned
        // lock is safe to keep using.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn info(&self) -> StreamInfo {
        let state = self.lock();
        let tracks = state.tracks.clone();
        let stats = tracks
            .iter()
            .map(|t| {
                let kind = t.kind();
                state
                    .stats
                    .iter()
                    .find(|s| s.kind == kind)
                    .copied()
                    .unwrap_or_else(|| TrackStats::new(kind))
            })
            .collect();
        StreamInfo {
            key: self.key.clone(),
            publisher: state.publisher.clone(),
            options: state.options.clone(),
            orphaned: state.orphaned,
            origin_url: state.origin_url.clone(),
            stats,
            tracks,
            created: self.created,
            alive: self.started.elapsed(),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            readers: self.readers.load(Ordering::Relaxed),
            total_readers: self.total_readers.load(Ordering::Relaxed),
            ring: state.fanout.stats(),
        }
    }

    /// A new publisher takes over an orphaned stream: viewers stay, timestamps go on from
    /// where the last publisher stopped.
    pub(crate) fn reclaim(&self, publisher: SessionInfo, options: StreamOptions) -> bool {
        let mut state = self.lock();
        if !state.orphaned {
            return false;
        }
        state.orphaned = false;
        state.generation += 1;
        state.publisher = publisher;
        state.options = options;
        state.rebase.resume();
        // The new publisher's first frames follow; what the old one left cannot start a viewer.
        state.fanout.reset_gop();
        self.close.send_replace(false);
        true
    }

    /// Asks the publisher to leave; an orphaned stream ends at once.
    pub(crate) fn request_close(self: &Arc<Self>, registry: &Arc<Inner>) {
        let orphaned = self.lock().orphaned;
        if orphaned {
            self.end(registry);
        } else {
            self.close.send_replace(true);
        }
    }

    /// Unpublishes: every viewer ends once it has read what is left, the key is free again.
    fn end(self: &Arc<Self>, registry: &Arc<Inner>) {
        let publisher = {
            let mut state = self.lock();
            if state.ended {
                return; // already ended
            }
            // Closing the ring ends every viewer's `recv` once it has read what is left.
            state.ended = true;
            state.fanout.close();
            state.orphaned = false;
            state.publisher.clone()
        };
        registry.remove(&self.key, self);
        tracing::info!(stream = %self.key, "stream unpublished");
        registry.emit(Event::Unpublished {
            key: self.key.clone(),
            publisher,
            bytes: self.bytes_in.load(Ordering::Relaxed),
            duration: self.started.elapsed(),
        });
    }
}

/// Held by the publishing session; dropping it unpublishes the stream and ends every viewer,
/// unless the stream's `continue_push` keeps it for the publisher to come back (see
/// [`PublisherGuard::finish`]).
pub struct PublisherGuard {
    stream: Arc<Stream>,
    registry: Arc<Inner>,
    close: watch::Receiver<bool>,
    /// Turns true when the API kicks this publisher's session.
    kick: watch::Receiver<bool>,
    session: u64,
    finished: bool,
}

impl PublisherGuard {
    /// The guard of the stream's current publisher, listed in the session table.
    pub(crate) fn new(stream: Arc<Stream>, registry: Arc<Inner>) -> Self {
        let close = stream.close.subscribe();
        let publisher = stream.lock().publisher.clone();
        let kick = registry.add_session(
            &publisher,
            &stream.key,
            crate::Role::Publisher,
            &stream.bytes_in,
        );
        PublisherGuard {
            stream,
            registry,
            close,
            kick,
            session: publisher.id,
            finished: false,
        }
    }

    /// The stream this guard publishes.
    pub fn key(&self) -> &StreamKey {
        &self.stream.key
    }

    /// The stream's settings.
    pub fn options(&self) -> StreamOptions {
        self.stream.lock().options.clone()
    }

    /// The publisher said it stops (RTMP FCUnpublish/deleteStream, RTSP TEARDOWN): the stream
    /// ends now, `continue_push` does not apply.
    pub fn finish(mut self) {
        self.finished = true;
    }

    /// Resolves when the stream must end (on_stream_none_reader answered `close`, the API closed
    /// it or kicked its publisher): the publishing session should then disconnect.
    pub async fn closed(&mut self) {
        // An error means the sender is gone, which cannot happen while the stream lives.
        tokio::select! {
            _ = self.close.wait_for(|close| *close) => {}
            _ = self.kick.wait_for(|kicked| *kicked) => {}
        }
    }

    /// Records where a pulled stream comes from (see [`StreamInfo::origin_url`]).
    pub fn set_origin_url(&self, url: impl Into<String>) {
        self.stream.lock().origin_url = Some(url.into());
    }

    /// The publisher reconnected to its source (a pull proxy after a camera restart): the
    /// source's timestamps start over, so the next frame continues the stream's timeline from
    /// its last frame, and a new viewer waits for the next keyframe rather than starting at
    /// frames from before the break.
    pub fn resume(&self) {
        let mut state = self.stream.lock();
        state.rebase.resume();
        state.fanout.reset_gop();
    }

    /// Whether the stream must end now (what [`PublisherGuard::closed`] waits for).
    pub fn is_closed(&self) -> bool {
        *self.close.borrow() || *self.kick.borrow()
    }

    /// The session that publishes.
    pub fn session(&self) -> SessionInfo {
        self.stream.lock().publisher.clone()
    }

    /// Adds a track or replaces the track of the same kind (a new sequence header). Audio is
    /// ignored when the stream's `enable_audio` is off.
    pub fn set_track(&self, track: TrackInfo) {
        let tracks = {
            let mut state = self.stream.lock();
            let kind = track.kind();
            if kind == TrackKind::Audio && !state.options.enable_audio {
                return;
            }
            if let Some(t) = state.tracks.iter_mut().find(|t| t.kind() == kind) {
                if *t == track {
                    return;
                }
                *t = track.clone();
            } else {
                state.tracks.push(track.clone());
            }
            if kind == TrackKind::Video {
                // Frames before the new configuration cannot be decoded with it.
                state.fanout.reset_gop();
            }
            state.update_header();
            let size = track.config.len();
            state.fanout.push(Item::Track(track), size, false);
            state.tracks.clone()
        };
        self.registry.emit(Event::TracksChanged {
            key: self.stream.key.clone(),
            tracks,
        });
    }

    /// Sets the stream's metadata (what RTMP's `onMetaData` carried), which players that have
    /// a place for it get first.
    pub fn set_metadata(&self, metadata: Metadata) {
        let mut state = self.stream.lock();
        state.metadata = Some(metadata.clone());
        state.update_header();
        let size = metadata
            .0
            .iter()
            .map(|(k, v)| {
                k.len()
                    + match v {
                        media::MetaValue::Text(t) => t.len(),
                        _ => 8,
                    }
            })
            .sum();
        state.fanout.push(Item::Metadata(metadata), size, false);
    }

    /// Sends a frame to every reader: rebases its timestamp and puts it on the stream's ring.
    /// A frame larger than its codec's limit ([`RegistryConfig::max_video_frame`],
    /// [`RegistryConfig::max_audio_frame`]) is dropped.
    pub fn push(&self, mut frame: Frame) {
        let len = frame.data.len() as u64;
        self.stream.bytes_in.fetch_add(len, Ordering::Relaxed);
        self.registry.bytes_in.fetch_add(len, Ordering::Relaxed);
        let mut state = self.stream.lock();
        let kind = frame.kind();
        if kind == TrackKind::Audio && !state.options.enable_audio {
            return;
        }
        let limit = match kind {
            TrackKind::Video => state.max_video_frame,
            TrackKind::Audio => state.max_audio_frame,
        };
        if frame.data.len() > limit {
            state.oversized += 1;
            if state.oversized % 100 == 1 {
                tracing::warn!(
                    stream = %self.stream.key,
                    codec = ?frame.codec,
                    bytes = frame.data.len(),
                    limit,
                    refused = state.oversized,
                    "frame over the size limit dropped"
                );
            }
            return;
        }
        frame.dts = state.rebase.rebase(frame.dts);
        match state.stats.iter_mut().find(|s| s.kind == kind) {
            Some(stats) => stats.count(&frame),
            None => {
                let mut stats = TrackStats::new(kind);
                stats.count(&frame);
                state.stats.push(stats);
            }
        }
        let has_video = state.tracks.iter().any(|t| t.kind() == TrackKind::Video);
        // A reader may start at a video keyframe, or at any frame of an audio-only stream.
        let starts_gop = if has_video {
            kind == TrackKind::Video && frame.keyframe
        } else {
            true
        };
        let size = frame.data.len();
        state.fanout.push(Item::Frame(frame), size, starts_gop);
    }
}

impl Drop for PublisherGuard {
    fn drop(&mut self) {
        self.registry.remove_session(self.session);
        let hold = if self.finished || *self.close.borrow() || *self.kick.borrow() {
            Duration::ZERO
        } else {
            self.stream.lock().options.continue_push
        };
        // Keeping the stream needs a timer to end it later; without a runtime, end it now.
        if let (false, Ok(runtime)) = (hold.is_zero(), tokio::runtime::Handle::try_current()) {
            let generation = {
                let mut state = self.stream.lock();
                state.orphaned = true;
                state.generation
            };
            tracing::info!(stream = %self.stream.key, "publisher gone; stream kept {hold:?} for it to resume");
            let (stream, registry) = (Arc::clone(&self.stream), Arc::clone(&self.registry));
            runtime.spawn(async move {
                tokio::time::sleep(hold).await;
                let expired = {
                    let state = stream.lock();
                    state.orphaned && state.generation == generation
                };
                if expired {
                    stream.end(&registry);
                }
            });
            return;
        }
        self.stream.end(&self.registry);
    }
}

impl State {
    /// What a new viewer gets before the ring: the metadata and every track.
    fn update_header(&mut self) {
        let header = self
            .metadata
            .iter()
            .cloned()
            .map(Item::Metadata)
            .chain(self.tracks.iter().cloned().map(Item::Track))
            .collect();
        self.fanout.set_header(header);
    }
}

/// Keeps a stream's timestamps monotonic from 0: a step larger than the threshold in either
/// direction (a publisher restarting its clock, an RTMP 32-bit wrap) continues from the last
/// output timestamp instead of being passed on.
#[derive(Debug)]
pub(crate) struct Rebaser {
    threshold: u64,
    last_in: Option<u64>,
    last_out: u64,
    offset: i128,
    /// A frame went out: a new publisher's first one comes a millisecond after it, never at
    /// the same instant (a player would see two frames with one timestamp).
    emitted: bool,
}

impl Rebaser {
    pub(crate) fn new(threshold_ms: u64) -> Self {
        Rebaser {
            threshold: threshold_ms,
            last_in: None,
            last_out: 0,
            offset: 0,
            emitted: false,
        }
    }

    /// A new publisher took over: its first timestamp continues from the last output.
    pub(crate) fn resume(&mut self) {
        self.last_in = None;
    }

    pub(crate) fn rebase(&mut self, dts: u64) -> u64 {
        match self.last_in {
            None => {
                let next = self.last_out + u64::from(self.emitted);
                self.offset = i128::from(next) - i128::from(dts);
            }
            Some(last) if last.abs_diff(dts) > self.threshold => {
                tracing::debug!(from = last, to = dts, "timestamp jump rebased");
                self.offset = i128::from(self.last_out) - i128::from(dts);
            }
            Some(_) => {}
        }
        self.last_in = Some(dts);
        let out = (i128::from(dts) + self.offset).clamp(0, i128::from(u64::MAX)) as u64;
        self.last_out = self.last_out.max(out);
        self.emitted = true;
        out
    }
}
