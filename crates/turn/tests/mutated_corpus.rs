//! A poor man's fuzzer for stable Rust: deterministic random mutations (bit flips, byte
//! overwrites, truncation, duplication, splices) of every seed, through the fuzz target bodies.
//! `MUTATIONS=<n>` per seed runs longer (default 200, a second or two).

use std::path::Path;

use turn::fuzzing;

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

fn mutate(rng: &mut XorShift, seed: &[u8], other: &[u8]) -> Vec<u8> {
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

#[test]
fn mutated_seeds_never_panic() {
    let n: usize = std::env::var("MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for target in fuzzing::TARGETS {
        let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(corpus.join(target))
            .expect("corpus dir")
            .map(|e| std::fs::read(e.expect("entry").path()).expect("read"))
            .collect();
        seeds.sort();
        for (i, seed) in seeds.iter().enumerate() {
            let other = &seeds[(i + 1) % seeds.len()];
            for _ in 0..n {
                let input = mutate(&mut rng, seed, other);
                if std::panic::catch_unwind(|| fuzzing::run(target, &input)).is_err() {
                    let dir = corpus.join("../regressions").join(target);
                    std::fs::create_dir_all(&dir).expect("mkdir");
                    let path = dir.join(format!("mutation-{:016x}.bin", rng.next()));
                    std::fs::write(&path, &input).expect("write crash");
                    panic!("{target} panicked; input saved to {}", path.display());
                }
            }
        }
    }
}
