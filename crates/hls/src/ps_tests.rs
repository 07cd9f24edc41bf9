use super::*;

/// A 5-byte PTS/DTS field with the 4-bit `prefix`.
fn timestamp(prefix: u8, t: u64) -> [u8; 5] {
    [
        prefix << 4 | ((t >> 29) as u8 & 0x0e) | 1,
        (t >> 22) as u8,
        ((t >> 14) as u8 & 0xfe) | 1,
        (t >> 7) as u8,
        ((t << 1) as u8 & 0xfe) | 1,
    ]
}

/// An MPEG-2 PES; `bounded` false writes PES_packet_length 0.
pub(super) fn pes(
    id: u8,
    pts: Option<u64>,
    dts: Option<u64>,
    data: &[u8],
    bounded: bool,
) -> Vec<u8> {
    let mut optional = Vec::new();
    let flags = match (pts, dts) {
        (Some(p), Some(d)) => {
            optional.extend(timestamp(3, p));
            optional.extend(timestamp(1, d));
            0xc0
        }
        (Some(p), None) => {
            optional.extend(timestamp(2, p));
            0x80
        }
        _ => 0,
    };
    let len = 3 + optional.len() + data.len();
    let mut v = vec![0, 0, 1, id];
    v.extend_from_slice(&(if bounded { len as u16 } else { 0 }).to_be_bytes());
    v.extend_from_slice(&[0x80, flags, optional.len() as u8]);
    v.extend(optional);
    v.extend_from_slice(data);
    v
}

/// An MPEG-2 pack header with `stuffing` bytes, then a system header.
pub(super) fn pack(stuffing: u8) -> Vec<u8> {
    let mut v = vec![
        0,
        0,
        1,
        0xba,
        0x44,
        0,
        4,
        0,
        4,
        1,
        0x01,
        0x89,
        0xc3,
        0xf8 | stuffing,
    ];
    v.extend(std::iter::repeat_n(0xff, usize::from(stuffing)));
    v.extend_from_slice(&[0, 0, 1, 0xbb, 0, 6, 0x80, 0x01, 0x01, 0x04, 0xe1, 0xff]);
    v
}

/// A program stream map naming `(stream_type, stream_id)`; the CRC is written as zeros, as
/// some cameras do.
pub(super) fn psm(entries: &[(u8, u8)]) -> Vec<u8> {
    let mut map = Vec::new();
    for (t, id) in entries {
        map.extend_from_slice(&[*t, *id, 0, 0]);
    }
    let mut body = vec![0xe0, 0xff, 0, 0];
    body.extend_from_slice(&(map.len() as u16).to_be_bytes());
    body.extend(map);
    body.extend_from_slice(&[0, 0, 0, 0]);
    let mut v = vec![0, 0, 1, 0xbc];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend(body);
    v
}

fn read(chunks: &[&[u8]]) -> (Vec<Pes>, Vec<Error>) {
    let mut d = PsDemuxer::new();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for c in chunks {
        if let Err(e) = d.push(c) {
            errors.push(e);
        }
        out.extend(std::iter::from_fn(|| d.pull()));
    }
    if let Err(e) = d.finish() {
        errors.push(e);
    }
    out.extend(std::iter::from_fn(|| d.pull()));
    (out, errors)
}

const VIDEO: &[u8] = &[0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x65, 0x88, 0x84, 0x21];
const AUDIO: &[u8] = &[0xff, 0xf1, 0x50, 0x80, 0x01, 0x7f, 0xfc, 0x21, 0x10];

/// A GB28181-like stream: pack with stuffing, system header, PSM, a video frame in two PES
/// (the second without PTS), audio, a video PES without length, the end code.
fn gb28181() -> Vec<u8> {
    let mut s = pack(3);
    s.extend(psm(&[(0x1b, 0xe0), (0x0f, 0xc0)]));
    s.extend(pes(0xe0, Some(90_000), Some(86_400), &VIDEO[..6], true));
    s.extend(pes(0xe0, None, None, &VIDEO[6..], true));
    s.extend(pes(0xc0, Some(90_000), None, AUDIO, true));
    s.extend(pack(0));
    s.extend(pes(0xbd, None, None, b"private", true));
    s.extend(pes(0xe0, Some(93_600), None, VIDEO, false));
    s.extend(pack(1));
    s.extend_from_slice(&[0, 0, 1, 0xb9]);
    s
}

