//! A viewer's read side of a stream, and the policy for viewers that fall behind.

use crate::stream::{Packet, Stream, Track};
use crate::{Event, Inner, SessionInfo};
use bytes::Bytes;
use media::TrackKind;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::broadcast::{self, error::RecvError};

/// What a viewer reads, in order: first the stream's metadata, tracks and GOP cache, then live
/// items as the publisher sends them.
#[derive(Debug, Clone)]
pub enum Item {
    /// The AMF0 `onMetaData` body.
    Metadata(Bytes),
    /// A track's configuration (sent again when it changes).
    Track(Track),
    /// A frame.
    Packet(Packet),
}

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Ended {
    /// The publisher left.
    #[error("the stream was unpublished")]
    Unpublished,
    /// The viewer fell behind too often and was dropped.
    #[error("the viewer fell behind too often")]
    TooSlow,
}

/// The lag policy of every fan-out ring (the registry's, and the outputs' that mux once per
/// stream): a reader that fell behind skips ahead, and one that does so more than `max` times
/// within `window` is dropped.
#[derive(Debug, Clone)]
pub struct LagTracker {
    lags: VecDeque<Instant>,
    max: usize,
    window: std::time::Duration,
}

impl LagTracker {
    /// A tracker dropping readers that lag more than `max` times within `window`.
    pub fn new(max: usize, window: std::time::Duration) -> Self {
        LagTracker {
            lags: VecDeque::new(),
            max,
            window,
        }
    }

    /// Records one lag; true when the reader has now lagged too often and must be dropped.
    pub fn lagged(&mut self) -> bool {
        let now = Instant::now();
        while self
            .lags
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            self.lags.pop_front();
        }
        self.lags.push_back(now);
        self.lags.len() > self.max
    }

    /// Lags within the window.
    pub fn count(&self) -> usize {
        self.lags.len()
    }
}

/// A viewer's handle on a live stream. Dropping it leaves the stream (and reports the bytes the
/// driver counted with [`Subscription::add_bytes`]).
pub struct Subscription {
    stream: Arc<Stream>,
    registry: Arc<Inner>,
    viewer: SessionInfo,
    pending: VecDeque<Item>,
    rx: Option<broadcast::Receiver<Item>>,
    skipping: bool,
    lags: LagTracker,
    bytes: AtomicU64,
    started: Instant,
    /// A viewer (counted in `readers`, reported as it joins and leaves), or an output that
    /// muxes the stream once for many viewers (not counted).
    counted: bool,
}

impl Subscription {
    pub(crate) fn new(
        stream: Arc<Stream>,
        viewer: SessionInfo,
        registry: Arc<Inner>,
        counted: bool,
    ) -> Self {
        let (pending, rx) = {
            let state = stream.lock();
            let mut pending = VecDeque::with_capacity(state.gop.len() + 3);
            if let Some(m) = &state.metadata {
                pending.push_back(Item::Metadata(m.clone()));
            }
            pending.extend(state.tracks.iter().cloned().map(Item::Track));
            pending.extend(state.gop.iter().cloned().map(Item::Packet));
            // Subscribing under the same lock as the snapshot: nothing is missed or doubled.
            (pending, state.tx.as_ref().map(|tx| tx.subscribe()))
        };
        if counted {
            stream.readers.fetch_add(1, Ordering::Relaxed);
            stream.total_readers.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(stream = %stream.key, viewer = viewer.id, "viewer joined");
            registry.emit(Event::ViewerJoined {
                key: stream.key.clone(),
                viewer: viewer.clone(),
            });
        }
        let lags = LagTracker::new(registry.config.max_lags, registry.config.lag_window);
        Subscription {
            stream,
            registry,
            viewer,
            pending,
            rx,
            skipping: false,
            lags,
            bytes: AtomicU64::new(0),
            started: Instant::now(),
            counted,
        }
    }

    /// The stream being read.
    pub fn key(&self) -> &media::StreamKey {
        &self.stream.key
    }

    /// The tracks known when the viewer joined or since.
    pub fn tracks(&self) -> Vec<Track> {
        self.stream.lock().tracks.clone()
    }

    /// Counts bytes the driver sent to the viewer (reported when it leaves).
    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes counted so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The next item. A viewer that fell more than the ring behind skips to the next video
    /// keyframe (audio-only streams: the next packet); one that did so more than
    /// `max_lags` times within `lag_window` gets [`Ended::TooSlow`].
    pub async fn recv(&mut self) -> Result<Item, Ended> {
        if let Some(item) = self.pending.pop_front() {
            return Ok(item);
        }
        loop {
            let rx = self.rx.as_mut().ok_or(Ended::Unpublished)?;
            match rx.recv().await {
                Ok(Item::Packet(p)) if self.skipping => {
                    let key = p.frame.kind() == TrackKind::Video && p.frame.keyframe;
                    if key || !self.stream.has_video() {
                        self.skipping = false;
                        return Ok(Item::Packet(p));
                    }
                }
                Ok(item) => return Ok(item),
                Err(RecvError::Closed) => {
                    self.rx = None;
                    return Err(Ended::Unpublished);
                }
                Err(RecvError::Lagged(n)) => {
                    if self.lags.lagged() {
                        tracing::warn!(
                            stream = %self.stream.key,
                            viewer = self.viewer.id,
                            "viewer dropped: fell behind {} times in {:?}",
                            self.lags.count(),
                            self.registry.config.lag_window
                        );
                        self.rx = None;
                        return Err(Ended::TooSlow);
                    }
                    tracing::debug!(
                        stream = %self.stream.key,
                        viewer = self.viewer.id,
                        skipped = n,
                        "viewer fell behind, skipping to the next keyframe"
                    );
                    self.skipping = true;
                }
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        self.stream.readers.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(stream = %self.stream.key, viewer = self.viewer.id, "viewer left");
        self.registry.emit(Event::ViewerLeft {
            key: self.stream.key.clone(),
            viewer: self.viewer.clone(),
            bytes: self.bytes.load(Ordering::Relaxed),
            duration: self.started.elapsed(),
        });
    }
}
