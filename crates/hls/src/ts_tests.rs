use bytes::{BufMut, Bytes, BytesMut};
use media::{avc, hevc, Codec, Frame, TrackInfo};

use super::*;
use crate::fuzzing::read_all;
use crate::reader::{Demuxer, Packet, Pes};

/// An SPS and PPS of a 1280x720 High profile stream (x264 defaults).
const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
    0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60,
];
const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
const VPS_265: &[u8] = &[
    0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03,
    0x00, 0x00, 0x03, 0x00, 0x3c, 0x95, 0x98, 0x09,
];
const SPS_265: &[u8] = &[
    0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03,
    0x00, 0x3c, 0xa0, 0x0b, 0x08, 0x04, 0x85, 0x96, 0x56, 0x69, 0x24, 0xca, 0xf0, 0x16, 0x80, 0x80,
    0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x0c, 0x84,
];
const PPS_265: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];
const ASC: &[u8] = &[0x12, 0x10]; // AAC-LC 44.1 kHz stereo

fn avcc(nals: &[&[u8]]) -> Bytes {
    let mut b = BytesMut::new();
    for n in nals {
        b.put_u32(n.len() as u32);
        b.put_slice(n);
    }
    b.freeze()
}

fn h264_tracks() -> Vec<TrackInfo> {
    vec![
        TrackInfo::new(
            Codec::H264,
            avc::DecoderConfig::build(SPS, &[PPS]).expect("avcC"),
        ),
        TrackInfo::new(Codec::Aac, Bytes::from_static(ASC)),
    ]
}

fn frame(codec: Codec, dts: u64, cts: i32, keyframe: bool, data: Bytes) -> Frame {
    Frame {
        codec,
        dts,
        cts,
        keyframe,
        data,
    }
}

fn annex_b_of(nals: &[&[u8]]) -> Vec<u8> {
    nals.iter()
        .flat_map(|n| [&[0, 0, 0, 1][..], n].concat())
        .collect()
}

fn read(ts: &[u8]) -> (Vec<Pes>, Demuxer) {
    assert_eq!(ts.len() % PACKET_SIZE, 0);
    let mut d = Demuxer::new();
    d.push(ts).expect("valid TS");
    d.finish().expect("complete");
    let pes = std::iter::from_fn(|| d.pull()).collect();
    (pes, d)
}

#[test]
fn tables_describe_both_tracks() {
    let mut m = TsMuxer::new(&h264_tracks());
    let mut out = BytesMut::new();
    m.write_tables(&mut out);
    m.write_tables(&mut out);
    assert_eq!(out.len(), 4 * PACKET_SIZE);
    let (_, d) = read(&out);
    let pmt = d.pmt().expect("PMT");
    assert_eq!(pmt.pcr_pid, PID_VIDEO);
    assert_eq!(
        pmt.streams,
        vec![(STREAM_TYPE_H264, PID_VIDEO), (STREAM_TYPE_AAC, PID_AUDIO)]
    );
    let second_pat = Packet::parse(&out[2 * PACKET_SIZE..3 * PACKET_SIZE]).expect("PAT");
    assert_eq!((second_pat.pid, second_pat.cc), (PID_PAT, 1));
}

#[test]
fn keyframe_gets_tables_aud_parameter_sets_and_pcr() {
    let mut m = TsMuxer::new(&h264_tracks());
    let mut out = BytesMut::new();
    let idr = [0x65u8, 0x88, 0x84, 0x21];
    m.push(
        &frame(Codec::H264, 0, 80, true, avcc(&[&[0x09, 0xf0], &idr])),
        &mut out,
    );
    let first = Packet::parse(&out[..PACKET_SIZE]).expect("packet");
    assert_eq!(first.pid, PID_PAT);
    let video = Packet::parse(&out[2 * PACKET_SIZE..3 * PACKET_SIZE]).expect("packet");
    assert!(video.pusi && video.random_access);
    assert_eq!(video.pcr, Some((1000 - PCR_LEAD_MS) * 90));

    let (pes, _) = read(&out);
    assert_eq!(pes.len(), 1);
    assert_eq!(pes[0].header.pts, Some(1080 * 90));
    assert_eq!(pes[0].header.dts, Some(1000 * 90));
    // The frame's own AUD is replaced by ours, not repeated.
    assert_eq!(pes[0].data, annex_b_of(&[&[0x09, 0xf0], SPS, PPS, &idr]));
}

