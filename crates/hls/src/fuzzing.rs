//! Fuzz target bodies, shared by `fuzz/fuzz_targets/hls_*.rs` (cargo-fuzz, nightly) and
//! `tests/fuzz_corpus.rs` (stable replay of the committed corpus). Each must never panic.
//!
//! The crate parses no untrusted input in production (it only writes TS and m3u8); the target
//! covers the TS [`reader`](crate::reader) the tests rely on, so a test never passes because
//! the reader misread the muxer's output.

use bytes::Bytes;

use crate::es::{Elementary, EsEvent, MAX_ACCESS_UNIT};
use crate::reader::{Demuxer, Packet, Pes, PesHeader};
use crate::ts::PACKET_SIZE;
use crate::Error;

/// The fuzz targets, named as in `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: [&str; 2] = ["hls_ts_reader", "hls_es"];

/// Runs the body of the fuzz target called `target` (one of [`TARGETS`]).
pub fn run(target: &str, data: &[u8]) {
    match target {
        "hls_ts_reader" => ts_reader(data),
        "hls_es" => es(data),
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
/// bit 1 DTS), 5-byte PTS and DTS (33 bits used), a 2-byte payload length, the payload.
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
        let _ = es.push(stream_type, pts, dts, Bytes::copy_from_slice(payload));
        check(&mut es);
    }
    es.flush();
    check(&mut es);
}
