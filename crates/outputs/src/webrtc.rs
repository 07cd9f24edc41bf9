//! WebRTC players (WHEP): one stream's frames made ready for RTP packetization once, for every
//! peer.
//!
//! The output reads the stream's frames from the registry and turns each into an [`RtcFrame`]:
//! H.264 and H.265 from length-prefixed NAL units (ISO/IEC 14496-15) to Annex B byte streams
//! (ITU-T H.264 Annex B), which is what a WebRTC stack's packetizer takes (RFC 6184, RFC
//! 7798), with the parameter sets (SPS/PPS, and VPS for H.265) written before every keyframe so
//! a player that starts there, or that lost the earlier ones, can decode it. Opus and G.711 pass
//! as they are. AAC, which no browser decodes over WebRTC, is transcoded to Opus here, once
//! per stream whatever the number of players ([`crate::AacToOpus`]); an AAC track the decoder
//! cannot take (another profile, a broken AudioSpecificConfig) leaves the stream's WebRTC
//! players with the video alone ([`WebRtcOutput::tracks`] lists no audio).
//!
//! The frames fan out on a [`Fanout`] whose bounds are the per-player queue: the WebRTC driver
//! holds one [`RtcReader`] per player, and a player that does not take its frames (its peer
//! is not connected yet, or the driver is busy) falls behind in the ring and skips to the next
//! keyframe, then is dropped if it keeps falling behind ([`Ended::TooSlow`]). A new reader
//! starts at the GOP cache's last keyframe, which also answers a player's picture loss report
//! (PLI/FIR): the driver opens a new reader instead of asking the publisher for a keyframe.
//!
//! The driver serves many players from one task, so it cannot wait on each reader: it hands
//! every reader a [`tokio::sync::Notify`] that the output signals after each frame it pushes.

use crate::ondemand::{Live, Task};
use bytes::{BufMut, Bytes, BytesMut};
use media::{Codec, StreamKey, TrackInfo, TrackKind};
use registry::{Ended, Fanout, FanoutLimits, Item, Reader, Registry, StreamReader};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// How long a WebRTC output waits for a stream's first track.
const TRACKS_WAIT: Duration = Duration::from_secs(5);
/// How long it waits for a second track once the first is known.
const LATE_TRACK: Duration = Duration::from_millis(500);

/// The Annex B start code (ITU-T H.264 §B.1).
const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// One access unit ready for a WebRTC packetizer, made once per stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcFrame {
    /// The codec: H.264, H.265, Opus, G.711 A-law or µ-law.
    pub codec: Codec,
    /// Presentation timestamp, milliseconds on the stream's timeline.
    pub pts: u64,
    /// A video random access point, with its parameter sets in front; every audio frame is one.
    pub keyframe: bool,
    /// Video: an Annex B byte stream (start codes); audio: the codec's frame as it is.
    pub data: Bytes,
}

impl RtcFrame {
    /// The track kind.
    pub fn kind(&self) -> TrackKind {
        self.codec.kind()
    }
}

/// One stream's WebRTC frames.
pub struct WebRtcOutput {
    fanout: Fanout<RtcFrame>,
    state: Mutex<State>,
    _task: Task,
}

#[derive(Default)]
struct State {
    /// The tracks a WebRTC player gets, as they are now.
    tracks: Vec<TrackInfo>,
    /// Drivers to wake after each push; a driver that is gone is forgotten at the next push.
    wakers: Vec<Weak<Notify>>,
}

impl Live for WebRtcOutput {
    fn live(&self) -> bool {
        !self.fanout.is_closed()
    }
}

