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

    /// Builds an `hvcC` record (ISO/IEC 14496-15 §8.3.3.1.2) with 4-byte NAL lengths from one
    /// VPS, SPS and PPS (NAL units with their 2-byte headers, no start codes).
    ///
    /// Profile, tier, level, chroma format, bit depths and temporal layering come from the
    /// SPS. Fields that would need the VUI or the PPS are written as "unknown", as ffmpeg 5.1
    /// writes them for x265 output: min_spatial_segmentation_idc 0, parallelismType 0,
    /// avgFrameRate 0, constantFrameRate 0. Each array is marked complete (`hvc1`: every
    /// parameter set is in the record).
    pub fn build(vps: &[u8], sps: &[u8], pps: &[u8]) -> Result<Bytes, Error> {
        let context = "H.265 parameter set";
        for (nal, nal_type) in [(vps, NAL_VPS), (sps, NAL_SPS), (pps, NAL_PPS)] {
            let fits = (2..=usize::from(u16::MAX)).contains(&nal.len());
            if !fits || nal.first().map(|h| (h >> 1) & 0x3f) != Some(nal_type) {
                return Err(Error::Malformed { offset: 0, context });
            }
        }
        let s = Sps::parse(sps)?;
        let mut out = Vec::with_capacity(23 + 3 * 5 + vps.len() + sps.len() + pps.len());
        out.push(1); // configurationVersion
        out.extend_from_slice(&s.general_ptl);
        out.extend_from_slice(&[0xf0, 0x00]); // reserved '1111'b, min_spatial_segmentation_idc 0
        out.push(0xfc); // reserved '111111'b, parallelismType 0 (unknown)
        out.push(0xfc | (s.chroma_format_idc.min(3) as u8));
        out.push(0xf8 | (s.bit_depth_luma_minus8.min(7) as u8));
        out.push(0xf8 | (s.bit_depth_chroma_minus8.min(7) as u8));
        // avgFrameRate 0: unspecified.
        out.extend_from_slice(&[0, 0]);
        // constantFrameRate 0, numTemporalLayers (3 bits; the SPS allows at most 7 sub-layers),
        // temporalIdNested, lengthSizeMinusOne 3.
        let layers = (s.max_sub_layers_minus1 + 1).min(7);
        out.push((layers << 3) | (u8::from(s.temporal_id_nesting) << 2) | 0x03);
        out.push(3); // numOfArrays
        for (nal, nal_type) in [(vps, NAL_VPS), (sps, NAL_SPS), (pps, NAL_PPS)] {
            out.push(0x80 | nal_type); // array_completeness 1, reserved 0
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            out.extend_from_slice(nal);
        }
        Ok(Bytes::from(out))
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
    let sps = Sps::parse(sps)?;
    Ok((sps.width, sps.height))
}

/// The SPS fields an `hvcC` record repeats, and the picture size (ITU-T H.265 §7.3.2.2.1).
#[derive(Debug)]
struct Sps {
    max_sub_layers_minus1: u8,
    temporal_id_nesting: bool,
    /// `general_profile_space` through `general_level_idc`: the general part of
    /// profile_tier_level (§7.3.3), which `hvcC` copies byte for byte.
    general_ptl: [u8; GENERAL_PTL_LEN],
    chroma_format_idc: u32,
    width: u32,
    height: u32,
    bit_depth_luma_minus8: u32,
    bit_depth_chroma_minus8: u32,
}

/// Bytes of profile_tier_level's general part: 2+1+5 bits, 32 compatibility flags, 48
/// constraint bits, general_level_idc.
const GENERAL_PTL_LEN: usize = 12;

