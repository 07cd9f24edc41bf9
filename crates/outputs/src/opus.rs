//! AAC to Opus, for the outputs whose players take no AAC (WebRTC): sans-IO, one instance per
//! stream, so every viewer shares one decode and one encode.
//!
//! ```text
//!  AAC access unit ─▶ symphonia AacDecoder ─▶ f32 planes (1024 frames, 1–2 channels)
//!      (Frame)            │ 8–96 kHz
//!                         ▼
//!                  rubato Fft resampler ─▶ 48 kHz, delay trimmed once per anchor
//!                         ▼
//!                  pending samples ─▶ libopus, 20 ms (960 frames) each ─▶ Opus Frame
//! ```
//!
//! Timing: the first Opus frame after an anchor has the dts of the first AAC frame after it,
//! and each one after is 20 ms later, counted in samples so it never drifts from the audio it
//! carries. An input dts more than [`REANCHOR_MS`] away from where the samples say it should
//! be, or one that goes backwards, drops what is pending and anchors again on that frame.
//!
//! One instance serves one AAC track: when the stream's AAC configuration changes (a new
//! `TrackInfo`), make a new one.
//!
//! Bounds: an access unit over [`MAX_ACCESS_UNIT`] bytes is refused; the pending buffer holds
//! less than one Opus frame between calls. A corrupt access unit is a [`TranscodeError`] the
//! caller skips (it never panics); its 1024 samples become silence, so the frames after it keep
//! their place on the timeline, and the frames that call encoded come out with the next call
//! (at most 500 ms of them).
//!
//! Limits of the decoder (symphonia 0.6): AAC-LC with 1024-sample frames, mono or stereo.
//! HE-AAC v1/v2 is decoded as its AAC-LC core (no SBR, no PS: half the bandwidth, mono for v2)
//! at the core's rate. 960-sample frames and more than two channels are refused by
//! [`AacToOpus::new`] with a message naming the reason.

use bytes::Bytes;
use media::{Codec, Frame, TrackInfo};
use rubato::audioadapter_buffers::direct::{InterleavedSlice, SequentialSliceOfVecs};
use rubato::{Fft, FixedSync, Resampler};
use symphonia_codec_aac::AacDecoder;
use symphonia_core::codecs::audio::well_known::CODEC_ID_AAC;
use symphonia_core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia_core::packet::PacketRef;
use symphonia_core::units::{Duration, Timestamp};

/// The Opus sample rate and the only one this produces.
pub const OPUS_RATE: u32 = 48_000;
/// Samples per channel in one 20 ms Opus frame at 48 kHz.
pub const OPUS_FRAME: usize = 960;
/// Milliseconds in one Opus frame.
pub const OPUS_FRAME_MS: u64 = 20;
/// Samples per channel in one AAC-LC access unit.
const AAC_FRAME: usize = 1024;
/// Largest AAC access unit accepted, in bytes. AAC-LC allows 6144 bits per channel
/// (ISO/IEC 14496-3 §4.5.3.2), 768 bytes; this leaves room for fill elements.
pub const MAX_ACCESS_UNIT: usize = 8192;
/// How far an input dts may be from the one its samples predict before the timeline is
/// anchored again, milliseconds.
pub const REANCHOR_MS: u64 = 500;
/// Most frames kept for the next call while access units fail (500 ms).
const MAX_CARRY: usize = 25;
/// Input sample rates accepted, Hz.
const RATES: std::ops::RangeInclusive<u32> = 8_000..=96_000;
/// Largest Opus packet libopus writes for one 20 ms frame (RFC 6716 §3.4 limits a frame to
/// 1275 bytes); a little more so the encoder never runs short.
const MAX_PACKET: usize = 1500;
/// Encoder bit rate per channel, bits per second: transparent for speech and music at the
/// rates WebRTC players expect.
const BITRATE_PER_CHANNEL: i32 = 48_000;

