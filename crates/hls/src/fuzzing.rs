//! Fuzz target bodies, shared by `fuzz/fuzz_targets/hls_*.rs` (cargo-fuzz, nightly) and
//! `tests/fuzz_corpus.rs` (stable replay of the committed corpus). Each must never panic.
//!
//! The crate parses no untrusted input in production (it only writes TS and m3u8); the target
//! covers the TS [`reader`](crate::reader) the tests rely on, so a test never passes because
//! the reader misread the muxer's output.

use crate::reader::{Demuxer, Packet, Pes, PesHeader};
use crate::ts::PACKET_SIZE;
use crate::Error;

/// The fuzz targets, named as in `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: [&str; 1] = ["hls_ts_reader"];

/// Runs the body of the fuzz target called `target` (one of [`TARGETS`]).
pub fn run(target: &str, data: &[u8]) {
    if target == "hls_ts_reader" {
        ts_reader(data);
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
