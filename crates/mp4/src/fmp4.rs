//! The fragmented MP4 muxer (ISO/IEC 14496-12 §8.8): an init segment (`ftyp` + `moov` with
//! `mvex`), then `moof` + `mdat` fragments cut from the frames pushed since the last one.

use bytes::{BufMut, Bytes, BytesMut};
use media::{Codec, Frame, TrackInfo, TrackKind};

use crate::moov::{self, TrakTimes};
use crate::Error;

/// `tfhd` flag: data offsets count from the start of the `moof` (§8.8.7.1).
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// `trun` flags (§8.8.8.1).
const TRUN_DATA_OFFSET: u32 = 0x00_0001;
const TRUN_SAMPLE_DURATION: u32 = 0x00_0100;
const TRUN_SAMPLE_SIZE: u32 = 0x00_0200;
const TRUN_SAMPLE_FLAGS: u32 = 0x00_0400;
const TRUN_SAMPLE_CTS: u32 = 0x00_0800;
/// Sample flags (§8.8.3.1): a sync sample depends on no other (`sample_depends_on` = 2).
const SAMPLE_SYNC: u32 = 0x0200_0000;
/// Sample flags: depends on others (`sample_depends_on` = 1) and `sample_is_non_sync_sample`.
const SAMPLE_NON_SYNC: u32 = 0x0101_0000;

/// One sample of a fragment, for the progressive index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleInfo {
    /// Index of the sample's track in [`Fmp4Muxer::tracks`].
    pub track: usize,
    /// Size in bytes.
    pub size: u32,
    /// Duration, in the track's timescale.
    pub duration: u32,
    /// Composition offset `pts - dts`, in the track's timescale.
    pub cts_offset: i32,
    /// A sync sample (random access point).
    pub sync: bool,
}

/// One `moof` + `mdat` cut by [`Fmp4Muxer::fragment`].
#[derive(Debug, Clone)]
pub struct Fragment {
    /// The `moof` and `mdat` boxes.
    pub data: Bytes,
    /// Where the samples are inside `data` (the `mdat` payload).
    pub mdat_payload: std::ops::Range<usize>,
    /// Decode timestamp of the first sample, milliseconds.
    pub start_ms: u64,
    /// Duration of the fragment, milliseconds (its longest track).
    pub duration_ms: u64,
    /// It starts with a video keyframe (or the stream is audio-only): a player can start here.
    pub independent: bool,
    /// The samples in `mdat` order: all of track 0's samples, then track 1's, … as written.
    pub samples: Vec<SampleInfo>,
    /// The `mfhd` sequence number, from 1.
    pub sequence: u32,
}

/// A buffered frame, with its timestamps in the track's timescale.
#[derive(Debug)]
struct Pending {
    dts: u64,
    dts_ms: u64,
    cts: i32,
    sync: bool,
    data: Bytes,
}

/// What the muxer keeps per track between fragments.
#[derive(Debug)]
struct TrackState {
    timescale: u32,
    pending: Vec<Pending>,
    /// Duration of the last sample written, to estimate the next fragment's last one.
    last_duration: u32,
    /// Video before the first keyframe cannot be decoded and is dropped.
    seen_keyframe: bool,
}

/// A fragmented MP4 muxer: [`init_segment`](Self::init_segment) once, then
/// [`push`](Self::push) frames and cut [`fragment`](Self::fragment)s.
///
/// Tracks: H.264 (`avc1` + `avcC`), H.265 (`hvc1` + `hvcC`), AAC (`mp4a` + `esds` with the
/// AudioSpecificConfig), Opus (`Opus` + `dOps`), G.711 A-law and µ-law (`alaw`, `ulaw`). MP3
/// tracks, and H.264/H.265/AAC tracks whose configuration is missing or does not parse, are
/// left out.
#[derive(Debug)]
pub struct Fmp4Muxer {
    tracks: Vec<TrackInfo>,
    state: Vec<TrackState>,
    init: Bytes,
    sequence: u32,
}

