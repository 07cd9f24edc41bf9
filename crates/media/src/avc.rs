//! H.264: the AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1) and SPS picture size
//! (ITU-T H.264 §7.3.2.1.1).

use crate::bits::{unescape_rbsp, BitReader};
use crate::Error;
use bytes::Bytes;

/// NAL unit type of an IDR slice.
pub const NAL_IDR: u8 = 0x05;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 0x07;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 0x08;

/// The parameter sets of an `avcC` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderConfig {
    /// profile_idc
    pub profile: u8,
    /// profile compatibility flags
    pub compatibility: u8,
    /// level_idc
    pub level: u8,
    /// NAL length field size in bytes (1, 2 or 4).
    pub length_size: u8,
    /// Sequence parameter sets.
    pub sps: Vec<Bytes>,
    /// Picture parameter sets.
    pub pps: Vec<Bytes>,
}

fn malformed(offset: usize) -> Error {
    Error::Malformed {
        offset,
        context: "avcC",
    }
}

fn take<'a>(data: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], Error> {
    let out = data.get(*pos..*pos + n).ok_or(malformed(*pos))?;
    *pos += n;
    Ok(out)
}

impl DecoderConfig {
    /// Parses an `avcC` record.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut pos = 0;
        let head = take(data, &mut pos, 6)?;
        if head[0] != 1 {
            return Err(malformed(0));
        }
        let length_size = (head[4] & 0x03) + 1;
        let num_sps = usize::from(head[5] & 0x1f);
        let mut sps = Vec::with_capacity(num_sps);
        for _ in 0..num_sps {
            let len = take(data, &mut pos, 2)?;
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            sps.push(Bytes::copy_from_slice(take(data, &mut pos, len)?));
        }
        let num_pps = usize::from(*take(data, &mut pos, 1)?.first().ok_or(malformed(pos))?);
        let mut pps = Vec::with_capacity(num_pps);
        for _ in 0..num_pps {
            let len = take(data, &mut pos, 2)?;
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            pps.push(Bytes::copy_from_slice(take(data, &mut pos, len)?));
        }
        Ok(DecoderConfig {
            profile: head[1],
            compatibility: head[2],
            level: head[3],
            length_size,
            sps,
            pps,
        })
    }

    /// Builds an `avcC` record (4-byte NAL lengths) from one SPS and its PPSs.
    pub fn build(sps: &[u8], pps: &[&[u8]]) -> Result<Bytes, Error> {
        if sps.len() < 4 || sps.len() > usize::from(u16::MAX) {
            return Err(malformed(0));
        }
        let mut out = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
        out.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        out.extend_from_slice(sps);
        out.push(pps.len().min(255) as u8);
        for p in pps.iter().take(255) {
            out.extend_from_slice(&(p.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
            out.extend_from_slice(&p[..p.len().min(usize::from(u16::MAX))]);
        }
        Ok(Bytes::from(out))
    }

    /// The RFC 6381 codec string, e.g. `avc1.64001f`.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile, self.compatibility, self.level
        )
    }
}

/// The NAL units of an Annex B byte stream (ITU-T H.264 §B.2; also H.265's): the bytes between
/// start codes (`00 00 01` or `00 00 00 01`), without them and without the trailing zero
/// bytes before the next start code. Bytes before the first start code are a NAL unit too (a
/// stream cut mid-way); empty units are left out.
pub fn annex_b_nals(data: &[u8]) -> Vec<&[u8]> {
    let mut nals = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            push_nal(&mut nals, &data[start..i]);
            i += 3;
            start = i;
        } else {
            i += 1;
        }
    }
    push_nal(&mut nals, &data[start.min(data.len())..]);
    nals
}

fn push_nal<'a>(nals: &mut Vec<&'a [u8]>, mut nal: &'a [u8]) {
    // The zero byte of a 4-byte start code (and trailing_zero_8bits) belong to no NAL unit.
    while let Some((&0, rest)) = nal.split_last() {
        nal = rest;
    }
    if !nal.is_empty() {
        nals.push(nal);
    }
}

/// Picture width and height in pixels from an SPS NAL unit (header byte included), cropping
/// applied.
pub fn sps_dimensions(sps: &[u8]) -> Result<(u32, u32), Error> {
    let rbsp = unescape_rbsp(sps.get(1..).ok_or(malformed(0))?);
    let mut r = BitReader::new(&rbsp, "H.264 SPS");
    let profile_idc = r.bits(8)?;
    r.skip(16)?; // constraint flags, level_idc
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            r.skip(1)?; // separate_colour_plane_flag
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.skip(1)?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            // delta_scale is -128..=127 (§7.4.2.1.1.1); more overflows.
                            let delta = r.se()?;
                            if !(-128..=127).contains(&delta) {
                                return Err(malformed(0));
                            }
                            next = (last + delta + 256) % 256;
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    let poc_type = r.ue()?;
    if poc_type == 0 {
        r.ue()?;
    } else if poc_type == 1 {
        r.skip(1)?;
        r.se()?;
        r.se()?;
        let n = r.ue()?;
        if n > 255 {
            return Err(malformed(0));
        }
        for _ in 0..n {
            r.se()?;
        }
    }
    r.ue()?; // max_num_ref_frames
    r.skip(1)?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = u64::from(r.bit()?);
    if frame_mbs_only == 0 {
        r.skip(1)?;
    }
    r.skip(1)?; // direct_8x8_inference_flag
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
    let crop_x = if chroma_format_idc == 0 { 1 } else { sub_w };
    let crop_y = (if chroma_format_idc == 0 { 1 } else { sub_h }) * (2 - frame_mbs_only);
    let w = (width_mbs * 16).saturating_sub((cl + cr) * crop_x);
    let h = (height_map_units * 16 * (2 - frame_mbs_only)).saturating_sub((ct + cb) * crop_y);
    Ok((
        w.min(u64::from(u32::MAX)) as u32,
        h.min(u64::from(u32::MAX)) as u32,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_splits_at_three_and_four_byte_start_codes() {
        let data = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 0, 0,
        ];
        assert_eq!(
            annex_b_nals(&data),
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4][..]]
        );
        assert!(annex_b_nals(&[]).is_empty());
        assert!(annex_b_nals(&[0, 0, 1]).is_empty());
        assert_eq!(annex_b_nals(&[0x41, 7]), vec![&[0x41, 7][..]]);
    }

    // x264 High profile 320x240 SPS (ffmpeg -f lavfi testsrc=size=320x240 -c:v libx264)
    const SPS_320X240: [u8; 25] = [
        0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
        0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x60,
    ];

    #[test]
    fn sps_size() {
        assert_eq!(sps_dimensions(&SPS_320X240), Ok((320, 240)));
    }

    #[test]
    fn record_round_trip() {
        let pps = [0x68u8, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
        let rec = DecoderConfig::build(&SPS_320X240, &[&pps]).expect("build");
        let parsed = DecoderConfig::parse(&rec).expect("parse");
        assert_eq!(parsed.sps[0].as_ref(), &SPS_320X240);
        assert_eq!(parsed.pps[0].as_ref(), &pps);
        assert_eq!(parsed.length_size, 4);
        assert_eq!(parsed.codec_string(), "avc1.64000d");
    }

    #[test]
    fn truncated_is_error() {
        for n in 0..SPS_320X240.len() - 6 {
            let _ = sps_dimensions(&SPS_320X240[..n]);
        }
        assert!(DecoderConfig::parse(&[1, 2, 3]).is_err());
    }
}
