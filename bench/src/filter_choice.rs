//! The filter crate, chosen by measurement: `bloomfilter` (what the snapshot uses) against
//! `fastbloom` and `xorf`'s binary fuse filters, at full size, all fed the same 64-bit keys.
//!
//! Per candidate: bytes per entry (its serialised form), build time from the keys, load time
//! (read the file back and reconstruct), lookup cost for members and non-members, and the
//! false-positive rate measured over non-members.

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use bloomfilter::Bloom;
use fastbloom::BloomFilter;
use hashgate_core::Digest;
use xorf::{BinaryFuse16, BinaryFuse32, BinaryFuse8, Filter};

use crate::data::{generated_digest, SplitMix64, MEMBER_SEED, NON_MEMBER_SEED};
use crate::scan::fresh_dir;
use crate::stats::{thousands, Samples};
use crate::Sizes;

/// The rate both bloom filters are sized for (the snapshot's default).
const FP_RATE: f64 = hashgate_core::filter::DEFAULT_FP_RATE;
/// Seeds the choice of queried members.
const QUERY_SEED: u64 = 0x6368_6f69_6365_2121;
/// Where the false-positive probes start in the non-member set (as in the filter section).
const PROBE_OFFSET: u64 = 1 << 62;
/// Where the timed non-member queries start, clear of the probes.
const QUERY_OFFSET: u64 = 1 << 61;
/// The bloom filters' hash seeds (fixed: the comparison is about the structures).
const SEED: [u8; 32] = *b"hashgate-bench filter comparison";

/// The 64-bit key every candidate is given: SipHash-1-3 (std's `DefaultHasher`, fixed keys)
/// of the digest's store key (algorithm tag, then the digest bytes).
pub fn key64(digest: &Digest) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    digest.key().as_ref().hash(&mut hasher);
    hasher.finish()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Bloomfilter,
    Fastbloom,
    Fuse8,
    Fuse16,
    Fuse32,
}

const KINDS: [Kind; 5] = [
    Kind::Bloomfilter,
    Kind::Fastbloom,
    Kind::Fuse8,
    Kind::Fuse16,
    Kind::Fuse32,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Bloomfilter => "bloomfilter 3 (`Bloom`, p = 1e-6; production)",
            Kind::Fastbloom => "fastbloom 0.17 (`BloomFilter`, p = 1e-6)",
            Kind::Fuse8 => "xorf 0.13 `BinaryFuse8`",
            Kind::Fuse16 => "xorf 0.13 `BinaryFuse16`",
            Kind::Fuse32 => "xorf 0.13 `BinaryFuse32`",
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Kind::Bloomfilter => "bloomfilter.bin",
            Kind::Fastbloom => "fastbloom.bin",
            Kind::Fuse8 => "bfuse8.bin",
            Kind::Fuse16 => "bfuse16.bin",
            Kind::Fuse32 => "bfuse32.bin",
        }
    }

    fn build(self, keys: &[u64]) -> Result<Built> {
        let fuse_error = |e: &str| anyhow::anyhow!("{}: build failed: {e}", self.name());
        Ok(match self {
            Kind::Bloomfilter => {
                let mut bloom = Bloom::new_for_fp_rate_with_seed(keys.len(), FP_RATE, &SEED)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", self.name()))?;
                for key in keys {
                    bloom.set(key);
                }
                Built::Bloomfilter(bloom)
            }
            Kind::Fastbloom => {
                let mut bloom = BloomFilter::with_false_pos(FP_RATE)
                    .seed(&u128::from_le_bytes(
                        SEED[..16].try_into().expect("16 bytes"),
                    ))
                    .expected_items(keys.len());
                for &key in keys {
                    bloom.insert_hash(key);
                }
                Built::Fastbloom(bloom)
            }
            Kind::Fuse8 => Built::Fuse8(BinaryFuse8::try_from(keys).map_err(fuse_error)?),
            Kind::Fuse16 => Built::Fuse16(BinaryFuse16::try_from(keys).map_err(fuse_error)?),
            Kind::Fuse32 => Built::Fuse32(BinaryFuse32::try_from(keys).map_err(fuse_error)?),
        })
    }

    /// Reconstructs a filter from [`Built::to_bytes`].
    fn load(self, bytes: Vec<u8>) -> Result<Built> {
        let bad = |what: &str| anyhow::anyhow!("{}: cannot load: {what}", self.name());
        Ok(match self {
            Kind::Bloomfilter => Built::Bloomfilter(Bloom::from_bytes(bytes).map_err(bad)?),
            Kind::Fastbloom => {
                ensure!(
                    bytes.len() >= 4 && (bytes.len() - 4) % 8 == 0,
                    bad("length")
                );
                let hashes = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
                let words: Vec<u64> = bytes[4..]
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect();
                ensure!(!words.is_empty() && hashes > 0, bad("empty"));
                Built::Fastbloom(BloomFilter::from_vec(words).hashes(hashes))
            }
            Kind::Fuse8 | Kind::Fuse16 | Kind::Fuse32 => {
                ensure!(bytes.len() >= FUSE_HEADER, bad("truncated header"));
                let u32_at =
                    |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"));
                let descriptor = xorf::Descriptor {
                    seed: u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")),
                    segment_length: u32_at(8),
                    segment_length_mask: u32_at(12),
                    segment_count_length: u32_at(16),
                };
                let body = &bytes[FUSE_HEADER..];
                match self {
                    Kind::Fuse8 => Built::Fuse8(BinaryFuse8 {
                        descriptor,
                        fingerprints: body.into(),
                    }),
                    Kind::Fuse16 => Built::Fuse16(BinaryFuse16 {
                        descriptor,
                        fingerprints: body
                            .chunks_exact(2)
                            .map(|c| u16::from_le_bytes([c[0], c[1]]))
                            .collect(),
                    }),
                    _ => Built::Fuse32(BinaryFuse32 {
                        descriptor,
                        fingerprints: body
                            .chunks_exact(4)
                            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
                            .collect(),
                    }),
                }
            }
        })
    }
}

