//! The codec headers at the start of FLV audio and video tag bodies.
//!
//! Legacy video (FLV spec Annex E.4.3.1): `FrameType(4) CodecID(4)`, then for AVC
//! `AVCPacketType(8) CompositionTime(SI24)`. Codec id 7 is AVC; 12 is HEVC the way Chinese CDNs
//! and ffmpeg forks (and ffmpeg ≥ 6.1's demuxer) carry it, with the same two fields.
//!
//! Enhanced video (Enhanced RTMP v1 "ExVideoTagHeader"): bit 7 `IsExHeader`, bits 4–6
//! `FrameType`, bits 0–3 `PacketType`, then a FourCC. PacketType 0 SequenceStart (the
//! configuration record), 1 CodedFrames (SI24 composition time first for `avc1`/`hvc1`),
//! 2 SequenceEnd, 3 CodedFramesX (composition time 0, not sent), 4 Metadata (AMF), 5
//! MPEG2TSSequenceStart; v2 adds 6 Multitrack and 7 ModEx.
//!
//! Legacy audio (Annex E.4.2.1): `SoundFormat(4) SoundRate(2) SoundSize(1) SoundType(1)`, then
//! for AAC `AACPacketType(8)`. SoundFormat 9 is Enhanced RTMP v2's ExAudioHeader: the low four
//! bits become `AudioPacketType` and a FourCC follows.

use media::Codec;

use crate::Error;

/// FrameType 1: a keyframe (IDR for AVC, IRAP for HEVC).
pub const FRAME_KEY: u8 = 1;
/// FrameType 2: an inter frame.
pub const FRAME_INTER: u8 = 2;
/// FrameType 5: a video info / command frame; carries no picture.
pub const FRAME_COMMAND: u8 = 5;

/// What a video tag body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoPacket {
    /// The decoder configuration record (avcC / hvcC): AVC sequence header, E-RTMP
    /// SequenceStart.
    SequenceStart,
    /// One access unit of length-prefixed NAL units.
    CodedFrames,
    /// End of sequence.
    SequenceEnd,
    /// E-RTMP Metadata (HDR colour info in AMF); nothing to decode.
    Metadata,
    /// A command frame (FrameType 5); nothing to decode.
    Command,
}

/// A parsed video tag header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoTag {
    /// FrameType: [`FRAME_KEY`], [`FRAME_INTER`], 3 disposable, 4 generated key,
    /// [`FRAME_COMMAND`].
    pub frame_type: u8,
    /// The codec; `None` only for an E-RTMP command frame, which names none.
    pub codec: Option<Codec>,
    /// What the body carries.
    pub packet: VideoPacket,
    /// Composition time offset (pts − dts), milliseconds.
    pub cts: i32,
    /// Where the payload (record or NAL units) starts in the body.
    pub data_offset: usize,
    /// Whether the enhanced (FourCC) header was used.
    pub enhanced: bool,
}

/// What an audio tag body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioPacket {
    /// Codec configuration: AAC AudioSpecificConfig, Opus ID header.
    SequenceStart,
    /// Coded audio.
    CodedFrames,
    /// End of sequence (E-RTMP).
    SequenceEnd,
    /// E-RTMP channel layout; nothing to decode.
    MultichannelConfig,
}

/// A parsed audio tag header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioTag {
    /// The codec.
    pub codec: Codec,
    /// What the body carries.
    pub packet: AudioPacket,
    /// Where the payload starts in the body.
    pub data_offset: usize,
    /// Legacy SoundRate: 0 = 5.5 kHz, 1 = 11 kHz, 2 = 22 kHz, 3 = 44 kHz (0 when enhanced).
    pub sound_rate: u8,
    /// Legacy SoundType: stereo (false when enhanced).
    pub stereo: bool,
    /// Whether the enhanced (FourCC) header was used.
    pub enhanced: bool,
}

