//! Elementary streams of an MPEG-2 program (ISO/IEC 13818-1, carried in TS or PS) into
//! codec-neutral [`media::Frame`]s and [`media::TrackInfo`]s.
//!
//! One [`Elementary`] per program: every complete PES payload goes in with its `stream_type`
//! (from the PMT or the program stream map) and its 33-bit 90 kHz PTS/DTS; tracks and frames
//! come out.
//!
//! ```text
//!   Demuxer / PsDemuxer ──▶ Elementary::push(stream_type, pts, dts, payload)
//!                                   │
//!                                   └─▶ pull() until None: Track(info) before the first frame
//!                                       of a track and whenever its configuration changes;
//!                                       Frame(frame) in decode order per track
//!   end of the source ──▶ Elementary::flush() ──▶ pull() the last access unit
//! ```
//!
//! - H.264 (`0x1b`) and H.265 (`0x24`): the Annex B byte stream is split at start codes (a NAL
//!   unit may continue into the next PES, as GB28181 cameras cut large pictures), access units
//!   are delimited as ITU-T H.264 §7.4.1.2.3 / H.265 §7.4.2.4.4 say (an AUD, a parameter set
//!   or prefix SEI, or the first slice of a new picture, after a slice), so an access unit is
//!   handed out when the next one starts or on [`Elementary::flush`]: one frame of latency.
//!   AUDs and filler are dropped, parameter sets go into the `avcC`/`hvcC` of the track and not
//!   into frames; frames before the first complete set of parameter sets are dropped (nothing
//!   could decode them).
//! - AAC in ADTS (`0x0f`): each ADTS frame is one [`Frame`] (raw, header stripped), 1024
//!   samples after the one before it; the PES PTS dates the first frame that starts in it, and
//!   a frame cut across two PES is joined.
//! - G.711 A-law (`0x90`) and µ-law (`0x91`), as GB28181 numbers them: one frame per PES.
//! - MPEG audio (`0x03`, `0x04`): Layer III only (the [`Codec::Mp3`] ffmpeg writes as `mp3`);
//!   one frame per PES.
//! - Any other stream type is ignored.
//!
//! Timestamps: the 33-bit PTS/DTS wrap (every 26.5 hours) is unwrapped on one clock shared by
//! the program's streams, then turned into milliseconds; `cts = pts - dts` (never negative).
//! A PES without a PTS continues the timing of the one before it; a picture that starts in a
//! PES after another one (so the PES's PTS is not its own) gets the DTS of the picture before
//! it plus a frame duration (the shortest DTS step seen), and no composition offset.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use media::{aac::SAMPLE_RATES, avc, hevc, Codec, Frame, TrackInfo};

use crate::Error;

/// `stream_type` of H.264 (ISO/IEC 13818-1 Table 2-34).
pub const STREAM_TYPE_H264: u8 = 0x1b;
/// `stream_type` of H.265.
pub const STREAM_TYPE_H265: u8 = 0x24;
/// `stream_type` of AAC in ADTS.
pub const STREAM_TYPE_AAC: u8 = 0x0f;
/// `stream_type` of MPEG-1 audio.
pub const STREAM_TYPE_MPEG1_AUDIO: u8 = 0x03;
/// `stream_type` of MPEG-2 audio.
pub const STREAM_TYPE_MPEG2_AUDIO: u8 = 0x04;
/// `stream_type` GB28181 gives G.711 A-law.
pub const STREAM_TYPE_G711A: u8 = 0x90;
/// `stream_type` GB28181 gives G.711 µ-law.
pub const STREAM_TYPE_G711U: u8 = 0x91;

/// The longest PES payload [`Elementary::push`] takes.
pub const MAX_PAYLOAD: usize = 8 << 20;
/// The largest video access unit assembled; a larger one is dropped whole.
pub const MAX_ACCESS_UNIT: usize = 8 << 20;
/// The most NAL units one access unit may hold.
pub const MAX_NALS: usize = 1024;

/// The 33-bit PTS/DTS modulus.
const WRAP: i64 = 1 << 33;
/// A frame's duration (90 kHz) until two dated pictures tell it: 25 frames per second.
const DEFAULT_FRAME_TICKS: i64 = 3600;
/// Samples per AAC frame (AAC-LC, HE-AAC's core).
const AAC_SAMPLES: u64 = 1024;

