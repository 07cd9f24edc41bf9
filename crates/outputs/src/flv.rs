//! FLV for RTMP players and HTTP-FLV/WS-FLV viewers: one muxer per stream, whose tags every
//! viewer of either protocol reads (Adobe FLV spec 10.1 Annex E; Enhanced RTMP for `hvc1` and
//! Opus).
//!
//! Opus goes out as Enhanced RTMP `Opus` only when configured (`rtmp.enhancedOpus=1`): most FLV
//! players (ffmpeg before 7.1, flv.js, mpegts.js) know no E-RTMP audio and wait forever for the
//! track's parameters, so by default a stream whose audio is Opus plays here as video alone,
//! with a file header that announces no audio.
//!
//! The output reads the stream's frames from the registry and writes each once as a complete
//! FLV tag (header, body, PreviousTagSize): HTTP-FLV sends the tag's bytes as they are, RTMP
//! play sends [`FlvTag::body`] (a zero-copy slice) as the message payload. Its [`Fanout`]'s
//! header holds the metadata and sequence-header tags, so a new viewer gets them first, then the
//! tags from the last keyframe.

use crate::ondemand::{Live, Task};
use bytes::{Bytes, BytesMut};
use media::{Codec, StreamKey, TrackInfo, TrackKind};
use registry::{Ended, Fanout, FanoutLimits, Item, Reader, StreamReader};
use rtmp::flv::{encode_metadata, write_tag_with, Muxer, TAG_SCRIPT};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// FLV tag header and PreviousTagSize: what a tag adds around its body.
const TAG_HEADER: usize = 11;
const PREVIOUS_TAG_SIZE: usize = 4;

/// One FLV tag as it fans out, made once per stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    /// 8 audio, 9 video, 18 script data (the RTMP message type of its body).
    pub tag_type: u8,
    /// Milliseconds on the stream's timeline.
    pub timestamp: u32,
    /// The whole tag: header, body, PreviousTagSize. HTTP-FLV sends it as is.
    pub tag: Bytes,
}

impl FlvTag {
    /// The tag body (the RTMP message payload), a zero-copy slice of [`FlvTag::tag`].
    pub fn body(&self) -> Bytes {
        let end = self.tag.len().saturating_sub(PREVIOUS_TAG_SIZE);
        self.tag.slice(TAG_HEADER.min(end)..end)
    }
}

/// Whether `tag` (a whole FLV tag) is a video keyframe's coded data, where a player starts
/// to decode: frame type 1 and, for AVC/HEVC, packet type 1 (not a sequence header or an end
/// of sequence); for Enhanced RTMP, packet type `CodedFrames` or `CodedFramesX`.
pub fn is_keyframe_tag(tag: &[u8]) -> bool {
    match tag {
        [t, _, _, _, _, _, _, _, _, _, _, body @ ..] if t & 0x1f == rtmp::flv::TAG_VIDEO => {
            match body {
                [b, ..] if b & 0x80 != 0 => (b >> 4) & 0x07 == 1 && matches!(b & 0x0f, 1 | 3),
                [b, packet, ..] if matches!(b & 0x0f, 7 | 12) => b >> 4 == 1 && *packet == 1,
                [b, ..] => b >> 4 == 1,
                [] => false,
            }
        }
        _ => false,
    }
}

/// One stream's FLV.
pub struct FlvOutput {
    fanout: Fanout<FlvTag>,
    tracks: Mutex<Vec<TrackInfo>>,
    _task: Task,
}

impl Live for FlvOutput {
    fn live(&self) -> bool {
        !self.fanout.is_closed()
    }
}

impl FlvOutput {
    /// Starts muxing `reader`'s stream; `legacy_hevc` writes H.265 as the legacy CodecID 12
    /// instead of Enhanced RTMP `hvc1`; without `opus`, Opus is left out.
    pub(crate) fn start(
        reader: StreamReader,
        limits: FanoutLimits,
        legacy_hevc: bool,
        opus: bool,
        merge_write_ms: u32,
    ) -> Arc<Self> {
        let carried = move |codec: Codec| opus || codec != Codec::Opus;
        let tracks = reader
            .tracks()
            .into_iter()
            .filter(|t| carried(t.codec))
            .collect();
        Arc::new_cyclic(|weak: &Weak<FlvOutput>| FlvOutput {
            fanout: Fanout::new(limits),
            tracks: Mutex::new(tracks),
            _task: Task::spawn(run(
                weak.clone(),
                reader,
                Muxer::new(legacy_hevc),
                carried,
                merge_write_ms,
            )),
        })
    }

