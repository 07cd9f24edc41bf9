//! FLV tag bodies to [`media::Frame`]s and [`media::TrackInfo`]s.

use bytes::Bytes;
use media::{Codec, Frame, TrackInfo};

use super::tag::{parse_audio, parse_video, AudioPacket, VideoPacket, FRAME_KEY};
use crate::Error;

/// What one tag body turned into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemuxEvent {
    /// A track's configuration arrived or changed (a sequence header, or the first frame of a
    /// codec that has none).
    Track(TrackInfo),
    /// A frame. `frame.data` is a zero-copy slice of the tag body starting at `data_offset`.
    Frame {
        /// The frame: AVCC NAL units for H.264/H.265 as FLV stores them, raw AAC, …
        frame: Frame,
        /// Where `frame.data` starts in the tag body.
        data_offset: usize,
    },
}

/// Turns one publisher's audio and video tag bodies into tracks and frames.
///
/// Contract: after each `push_*`, call [`Demuxer::pull`] until it returns `None`. Only the
/// first frame of a codec without a sequence header (G.711, MP3, Opus without an ID header)
/// produces two events: its `Track` from `push_audio`, then its `Frame` from `pull`.
///
/// Timestamps are the RTMP message's, unchanged (`dts = timestamp`); the registry rebases them.
#[derive(Debug, Default)]
pub struct Demuxer {
    video: Option<TrackInfo>,
    audio: Option<TrackInfo>,
    pending: Option<DemuxEvent>,
}

impl Demuxer {
    /// A demuxer that has seen no track yet.
    pub fn new() -> Self {
        Demuxer::default()
    }

    /// The current video track, once its sequence header arrived.
    pub fn video_track(&self) -> Option<&TrackInfo> {
        self.video.as_ref()
    }

    /// The current audio track.
    pub fn audio_track(&self) -> Option<&TrackInfo> {
        self.audio.as_ref()
    }

    /// The event a push left over, if any.
    pub fn pull(&mut self) -> Option<DemuxEvent> {
        self.pending.take()
    }

    /// Takes a video tag body. Returns `Ok(None)` for bodies that carry nothing to decode
    /// (end of sequence, command frames, E-RTMP metadata, empty frames, a repeated identical
    /// sequence header).
    pub fn push_video(
        &mut self,
        timestamp: u32,
        body: &Bytes,
    ) -> Result<Option<DemuxEvent>, Error> {
        self.pending = None;
        let tag = parse_video(body)?;
        let Some(codec) = tag.codec else {
            return Ok(None);
        };
        let data = body.slice(tag.data_offset.min(body.len())..);
        match tag.packet {
            VideoPacket::SequenceStart => Ok(set_track(&mut self.video, codec, data)),
            VideoPacket::CodedFrames if !data.is_empty() => Ok(Some(DemuxEvent::Frame {
                frame: Frame {
                    codec,
                    dts: u64::from(timestamp),
                    cts: tag.cts,
                    keyframe: tag.frame_type == FRAME_KEY,
                    data,
                },
                data_offset: tag.data_offset,
            })),
            _ => Ok(None),
        }
    }

    /// Takes an audio tag body. Returns `Ok(None)` for bodies that carry nothing to decode.
    pub fn push_audio(
        &mut self,
        timestamp: u32,
        body: &Bytes,
    ) -> Result<Option<DemuxEvent>, Error> {
        self.pending = None;
        let tag = parse_audio(body)?;
        let data = body.slice(tag.data_offset.min(body.len())..);
        match tag.packet {
            AudioPacket::SequenceStart => Ok(set_track(&mut self.audio, tag.codec, data)),
            AudioPacket::CodedFrames if !data.is_empty() => {
                let frame = DemuxEvent::Frame {
                    frame: Frame {
                        codec: tag.codec,
                        dts: u64::from(timestamp),
                        cts: 0,
                        keyframe: true,
                        data,
                    },
                    data_offset: tag.data_offset,
                };
                let needs_track = tag.codec != Codec::Aac
                    && self.audio.as_ref().is_none_or(|t| t.codec != tag.codec);
                if !needs_track {
                    return Ok(Some(frame));
                }
                let mut track = TrackInfo::new(tag.codec, Bytes::new());
                if track.sample_rate == 0 && !tag.enhanced {
                    track.sample_rate =
                        [5512, 11025, 22050, 44100][usize::from(tag.sound_rate & 3)];
                    track.channels = if tag.stereo { 2 } else { 1 };
                }
                self.audio = Some(track.clone());
                self.pending = Some(frame);
                Ok(Some(DemuxEvent::Track(track)))
            }
            _ => Ok(None),
        }
    }
}

