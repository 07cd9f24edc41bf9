//! Deterministic random mutations of every seed through the fuzz target bodies
//! ([`fuzzkit::mutate`]). `MUTATIONS=<n>` per seed runs longer (default 200, a fraction of a second).

#[test]
fn mutated_seeds_never_panic() {
    fuzzkit::mutate(&turn::fuzzing::TARGETS, turn::fuzzing::run, 200);
}
