//! Perceptual matching: the PDQ index (`hashgate_core::pdq::index`) at one and ten million
//! hashes, against scanning every hash.
//!
//! Per size: the index built from generated hashes (as from a list being loaded), its build
//! time, the heap it holds (`memory_bytes`) and the process's peak RSS growth over the build;
//! then uploads queried the way the scanner queries them, an upload's 8 variant hashes at
//! the default threshold (31) with `query_variants`: the median and p99 time of one upload
//! over the queries, half of which have an indexed hash planted within the threshold of one
//! of their variants; and, as the reference, a scan of every hash (`brute_force`, once per
//! variant) for a few of the same uploads, whose matches must equal the index's.
//!
//! The hashes are uniformly random, as distinct images' PDQ hashes roughly are; real lists
//! with many near-duplicates fill some slot values more and cost more per query.
//!
//! Then hashing itself, against Meta's C++ (`crate::pdq_hash`); if its Python environment
//! is missing, the section says so and the index figures stand alone.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

use anyhow::{ensure, Result};
use hashgate_core::pdq::index::{brute_force, PdqIndex, PdqMatch};
use hashgate_core::pdq::{PdqHash, DEFAULT_THRESHOLD};

use crate::data::{mix64, SplitMix64};
use crate::progress;
use crate::stats::{mib, thousands};
use crate::Sizes;

const HASH_SEED: u64 = 0x7064_715f_6c69_7374;
const QUERY_SEED: u64 = 0x7064_715f_7175_6572;
/// An upload's hash and its seven rotations and flips.
const VARIANTS: usize = 8;

/// One index size's figures.
pub struct IndexRow {
    hashes: usize,
    build_secs: f64,
    memory_bytes: usize,
    /// Peak RSS over the build minus RSS before it, if /proc tells.
    rss_growth_bytes: Option<u64>,
    /// Milliseconds per upload, index.
    query_ms: Vec<f64>,
    planted: usize,
    planted_found: usize,
    /// Milliseconds per upload, scanning every hash.
    scan_ms: Vec<f64>,
}

pub struct PdqReport {
    cpu: String,
    rows: Vec<IndexRow>,
    /// The hashing comparison's section, or why it could not run.
    hashing: String,
    /// Median decode + hash (+ variants) of the 12-megapixel JPEG, ms, when measured.
    image_ms_12mp: Option<f64>,
}

pub fn run(sizes: &Sizes) -> Result<PdqReport> {
    let mut rows = Vec::new();
    for &n in sizes.pdq_index_hashes {
        rows.push(index_row(n, sizes.pdq_queries, sizes.pdq_scans)?);
    }
    let (hashing, image_ms_12mp) = match crate::pdq_hash::run(sizes.pdq_hash_runs) {
        Ok(report) => (report.markdown(), Some(report.hash_image_median_ms())),
        Err(e) => (
            format!("PDQ hashing against Meta's C++ (`pdqhash`): not measured: {e:#}\n"),
            None,
        ),
    };
    Ok(PdqReport {
        cpu: cpu_model(),
        rows,
        hashing,
        image_ms_12mp,
    })
}

/// Hash `i` of the generated list.
fn list_hash(i: u64) -> PdqHash {
    random_hash(&mut SplitMix64::new(HASH_SEED ^ mix64(i)))
}

fn random_hash(rng: &mut SplitMix64) -> PdqHash {
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_exact_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    PdqHash(bytes)
}

/// `hash` with `d` distinct random bits flipped.
fn neighbour(rng: &mut SplitMix64, hash: &PdqHash, d: u32) -> PdqHash {
    let mut out = *hash;
    while out.distance(hash) < d {
        let bit = rng.below(256) as usize;
        out.0[bit / 8] ^= 1 << (bit % 8);
        if out.distance(hash) > d {
            out.0[bit / 8] ^= 1 << (bit % 8);
        }
    }
    out
}

