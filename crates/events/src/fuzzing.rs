//! Fuzz target bodies, shared by `fuzz/fuzz_targets/events_*.rs` (cargo-fuzz, nightly) and
//! `tests/fuzz_corpus.rs` (stable replay of the committed corpus). Each must never panic.
//!
//! The directory's keys and values are written by other nodes (or anyone who can write to the
//! shared NATS): both readers take untrusted bytes.

use crate::cluster::{decode_key, encode_key, Entry};

/// The fuzz targets, named as in `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: [&str; 2] = ["events_cluster_key", "events_cluster_entry"];

/// Runs the body of the fuzz target called `target` (one of [`TARGETS`]).
pub fn run(target: &str, data: &[u8]) {
    match target {
        "events_cluster_key" => cluster_key(data),
        "events_cluster_entry" => cluster_entry(data),
        _ => {}
    }
}

/// A directory key: decoding never panics, and a decoded key encodes back to itself.
pub fn cluster_key(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(key) = decode_key(text) {
        let again = encode_key(&key);
        assert_eq!(decode_key(&again).as_ref(), Some(&key));
    }
}

/// A directory value: parsing never panics, and an accepted entry round-trips.
pub fn cluster_entry(data: &[u8]) {
    if let Some(entry) = Entry::parse(data) {
        assert_eq!(Entry::parse(&entry.to_json()), Some(entry));
    }
}
