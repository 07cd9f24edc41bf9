//! [`media::Frame`]s and [`media::TrackInfo`]s to FLV tag bodies, for ingests that are not RTMP
//! (RTSP) feeding RTMP and HTTP-FLV viewers. Mux each frame once per stream and share the
//! resulting [`Bytes`] with every viewer.

use bytes::{BufMut, Bytes, BytesMut};
use media::{Codec, Frame, TrackInfo};

use super::tag::{FRAME_INTER, FRAME_KEY};
use super::{TAG_AUDIO, TAG_VIDEO};

/// Legacy FLV CodecID of AVC.
const CODEC_AVC: u8 = 7;
/// CodecID 12: HEVC as Chinese CDNs and ffmpeg forks carry it in legacy FLV.
const CODEC_HEVC_LEGACY: u8 = 12;
/// Enhanced RTMP `IsExHeader` bit.
const EX_HEADER: u8 = 0x80;
/// SoundFormat 9: Enhanced RTMP ExAudioHeader.
const SOUND_EX_HEADER: u8 = 9;

/// Writes FLV tag bodies.
///
/// H.264 uses legacy CodecID 7. H.265 uses Enhanced RTMP `hvc1` (what OBS 30+, ffmpeg 6.1+ and
/// players with E-RTMP support read), or legacy CodecID 12 with [`Muxer::new`]`(true)` for
/// players that only know that. AAC, G.711 and MP3 use the legacy audio header; Opus uses the
/// E-RTMP `Opus` FourCC.
#[derive(Debug, Clone)]
pub struct Muxer {
    legacy_hevc: bool,
    /// The legacy audio header byte for the current audio track's rate and channel count.
    audio_flags: Option<u8>,
}

impl Default for Muxer {
    fn default() -> Self {
        Muxer::new(false)
    }
}

impl Muxer {
    /// A muxer; `legacy_hevc` selects CodecID 12 instead of E-RTMP `hvc1` for H.265.
    pub fn new(legacy_hevc: bool) -> Self {
        Muxer {
            legacy_hevc,
            audio_flags: None,
        }
    }

    /// The FLV tag type for a codec: [`TAG_VIDEO`] or [`TAG_AUDIO`].
    pub fn tag_type(codec: Codec) -> u8 {
        match codec.kind() {
            media::TrackKind::Video => TAG_VIDEO,
            media::TrackKind::Audio => TAG_AUDIO,
        }
    }

    /// The sequence header tag body for `track`, or `None` when the codec has none (G.711,
    /// MP3, Opus without an ID header) or its configuration has not arrived. Also remembers the
    /// audio rate and channel count for later frames' headers.
    pub fn sequence_header(&mut self, track: &TrackInfo) -> Option<Bytes> {
        if track.codec.kind() == media::TrackKind::Audio {
            self.audio_flags = Some(legacy_audio_flags(
                track.codec,
                track.sample_rate,
                track.channels,
            ));
        }
        if track.config.is_empty() {
            return None;
        }
        let mut out = BytesMut::with_capacity(track.config.len() + 5);
        match track.codec {
            Codec::H264 => out.put_slice(&[(FRAME_KEY << 4) | CODEC_AVC, 0, 0, 0, 0]),
            Codec::H265 if self.legacy_hevc => {
                out.put_slice(&[(FRAME_KEY << 4) | CODEC_HEVC_LEGACY, 0, 0, 0, 0]);
            }
            Codec::H265 => {
                out.put_u8(EX_HEADER | (FRAME_KEY << 4));
                out.put_slice(b"hvc1");
            }
            Codec::Aac => out.put_slice(&[self.audio_byte(Codec::Aac), 0]),
            Codec::Opus => {
                out.put_u8(SOUND_EX_HEADER << 4);
                out.put_slice(b"Opus");
            }
            Codec::G711A | Codec::G711U | Codec::Mp3 => return None,
        }
        out.put_slice(&track.config);
        Some(out.freeze())
    }

    /// The tag body for `frame`.
    pub fn frame(&self, frame: &Frame) -> Bytes {
        let mut out = BytesMut::with_capacity(frame.data.len() + 8);
        self.write_frame(frame, &mut out);
        out.freeze()
    }

    /// Appends the tag body for `frame` to `out`.
    pub fn write_frame(&self, frame: &Frame, out: &mut BytesMut) {
        let frame_type = if frame.keyframe {
            FRAME_KEY
        } else {
            FRAME_INTER
        };
        let cts = frame.cts.clamp(-0x80_0000, 0x7f_ffff).to_be_bytes();
        out.reserve(frame.data.len() + 8);
        match frame.codec {
            Codec::H264 => {
                out.put_slice(&[(frame_type << 4) | CODEC_AVC, 1, cts[1], cts[2], cts[3]])
            }
            Codec::H265 if self.legacy_hevc => {
                out.put_slice(&[
                    (frame_type << 4) | CODEC_HEVC_LEGACY,
                    1,
                    cts[1],
                    cts[2],
                    cts[3],
                ]);
            }
            Codec::H265 if frame.cts == 0 => {
                // CodedFramesX: composition time 0 is implied, saving three bytes.
                out.put_u8(EX_HEADER | (frame_type << 4) | 3);
                out.put_slice(b"hvc1");
            }
            Codec::H265 => {
                out.put_u8(EX_HEADER | (frame_type << 4) | 1);
                out.put_slice(b"hvc1");
                out.put_slice(&cts[1..]);
            }
            Codec::Aac => out.put_slice(&[self.audio_byte(Codec::Aac), 1]),
            Codec::Opus => {
                out.put_u8((SOUND_EX_HEADER << 4) | 1);
                out.put_slice(b"Opus");
            }
            c @ (Codec::G711A | Codec::G711U | Codec::Mp3) => out.put_u8(self.audio_byte(c)),
        }
        out.put_slice(&frame.data);
    }

