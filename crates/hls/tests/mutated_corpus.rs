//! Deterministic random mutations of every seed through the fuzz target bodies
//! ([`fuzzkit::mutate`]). `MUTATIONS=<n>` per seed runs longer (default 200, a second or two).

#[test]
fn mutated_seeds_never_panic() {
    fuzzkit::mutate(&hls::fuzzing::TARGETS, hls::fuzzing::run, 200);
}
