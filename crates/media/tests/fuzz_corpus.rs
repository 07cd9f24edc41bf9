//! Replays the committed fuzz corpus (`fuzz/corpus/media_*/`) and any past crashes
//! (`fuzz/regressions/media_*/`) through the same functions the cargo-fuzz targets call, on
//! stable Rust. `UPDATE_GOLDEN=1` rewrites the seed files this test generates.
//!
//! The real parameter sets below come from ffmpeg 5.1.9 (Debian 12) with x264 core 164 and
//! x265 3.5, one frame of `testsrc` each:
//!
//! ```sh
//! ffmpeg -f lavfi -i testsrc=size=320x240 -frames:v 1 -c:v libx264 -pix_fmt yuv420p -f h264 x.h264
//! ffmpeg -f lavfi -i testsrc=size=320x240 -frames:v 1 -c:v libx264 -pix_fmt yuv420p -f mp4 x.mp4
//! ffmpeg -f lavfi -i testsrc=size=320x240 -frames:v 1 -c:v libx265 -pix_fmt yuv420p -tag:v hvc1 -f mp4 x.mp4
//! ffmpeg -f lavfi -i sine -t 0.1 -c:a aac -ar 44100 -ac 2 -f mp4 a.mp4
//! ```
//!
//! with the variations named at each constant. SPS/PPS/VPS are NAL units cut from the Annex B
//! output; `avcC`/`hvcC` records and AudioSpecificConfigs (the esds DecoderSpecificInfo) are
//! cut from the MP4 output.

use media::{avc, fuzzing};

#[test]
fn corpus_replays_without_panic() {
    fuzzkit::replay(&fuzzing::TARGETS, fuzzing::run);
}

/// Writes the seed corpus when `UPDATE_GOLDEN=1`; otherwise checks the generated seeds are
/// still what is committed (so a format change cannot silently stale the corpus).
#[test]
fn seed_corpus_is_current() {
    fuzzkit::check_seeds(seeds());
}

