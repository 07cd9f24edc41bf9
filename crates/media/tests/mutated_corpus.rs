//! Deterministic random mutations of every seed through the fuzz target bodies
//! ([`fuzzkit::mutate`]). `MUTATIONS=<n>` per seed runs longer (default 300, well under a second).

#[test]
fn mutated_seeds_never_panic() {
    fuzzkit::mutate(&media::fuzzing::TARGETS, media::fuzzing::run, 300);
}
