//! PDQ, Meta's open perceptual image hash: 256 bits that stay close (in Hamming distance)
//! when an image is re-encoded, resized, lightly edited or converted to grayscale, so a list
//! of PDQ hashes finds copies that no exact digest would.
//!
//! - [`PdqHash`]: a hash value, its canonical 64-hex text form, distance, degeneracy.
//! - `hash`: the algorithm on decoded pixels, faithful to Meta's reference (facebook/
//!   ThreatExchange `pdq/cpp`), with the quality metric and the eight dihedral variants.
//! - `decode`: image bytes to pixels under limits checked before any pixel is allocated.
//! - `index`: multi-index hashing over a set of hashes, for "everything within d bits".
//! - `tap`: PDQ from the same single read as an upload's digests.
//!
//! Module boundaries leave room for video (vPDQ: PDQ of sampled frames) beside `decode`.
//! Everything here is computation on bytes handed in: no I/O.

pub mod decode;
pub mod hash;
pub mod index;
pub mod tap;

use std::fmt;
use std::str::FromStr;

/// The Hamming distance at or below which two PDQ hashes are taken to be the same image:
/// Meta's recommended threshold (Hasher-Matcher-Actioner matches at ≤ 31 of 256 bits).
pub const DEFAULT_THRESHOLD: u32 = 31;

/// Below this quality (0–100) a hash says too little about its image to be matched: flat,
/// nearly uniform images all hash alike. Meta's recommended cut-off.
pub const DEFAULT_MIN_QUALITY: u8 = 50;

/// A PDQ hash: 256 bits, held as the 32 bytes of its canonical 64-hex text form, in that
/// order (the reference prints its sixteen 16-bit words from the last to the first, each
/// big-end first; byte 0 here is the high byte of word 15).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PdqHash(pub [u8; 32]);

/// What was wrong with a PDQ hash's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdqParseError {
    #[error("not a PDQ hash: {value:?} ({len} characters, expected 64 hex digits)")]
    WrongLength { value: String, len: usize },
    #[error("not a PDQ hash: {0:?} (not hex)")]
    NotHex(String),
}

impl PdqHash {
    pub const BITS: u32 = 256;

    /// The canonical text form: 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        crate::digest::to_hex(&self.0)
    }

    /// Parses the canonical text form (either case; surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<PdqHash, PdqParseError> {
        let t = text.trim();
        if t.len() != 64 {
            return Err(PdqParseError::WrongLength {
                value: t.to_string(),
                len: t.chars().count(),
            });
        }
        let mut out = [0u8; 32];
        for (i, pair) in t.as_bytes().chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16);
            let lo = (pair[1] as char).to_digit(16);
            match (hi, lo) {
                (Some(h), Some(l)) => out[i] = (h * 16 + l) as u8,
                _ => return Err(PdqParseError::NotHex(t.to_string())),
            }
        }
        Ok(PdqHash(out))
    }

    /// The number of bits in which two hashes differ (0–256).
    pub fn distance(&self, other: &PdqHash) -> u32 {
        let mut d = 0;
        for (a, b) in self.words64().iter().zip(other.words64().iter()) {
            d += (a ^ b).count_ones();
        }
        d
    }

    /// Bits set (0–256).
    pub fn count_ones(&self) -> u32 {
        self.words64().iter().map(|w| w.count_ones()).sum()
    }

    /// A hash too uniform to identify an image: all bits equal, or far from half of them set
    /// (a real PDQ hash thresholds at the median, so about half its bits are ones). Lists
    /// with such entries would match swathes of unrelated images.
    pub fn is_degenerate(&self) -> bool {
        let ones = self.count_ones();
        // 128 ± 64: a median threshold puts ties below, so a real image's hash sits near 128;
        // flat regions push it down, but never this far.
        !(64..=192).contains(&ones)
    }

    /// The i-th 16-bit slot (0–15) for multi-index hashing: bytes 2i and 2i+1.
    pub fn slot(&self, i: usize) -> u16 {
        u16::from_be_bytes([self.0[2 * i], self.0[2 * i + 1]])
    }

    fn words64(&self) -> [u64; 4] {
        let mut w = [0u64; 4];
        for (i, chunk) in self.0.chunks_exact(8).enumerate() {
            w[i] = u64::from_be_bytes(chunk.try_into().expect("8 bytes"));
        }
        w
    }
}

impl fmt::Debug for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PdqHash({})", self.to_hex())
    }
}

impl fmt::Display for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for PdqHash {
    type Err = PdqParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PdqHash::from_hex(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_distance_counts_bits() {
        let a = PdqHash::from_hex(&"f".repeat(64)).unwrap();
        let b = PdqHash::from_hex(&"0".repeat(64)).unwrap();
        assert_eq!(a.distance(&b), 256);
        assert_eq!(a.to_hex(), "f".repeat(64));
        assert!(a.is_degenerate() && b.is_degenerate());
        let h = PdqHash::from_hex(&"a5".repeat(32)).unwrap();
        assert!(!h.is_degenerate());
        assert_eq!(h.slot(0), 0xa5a5);
        assert!(PdqHash::from_hex("abc").is_err());
        assert!(PdqHash::from_hex(&"g".repeat(64)).is_err());
    }
}
