//! The [`Depacketizer`] on packets built in memory: MPEG-TS over RTP (payload type 33) from our
//! own TS muxer, raw H.264, the SSRC lock, reordering, garbage and `only_track`.

use super::*;
use bytes::{BufMut, BytesMut};
use media::{avc, Frame};

const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
    0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60,
];
const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

fn avcc(nals: &[&[u8]]) -> Bytes {
    let mut b = BytesMut::new();
    for n in nals {
        b.put_u32(n.len() as u32);
        b.put_slice(n);
    }
    b.freeze()
}

fn video(i: u64) -> Frame {
    let key = i.is_multiple_of(5);
    let mut body = vec![if key { 0x65 } else { 0x41 }, 0x88];
    body.extend((0..2000).map(|n| (n % 251) as u8));
    Frame {
        codec: Codec::H264,
        dts: i * 40,
        cts: 0,
        keyframe: key,
        data: avcc(&[&body]),
    }
}

fn audio(i: u64) -> Frame {
    Frame {
        codec: Codec::Aac,
        dts: i * 40 + 5,
        cts: 0,
        keyframe: true,
        data: Bytes::from(vec![0x21; 100]),
    }
}

/// RTP packets of payload type `pt` carrying `payload` in pieces of at most `max` bytes.
fn rtp(pt: u8, ssrc: u32, first_seq: u16, payload: &[u8], max: usize) -> Vec<Bytes> {
    payload
        .chunks(max)
        .enumerate()
        .map(|(i, piece)| {
            let mut out = BytesMut::new();
            rtsp::rtp::write_header(&mut out, false, pt, first_seq + i as u16, 0, ssrc);
            out.put_slice(piece);
            out.freeze()
        })
        .collect()
}

/// Ten video frames and ten AAC frames as MPEG-TS (7 TS packets per RTP packet, RFC 2250).
fn ts_packets(ssrc: u32) -> Vec<Bytes> {
    let tracks = [
        TrackInfo::new(
            Codec::H264,
            avc::DecoderConfig::build(SPS, &[PPS]).expect("avcC"),
        ),
        TrackInfo::new(Codec::Aac, Bytes::from_static(&[0x12, 0x10])),
    ];
    let mut muxer = hls::TsMuxer::new(&tracks);
    let mut ts = BytesMut::new();
    for i in 0..10 {
        muxer.push(&video(i), &mut ts);
        muxer.push(&audio(i), &mut ts);
    }
    rtp(33, ssrc, 100, &ts, 7 * hls::ts::PACKET_SIZE)
}

fn drain(d: &mut Depacketizer) -> Vec<DemuxEvent> {
    std::iter::from_fn(|| d.pull()).collect()
}

fn summary(events: &[DemuxEvent]) -> (Vec<Codec>, usize, usize) {
    let tracks = events
        .iter()
        .filter_map(|e| match e {
            DemuxEvent::Track(t) => Some(t.codec),
            _ => None,
        })
        .collect();
    let count = |kind| {
        events
            .iter()
            .filter(|e| matches!(e, DemuxEvent::Frame(f) if f.kind() == kind))
            .count()
    };
    (tracks, count(TrackKind::Video), count(TrackKind::Audio))
}

#[test]
fn mpeg_ts_over_rtp_gives_both_tracks_and_their_frames() {
    let mut d = Depacketizer::new(RtpServerConfig::default(), 0, OnlyTrack::All);
    let mut events = Vec::new();
    for (i, p) in ts_packets(9).into_iter().enumerate() {
        assert!(d.push(p, i as u64));
        events.extend(drain(&mut d));
    }
    let (tracks, video, audio) = summary(&events);
    assert!(
        tracks.contains(&Codec::H264) && tracks.contains(&Codec::Aac),
        "{tracks:?}"
    );
    // A PES (and a video access unit) is handed out when the next one starts: the last waits.
    assert_eq!((video, audio), (9, 9));
    let first = events.iter().find_map(|e| match e {
        DemuxEvent::Frame(f) if f.kind() == TrackKind::Video => Some(f),
        _ => None,
    });
    assert!(first.is_some_and(|f| f.keyframe));
}

#[test]
fn only_video_drops_the_audio_track_and_frames() {
    let mut d = Depacketizer::new(RtpServerConfig::default(), 0, OnlyTrack::Video);
    let mut events = Vec::new();
    for (i, p) in ts_packets(9).into_iter().enumerate() {
        d.push(p, i as u64);
        events.extend(drain(&mut d));
    }
    assert_eq!(summary(&events), (vec![Codec::H264], 9, 0));
}

#[test]
fn swapped_packets_are_put_back_in_order() {
    let mut packets = ts_packets(9);
    for pair in packets.chunks_mut(2) {
        pair.reverse();
    }
    let mut d = Depacketizer::new(RtpServerConfig::default(), 0, OnlyTrack::All);
    let mut events = Vec::new();
    for p in packets {
        d.push(p, 0);
        events.extend(drain(&mut d));
    }
    assert_eq!(summary(&events).1, 9);
}

#[test]
fn the_first_ssrc_is_kept_and_garbage_does_not_count() {
    let mut d = Depacketizer::new(RtpServerConfig::default(), 0, OnlyTrack::All);
    assert!(!d.push(Bytes::from_static(b"garbage"), 0));
    assert!(!d.push(Bytes::from_static(&[0x80, 0x21, 0]), 0));
    let packets = ts_packets(1);
    assert!(d.push(packets[0].clone(), 0));
    assert!(!d.push(ts_packets(2)[1].clone(), 0), "another SSRC");
    // A payload type nobody configured counts as the source's, but gives nothing.
    let mut d = Depacketizer::new(RtpServerConfig::default(), 5, OnlyTrack::All);
    assert!(
        !d.push(ts_packets(6)[0].clone(), 0),
        "not the SSRC asked for"
    );
    for p in rtp(50, 5, 0, &[0u8; 30_000], 1000) {
        assert!(d.push(p, 0));
        assert!(drain(&mut d).is_empty());
    }
    assert!(!d.has_media(), "an unknown payload type makes no stream");
}

#[test]
fn raw_h264_over_rtp_gets_its_track_from_in_band_parameter_sets() {
    let mut p = rtsp::h264::Packetizer::new(1400, 98, 3, 0);
    let mut d = Depacketizer::new(RtpServerConfig::default(), 0, OnlyTrack::All);
    let mut events = Vec::new();
    for i in 0..10u32 {
        let frame = video(u64::from(i));
        let au = if frame.keyframe {
            avcc(&[SPS, PPS, &frame.data[4..]])
        } else {
            frame.data.clone()
        };
        p.push(i * 3600, &au).expect("packetize");
        while let Some(packet) = p.pull() {
            d.push(packet.to_bytes(), u64::from(i) * 40);
            events.extend(drain(&mut d));
        }
    }
    let (tracks, video, _) = summary(&events);
    assert_eq!(tracks, vec![Codec::H264]);
    assert_eq!(video, 10);
}