#[test]
fn reads_a_gb28181_stream_at_any_split() {
    let stream = gb28181();
    let (whole, errors) = read(&[&stream]);
    assert_eq!(errors, []);
    type Summary<'a> = (u8, u8, Option<u64>, Option<u64>, &'a [u8]);
    let summary: Vec<Summary<'_>> = whole
        .iter()
        .map(|p| (p.stream_id, p.stream_type, p.pts, p.dts, &p.payload[..]))
        .collect();
    assert_eq!(
        summary,
        [
            (0xe0, 0x1b, Some(90_000), Some(86_400), &VIDEO[..6]),
            (0xe0, 0x1b, None, None, &VIDEO[6..]),
            (0xc0, 0x0f, Some(90_000), None, AUDIO),
            (0xe0, 0x1b, Some(93_600), None, VIDEO),
        ]
    );
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(read(&bytes), (whole.clone(), vec![]));
    for size in [2, 5, 7, 13, 100] {
        let chunks: Vec<&[u8]> = stream.chunks(size).collect();
        assert_eq!(read(&chunks).0, whole, "chunks of {size}");
    }
}

#[test]
fn psm_names_the_types_and_without_one_they_are_guessed() {
    let mut d = PsDemuxer::new();
    let h265 = [0, 0, 0, 1, 0x40, 0x01, 0x0c];
    let mut s = pack(0);
    s.extend(pes(0xe0, Some(0), None, &h265, true));
    s.extend(pes(0xe1, Some(0), None, VIDEO, true));
    s.extend(pes(0xc0, Some(0), None, AUDIO, true));
    s.extend(pes(0xc1, Some(0), None, &[0xff, 0xfb, 0x94, 0x44], true));
    d.push(&s).expect("push");
    let types: Vec<u8> = std::iter::from_fn(|| d.pull())
        .map(|p| p.stream_type)
        .collect();
    assert_eq!(types, [0x24, 0x1b, 0x0f, 0x03]);
    assert!(!d.psm_seen());
    // A later PSM wins: G.711 A-law as GB28181 numbers it.
    let mut s = psm(&[(0x90, 0xc0)]);
    s.extend(pes(0xc0, Some(0), None, &[0xd5; 8], true));
    d.push(&s).expect("push");
    assert_eq!(d.pull().map(|p| p.stream_type), Some(0x90));
    assert!(d.psm_seen());
    assert_eq!(d.stream_type(0xc0), Some(0x90));
    assert_eq!(d.stream_type(0xe0), None);
}

#[test]
fn garbage_costs_one_error_and_sync_comes_back() {
    let mut s = vec![0x12, 0x00, 0x00, 0x01, 0x05, 0x77, 0x00];
    s.extend(gb28181());
    let (pes, errors) = read(&[&s]);
    assert_eq!(pes.len(), 4);
    assert!(
        matches!(errors[..], [Error::Malformed { offset: 0, .. }]),
        "{errors:?}"
    );
    // Garbage between packets too.
    let mut s = gb28181();
    let at = pack(3).len() + psm(&[(0x1b, 0xe0), (0x0f, 0xc0)]).len();
    s.splice(at..at, [1, 2, 3, 4, 5]);
    let (pes, errors) = read(&[&s]);
    assert_eq!(pes.len(), 4);
    assert_eq!(errors.len(), 1);
}