    fn tracks(&self) -> MutexGuard<'_, Vec<TrackInfo>> {
        // Single assignments: a poisoned lock holds a whole value.
        self.tracks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new viewer's reader: metadata and sequence headers, then the tags from the last
    /// keyframe, then the live ones.
    pub fn reader(self: &Arc<Self>) -> FlvReader {
        FlvReader {
            reader: self.fanout.reader(),
            output: Arc::clone(self),
        }
    }
}

/// One viewer's read side of an [`FlvOutput`]; it keeps the output running.
pub struct FlvReader {
    output: Arc<FlvOutput>,
    reader: Reader<FlvTag>,
}

impl FlvReader {
    /// The next tag.
    pub async fn recv(&mut self) -> Result<FlvTag, Ended> {
        self.reader.recv().await
    }

    /// The next tag if one is ready now.
    pub fn try_recv(&mut self) -> Option<Result<FlvTag, Ended>> {
        self.reader.try_recv()
    }

    /// The FLV file header (§E.2) and PreviousTagSize0 an HTTP-FLV body starts with, flagged
    /// for the stream's tracks (both before any is known: players then wait for what comes).
    pub fn file_header(&self) -> Bytes {
        let tracks = self.output.tracks();
        let has = |kind| tracks.iter().any(|t| t.kind() == kind);
        if tracks.is_empty() {
            rtmp::flv::file_header(true, true)
        } else {
            rtmp::flv::file_header(has(TrackKind::Audio), has(TrackKind::Video))
        }
    }
}

async fn run(
    output: Weak<FlvOutput>,
    mut reader: StreamReader,
    mut muxer: Muxer,
    carried: impl Fn(Codec) -> bool,
    merge_write_ms: u32,
) {
    let key: StreamKey = reader.key().clone();
    // `general.mergeWriteMS`: the timestamp of the first tag pushed since the readers were
    // last woken. They are woken when a tag comes that many ms of media after it, or a
    // keyframe (which starts the next merge), or anything but a frame.
    let mut held_since: Option<u32> = None;
    let mut metadata: Option<FlvTag> = None;
    let mut headers: Vec<(TrackKind, FlvTag)> = Vec::new();
    let mut has_video = reader.tracks().iter().any(|t| t.kind() == TrackKind::Video);
    let mut last_ts = 0u32;
    loop {
        let item = reader.recv().await;
        let Some(out) = output.upgrade() else {
            return; // no viewer left
        };
        match item {
            Ok(Item::Frame(frame)) if !carried(frame.codec) => {}
            Ok(Item::Track(track)) if !carried(track.codec) => {
                // A track replaced by one this output leaves out is gone here too.
                out.tracks().retain(|t| t.kind() != track.kind());
                headers.retain(|(k, _)| *k != track.kind());
                set_header(&out, &metadata, &headers);
            }
            Ok(Item::Frame(frame)) => {
                let tag_type = Muxer::tag_type(frame.codec);
                let timestamp = frame.dts as u32;
                last_ts = timestamp;
                let mut buf = BytesMut::with_capacity(frame.data.len() + 32);
                write_tag_with(&mut buf, tag_type, timestamp, |b| {
                    muxer.write_frame(&frame, b)
                });
                if buf.is_empty() {
                    continue;
                }
                let starts_gop = if has_video {
                    frame.kind() == TrackKind::Video && frame.keyframe
                } else {
                    true
                };
                let size = buf.len();
                let tag = FlvTag {
                    tag_type,
                    timestamp,
                    tag: buf.freeze(),
                };
                if merge_write_ms == 0 {
                    out.fanout.push(tag, size, starts_gop);
                    continue;
                }
                let keyframe = frame.kind() == TrackKind::Video && frame.keyframe;
                if let Some(since) = held_since {
                    if keyframe || timestamp.abs_diff(since) >= merge_write_ms {
                        out.fanout.wake();
                        held_since = None;
                    }
                }
                out.fanout.push_held(tag, size, starts_gop);
                held_since.get_or_insert(timestamp);
            }
            Ok(Item::Track(track)) => {
                let kind = track.kind();
                if kind == TrackKind::Video {
                    has_video = true;
                }
                {
                    let mut tracks = out.tracks();
                    match tracks.iter_mut().find(|t| t.kind() == kind) {
                        Some(t) => *t = track.clone(),
                        None => tracks.push(track.clone()),
                    }
                }
                // Codecs without a sequence header (G.711, MP3) announce nothing; a header that
                // arrives mid-stream is sent at the last frame's time, so no timeline steps back.
                let Some(body) = muxer.sequence_header(&track) else {
                    continue;
                };
                let tag = tag_of(Muxer::tag_type(track.codec), last_ts, &body);
                headers.retain(|(k, _)| *k != kind);
                headers.push((kind, header_copy(&tag)));
                if kind == TrackKind::Video {
                    // Frames before the new configuration cannot be decoded with it.
                    out.fanout.reset_gop();
                }
                set_header(&out, &metadata, &headers);
                let size = tag.tag.len();
                out.fanout.push(tag, size, false);
                held_since = None;
            }
            Ok(Item::Metadata(meta)) => {
                let tag = tag_of(TAG_SCRIPT, 0, &encode_metadata(&meta));
                metadata = Some(tag.clone());
                set_header(&out, &metadata, &headers);
                let size = tag.tag.len();
                out.fanout.push(tag, size, false);
                held_since = None;
            }
            Err(ended) => {
                tracing::debug!(stream = %key, "FLV output ended: {ended}");
                out.fanout.close();
                return;
            }
        }
    }
}

