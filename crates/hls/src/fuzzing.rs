//! Fuzz target bodies, shared by `fuzz/fuzz_targets/hls_*.rs` (cargo-fuzz, nightly) and
//! `tests/fuzz_corpus.rs` (stable replay of the committed corpus). Each must never panic.
//!
//! Targets: `hls_ts_reader` (the TS [`reader`](crate::reader), which the TS and HLS pulls
//! demux with and the tests check the muxer's output with), `hls_es` (the
//! [`Elementary`] PES-to-frames step), `hls_ps` (the [`PsDemuxer`] GB28181 sends through) and
//! `hls_m3u8` (the playlist parser of the HLS pull).

use bytes::Bytes;

use crate::es::{Elementary, EsEvent, MAX_ACCESS_UNIT};
use crate::ps::{self, PsDemuxer};
use crate::reader::{Demuxer, Packet, Pes, PesHeader};
use crate::ts::PACKET_SIZE;
use crate::Error;

/// The fuzz targets, named as in `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: [&str; 4] = ["hls_ts_reader", "hls_es", "hls_ps", "hls_m3u8"];

/// Runs the body of the fuzz target called `target` (one of [`TARGETS`]).
pub fn run(target: &str, data: &[u8]) {
    match target {
        "hls_ts_reader" => ts_reader(data),
        "hls_es" => es(data),
        "hls_ps" => ps(data),
        "hls_m3u8" => m3u8(data),
        _ => {}
    }
}

/// Everything a [`Demuxer`] hands out for `chunks` of one stream: the PES, and the result of
/// each push and of the finish.
pub fn read_all<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<Pes>, Vec<Error>) {
    let mut demuxer = Demuxer::new();
    let mut pes = Vec::new();
    let mut errors = Vec::new();
    for chunk in chunks {
        if let Err(e) = demuxer.push(chunk) {
            errors.push(e);
        }
        pes.extend(std::iter::from_fn(|| demuxer.pull()));
    }
    if let Err(e) = demuxer.finish() {
        errors.push(e);
    }
    pes.extend(std::iter::from_fn(|| demuxer.pull()));
    (pes, errors)
}

/// A transport stream: each 188-byte packet and each payload's PES header parsed alone, then
/// the whole stream through the [`Demuxer`] at once, one byte at a time for short inputs and in
/// two halves, which must all give the same PES (splitting never changes what is read).
pub fn ts_reader(data: &[u8]) {
    for chunk in data.chunks(PACKET_SIZE) {
        if let Ok(packet) = Packet::parse(chunk) {
            assert!(packet.payload.len() <= PACKET_SIZE - 4);
            if packet.pusi {
                let _ = PesHeader::parse(packet.payload);
            }
        }
    }
    let (whole, whole_errors) = read_all([data]);
    let (a, b) = data.split_at(data.len() / 2);
    let (halves, _) = read_all([a, b]);
    assert_eq!(whole, halves, "splitting the stream changed the PES");
    if data.len() <= 4 * PACKET_SIZE {
        let (bytes, _) = read_all(data.chunks(1));
        assert_eq!(whole, bytes, "byte-at-a-time reading changed the PES");
    }
    for pes in &whole {
        assert!(pes.header.data_offset >= 9);
    }
    let _ = whole_errors;
}

/// One PES as the `hls_es` target reads it: `stream_type`, PTS, DTS, payload.
pub type EsInput<'a> = (u8, Option<u64>, Option<u64>, &'a [u8]);

/// The `hls_es` input for a run of PES: per PES, `stream_type`, a flags byte (bit 0 PTS,
/// bit 1 DTS), 5-byte PTS and DTS (33 bits used), a 2-byte payload length, the payload. A
/// `stream_type` of 0xff stands for a loss ([`Elementary::discard`]).
pub fn es_input(pes: &[EsInput<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (stream_type, pts, dts, payload) in pes {
        out.push(*stream_type);
        out.push(u8::from(pts.is_some()) | u8::from(dts.is_some()) << 1);
        for t in [pts, dts] {
            out.extend_from_slice(&t.unwrap_or(0).to_be_bytes()[3..]);
        }
        let len = payload.len().min(usize::from(u16::MAX));
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&payload[..len]);
    }
    out
}

