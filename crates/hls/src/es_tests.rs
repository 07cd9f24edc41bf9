use super::*;

// x264 High profile SPS/PPS (the vectors of the muxer's tests).
const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
    0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60,
];
const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
// x265 4:2:0 parameter sets (media's hevc tests), 352x288.
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

const AUD: &[u8] = &[0x09, 0xf0];
const SEI: &[u8] = &[0x06, 0x05, 0x01, 0xaa, 0x80];

fn annex_b(nals: &[&[u8]]) -> Bytes {
    let mut b = Vec::new();
    for (i, n) in nals.iter().enumerate() {
        // Both start code lengths, as encoders mix them.
        if i % 2 == 0 {
            b.extend_from_slice(&[0, 0, 0, 1]);
        } else {
            b.extend_from_slice(&[0, 0, 1]);
        }
        b.extend_from_slice(n);
    }
    Bytes::from(b)
}

fn avcc(nals: &[&[u8]]) -> Bytes {
    let mut b = BytesMut::new();
    for n in nals {
        b.put_u32(n.len() as u32);
        b.put_slice(n);
    }
    b.freeze()
}

/// A slice NAL unit: `header`, first_mb_in_slice 0 (the bit 1), then filler that holds no
/// start code.
fn slice(header: &[u8], len: usize) -> Vec<u8> {
    let mut v = header.to_vec();
    v.push(0x88);
    v.extend((0..len).map(|i| (i % 200 + 2) as u8));
    v
}

fn drain(es: &mut Elementary) -> Vec<EsEvent> {
    std::iter::from_fn(|| es.pull()).collect()
}

fn frames(events: &[EsEvent]) -> Vec<&Frame> {
    events
        .iter()
        .filter_map(|e| match e {
            EsEvent::Frame(f) => Some(f),
            EsEvent::Track(_) => None,
        })
        .collect()
}

fn tracks(events: &[EsEvent]) -> Vec<&TrackInfo> {
    events
        .iter()
        .filter_map(|e| match e {
            EsEvent::Track(t) => Some(t),
            EsEvent::Frame(_) => None,
        })
        .collect()
}

#[test]
fn h264_access_units_become_avcc_frames_after_their_track() {
    let mut es = Elementary::new();
    let idr = slice(&[0x65], 100);
    let p = slice(&[0x41], 50);
    let b = slice(&[0x01], 20);
    // I (pts 0.1 s, dts 0.06 s), P, B as x264 orders them; the 90 kHz clock starts at 9000.
    es.push(
        0x1b,
        Some(9_000),
        Some(5_400),
        annex_b(&[AUD, SPS, PPS, SEI, &idr]),
    )
    .expect("push");
    // The IDR is not complete until the next access unit starts.
    assert_eq!(drain(&mut es), []);
    es.push(0x1b, Some(18_000), Some(9_000), annex_b(&[AUD, &p]))
        .expect("push");
    es.push(0x1b, Some(12_600), None, annex_b(&[AUD, &b]))
        .expect("push");
    es.flush();
    let events = drain(&mut es);
    let config = avc::DecoderConfig::build(SPS, &[PPS]).expect("avcC");
    assert_eq!(
        events,
        [
            EsEvent::Track(TrackInfo::new(Codec::H264, config)),
            EsEvent::Frame(Frame {
                codec: Codec::H264,
                dts: 60,
                cts: 40,
                keyframe: true,
                data: avcc(&[SEI, &idr]),
            }),
            EsEvent::Frame(Frame {
                codec: Codec::H264,
                dts: 100,
                cts: 100,
                keyframe: false,
                data: avcc(&[&p]),
            }),
            EsEvent::Frame(Frame {
                codec: Codec::H264,
                dts: 140,
                cts: 0,
                keyframe: false,
                data: avcc(&[&b]),
            }),
        ]
    );
    let track = tracks(&events)[0];
    assert_eq!((track.width, track.height), (1280, 720));
}