#[test]
fn in_band_parameter_sets_are_not_repeated_and_inter_frames_get_none() {
    let mut m = TsMuxer::new(&h264_tracks());
    let mut out = BytesMut::new();
    let idr = [0x65u8, 0x88];
    m.push(
        &frame(Codec::H264, 0, 0, true, avcc(&[SPS, PPS, &idr])),
        &mut out,
    );
    m.push(
        &frame(Codec::H264, 40, 0, false, avcc(&[&[0x41, 0x9a]])),
        &mut out,
    );
    let (pes, _) = read(&out);
    assert_eq!(pes[0].data, annex_b_of(&[&[0x09, 0xf0], SPS, PPS, &idr]));
    assert_eq!(pes[1].data, annex_b_of(&[&[0x09, 0xf0], &[0x41, 0x9a]]));
    assert_eq!(pes[1].header.dts, None, "PTS only when it equals DTS");
    assert!(!pes[1].random_access);
}

#[test]
fn large_frame_spans_packets_with_stuffing() {
    let mut m = TsMuxer::new(&h264_tracks());
    let mut out = BytesMut::new();
    let mut big = vec![0x65u8];
    big.extend((0..70_000u32).map(|i| (i % 251) as u8));
    m.push(&frame(Codec::H264, 0, 0, true, avcc(&[&big])), &mut out);
    m.push(
        &frame(Codec::H264, 40, 0, false, avcc(&[&big[..10]])),
        &mut out,
    );
    let (pes, d) = read(&out);
    assert_eq!(pes.len(), 2);
    assert_eq!(pes[0].header.packet_length, 0, "over 65535: unbounded");
    assert!(pes[0].data.ends_with(&big));
    assert_eq!(d.packets(), out.len() / PACKET_SIZE);
}

#[test]
fn aac_frames_are_adts() {
    let mut m = TsMuxer::new(&h264_tracks());
    let mut out = BytesMut::new();
    m.push(
        &frame(Codec::H264, 0, 0, true, avcc(&[&[0x65, 1]])),
        &mut out,
    );
    let raw = Bytes::from_static(&[0x21, 0x10, 0x05, 0x00]);
    m.push(&frame(Codec::Aac, 23, 0, true, raw.clone()), &mut out);
    let (pes, _) = read(&out);
    let audio = pes.iter().find(|p| p.pid == PID_AUDIO).expect("audio PES");
    assert_eq!(audio.header.stream_id, STREAM_ID_AUDIO);
    assert_eq!(audio.header.pts, Some(1023 * 90));
    let asc = AudioSpecificConfig::parse(ASC).expect("asc");
    assert_eq!(audio.data[..7], asc.adts_header(raw.len()));
    assert_eq!(audio.data[7..], raw[..]);
    assert!(
        !audio.random_access,
        "only video keyframes are marked in an A/V stream"
    );
}

#[test]
fn pcr_never_gaps_more_than_100_ms() {
    // One video frame a second (a slideshow) with audio every 23 ms: PCR-only packets fill in.
    let mut m = TsMuxer::new(&h264_tracks());
    let mut out = BytesMut::new();
    for i in 0..200u64 {
        let dts = i * 23;
        if dts % 1000 < 23 {
            let t = dts - dts % 1000;
            let f = frame(Codec::H264, t, 0, t % 2000 == 0, avcc(&[&[0x65, 1]]));
            m.push(&f, &mut out);
        }
        m.push(
            &frame(Codec::Aac, dts, 0, true, Bytes::from_static(&[1, 2])),
            &mut out,
        );
    }
    let (pes, d) = read(&out);
    assert!(pes.len() > 200);
    let pcrs: Vec<u64> = d.pcrs().iter().map(|(_, p)| *p).collect();
    assert!(d.pcrs().iter().all(|(pid, _)| *pid == PID_VIDEO));
    for w in pcrs.windows(2) {
        assert!(w[1] >= w[0], "PCR went back");
        assert!(
            w[1] - w[0] <= (PCR_INTERVAL_MS + 23) * 90,
            "PCR gap {}",
            w[1] - w[0]
        );
    }
}

#[test]
fn audio_only_carries_pcr_and_repeats_tables() {
    let tracks = [TrackInfo::new(Codec::Aac, Bytes::from_static(ASC))];
    let mut m = TsMuxer::new(&tracks);
    let mut out = BytesMut::new();
    for i in 0..100u64 {
        m.push(
            &frame(Codec::Aac, i * 23, 0, true, Bytes::from_static(&[1])),
            &mut out,
        );
    }
    let (pes, d) = read(&out);
    assert_eq!(pes.len(), 100);
    assert!(pes.iter().all(|p| p.random_access));
    assert_eq!(d.pmt().expect("pmt").pcr_pid, PID_AUDIO);
    assert_eq!(d.pcrs().len(), 100);
    let pats = out
        .chunks(PACKET_SIZE)
        .filter(|p| Packet::parse(p).is_ok_and(|p| p.pid == PID_PAT))
        .count();
    assert_eq!(pats, 3, "at 0, 1.012 s and 2.024 s");
}