/// What [`Elementary::pull`] hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EsEvent {
    /// A track appeared or its configuration changed; comes before the frames that need it.
    Track(TrackInfo),
    /// One access unit.
    Frame(Frame),
}

/// PTS and DTS of an access unit, unwrapped, 90 kHz.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    pts: i64,
    dts: i64,
}

/// Unwraps 33-bit timestamps onto one continuous timeline: each value is taken as the nearest
/// one (modulo 2^33) to the last value seen.
#[derive(Debug, Clone, Default)]
struct Clock {
    last: Option<i64>,
}

impl Clock {
    fn unwrap(&mut self, value: u64) -> i64 {
        let value = (value & (WRAP as u64 - 1)) as i64;
        let out = match self.last {
            None => value,
            Some(last) => {
                let mut delta = (value - last).rem_euclid(WRAP);
                if delta >= WRAP / 2 {
                    delta -= WRAP;
                }
                last + delta
            }
        };
        self.last = Some(out);
        out
    }

    fn stamp(&mut self, pts: Option<u64>, dts: Option<u64>) -> Option<Stamp> {
        let pts = self.unwrap(pts?);
        let dts = dts.map_or(pts, |d| self.unwrap(d));
        Some(Stamp { pts, dts })
    }
}

/// 90 kHz to milliseconds, never below zero.
fn ms(ticks: i64) -> u64 {
    (ticks.max(0) / 90) as u64
}

fn frame(codec: Codec, stamp: Stamp, keyframe: bool, data: Bytes) -> Frame {
    let dts = ms(stamp.dts);
    let pts = ms(stamp.pts.max(stamp.dts));
    Frame {
        codec,
        dts,
        cts: i32::try_from(pts - dts).unwrap_or(i32::MAX),
        keyframe,
        data,
    }
}

/// Turns the PES payloads of one program into tracks and frames. See the [module](self) docs.
#[derive(Debug, Default)]
pub struct Elementary {
    clock: Clock,
    h264: Option<Video>,
    h265: Option<Video>,
    aac: Option<Aac>,
    mp3: Option<Audio>,
    g711a: Option<Audio>,
    g711u: Option<Audio>,
    events: VecDeque<EsEvent>,
}

impl Elementary {
    /// No streams known yet.
    pub fn new() -> Self {
        Elementary::default()
    }

    /// One complete PES payload of a stream of ISO/IEC 13818-1 `stream_type`, with the PTS and
    /// DTS of its header (90 kHz, 33 bits). Then call [`Elementary::pull`] until `None`.
    ///
    /// An error names what was wrong with this payload (too long, an access unit too large,
    /// bytes that are no ADTS frame); what could be read of it was used and the next push
    /// starts clean.
    pub fn push(
        &mut self,
        stream_type: u8,
        pts: Option<u64>,
        dts: Option<u64>,
        payload: Bytes,
    ) -> Result<(), Error> {
        if payload.len() > MAX_PAYLOAD {
            return Err(Error::LimitExceeded {
                what: "PES payload",
                value: payload.len() as u64,
                limit: MAX_PAYLOAD as u64,
            });
        }
        let known = matches!(
            stream_type,
            STREAM_TYPE_H264
                | STREAM_TYPE_H265
                | STREAM_TYPE_AAC
                | STREAM_TYPE_MPEG1_AUDIO
                | STREAM_TYPE_MPEG2_AUDIO
                | STREAM_TYPE_G711A
                | STREAM_TYPE_G711U
        );
        if !known {
            tracing::trace!(stream_type, "stream type ignored");
            return Ok(());
        }
        // Only the streams read move the clock: another's timestamps could be anything.
        let stamp = self.clock.stamp(pts, dts);
        let events = &mut self.events;
        match stream_type {
            STREAM_TYPE_H264 => self
                .h264
                .get_or_insert_with(|| Video::new(false))
                .push(stamp, &payload, events),
            STREAM_TYPE_H265 => self
                .h265
                .get_or_insert_with(|| Video::new(true))
                .push(stamp, &payload, events),
            STREAM_TYPE_AAC => self
                .aac
                .get_or_insert_with(Aac::default)
                .push(stamp, &payload, events),
            STREAM_TYPE_MPEG1_AUDIO | STREAM_TYPE_MPEG2_AUDIO => self
                .mp3
                .get_or_insert_with(|| Audio::new(Codec::Mp3))
                .push(stamp, payload, events),
            STREAM_TYPE_G711A => self
                .g711a
                .get_or_insert_with(|| Audio::new(Codec::G711A))
                .push(stamp, payload, events),
            STREAM_TYPE_G711U => self
                .g711u
                .get_or_insert_with(|| Audio::new(Codec::G711U))
                .push(stamp, payload, events),
            _ => Ok(()),
        }
    }