/// A sequence header as a new viewer gets it: at timestamp 0, before any frame.
fn header_copy(tag: &FlvTag) -> FlvTag {
    tag_of(tag.tag_type, 0, &tag.body())
}

fn tag_of(tag_type: u8, timestamp: u32, body: &[u8]) -> FlvTag {
    let mut buf = BytesMut::with_capacity(body.len() + TAG_HEADER + PREVIOUS_TAG_SIZE);
    rtmp::flv::write_tag(&mut buf, tag_type, timestamp, body);
    FlvTag {
        tag_type,
        timestamp,
        tag: buf.freeze(),
    }
}

fn set_header(out: &FlvOutput, metadata: &Option<FlvTag>, headers: &[(TrackKind, FlvTag)]) {
    let header = metadata
        .iter()
        .cloned()
        .chain(headers.iter().map(|(_, t)| t.clone()))
        .collect();
    out.fanout.set_header(header);
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::{Codec, Frame};
    use registry::{Registry, SessionInfo};

    #[test]
    fn keyframe_tags_are_told_from_headers_and_other_frames() {
        let tag = |tag_type: u8, body: &[u8]| tag_of(tag_type, 40, body).tag;
        // AVC keyframe, AVC sequence header, AVC inter frame, AVC end of sequence.
        assert!(is_keyframe_tag(&tag(9, &[0x17, 1, 0, 0, 0, 0x65])));
        assert!(!is_keyframe_tag(&tag(9, &[0x17, 0, 0, 0, 0, 1])));
        assert!(!is_keyframe_tag(&tag(9, &[0x27, 1, 0, 0, 0, 0x41])));
        assert!(!is_keyframe_tag(&tag(9, &[0x17, 2, 0, 0, 0])));
        // Legacy HEVC (codec id 12), Enhanced RTMP hvc1: CodedFrames, CodedFramesX,
        // SequenceStart, an inter frame.
        assert!(is_keyframe_tag(&tag(9, &[0x1c, 1, 0, 0, 0, 0x26])));
        assert!(is_keyframe_tag(&tag(
            9,
            &[0x91, b'h', b'v', b'c', b'1', 0, 0, 0]
        )));
        assert!(is_keyframe_tag(&tag(9, &[0x93, b'h', b'v', b'c', b'1'])));
        assert!(!is_keyframe_tag(&tag(9, &[0x90, b'h', b'v', b'c', b'1'])));
        assert!(!is_keyframe_tag(&tag(9, &[0xa1, b'h', b'v', b'c', b'1'])));
        // Audio, script data, an empty video body, a truncated tag.
        assert!(!is_keyframe_tag(&tag(8, &[0x17, 1])));
        assert!(!is_keyframe_tag(&tag(18, &[0x17, 1])));
        assert!(!is_keyframe_tag(&tag(9, &[])));
        assert!(!is_keyframe_tag(&[9, 0, 0]));
    }

    fn publisher() -> SessionInfo {
        SessionInfo {
            id: 1,
            protocol: registry::Protocol::Rtsp,
            peer: "127.0.0.1:5000".parse().expect("addr"),
            local: "127.0.0.1:554".parse().expect("addr"),
            params: String::new(),
        }
    }

    fn avcc() -> Bytes {
        // configurationVersion 1, profile/compat/level, 4-byte lengths, no SPS/PPS.
        Bytes::from_static(&[1, 0x42, 0, 0x1e, 0xff, 0xe0, 0])
    }

    #[tokio::test]
    async fn tags_are_made_once_and_a_late_viewer_starts_at_a_keyframe() {
        let reg = Registry::default();
        let key = StreamKey::new("live", "flv").expect("key");
        let guard = reg.publish(key.clone(), publisher()).expect("publish");
        guard.set_track(TrackInfo::new(Codec::H264, avcc()));
        let output = FlvOutput::start(
            reg.subscribe_output(&key).expect("live"),
            FanoutLimits::default(),
            false,
            false,
            0,
        );
        let mut first = output.reader();
        for (dts, key) in [(0, true), (40, false), (80, true), (120, false)] {
            guard.push(Frame {
                codec: Codec::H264,
                dts,
                cts: 0,
                keyframe: key,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            });
        }
        // The sequence header (as a header item) and then the frames.
        let seq = first.recv().await.expect("sequence header");
        assert_eq!((seq.tag_type, seq.timestamp), (9, 0));
        assert_eq!(seq.body()[..2], [0x17, 0x00]);
        let mut got = Vec::new();
        while got.len() < 4 {
            let tag = first.recv().await.expect("tag");
            got.push((tag.timestamp, tag.body()[0]));
            // A whole tag: header, body of 5 + 5 bytes, PreviousTagSize.
            assert_eq!(tag.tag.len(), TAG_HEADER + 10 + PREVIOUS_TAG_SIZE);
        }
        assert_eq!(got, [(0, 0x17), (40, 0x27), (80, 0x17), (120, 0x27)]);
        let mut late = output.reader();
        assert_eq!(late.file_header()[4], 0x01, "video only");
        assert_eq!(late.recv().await.expect("seq").body()[1], 0x00);
        let start = late.recv().await.expect("keyframe");
        assert_eq!((start.timestamp, start.body()[0]), (80, 0x17));
        drop(guard);
        assert_eq!(late.recv().await.expect("rest").timestamp, 120);
        assert_eq!(late.recv().await, Err(Ended::Closed));
    }

    /// `general.mergeWriteMS`: a waiting viewer is woken once for the tags of a merge window
    /// (by the first tag past it, or a keyframe), and gets them all at once.
    #[tokio::test]
    async fn merged_writes_wake_a_viewer_once_per_window() {
        let reg = Registry::default();
        let key = StreamKey::new("live", "merge").expect("key");
        let guard = reg.publish(key.clone(), publisher()).expect("publish");
        guard.set_track(TrackInfo::new(Codec::H264, avcc()));
        let output = FlvOutput::start(
            reg.subscribe_output(&key).expect("live"),
            FanoutLimits::default(),
            false,
            false,
            100,
        );
        let frame = |dts: u64, keyframe: bool| Frame {
            codec: Codec::H264,
            dts,
            cts: 0,
            keyframe,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
        };
        let settle = || tokio::time::sleep(std::time::Duration::from_millis(30));
        let timestamps = |reader: &mut FlvReader| -> Vec<u32> {
            std::iter::from_fn(|| reader.try_recv())
                .map(|t| t.expect("tag").timestamp)
                .collect()
        };
        for dts in [0, 40, 80] {
            guard.push(frame(dts, dts == 0));
        }
        settle().await;
        // A new viewer sees held tags at once: the sequence header, then from the keyframe.
        let mut reader = output.reader();
        assert_eq!(reader.recv().await.expect("seq").body()[1], 0x00);
        assert_eq!(timestamps(&mut reader), [0, 40, 80]);
        // A viewer waiting at the tail is not woken by tags within 100 ms of media of the
        // window's first (100 closed the window of 0..80 and opened its own)…
        guard.push(frame(100, false));
        settle().await;
        assert_eq!(reader.recv().await.expect("tag").timestamp, 100);
        let mut waiting = Box::pin(reader.recv());
        assert!(futures_poll_once(waiting.as_mut()).is_none(), "nothing yet");
        for dts in [140, 180] {
            guard.push(frame(dts, false));
        }
        settle().await;
        assert!(futures_poll_once(waiting.as_mut()).is_none(), "woken early");
        // …but by the first tag past it, and gets the window's tags at once; the tag that
        // closed the window waits with the next one.
        guard.push(frame(220, false));
        settle().await;
        assert_eq!(waiting.await.expect("tag").timestamp, 140);
        assert_eq!(timestamps(&mut reader), [180, 220]);
        // A keyframe closes the window at once, whatever its span.
        let mut waiting = Box::pin(reader.recv());
        assert!(futures_poll_once(waiting.as_mut()).is_none(), "nothing yet");
        guard.push(frame(240, false));
        settle().await;
        assert!(futures_poll_once(waiting.as_mut()).is_none(), "woken early");
        guard.push(frame(260, true));
        settle().await;
        assert_eq!(waiting.await.expect("tag").timestamp, 240);
        assert_eq!(timestamps(&mut reader), [260]);
        // The end wakes whatever is held.
        let waiting = tokio::spawn(async move {
            let held = reader.recv().await.map(|t| t.timestamp);
            (held, reader.recv().await.map(|t| t.timestamp))
        });
        settle().await;
        guard.push(frame(300, false));
        settle().await;
        assert!(!waiting.is_finished(), "woken early");
        drop(guard);
        assert_eq!(waiting.await.expect("task"), (Ok(300), Err(Ended::Closed)));
    }

    /// Polls `fut` once: its output if it was ready.
    fn futures_poll_once<F: std::future::Future>(fut: std::pin::Pin<&mut F>) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match fut.poll(&mut cx) {
            std::task::Poll::Ready(out) => Some(out),
            std::task::Poll::Pending => None,
        }
    }

    /// Opus is left out unless asked for: no audio in the file header, no audio tag; asked
    /// for, it is an E-RTMP `Opus` sequence header and frames.
    #[tokio::test]
    async fn opus_only_when_enhanced_opus_is_on() {
        for opus in [false, true] {
            let reg = Registry::default();
            let key = StreamKey::new("live", "opus").expect("key");
            let guard = reg.publish(key.clone(), publisher()).expect("publish");
            guard.set_track(TrackInfo::new(Codec::H264, avcc()));
            let head = Bytes::from_static(b"OpusHead\x01\x02\x38\x01\x80\xbb\0\0\0\0\0");
            guard.set_track(TrackInfo::new(Codec::Opus, head));
            let output = FlvOutput::start(
                reg.subscribe_output(&key).expect("live"),
                FanoutLimits::default(),
                false,
                opus,
                0,
            );
            let mut reader = output.reader();
            for (codec, dts) in [(Codec::Opus, 0), (Codec::H264, 0), (Codec::Opus, 20)] {
                guard.push(Frame {
                    codec,
                    dts,
                    cts: 0,
                    keyframe: true,
                    data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
                });
            }
            drop(guard);
            let mut types = Vec::new();
            while let Ok(tag) = reader.recv().await {
                if tag.tag_type == 8 {
                    assert_eq!(&tag.body()[1..5], b"Opus");
                }
                types.push((tag.tag_type, tag.timestamp));
            }
            let flags = reader.file_header()[4];
            if opus {
                assert_eq!(flags, 0x05, "audio and video");
                // Sequence headers, then from the keyframe on.
                assert_eq!(types, [(9, 0), (8, 0), (9, 0), (8, 20)]);
            } else {
                assert_eq!(flags, 0x01, "video alone");
                assert_eq!(types, [(9, 0), (9, 0)]);
            }
        }
    }
}