#[test]
fn h265_keyframe_gets_vps_sps_pps() {
    let config = hevc::DecoderConfig::build(VPS_265, SPS_265, PPS_265).expect("hvcC");
    let mut m = TsMuxer::new(&[TrackInfo::new(Codec::H265, config)]);
    let mut out = BytesMut::new();
    let idr = [0x26u8, 0x01, 0xaf];
    m.push(&frame(Codec::H265, 0, 0, true, avcc(&[&idr])), &mut out);
    let (pes, d) = read(&out);
    assert_eq!(
        d.pmt().expect("pmt").streams,
        vec![(STREAM_TYPE_H265, PID_VIDEO)]
    );
    assert_eq!(
        pes[0].data,
        annex_b_of(&[&[0x46, 0x01, 0x50], VPS_265, SPS_265, PPS_265, &idr])
    );
}

#[test]
fn g711_and_opus_are_left_out() {
    let tracks = [
        TrackInfo::new(Codec::G711A, Bytes::new()),
        TrackInfo::new(Codec::Opus, Bytes::new()),
    ];
    let mut m = TsMuxer::new(&tracks);
    assert!(!m.carries(Codec::G711A) && !m.carries(Codec::Opus));
    let mut out = BytesMut::new();
    m.push(
        &frame(Codec::G711A, 0, 0, true, Bytes::from_static(&[0xd5; 160])),
        &mut out,
    );
    assert!(out.is_empty());
    let mp3 = TsMuxer::new(&[TrackInfo::new(Codec::Mp3, Bytes::new())]);
    assert!(mp3.carries(Codec::Mp3));
}

#[test]
fn malformed_frames_do_not_panic() {
    let mut m = TsMuxer::new(&[
        TrackInfo::new(Codec::H264, Bytes::from_static(&[1, 2])),
        TrackInfo::new(Codec::Aac, Bytes::new()),
    ]);
    let mut out = BytesMut::new();
    // A NAL length running past the end, a truncated length, an empty frame, negative cts.
    m.push(
        &frame(
            Codec::H264,
            0,
            -40,
            true,
            Bytes::from_static(&[0, 0, 0, 9, 0x65]),
        ),
        &mut out,
    );
    m.push(
        &frame(Codec::H264, 40, 0, false, Bytes::from_static(&[0, 0])),
        &mut out,
    );
    m.push(&frame(Codec::H264, 80, 0, false, Bytes::new()), &mut out);
    // AAC without a config cannot be framed as ADTS: skipped.
    m.push(
        &frame(Codec::Aac, 90, 0, true, Bytes::from_static(&[1, 2])),
        &mut out,
    );
    let (pes, _) = read(&out);
    assert_eq!(pes.len(), 3);
    assert!(pes
        .iter()
        .all(|p| p.pid == PID_VIDEO && p.data == [0, 0, 0, 1, 0x09, 0xf0]));
    assert_eq!(pes[0].header.pts, Some(90_000));
}

#[test]
fn split_reading_gives_the_same_pes() {
    let mut m = TsMuxer::new(&h264_tracks());
    let mut out = BytesMut::new();
    for i in 0..10u64 {
        m.push(
            &frame(Codec::H264, i * 40, 80, i % 5 == 0, avcc(&[&[0x65; 300]])),
            &mut out,
        );
        m.push(
            &frame(
                Codec::Aac,
                i * 40 + 5,
                0,
                true,
                Bytes::from_static(&[7; 200]),
            ),
            &mut out,
        );
    }
    let (whole, errors) = read_all([&out[..]]);
    assert!(errors.is_empty(), "{errors:?}");
    for at in (0..out.len()).step_by(61) {
        let (split, _) = read_all([&out[..at], &out[at..]]);
        assert_eq!(split, whole, "split at {at}");
    }
}

#[test]
fn crc_matches_the_standard_check_value() {
    // CRC-32/MPEG-2 of "123456789" is 0x0376e6e7.
    assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_e6e7);
}