    /// The source ended: hands out the video access units still being assembled.
    pub fn flush(&mut self) {
        for video in [&mut self.h264, &mut self.h265].into_iter().flatten() {
            video.end_nal(&mut self.events);
            video.finish(&mut self.events);
        }
    }

    /// Bytes were lost before the next payload (an RTP sequence gap): the access units and the
    /// ADTS frame being assembled are dropped rather than handed out damaged. Parameter sets,
    /// tracks and the clock are kept; video starts again at the next start code.
    pub fn discard(&mut self) {
        for video in [&mut self.h264, &mut self.h265].into_iter().flatten() {
            video.discard();
        }
        if let Some(aac) = &mut self.aac {
            aac.partial.clear();
        }
    }

    /// The next track or frame, `None` when the pushed payloads are used up.
    pub fn pull(&mut self) -> Option<EsEvent> {
        self.events.pop_front()
    }
}

/// One H.264 or H.265 stream: the NAL unit being read, the access unit being assembled and the
/// parameter sets.
#[derive(Debug)]
struct Video {
    hevc: bool,
    /// A start code was read: later bytes belong to a NAL unit.
    synced: bool,
    /// The NAL unit whose start code was read and whose end was not, in pieces.
    nal: Vec<Bytes>,
    nal_len: usize,
    /// The timestamp of the PES its start code was in, when it was the first NAL unit there.
    nal_stamp: Option<Stamp>,
    /// What it is, once its header was read (and the access unit before it ended if it
    /// starts a new one).
    nal_role: Option<Role>,
    au: Vec<Bytes>,
    au_len: usize,
    au_vcl: bool,
    au_key: bool,
    au_stamp: Option<Stamp>,
    au_broken: bool,
    last_stamp: Option<Stamp>,
    /// The shortest DTS step between two dated pictures: a frame's duration.
    frame_ticks: Option<i64>,
    vps: Option<Bytes>,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    /// The configuration last announced.
    config: Option<Bytes>,
}

/// How a NAL unit bears on access units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Access unit delimiter, filler, end of sequence/stream: starts nothing, goes nowhere
    /// (an AUD does start an access unit).
    Drop { starts_au: bool },
    /// VPS/SPS/PPS: starts an access unit after a slice; goes to the configuration.
    ParameterSet,
    /// Prefix SEI and other NAL units that may only precede the first slice.
    Prefix,
    /// A slice: `first` when it is the first of its picture.
    Slice { first: bool, key: bool },
    /// Anything else (suffix SEI, reserved types): kept in the current access unit.
    Other,
}

impl Video {
    fn new(hevc: bool) -> Self {
        Video {
            hevc,
            synced: false,
            nal: Vec::new(),
            nal_len: 0,
            nal_stamp: None,
            nal_role: None,
            au: Vec::new(),
            au_len: 0,
            au_vcl: false,
            au_key: false,
            au_stamp: None,
            au_broken: false,
            last_stamp: None,
            frame_ticks: None,
            vps: None,
            sps: None,
            pps: None,
            config: None,
        }
    }

    fn discard(&mut self) {
        self.synced = false;
        self.nal.clear();
        self.nal_len = 0;
        self.nal_stamp = None;
        self.nal_role = None;
        self.au.clear();
        self.au_len = 0;
        self.au_vcl = false;
        self.au_key = false;
        self.au_stamp = None;
        self.au_broken = false;
    }

    fn codec(&self) -> Codec {
        if self.hevc {
            Codec::H265
        } else {
            Codec::H264
        }
    }