/// Why a track or an access unit could not be transcoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranscodeError {
    /// The track or frame is not AAC.
    #[error("AAC to Opus: the input is {0:?}, not AAC")]
    NotAac(Codec),
    /// The AudioSpecificConfig cannot be decoded (missing, malformed, or a profile the
    /// decoder does not implement).
    #[error("AAC to Opus: cannot decode this AAC track's AudioSpecificConfig: {0}")]
    Config(String),
    /// The sample rate is outside 8–96 kHz.
    #[error("AAC to Opus: sample rate {0} Hz is outside 8000-96000 Hz")]
    SampleRate(u32),
    /// The access unit is empty or larger than [`MAX_ACCESS_UNIT`].
    #[error("AAC to Opus: access unit of {0} bytes (1-{MAX_ACCESS_UNIT} accepted)")]
    AccessUnitSize(usize),
    /// The AAC decoder refused the access unit (corrupt or unsupported content).
    #[error("AAC to Opus: corrupt AAC access unit: {0}")]
    Decode(String),
    /// The resampler failed (an internal size mismatch).
    #[error("AAC to Opus: resampler: {0}")]
    Resample(String),
    /// libopus failed.
    #[error("AAC to Opus: Opus encoder: {0}")]
    Encode(#[from] ::opus::Error),
}

/// Where the current output timeline starts.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    /// dts of the first input frame after the anchor, ms: the first Opus frame's dts.
    dts: u64,
    /// Input samples (per channel) pushed since the anchor.
    samples_in: u64,
    /// Opus frames produced since the anchor.
    frames_out: u64,
    /// dts of the last input frame, ms.
    last_dts: u64,
}

/// An AAC track decoded, resampled to 48 kHz and encoded to 20 ms Opus frames.
pub struct AacToOpus {
    decoder: AacDecoder,
    in_rate: u32,
    channels: usize,
    /// Present unless the input is already 48 kHz.
    resampler: Option<Fft<f32>>,
    /// Decoded samples, one plane per channel.
    planes: Vec<Vec<f32>>,
    /// One resampler output, interleaved.
    resampled: Vec<f32>,
    /// 48 kHz interleaved samples not yet encoded: less than one Opus frame between calls.
    pending: Vec<f32>,
    /// Resampler delay, output frames, still to drop after the last anchor.
    skip: usize,
    encoder: ::opus::Encoder,
    packet: Vec<u8>,
    opus_head: Bytes,
    anchor: Option<Anchor>,
    /// Frames encoded during a call that returned an error, for the next call: at most
    /// [`MAX_CARRY`].
    carry: Vec<Frame>,
}

impl std::fmt::Debug for AacToOpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AacToOpus")
            .field("in_rate", &self.in_rate)
            .field("channels", &self.channels)
            .field("pending", &self.pending.len())
            .field("anchor", &self.anchor)
            .finish_non_exhaustive()
    }
}