/// Stores a sequence header's track unless it repeats the current one.
fn set_track(slot: &mut Option<TrackInfo>, codec: Codec, config: Bytes) -> Option<DemuxEvent> {
    if slot
        .as_ref()
        .is_some_and(|t| t.codec == codec && t.config == config)
    {
        return None;
    }
    let track = TrackInfo::new(codec, config);
    *slot = Some(track.clone());
    Some(DemuxEvent::Track(track))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flv::{FlvReader, TAG_AUDIO, TAG_VIDEO};

    #[test]
    fn ffmpeg_file_demuxes() {
        let data = include_bytes!("../../tests/data/ffmpeg5_h264_aac.flv");
        let mut d = Demuxer::new();
        let (mut tracks, mut video, mut audio, mut keys) = (Vec::new(), 0, 0, 0);
        for tag in FlvReader::new(Bytes::from_static(data)).expect("header") {
            let tag = tag.expect("tag");
            let body = tag.body;
            let ev = match tag.tag_type {
                TAG_VIDEO => d.push_video(tag.timestamp, &body),
                TAG_AUDIO => d.push_audio(tag.timestamp, &body),
                _ => continue,
            }
            .expect("demuxes");
            for ev in ev.into_iter().chain(d.pull()) {
                match ev {
                    DemuxEvent::Track(t) => tracks.push(t),
                    DemuxEvent::Frame { frame, data_offset } => {
                        assert_eq!(&body[data_offset..], &frame.data[..]);
                        assert_eq!(frame.dts, u64::from(tag.timestamp));
                        match frame.codec {
                            Codec::H264 => {
                                video += 1;
                                keys += usize::from(frame.keyframe);
                            }
                            _ => audio += 1,
                        }
                    }
                }
            }
        }
        assert_eq!(tracks.len(), 2);
        let v = tracks
            .iter()
            .find(|t| t.codec == Codec::H264)
            .expect("video track");
        assert_eq!((v.width, v.height), (320, 240));
        let a = tracks
            .iter()
            .find(|t| t.codec == Codec::Aac)
            .expect("audio track");
        assert_eq!(a.sample_rate, 44100);
        assert!(video >= 30 && keys >= 2, "{video} frames, {keys} keyframes");
        assert!(audio >= 50, "{audio} audio frames");
    }

    #[test]
    fn g711_announces_its_track_on_the_first_frame() {
        let mut d = Demuxer::new();
        let body = Bytes::from_static(&[0x72, 0xd5, 0xd5]);
        let ev = d.push_audio(20, &body).expect("ok");
        let Some(DemuxEvent::Track(t)) = ev else {
            panic!("expected a track, got {ev:?}");
        };
        assert_eq!(
            (t.codec, t.sample_rate, t.channels),
            (Codec::G711A, 8000, 1)
        );
        let Some(DemuxEvent::Frame { frame, data_offset }) = d.pull() else {
            panic!("expected the frame");
        };
        assert_eq!(
            (frame.dts, data_offset, &frame.data[..]),
            (20, 1, &[0xd5, 0xd5][..])
        );
        assert!(d.pull().is_none());
        let ev = d.push_audio(40, &body).expect("ok");
        assert!(matches!(ev, Some(DemuxEvent::Frame { .. })));
    }

    #[test]
    fn mp3_track_takes_rate_from_the_tag() {
        let mut d = Demuxer::new();
        let ev = d
            .push_audio(0, &Bytes::from_static(&[0x2e, 0xff, 0xfb]))
            .expect("ok");
        let Some(DemuxEvent::Track(t)) = ev else {
            panic!("expected a track");
        };
        assert_eq!((t.codec, t.sample_rate, t.channels), (Codec::Mp3, 44100, 1));
    }

    #[test]
    fn repeated_sequence_header_is_not_a_new_track() {
        let mut d = Demuxer::new();
        let seq = Bytes::from_static(&[0xaf, 0x00, 0x12, 0x10]);
        assert!(matches!(
            d.push_audio(0, &seq),
            Ok(Some(DemuxEvent::Track(_)))
        ));
        assert_eq!(d.push_audio(0, &seq), Ok(None));
        let other = Bytes::from_static(&[0xaf, 0x00, 0x11, 0x90]);
        assert!(matches!(
            d.push_audio(0, &other),
            Ok(Some(DemuxEvent::Track(_)))
        ));
        assert_eq!(d.audio_track().map(|t| t.sample_rate), Some(48000));
    }

    #[test]
    fn nothing_to_decode() {
        let mut d = Demuxer::new();
        for body in [
            &[0x17, 0x02, 0, 0, 0][..],
            &[0x17, 0x01, 0, 0, 0],
            &[0x50, 0x00],
        ] {
            assert_eq!(
                d.push_video(0, &Bytes::copy_from_slice(body)),
                Ok(None),
                "{body:?}"
            );
        }
        assert_eq!(
            d.push_audio(0, &Bytes::from_static(&[0xaf, 0x01])),
            Ok(None)
        );
        assert!(d.push_video(0, &Bytes::new()).is_err());
    }
}
