//! An output's read side of a stream: the stream's frames, in order, on a [`Reader`] of its
//! [`crate::Fanout`] (which carries the start and lag policy).

use crate::fanout::{Ended, Reader};
use crate::stream::Stream;
use media::{Frame, Metadata, StreamKey, TrackInfo};
use std::sync::Arc;

/// What a stream carries, in order: first its metadata and tracks, then frames as the publisher
/// sends them (a track again when its configuration changes). Codec-neutral: no container and
/// no protocol framing.
#[derive(Debug, Clone)]
pub enum Item {
    /// The publisher's stream metadata (sent again when it changes).
    Metadata(Metadata),
    /// A track's configuration (sent again when it changes).
    Track(TrackInfo),
    /// A frame; its `dts` is rebased by the registry to be monotonic.
    Frame(Frame),
}

/// The frames of one live stream for an output that muxes it once for many viewers (see
/// [`crate::Registry::subscribe_output`]). Not a viewer: it is neither counted in `readers` nor
/// reported.
pub struct StreamReader {
    stream: Arc<Stream>,
    reader: Reader<Item>,
}

impl StreamReader {
    pub(crate) fn new(stream: Arc<Stream>) -> Self {
        // Under the stream's lock: no frame is pushed between the header and the start point.
        let reader = stream.lock().fanout.reader();
        StreamReader { stream, reader }
    }

    /// The stream being read.
    pub fn key(&self) -> &StreamKey {
        &self.stream.key
    }

    /// The stream's tracks now.
    pub fn tracks(&self) -> Vec<TrackInfo> {
        self.stream.lock().tracks.clone()
    }

    /// The next item: the metadata and tracks first, then the stream from its last video
    /// keyframe. A reader that fell more than the ring behind skips to the next keyframe; one
    /// that did so too often gets [`Ended::TooSlow`] (the [`crate::Fanout`] policy).
    pub async fn recv(&mut self) -> Result<Item, Ended> {
        self.reader.recv().await
    }

    /// The next item if one is ready now.
    pub fn try_recv(&mut self) -> Option<Result<Item, Ended>> {
        self.reader.try_recv()
    }
}
