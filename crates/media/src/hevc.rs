//! H.265: the HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3.1) and SPS picture size
//! (ITU-T H.265 §7.3.2.2).

use crate::bits::{unescape_rbsp, BitReader};
use crate::Error;
use bytes::Bytes;

/// NAL unit type of a video parameter set.
pub const NAL_VPS: u8 = 32;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 33;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 34;

/// The parameter-set arrays of an `hvcC` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderConfig {
    /// NAL length field size in bytes.
    pub length_size: u8,
    /// `(nal_unit_type, nal units)` per array.
    pub arrays: Vec<(u8, Vec<Bytes>)>,
}

fn malformed(offset: usize) -> Error {
    Error::Malformed {
        offset,
        context: "hvcC",
    }
}

impl DecoderConfig {
    /// Parses an `hvcC` record.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        if data.len() < 23 || data[0] != 1 {
            return Err(malformed(0));
        }
        let length_size = (data[21] & 0x03) + 1;
        let num_arrays = data[22];
        let mut pos = 23usize;
        let mut arrays = Vec::new();
        for _ in 0..num_arrays {
            let head = data.get(pos..pos + 3).ok_or(malformed(pos))?;
            let nal_type = head[0] & 0x3f;
            let count = u16::from_be_bytes([head[1], head[2]]);
            pos += 3;
            let mut nals = Vec::new();
            for _ in 0..count {
                let len = data.get(pos..pos + 2).ok_or(malformed(pos))?;
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                pos += 2;
                let nal = data.get(pos..pos + len).ok_or(malformed(pos))?;
                nals.push(Bytes::copy_from_slice(nal));
                pos += len;
            }
            arrays.push((nal_type, nals));
        }
        Ok(DecoderConfig {
            length_size,
            arrays,
        })
    }

    /// The first SPS, if any.
    pub fn sps(&self) -> Option<&Bytes> {
        self.arrays
            .iter()
            .find(|(t, _)| *t == NAL_SPS)
            .and_then(|(_, n)| n.first())
    }
}

/// Picture width and height in pixels from an SPS NAL unit (2-byte header included), conformance
/// window applied.
pub fn sps_dimensions(sps: &[u8]) -> Result<(u32, u32), Error> {
    let rbsp = unescape_rbsp(sps.get(2..).ok_or(malformed(0))?);
    let mut r = BitReader::new(&rbsp, "H.265 SPS");
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)?;
    r.skip(1)?; // temporal_id_nesting
                // profile_tier_level(1, max_sub_layers_minus1), §7.3.3
    r.skip(2 + 1 + 5 + 32 + 4 + 43 + 1 + 8)?;
    let mut profile_present = [false; 8];
    let mut level_present = [false; 8];
    for i in 0..max_sub_layers_minus1 as usize {
        profile_present[i] = r.bit()? == 1;
        level_present[i] = r.bit()? == 1;
    }
    if max_sub_layers_minus1 > 0 {
        for _ in max_sub_layers_minus1..8 {
            r.skip(2)?;
        }
    }
    for i in 0..max_sub_layers_minus1 as usize {
        if profile_present[i] {
            r.skip(88)?;
        }
        if level_present[i] {
            r.skip(8)?;
        }
    }
    r.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc == 3 {
        r.skip(1)?;
    }
    let w = u64::from(r.ue()?);
    let h = u64::from(r.ue()?);
    let (mut cl, mut cr, mut ct, mut cb) = (0u64, 0u64, 0u64, 0u64);
    if r.bit()? == 1 {
        cl = r.ue()?.into();
        cr = r.ue()?.into();
        ct = r.ue()?.into();
        cb = r.ue()?.into();
    }
    let (sub_w, sub_h) = match chroma_format_idc {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let w = w.saturating_sub((cl + cr) * sub_w);
    let h = h.saturating_sub((ct + cb) * sub_h);
    Ok((
        w.min(u64::from(u32::MAX)) as u32,
        h.min(u64::from(u32::MAX)) as u32,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_record_is_error() {
        assert!(DecoderConfig::parse(&[1; 10]).is_err());
        assert!(sps_dimensions(&[0x42, 0x01, 0x01]).is_err());
    }
}
