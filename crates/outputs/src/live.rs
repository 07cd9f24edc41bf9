//! Continuous MPEG-TS (ISO/IEC 13818-1) and fragmented MP4 (ISO/IEC 14496-12) for
//! `/{app}/{stream}.live.ts` and `.live.mp4`, as ZLMediaKit serves them.
//!
//! Each (stream, container) is muxed once into chunks every viewer shares: a frame's TS
//! packets, or an fMP4 fragment of at most [`FRAGMENT_MS`] (a new one at each keyframe), flagged
//! when it starts with a keyframe. The fan-out's header is the container header (fMP4's init
//! segment), so a new viewer gets it, then the chunks since the last keyframe, then the live
//! ones.

use crate::ondemand::{Live, Task};
use bytes::{Bytes, BytesMut};
use hls::TsMuxer;
use media::TrackKind;
use mp4::Fmp4Muxer;
use registry::{Ended, Fanout, Item, Reader, Registry, StreamReader};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// fMP4 fragments are cut at least this often, for latency.
const FRAGMENT_MS: u64 = 100;

/// Which container a live output writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// MPEG-TS.
    Ts,
    /// Fragmented MP4.
    Fmp4,
}

impl Container {
    /// The MIME type of the stream.
    pub fn content_type(self) -> &'static str {
        match self {
            Container::Ts => "video/mp2t",
            Container::Fmp4 => "video/mp4",
        }
    }
}

/// One (stream, container).
pub struct LiveOutput {
    fanout: Fanout<Bytes>,
    _task: Task,
}

impl Live for LiveOutput {
    fn live(&self) -> bool {
        !self.fanout.is_closed()
    }
}

enum Muxer {
    Ts(TsMuxer),
    Fmp4(Box<Fmp4Muxer>),
}

impl LiveOutput {
    /// Starts muxing `key` into `container` once its tracks are known; `None` when the stream
    /// is not live or has no track the container carries.
    pub(crate) async fn start(
        registry: &Registry,
        key: &media::StreamKey,
        container: Container,
    ) -> Option<Arc<LiveOutput>> {
        let tracks = registry
            .tracks_ready(key, Duration::from_secs(1), Duration::from_secs(10))
            .await?;
        let reader = registry.subscribe_output(key)?;
        let (header, muxer) = match container {
            Container::Ts => (Bytes::new(), Muxer::Ts(TsMuxer::new(&tracks))),
            Container::Fmp4 => {
                let m = Fmp4Muxer::new(&tracks).ok()?;
                (m.init_segment(), Muxer::Fmp4(Box::new(m)))
            }
        };
        let fanout = Fanout::new(registry.fanout_limits());
        if !header.is_empty() {
            fanout.set_header(vec![header]);
        }
        let has_video = tracks.iter().any(|t| t.kind() == TrackKind::Video);
        Some(Arc::new_cyclic(|weak: &Weak<LiveOutput>| LiveOutput {
            fanout,
            _task: Task::spawn(run(weak.clone(), reader, muxer, has_video)),
        }))
    }

    /// A new viewer's reader: the container header, the chunks since the last keyframe, then
    /// the live ones.
    pub fn reader(self: &Arc<Self>) -> LiveReader {
        LiveReader {
            reader: self.fanout.reader(),
            _output: Arc::clone(self),
        }
    }
}

/// One viewer's read side of a [`LiveOutput`]; it keeps the output running.
pub struct LiveReader {
    reader: Reader<Bytes>,
    _output: Arc<LiveOutput>,
}

impl LiveReader {
    /// The next chunk.
    pub async fn recv(&mut self) -> Result<Bytes, Ended> {
        self.reader.recv().await
    }

    /// The next chunk if one is ready now.
    pub fn try_recv(&mut self) -> Option<Result<Bytes, Ended>> {
        self.reader.try_recv()
    }
}

async fn run(
    output: Weak<LiveOutput>,
    mut reader: StreamReader,
    mut muxer: Muxer,
    has_video: bool,
) {
    loop {
        let item = reader.recv().await;
        let Some(out) = output.upgrade() else { return };
        let f = match item {
            Ok(Item::Frame(f)) => f,
            Ok(_) => continue,
            Err(_) => {
                out.fanout.close();
                return;
            }
        };
        let starts_gop = (f.kind() == TrackKind::Video && f.keyframe) || !has_video;
        let mut chunks = Vec::new();
        match &mut muxer {
            Muxer::Ts(ts) => {
                let mut data = BytesMut::new();
                ts.push(&f, &mut data);
                if !data.is_empty() {
                    chunks.push((data.freeze(), starts_gop));
                }
            }
            Muxer::Fmp4(m) => {
                // A fragment ends before each keyframe, so a keyframe always starts one.
                if (starts_gop && has_video) || m.buffered_ms() >= FRAGMENT_MS {
                    if let Some(fragment) = m.fragment_before(f.dts) {
                        chunks.push((fragment.data, fragment.independent));
                    }
                }
                m.push(&f);
            }
        }
        for (data, starts_gop) in chunks {
            let size = data.len();
            out.fanout.push(data, size, starts_gop);
        }
    }
}
