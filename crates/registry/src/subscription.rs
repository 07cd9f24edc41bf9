//! A viewer's read side of a stream: a [`Reader`] of the stream's [`crate::Fanout`], which
//! carries the lag policy.

use crate::fanout::{Ended, Reader};
use crate::stream::{Packet, Stream, Track};
use crate::{Event, Inner, SessionInfo};
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

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

/// A viewer's handle on a live stream. Dropping it leaves the stream (and reports the bytes the
/// driver counted with [`Subscription::add_bytes`]).
pub struct Subscription {
    stream: Arc<Stream>,
    registry: Arc<Inner>,
    viewer: SessionInfo,
    reader: Reader<Item>,
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
        // Under the stream's lock: no item is pushed between the header and the start point.
        let reader = stream.lock().fanout.reader();
        if counted {
            stream.readers.fetch_add(1, Ordering::Relaxed);
            stream.total_readers.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(stream = %stream.key, viewer = viewer.id, "viewer joined");
            registry.emit(Event::ViewerJoined {
                key: stream.key.clone(),
                viewer: viewer.clone(),
            });
        }
        Subscription {
            stream,
            registry,
            viewer,
            reader,
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

    /// The next item: the metadata and tracks first, then the stream from its last video
    /// keyframe. A viewer that fell more than the ring behind skips to the next keyframe; one
    /// that did so too often gets [`Ended::TooSlow`] (the [`crate::Fanout`] policy).
    pub async fn recv(&mut self) -> Result<Item, Ended> {
        let item = self.reader.recv().await;
        if matches!(item, Err(Ended::TooSlow)) {
            tracing::warn!(
                stream = %self.stream.key,
                viewer = self.viewer.id,
                "viewer dropped: it fell behind too often"
            );
        }
        item
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