impl Fmp4Muxer {
    /// A muxer for the `tracks` it can carry (see [`Fmp4Muxer`]); [`Error::Unsupported`] when
    /// none is left.
    pub fn new(tracks: &[TrackInfo]) -> Result<Fmp4Muxer, Error> {
        let mut kept = Vec::new();
        for track in tracks {
            if !moov::supported(track) {
                tracing::debug!(codec = ?track.codec, "track left out of the MP4");
            } else if kept.iter().any(|k: &TrackInfo| k.codec == track.codec) {
                tracing::debug!(codec = ?track.codec, "second track of one codec left out");
            } else {
                kept.push(track.clone());
            }
        }
        if kept.is_empty() {
            let codecs: Vec<_> = tracks.iter().map(|t| t.codec).collect();
            return Err(Error::Unsupported(format!(
                "no track can go in an MP4: {codecs:?}"
            )));
        }
        let state = kept
            .iter()
            .map(|t| TrackState {
                timescale: moov::timescale(t),
                pending: Vec::new(),
                last_duration: 0,
                seen_keyframe: t.kind() == TrackKind::Audio,
            })
            .collect();
        let init = init_segment(&kept);
        Ok(Fmp4Muxer {
            tracks: kept,
            state,
            init,
            sequence: 0,
        })
    }

    /// The tracks in the muxer; a [`SampleInfo::track`] indexes this, and track ids are the
    /// index plus one.
    pub fn tracks(&self) -> &[TrackInfo] {
        &self.tracks
    }

    /// The timescale of track `track` (90000 for video, the sample rate for audio).
    pub fn timescale(&self, track: usize) -> Option<u32> {
        self.state.get(track).map(|s| s.timescale)
    }

    /// `ftyp` (`iso6`, compatible `iso6`, `mp41`) + `moov` with `mvex`/`trex`: what HLS fMP4
    /// `#EXT-X-MAP` and `.live.mp4` start with.
    pub fn init_segment(&self) -> Bytes {
        self.init.clone()
    }

    /// Buffers a frame (ignored if its codec's track is not in the muxer, if it is empty, or if
    /// it is video before the track's first keyframe). Timestamps are converted from
    /// milliseconds to the track's timescale; a sample's duration is the distance to the next
    /// sample's dts.
    pub fn push(&mut self, frame: &Frame) {
        let Some(index) = self.tracks.iter().position(|t| t.codec == frame.codec) else {
            return;
        };
        let Some(state) = self.state.get_mut(index) else {
            return;
        };
        if frame.data.is_empty() || (!state.seen_keyframe && !frame.keyframe) {
            return;
        }
        state.seen_keyframe = true;
        let ts = state.timescale;
        let cts =
            (i64::from(frame.cts) * i64::from(ts) + 500 * i64::from(frame.cts.signum())) / 1000;
        state.pending.push(Pending {
            dts: ms_to_ticks(frame.dts, ts),
            dts_ms: frame.dts,
            cts: cts.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
            sync: frame.keyframe || frame.kind() == TrackKind::Audio,
            data: frame.data.clone(),
        });
    }

    /// Milliseconds of media buffered since the last fragment: the longest span of decode
    /// timestamps of any track.
    pub fn buffered_ms(&self) -> u64 {
        self.state
            .iter()
            .filter_map(|s| {
                let (first, last) = (s.pending.first()?, s.pending.last()?);
                Some(last.dts_ms.saturating_sub(first.dts_ms))
            })
            .max()
            .unwrap_or(0)
    }

    /// Cuts a fragment (`moof` with `mfhd`, and per track a `traf` with `tfhd`
    /// default-base-is-moof, `tfdt` and `trun`; then `mdat`) from everything buffered; `None`
    /// if nothing is. Each track's last sample lasts as long as the one before it.
    pub fn fragment(&mut self) -> Option<Fragment> {
        self.cut(None, false)
    }

    /// Like [`fragment`](Self::fragment), when the caller knows the decode timestamp (ms) of
    /// the frame that comes next (the keyframe it cuts before): each track's last sample then
    /// lasts up to it, so the fragments follow each other without gap or overlap.
    pub fn fragment_before(&mut self, next_dts_ms: u64) -> Option<Fragment> {
        self.cut(Some(next_dts_ms), false)
    }

    /// Like [`fragment_before`](Self::fragment_before) with `next_dts_ms` the decode timestamp
    /// of the next video frame, which bounds the video track's last sample only: audio samples
    /// keep their own lengths (an AAC frame is 1024 samples wherever the video is cut). For
    /// fragments cut before every video frame (LL-HLS chunks), so no timeline gets a hole.
    pub fn fragment_before_video(&mut self, next_dts_ms: u64) -> Option<Fragment> {
        self.cut(Some(next_dts_ms), true)
    }