/// GB28181 cameras cut a large picture over several PES, only the first with a PTS, and send
/// each parameter set in a PES of its own; no AUDs.
#[test]
fn nal_units_cut_across_pes_are_joined() {
    let mut es = Elementary::new();
    let idr = slice(&[0x65], 3000);
    let p = slice(&[0x41], 10);
    es.push(0x1b, Some(90_000), None, annex_b(&[SPS]))
        .expect("push");
    es.push(0x1b, Some(90_000), None, annex_b(&[PPS]))
        .expect("push");
    let whole = annex_b(&[&idr]);
    es.push(0x1b, Some(90_000), None, whole.slice(..1000))
        .expect("push");
    es.push(0x1b, None, None, whole.slice(1000..2000))
        .expect("push");
    es.push(0x1b, None, None, whole.slice(2000..))
        .expect("push");
    es.push(0x1b, Some(93_600), None, annex_b(&[&p]))
        .expect("push");
    let events = drain(&mut es);
    let f = frames(&events);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].data, avcc(&[&idr]));
    assert_eq!((f[0].dts, f[0].cts, f[0].keyframe), (1000, 0, true));
    es.flush();
    let events = drain(&mut es);
    assert_eq!(frames(&events)[0].data, avcc(&[&p]));
    assert_eq!(frames(&events)[0].dts, 1040);
}

#[test]
fn slices_of_one_picture_stay_together() {
    let mut es = Elementary::new();
    let first = slice(&[0x65], 30);
    // first_mb_in_slice 5: ue(v) 00110, so the first payload bit is 0.
    let mut second = vec![0x65, 0x30];
    second.extend_from_slice(&[7; 20]);
    es.push(0x1b, Some(0), None, annex_b(&[SPS, PPS, &first, &second]))
        .expect("push");
    es.push(0x1b, Some(3600), None, annex_b(&[&first]))
        .expect("push");
    let f = drain(&mut es);
    assert_eq!(frames(&f)[0].data, avcc(&[&first, &second]));
}

#[test]
fn video_before_parameter_sets_is_dropped_and_changes_announce_again() {
    let mut es = Elementary::new();
    let idr = slice(&[0x65], 10);
    es.push(0x1b, Some(0), None, annex_b(&[AUD, &idr]))
        .expect("push");
    es.push(0x1b, Some(3600), None, annex_b(&[AUD, SPS, PPS, &idr]))
        .expect("push");
    es.push(0x1b, Some(7200), None, annex_b(&[AUD, SPS, PPS, &idr]))
        .expect("push");
    // A new PPS: a new configuration.
    let pps2: &[u8] = &[0x68, 0xee, 0x3c, 0x80];
    es.push(0x1b, Some(10_800), None, annex_b(&[AUD, SPS, pps2, &idr]))
        .expect("push");
    es.flush();
    let events = drain(&mut es);
    let dts: Vec<u64> = frames(&events).iter().map(|f| f.dts).collect();
    assert_eq!(dts, [40, 80, 120]);
    let configs: Vec<&Bytes> = tracks(&events).iter().map(|t| &t.config).collect();
    assert_eq!(
        configs,
        [
            &avc::DecoderConfig::build(SPS, &[PPS]).expect("avcC"),
            &avc::DecoderConfig::build(SPS, &[pps2]).expect("avcC"),
        ]
    );
    assert!(matches!(events[0], EsEvent::Track(_)));
    assert!(matches!(events[3], EsEvent::Track(_)));
}

#[test]
fn h265_irap_and_hvcc() {
    let mut es = Elementary::new();
    let aud: &[u8] = &[0x46, 0x01, 0x50];
    let irap = slice(&[0x26, 0x01], 40); // IDR_W_RADL
    let trail = slice(&[0x02, 0x01], 10); // TRAIL_R
    es.push(
        0x24,
        Some(0),
        None,
        annex_b(&[aud, VPS_265, SPS_265, PPS_265, &irap]),
    )
    .expect("push");
    es.push(0x24, Some(3600), None, annex_b(&[aud, &trail]))
        .expect("push");
    es.flush();
    let events = drain(&mut es);
    let config = hevc::DecoderConfig::build(VPS_265, SPS_265, PPS_265).expect("hvcC");
    let track = tracks(&events)[0];
    assert_eq!(track, &TrackInfo::new(Codec::H265, config));
    assert_eq!((track.width, track.height), (352, 288));
    let f = frames(&events);
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].data, avcc(&[&irap]));
    assert!(f[0].keyframe && !f[1].keyframe);
    assert_eq!(f[1].codec, Codec::H265);
}

fn adts(asc: media::aac::AudioSpecificConfig, body: &[u8]) -> Vec<u8> {
    let mut v = asc.adts_header(body.len()).to_vec();
    v.extend_from_slice(body);
    v
}