/// Reads what [`es_input`] writes; a short last payload is taken as it is.
pub fn es_parse(mut data: &[u8]) -> Vec<EsInput<'_>> {
    let mut out = Vec::new();
    while let Some(head) = data.get(..14) {
        let time = |at: usize| {
            let mut b = [0u8; 8];
            b[3..].copy_from_slice(&head[at..at + 5]);
            u64::from_be_bytes(b)
        };
        let pts = (head[1] & 1 != 0).then(|| time(2));
        let dts = (head[1] & 2 != 0).then(|| time(7));
        let len = usize::from(u16::from_be_bytes([head[12], head[13]]));
        let rest = &data[14..];
        let (payload, next) = rest.split_at(len.min(rest.len()));
        out.push((head[0], pts, dts, payload));
        data = next;
    }
    out
}

/// A run of PES through an [`Elementary`]: whatever it is, nothing panics, video frames are
/// well-formed AVCC within [`MAX_ACCESS_UNIT`], and a track comes before its first frame.
pub fn es(data: &[u8]) {
    let mut es = Elementary::new();
    let mut announced = Vec::new();
    let mut check = |es: &mut Elementary| {
        while let Some(event) = es.pull() {
            match event {
                EsEvent::Track(t) => announced.push(t.codec),
                EsEvent::Frame(f) => {
                    assert!(announced.contains(&f.codec), "frame before its track");
                    assert!(f.cts >= 0);
                    if f.kind() == media::TrackKind::Video {
                        assert!(f.data.len() <= MAX_ACCESS_UNIT);
                        let mut pos = 0;
                        while pos < f.data.len() {
                            let l = &f.data[pos..pos + 4];
                            let len = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
                            assert!(len > 0 && pos + 4 + len <= f.data.len());
                            pos += 4 + len;
                        }
                    }
                }
            }
        }
    };
    for (stream_type, pts, dts, payload) in es_parse(data) {
        if stream_type == 0xff {
            // Not a stream type (0xff is reserved): stands for a loss before the next PES.
            es.discard();
            continue;
        }
        let _ = es.push(stream_type, pts, dts, Bytes::copy_from_slice(payload));
        check(&mut es);
    }
    es.flush();
    check(&mut es);
}

/// Every PES a [`PsDemuxer`] hands out for `chunks` of one stream, finish included.
pub fn read_ps<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<ps::Pes> {
    let mut demuxer = PsDemuxer::new();
    let mut out = Vec::new();
    for chunk in chunks {
        let _ = demuxer.push(chunk);
        out.extend(std::iter::from_fn(|| demuxer.pull()));
    }
    let _ = demuxer.finish();
    out.extend(std::iter::from_fn(|| demuxer.pull()));
    out
}

/// A program stream: whole, in two halves, in RTP-sized pieces and (short inputs) one byte at
/// a time, which must all give the same PES; each is an audio or video stream's, and its
/// payloads then go through an [`Elementary`].
pub fn ps(data: &[u8]) {
    let whole = read_ps([data]);
    let (a, b) = data.split_at(data.len() / 2);
    assert_eq!(
        whole,
        read_ps([a, b]),
        "splitting the stream changed the PES"
    );
    assert_eq!(
        whole,
        read_ps(data.chunks(1400)),
        "RTP-sized pieces changed the PES"
    );
    if data.len() <= 2048 {
        assert_eq!(
            whole,
            read_ps(data.chunks(1)),
            "byte-at-a-time reading changed the PES"
        );
    }
    // A loss in the middle: whatever follows is read without a panic.
    let mut lossy = PsDemuxer::new();
    let _ = lossy.push(a);
    lossy.discard();
    let _ = lossy.push(b);
    while lossy.pull().is_some() {}
    let mut es = Elementary::new();
    for pes in whole {
        assert!(matches!(pes.stream_id, 0xc0..=0xef));
        assert!(pes.payload.len() <= data.len());
        let _ = es.push(pes.stream_type, pes.pts, pes.dts, pes.payload);
        while es.pull().is_some() {}
    }
}

/// A playlist: parsing never panics, and what it gives keeps the parser's bounds and numbers
/// segments consecutively.
pub fn m3u8(data: &[u8]) {
    use crate::m3u8::{parse, M3u8, MAX_SEGMENTS, MAX_URI, MAX_VARIANTS};
    match parse(data) {
        Ok(M3u8::Media(m)) => {
            assert!(m.segments.len() <= MAX_SEGMENTS);
            for (i, s) in m.segments.iter().enumerate() {
                assert_eq!(s.sequence, m.media_sequence.saturating_add(i as u64));
                assert!(!s.uri.is_empty() && s.uri.len() <= MAX_URI);
            }
        }
        Ok(M3u8::Master(m)) => {
            assert!(!m.variants.is_empty() && m.variants.len() <= MAX_VARIANTS);
            let best = m.best().map_or(0, |v| v.bandwidth);
            assert!(m.variants.iter().all(|v| v.bandwidth <= best));
        }
        Err(_) => {}
    }
}
