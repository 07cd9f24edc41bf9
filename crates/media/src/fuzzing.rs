//! Fuzz target bodies, shared by `fuzz/fuzz_targets/media_*.rs` (cargo-fuzz, nightly) and
//! `tests/fuzz_corpus.rs` (stable replay of the committed corpus). Each must never panic: every
//! parser answers `Ok` or `Err` for any bytes a peer can send.

use bytes::Bytes;

use crate::{aac, avc, hevc, Codec, TrackInfo};

/// The fuzz targets, named as in `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: [&str; 3] = ["media_codec_config", "media_sps", "media_annex_b"];

/// First byte of a `media_codec_config` input: the rest is an `avcC` record.
pub const AVC: u8 = 0;
/// First byte of a `media_codec_config` input: the rest is an `hvcC` record.
pub const HEVC: u8 = 1;
/// First byte of a `media_codec_config` input: the rest is an AudioSpecificConfig.
pub const AAC: u8 = 2;

/// First byte of a `media_sps` input: the rest is an H.264 SPS NAL unit.
pub const SPS_H264: u8 = 0;
/// First byte of a `media_sps` input: the rest is an H.265 SPS NAL unit.
pub const SPS_H265: u8 = 1;

/// Runs the body of the fuzz target called `target` (one of [`TARGETS`]).
pub fn run(target: &str, data: &[u8]) {
    match target {
        "media_codec_config" => codec_config(data),
        "media_sps" => sps(data),
        "media_annex_b" => annex_b(data),
        _ => {}
    }
}

/// An Annex B byte stream (what a WebRTC publisher's H.264 depacketizes to): split into NAL
/// units, each of which must be a non-empty slice of the input holding no start code.
pub fn annex_b(data: &[u8]) {
    let total: usize = avc::annex_b_nals(data).iter().map(|n| n.len()).sum();
    assert!(total <= data.len());
    for nal in avc::annex_b_nals(data) {
        assert!(!nal.is_empty());
        assert!(!nal.windows(3).any(|w| w == [0, 0, 1]));
    }
}

/// A codec configuration record. The first byte picks the parser ([`AVC`], [`HEVC`], [`AAC`],
/// modulo 3); the rest is its input, parsed directly and through [`TrackInfo::new`], which must
/// agree with the parsers.
pub fn codec_config(data: &[u8]) {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        AVC => avc_config(input),
        HEVC => hevc_config(input),
        _ => aac_config(input),
    }
}

fn avc_config(input: &[u8]) {
    let info = TrackInfo::new(Codec::H264, Bytes::copy_from_slice(input));
    let Ok(rec) = avc::DecoderConfig::parse(input) else {
        assert_eq!((info.width, info.height), (0, 0));
        return;
    };
    assert!((1..=4).contains(&rec.length_size));
    let _ = rec.codec_string();
    for sps in &rec.sps {
        let _ = avc::sps_dimensions(sps);
    }
    let dims = rec.sps.first().and_then(|s| avc::sps_dimensions(s).ok());
    assert_eq!((info.width, info.height), dims.unwrap_or((0, 0)));
    // Rebuilding from the first SPS keeps the parameter sets.
    let Some(sps) = rec.sps.first() else { return };
    let pps: Vec<&[u8]> = rec.pps.iter().map(|p| p.as_ref()).collect();
    if let Ok(built) = avc::DecoderConfig::build(sps, &pps) {
        let again = avc::DecoderConfig::parse(&built).expect("a built avcC parses");
        assert_eq!(again.sps, std::slice::from_ref(sps));
        assert_eq!(again.pps, rec.pps);
        assert_eq!(again.length_size, 4);
    }
}

fn hevc_config(input: &[u8]) {
    let info = TrackInfo::new(Codec::H265, Bytes::copy_from_slice(input));
    let Ok(rec) = hevc::DecoderConfig::parse(input) else {
        assert_eq!((info.width, info.height), (0, 0));
        return;
    };
    assert!((1..=4).contains(&rec.length_size));
    for (_, nals) in &rec.arrays {
        for nal in nals {
            let _ = hevc::sps_dimensions(nal);
        }
    }
    let dims = rec.sps().and_then(|s| hevc::sps_dimensions(s).ok());
    assert_eq!((info.width, info.height), dims.unwrap_or((0, 0)));
}

fn aac_config(input: &[u8]) {
    let info = TrackInfo::new(Codec::Aac, Bytes::copy_from_slice(input));
    match aac::AudioSpecificConfig::parse(input) {
        Ok(asc) => {
            assert_eq!(
                (info.sample_rate, info.channels),
                (asc.sample_rate, asc.channels)
            );
            let h = asc.adts_header(input.len());
            assert_eq!(h[..2], [0xff, 0xf1]);
        }
        Err(_) => assert_eq!((info.sample_rate, info.channels), (0, 0)),
    }
}

/// An SPS NAL unit, header included. The first byte picks the codec ([`SPS_H264`] or
/// [`SPS_H265`], modulo 2). The SPS is also wrapped in records, by hand and by the codec's
/// `DecoderConfig::build`, and [`TrackInfo::new`] must report the same size from them.
pub fn sps(data: &[u8]) {
    let Some((&selector, nal)) = data.split_first() else {
        return;
    };
    if selector % 2 == SPS_H264 {
        let dims = avc::sps_dimensions(nal);
        if let Ok(rec) = avc::DecoderConfig::build(nal, &[]) {
            let info = TrackInfo::new(Codec::H264, rec);
            assert_eq!((info.width, info.height), dims.unwrap_or((0, 0)));
        }
    } else {
        let dims = hevc::sps_dimensions(nal).unwrap_or((0, 0));
        let Ok(len) = u16::try_from(nal.len()) else {
            return;
        };
        // An hvcC with an all-zero header and one array holding this SPS.
        let mut rec = vec![0u8; 23];
        rec[0] = 1;
        rec[21] = 0x03;
        rec[22] = 1;
        rec.extend_from_slice(&[hevc::NAL_SPS, 0, 1]);
        rec.extend_from_slice(&len.to_be_bytes());
        rec.extend_from_slice(nal);
        let info = TrackInfo::new(Codec::H265, Bytes::from(rec));
        assert_eq!((info.width, info.height), dims);
        // A record built from it (as for an RTSP `sprop-sps`) holds it unchanged.
        if let Ok(built) = hevc::DecoderConfig::build(&[0x40, 0x01], nal, &[0x44, 0x01]) {
            let rec = hevc::DecoderConfig::parse(&built).expect("a built hvcC parses");
            assert_eq!(rec.sps().map(|s| s.as_ref()), Some(nal));
            let info = TrackInfo::new(Codec::H265, built);
            assert_eq!((info.width, info.height), dims);
        }
    }
}
