//! One live stream: its tracks, metadata, GOP cache, ring and publisher guard.

use crate::subscription::Item;
use crate::{Event, Inner, RegistryConfig, SessionInfo};
use bytes::Bytes;
use media::{Frame, StreamKey, TrackInfo, TrackKind};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::broadcast;

/// A track of a stream with its FLV sequence-header tag body, muxed once per stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// Codec and configuration.
    pub info: TrackInfo,
    /// The FLV tag body announcing this track (AVC/HEVC/AAC sequence header); empty for codecs
    /// that have none (G.711, MP3).
    pub flv: Bytes,
}

/// One frame as it fans out: the codec-neutral frame and its complete FLV tag, both made once
/// per stream and shared by every viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The frame; its `dts` is rebased by the registry to be monotonic.
    pub frame: Frame,
    /// The whole FLV tag of this frame (tag header, body, PreviousTagSize) at the rebased
    /// timestamp: HTTP-FLV viewers send it as is.
    pub flv: Bytes,
}

const FLV_TAG_HEADER: usize = 11;
const FLV_PREV_SIZE: usize = 4;

impl Packet {
    /// The FLV tag body (the RTMP message payload), a zero-copy slice of [`Packet::flv`].
    pub fn flv_body(&self) -> Bytes {
        let end = self.flv.len().saturating_sub(FLV_PREV_SIZE);
        self.flv.slice(FLV_TAG_HEADER.min(end)..end)
    }

    /// The FLV tag type: 8 audio, 9 video.
    pub fn flv_tag_type(&self) -> u8 {
        match self.frame.kind() {
            TrackKind::Audio => 8,
            TrackKind::Video => 9,
        }
    }
}

/// Writes one FLV tag (Adobe FLV spec v10.1 §E.4.1): TagType, DataSize (UI24), Timestamp
/// (UI24 + TimestampExtended), StreamID 0, the body, then PreviousTagSize (UI32).
pub fn flv_tag(tag_type: u8, timestamp: u32, body: &[u8]) -> Bytes {
    let size = (body.len() as u32).min(0x00ff_ffff);
    let mut out = Vec::with_capacity(FLV_TAG_HEADER + body.len() + FLV_PREV_SIZE);
    out.push(tag_type);
    out.extend_from_slice(&size.to_be_bytes()[1..]);
    out.extend_from_slice(&timestamp.to_be_bytes()[1..]);
    out.push((timestamp >> 24) as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(body);
    out.extend_from_slice(&(body.len() as u32 + FLV_TAG_HEADER as u32).to_be_bytes());
    Bytes::from(out)
}

/// A snapshot of a live stream for the API and hooks.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    /// The stream.
    pub key: StreamKey,
    /// The publisher.
    pub publisher: SessionInfo,
    /// Its tracks.
    pub tracks: Vec<Track>,
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
}

pub(crate) struct Stream {
    pub(crate) key: StreamKey,
    pub(crate) publisher: SessionInfo,
    created: SystemTime,
    started: Instant,
    // A std Mutex, held only while a packet is appended to the GOP cache and sent to the ring
    // (or a viewer snapshots the cache), never across an `.await`. Holding it across the send
    // is what lets a new viewer take the cache and its ring position atomically.
    state: Mutex<State>,
    pub(crate) readers: AtomicUsize,
    pub(crate) total_readers: AtomicU64,
    bytes_in: AtomicU64,
}

pub(crate) struct State {
    pub(crate) tracks: Vec<Track>,
    pub(crate) metadata: Option<Bytes>,
    /// Packets since the last video keyframe (empty while broken or for audio-only streams).
    pub(crate) gop: VecDeque<Packet>,
    gop_bytes: usize,
    gop_broken: bool,
    pub(crate) tx: Option<broadcast::Sender<Item>>,
    rebase: Rebaser,
    gop_max_packets: usize,
    gop_max_bytes: usize,
}

impl Stream {
    pub(crate) fn new(key: StreamKey, publisher: SessionInfo, config: &RegistryConfig) -> Self {
        let (tx, _) = broadcast::channel(config.ring_capacity.max(16));
        Stream {
            key,
            publisher,
            created: SystemTime::now(),
            started: Instant::now(),
            state: Mutex::new(State {
                tracks: Vec::new(),
                metadata: None,
                gop: VecDeque::new(),
                gop_bytes: 0,
                gop_broken: false,
                tx: Some(tx),
                rebase: Rebaser::new(config.jump_threshold_ms),
                gop_max_packets: config.gop_max_packets,
                gop_max_bytes: config.gop_max_bytes,
            }),
            readers: AtomicUsize::new(0),
            total_readers: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves State consistent before it can panic (push then send),
        // so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn has_video(&self) -> bool {
        self.lock()
            .tracks
            .iter()
            .any(|t| t.info.kind() == TrackKind::Video)
    }

    pub(crate) fn info(&self) -> StreamInfo {
        let tracks = self.lock().tracks.clone();
        StreamInfo {
            key: self.key.clone(),
            publisher: self.publisher.clone(),
            tracks,
            created: self.created,
            alive: self.started.elapsed(),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            readers: self.readers.load(Ordering::Relaxed),
            total_readers: self.total_readers.load(Ordering::Relaxed),
        }
    }
}

/// Held by the publishing session; dropping it unpublishes the stream and ends every viewer.
pub struct PublisherGuard {
    stream: Arc<Stream>,
    registry: Arc<Inner>,
}

impl PublisherGuard {
    pub(crate) fn new(stream: Arc<Stream>, registry: Arc<Inner>) -> Self {
        PublisherGuard { stream, registry }
    }