impl AacToOpus {
    /// From the AAC track's AudioSpecificConfig (TrackInfo.config); Err when it cannot decode it.
    pub fn new(track: &TrackInfo) -> Result<Self, TranscodeError> {
        if track.codec != Codec::Aac {
            return Err(TranscodeError::NotAac(track.codec));
        }
        let config = lc_core(&track.config)?;
        let asc = media::aac::AudioSpecificConfig::parse(&config)
            .map_err(|e| TranscodeError::Config(e.to_string()))?;
        if !RATES.contains(&asc.sample_rate) {
            return Err(TranscodeError::SampleRate(asc.sample_rate));
        }
        let mut params = AudioCodecParameters::new();
        params
            .for_codec(CODEC_ID_AAC)
            .with_extra_data(config.into_boxed_slice());
        let decoder = AacDecoder::try_new(&params, &AudioDecoderOptions::default())
            .map_err(|e| TranscodeError::Config(e.to_string()))?;
        let spec_rate = decoder
            .codec_params()
            .sample_rate
            .unwrap_or(asc.sample_rate);
        let channels = decoder
            .codec_params()
            .channels
            .as_ref()
            .map_or(0, |c| c.count());
        if !(1..=2).contains(&channels) {
            return Err(TranscodeError::Config(format!(
                "{channels} channels (mono and stereo are decoded)"
            )));
        }
        if spec_rate != asc.sample_rate {
            return Err(TranscodeError::Config(format!(
                "decoder rate {spec_rate} Hz differs from the config's {} Hz",
                asc.sample_rate
            )));
        }
        let (resampler, skip, out_max) = if asc.sample_rate == OPUS_RATE {
            (None, 0, AAC_FRAME)
        } else {
            let r = Fft::<f32>::new(
                asc.sample_rate as usize,
                OPUS_RATE as usize,
                AAC_FRAME,
                channels,
                FixedSync::Input,
            )
            .map_err(|e| TranscodeError::Resample(e.to_string()))?;
            if r.input_frames_next() != AAC_FRAME {
                return Err(TranscodeError::Resample(format!(
                    "wants {} input frames per call, not {AAC_FRAME}",
                    r.input_frames_next()
                )));
            }
            let (delay, max) = (r.output_delay(), r.output_frames_max());
            (Some(r), delay, max)
        };
        let opus_channels = if channels == 1 {
            ::opus::Channels::Mono
        } else {
            ::opus::Channels::Stereo
        };
        let mut encoder =
            ::opus::Encoder::new(OPUS_RATE, opus_channels, ::opus::Application::Audio)?;
        encoder.set_bitrate(::opus::Bitrate::Bits(
            BITRATE_PER_CHANNEL * i32::try_from(channels).unwrap_or(2),
        ))?;
        let lookahead = u16::try_from(encoder.get_lookahead()?.max(0)).unwrap_or(0);
        let opus_head = opus_head(channels as u8, lookahead, asc.sample_rate);
        Ok(AacToOpus {
            decoder,
            in_rate: asc.sample_rate,
            channels,
            resampler,
            planes: vec![Vec::with_capacity(AAC_FRAME); channels],
            resampled: vec![0.0; out_max * channels],
            pending: Vec::with_capacity((OPUS_FRAME + out_max) * channels),
            skip,
            encoder,
            packet: vec![0; MAX_PACKET],
            opus_head,
            anchor: None,
            carry: Vec::new(),
        })
    }

    /// The Opus track it produces (48 kHz, 2 or 1 channels; config = an OpusHead (RFC 7845 §5.1) ).
    pub fn track(&self) -> TrackInfo {
        TrackInfo {
            codec: Codec::Opus,
            config: self.opus_head.clone(),
            width: 0,
            height: 0,
            sample_rate: OPUS_RATE,
            channels: self.channels as u8,
        }
    }

    /// One AAC access unit in (Frame with dts/cts in ms, payload raw AU without ADTS);
    /// zero or more 20 ms Opus frames out (Codec::Opus, dts in ms, aligned to the input
    /// timeline: the first Opus frame's dts = the first AAC frame's dts, then +20 ms each;
    /// a jump in the input timeline (gap > ~500 ms or backwards) re-anchors).
    pub fn push(&mut self, frame: &Frame) -> Result<Vec<Frame>, TranscodeError> {
        if frame.codec != Codec::Aac {
            return Err(TranscodeError::NotAac(frame.codec));
        }
        let decoded = if frame.data.is_empty() || frame.data.len() > MAX_ACCESS_UNIT {
            Err(TranscodeError::AccessUnitSize(frame.data.len()))
        } else {
            self.decode(&frame.data)
        };
        if decoded.is_err() {
            // The access unit still took its 1024 samples of the timeline: silence keeps the
            // frames after it where their dts says.
            for plane in &mut self.planes {
                plane.clear();
                plane.resize(AAC_FRAME, 0.0);
            }
        }
        self.anchor_for(frame.dts);
        self.resample()?;
        let mut out = std::mem::take(&mut self.carry);
        self.encode_pending(&mut out)?;
        if let Err(e) = decoded {
            // What this call encoded goes out with the next one; a run of bad access units
            // keeps only the latest frames.
            let excess = out.len().saturating_sub(MAX_CARRY);
            out.drain(..excess);
            self.carry = out;
            return Err(e);
        }
        Ok(out)
    }

