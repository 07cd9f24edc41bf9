//! Replays the committed fuzz corpus (`fuzz/corpus/server_*/`) and any past crashes
//! (`fuzz/regressions/server_*/`) through the same functions the cargo-fuzz targets call, on
//! stable Rust, then a deterministic mutation pass over the seeds ([`fuzzkit::mutate`];
//! `MUTATIONS=<n>` per seed runs longer).

use server::fuzzing;

#[test]
fn corpus_replays_without_panic() {
    fuzzkit::replay(&fuzzing::TARGETS, fuzzing::run);
}

#[test]
fn mutated_seeds_never_panic() {
    fuzzkit::mutate(&fuzzing::TARGETS, fuzzing::run, 300);
}