    /// The stream this guard publishes.
    pub fn key(&self) -> &StreamKey {
        &self.stream.key
    }

    /// Adds a track or replaces the track of the same kind (a new sequence header).
    pub fn set_track(&self, track: Track) {
        let tracks = {
            let mut state = self.stream.lock();
            let kind = track.info.kind();
            if let Some(t) = state.tracks.iter_mut().find(|t| t.info.kind() == kind) {
                if *t == track {
                    return;
                }
                *t = track.clone();
            } else {
                state.tracks.push(track.clone());
            }
            if kind == TrackKind::Video {
                // Frames before the new configuration cannot be decoded with it.
                state.clear_gop();
            }
            if let Some(tx) = &state.tx {
                let _ = tx.send(Item::Track(track));
            }
            state.tracks.clone()
        };
        self.registry.emit(Event::TracksChanged {
            key: self.stream.key.clone(),
            tracks,
        });
    }

    /// Sets the stream's metadata (the AMF0 `onMetaData` body players get first).
    pub fn set_metadata(&self, metadata: Bytes) {
        let mut state = self.stream.lock();
        state.metadata = Some(metadata.clone());
        if let Some(tx) = &state.tx {
            let _ = tx.send(Item::Metadata(metadata));
        }
    }

    /// Sends a frame to every viewer: rebases its timestamp, wraps `flv_body` (the frame's FLV
    /// tag body, i.e. the RTMP message payload) into an FLV tag once for all viewers, and keeps
    /// the GOP cache.
    pub fn push(&self, mut frame: Frame, flv_body: &[u8]) {
        self.stream
            .bytes_in
            .fetch_add(frame.data.len() as u64, Ordering::Relaxed);
        let mut state = self.stream.lock();
        frame.dts = state.rebase.rebase(frame.dts);
        let tag_type = match frame.kind() {
            TrackKind::Audio => 8,
            TrackKind::Video => 9,
        };
        let flv = flv_tag(tag_type, frame.dts as u32, flv_body);
        let packet = Packet { frame, flv };
        let has_video = state
            .tracks
            .iter()
            .any(|t| t.info.kind() == TrackKind::Video);
        if has_video {
            state.cache(&packet);
        }
        if let Some(tx) = &state.tx {
            // An error means no viewer right now, which is fine.
            let _ = tx.send(Item::Packet(packet));
        }
    }
}

impl Drop for PublisherGuard {
    fn drop(&mut self) {
        // Closing the ring ends every viewer's `recv` once it has read what is left.
        self.stream.lock().tx = None;
        self.registry.remove(&self.stream.key, &self.stream);
        tracing::info!(stream = %self.stream.key, "stream unpublished");
        self.registry.emit(Event::Unpublished {
            key: self.stream.key.clone(),
            publisher: self.stream.publisher.clone(),
            bytes: self.stream.bytes_in.load(Ordering::Relaxed),
            duration: self.stream.started.elapsed(),
        });
    }
}

impl State {
    fn clear_gop(&mut self) {
        self.gop.clear();
        self.gop_bytes = 0;
    }

    /// Keeps packets from the last video keyframe on, within the configured bounds.
    fn cache(&mut self, packet: &Packet) {
        let is_video = packet.frame.kind() == TrackKind::Video;
        if is_video && packet.frame.keyframe {
            self.clear_gop();
            self.gop_broken = false;
        }
        if self.gop_broken || (self.gop.is_empty() && !(is_video && packet.frame.keyframe)) {
            return;
        }
        if self.gop.len() >= self.gop_max_packets
            || self.gop_bytes + packet.frame.data.len() > self.gop_max_bytes
        {
            // An endless GOP would grow without bound; give up on it until the next keyframe.
            tracing::debug!("GOP cache over its bounds, dropped until the next keyframe");
            self.clear_gop();
            self.gop_broken = true;
            return;
        }
        self.gop_bytes += packet.frame.data.len();
        self.gop.push_back(packet.clone());
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
}

impl Rebaser {
    pub(crate) fn new(threshold_ms: u64) -> Self {
        Rebaser {
            threshold: threshold_ms,
            last_in: None,
            last_out: 0,
            offset: 0,
        }
    }

    pub(crate) fn rebase(&mut self, dts: u64) -> u64 {
        match self.last_in {
            None => self.offset = -i128::from(dts),
            Some(last) if last.abs_diff(dts) > self.threshold => {
                tracing::debug!(from = last, to = dts, "timestamp jump rebased");
                self.offset = i128::from(self.last_out) - i128::from(dts);
            }
            Some(_) => {}
        }
        self.last_in = Some(dts);
        let out = (i128::from(dts) + self.offset).clamp(0, i128::from(u64::MAX)) as u64;
        self.last_out = self.last_out.max(out);
        out
    }
}