#[test]
fn unbounded_pes_is_bounded() {
    let mut d = PsDemuxer::new();
    d.push(&pes(0xe0, Some(0), None, VIDEO, false))
        .expect("push");
    let chunk = vec![0x11u8; 1 << 20];
    let mut errors = 0;
    for _ in 0..9 {
        if let Err(e) = d.push(&chunk) {
            assert!(matches!(e, Error::LimitExceeded { .. }), "{e:?}");
            errors += 1;
        }
    }
    assert_eq!(errors, 1);
    assert_eq!(d.pull(), None);
    // The next packets are read again.
    let (expected, _) = read(&[&gb28181()]);
    d.push(&gb28181()).expect("in sync again");
    let got: Vec<Pes> = std::iter::from_fn(|| d.pull()).collect();
    assert_eq!(got, expected);
    // An unbounded PES at the end of the source is handed out by finish.
    d.push(&pes(0xe0, Some(7200), None, VIDEO, false))
        .expect("push");
    assert_eq!(d.pull(), None);
    d.finish().expect("finish");
    assert_eq!(
        d.pull().map(|p| (p.pts, p.payload.len())),
        Some((Some(7200), VIDEO.len()))
    );
}

#[test]
fn mpeg1_system_stream() {
    // MPEG-1 pack header, then PES with stuffing, STD buffer and PTS+DTS / PTS only / none.
    let mut s = vec![0, 0, 1, 0xba, 0x21, 0, 1, 0, 1, 0x80, 0x1b, 0x83];
    let mut p = vec![0, 0, 1, 0xe2, 0, 0, 0xff, 0xff, 0x60, 0xe6];
    p.extend(timestamp(3, 9000));
    p.extend(timestamp(1, 5400));
    p.extend_from_slice(VIDEO);
    let len = (p.len() - 6) as u16;
    p[4..6].copy_from_slice(&len.to_be_bytes());
    s.extend(p);
    let mut a = vec![0, 0, 1, 0xc0, 0, 0];
    a.extend(timestamp(2, 9000));
    a.extend_from_slice(&[0xff, 0xfb, 0x94, 0x44]);
    let len = (a.len() - 6) as u16;
    a[4..6].copy_from_slice(&len.to_be_bytes());
    s.extend(a);
    s.extend_from_slice(&[0, 0, 1, 0xc0, 0, 3, 0x0f, 0xff, 0xfb]);
    let (pes, errors) = read(&[&s]);
    assert_eq!(errors, []);
    let summary: Vec<(u8, Option<u64>, Option<u64>, usize)> = pes
        .iter()
        .map(|p| (p.stream_type, p.pts, p.dts, p.payload.len()))
        .collect();
    assert_eq!(
        summary,
        [
            (0x1b, Some(9000), Some(5400), VIDEO.len()),
            (0x03, Some(9000), None, 4),
            (0x03, None, None, 2)
        ]
    );
}

#[test]
fn truncated_stream_is_an_error_at_finish() {
    let s = gb28181();
    let mut d = PsDemuxer::new();
    d.push(&s[..40]).expect("push");
    assert!(d.finish().is_err());
    assert!(PsDemuxer::new().finish().is_ok());
}

#[test]
fn discard_after_a_gap_resyncs_quietly() {
    let stream = gb28181();
    let mut d = PsDemuxer::new();
    // The first 60 bytes arrive, then a gap: the rest of that packet is lost.
    d.push(&stream[..60]).expect("push");
    d.discard();
    let second_pack = stream
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == [0, 0, 1, 0xba])
        .map(|(i, _)| i)
        .nth(1)
        .expect("a second pack");
    // What comes after the gap starts mid-packet: skipped without an error.
    d.push(&stream[second_pack - 10..])
        .expect("no error after discard");
    assert!(d.psm_seen(), "the map is kept");
    let (all, _) = read(&[&stream]);
    let got: Vec<Pes> = std::iter::from_fn(|| d.pull()).collect();
    assert_eq!(got, all[all.len() - 1..]);
}

#[test]
fn one_huge_push_stays_bounded() {
    let mut s = pes(0xe0, Some(0), None, VIDEO, false);
    s.resize(MAX_BUFFER * 2, 0x11);
    s.extend(gb28181());
    let mut d = PsDemuxer::new();
    assert!(matches!(d.push(&s), Err(Error::LimitExceeded { .. })));
    let got: Vec<Pes> = std::iter::from_fn(|| d.pull()).collect();
    let (expected, _) = read(&[&gb28181()]);
    assert_eq!(got, expected);
}