/// Seed and three segment figures of a binary fuse filter, before its fingerprints.
const FUSE_HEADER: usize = 20;

enum Built {
    Bloomfilter(Bloom<u64>),
    Fastbloom(BloomFilter),
    Fuse8(BinaryFuse8),
    Fuse16(BinaryFuse16),
    Fuse32(BinaryFuse32),
}

impl Built {
    #[inline]
    fn contains(&self, key: u64) -> bool {
        match self {
            Built::Bloomfilter(f) => f.check(&key),
            Built::Fastbloom(f) => f.contains_hash(key),
            Built::Fuse8(f) => f.contains(&key),
            Built::Fuse16(f) => f.contains(&key),
            Built::Fuse32(f) => f.contains(&key),
        }
    }

    /// The serialised form: the crate's own for bloomfilter, the raw arrays otherwise
    /// (little-endian), each with the few figures needed to rebuild the structure.
    fn to_bytes(&self) -> Vec<u8> {
        fn fuse_header(d: &xorf::Descriptor) -> Vec<u8> {
            let mut out = Vec::with_capacity(FUSE_HEADER);
            out.extend_from_slice(&d.seed.to_le_bytes());
            out.extend_from_slice(&d.segment_length.to_le_bytes());
            out.extend_from_slice(&d.segment_length_mask.to_le_bytes());
            out.extend_from_slice(&d.segment_count_length.to_le_bytes());
            out
        }
        match self {
            Built::Bloomfilter(f) => f.to_bytes(),
            Built::Fastbloom(f) => {
                let mut out = f.num_hashes().to_le_bytes().to_vec();
                for word in f.as_slice() {
                    out.extend_from_slice(&word.to_le_bytes());
                }
                out
            }
            Built::Fuse8(f) => {
                let mut out = fuse_header(&f.descriptor);
                out.extend_from_slice(&f.fingerprints);
                out
            }
            Built::Fuse16(f) => {
                let mut out = fuse_header(&f.descriptor);
                f.fingerprints
                    .iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
                out
            }
            Built::Fuse32(f) => {
                let mut out = fuse_header(&f.descriptor);
                f.fingerprints
                    .iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
                out
            }
        }
    }
}

struct Candidate {
    kind: Kind,
    file_bytes: u64,
    build_secs: Samples,
    load_ms: Samples,
    member_ns: Samples,
    non_member_ns: Samples,
    false_positives: u64,
}

pub struct FilterChoiceReport {
    entries: u64,
    key_ns: f64,
    queries: u64,
    probes: u64,
    candidates: Vec<Candidate>,
}

