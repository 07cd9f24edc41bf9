//! Sans-IO MP4 for ferrostream (ISO/IEC 14496-12, with -14 for AAC and -15 for H.264/H.265):
//! the fragmented MP4 muxer behind recordings, `.live.mp4` and HLS fMP4, the index that turns a
//! finished recording into a normal MP4, and a minimal box reader.
//!
//! The crate never touches a file, a socket or a clock: frames go in, bytes come out, and the
//! caller decides where they are written. Boxes are written by hand (a size placeholder patched
//! when the box closes): the handful this needs is less code than adapting a box library's types.
//!
//! # Drive loop
//!
//! ```text
//!   Fmp4Muxer::new(&tracks) ──▶ init_segment()          (once: EXT-X-MAP, .live.mp4 head,
//!        │                                               start of a recording file)
//!        ▼
//!   live stream's frames ──▶ push(&frame)
//!        │
//!        ▼  when buffered_ms() is long enough (at a keyframe, before pushing it):
//!   fragment() / fragment_before(keyframe.dts) ──▶ Fragment { data: moof+mdat, samples, … }
//!                                                     │
//!      recording:  append data to the file ◀──────────┤
//!                  Progressive::add(&fragment) ◀──────┘
//!      segment closes: Progressive::header() + every fragment's mdat_payload = normal MP4
//! ```
//!
//! Drain rule: this is a transform (retina's `push`/`pull`, here called `fragment`), but nothing
//! comes out on its own: frames accumulate until the caller cuts a fragment, and a fragment holds
//! everything pushed since the previous one. Cut one before pushing a video keyframe so that
//! each fragment starts with one ([`Fragment::independent`]). Video before a track's first
//! keyframe is dropped, since nothing can decode it. Timestamps are written as pushed; a
//! recorder that wants its file to start at 0 rebases its frames first.
//!
//! A recording written this way is playable at every moment: a crash loses at most the fragment
//! being written, and [`boxes`] tells where the last whole box ends.
//!
//! ```
//! use bytes::Bytes;
//! use media::{Codec, Frame, TrackInfo};
//! use mp4::{Fmp4Muxer, Progressive};
//!
//! let tracks = [TrackInfo::new(Codec::Aac, Bytes::from_static(&[0x12, 0x10]))];
//! let mut muxer = Fmp4Muxer::new(&tracks).unwrap();
//! let mut file = muxer.init_segment().to_vec();
//! let mut index = Progressive::new(&muxer);
//! for i in 0..10u64 {
//!     let data = Bytes::from_static(&[0x21, 0x10, 0x04]);
//!     let dts = i * 1024 * 1000 / 44100;
//!     muxer.push(&Frame { codec: Codec::Aac, dts, cts: 0, keyframe: true, data });
//! }
//! let fragment = muxer.fragment().unwrap();
//! assert_eq!(fragment.samples.len(), 10);
//! file.extend_from_slice(&fragment.data);
//! index.add(&fragment);
//!
//! let mut normal = index.header().to_vec();
//! normal.extend_from_slice(&fragment.data[fragment.mdat_payload.clone()]);
//! let top: Vec<_> = mp4::boxes(&normal).map(|b| b.unwrap().0).collect();
//! assert_eq!(top, [*b"ftyp", *b"moov", *b"mdat"]);
//! ```
//!
//! Layout:
//! - [`Fmp4Muxer`], [`Fragment`], [`SampleInfo`]: the fragmented muxer (§8.8 movie fragments).
//! - [`Progressive`]: sample tables for the finished file (§8.6, §8.7).
//! - [`boxes`], [`find`], [`payload`]: reading boxes back (§4.2).
//! - [`Error`]: the crate's one error type.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![forbid(clippy::print_stdout)]

mod error;
mod fmp4;
#[doc(hidden)]
pub mod fuzzing;
mod moov;
mod progressive;
mod read;

pub use error::Error;
pub use fmp4::{Fmp4Muxer, Fragment, SampleInfo};
pub use progressive::Progressive;
pub use read::{boxes, find, payload};