impl WebRtcOutput {
    /// Starts the output of `key` once its tracks are known (or after a short wait, with the
    /// tracks it has); `None` when the stream is not live.
    pub(crate) async fn start(
        registry: &Registry,
        key: &StreamKey,
        max_queue_bytes: usize,
    ) -> Option<Arc<Self>> {
        registry.tracks_ready(key, LATE_TRACK, TRACKS_WAIT).await?;
        let reader = registry.subscribe_output(key)?;
        let limits = FanoutLimits {
            max_bytes: max_queue_bytes,
            ..registry.fanout_limits()
        };
        let mut audio = Audio::default();
        let tracks = reader
            .tracks()
            .iter()
            .filter_map(|t| audio.configure(&key.to_string(), t))
            .collect();
        Some(Arc::new_cyclic(|weak: &Weak<WebRtcOutput>| WebRtcOutput {
            fanout: Fanout::new(limits),
            state: Mutex::new(State {
                tracks,
                wakers: Vec::new(),
            }),
            _task: Task::spawn(run(weak.clone(), reader, audio)),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Single assignments and pushes: a poisoned lock holds whole values.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The tracks a WebRTC player of this stream gets (the codecs it can be offered).
    pub fn tracks(&self) -> Vec<TrackInfo> {
        self.state().tracks.clone()
    }

    /// A new player's reader, starting at the last keyframe; `waker` is signalled after every
    /// frame the output pushes.
    pub fn reader(self: &Arc<Self>, waker: &Arc<Notify>) -> RtcReader {
        {
            let mut state = self.state();
            if !state
                .wakers
                .iter()
                .any(|w| w.as_ptr() == Arc::as_ptr(waker))
            {
                state.wakers.push(Arc::downgrade(waker));
            }
        }
        RtcReader {
            reader: self.fanout.reader(),
            output: Arc::clone(self),
        }
    }

    fn push(&self, frame: RtcFrame) {
        let size = frame.data.len();
        let starts_gop = frame.keyframe && frame.kind() == TrackKind::Video
            || !self
                .state()
                .tracks
                .iter()
                .any(|t| t.kind() == TrackKind::Video);
        self.fanout.push(frame, size, starts_gop);
        self.wake();
    }

    fn wake(&self) {
        let mut state = self.state();
        state.wakers.retain(|w| match w.upgrade() {
            Some(notify) => {
                notify.notify_one();
                true
            }
            None => false,
        });
    }
}

/// One player's read side of a [`WebRtcOutput`]; it keeps the output running.
pub struct RtcReader {
    output: Arc<WebRtcOutput>,
    reader: Reader<RtcFrame>,
}

impl RtcReader {
    /// The next frame if one is ready now.
    pub fn try_recv(&mut self) -> Option<Result<RtcFrame, Ended>> {
        self.reader.try_recv()
    }

    /// A reader of the same output starting again at the GOP cache's last keyframe (the
    /// answer to a player's picture loss report).
    pub fn restart(&self, waker: &Arc<Notify>) -> RtcReader {
        self.output.reader(waker)
    }

    /// The output read.
    pub fn output(&self) -> &Arc<WebRtcOutput> {
        &self.output
    }
}

/// The track a WebRTC player gets for a stream's `track`, if it can get one without a
/// transcoder.
fn rtc_track(track: &TrackInfo) -> Option<TrackInfo> {
    match track.codec {
        Codec::H264 | Codec::H265 | Codec::Opus | Codec::G711A | Codec::G711U => {
            Some(track.clone())
        }
        Codec::Aac | Codec::Mp3 => None,
    }
}

/// The stream's audio on its way to WebRTC: passed through, or AAC transcoded to Opus.
#[derive(Default)]
struct Audio {
    transcoder: Option<crate::AacToOpus>,
}

impl Audio {
    /// The WebRTC track for the stream's `track` (AAC: the transcoder's Opus track, the
    /// transcoder made for it), or `None` when WebRTC players get none.
    fn configure(&mut self, key: &str, track: &TrackInfo) -> Option<TrackInfo> {
        if track.kind() != TrackKind::Audio {
            return rtc_track(track);
        }
        self.transcoder = None;
        if track.codec != Codec::Aac {
            return rtc_track(track);
        }
        match crate::AacToOpus::new(track) {
            Ok(transcoder) => {
                let opus = transcoder.track();
                self.transcoder = Some(transcoder);
                Some(opus)
            }
            Err(e) => {
                tracing::info!(stream = %key, "AAC not transcoded for WebRTC: {e}");
                None
            }
        }
    }

    /// The frames `frame` becomes for WebRTC players.
    fn frames(&mut self, key: &StreamKey, frame: &media::Frame) -> Vec<media::Frame> {
        match (&mut self.transcoder, frame.codec) {
            (Some(transcoder), Codec::Aac) => match transcoder.push(frame) {
                Ok(frames) => frames,
                Err(e) => {
                    tracing::debug!(stream = %key, "AAC access unit not transcoded: {e}");
                    Vec::new()
                }
            },
            (None, Codec::Aac) => Vec::new(),
            _ => vec![frame.clone()],
        }
    }
}

async fn run(output: Weak<WebRtcOutput>, mut reader: StreamReader, mut audio: Audio) {
    let key = reader.key().clone();
    let mut video = Video::default();
    for track in reader.tracks() {
        video.configure(&track);
    }
    loop {
        let item = reader.recv().await;
        let Some(out) = output.upgrade() else {
            return; // no player left
        };
        match item {
            Ok(Item::Frame(frame)) => {
                let tracks = out.tracks();
                for frame in audio.frames(&key, &frame) {
                    if !tracks.iter().any(|t| t.codec == frame.codec) {
                        continue;
                    }
                    let data = match frame.codec {
                        Codec::H264 | Codec::H265 => video.annex_b(&frame),
                        _ => Some(frame.data.clone()),
                    };
                    let Some(data) = data else {
                        tracing::debug!(stream = %key, "malformed video frame dropped");
                        continue;
                    };
                    out.push(RtcFrame {
                        codec: frame.codec,
                        pts: frame.pts(),
                        keyframe: frame.keyframe,
                        data,
                    });
                }
            }
            Ok(Item::Track(track)) => {
                video.configure(&track);
                let rtc = audio.configure(&key.to_string(), &track);
                let mut state = out.state();
                state.tracks.retain(|t| t.kind() != track.kind());
                state.tracks.extend(rtc);
            }
            Ok(Item::Metadata(_)) => {}
            Err(Ended::Closed) => {
                out.fanout.close();
                out.wake();
                return;
            }
            Err(e) => {
                tracing::warn!(stream = %key, "WebRTC output stops: {e}");
                out.fanout.close();
                out.wake();
                return;
            }
        }
    }
}

/// The parameter sets of the stream's video track and the NAL length size of its frames.
#[derive(Default)]
struct Video {
    /// SPS/PPS (and VPS) NAL units, each with a start code, in decoding order.
    parameter_sets: Bytes,
    length_size: usize,
}

impl Video {
    fn configure(&mut self, track: &TrackInfo) {
        let (length_size, sets): (u8, Vec<Bytes>) = match track.codec {
            Codec::H264 => match media::avc::DecoderConfig::parse(&track.config) {
                Ok(rec) => (
                    rec.length_size,
                    rec.sps.into_iter().chain(rec.pps).collect(),
                ),
                Err(_) => return,
            },
            Codec::H265 => match media::hevc::DecoderConfig::parse(&track.config) {
                Ok(rec) => {
                    let mut sets = Vec::new();
                    for nal_type in [
                        media::hevc::NAL_VPS,
                        media::hevc::NAL_SPS,
                        media::hevc::NAL_PPS,
                    ] {
                        for (t, units) in &rec.arrays {
                            if *t == nal_type {
                                sets.extend(units.iter().cloned());
                            }
                        }
                    }
                    (rec.length_size, sets)
                }
                Err(_) => return,
            },
            _ => return,
        };
        let mut buf = BytesMut::new();
        for set in sets {
            buf.put_slice(&START_CODE);
            buf.put_slice(&set);
        }
        self.parameter_sets = buf.freeze();
        self.length_size = usize::from(length_size);
    }

    /// `frame`'s NAL units as an Annex B byte stream, the parameter sets first on a keyframe
    /// (replacing any the frame carries); `None` when the length prefixes do not add up.
    fn annex_b(&self, frame: &media::Frame) -> Option<Bytes> {
        let length_size = if (1..=4).contains(&self.length_size) {
            self.length_size
        } else {
            4
        };
        let nals = split_nals(&frame.data, length_size)?;
        let mut buf = BytesMut::with_capacity(frame.data.len() + self.parameter_sets.len() + 16);
        if frame.keyframe {
            buf.put_slice(&self.parameter_sets);
        }
        for nal in nals {
            let is_parameter_set = match frame.codec {
                Codec::H264 => matches!(
                    nal.first().map(|b| b & 0x1F),
                    Some(media::avc::NAL_SPS | media::avc::NAL_PPS)
                ),
                _ => matches!(
                    nal.first().map(|b| (b >> 1) & 0x3F),
                    Some(media::hevc::NAL_VPS | media::hevc::NAL_SPS | media::hevc::NAL_PPS)
                ),
            };
            if frame.keyframe && is_parameter_set && !self.parameter_sets.is_empty() {
                continue; // already in front
            }
            buf.put_slice(&START_CODE);
            buf.put_slice(nal);
        }
        Some(buf.freeze())
    }
}

/// The fuzz body of `webrtc_frame` (see [`crate::fuzzing::webrtc_frame`]): `au` with NAL
/// lengths of `length_size` bytes through [`Video::annex_b`], with real parameter sets.
pub(crate) fn fuzz_annex_b(keyframe: bool, hevc: bool, length_size: usize, au: &[u8]) {
    const SPS: &[u8] = &[0x67, 0x42, 0xC0, 0x1E, 0xDA, 0x02, 0x80, 0xBF];
    const PPS: &[u8] = &[0x68, 0xCE, 0x0F, 0x2C, 0x80];
    let codec = if hevc { Codec::H265 } else { Codec::H264 };
    let mut video = Video::default();
    if let Ok(config) = media::avc::DecoderConfig::build(SPS, &[PPS]) {
        video.configure(&TrackInfo::new(Codec::H264, config));
    }
    video.length_size = length_size;
    let frame = media::Frame {
        codec,
        dts: 0,
        cts: 0,
        keyframe,
        data: Bytes::copy_from_slice(au),
    };
    if let Some(out) = video.annex_b(&frame) {
        let nals = split_nals(au, length_size).unwrap_or_default();
        let payload: usize = nals.iter().map(|n| n.len() + START_CODE.len()).sum();
        assert!(out.len() <= payload + video.parameter_sets.len());
        assert!(out.is_empty() || out.starts_with(&START_CODE));
    }
}

/// The NAL units of a length-prefixed access unit; `None` when a length runs past the end.
fn split_nals(mut data: &[u8], length_size: usize) -> Option<Vec<&[u8]>> {
    let mut nals = Vec::new();
    while !data.is_empty() {
        let prefix = data.get(..length_size)?;
        let len = prefix
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        let nal = data.get(length_size..length_size.checked_add(len)?)?;
        if !nal.is_empty() {
            nals.push(nal);
        }
        data = &data[length_size + len..];
    }
    Some(nals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::Frame;

    fn avcc(nals: &[&[u8]]) -> Bytes {
        let mut b = BytesMut::new();
        for n in nals {
            b.put_u32(n.len() as u32);
            b.put_slice(n);
        }
        b.freeze()
    }

    const SPS: &[u8] = &[
        0x67, 0x42, 0xC0, 0x1E, 0xDA, 0x02, 0x80, 0xBF, 0xE5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04,
        0x00, 0x00, 0x03, 0x00, 0xF0, 0x3C, 0x58, 0xBA, 0x80,
    ];
    const PPS: &[u8] = &[0x68, 0xCE, 0x0F, 0x2C, 0x80];

    fn video() -> Video {
        let config = media::avc::DecoderConfig::build(SPS, &[PPS]).expect("avcC");
        let mut v = Video::default();
        v.configure(&TrackInfo::new(Codec::H264, config));
        v
    }

    #[test]
    fn keyframes_get_the_parameter_sets_in_front_and_once() {
        let v = video();
        let idr: &[u8] = &[0x65, 1, 2, 3];
        let frame = Frame {
            codec: Codec::H264,
            dts: 0,
            cts: 0,
            keyframe: true,
            // The publisher repeats SPS/PPS in band: they must not appear twice.
            data: avcc(&[SPS, PPS, idr]),
        };
        let out = v.annex_b(&frame).expect("annex b");
        let mut want = Vec::new();
        for n in [SPS, PPS, idr] {
            want.extend_from_slice(&START_CODE);
            want.extend_from_slice(n);
        }
        assert_eq!(&out[..], &want[..]);
    }

    #[test]
    fn delta_frames_pass_without_parameter_sets() {
        let v = video();
        let p: &[u8] = &[0x41, 9, 9];
        let frame = Frame {
            codec: Codec::H264,
            dts: 40,
            cts: 0,
            keyframe: false,
            data: avcc(&[p, p]),
        };
        let out = v.annex_b(&frame).expect("annex b");
        assert_eq!(
            &out[..],
            &[0, 0, 0, 1, 0x41, 9, 9, 0, 0, 0, 1, 0x41, 9, 9][..]
        );
    }

    #[test]
    fn a_length_past_the_end_is_refused() {
        let v = video();
        let frame = Frame {
            codec: Codec::H264,
            dts: 0,
            cts: 0,
            keyframe: false,
            data: Bytes::from_static(&[0, 0, 0, 9, 0x41, 1]),
        };
        assert_eq!(v.annex_b(&frame), None);
        assert_eq!(split_nals(&[0, 0], 4), None);
        assert_eq!(split_nals(&[], 4), Some(vec![]));
    }

    #[test]
    fn aac_becomes_opus_and_g711_passes() {
        let mut audio = Audio::default();
        // AAC-LC, 44.1 kHz, stereo.
        let aac = TrackInfo::new(Codec::Aac, Bytes::from_static(&[0x12, 0x10]));
        let opus = audio.configure("live/a", &aac).expect("an Opus track");
        assert_eq!((opus.codec, opus.sample_rate), (Codec::Opus, 48_000));
        assert!(audio.transcoder.is_some());
        let pcma = TrackInfo::new(Codec::G711A, Bytes::new());
        assert_eq!(audio.configure("live/a", &pcma), Some(pcma));
        assert!(audio.transcoder.is_none());
        // An AudioSpecificConfig the decoder cannot take: no audio for WebRTC.
        let broken = TrackInfo::new(Codec::Aac, Bytes::from_static(&[0xFF]));
        assert_eq!(audio.configure("live/a", &broken), None);
    }

    fn publisher() -> registry::SessionInfo {
        registry::SessionInfo {
            id: 1,
            protocol: registry::Protocol::Rtmp,
            peer: "127.0.0.1:5000".parse().expect("addr"),
            local: "127.0.0.1:1935".parse().expect("addr"),
            params: String::new(),
        }
    }

    async fn next(reader: &mut RtcReader) -> RtcFrame {
        for _ in 0..500 {
            if let Some(item) = reader.try_recv() {
                return item.expect("a frame");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("no frame");
    }

    fn idr(dts: u64, keyframe: bool, size: usize) -> Frame {
        let mut nal = vec![if keyframe { 0x65 } else { 0x41 }];
        nal.resize(size, 0xAB);
        Frame {
            codec: Codec::H264,
            dts,
            cts: 0,
            keyframe,
            data: avcc(&[&nal]),
        }
    }

    #[tokio::test]
    async fn a_stream_is_made_once_and_a_lagging_player_skips_to_a_keyframe() {
        let reg = Registry::default();
        let key = StreamKey::new("live", "rtc").expect("key");
        let guard = reg.publish(key.clone(), publisher()).expect("publish");
        let config = media::avc::DecoderConfig::build(SPS, &[PPS]).expect("avcC");
        guard.set_track(TrackInfo::new(Codec::H264, config));
        guard.set_track(TrackInfo::new(Codec::G711U, Bytes::new()));
        // Room for about two 20 KB frames.
        let output = WebRtcOutput::start(&reg, &key, 48 << 10)
            .await
            .expect("live");
        let codecs: Vec<Codec> = output.tracks().iter().map(|t| t.codec).collect();
        assert_eq!(codecs, [Codec::H264, Codec::G711U]);
        let waker = Arc::new(Notify::new());
        let mut player = output.reader(&waker);
        guard.push(idr(0, true, 100));
        guard.push(Frame {
            codec: Codec::G711U,
            dts: 10,
            cts: 0,
            keyframe: true,
            data: Bytes::from_static(&[0xFF; 160]),
        });
        let first = next(&mut player).await;
        assert!(first.keyframe && first.data.starts_with(&[0, 0, 0, 1, 0x67]));
        let audio = next(&mut player).await;
        assert_eq!(
            (audio.codec, audio.pts, audio.data.len()),
            (Codec::G711U, 10, 160)
        );
        // The output signalled the driver's waker.
        tokio::time::timeout(Duration::from_secs(1), waker.notified())
            .await
            .expect("woken");

        // The player stops reading while 20 KB frames go by: its place falls out of the ring,
        // and it goes on at the next keyframe, not at the first frame it missed.
        for (i, keyframe) in [false, false, false, true, false].into_iter().enumerate() {
            guard.push(idr(40 * (i as u64 + 1), keyframe, 20_000));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let resumed = next(&mut player).await;
        assert!(resumed.keyframe, "resumed at pts {}", resumed.pts);
        assert_eq!(resumed.pts, 160);
        // A new player starts at the last keyframe too.
        let mut late = output.reader(&waker);
        assert_eq!(next(&mut late).await.pts, 160);
    }
}