    fn cut(&mut self, next_dts_ms: Option<u64>, video_only: bool) -> Option<Fragment> {
        if self.state.iter().all(|s| s.pending.is_empty()) {
            return None;
        }
        self.sequence = self.sequence.wrapping_add(1);
        let has_video = self.tracks.iter().any(|t| t.kind() == TrackKind::Video);
        let independent = !has_video
            || self
                .tracks
                .iter()
                .zip(&self.state)
                .find(|(t, _)| t.kind() == TrackKind::Video)
                .and_then(|(_, s)| s.pending.first())
                .is_some_and(|p| p.sync);

        let mut samples = Vec::new();
        let mut payloads = Vec::new();
        let mut start_ms = u64::MAX;
        let mut end_ms = 0;
        let mut moof = BytesMut::new();
        let moof_at = moov::start(&mut moof, b"moof");
        moov::write_full(&mut moof, b"mfhd", 0, 0, |out| out.put_u32(self.sequence));
        // (position of a trun's data_offset, offset of its first sample in the mdat payload)
        let mut offsets = Vec::new();
        let mut payload_len = 0usize;
        for (index, (state, track)) in self.state.iter_mut().zip(&self.tracks).enumerate() {
            let pending = std::mem::take(&mut state.pending);
            let (Some(first), Some(last)) = (pending.first(), pending.last()) else {
                continue;
            };
            let next = next_dts_ms
                .filter(|_| !video_only || track.kind() == TrackKind::Video)
                .map(|ms| ms_to_ticks(ms, state.timescale));
            let durations = durations(&pending, next, state.last_duration, track);
            state.last_duration = durations.last().copied().unwrap_or(0);
            start_ms = start_ms.min(first.dts_ms);
            let end = last.dts.saturating_add(u64::from(state.last_duration));
            end_ms = end_ms.max(ticks_to_ms(end, state.timescale));

            let traf = moov::start(&mut moof, b"traf");
            let track_id = index as u32 + 1;
            moov::write_full(&mut moof, b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, |out| {
                out.put_u32(track_id);
            });
            moov::write_full(&mut moof, b"tfdt", 1, 0, |out| out.put_u64(first.dts));
            let any_cts = pending.iter().any(|p| p.cts != 0);
            let negative_cts = pending.iter().any(|p| p.cts < 0);
            let mut flags = TRUN_DATA_OFFSET | TRUN_SAMPLE_DURATION | TRUN_SAMPLE_SIZE;
            flags |= TRUN_SAMPLE_FLAGS;
            if any_cts {
                flags |= TRUN_SAMPLE_CTS;
            }
            let trun = moov::start_full(&mut moof, b"trun", u8::from(negative_cts), flags);
            moof.put_u32(pending.len() as u32);
            offsets.push((moof.len(), payload_len));
            moof.put_i32(0);
            for (p, duration) in pending.iter().zip(durations) {
                let size = u32::try_from(p.data.len()).unwrap_or(u32::MAX);
                moof.put_u32(duration);
                moof.put_u32(size);
                moof.put_u32(if p.sync { SAMPLE_SYNC } else { SAMPLE_NON_SYNC });
                if any_cts {
                    moof.put_i32(p.cts);
                }
                payload_len += p.data.len();
                samples.push(SampleInfo {
                    track: index,
                    size,
                    duration,
                    cts_offset: p.cts,
                    sync: p.sync,
                });
            }
            moov::end(&mut moof, trun);
            moov::end(&mut moof, traf);
            payloads.extend(pending.into_iter().map(|p| p.data));
        }
        moov::end(&mut moof, moof_at);

        let large = payload_len as u64 + 8 > u64::from(u32::MAX);
        let header_len = if large { 16 } else { 8 };
        let payload_start = moof.len() + header_len;
        for (at, offset) in offsets {
            let data_offset = i32::try_from(payload_start + offset).unwrap_or(i32::MAX);
            if let Some(field) = moof.get_mut(at..at + 4) {
                field.copy_from_slice(&data_offset.to_be_bytes());
            }
        }
        let mut data = moof;
        data.reserve(header_len + payload_len);
        if large {
            data.put_u32(1);
            data.put_slice(b"mdat");
            data.put_u64(payload_len as u64 + 16);
        } else {
            data.put_u32(payload_len as u32 + 8);
            data.put_slice(b"mdat");
        }
        for p in payloads {
            data.put_slice(&p);
        }
        let fragment = Fragment {
            mdat_payload: payload_start..data.len(),
            data: data.freeze(),
            start_ms,
            duration_ms: end_ms.saturating_sub(start_ms),
            independent,
            samples,
            sequence: self.sequence,
        };
        tracing::trace!(
            sequence = fragment.sequence,
            start_ms,
            duration_ms = fragment.duration_ms,
            bytes = fragment.data.len(),
            "fMP4 fragment"
        );
        Some(fragment)
    }
}