    /// Encodes every whole 20 ms frame of `pending` onto `out`.
    fn encode_pending(&mut self, out: &mut Vec<Frame>) -> Result<(), TranscodeError> {
        let step = OPUS_FRAME * self.channels;
        while self.pending.len() >= step {
            let n = self
                .encoder
                .encode_float(&self.pending[..step], &mut self.packet)?;
            self.pending.drain(..step);
            let Some(anchor) = self.anchor.as_mut() else {
                break;
            };
            out.push(Frame {
                codec: Codec::Opus,
                dts: anchor.dts + anchor.frames_out * OPUS_FRAME_MS,
                cts: 0,
                keyframe: true,
                data: Bytes::copy_from_slice(&self.packet[..n]),
            });
            anchor.frames_out += 1;
        }
        Ok(())
    }

    /// 48 kHz samples per channel the input so far implies that are in no Opus frame yet:
    /// those waiting for a whole 20 ms frame and those still inside the resampler.
    pub fn delay(&self) -> usize {
        self.anchor.map_or(0, |a| {
            let implied = a.samples_in * u64::from(OPUS_RATE) / u64::from(self.in_rate);
            let out = a.frames_out * OPUS_FRAME as u64;
            usize::try_from(implied.saturating_sub(out)).unwrap_or(usize::MAX)
        })
    }

    /// Interleaved samples waiting for a whole 20 ms frame (less than one frame's worth).
    pub fn pending_samples(&self) -> usize {
        self.pending.len()
    }

    /// Decodes one access unit into `planes`.
    fn decode(&mut self, au: &[u8]) -> Result<(), TranscodeError> {
        let packet = PacketRef::new(0, Timestamp::new(0), Duration::new(AAC_FRAME as u64), au);
        let decoded = self
            .decoder
            .decode_ref(&packet)
            .map_err(|e| TranscodeError::Decode(e.to_string()))?;
        if decoded.frames() != AAC_FRAME || decoded.num_planes() != self.channels {
            return Err(TranscodeError::Decode(format!(
                "{} frames in {} channels decoded, {AAC_FRAME} in {} expected",
                decoded.frames(),
                decoded.num_planes(),
                self.channels
            )));
        }
        decoded.copy_to_vecs_planar::<f32>(&mut self.planes);
        Ok(())
    }

    /// Anchors the timeline on `dts` if there is none or the input jumped, then counts the
    /// access unit's samples.
    fn anchor_for(&mut self, dts: u64) {
        if let Some(a) = self.anchor.as_mut() {
            let predicted = a.dts + a.samples_in * 1000 / u64::from(self.in_rate);
            if dts >= a.last_dts && dts.abs_diff(predicted) <= REANCHOR_MS {
                a.samples_in += AAC_FRAME as u64;
                a.last_dts = dts;
                return;
            }
            tracing::debug!(
                dts,
                predicted,
                "AAC to Opus: input timeline jumped, anchoring again"
            );
        }
        self.pending.clear();
        if let Some(r) = self.resampler.as_mut() {
            r.reset();
            self.skip = r.output_delay();
        }
        self.anchor = Some(Anchor {
            dts,
            samples_in: AAC_FRAME as u64,
            frames_out: 0,
            last_dts: dts,
        });
    }