    fn audio_byte(&self, codec: Codec) -> u8 {
        match self.audio_flags {
            Some(flags) => (flags & 0x0f) | (sound_format(codec) << 4),
            None => legacy_audio_flags(codec, 0, 0),
        }
    }
}

fn sound_format(codec: Codec) -> u8 {
    match codec {
        Codec::Mp3 => 2,
        Codec::G711A => 7,
        Codec::G711U => 8,
        Codec::Opus => SOUND_EX_HEADER,
        _ => 10,
    }
}

/// The legacy audio header byte (FLV spec E.4.2.1). AAC is always written as 44 kHz stereo
/// 16-bit (`0xAF`), as the spec requires; the decoder reads the real values from the
/// AudioSpecificConfig. G.711 uses rate 0 (its 8 kHz has no code) and 16-bit, as ffmpeg does.
fn legacy_audio_flags(codec: Codec, sample_rate: u32, channels: u8) -> u8 {
    let format = sound_format(codec) << 4;
    match codec {
        Codec::Aac => format | 0x0f,
        Codec::G711A | Codec::G711U => format | 0x02 | u8::from(channels > 1),
        _ => {
            let rate = match sample_rate {
                0 => 3,
                r if r < 11_025 => 0,
                r if r < 22_050 => 1,
                r if r < 44_100 => 2,
                _ => 3,
            };
            format | (rate << 2) | 0x02 | u8::from(channels != 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flv::{DemuxEvent, Demuxer};

    fn frame(codec: Codec, cts: i32, keyframe: bool) -> Frame {
        Frame {
            codec,
            dts: 1000,
            cts,
            keyframe,
            data: Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]),
        }
    }

    /// Muxing then demuxing gives the frame back, for every codec.
    #[test]
    fn frames_round_trip_through_the_demuxer() {
        for legacy in [false, true] {
            let mux = Muxer::new(legacy);
            for codec in [
                Codec::H264,
                Codec::H265,
                Codec::Aac,
                Codec::G711A,
                Codec::G711U,
                Codec::Mp3,
                Codec::Opus,
            ] {
                for (cts, key) in [(0, true), (80, false), (-40, false)] {
                    let f = frame(
                        codec,
                        if codec.kind() == media::TrackKind::Audio {
                            0
                        } else {
                            cts
                        },
                        key || codec.kind() == media::TrackKind::Audio,
                    );
                    let body = mux.frame(&f);
                    let mut d = Demuxer::new();
                    let first = if codec.kind() == media::TrackKind::Video {
                        d.push_video(1000, &body)
                    } else {
                        d.push_audio(1000, &body)
                    }
                    .expect("demuxes");
                    let got = match first {
                        Some(DemuxEvent::Frame { frame, .. }) => frame,
                        Some(DemuxEvent::Track(_)) => match d.pull() {
                            Some(DemuxEvent::Frame { frame, .. }) => frame,
                            other => panic!("{codec:?}: {other:?}"),
                        },
                        None => panic!("{codec:?}: nothing"),
                    };
                    assert_eq!(got, f, "{codec:?} legacy_hevc={legacy}");
                }
            }
        }
    }

    #[test]
    fn sequence_headers_round_trip() {
        let avcc = Bytes::from_static(&[0x01, 0x64, 0x00, 0x0d, 0xff, 0xe0, 0xe0]);
        let asc = Bytes::from_static(&[0x12, 0x10]);
        for legacy in [false, true] {
            let mut mux = Muxer::new(legacy);
            for (codec, config) in [
                (Codec::H264, avcc.clone()),
                (Codec::H265, avcc.clone()),
                (Codec::Aac, asc.clone()),
                (Codec::Opus, asc.clone()),
            ] {
                let track = TrackInfo::new(codec, config.clone());
                let body = mux.sequence_header(&track).expect("has a header");
                let mut d = Demuxer::new();
                let ev = if codec.kind() == media::TrackKind::Video {
                    d.push_video(0, &body)
                } else {
                    d.push_audio(0, &body)
                };
                assert_eq!(ev, Ok(Some(DemuxEvent::Track(track))), "{codec:?}");
            }
            assert!(mux
                .sequence_header(&TrackInfo::new(Codec::G711U, Bytes::new()))
                .is_none());
        }
    }

    #[test]
    fn header_bytes() {
        let mut mux = Muxer::new(false);
        assert_eq!(
            mux.frame(&frame(Codec::H264, 40, true))[..5],
            [0x17, 1, 0, 0, 40]
        );
        assert_eq!(
            mux.frame(&frame(Codec::H265, 0, false))[..5],
            [0xa3, b'h', b'v', b'c', b'1']
        );
        assert_eq!(mux.frame(&frame(Codec::Aac, 0, true))[..2], [0xaf, 1]);
        assert_eq!(mux.frame(&frame(Codec::G711A, 0, true))[0], 0x72);
        mux.sequence_header(&TrackInfo::new(Codec::Mp3, Bytes::new()));
        assert_eq!(mux.frame(&frame(Codec::Mp3, 0, true))[0], 0x2f);
        let mut t = TrackInfo::new(Codec::Mp3, Bytes::new());
        t.sample_rate = 22050;
        t.channels = 1;
        mux.sequence_header(&t);
        assert_eq!(mux.frame(&frame(Codec::Mp3, 0, true))[0], 0x2a);
    }
}