    fn push(
        &mut self,
        stamp: Option<Stamp>,
        payload: &Bytes,
        events: &mut VecDeque<EsEvent>,
    ) -> Result<(), Error> {
        let mut stamp = stamp;
        let mut pos = 0;
        let mut result = Ok(());
        let was_broken = self.au_broken;
        while let Some(found) = find_start_code(payload, pos) {
            // The bytes before the start code end the NAL unit in progress.
            if found > pos {
                if let Err(e) = self.append(payload.slice(pos..found), events) {
                    result = result.and(Err(e));
                }
            }
            self.end_nal(events);
            self.synced = true;
            self.nal_stamp = stamp.take().or(self.nal_stamp.take());
            pos = found + 3;
        }
        if pos < payload.len() {
            if let Err(e) = self.append(payload.slice(pos..), events) {
                result = result.and(Err(e));
            }
        }
        if self.au_broken && !was_broken {
            result = result.and(Err(Error::LimitExceeded {
                what: "access unit",
                value: (self.au_len + self.nal_len) as u64,
                limit: MAX_ACCESS_UNIT as u64,
            }));
        }
        result
    }

    /// Bytes of the NAL unit in progress; before the first start code they are garbage.
    fn append(&mut self, bytes: Bytes, events: &mut VecDeque<EsEvent>) -> Result<(), Error> {
        if !self.synced {
            if bytes.iter().all(|&b| b == 0) {
                return Ok(()); // leading_zero_8bits
            }
            return Err(Error::malformed(0, "Annex B bytes before a start code"));
        }
        if self.au_len + self.nal_len + bytes.len() > MAX_ACCESS_UNIT {
            self.au_broken = true;
            self.nal.clear();
            self.nal_len = 0;
            return Ok(());
        }
        self.nal_len += bytes.len();
        self.nal.push(bytes);
        if self.nal_role.is_none() && self.nal_len >= 3 {
            let header: Vec<u8> = self
                .nal
                .iter()
                .flat_map(|b| b.iter().copied())
                .take(3)
                .collect();
            self.begin_nal(&header, events);
        }
        Ok(())
    }

    /// A NAL unit's header is known: it may end the access unit before it (so a picture is
    /// handed out as soon as the next one starts, not when the next one's first NAL unit ends).
    fn begin_nal(&mut self, header: &[u8], events: &mut VecDeque<EsEvent>) {
        let role = self.role(header);
        let stamp = self.nal_stamp;
        let starts = match role {
            Role::Drop { starts_au } => starts_au,
            Role::ParameterSet | Role::Prefix => true,
            Role::Slice { first, .. } => {
                first || stamp.is_some_and(|s| self.au_stamp.is_some_and(|a| a != s))
            }
            Role::Other => false,
        };
        if starts && (self.au_vcl || self.au_broken) {
            self.finish(events);
        }
        if self.au_stamp.is_none() {
            self.au_stamp = stamp;
        }
        self.nal_role = Some(role);
    }

    /// The NAL unit in progress is complete.
    fn end_nal(&mut self, events: &mut VecDeque<EsEvent>) {
        let pieces = std::mem::take(&mut self.nal);
        self.nal_len = 0;
        let nal = match pieces.len() {
            0 => Bytes::new(),
            1 => pieces.into_iter().next().unwrap_or_default(),
            _ => {
                let mut b = BytesMut::with_capacity(pieces.iter().map(Bytes::len).sum());
                for p in &pieces {
                    b.put_slice(p);
                }
                b.freeze()
            }
        };
        // trailing_zero_8bits (and the first zero of a 4-byte start code) are no part of it.
        let end = nal.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let nal = nal.slice(..end);
        if nal.is_empty() {
            // A start code with nothing after it yet still dates what follows.
            self.nal_role = None;
            return;
        }
        self.nal(nal, events);
        self.nal_stamp = None;
    }

    fn role(&self, nal: &[u8]) -> Role {
        if self.hevc {
            let t = nal.first().map_or(0, |h| (h >> 1) & 0x3f);
            match t {
                0..=31 => Role::Slice {
                    first: nal.get(2).is_some_and(|b| b & 0x80 != 0),
                    key: (16..=23).contains(&t),
                },
                hevc::NAL_VPS | hevc::NAL_SPS | hevc::NAL_PPS => Role::ParameterSet,
                35 => Role::Drop { starts_au: true },
                36..=38 => Role::Drop { starts_au: false },
                39 | 41..=44 | 48..=55 => Role::Prefix,
                _ => Role::Other,
            }
        } else {
            let t = nal.first().map_or(0, |h| h & 0x1f);
            match t {
                1..=5 => Role::Slice {
                    // first_mb_in_slice is ue(v): 0 is the single bit 1.
                    first: nal.get(1).is_some_and(|b| b & 0x80 != 0),
                    key: t == avc::NAL_IDR,
                },
                avc::NAL_SPS | avc::NAL_PPS => Role::ParameterSet,
                9 => Role::Drop { starts_au: true },
                10..=12 => Role::Drop { starts_au: false },
                6 | 13..=18 => Role::Prefix,
                _ => Role::Other,
            }
        }
    }