/// `ftyp` + `moov` (`mvhd`, a `trak` per track with empty sample tables, `mvex` with a `trex`
/// per track).
fn init_segment(tracks: &[TrackInfo]) -> Bytes {
    let mut out = BytesMut::new();
    moov::ftyp(&mut out);
    let moov_at = moov::start(&mut out, b"moov");
    moov::mvhd(&mut out, 0, tracks.len() as u32 + 1);
    for (index, track) in tracks.iter().enumerate() {
        let times = TrakTimes {
            id: index as u32 + 1,
            duration_ms: 0,
            media_duration: 0,
        };
        moov::trak(&mut out, track, &times, moov::empty_tables);
    }
    moov::write(&mut out, b"mvex", |out| {
        for index in 0..tracks.len() {
            moov::write_full(out, b"trex", 0, 0, |out| {
                out.put_u32(index as u32 + 1);
                out.put_u32(1); // default_sample_description_index
                out.put_u32(0);
                out.put_u32(0);
                out.put_u32(0);
            });
        }
    });
    moov::end(&mut out, moov_at);
    out.freeze()
}

/// The duration of each pending sample: the distance to the next one's dts; the last one's is
/// the distance to `next` (when it lies ahead), else the previous duration, else a guess.
fn durations(pending: &[Pending], next: Option<u64>, previous: u32, track: &TrackInfo) -> Vec<u32> {
    let mut out: Vec<u32> = pending
        .windows(2)
        .map(|w| clamp_u32(w[1].dts.saturating_sub(w[0].dts)))
        .collect();
    let last = pending.last();
    let to_next = last
        .zip(next)
        .filter(|(l, n)| *n > l.dts)
        .map(|(l, n)| clamp_u32(n - l.dts));
    let size = last.map_or(0, |l| l.data.len());
    let guess = to_next
        .or_else(|| exact_duration(track, size))
        .or(out.last().copied().filter(|d| *d > 0))
        .or(Some(previous).filter(|d| *d > 0))
        .unwrap_or_else(|| default_duration(track));
    out.push(guess);
    out
}

/// The duration a sample of `size` bytes has whatever its neighbours, in the track's timescale
/// (its sample rate): a G.711 sample is one byte per sample per channel, an AAC-LC access unit
/// 1024 samples (ISO/IEC 14496-3 §4.5.1.1 with frameLengthFlag 0, what every encoder writes).
fn exact_duration(track: &TrackInfo, size: usize) -> Option<u32> {
    if track.sample_rate == 0 {
        return None;
    }
    match track.codec {
        Codec::Aac => Some(1024),
        Codec::G711A | Codec::G711U => Some(clamp_u32(
            (size / usize::from(track.channels.max(1))) as u64,
        ))
        .filter(|d| *d > 0),
        _ => None,
    }
}

/// A sample's duration when nothing else tells: one frame at 25 fps, one AAC frame, 20 ms of
/// Opus.
fn default_duration(track: &TrackInfo) -> u32 {
    match track.codec {
        Codec::H264 | Codec::H265 => moov::VIDEO_TIMESCALE / 25,
        Codec::Aac => 1024,
        Codec::Opus => 960,
        Codec::G711A | Codec::G711U => 160,
        Codec::Mp3 => 1152,
    }
}

fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Milliseconds to ticks of `timescale`, rounded to nearest.
pub(crate) fn ms_to_ticks(ms: u64, timescale: u32) -> u64 {
    let t = (u128::from(ms) * u128::from(timescale) + 500) / 1000;
    u64::try_from(t).unwrap_or(u64::MAX)
}

/// Ticks of `timescale` to milliseconds, rounded to nearest.
pub(crate) fn ticks_to_ms(ticks: u64, timescale: u32) -> u64 {
    let ts = u128::from(timescale.max(1));
    let ms = (u128::from(ticks) * 1000 + ts / 2) / ts;
    u64::try_from(ms).unwrap_or(u64::MAX)
}