/// A live source that loses bytes: garbage between packets costs one error and the reader
/// finds the packets after it; a PES whose counter jumps is dropped, the next one read.
#[test]
fn reader_resyncs_and_drops_damaged_pes() {
    let tracks = h264_tracks();
    let mut m = TsMuxer::new(&tracks);
    let mut out = BytesMut::new();
    for i in 0..3u64 {
        let data = avcc(&[&[0x65; 400]]);
        m.push(&frame(Codec::H264, i * 40, 0, true, data), &mut out);
    }
    let ts = out.to_vec();
    let (clean, _) = read_all([&ts[..]]);
    assert_eq!(clean.len(), 3);

    // 5 bytes of garbage after the fourth packet, two of them sync bytes: not one packet lost.
    let mut garbage = ts.clone();
    garbage.splice(4 * PACKET_SIZE..4 * PACKET_SIZE, [0x47, 1, 2, 3, 0x47]);
    let (pes, errors) = read_all([&garbage[..]]);
    assert!(
        matches!(
            errors[0],
            crate::Error::Malformed {
                context: "TS sync byte",
                ..
            }
        ),
        "{errors:?}"
    );
    assert_eq!(errors.len(), 1);
    assert_eq!(pes, clean);
    // Garbage inside a packet: that packet, so its PES, is lost; the others are read.
    let mut cut = ts.clone();
    cut.drain(5 * PACKET_SIZE + 10..5 * PACKET_SIZE + 20);
    let (pes, errors) = read_all([&cut[..]]);
    assert!(!errors.is_empty());
    assert_eq!(pes[pes.len() - 2..], clean[1..], "the PES after the loss");

    // One video packet of the second PES lost: its counter jumps.
    let second_pes_start = ts
        .chunks(PACKET_SIZE)
        .enumerate()
        .filter(|(_, p)| p[1] & 0x40 != 0 && u16::from_be_bytes([p[1] & 0x1f, p[2]]) == PID_VIDEO)
        .map(|(i, _)| i)
        .nth(1)
        .expect("second PES");
    let mut lost = ts.clone();
    let at = (second_pes_start + 1) * PACKET_SIZE;
    lost.drain(at..at + PACKET_SIZE);
    let (pes, errors) = read_all([&lost[..]]);
    assert!(
        matches!(errors[..], [crate::Error::ProtocolViolation { .. }]),
        "{errors:?}"
    );
    assert_eq!(pes, [clean[0].clone(), clean[2].clone()]);
}

/// A PMT longer than a packet (a 300-byte program descriptor, as broadcast multiplexes carry)
/// is assembled over its two packets.
#[test]
fn reader_assembles_a_pmt_over_two_packets() {
    let tracks = h264_tracks();
    let mut m = TsMuxer::new(&tracks[..1]);
    let mut out = BytesMut::new();
    m.push(
        &frame(Codec::H264, 0, 0, true, avcc(&[&[0x65; 50]])),
        &mut out,
    );
    let ts = out.to_vec();
    let (clean, errors) = read_all([&ts[..]]);
    assert_eq!((clean.len(), errors), (1, vec![]));

    let mut body = vec![0x00, 0x01, 0xc1, 0x00, 0x00]; // program 1, version 0, current
    body.extend_from_slice(&[0xe0 | (PID_VIDEO >> 8) as u8, PID_VIDEO as u8]); // PCR PID
    body.extend_from_slice(&[0xf1, 0x2c]); // program_info_length 300
    body.push(0xf0); // a private descriptor
    body.push(198);
    body.extend(std::iter::repeat_n(0x5a, 198));
    body.push(0xf1);
    body.push(98);
    body.extend(std::iter::repeat_n(0xa5, 98));
    body.extend_from_slice(&[
        0x1b,
        0xe0 | (PID_VIDEO >> 8) as u8,
        PID_VIDEO as u8,
        0xf0,
        0x00,
    ]);
    let len = body.len() + 4;
    let mut section = vec![0x02, 0xb0 | (len >> 8) as u8, len as u8];
    section.extend(body);
    let crc = crc32_mpeg2(&section);
    section.extend_from_slice(&crc.to_be_bytes());
    assert!(section.len() > PACKET_SIZE);
    let mut payload = vec![0u8]; // pointer_field
    payload.extend(section);
    payload.resize(2 * (PACKET_SIZE - 4), 0xff);
    let mut pmt = Vec::new();
    for (i, chunk) in payload.chunks(PACKET_SIZE - 4).enumerate() {
        let pusi = if i == 0 { 0x40 } else { 0 };
        pmt.extend_from_slice(&[
            SYNC_BYTE,
            pusi | (PID_PMT >> 8) as u8,
            PID_PMT as u8,
            0x10 | i as u8,
        ]);
        pmt.extend_from_slice(chunk);
    }
    // The muxer's PAT, the long PMT in place of its own, then its PES packets.
    let pid = |p: &[u8]| u16::from_be_bytes([p[1] & 0x1f, p[2]]);
    assert_eq!(pid(&ts[PACKET_SIZE..]), PID_PMT);
    assert_eq!(
        ts[2 * PACKET_SIZE..]
            .chunks(PACKET_SIZE)
            .filter(|p| pid(p) == PID_PMT)
            .count(),
        0
    );
    let mut long = ts[..PACKET_SIZE].to_vec();
    long.extend(pmt);
    long.extend_from_slice(&ts[2 * PACKET_SIZE..]);
    let mut d = Demuxer::new();
    d.push(&long).expect("clean");
    d.finish().expect("finish");
    assert_eq!(
        d.pmt().map(|p| p.streams.clone()),
        Some(vec![(0x1b, PID_VIDEO)])
    );
    let pes: Vec<Pes> = std::iter::from_fn(|| d.pull()).collect();
    assert_eq!(pes, clean);
}