/// The real seeds parse to the sizes ffmpeg encoded, so the corpus starts on the success paths.
#[test]
fn real_seeds_parse() {
    for (sps, size) in H264_SPS {
        assert_eq!(avc::sps_dimensions(&hex(sps)), Ok(size), "{sps}");
    }
    for stream in &HEVC {
        let sps = stream.sps;
        assert_eq!(
            media::hevc::sps_dimensions(&hex(sps)),
            Ok(stream.size),
            "{sps}"
        );
    }
    let info = media::TrackInfo::new(media::Codec::H265, hvcc(&HEVC[0]).into());
    assert_eq!((info.width, info.height), (320, 240));
    let info = media::TrackInfo::new(media::Codec::H264, hex(X264_AVCC).into());
    assert_eq!((info.width, info.height), (320, 240));
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn with(selector: u8, data: &[u8]) -> Vec<u8> {
    [&[selector][..], data].concat()
}

/// x264 `avcC` of High 320x240 (`-f mp4`), with the High-profile chroma/bit-depth tail.
const X264_AVCC: &str = "0164000dffe100196764000dacd94141fb011000000300100000030320f14299\
                         6001000668ebe3cb22c0fdf8f800";

/// x264 SPS NAL units, with the size they code.
const H264_SPS: [(&str, (u32, u32)); 6] = [
    // High 4:2:0, 320x240.
    (
        "6764000dacd94141fb011000000300100000030320f1429960",
        (320, 240),
    ),
    // `-profile:v baseline`, 1920x1080 (cropped from 1088; pic_order_cnt_type 2).
    (
        "6742c028d900780227e5c044000003000400000300c83c60c920",
        (1920, 1080),
    ),
    // `-pix_fmt yuv422p -x264-params cqm=jvt`: High 4:2:2 with scaling lists, 640x360.
    (
        "677a001ebcd940a02ff89c0440000003004000000c83c58b6580",
        (640, 360),
    ),
    // `-pix_fmt yuv444p`: High 4:4:4 Predictive, 320x240.
    (
        "67f4000d919b28283f6022000003000200000300641e28532c",
        (320, 240),
    ),
    // `-pix_fmt gray`: chroma_format_idc 0, 320x240.
    (
        "6764000df3650507ec05b2000003000200000300641e28532c",
        (320, 240),
    ),
    // `-flags +ildct -x264-params interlaced=1`, 720x576 (frame_mbs_only_flag 0).
    (
        "6764001eacd940b424d8088000000300800000190f8a14cb",
        (720, 576),
    ),
];

/// x264 PPS NAL units, in the order of [`H264_SPS`].
const H264_PPS: [&str; 6] = [
    "68ebe3cb22c0",
    "68cb83cb20",
    "68ebe3cb3002c0",
    "68ebe3c44844",
    "68ebe3cb22c0",
    "68fba3cb22c0",
];

/// One x265 stream: the `hvcC` header up to `numOfArrays` (from `-f mp4`), the VPS, SPS and
/// PPS NAL units (from `-f hevc`) and the size the SPS codes. The real records also carry
/// x265's 2 KB version SEI array, left out here.
struct Hevc {
    header: &'static str,
    vps: &'static str,
    sps: &'static str,
    pps: &'static str,
    size: (u32, u32),
}

const HEVC: [Hevc; 2] = [
    // Main 4:2:0 8-bit, 320x240.
    Hevc {
        header: "0101600000009000000000003cf000fcfdf8f800000f",
        vps: "40010c01ffff01600000030090000003000003003c959809",
        sps: "42010101600000030090000003000003003ca00a080f165959a4932bc05a020000030002000003003210",
        pps: "4401c172b46240",
        size: (320, 240),
    },
    // `-pix_fmt yuv422p10le`: Main 4:2:2 10, 1920x1080.
    Hevc {
        header: "0104080000009d080000000078f000fcfefafa00000f",
        vps: "40010c01ffff0408000003009d08000003000078959809",
        sps:
            "4201010408000003009d08000003000078b003c08010e4d96566924caf016808000003000800000300c840",
        pps: "4401c172b46240",
        size: (1920, 1080),
    },
];

/// An `hvcC` record with VPS, SPS and PPS arrays, as ffmpeg writes them.
fn hvcc(stream: &Hevc) -> Vec<u8> {
    let mut out = hex(stream.header);
    out.push(3);
    for (nal_type, nal) in [(32u8, stream.vps), (33, stream.sps), (34, stream.pps)] {
        let nal = hex(nal);
        out.push(0x80 | nal_type); // array_completeness
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        out.extend_from_slice(&nal);
    }
    out
}

/// Every seed: (target, file name, bytes). Valid inputs are real encoder output; malformed ones
/// are named for the fault.
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    const CONFIG: &str = "media_codec_config";
    const SPS: &str = "media_sps";
    let names = [
        "x264_high_320x240",
        "x264_baseline_1920x1080",
        "x264_high422_cqm_640x360",
        "x264_high444_320x240",
        "x264_gray_320x240",
        "x264_interlaced_720x576",
    ];
    let mut seeds = Vec::new();
    let mut push = |target: &'static str, name: &str, data: Vec<u8>| {
        seeds.push((target, format!("{name}.bin"), data));
    };

    // avcC records.
    let avcc = hex(X264_AVCC);
    push(
        CONFIG,
        "avcc_ffmpeg5_x264_high_320x240",
        with(fuzzing::AVC, &avcc),
    );
    for (name, ((sps, _), pps)) in names.iter().zip(H264_SPS.iter().zip(H264_PPS)).skip(1) {
        let rec = avc::DecoderConfig::build(&hex(sps), &[&hex(pps)]).expect("avcC");
        push(CONFIG, &format!("avcc_{name}"), with(fuzzing::AVC, &rec));
    }
    push(
        CONFIG,
        "avcc_bad_truncated",
        with(fuzzing::AVC, &avcc[..20]),
    );
    let mut version0 = avcc.clone();
    version0[0] = 0;
    push(CONFIG, "avcc_bad_version_0", with(fuzzing::AVC, &version0));
    push(
        CONFIG,
        "avcc_bad_31_sps_none_present",
        with(fuzzing::AVC, &[1, 0x64, 0, 0x0d, 0xff, 0xff]),
    );
    push(
        CONFIG,
        "avcc_bad_sps_length_ffff",
        with(
            fuzzing::AVC,
            &[1, 0x64, 0, 0x0d, 0xff, 0xe1, 0xff, 0xff, 0x67],
        ),
    );
    let mut no_pps = avcc[..8 + 0x19].to_vec();
    no_pps.push(0xff);
    push(
        CONFIG,
        "avcc_bad_255_pps_none_present",
        with(fuzzing::AVC, &no_pps),
    );

    // hvcC records.
    let main = hvcc(&HEVC[0]);
    push(
        CONFIG,
        "hvcc_ffmpeg5_x265_main_320x240",
        with(fuzzing::HEVC, &main),
    );
    push(
        CONFIG,
        "hvcc_ffmpeg5_x265_main422_10_1920x1080",
        with(fuzzing::HEVC, &hvcc(&HEVC[1])),
    );
    push(
        CONFIG,
        "hvcc_bad_header_only",
        with(fuzzing::HEVC, &main[..22]),
    );
    push(
        CONFIG,
        "hvcc_bad_truncated_sps",
        with(fuzzing::HEVC, &main[..60]),
    );
    let mut many = main[..23].to_vec();
    many.extend_from_slice(&[0xa1, 0xff, 0xff, 0, 1, 0x42]);
    push(CONFIG, "hvcc_bad_65535_nals", with(fuzzing::HEVC, &many));
    let mut long = main[..23].to_vec();
    long.extend_from_slice(&[0xa1, 0, 1, 0xff, 0xff, 0x42, 0x01]);
    push(
        CONFIG,
        "hvcc_bad_nal_length_ffff",
        with(fuzzing::HEVC, &long),
    );

    // AudioSpecificConfigs: ffmpeg's native encoder writes five bytes (with the SBR sync
    // extension); two-byte and hand-written ones cover the escape paths.
    for (name, asc) in [
        ("asc_ffmpeg5_lc_44100_stereo", "121056e500"),
        ("asc_ffmpeg5_lc_48000_mono", "118856e500"),
        ("asc_ffmpeg5_lc_8000_5.1", "15b056e500"),
        ("asc_lc_44100_stereo_short", "1210"),
        ("asc_he_aac_explicit_sbr", "2b118a"),
        ("asc_escape_object_type_34", "f84830"),
        ("asc_explicit_rate_22050", "17802b1114"),
        ("asc_bad_sampling_index_13", "1694"),
        ("asc_bad_one_byte", "12"),
    ] {
        push(CONFIG, name, with(fuzzing::AAC, &hex(asc)));
    }

    // SPS NAL units.
    for (name, (sps, _)) in names.iter().zip(H264_SPS) {
        push(
            SPS,
            &format!("h264_{name}"),
            with(fuzzing::SPS_H264, &hex(sps)),
        );
    }
    push(
        SPS,
        "h264_bad_truncated",
        with(fuzzing::SPS_H264, &hex(H264_SPS[0].0)[..8]),
    );
    push(SPS, "h264_bad_header_only", vec![fuzzing::SPS_H264, 0x67]);
    push(
        SPS,
        "h264_bad_emulation_prevention_only",
        with(fuzzing::SPS_H264, &[0x67, 0, 0, 3, 0, 0, 3, 0, 0, 3]),
    );
    for (name, stream) in ["x265_main_320x240", "x265_main422_10_1920x1080"]
        .iter()
        .zip(&HEVC)
    {
        let sps = with(fuzzing::SPS_H265, &hex(stream.sps));
        push(SPS, &format!("h265_{name}"), sps);
    }
    push(
        SPS,
        "h265_bad_truncated_profile",
        with(fuzzing::SPS_H265, &hex(HEVC[0].sps)[..12]),
    );
    // sps_max_sub_layers_minus1 = 7, every sub-layer profile and level present.
    let mut sub_layers = vec![0x42, 0x01, 0x0e];
    sub_layers.extend_from_slice(&[0; 11]);
    sub_layers.extend_from_slice(&[0xff, 0xff]);
    sub_layers.extend_from_slice(&[0x55; 40]);
    push(
        SPS,
        "h265_seven_sub_layers",
        with(fuzzing::SPS_H265, &sub_layers),
    );
    seeds
}
