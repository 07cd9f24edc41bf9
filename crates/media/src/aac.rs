//! AAC: the AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) and ADTS headers
//! (ISO/IEC 14496-3 §1.A.2).

use crate::bits::BitReader;
use crate::Error;

/// Sampling frequencies by `samplingFrequencyIndex`.
pub const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// The facts of an AudioSpecificConfig a muxer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// audioObjectType (2 = AAC-LC).
    pub object_type: u8,
    /// samplingFrequencyIndex (15 = explicit).
    pub sample_rate_index: u8,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// channelConfiguration.
    pub channels: u8,
}

impl AudioSpecificConfig {
    /// Parses the leading fields of an AudioSpecificConfig.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut r = BitReader::new(data, "AudioSpecificConfig");
        let mut object_type = r.bits(5)?;
        if object_type == 31 {
            object_type = 32 + r.bits(6)?;
        }
        let sample_rate_index = r.bits(4)?;
        let sample_rate = if sample_rate_index == 0x0f {
            r.bits(24)?
        } else {
            *SAMPLE_RATES
                .get(sample_rate_index as usize)
                .ok_or(Error::Malformed {
                    offset: 0,
                    context: "AudioSpecificConfig sampling index",
                })?
        };
        let channels = r.bits(4)?;
        Ok(AudioSpecificConfig {
            object_type: object_type.min(255) as u8,
            sample_rate_index: sample_rate_index as u8,
            sample_rate,
            channels: channels as u8,
        })
    }

    /// A 7-byte ADTS header (no CRC) for a raw frame of `payload_len` bytes.
    pub fn adts_header(&self, payload_len: usize) -> [u8; 7] {
        let len = (payload_len + 7).min(0x1fff) as u32;
        let profile = u32::from(self.object_type.saturating_sub(1) & 0x03);
        let sfi = u32::from(self.sample_rate_index & 0x0f);
        let ch = u32::from(self.channels & 0x07);
        [
            0xff,
            0xf1,
            ((profile << 6) | (sfi << 2) | (ch >> 2)) as u8,
            (((ch & 3) << 6) | (len >> 11)) as u8,
            ((len >> 3) & 0xff) as u8,
            (((len & 7) << 5) | 0x1f) as u8,
            0xfc,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lc_44100_stereo() {
        let asc = AudioSpecificConfig::parse(&[0x12, 0x10]).expect("asc");
        assert_eq!(asc.object_type, 2);
        assert_eq!(asc.sample_rate, 44100);
        assert_eq!(asc.channels, 2);
        let h = asc.adts_header(100);
        assert_eq!(h[0..2], [0xff, 0xf1]);
        assert_eq!(
            ((u32::from(h[3]) & 3) << 11) | (u32::from(h[4]) << 3) | (u32::from(h[5]) >> 5),
            107
        );
    }

    #[test]
    fn garbage_is_error() {
        assert!(AudioSpecificConfig::parse(&[]).is_err());
        assert!(AudioSpecificConfig::parse(&[0x17, 0x80]).is_err());
    }
}
