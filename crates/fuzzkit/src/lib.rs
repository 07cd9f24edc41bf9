//! Test support shared by the crates that have fuzz targets: cargo-fuzz needs nightly and this
//! project builds on stable, so `cargo test` replays the committed corpus (`fuzz/corpus/<target>/`)
//! and past crashes (`fuzz/regressions/<target>/`) through the same functions the fuzz targets
//! call, and runs a deterministic mutation pass over the seeds.
//!
//! Each crate exposes `fuzzing::TARGETS` and `fuzzing::run(target, data)`; its tests call
//! [`replay`], [`mutate`] and [`check_seeds`] with them. No IO beyond reading (and, on a crash or
//! with `UPDATE_GOLDEN=1`, writing) files under `fuzz/`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![allow(clippy::unwrap_used)] // test support: a failed read is a failed test

use std::path::{Path, PathBuf};

/// The body of every fuzz target of a crate: `(target name, input)`.
pub type Run = fn(&str, &[u8]);

/// The workspace's `fuzz/` directory.
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files directly in `dir`, sorted; none when it does not exist.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every corpus and regression file of every target; panics (naming the file) if a run
/// panics or a target has no corpus.
pub fn replay(targets: &[&str], run: Run) {
    for target in targets {
        let corpus = files(&fuzz_dir().join("corpus").join(target));
        assert!(!corpus.is_empty(), "fuzz/corpus/{target} is empty");
        let regressions = files(&fuzz_dir().join("regressions").join(target));
        for path in corpus.iter().chain(&regressions) {
            let data = std::fs::read(path).expect("read corpus file");
            let outcome = std::panic::catch_unwind(|| run(target, &data));
            assert!(outcome.is_ok(), "{target} panicked on {}", path.display());
        }
    }
}

/// Writes the generated seeds `(target, file name, bytes)` when `UPDATE_GOLDEN=1`; otherwise
/// checks they are what is committed, so a format change cannot silently stale the corpus.
pub fn check_seeds<T: AsRef<str>, N: AsRef<str>>(seeds: impl IntoIterator<Item = (T, N, Vec<u8>)>) {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for (target, name, data) in seeds {
        let path = fuzz_dir()
            .join("corpus")
            .join(target.as_ref())
            .join(name.as_ref());
        if update {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, &data).expect("write seed");
        } else {
            let committed = std::fs::read(&path).unwrap_or_default();
            assert!(
                committed == data,
                "{} is stale; rerun with UPDATE_GOLDEN=1",
                path.display()
            );
        }
    }
}

/// A poor man's fuzzer for stable Rust: `per_seed` deterministic random mutations (bit flips,
/// byte overwrites, truncation, duplication, splices from another seed) of every seed of every
/// target (`MUTATIONS=<n>` overrides `per_seed`). An input that panics is saved under
/// `fuzz/regressions/<target>/` and the test fails naming it.
pub fn mutate(targets: &[&str], run: Run, per_seed: usize) {
    let n: usize = std::env::var("MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(per_seed);
    let corpus = fuzz_dir().join("corpus");
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for target in targets {
        let seeds: Vec<Vec<u8>> = files(&corpus.join(target))
            .iter()
            .map(|p| std::fs::read(p).expect("read"))
            .collect();
        for (i, seed) in seeds.iter().enumerate() {
            let other = &seeds[(i + 1) % seeds.len()];
            for _ in 0..n {
                let input = mutation(&mut rng, seed, other);
                if std::panic::catch_unwind(|| run(target, &input)).is_err() {
                    let dir = fuzz_dir().join("regressions").join(target);
                    std::fs::create_dir_all(&dir).expect("mkdir");
                    let path = dir.join(format!("mutation-{:016x}.bin", rng.next()));
                    std::fs::write(&path, &input).expect("write crash");
                    panic!("{target} panicked; input saved to {}", path.display());
                }
            }
        }
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutation(rng: &mut XorShift, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut d = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] = [0x00, 0xff, 0x7f, 0x80, 0x03, 0x09][rng.below(6)];
            }
            2 => d.truncate(rng.below(d.len() + 1)),
            3 if !d.is_empty() => {
                let a = rng.below(d.len());
                let b = (a + rng.below(64)).min(d.len());
                let piece = d[a..b].to_vec();
                let at = rng.below(d.len() + 1);
                d.splice(at..at, piece);
            }
            4 if !other.is_empty() => {
                let a = rng.below(other.len());
                let b = (a + rng.below(256)).min(other.len());
                let at = rng.below(d.len() + 1);
                d.splice(at..at, other[a..b].iter().copied());
            }
            _ if !d.is_empty() => {
                let i = rng.below(d.len());
                let bytes = rng.next().to_le_bytes();
                let n = (d.len() - i).min(4);
                d[i..i + n].copy_from_slice(&bytes[..n]);
            }
            _ => {}
        }
    }
    d
}