    /// Moves the decoded planes to `pending` at 48 kHz, interleaved.
    fn resample(&mut self) -> Result<(), TranscodeError> {
        let ch = self.channels;
        let Some(r) = self.resampler.as_mut() else {
            for i in 0..AAC_FRAME {
                for plane in &self.planes {
                    self.pending.push(plane[i]);
                }
            }
            return Ok(());
        };
        let input = SequentialSliceOfVecs::new(&self.planes, ch, AAC_FRAME)
            .map_err(|e| TranscodeError::Resample(e.to_string()))?;
        let frames_max = self.resampled.len() / ch;
        let mut output = InterleavedSlice::new_mut(&mut self.resampled, ch, frames_max)
            .map_err(|e| TranscodeError::Resample(e.to_string()))?;
        let (_, written) = r
            .process_into_buffer(&input, &mut output, None)
            .map_err(|e| TranscodeError::Resample(e.to_string()))?;
        let drop = self.skip.min(written);
        self.skip -= drop;
        self.pending
            .extend_from_slice(&self.resampled[drop * ch..written * ch]);
        Ok(())
    }
}

/// The AudioSpecificConfig the decoder gets: the AAC-LC core of an HE-AAC (v1, v2) config,
/// whose SBR and PS the decoder cannot apply, or the config as it is.
///
/// HE-AAC is signalled explicitly (audioObjectType 5 or 29 first, then the core's sampling
/// frequency index and channel configuration, the extension's index and the core's object
/// type) or backward-compatibly (an AAC-LC config followed by the 0x2b7 sync extension;
/// ISO/IEC 14496-3 §1.6.2.1 and §1.6.6). Either way the core alone is plain AAC-LC at the
/// core rate (half the output rate): its frames decode without their SBR payload, to audio of
/// half the bandwidth, mono for PS. Escape-coded sampling frequencies keep the config as is.
fn lc_core(config: &[u8]) -> Result<Vec<u8>, TranscodeError> {
    const LC: u32 = 2;
    let bits = |from: u32, n: u32| -> Option<u32> {
        let mut v = 0u32;
        for i in from..from + n {
            let byte = *config.get(usize::try_from(i / 8).ok()?)?;
            v = (v << 1) | u32::from((byte >> (7 - i % 8)) & 1);
        }
        Some(v)
    };
    let lc = |rate_index: u32, channels: u32| {
        vec![
            ((LC << 3) | (rate_index >> 1)) as u8,
            (((rate_index & 1) << 7) | (channels << 3)) as u8,
        ]
    };
    let (Some(object_type), Some(rate_index), Some(channels)) =
        (bits(0, 5), bits(5, 4), bits(9, 4))
    else {
        return Ok(config.to_vec());
    };
    if rate_index == 15 {
        return Ok(config.to_vec());
    }
    match object_type {
        5 | 29 => match (bits(13, 4), bits(17, 5)) {
            (Some(ext_index), Some(LC)) if ext_index != 15 => Ok(lc(rate_index, channels)),
            (_, Some(core)) => Err(TranscodeError::Config(format!(
                "HE-AAC over audio object type {core} (only an AAC-LC core is decoded)"
            ))),
            _ => Err(TranscodeError::Config("truncated HE-AAC config".into())),
        },
        // GASpecificConfig: frameLengthFlag, dependsOnCoreCoder, extensionFlag (3 bits), then
        // perhaps the sync extension; a 1024-sample LC config is 2 bytes and anything after
        // them is an extension the core does not need.
        LC if config.len() > 2 && bits(13, 1) == Some(0) => Ok(lc(rate_index, channels)),
        _ => Ok(config.to_vec()),
    }
}