#[test]
fn adts_frames_each_get_their_time() {
    let asc = media::aac::AudioSpecificConfig::parse(&[0x12, 0x10]).expect("asc"); // 44.1k stereo
    let bodies: Vec<Vec<u8>> = (0..5u8).map(|i| vec![0x21, i, i, i]).collect();
    let mut pes1 = Vec::new();
    for b in &bodies[..3] {
        pes1.extend(adts(asc, b));
    }
    // The fourth frame is cut across two PES; the second PES's PTS dates the fifth.
    let fourth = adts(asc, &bodies[3]);
    pes1.extend_from_slice(&fourth[..5]);
    let mut pes2 = fourth[5..].to_vec();
    pes2.extend(adts(asc, &bodies[4]));
    let mut es = Elementary::new();
    es.push(0x0f, Some(90_000), None, Bytes::from(pes1))
        .expect("push");
    es.push(0x0f, Some(90_000 + 4 * 2090), None, Bytes::from(pes2))
        .expect("push");
    let events = drain(&mut es);
    let track = tracks(&events);
    assert_eq!(track.len(), 1);
    assert_eq!(
        (track[0].sample_rate, track[0].channels),
        (44100, 2),
        "{track:?}"
    );
    assert_eq!(&track[0].config[..], &[0x12, 0x10]);
    let f = frames(&events);
    let dts: Vec<u64> = f.iter().map(|f| f.dts).collect();
    // 1024 samples at 44.1 kHz = 23.2 ms.
    assert_eq!(dts, [1000, 1023, 1046, 1069, 1092]);
    for (frame, body) in f.iter().zip(&bodies) {
        assert_eq!(&frame.data[..], &body[..]);
        assert!(frame.keyframe);
        assert_eq!(frame.codec, Codec::Aac);
    }
}

#[test]
fn adts_garbage_resynchronises() {
    let asc = media::aac::AudioSpecificConfig::parse(&[0x11, 0x90]).expect("asc"); // 48k stereo
    let mut pes = vec![1, 2, 3];
    pes.extend(adts(asc, &[0x21, 9]));
    let mut es = Elementary::new();
    assert!(es.push(0x0f, Some(0), None, Bytes::from(pes)).is_err());
    let events = drain(&mut es);
    assert_eq!(tracks(&events)[0].sample_rate, 48000);
    assert_eq!(frames(&events).len(), 1);
}

#[test]
fn timestamps_unwrap_past_33_bits() {
    let mut es = Elementary::new();
    let near_end = (1u64 << 33) - 9_000; // 0.1 s before the wrap
    es.push(0x90, Some(near_end), None, Bytes::from_static(&[0xd5; 160]))
        .expect("push");
    es.push(0x90, Some(9_000), None, Bytes::from_static(&[0xd5; 160]))
        .expect("push");
    // A step back after the wrap stays after it.
    es.push(
        0x90,
        Some((1u64 << 33) - 1800),
        None,
        Bytes::from_static(&[0xd5; 160]),
    )
    .expect("push");
    let events = drain(&mut es);
    let f = frames(&events);
    let base = near_end / 90;
    assert_eq!(f[0].dts, base);
    assert_eq!(f[1].dts, base + 200);
    assert_eq!(f[2].dts, base + 80);
    let t = tracks(&events);
    assert_eq!(
        t,
        [&TrackInfo::new(Codec::G711A, Bytes::new())],
        "one track, announced once"
    );
    assert_eq!((t[0].sample_rate, t[0].channels), (8000, 1));
}

#[test]
fn g711u_and_mp3() {
    let mut es = Elementary::new();
    es.push(0x91, Some(0), None, Bytes::from_static(&[0xff; 80]))
        .expect("push");
    // MPEG-1 Layer III, 128 kbit/s, 48 kHz, joint stereo.
    let mut mp3 = vec![0xff, 0xfb, 0x94, 0x44];
    mp3.resize(384, 0);
    es.push(0x03, Some(900), None, Bytes::from(mp3.clone()))
        .expect("push");
    // Layer II is not carried.
    let mut es2 = Elementary::new();
    assert!(es2
        .push(
            0x04,
            Some(0),
            None,
            Bytes::from_static(&[0xff, 0xfd, 0x94, 0x44])
        )
        .is_err());
    assert_eq!(drain(&mut es2), []);
    let events = drain(&mut es);
    let t = tracks(&events);
    assert_eq!(t[0].codec, Codec::G711U);
    assert_eq!(
        (t[1].codec, t[1].sample_rate, t[1].channels),
        (Codec::Mp3, 48000, 2)
    );
    let f = frames(&events);
    assert_eq!((f[1].dts, &f[1].data[..]), (10, &mp3[..]));
}