fn si24(b: &[u8]) -> i32 {
    match b {
        [a, b, c, ..] => (i32::from_be_bytes([*a, *b, *c, 0])) >> 8,
        _ => 0,
    }
}

fn fourcc_text(f: &[u8]) -> String {
    f.iter()
        .map(|&c| {
            if c.is_ascii_graphic() {
                char::from(c)
            } else {
                '?'
            }
        })
        .collect()
}

/// Parses the header of a video tag body (an RTMP video message payload).
pub fn parse_video(body: &[u8]) -> Result<VideoTag, Error> {
    let &b0 = body
        .first()
        .ok_or(Error::malformed(0, "video tag header"))?;
    if b0 & 0x80 != 0 {
        return parse_ex_video(body, b0);
    }
    let frame_type = b0 >> 4;
    let codec_id = b0 & 0x0f;
    let mut tag = VideoTag {
        frame_type,
        codec: None,
        packet: VideoPacket::Command,
        cts: 0,
        data_offset: 1,
        enhanced: false,
    };
    tag.codec = match codec_id {
        7 => Some(Codec::H264),
        12 => Some(Codec::H265),
        _ if frame_type == FRAME_COMMAND => None,
        id => return Err(Error::Unsupported(format!("FLV video codec id {id}"))),
    };
    if frame_type == FRAME_COMMAND {
        return Ok(tag);
    }
    let &packet_type = body.get(1).ok_or(Error::malformed(1, "AVCPacketType"))?;
    tag.packet = match packet_type {
        0 => VideoPacket::SequenceStart,
        1 => VideoPacket::CodedFrames,
        2 => VideoPacket::SequenceEnd,
        _ => return Err(Error::malformed(1, "AVCPacketType")),
    };
    match body.get(2..5) {
        Some(cts) => tag.cts = si24(cts),
        // End of sequence is sometimes sent without the composition time.
        None if tag.packet == VideoPacket::SequenceEnd => {
            tag.data_offset = body.len();
            return Ok(tag);
        }
        None => return Err(Error::malformed(2, "video composition time")),
    }
    tag.data_offset = 5;
    Ok(tag)
}

fn parse_ex_video(body: &[u8], b0: u8) -> Result<VideoTag, Error> {
    let frame_type = (b0 >> 4) & 0x07;
    let packet_type = b0 & 0x0f;
    let mut tag = VideoTag {
        frame_type,
        codec: None,
        packet: VideoPacket::Command,
        cts: 0,
        data_offset: 1,
        enhanced: true,
    };
    match packet_type {
        // E-RTMP v2: a command frame carries one VideoCommand byte and no FourCC.
        p if p != 4 && frame_type == FRAME_COMMAND => {
            tag.data_offset = body.len().min(2);
            return Ok(tag);
        }
        6 => return Err(Error::Unsupported("E-RTMP multitrack video".into())),
        7 => return Err(Error::Unsupported("E-RTMP ModEx video packet".into())),
        _ => {}
    }
    let fourcc = body.get(1..5).ok_or(Error::malformed(1, "video FourCC"))?;
    tag.codec = Some(match fourcc {
        b"avc1" => Codec::H264,
        b"hvc1" => Codec::H265,
        other => {
            return Err(Error::Unsupported(format!(
                "E-RTMP video FourCC {:?}",
                fourcc_text(other)
            )))
        }
    });
    tag.data_offset = 5;
    tag.packet = match packet_type {
        0 => VideoPacket::SequenceStart,
        1 => {
            let cts = body
                .get(5..8)
                .ok_or(Error::malformed(5, "video composition time"))?;
            tag.cts = si24(cts);
            tag.data_offset = 8;
            VideoPacket::CodedFrames
        }
        2 => VideoPacket::SequenceEnd,
        3 => VideoPacket::CodedFrames,
        4 => VideoPacket::Metadata,
        5 => return Err(Error::Unsupported("E-RTMP MPEG2TSSequenceStart".into())),
        p => return Err(Error::Unsupported(format!("E-RTMP video packet type {p}"))),
    };
    Ok(tag)
}