pub fn run(data_dir: &Path, sizes: &Sizes) -> Result<FilterChoiceReport> {
    let entries = sizes.entries;
    crate::progress(format_args!(
        "filter comparison: deriving {} member keys",
        thousands(entries as f64)
    ));
    let started = Instant::now();
    let keys: Vec<u64> = (0..entries)
        .map(|i| key64(&generated_digest(MEMBER_SEED, i)))
        .collect();
    // Digest generation included: an upper bound on the key derivation alone.
    let key_ns = started.elapsed().as_nanos() as f64 / entries as f64;
    let mut rng = SplitMix64::new(QUERY_SEED);
    let members: Vec<u64> = (0..sizes.queries)
        .map(|_| keys[rng.below(entries) as usize])
        .collect();
    let non_members: Vec<u64> = (0..sizes.queries)
        .map(|i| key64(&generated_digest(NON_MEMBER_SEED, QUERY_OFFSET + i)))
        .collect();
    let probes: Vec<u64> = (0..sizes.fp_probes)
        .map(|i| key64(&generated_digest(NON_MEMBER_SEED, PROBE_OFFSET + i)))
        .collect();
    let dir = fresh_dir(&data_dir.join("filter-choice"))?;

    let mut candidates = Vec::new();
    for kind in KINDS {
        candidates.push(measure(
            kind,
            &keys,
            &members,
            &non_members,
            &probes,
            &dir,
            sizes,
        )?);
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    Ok(FilterChoiceReport {
        entries,
        key_ns,
        queries: sizes.queries,
        probes: sizes.fp_probes,
        candidates,
    })
}

fn measure(
    kind: Kind,
    keys: &[u64],
    members: &[u64],
    non_members: &[u64],
    probes: &[u64],
    dir: &Path,
    sizes: &Sizes,
) -> Result<Candidate> {
    let mut build_secs = Vec::new();
    let mut built = None;
    for run in 1..=sizes.build_runs {
        crate::progress(format_args!(
            "filter comparison: {}: build {run} of {}",
            kind.name(),
            sizes.build_runs
        ));
        drop(built.take());
        let started = Instant::now();
        let filter = kind.build(keys)?;
        build_secs.push(started.elapsed().as_secs_f64());
        built = Some(filter);
    }
    let built = built.context("at least one build run")?;
    let path: PathBuf = dir.join(kind.file_name());
    std::fs::write(&path, built.to_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    let file_bytes = std::fs::metadata(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    drop(built);

    let mut load_ms = Vec::new();
    let mut loaded = None;
    for _ in 0..sizes.load_runs {
        drop(loaded.take());
        let started = Instant::now();
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let filter = kind.load(bytes)?;
        load_ms.push(started.elapsed().as_secs_f64() * 1e3);
        loaded = Some(filter);
    }
    let filter = loaded.context("at least one load run")?;

    let mut member_ns = Vec::new();
    let mut non_member_ns = Vec::new();
    for _ in 0..sizes.query_runs {
        let (ns, hits) = time_queries(&filter, members);
        ensure!(
            hits == members.len() as u64,
            "{}: {} of {} members not found after a load from {}",
            kind.name(),
            members.len() as u64 - hits,
            members.len(),
            path.display()
        );
        member_ns.push(ns);
        non_member_ns.push(time_queries(&filter, non_members).0);
    }
    crate::progress(format_args!(
        "filter comparison: {}: {} false-positive probes",
        kind.name(),
        thousands(probes.len() as f64)
    ));
    let false_positives = probes.iter().filter(|&&k| filter.contains(k)).count() as u64;
    Ok(Candidate {
        kind,
        file_bytes,
        build_secs: Samples::new(build_secs),
        load_ms: Samples::new(load_ms),
        member_ns: Samples::new(member_ns),
        non_member_ns: Samples::new(non_member_ns),
        false_positives,
    })
}

/// Mean nanoseconds per query over `keys`, and how many the filter let through.
fn time_queries(filter: &Built, keys: &[u64]) -> (f64, u64) {
    let started = Instant::now();
    let hits = keys
        .iter()
        .filter(|&&k| filter.contains(black_box(k)))
        .count() as u64;
    let ns = started.elapsed().as_nanos() as f64 / keys.len() as f64;
    (ns, black_box(hits))
}

impl FilterChoiceReport {
    pub fn markdown(&self) -> String {
        let entries = self.entries as f64;
        let mut md = String::new();
        let _ = writeln!(
            md,
            "### Filter crates compared at {} entries\n",
            thousands(entries)
        );
        let first = &self.candidates[0];
        let _ = writeln!(
            md,
            "Every candidate gets the same 64-bit keys: SipHash-1-3 of the digest's store key \
             (about {:.0} ns per key, digest generation included; the same for all, so not in \
             the figures below). Bloom filters sized for p = {FP_RATE:e}; binary fuse filters \
             have a fixed rate, 2^-8, 2^-16 or 2^-32. Size is the serialised form; load is \
             read the file and reconstruct (R = {}); lookups are the mean over {} random \
             members and {} non-members (R = {}); false positives are counted over {} \
             non-members. Builds: R = {}.\n",
            self.key_ns,
            first.load_ms.runs(),
            thousands(self.queries as f64),
            thousands(self.queries as f64),
            first.member_ns.runs(),
            thousands(self.probes as f64),
            first.build_secs.runs(),
        );
        let _ = writeln!(
            md,
            "| filter | bytes/entry | bits/entry | build s | load ms | member ns | non-member ns | false positives | measured rate |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for c in &self.candidates {
            let rate = c.false_positives as f64 / self.probes as f64;
            let _ = writeln!(
                md,
                "| {} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} |",
                c.kind.name(),
                c.file_bytes as f64 / entries,
                c.file_bytes as f64 * 8.0 / entries,
                c.build_secs.show(2),
                c.load_ms.show(1),
                c.member_ns.show(0),
                c.non_member_ns.show(0),
                thousands(c.false_positives as f64),
                if c.false_positives == 0 {
                    format!("< {:.0e}", 1.0 / self.probes as f64)
                } else {
                    format!("{rate:.1e}")
                },
            );
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_candidate_round_trips_and_finds_its_keys() {
        let keys: Vec<u64> = (0..5_000u64)
            .map(|i| key64(&generated_digest(MEMBER_SEED, i)))
            .collect();
        for kind in KINDS {
            let built = kind.build(&keys).unwrap();
            let loaded = kind.load(built.to_bytes()).unwrap();
            assert!(keys.iter().all(|&k| loaded.contains(k)), "{kind:?}");
        }
    }
}
