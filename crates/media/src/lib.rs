//! Codec-neutral media types shared by every ferrostream crate.
//!
//! A publisher's packets become [`Frame`]s whatever protocol carried them; every output reads
//! the same frames. Payloads are [`bytes::Bytes`], so handing a frame to a thousand viewers is a
//! thousand reference-count increments, never a copy of the media.
//!
//! This crate does no IO and keeps no clock.
//!
//! Layout:
//! - [`StreamKey`]: the `{vhost, app, stream}` address of a live stream (ZLMediaKit's).
//! - [`Frame`], [`Codec`], [`TrackKind`]: one access unit of one track.
//! - [`avc`]: AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3) and SPS dimensions.
//! - [`hevc`]: HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3).
//! - [`aac`]: AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![forbid(clippy::print_stdout)]

pub mod aac;
pub mod avc;
mod bits;
#[doc(hidden)]
pub mod fuzzing;
pub mod hevc;
mod key;

pub use key::{query_param, KeyError, Part, StreamKey, DEFAULT_VHOST, MAX_PART_LEN};

use bytes::Bytes;

/// Errors from parsing codec configuration bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The bytes end early or hold an impossible value.
    #[error("malformed {context} at byte {offset}")]
    Malformed {
        /// Byte offset of the fault.
        offset: usize,
        /// What was being parsed.
        context: &'static str,
    },
}

/// Which kind of track a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// A video track.
    Video,
    /// An audio track.
    Audio,
}

/// A codec ferrostream can carry. Numbers follow ZLMediaKit's `codec_id` (Extension/Frame.h),
/// which the hook and API bodies report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264 / AVC; payload is length-prefixed NAL units (AVCC, 4-byte lengths).
    H264,
    /// H.265 / HEVC; payload is length-prefixed NAL units (4-byte lengths).
    H265,
    /// AAC; payload is one raw access unit (no ADTS header).
    Aac,
    /// G.711 A-law.
    G711A,
    /// G.711 µ-law.
    G711U,
    /// Opus.
    Opus,
    /// MPEG-1/2 Layer 3.
    Mp3,
}

impl Codec {
    /// The track kind this codec belongs to.
    pub fn kind(self) -> TrackKind {
        match self {
            Codec::H264 | Codec::H265 => TrackKind::Video,
            _ => TrackKind::Audio,
        }
    }

    /// ZLMediaKit's numeric `codec_id`.
    pub fn zlm_id(self) -> u32 {
        match self {
            Codec::H264 => 0,
            Codec::H265 => 1,
            Codec::Aac => 2,
            Codec::G711A => 3,
            Codec::G711U => 4,
            Codec::Opus => 5,
            Codec::Mp3 => 13,
        }
    }

    /// ZLMediaKit's `codec_id_name` as its hooks and API send it (`H264`, `mpeg4-generic`, …:
    /// the codec's RTP/SDP name, seen in bodies captured from ZLMediaKit).
    pub fn zlm_name(self) -> &'static str {
        match self {
            Codec::H264 => "H264",
            Codec::H265 => "H265",
            Codec::Aac => "mpeg4-generic",
            Codec::G711A => "PCMA",
            Codec::G711U => "PCMU",
            Codec::Opus => "opus",
            Codec::Mp3 => "MP3",
        }
    }
}

/// One access unit of one track, in decode order.
///
/// Timestamps are milliseconds on the stream's own timeline, which the registry keeps monotonic
/// (a publisher's jumps and 32-bit wraps are rebased before a frame reaches any viewer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The codec of the payload.
    pub codec: Codec,
    /// Decode timestamp, milliseconds.
    pub dts: u64,
    /// Composition offset `pts - dts`, milliseconds (B-frames make it positive).
    pub cts: i32,
    /// A random access point: IDR/IRAP for video; every audio frame is one.
    pub keyframe: bool,
    /// The access unit, in the format [`Codec`] documents.
    pub data: Bytes,
}

impl Frame {
    /// The track kind of this frame.
    pub fn kind(&self) -> TrackKind {
        self.codec.kind()
    }

    /// Presentation timestamp, milliseconds.
    pub fn pts(&self) -> u64 {
        self.dts.saturating_add_signed(i64::from(self.cts))
    }
}

/// Stream-level metadata a publisher sent (RTMP's `onMetaData`): ordered name/value pairs,
/// passed on to players that have a place for it. Untrusted: whoever builds it from a peer's
/// bytes keeps it within [`Metadata::MAX_ENTRIES`] and [`Metadata::MAX_TEXT`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata(pub Vec<(String, MetaValue)>);

impl Metadata {
    /// Most entries kept.
    pub const MAX_ENTRIES: usize = 64;
    /// Longest name or text value kept, in bytes.
    pub const MAX_TEXT: usize = 1024;

    /// The value named `name`.
    pub fn get(&self, name: &str) -> Option<&MetaValue> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Text(String),
}

/// What a track needs before its first frame can be decoded: the codec and its configuration
/// record, with the facts hooks and the API report about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    /// The codec.
    pub codec: Codec,
    /// Decoder configuration: avcC / hvcC record, or AudioSpecificConfig. Empty when the codec
    /// needs none or it has not arrived yet.
    pub config: Bytes,
    /// Video width in pixels (0 when unknown or audio).
    pub width: u32,
    /// Video height in pixels (0 when unknown or audio).
    pub height: u32,
    /// Audio sample rate in Hz (0 for video).
    pub sample_rate: u32,
    /// Audio channel count (0 for video).
    pub channels: u8,
}

impl TrackInfo {
    /// A track of `codec` whose configuration is `config`, with dimensions or sample rate read
    /// from the configuration where it can be parsed.
    pub fn new(codec: Codec, config: Bytes) -> Self {
        let mut info = TrackInfo {
            codec,
            config,
            width: 0,
            height: 0,
            sample_rate: 0,
            channels: 0,
        };
        match codec {
            Codec::H264 => {
                if let Ok(rec) = avc::DecoderConfig::parse(&info.config) {
                    if let Some((w, h)) = rec
                        .sps
                        .first()
                        .and_then(|sps| avc::sps_dimensions(sps).ok())
                    {
                        info.width = w;
                        info.height = h;
                    }
                }
            }
            Codec::H265 => {
                if let Ok(rec) = hevc::DecoderConfig::parse(&info.config) {
                    if let Some((w, h)) = rec.sps().and_then(|sps| hevc::sps_dimensions(sps).ok()) {
                        info.width = w;
                        info.height = h;
                    }
                }
            }
            Codec::Aac => {
                if let Ok(asc) = aac::AudioSpecificConfig::parse(&info.config) {
                    info.sample_rate = asc.sample_rate;
                    info.channels = asc.channels;
                }
            }
            Codec::G711A | Codec::G711U => {
                info.sample_rate = 8000;
                info.channels = 1;
            }
            Codec::Opus => {
                info.sample_rate = 48000;
                info.channels = 2;
            }
            Codec::Mp3 => {}
        }
        info
    }

    /// The track kind.
    pub fn kind(&self) -> TrackKind {
        self.codec.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pts_adds_composition_offset() {
        let f = Frame {
            codec: Codec::H264,
            dts: 1000,
            cts: 80,
            keyframe: true,
            data: Bytes::new(),
        };
        assert_eq!(f.pts(), 1080);
        assert_eq!(f.kind(), TrackKind::Video);
    }
}
