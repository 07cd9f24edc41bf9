//! Sans-IO HLS for ferrostream: an MPEG-TS muxer (ISO/IEC 13818-1) and live media playlists
//! (RFC 8216, with draft-pantos-hls-rfc8216bis for low-latency HLS); and the MPEG systems side
//! of the pulls: TS and PS demuxers, PES payloads into frames, and an m3u8 parser.
//!
//! Reading (the HTTP-TS, HLS and GB28181 sources):
//!
//! ```text
//!   TS bytes ─▶ reader::Demuxer ─┐
//!                                ├─▶ (stream_type, PTS, DTS, payload) ─▶ es::Elementary ─▶ tracks, frames
//!   PS bytes ─▶ ps::PsDemuxer ───┘
//!   m3u8 text ─▶ m3u8::parse ─▶ variants / segments
//! ```
//!
//! The crate never touches a socket, a file, a clock or a task. Frames go in, TS bytes and
//! m3u8 text come out; the server owns the segments' bytes, decides when to cut (time is the
//! frames' own timestamps, passed in), serves the playlist and parks blocking reloads.
//! fMP4 segments for LL-HLS come from the `mp4` crate, driven by the same [`Playlist`].
//!
//! # Drive loop
//!
//! ```text
//!   stream's frames ──▶ TsMuxer::push(&frame, &mut segment_bytes)   (one muxer per stream)
//!        │                 appends whole 188-byte packets; PAT+PMT before every video keyframe
//!        │
//!        └─ video keyframe and segment ≥ hls.segDur?
//!              yes: Playlist::end_segment(ms) ─▶ msns to drop from the server's store
//!                   Playlist::start_segment(uri) ─▶ msn; a new segment_bytes buffer
//!              then push the keyframe into the new buffer
//!
//!   GET …/hls.m3u8[?_HLS_msn=&_HLS_part=] ─▶ Playlist::has(msn, part)
//!              true: Playlist::render()    false: wait for the next change, ask again
//! ```
//!
//! There is nothing to drain: [`TsMuxer::push`] writes straight into the caller's buffer, and
//! every 188 bytes of it is one packet, so a segment boundary is any packet boundary.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use hls::{Playlist, PlaylistConfig, TsMuxer};
//! use media::{Codec, Frame, TrackInfo};
//!
//! let tracks = [TrackInfo::new(Codec::Aac, Bytes::from_static(&[0x12, 0x10]))];
//! let mut muxer = TsMuxer::new(&tracks);
//! let mut playlist = Playlist::new(PlaylistConfig::default());
//! let mut segment = BytesMut::new();
//! let msn = playlist.start_segment("0.ts".into());
//! for i in 0..100u64 {
//!     let frame = Frame {
//!         codec: Codec::Aac,
//!         dts: i * 23,
//!         cts: 0,
//!         keyframe: true,
//!         data: Bytes::from_static(&[0x21, 0x10, 0x05]),
//!     };
//!     muxer.push(&frame, &mut segment);
//! }
//! assert_eq!(segment.len() % 188, 0);
//! assert!(playlist.end_segment(2300).is_empty());
//! assert!(playlist.has(msn, None));
//! assert!(playlist.render().contains("#EXTINF:2.300,\n0.ts\n"));
//! ```
//!
//! Layout:
//! - [`ts`]: [`TsMuxer`], PAT/PMT/PES/PCR packets written by hand (no `mpeg2ts` dependency).
//! - [`playlist`]: [`Playlist`] and [`PlaylistConfig`], the live m3u8 with LL-HLS parts.
//! - [`reader`]: a TS packet, PSI and PES reader (the TS pull proxies' demuxer, and what the
//!   tests check the muxer's output with).
//! - [`es`]: [`es::Elementary`], PES payloads of a program into tracks and frames.
//! - [`ps`]: [`ps::PsDemuxer`], an MPEG-2 Program Stream (GB28181's) into PES.
//! - [`m3u8`]: [`m3u8::parse`], the playlists an HLS pull reads.
//! - [`Error`]: what the reader returns.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![forbid(clippy::print_stdout)]

mod error;
pub mod es;
#[doc(hidden)]
pub mod fuzzing;
pub mod m3u8;
pub mod playlist;
pub mod ps;
pub mod reader;
pub mod ts;

pub use error::Error;
pub use playlist::{Playlist, PlaylistConfig};
pub use ts::TsMuxer;
