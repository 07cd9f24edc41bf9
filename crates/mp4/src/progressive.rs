//! The index of a normal ("progressive", "faststart") MP4 built from the fragments of one
//! recording: the sample tables of ISO/IEC 14496-12 §8.6-§8.7, with the `moov` ahead of one
//! `mdat` that holds every fragment's samples in order.

use bytes::{BufMut, Bytes, BytesMut};
use media::{TrackInfo, TrackKind};

use crate::fmp4::{ticks_to_ms, Fmp4Muxer, Fragment};
use crate::moov::{self, TrakTimes};

/// Builds a normal (progressive, "faststart") MP4 from the fragments of one recording, without
/// holding the media.
///
/// [`add`](Self::add) each fragment's samples as it is written; then [`header`](Self::header)
/// gives `ftyp` + `moov` + the `mdat` box header, and the finished file is that header followed
/// by every fragment's [`Fragment::mdat_payload`] bytes in order (the caller copies them from the
/// fragmented file). Chunk offsets (`co64` when needed) point there: one chunk per track per
/// fragment. The tables are `stts`, `ctts` (when any composition offset is not 0), `stss`
/// (video), `stsz`, `stsc` and `stco`/`co64`; there is no edit list, and `mvhd`, `tkhd` and
/// `mdhd` carry the durations. Tracks without samples are left out.
///
/// Memory: 4 to 12 bytes per sample (sizes, and the `stts`/`ctts` runs B-frames break up) plus
/// 12 per fragment and track: an hour of 25 fps video with AAC at 48 kHz is some 250 000
/// samples, 1 to 3 MB.
#[derive(Debug, Clone)]
pub struct Progressive {
    tracks: Vec<TrackInfo>,
    index: Vec<TrackIndex>,
    payload_len: u64,
}

/// The sample tables of one track, run-length coded where the box is.
#[derive(Debug, Clone, Default)]
struct TrackIndex {
    timescale: u32,
    /// `stts`: (sample_count, sample_delta).
    stts: Vec<(u32, u32)>,
    /// `ctts`: (sample_count, sample_offset).
    ctts: Vec<(u32, i32)>,
    sizes: Vec<u32>,
    /// `stss`: 1-based numbers of the sync samples.
    sync: Vec<u32>,
    /// (offset from the start of the `mdat` payload, sample count).
    chunks: Vec<(u64, u32)>,
    duration: u64,
}

impl TrackIndex {
    fn push(&mut self, duration: u32, cts: i32, size: u32, sync: bool) {
        match self.stts.last_mut() {
            Some((n, d)) if *d == duration => *n += 1,
            _ => self.stts.push((1, duration)),
        }
        match self.ctts.last_mut() {
            Some((n, c)) if *c == cts => *n += 1,
            _ => self.ctts.push((1, cts)),
        }
        self.sizes.push(size);
        if sync {
            self.sync.push(self.sizes.len() as u32);
        }
        self.duration += u64::from(duration);
    }
}

impl Progressive {
    /// An empty index for the tracks of `muxer`.
    pub fn new(muxer: &Fmp4Muxer) -> Progressive {
        let tracks = muxer.tracks().to_vec();
        let index = (0..tracks.len())
            .map(|t| TrackIndex {
                timescale: muxer.timescale(t).unwrap_or(moov::MOVIE_TIMESCALE),
                ..TrackIndex::default()
            })
            .collect();
        Progressive {
            tracks,
            index,
            payload_len: 0,
        }
    }

    /// Adds the samples of `fragment`, whose `mdat` payload will follow the previous one's.
    pub fn add(&mut self, fragment: &Fragment) {
        let mut offset = self.payload_len;
        let mut chunk_track = None;
        for s in &fragment.samples {
            if let Some(index) = self.index.get_mut(s.track) {
                if chunk_track != Some(s.track) {
                    index.chunks.push((offset, 0));
                    chunk_track = Some(s.track);
                }
                if let Some((_, n)) = index.chunks.last_mut() {
                    *n += 1;
                }
                index.push(s.duration, s.cts_offset, s.size, s.sync);
            }
            offset += u64::from(s.size);
        }
        self.payload_len += fragment.mdat_payload.len() as u64;
    }

