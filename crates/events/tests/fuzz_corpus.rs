//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) and any past crashes through
//! the functions the cargo-fuzz targets call, on stable Rust. `UPDATE_GOLDEN=1` rewrites the
//! seed files this test generates.

use events::fuzzing;

#[test]
fn corpus_replays_without_panic() {
    fuzzkit::replay(&fuzzing::TARGETS, fuzzing::run);
}

#[test]
fn mutated_seeds_do_not_panic() {
    fuzzkit::mutate(&fuzzing::TARGETS, fuzzing::run, 200);
}

#[test]
fn seed_corpus_is_current() {
    fuzzkit::check_seeds(seeds());
}

fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let k = "events_cluster_key";
    let e = "events_cluster_entry";
    vec![
        (k, "plain.txt", b"__defaultVhost__.live.a".to_vec()),
        (
            k,
            "escaped.txt",
            b"__defaultVhost__.my=2Eapp.a=2Fb=20c".to_vec(),
        ),
        (k, "utf8.txt", b"__defaultVhost__.live.=C3=BCn".to_vec()),
        (k, "bad_escape.txt", b"__defaultVhost__.live.=Z".to_vec()),
        (k, "bad_tokens.txt", b"a.b.c.d".to_vec()),
        (
            e,
            "entry.json",
            br#"{"node":2,"url":"rtmp://127.0.0.1:1935/live/a"}"#.to_vec(),
        ),
        (
            e,
            "bad_scheme.json",
            br#"{"node":2,"url":"file:///etc/passwd"}"#.to_vec(),
        ),
        (
            e,
            "bad_node.json",
            br#"{"node":4294967296,"url":"rtmp://h/a/b"}"#.to_vec(),
        ),
    ]
}