/// Parses the header of an audio tag body (an RTMP audio message payload).
pub fn parse_audio(body: &[u8]) -> Result<AudioTag, Error> {
    let &b0 = body
        .first()
        .ok_or(Error::malformed(0, "audio tag header"))?;
    let format = b0 >> 4;
    let mut tag = AudioTag {
        codec: Codec::Aac,
        packet: AudioPacket::CodedFrames,
        data_offset: 1,
        sound_rate: (b0 >> 2) & 0x03,
        stereo: b0 & 0x01 != 0,
        enhanced: false,
    };
    match format {
        10 => {
            tag.packet = match body.get(1) {
                Some(0) => AudioPacket::SequenceStart,
                Some(1) => AudioPacket::CodedFrames,
                _ => return Err(Error::malformed(1, "AACPacketType")),
            };
            tag.data_offset = 2;
        }
        2 | 14 => tag.codec = Codec::Mp3,
        7 => tag.codec = Codec::G711A,
        8 => tag.codec = Codec::G711U,
        9 => return parse_ex_audio(body, b0),
        f => return Err(Error::Unsupported(format!("FLV sound format {f}"))),
    }
    Ok(tag)
}

fn parse_ex_audio(body: &[u8], b0: u8) -> Result<AudioTag, Error> {
    let packet = match b0 & 0x0f {
        0 => AudioPacket::SequenceStart,
        1 => AudioPacket::CodedFrames,
        2 => AudioPacket::SequenceEnd,
        4 => AudioPacket::MultichannelConfig,
        5 => return Err(Error::Unsupported("E-RTMP multitrack audio".into())),
        7 => return Err(Error::Unsupported("E-RTMP ModEx audio packet".into())),
        p => return Err(Error::Unsupported(format!("E-RTMP audio packet type {p}"))),
    };
    let fourcc = body.get(1..5).ok_or(Error::malformed(1, "audio FourCC"))?;
    let codec = match fourcc {
        b"Opus" => Codec::Opus,
        b"mp4a" => Codec::Aac,
        b".mp3" => Codec::Mp3,
        other => {
            return Err(Error::Unsupported(format!(
                "E-RTMP audio FourCC {:?}",
                fourcc_text(other)
            )))
        }
    };
    Ok(AudioTag {
        codec,
        packet,
        data_offset: 5,
        sound_rate: 0,
        stereo: false,
        enhanced: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_avc() {
        let t = parse_video(&[0x17, 0x00, 0, 0, 0, 0x01]).expect("seq");
        assert_eq!(t.codec, Some(Codec::H264));
        assert_eq!(t.packet, VideoPacket::SequenceStart);
        assert_eq!(
            (t.frame_type, t.data_offset, t.enhanced),
            (FRAME_KEY, 5, false)
        );
        let t = parse_video(&[0x27, 0x01, 0xff, 0xff, 0xd8, 0, 0, 0, 1]).expect("nalu");
        assert_eq!(
            (t.packet, t.cts, t.frame_type),
            (VideoPacket::CodedFrames, -40, 2)
        );
        let t = parse_video(&[0x27, 0x01, 0x00, 0x00, 0x50]).expect("nalu");
        assert_eq!(t.cts, 80);
        assert_eq!(
            parse_video(&[0x17, 0x02]).map(|t| t.packet),
            Ok(VideoPacket::SequenceEnd)
        );
    }

    #[test]
    fn legacy_hevc_codec_12() {
        let t = parse_video(&[0x1c, 0x01, 0, 0, 0x28, 0xaa]).expect("hevc");
        assert_eq!(t.codec, Some(Codec::H265));
        assert_eq!(t.cts, 40);
    }

    #[test]
    fn enhanced_hvc1() {
        let seq = [0x90, b'h', b'v', b'c', b'1', 0x01];
        let t = parse_video(&seq).expect("seq");
        assert_eq!(
            (t.codec, t.packet, t.data_offset),
            (Some(Codec::H265), VideoPacket::SequenceStart, 5)
        );
        assert_eq!(t.frame_type, FRAME_KEY);
        let coded = [0xa1, b'h', b'v', b'c', b'1', 0, 0, 0x14, 0xaa];
        let t = parse_video(&coded).expect("coded");
        assert_eq!(
            (t.frame_type, t.packet, t.cts, t.data_offset),
            (2, VideoPacket::CodedFrames, 20, 8)
        );
        let x = [0x93, b'a', b'v', b'c', b'1', 0xaa];
        let t = parse_video(&x).expect("codedx");
        assert_eq!((t.codec, t.cts, t.data_offset), (Some(Codec::H264), 0, 5));
        assert_eq!(
            parse_video(&[0x94, b'h', b'v', b'c', b'1']).map(|t| t.packet),
            Ok(VideoPacket::Metadata)
        );
        assert_eq!(
            parse_video(&[0xd0, 0x00]).map(|t| t.packet),
            Ok(VideoPacket::Command)
        );
    }

    #[test]
    fn enhanced_unsupported() {
        for body in [
            &[0x90, b'a', b'v', b'0', b'1'][..],
            &[0x90, b'v', b'p', b'0', b'9'],
            &[0x96, 0x00, b'h', b'v', b'c', b'1'],
            &[0x97, 0x00],
            &[0x95, b'h', b'v', b'c', b'1'],
        ] {
            assert!(
                matches!(parse_video(body), Err(Error::Unsupported(_))),
                "{body:?}"
            );
        }
        assert!(matches!(parse_video(&[0x12]), Err(Error::Unsupported(_))));
        assert!(matches!(parse_video(&[]), Err(Error::Malformed { .. })));
        assert!(matches!(
            parse_video(&[0x91, b'h', b'v', b'c', b'1', 0]),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn audio_formats() {
        let t = parse_audio(&[0xaf, 0x00, 0x12, 0x10]).expect("aac seq");
        assert_eq!(
            (t.codec, t.packet, t.data_offset),
            (Codec::Aac, AudioPacket::SequenceStart, 2)
        );
        assert_eq!((t.sound_rate, t.stereo), (3, true));
        let t = parse_audio(&[0xaf, 0x01, 0x21]).expect("aac raw");
        assert_eq!(t.packet, AudioPacket::CodedFrames);
        assert_eq!(parse_audio(&[0x2f, 0xff]).map(|t| t.codec), Ok(Codec::Mp3));
        assert_eq!(
            parse_audio(&[0x72, 0xd5]).map(|t| t.codec),
            Ok(Codec::G711A)
        );
        assert_eq!(
            parse_audio(&[0x82, 0xff]).map(|t| t.codec),
            Ok(Codec::G711U)
        );
        assert!(matches!(
            parse_audio(&[0xb2, 0]),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(parse_audio(&[0xaf]), Err(Error::Malformed { .. })));
    }

    #[test]
    fn enhanced_audio() {
        let t = parse_audio(&[0x90, b'O', b'p', b'u', b's', 1]).expect("opus");
        assert_eq!(
            (t.codec, t.packet, t.data_offset),
            (Codec::Opus, AudioPacket::SequenceStart, 5)
        );
        let t = parse_audio(&[0x91, b'm', b'p', b'4', b'a', 1]).expect("mp4a");
        assert_eq!((t.codec, t.packet), (Codec::Aac, AudioPacket::CodedFrames));
        assert!(matches!(
            parse_audio(&[0x91, b'f', b'L', b'a', b'C']),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(
            parse_audio(&[0x95, 0]),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(
            parse_audio(&[0x91, b'O']),
            Err(Error::Malformed { .. })
        ));
    }
}