#[test]
fn unknown_types_and_oversize_payloads() {
    let mut es = Elementary::new();
    es.push(0x06, Some(0), None, Bytes::from_static(b"opus?"))
        .expect("ignored");
    assert_eq!(drain(&mut es), []);
    let huge = Bytes::from(vec![0u8; MAX_PAYLOAD + 1]);
    assert!(matches!(
        es.push(0x1b, Some(0), None, huge),
        Err(Error::LimitExceeded { .. })
    ));
    // Bytes before any start code.
    assert!(es
        .push(0x1b, Some(0), None, Bytes::from_static(&[0x65, 1, 2]))
        .is_err());
}

#[test]
fn oversize_access_unit_is_dropped_whole() {
    let mut es = Elementary::new();
    es.push(
        0x1b,
        Some(0),
        None,
        annex_b(&[SPS, PPS, &slice(&[0x65], 10)]),
    )
    .expect("push");
    let big = Bytes::from(vec![7u8; MAX_PAYLOAD]);
    let mut errors = 0;
    es.push(0x1b, Some(3600), None, annex_b(&[&slice(&[0x41], 10)]))
        .expect("push");
    for _ in 0..2 {
        errors += usize::from(es.push(0x1b, None, None, big.clone()).is_err());
    }
    assert!(errors >= 1);
    es.push(0x1b, Some(7200), None, annex_b(&[&slice(&[0x41], 10)]))
        .expect("push");
    es.flush();
    let events = drain(&mut es);
    let dts: Vec<u64> = frames(&events).iter().map(|f| f.dts).collect();
    // The IDR and the last P; the oversize P between them is gone.
    assert_eq!(dts, [0, 80]);
}

#[test]
fn start_codes_are_found_at_every_offset() {
    let data = [5, 0, 0, 1, 7, 0, 0, 0, 1, 9, 0, 0, 2, 0, 0, 1];
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(at) = find_start_code(&data, pos) {
        found.push(at);
        pos = at + 3;
    }
    assert_eq!(found, [1, 6, 13]);
}

#[test]
fn ignored_streams_do_not_move_the_clock() {
    let mut es = Elementary::new();
    es.push(0x90, Some(90_000), None, Bytes::from_static(&[0xd5; 80]))
        .expect("push");
    // A private stream 13 hours away: had it moved the clock, the next G.711 PTS would be
    // unwrapped a whole 2^33 period off.
    es.push(
        0x06,
        Some(90_000 + (1 << 32) + 1000),
        None,
        Bytes::from_static(b"x"),
    )
    .expect("ignored");
    es.push(0x90, Some(93_600), None, Bytes::from_static(&[0xd5; 80]))
        .expect("push");
    let events = drain(&mut es);
    let dts: Vec<u64> = frames(&events).iter().map(|f| f.dts).collect();
    assert_eq!(dts, [1000, 1040]);
}

#[test]
fn discard_drops_the_damaged_access_unit_only() {
    let mut es = Elementary::new();
    let idr = slice(&[0x65], 100);
    let p = slice(&[0x41], 50);
    es.push(0x1b, Some(0), None, annex_b(&[SPS, PPS, &idr]))
        .expect("push");
    // Half of the next picture, then a loss.
    let whole = annex_b(&[&p]);
    es.push(0x1b, Some(3600), None, whole.slice(..20))
        .expect("push");
    es.discard();
    // The rest of the lost picture's bytes come before the next start code: dropped.
    let mut next = whole.slice(40..).to_vec();
    next.extend_from_slice(&annex_b(&[&p]));
    assert!(es.push(0x1b, Some(7200), None, Bytes::from(next)).is_err());
    es.flush();
    let events = drain(&mut es);
    let f = frames(&events);
    let dts: Vec<u64> = f.iter().map(|f| f.dts).collect();
    assert_eq!(dts, [0, 80], "the IDR and the picture after the loss");
    assert_eq!(f[1].data, avcc(&[&p]));
    assert_eq!(tracks(&events).len(), 1, "parameter sets kept");
}