    /// Duration of the longest track so far, milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.index
            .iter()
            .map(|i| ticks_to_ms(i.duration, i.timescale))
            .max()
            .unwrap_or(0)
    }

    /// Total size of the `mdat` payloads added so far: what follows [`header`](Self::header).
    pub fn payload_len(&self) -> u64 {
        self.payload_len
    }

    /// `ftyp` + `moov` + the `mdat` box header, for the fragments added so far.
    pub fn header(&self) -> Bytes {
        let large = self.payload_len + 8 > u64::from(u32::MAX);
        let mdat_header = if large { 16 } else { 8 };
        // The moov's size depends only on stco vs co64, and that on where the payload lands.
        let mut co64 = false;
        let mut len = self.moov(0, false).len() as u64 + mdat_header;
        if len + self.payload_len > u64::from(u32::MAX) {
            co64 = true;
            len = self.moov(0, true).len() as u64 + mdat_header;
        }
        let mut out = self.moov(len, co64);
        if large {
            out.put_u32(1);
            out.put_slice(b"mdat");
            out.put_u64(self.payload_len + 16);
        } else {
            out.put_u32(self.payload_len as u32 + 8);
            out.put_slice(b"mdat");
        }
        out.freeze()
    }

    /// `ftyp` + `moov`, with chunk offsets counted from `base` (where the payload starts).
    fn moov(&self, base: u64, co64: bool) -> BytesMut {
        let mut out = BytesMut::new();
        moov::ftyp(&mut out);
        let moov_at = moov::start(&mut out, b"moov");
        moov::mvhd(&mut out, self.duration_ms(), self.tracks.len() as u32 + 1);
        for (i, (track, index)) in self.tracks.iter().zip(&self.index).enumerate() {
            if index.sizes.is_empty() {
                continue;
            }
            let times = TrakTimes {
                id: i as u32 + 1,
                duration_ms: ticks_to_ms(index.duration, index.timescale),
                media_duration: index.duration,
            };
            moov::trak(&mut out, track, &times, |out| {
                tables(out, index, track.kind() == TrackKind::Video, base, co64);
            });
        }
        moov::end(&mut out, moov_at);
        out
    }
}

/// The sample tables after `stsd` in a track's `stbl`.
fn tables(out: &mut BytesMut, index: &TrackIndex, video: bool, base: u64, co64: bool) {
    moov::write_full(out, b"stts", 0, 0, |out| {
        out.put_u32(index.stts.len() as u32);
        for (n, d) in &index.stts {
            out.put_u32(*n);
            out.put_u32(*d);
        }
    });
    if index.ctts.iter().any(|(_, c)| *c != 0) {
        let negative = index.ctts.iter().any(|(_, c)| *c < 0);
        moov::write_full(out, b"ctts", u8::from(negative), 0, |out| {
            out.put_u32(index.ctts.len() as u32);
            for (n, c) in &index.ctts {
                out.put_u32(*n);
                out.put_i32(*c);
            }
        });
    }
    if video {
        moov::write_full(out, b"stss", 0, 0, |out| {
            out.put_u32(index.sync.len() as u32);
            index.sync.iter().for_each(|s| out.put_u32(*s));
        });
    }
    moov::write_full(out, b"stsc", 0, 0, |out| {
        let at = out.len();
        out.put_u32(0);
        let mut entries = 0u32;
        let mut previous = None;
        for (i, (_, n)) in index.chunks.iter().enumerate() {
            if previous != Some(*n) {
                out.put_u32(i as u32 + 1); // first_chunk
                out.put_u32(*n); // samples_per_chunk
                out.put_u32(1); // sample_description_index
                entries += 1;
                previous = Some(*n);
            }
        }
        if let Some(field) = out.get_mut(at..at + 4) {
            field.copy_from_slice(&entries.to_be_bytes());
        }
    });
    moov::write_full(out, b"stsz", 0, 0, |out| {
        out.put_u32(0); // sample_size: each has its own
        out.put_u32(index.sizes.len() as u32);
        index.sizes.iter().for_each(|s| out.put_u32(*s));
    });
    if co64 {
        moov::write_full(out, b"co64", 0, 0, |out| {
            out.put_u32(index.chunks.len() as u32);
            index.chunks.iter().for_each(|(o, _)| out.put_u64(base + o));
        });
    } else {
        moov::write_full(out, b"stco", 0, 0, |out| {
            out.put_u32(index.chunks.len() as u32);
            index
                .chunks
                .iter()
                .for_each(|(o, _)| out.put_u32((base + o) as u32));
        });
    }
}