    fn nal(&mut self, nal: Bytes, events: &mut VecDeque<EsEvent>) {
        let role = match self.nal_role.take() {
            Some(role) => role,
            None => {
                self.begin_nal(&nal, events);
                self.nal_role.take().unwrap_or(Role::Other)
            }
        };
        match role {
            Role::Drop { .. } => {}
            Role::ParameterSet => self.parameter_set(nal),
            Role::Slice { key, .. } => {
                self.au_vcl = true;
                self.au_key |= key;
                self.add(nal);
            }
            Role::Prefix | Role::Other => self.add(nal),
        }
    }

    fn add(&mut self, nal: Bytes) {
        if self.au.len() >= MAX_NALS || self.au_len + 4 + nal.len() > MAX_ACCESS_UNIT {
            self.au_broken = true;
            return;
        }
        self.au_len += 4 + nal.len();
        self.au.push(nal);
    }

    fn parameter_set(&mut self, nal: Bytes) {
        let t = if self.hevc {
            (nal[0] >> 1) & 0x3f
        } else {
            nal[0] & 0x1f
        };
        let slot = match t {
            hevc::NAL_VPS if self.hevc => &mut self.vps,
            hevc::NAL_SPS if self.hevc => &mut self.sps,
            hevc::NAL_PPS if self.hevc => &mut self.pps,
            avc::NAL_SPS => &mut self.sps,
            _ => &mut self.pps,
        };
        *slot = Some(nal);
    }

    /// The configuration record the parameter sets make, when they are all there and valid.
    fn build_config(&self) -> Option<Bytes> {
        let built = if self.hevc {
            hevc::DecoderConfig::build(self.vps.as_ref()?, self.sps.as_ref()?, self.pps.as_ref()?)
        } else {
            avc::DecoderConfig::build(self.sps.as_ref()?, &[self.pps.as_ref()?])
        };
        match built {
            Ok(config) => Some(config),
            Err(e) => {
                tracing::debug!(error = %e, "in-band parameter sets unusable");
                None
            }
        }
    }

    /// Hands out the access unit assembled so far and starts the next one.
    fn finish(&mut self, events: &mut VecDeque<EsEvent>) {
        let nals = std::mem::take(&mut self.au);
        let (vcl, key, broken) = (self.au_vcl, self.au_key, self.au_broken);
        let stamp = match (self.au_stamp.take(), self.last_stamp) {
            (Some(s), Some(last)) => {
                let step = s.dts - last.dts;
                if step > 0 && self.frame_ticks.is_none_or(|t| step < t) {
                    self.frame_ticks = Some(step);
                }
                Some(s)
            }
            (Some(s), None) => Some(s),
            // A second picture starting in one PES has no PTS of its own (§2.4.3.7: the PTS
            // dates the first): it follows the one before by a frame duration, shown as
            // soon as decoded.
            (None, Some(last)) => {
                let dts = last.dts + self.frame_ticks.unwrap_or(DEFAULT_FRAME_TICKS);
                Some(Stamp { pts: dts, dts })
            }
            (None, None) => None,
        };
        self.au_len = 0;
        self.au_vcl = false;
        self.au_key = false;
        self.au_broken = false;
        if let Some(s) = stamp {
            self.last_stamp = Some(s);
        }
        let (Some(stamp), true, false) = (stamp, vcl, broken) else {
            return;
        };
        if let Some(config) = self.build_config() {
            if self.config.as_ref() != Some(&config) {
                self.config = Some(config.clone());
                events.push_back(EsEvent::Track(TrackInfo::new(self.codec(), config)));
            }
        }
        if self.config.is_none() {
            tracing::trace!("video before its parameter sets dropped");
            return;
        }
        let mut data = BytesMut::with_capacity(nals.iter().map(|n| 4 + n.len()).sum());
        for nal in &nals {
            data.put_u32(nal.len() as u32);
            data.put_slice(nal);
        }
        events.push_back(EsEvent::Frame(frame(
            self.codec(),
            stamp,
            key,
            data.freeze(),
        )));
    }
}

