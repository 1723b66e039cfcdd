//! Replays every fuzz target's corpus (`fuzz/corpus/<target>/`) through it, plus a few
//! deterministic mutations of every seed: the short fuzzing run of `make test`, without
//! libFuzzer (whose toolchain and first build cost more than the test budget; `make fuzz`
//! runs it, see docs/SECURITY.md).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

/// The seeds of `target`, sorted by name.
fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_root().join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// Deterministic variations of `seed`: truncations, byte flips, bytes dropped and repeated,
/// from a fixed linear congruential generator, so a failure is reproduced by name.
fn mutations(seed: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let n = seed.len();
    for cut in [0, 1, n / 3, n / 2, n.saturating_sub(1)] {
        out.push(seed[..cut.min(n)].to_vec());
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ n as u64;
    let mut next = |bound: usize| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((x >> 33) as usize) % bound.max(1)
    };
    const INTERESTING: &[u8] = b"\x00\xff\r\n\",:;=-/%\\{}[]0123456789";
    for _ in 0..64 {
        let mut m = seed.to_vec();
        if m.is_empty() {
            m.push(b'0');
        }
        let at = next(m.len());
        match next(4) {
            0 => m[at] ^= 1 << next(8),
            1 => m[at] = INTERESTING[next(INTERESTING.len())],
            2 => {
                m.remove(at);
            }
            _ => {
                let end = (at + 1 + next(16)).min(m.len());
                let chunk = m[at..end].to_vec();
                m.splice(at..at, chunk);
            }
        }
        out.push(m);
    }
    out
}

#[test]
fn every_target_has_a_corpus_and_every_seed_and_its_mutations_pass() {
    let mut runs = 0;
    for (name, target) in monsoon_fuzzing::TARGETS {
        let seeds = seeds(name);
        assert!(!seeds.is_empty(), "fuzz/corpus/{name}/ has no seed");
        for (path, seed) in &seeds {
            for input in std::iter::once(seed.clone()).chain(mutations(seed)) {
                let caught = std::panic::catch_unwind(|| target(&input));
                assert!(
                    caught.is_ok(),
                    "{name} panicked on {} (or a mutation of it: {:?})",
                    path.display(),
                    String::from_utf8_lossy(&input)
                );
                runs += 1;
            }
        }
    }
    assert!(runs > 0);
}

#[test]
fn every_fuzz_target_of_cargo_fuzz_is_replayed() {
    // fuzz/Cargo.toml and this crate list the same targets.
    let manifest = std::fs::read_to_string(corpus_root().join("../Cargo.toml")).unwrap();
    let mut declared: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "monsoon-fuzz")
        .collect();
    let mut replayed: Vec<&str> = monsoon_fuzzing::TARGETS.iter().map(|(n, _)| *n).collect();
    declared.sort_unstable();
    replayed.sort_unstable();
    assert_eq!(declared, replayed);
}