/// The Opus identification header (RFC 7845 §5.1), channel mapping family 0.
fn opus_head(channels: u8, pre_skip: u16, input_rate: u32) -> Bytes {
    let mut head = Vec::with_capacity(19);
    head.extend_from_slice(b"OpusHead");
    head.push(1); // version
    head.push(channels);
    head.extend_from_slice(&pre_skip.to_le_bytes());
    head.extend_from_slice(&input_rate.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // mapping family: mono or stereo, no table
    Bytes::from(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn is_send_for_the_output_tasks() {
        assert_send::<AacToOpus>();
    }

    #[test]
    fn opus_head_layout() {
        let head = opus_head(2, 312, 44_100);
        assert_eq!(
            &head[..],
            b"OpusHead\x01\x02\x38\x01\x44\xac\x00\x00\x00\x00\x00"
        );
    }

    #[test]
    fn refuses_what_it_cannot_decode() {
        let err = |config: &'static [u8]| {
            AacToOpus::new(&TrackInfo::new(Codec::Aac, Bytes::from_static(config)))
                .expect_err("refused")
                .to_string()
        };
        assert!(err(b"").contains("AudioSpecificConfig"), "{}", err(b""));
        // 5.1 (channel configuration 6), 48 kHz AAC-LC.
        let six = err(&[0x11, 0xb0]);
        assert!(six.contains("AudioSpecificConfig"), "{six}");
        // 7350 Hz (index 12).
        assert!(
            err(&[0x16, 0x10]).contains("7350 Hz"),
            "{}",
            err(&[0x16, 0x10])
        );
        let not_aac = AacToOpus::new(&TrackInfo::new(Codec::Opus, Bytes::new()))
            .expect_err("refused")
            .to_string();
        assert!(not_aac.contains("Opus, not AAC"), "{not_aac}");
    }

    #[test]
    fn he_aac_configs_become_their_lc_core() {
        // Explicit HE-AAC: 24 kHz stereo core, 48 kHz SBR.
        assert_eq!(lc_core(&[0x2b, 0x11, 0x88]).expect("v1"), [0x13, 0x10]);
        // Explicit HE-AAC v2: 24 kHz mono core (PS makes it stereo).
        assert_eq!(lc_core(&[0xeb, 0x09, 0x88]).expect("v2"), [0x13, 0x08]);
        // Backward-compatible: AAC-LC 24 kHz stereo, then the 0x2b7 sync extension.
        let compatible = [0x13, 0x10, 0x56, 0xe5, 0x98];
        assert_eq!(lc_core(&compatible).expect("compatible"), [0x13, 0x10]);
        // Plain AAC-LC, and what is not LC, stay as they are.
        assert_eq!(lc_core(&[0x12, 0x10]).expect("lc"), [0x12, 0x10]);
        assert_eq!(lc_core(&[0x0a, 0x10]).expect("main"), [0x0a, 0x10]);
        // SBR over AAC Main (object type 1).
        let err = lc_core(&[0x2b, 0x11, 0x84]).expect_err("SBR over Main");
        assert!(err.to_string().contains("object type 1"), "{err}");
        let t = AacToOpus::new(&TrackInfo::new(
            Codec::Aac,
            Bytes::from_static(&[0x2b, 0x11, 0x88]),
        ))
        .expect("HE-AAC decodes its core");
        assert_eq!((t.in_rate, t.channels), (24_000, 2));
        assert_eq!(&crate::fuzzing::he_aac_config(6, 2)[..], [0x2b, 0x11, 0x88]);
    }

    #[test]
    fn track_is_48k_opus_with_head() {
        // 44.1 kHz stereo AAC-LC.
        let t = AacToOpus::new(&TrackInfo::new(
            Codec::Aac,
            Bytes::from_static(&[0x12, 0x10]),
        ))
        .expect("stereo LC");
        let track = t.track();
        assert_eq!(track.codec, Codec::Opus);
        assert_eq!((track.sample_rate, track.channels), (48_000, 2));
        assert_eq!(&track.config[..8], b"OpusHead");
        assert_eq!(track.config[9], 2);
        assert_eq!(&track.config[12..16], &44_100u32.to_le_bytes());
    }
}