/// Where the next `00 00 01` at or after `from` starts.
fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let hay = data.get(from..)?;
    let mut i = 0;
    while i + 3 <= hay.len() {
        match hay[i + 2] {
            // The third byte is not 0 or 1: no start code begins at i, i+1 or i+2.
            b if b > 1 => i += 3,
            1 if hay[i] == 0 && hay[i + 1] == 0 => return Some(from + i),
            _ => i += 1,
        }
    }
    None
}

/// The fields of an ADTS header (ISO/IEC 14496-3 §1.A.2.2) a demuxer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Adts {
    header_len: usize,
    frame_len: usize,
    object_type: u8,
    sample_rate_index: u8,
    channels: u8,
    raw_blocks: u8,
}

impl Adts {
    /// Parses the header at the start of `data`; `None` when there are fewer than 7 bytes.
    fn parse(data: &[u8]) -> Option<Result<Adts, Error>> {
        let h = data.get(..7)?;
        if h[0] != 0xff || h[1] & 0xf6 != 0xf0 {
            return Some(Err(Error::malformed(0, "ADTS syncword")));
        }
        let header_len = if h[1] & 0x01 != 0 { 7 } else { 9 };
        let sample_rate_index = (h[2] >> 2) & 0x0f;
        let frame_len =
            usize::from(h[3] & 0x03) << 11 | usize::from(h[4]) << 3 | usize::from(h[5] >> 5);
        if usize::from(sample_rate_index) >= SAMPLE_RATES.len() {
            return Some(Err(Error::malformed(2, "ADTS sampling_frequency_index")));
        }
        if frame_len <= header_len {
            return Some(Err(Error::malformed(3, "ADTS frame_length")));
        }
        Some(Ok(Adts {
            header_len,
            frame_len,
            object_type: (h[2] >> 6) + 1,
            sample_rate_index,
            channels: (h[2] & 0x01) << 2 | h[3] >> 6,
            raw_blocks: h[6] & 0x03,
        }))
    }

    /// The two-byte AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) the header describes.
    fn config(&self) -> Bytes {
        let (ot, sfi, ch) = (self.object_type, self.sample_rate_index, self.channels);
        Bytes::copy_from_slice(&[ot << 3 | sfi >> 1, (sfi & 1) << 7 | ch << 3])
    }

    fn sample_rate(&self) -> u32 {
        SAMPLE_RATES[usize::from(self.sample_rate_index)]
    }
}

/// The AAC stream: a frame cut across PES, the frames' clock and the configuration.
#[derive(Debug, Default)]
struct Aac {
    /// The start of an ADTS frame whose end is in the next PES (at most one frame, 8191 bytes).
    partial: Vec<u8>,
    /// The PTS of the frame `count` frames back.
    base: Option<i64>,
    count: u64,
    config: Option<Bytes>,
}

impl Aac {
    fn push(
        &mut self,
        stamp: Option<Stamp>,
        payload: &Bytes,
        events: &mut VecDeque<EsEvent>,
    ) -> Result<(), Error> {
        // Bytes of a frame that started in an earlier PES come first; the PTS dates the first
        // frame that starts in this one.
        let carried = self.partial.len();
        let data = if carried == 0 {
            payload.clone()
        } else {
            let mut joined = std::mem::take(&mut self.partial);
            joined.extend_from_slice(payload);
            Bytes::from(joined)
        };
        let mut stamp = stamp;
        let mut pos = 0;
        let mut result = Ok(());
        while pos < data.len() {
            if pos >= carried {
                if let Some(s) = stamp.take() {
                    self.base = Some(s.pts);
                    self.count = 0;
                }
            }
            let rest = &data[pos..];
            match Adts::parse(rest) {
                None => {
                    self.partial = rest.to_vec();
                    break;
                }
                Some(Err(e)) => {
                    // Resynchronise on the next syncword.
                    result = result.and(Err(e));
                    let next = rest[1..]
                        .windows(2)
                        .position(|w| w[0] == 0xff && w[1] & 0xf6 == 0xf0);
                    match next {
                        Some(n) => pos += 1 + n,
                        None => break,
                    }
                }
                Some(Ok(adts)) if adts.frame_len > rest.len() => {
                    self.partial = rest.to_vec();
                    break;
                }
                Some(Ok(adts)) => {
                    self.frame(adts, data.slice(pos..pos + adts.frame_len), events);
                    pos += adts.frame_len;
                }
            }
        }
        result
    }