fn index_row(n: usize, queries: usize, scans: usize) -> Result<IndexRow> {
    progress(format_args!(
        "pdq: building the index of {} hashes",
        thousands(n as f64)
    ));
    reset_peak_rss();
    let rss_before = rss_kib("VmRSS:");
    let started = Instant::now();
    let index = PdqIndex::build((0..n as u64).map(list_hash));
    let build_secs = started.elapsed().as_secs_f64();
    let rss_growth_bytes = match (rss_before, rss_kib("VmHWM:")) {
        (Some(before), Some(peak)) => Some(peak.saturating_sub(before) * 1024),
        _ => None,
    };
    ensure!(index.len() == n, "generated hashes collided");

    // The uploads: 8 random variants each; every other one has a list hash planted within
    // the threshold of one of its variants (at a distance spread over 0..=31).
    let mut rng = SplitMix64::new(QUERY_SEED ^ n as u64);
    let uploads: Vec<(Vec<PdqHash>, Option<PdqHash>)> = (0..queries)
        .map(|q| {
            let mut variants: Vec<PdqHash> = (0..VARIANTS).map(|_| random_hash(&mut rng)).collect();
            let planted = (q % 2 == 0).then(|| {
                let target = list_hash(rng.below(n as u64));
                let which = rng.below(VARIANTS as u64) as usize;
                let d = rng.below(u64::from(DEFAULT_THRESHOLD) + 1) as u32;
                variants[which] = neighbour(&mut rng, &target, d);
                target
            });
            (variants, planted)
        })
        .collect();

    progress(format_args!(
        "pdq: {} uploads of {VARIANTS} hashes through the index",
        thousands(queries as f64)
    ));
    // One untimed round over a few uploads to warm the caches and the branch predictors.
    for (variants, _) in uploads.iter().take(10) {
        black_box(index.query_variants(variants, DEFAULT_THRESHOLD));
    }
    let mut query_ms = Vec::with_capacity(queries);
    let mut results: Vec<Vec<PdqMatch>> = Vec::with_capacity(queries);
    for (variants, _) in &uploads {
        let started = Instant::now();
        let matches = index.query_variants(variants, DEFAULT_THRESHOLD);
        query_ms.push(started.elapsed().as_secs_f64() * 1e3);
        results.push(matches);
    }
    let planted = uploads.iter().filter(|u| u.1.is_some()).count();
    let planted_found = uploads
        .iter()
        .zip(&results)
        .filter(|((_, target), matches)| {
            target.is_some_and(|t| matches.iter().any(|m| m.hash == t))
        })
        .count();
    ensure!(
        planted_found == planted,
        "the index missed {} planted hashes",
        planted - planted_found
    );

    progress(format_args!(
        "pdq: {scans} uploads scanned against every hash (the reference)"
    ));
    let mut scan_ms = Vec::with_capacity(scans);
    for ((variants, _), matches) in uploads.iter().zip(&results).take(scans) {
        let started = Instant::now();
        let mut found: Vec<(PdqHash, u32)> = Vec::new();
        for q in variants {
            found.extend(brute_force(index.hashes(), q, DEFAULT_THRESHOLD));
        }
        scan_ms.push(started.elapsed().as_secs_f64() * 1e3);
        found.sort_unstable_by_key(|&(h, d)| (h, d));
        found.dedup_by_key(|&mut (h, _)| h);
        let mut from_index: Vec<(PdqHash, u32)> =
            matches.iter().map(|m| (m.hash, m.distance)).collect();
        from_index.sort_unstable();
        ensure!(found == from_index, "index and scan disagree on an upload");
    }

    Ok(IndexRow {
        hashes: n,
        build_secs,
        memory_bytes: index.memory_bytes(),
        rss_growth_bytes,
        query_ms,
        planted,
        planted_found,
        scan_ms,
    })
}

/// Resets the kernel's peak RSS mark (VmHWM) to the current RSS (Linux 4.0 and later), so
/// the next reading is the peak of what follows.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A KiB figure of /proc/self/status, e.g. `VmRSS:` or `VmHWM:`.
fn rss_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The CPU's model name, as /proc/cpuinfo gives it.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// The nearest-rank `q` quantile of `values`.
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl PdqReport {
    /// What the cost model needs: decode + hash time per megapixel, and an upload's median
    /// index query time at each index size measured.
    pub fn perceptual_cost(&self) -> Option<crate::cost::Perceptual> {
        Some(crate::cost::Perceptual {
            ms_per_megapixel: self.image_ms_12mp? / 12.0,
            query_ms: self
                .rows
                .iter()
                .map(|row| (row.hashes, quantile(&row.query_ms, 0.5)))
                .collect(),
        })
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "### PDQ index: an upload's 8 variants against {} hashes\n\n\
             `PdqIndex` (multi-index hashing, 16 slots of 16 bits) over uniformly random \
             hashes, on {}, one thread. A query is one upload: `query_variants` with its 8 \
             variant hashes at threshold {DEFAULT_THRESHOLD}, which looks up 17 values in each \
             of the 16 slots per variant and checks every hash found there; half the uploads \
             have a list hash planted within the threshold of one variant (all found). The \
             reference scans every hash (`brute_force`, 8 times) on the first uploads and must \
             match the index's answer. p99 by nearest rank. Peak RSS growth is the process's \
             high-water mark over the build (generated hashes in, index out) minus its RSS \
             before.\n",
            self.rows
                .iter()
                .map(|row| thousands(row.hashes as f64))
                .collect::<Vec<_>>()
                .join(" and "),
            self.cpu
        );
        let _ = writeln!(
            md,
            "| hashes | build s | `memory_bytes` | bytes/hash | peak RSS growth | uploads | \
             index median ms | index p99 ms | scan median ms (uploads) | speed-up |"
        );
        let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for row in &self.rows {
            let median = quantile(&row.query_ms, 0.5);
            let scan = quantile(&row.scan_ms, 0.5);
            let _ = writeln!(
                md,
                "| {} | {:.2} | {:.0} MiB | {:.1} | {} | {} ({} planted, {} found) | {:.2} | \
                 {:.2} | {:.0} ({}) | {:.0}x |",
                thousands(row.hashes as f64),
                row.build_secs,
                mib(row.memory_bytes as u64),
                row.memory_bytes as f64 / row.hashes as f64,
                row.rss_growth_bytes
                    .map_or("n/a".to_owned(), |b| format!("{:.0} MiB", mib(b))),
                thousands(row.query_ms.len() as f64),
                row.planted,
                row.planted_found,
                median,
                quantile(&row.query_ms, 0.99),
                scan,
                row.scan_ms.len(),
                scan / median,
            );
        }
        let _ = write!(md, "\n{}", self.hashing);
        if let Some(p) = self.perceptual_cost() {
            let _ = writeln!(md, "\n{}", crate::cost::perceptual_extra(&p));
        }
        md
    }
}
