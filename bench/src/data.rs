//! Generated inputs: pseudo-random bytes and digests, all derived from fixed seeds, so a run
//! can reuse the files of an earlier one with the same size and seed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hashgate_core::{Algorithm, Digest};

/// The digests on the generated hash list.
pub const MEMBER_SEED: u64 = 0x6861_7368_6761_7465;
/// Digests that are on no list.
pub const NON_MEMBER_SEED: u64 = 0x6e6f_6e2d_6d65_6d62;
/// The bytes of the scanned file.
pub const FILE_SEED: u64 = 0x6669_6c65_6279_7465;

/// Size of the blocks the random file is written in.
const BLOCK_BYTES: usize = 1 << 20;

/// splitmix64's output function.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A small, fast pseudo-random generator (splitmix64): plenty for test data.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// Uniform in `0..bound` (multiply-shift; the bias is negligible here).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes()[..chunk.len()]);
        }
    }
}

/// Digest `index` of the set `seed`: 50% MD5, 30% SHA-1, 20% SHA-256, random bytes.
pub fn generated_digest(seed: u64, index: u64) -> Digest {
    let mut rng = SplitMix64::new(seed ^ mix64(index));
    let algorithm = match rng.below(10) {
        0..=4 => Algorithm::Md5,
        5..=7 => Algorithm::Sha1,
        _ => Algorithm::Sha256,
    };
    let mut raw = [0; 32];
    rng.fill(&mut raw);
    Digest::new(algorithm, &raw[..algorithm.byte_len()]).expect("the algorithm's length")
}

/// `dir/name`, written by `generate` unless an earlier run left it complete. Generation writes
/// to a temporary name and renames at the end, so an interrupted one is never reused.
pub fn cached_file(
    dir: &Path,
    name: &str,
    generate: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<PathBuf> {
    let path = dir.join(name);
    if path.is_file() {
        crate::progress(format_args!("reusing {}", path.display()));
        return Ok(path);
    }
    crate::progress(format_args!("generating {}", path.display()));
    let partial = dir.join(format!("{name}.partial"));
    let file = File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut out = BufWriter::with_capacity(BLOCK_BYTES, file);
    generate(&mut out).with_context(|| format!("writing {}", partial.display()))?;
    out.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|file| file.sync_all())
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(path)
}

/// `bytes` pseudo-random bytes from `seed`, in 1 MiB blocks.
pub fn write_random_bytes(out: &mut impl Write, bytes: u64, seed: u64) -> Result<()> {
    let mut rng = SplitMix64::new(seed);
    let mut block = vec![0; BLOCK_BYTES];
    let mut left = bytes;
    while left > 0 {
        let len = usize::try_from(left).map_or(BLOCK_BYTES, |left| left.min(BLOCK_BYTES));
        rng.fill(&mut block[..len]);
        out.write_all(&block[..len])?;
        left -= len as u64;
    }
    Ok(())
}

/// A plain hash list: digests `0..entries` of the set `seed`, lowercase hex, one per line.
pub fn write_hash_list(out: &mut impl Write, entries: u64, seed: u64) -> Result<()> {
    for index in 0..entries {
        writeln!(out, "{}", generated_digest(seed, index).to_hex())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_reproducible_and_mixed() {
        assert_eq!(
            generated_digest(MEMBER_SEED, 7),
            generated_digest(MEMBER_SEED, 7)
        );
        assert_ne!(
            generated_digest(MEMBER_SEED, 7),
            generated_digest(NON_MEMBER_SEED, 7)
        );
        let mut per_algorithm = [0u32; 3];
        for i in 0..10_000 {
            let alg = generated_digest(MEMBER_SEED, i).algorithm();
            per_algorithm[Algorithm::ALL.iter().position(|a| *a == alg).unwrap()] += 1;
        }
        let [md5, sha1, sha256] = per_algorithm;
        assert!((4_700..5_300).contains(&md5), "{per_algorithm:?}");
        assert!((2_700..3_300).contains(&sha1), "{per_algorithm:?}");
        assert!((1_700..2_300).contains(&sha256), "{per_algorithm:?}");
    }

    #[test]
    fn random_bytes_have_the_requested_length() {
        let mut out = Vec::new();
        write_random_bytes(&mut out, BLOCK_BYTES as u64 + 5, 1).unwrap();
        assert_eq!(out.len(), BLOCK_BYTES + 5);
        assert_ne!(out[..8], out[8..16]);
    }

    #[test]
    fn hash_list_parses_back() {
        let mut out = Vec::new();
        write_hash_list(&mut out, 3, MEMBER_SEED).unwrap();
        let lines: Vec<Digest> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| Digest::parse_hex(l).unwrap())
            .collect();
        assert_eq!(
            lines,
            (0..3)
                .map(|i| generated_digest(MEMBER_SEED, i))
                .collect::<Vec<_>>()
        );
    }
}