    /// One whole ADTS frame, header included.
    fn frame(&mut self, adts: Adts, data: Bytes, events: &mut VecDeque<EsEvent>) {
        let rate = u64::from(adts.sample_rate());
        let frames = u64::from(adts.raw_blocks) + 1;
        let at = self.base.map(|base| {
            let offset = self.count * AAC_SAMPLES * 90_000 / rate;
            base + offset as i64
        });
        self.count += frames;
        let Some(at) = at else {
            return; // no PTS yet: nothing to date it by
        };
        if adts.raw_blocks != 0 {
            // Several raw_data_blocks share one header: each would need its own split, which
            // only a parse of the raw blocks gives. No encoder in use writes them.
            tracing::debug!("ADTS frame with several raw data blocks dropped");
            return;
        }
        let config = adts.config();
        if self.config.as_ref() != Some(&config) {
            self.config = Some(config.clone());
            events.push_back(EsEvent::Track(TrackInfo::new(Codec::Aac, config)));
        }
        let stamp = Stamp { pts: at, dts: at };
        events.push_back(EsEvent::Frame(frame(
            Codec::Aac,
            stamp,
            true,
            data.slice(adts.header_len..),
        )));
    }
}

/// An audio stream carried one frame per PES: G.711 and MPEG audio.
#[derive(Debug)]
struct Audio {
    codec: Codec,
    announced: bool,
    last: Option<Stamp>,
}

impl Audio {
    fn new(codec: Codec) -> Self {
        Audio {
            codec,
            announced: false,
            last: None,
        }
    }

    fn push(
        &mut self,
        stamp: Option<Stamp>,
        payload: Bytes,
        events: &mut VecDeque<EsEvent>,
    ) -> Result<(), Error> {
        if payload.is_empty() {
            return Ok(());
        }
        let Some(stamp) = stamp.or(self.last) else {
            return Ok(());
        };
        self.last = Some(stamp);
        if !self.announced {
            let mut track = TrackInfo::new(self.codec, Bytes::new());
            if self.codec == Codec::Mp3 {
                let (rate, channels) = mpeg_audio_header(&payload)?;
                track.sample_rate = rate;
                track.channels = channels;
            }
            self.announced = true;
            events.push_back(EsEvent::Track(track));
        }
        events.push_back(EsEvent::Frame(frame(self.codec, stamp, true, payload)));
        Ok(())
    }
}

/// Sample rate and channels of an MPEG audio Layer III frame header (ISO/IEC 11172-3 §2.4.1.3,
/// 13818-3 for the lower rates).
fn mpeg_audio_header(data: &[u8]) -> Result<(u32, u8), Error> {
    let h = data
        .get(..4)
        .ok_or(Error::malformed(0, "MPEG audio header"))?;
    if h[0] != 0xff || h[1] & 0xe0 != 0xe0 {
        return Err(Error::malformed(0, "MPEG audio syncword"));
    }
    let version = (h[1] >> 3) & 0x03; // 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
    let layer = (h[1] >> 1) & 0x03; // 1 = Layer III
    if layer != 1 {
        return Err(Error::malformed(
            1,
            "MPEG audio layer (only Layer III is carried)",
        ));
    }
    let base = match (h[2] >> 2) & 0x03 {
        0 => 44100,
        1 => 48000,
        2 => 32000,
        _ => return Err(Error::malformed(2, "MPEG audio sampling_frequency")),
    };
    let rate = match version {
        3 => base,
        2 => base / 2,
        0 => base / 4,
        _ => return Err(Error::malformed(1, "MPEG audio version")),
    };
    let channels = if h[3] >> 6 == 3 { 1 } else { 2 };
    Ok((rate, channels))
}

#[cfg(test)]
#[path = "es_tests.rs"]
mod tests;
