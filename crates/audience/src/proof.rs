//! The proof of work that a session must bring before it counts (`docs/SECURITY.md`).
//!
//! Minting a session is free and keeps nothing on the server, so what makes a session cost
//! something is this: its first heartbeat must carry a `proof`, a string such that
//! SHA-256(`<session id>:<proof>`) starts with `bits` zero bits. The session id is random and
//! made by the server, so proofs cannot be computed ahead; finding one takes 2^`bits` hashes on
//! average, and checking it takes one. A player finds it in the background while the film
//! loads; a script that wants a thousand sessions pays a thousand times.

use sha2::{Digest, Sha256};

/// The longest proof accepted (a decimal counter needs at most 20 characters).
pub const MAX_PROOF_LEN: usize = 32;

/// The hardest difficulty a configuration may ask for: 2^32 hashes is minutes on a phone.
pub const MAX_BITS: u32 = 32;

fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in hash {
        if *byte == 0 {
            bits += 8;
        } else {
            return bits + byte.leading_zeros();
        }
    }
    bits
}

/// Whether `proof` proves `bits` bits of work for `session`. Any proof passes at 0 bits.
pub fn check(session: &str, proof: &str, bits: u32) -> bool {
    if bits == 0 {
        return true;
    }
    if proof.is_empty() || proof.len() > MAX_PROOF_LEN {
        return false;
    }
    let mut hasher = Sha256::new();
    hasher.update(session.as_bytes());
    hasher.update(b":");
    hasher.update(proof.as_bytes());
    leading_zero_bits(&hasher.finalize()) >= bits
}

/// Finds a proof for `session` at `bits` (what a client does; the simulator and tests use it).
pub fn solve(session: &str, bits: u32) -> String {
    let mut n: u64 = 0;
    loop {
        let proof = n.to_string();
        if check(session, &proof, bits) {
            return proof;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_solved_proof_checks_and_others_do_not() {
        let proof = solve("3f2a9c", 12);
        assert!(check("3f2a9c", &proof, 12));
        // Bound to its session.
        assert!(!(0..50).all(|i| check(&format!("other{i}"), &proof, 12)));
        assert!(check("anything", "", 0));
        assert!(!check("3f2a9c", "", 12));
        assert!(!check("3f2a9c", &"9".repeat(MAX_PROOF_LEN + 1), 1));
    }

    #[test]
    fn leading_zero_bits_counts_across_bytes() {
        assert_eq!(leading_zero_bits(&[0, 0, 0x10, 0xff]), 19);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }
}