impl Sps {
    /// Parses an SPS NAL unit, 2-byte NAL header included.
    fn parse(nal: &[u8]) -> Result<Self, Error> {
        let rbsp = unescape_rbsp(nal.get(2..).ok_or(malformed(0))?);
        let mut r = BitReader::new(&rbsp, "H.265 SPS");
        r.skip(4)?; // sps_video_parameter_set_id
        let max_sub_layers_minus1 = r.bits(3)? as u8;
        let temporal_id_nesting = r.bit()? == 1;
        // profile_tier_level(1, sps_max_sub_layers_minus1), §7.3.3. The general part starts at
        // byte 1 of the RBSP, so it is whole bytes.
        let mut general_ptl = [0u8; GENERAL_PTL_LEN];
        for b in general_ptl.iter_mut() {
            *b = r.bits(8)? as u8;
        }
        let sub_layers = usize::from(max_sub_layers_minus1);
        let mut profile_present = [false; 8];
        let mut level_present = [false; 8];
        for i in 0..sub_layers {
            profile_present[i] = r.bit()? == 1;
            level_present[i] = r.bit()? == 1;
        }
        if sub_layers > 0 {
            r.skip(2 * (8 - sub_layers))?; // reserved_zero_2bits
        }
        for i in 0..sub_layers {
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
            r.skip(1)?; // separate_colour_plane_flag
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
        let bit_depth_luma_minus8 = r.ue()?;
        let bit_depth_chroma_minus8 = r.ue()?;
        let (sub_w, sub_h) = match chroma_format_idc {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let w = w.saturating_sub((cl + cr) * sub_w);
        let h = h.saturating_sub((ct + cb) * sub_h);
        Ok(Sps {
            max_sub_layers_minus1,
            temporal_id_nesting,
            general_ptl,
            chroma_format_idc,
            width: w.min(u64::from(u32::MAX)) as u32,
            height: h.min(u64::from(u32::MAX)) as u32,
            bit_depth_luma_minus8,
            bit_depth_chroma_minus8,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Parameter sets from libx265 3.5 via ffmpeg 5.1 (Debian 12), copied out of the Annex B
    // output of:
    //   ffmpeg -f lavfi -i testsrc=size=352x288:rate=25 -frames:v 1 -c:v libx265 -f hevc x.hevc
    // testsrc is RGB, so x265 picks Main 4:4:4 (chroma_format_idc 3). The header bytes each
    // test expects are the first 23 bytes of the hvcC box of `ffmpeg -i x.hevc -c copy
    // -tag:v hvc1 x.mp4`.
    const X444_VPS: &[u8] = &[
        0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x04, 0x08, 0x00, 0x00, 0x03, 0x00, 0x9e, 0x08, 0x00,
        0x00, 0x03, 0x00, 0x00, 0x3c, 0x95, 0x98, 0x09,
    ];
    const X444_SPS: &[u8] = &[
        0x42, 0x01, 0x01, 0x04, 0x08, 0x00, 0x00, 0x03, 0x00, 0x9e, 0x08, 0x00, 0x00, 0x03, 0x00,
        0x00, 0x3c, 0x90, 0x01, 0x61, 0x00, 0x90, 0xb2, 0xca, 0xcd, 0x24, 0x99, 0x5e, 0x02, 0xdc,
        0x08, 0x08, 0x00, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x01, 0x90, 0x80,
    ];
    const X444_PPS: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0x86, 0x0c, 0x46, 0x24];
    const X444_HEAD: [u8; 23] = [
        0x01, 0x04, 0x08, 0x00, 0x00, 0x00, 0x9e, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3c, 0xf0, 0x00,
        0xfc, 0xff, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x03,
    ];

    // The same command with `-pix_fmt yuv420p` before `-c:v`: Main profile, 4:2:0. Its SPS
    // has emulation-prevention bytes inside profile_tier_level.
    const X420_VPS: &[u8] = &[
        0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x95, 0x98, 0x09,
    ];
    const X420_SPS: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3c, 0xa0, 0x0b, 0x08, 0x04, 0x85, 0x96, 0x56, 0x69, 0x24, 0xca, 0xf0, 0x16,
        0x80, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x0c, 0x84,
    ];
    const X420_PPS: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];
    const X420_HEAD: [u8; 23] = [
        0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3c, 0xf0, 0x00,
        0xfc, 0xfd, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x03,
    ];

    #[test]
    fn short_record_is_error() {
        assert!(DecoderConfig::parse(&[1; 10]).is_err());
        assert!(sps_dimensions(&[0x42, 0x01, 0x01]).is_err());
    }

    #[test]
    fn x265_sps_dimensions() {
        assert_eq!(sps_dimensions(X444_SPS), Ok((352, 288)));
        assert_eq!(sps_dimensions(X420_SPS), Ok((352, 288)));
    }

    /// The built record is byte for byte what ffmpeg writes, and parses back to its
    /// parameter sets.
    #[test]
    fn build_matches_ffmpeg_and_round_trips() {
        for (vps, sps, pps, head) in [
            (X444_VPS, X444_SPS, X444_PPS, X444_HEAD),
            (X420_VPS, X420_SPS, X420_PPS, X420_HEAD),
        ] {
            let built = DecoderConfig::build(vps, sps, pps).expect("builds");
            assert_eq!(built[..23], head);
            let rec = DecoderConfig::parse(&built).expect("parses");
            assert_eq!(rec.length_size, 4);
            let arrays: Vec<(u8, Vec<&[u8]>)> = rec
                .arrays
                .iter()
                .map(|(t, nals)| (*t, nals.iter().map(|n| &n[..]).collect()))
                .collect();
            assert_eq!(
                arrays,
                [
                    (NAL_VPS, vec![vps]),
                    (NAL_SPS, vec![sps]),
                    (NAL_PPS, vec![pps])
                ]
            );
            assert_eq!(built.len(), 23 + 3 * 5 + vps.len() + sps.len() + pps.len());
            let info = crate::TrackInfo::new(crate::Codec::H265, built);
            assert_eq!((info.width, info.height), (352, 288));
        }
    }

    #[test]
    fn build_rejects_bad_parameter_sets() {
        // Swapped roles, an empty NAL, a truncated SPS.
        assert!(DecoderConfig::build(X420_SPS, X420_VPS, X420_PPS).is_err());
        assert!(DecoderConfig::build(X420_VPS, X420_SPS, &[]).is_err());
        assert!(DecoderConfig::build(X420_VPS, &X420_SPS[..10], X420_PPS).is_err());
        let huge = vec![0x44; usize::from(u16::MAX) + 1];
        assert!(DecoderConfig::build(X420_VPS, X420_SPS, &huge).is_err());
    }
}
