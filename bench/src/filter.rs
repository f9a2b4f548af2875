//! The filter snapshot over the full store: build, size against the bloom bound, load (with
//! its checksum), query cost, and the false-positive rate it really has.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

use anyhow::{ensure, Result};
use hashgate_core::filter::{bloom_bound_bits_per_entry, FilterSnapshot};
use hashgate_core::Digest;
use hashgate_local::LocalDb;

use crate::data::{generated_digest, SplitMix64, MEMBER_SEED, NON_MEMBER_SEED};
use crate::stats::{size, thousands, Samples};
use crate::Sizes;

/// The false-positive rate the filter is built for (the default of `hashgate`).
const FP_RATE: f64 = hashgate_core::filter::DEFAULT_FP_RATE;
/// Seeds the choice of queried digests.
const QUERY_SEED: u64 = 0x7175_6572_7973_2121;
/// Where the false-positive probes start in the non-member set, clear of the queried ones.
const PROBE_OFFSET: u64 = 1 << 62;

pub struct FilterReport {
    entries: u64,
    build_secs: Samples,
    file_bytes: u64,
    load_ms: Samples,
    queries: u64,
    member_ns: Samples,
    non_member_ns: Samples,
    probes: u64,
    false_positives: u64,
}

pub fn run(db: &LocalDb, sizes: &Sizes) -> Result<FilterReport> {
    let entries = db.store().stats()?.total_digests();
    let build_secs = time_runs("filter build", sizes.build_runs, || {
        db.rebuild_filter(FP_RATE)?;
        Ok(())
    })?;
    let path = db.filter_path();
    let file_bytes = std::fs::metadata(&path)?.len();
    let load_ms = time_runs("filter load", sizes.load_runs, || {
        hashgate_local::filter_file::load(&path)?;
        Ok(())
    })?
    .map(|secs| secs * 1e3);

    let filter = hashgate_local::filter_file::load(&path)?;
    ensure!(
        filter.info().entries == entries,
        "the filter holds {} entries, the store {entries}",
        filter.info().entries
    );
    let (member_ns, non_member_ns) =
        time_queries(&filter, entries, sizes.queries, sizes.query_runs)?;
    crate::progress(format_args!(
        "counting false positives over {} non-members",
        thousands(sizes.fp_probes as f64)
    ));
    let false_positives = count_false_positives(&filter, sizes.fp_probes);
    Ok(FilterReport {
        entries,
        build_secs,
        file_bytes,
        load_ms,
        queries: sizes.queries,
        member_ns,
        non_member_ns,
        probes: sizes.fp_probes,
        false_positives,
    })
}

/// Seconds of each of `runs` runs of `f`.
fn time_runs(what: &str, runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<Samples> {
    let mut secs = Vec::with_capacity(runs);
    for run in 1..=runs {
        crate::progress(format_args!("{what}, run {run} of {runs}"));
        let started = Instant::now();
        f()?;
        secs.push(started.elapsed().as_secs_f64());
    }
    Ok(Samples::new(secs))
}

/// Nanoseconds per `may_contain` over `queries` members and as many non-members, `runs` times.
fn time_queries(
    filter: &FilterSnapshot,
    entries: u64,
    queries: u64,
    runs: usize,
) -> Result<(Samples, Samples)> {
    let mut rng = SplitMix64::new(QUERY_SEED);
    let members: Vec<Digest> = (0..queries)
        .map(|_| generated_digest(MEMBER_SEED, rng.below(entries)))
        .collect();
    let non_members: Vec<Digest> = (0..queries)
        .map(|i| generated_digest(NON_MEMBER_SEED, i))
        .collect();
    let mut member_ns = Vec::with_capacity(runs);
    let mut non_member_ns = Vec::with_capacity(runs);
    for run in 1..=runs {
        crate::progress(format_args!("filter queries, run {run} of {runs}"));
        let (ns, hits) = time_may_contain(filter, &members);
        ensure!(
            hits == queries,
            "the filter misses {} members",
            queries - hits
        );
        member_ns.push(ns);
        non_member_ns.push(time_may_contain(filter, &non_members).0);
    }
    Ok((Samples::new(member_ns), Samples::new(non_member_ns)))
}

/// Mean nanoseconds per query over `digests`, and how many the filter let through.
fn time_may_contain(filter: &FilterSnapshot, digests: &[Digest]) -> (f64, u64) {
    let started = Instant::now();
    let hits = digests
        .iter()
        .filter(|d| filter.may_contain(black_box(d)))
        .count() as u64;
    let ns = started.elapsed().as_nanos() as f64 / digests.len() as f64;
    (ns, black_box(hits))
}

/// How many of `probes` digests that are on no list the filter lets through.
fn count_false_positives(filter: &FilterSnapshot, probes: u64) -> u64 {
    (PROBE_OFFSET..PROBE_OFFSET + probes)
        .filter(|&i| filter.may_contain(&generated_digest(NON_MEMBER_SEED, i)))
        .count() as u64
}

impl FilterReport {
    /// Milliseconds of each `FilterSnapshot::load`.
    pub fn load_ms(&self) -> &Samples {
        &self.load_ms
    }

    pub fn markdown(&self) -> String {
        let entries = self.entries as f64;
        let bits_per_entry = self.file_bytes as f64 * 8.0 / entries;
        let expected = self.probes as f64 * FP_RATE;
        let mut md = String::new();
        let _ = writeln!(
            md,
            "### Filter snapshot at {} entries, p = {FP_RATE:e}\n",
            thousands(entries)
        );
        let _ = writeln!(
            md,
            "Built from the store above. Query times are the total over {} queries divided \
             by the count.\n",
            thousands(self.queries as f64)
        );
        let _ = writeln!(md, "| measure | R | result |");
        let _ = writeln!(md, "|---|---:|---|");
        let _ = writeln!(
            md,
            "| build (`LocalDb::rebuild_filter`: read the store snapshot, build, save), s | {} | {} |",
            self.build_secs.runs(),
            self.build_secs.show(2)
        );
        let _ = writeln!(
            md,
            "| file size | | {}, {:.2} bytes/entry, {bits_per_entry:.2} bits/entry \
             (bloom bound 1.44·log2(1/p) = {:.2}) |",
            size(self.file_bytes),
            self.file_bytes as f64 / entries,
            bloom_bound_bits_per_entry(FP_RATE)
        );
        let _ = writeln!(
            md,
            "| load (`FilterSnapshot::load`: read, check SHA-256), ms | {} | {} |",
            self.load_ms.runs(),
            self.load_ms.show(1)
        );
        let _ = writeln!(
            md,
            "| `may_contain`, members, ns/query | {} | {} |",
            self.member_ns.runs(),
            self.member_ns.show(0)
        );
        let _ = writeln!(
            md,
            "| `may_contain`, non-members, ns/query | {} | {} |",
            self.non_member_ns.runs(),
            self.non_member_ns.show(0)
        );
        let _ = writeln!(
            md,
            "| false positives | 1 | {} of {} non-members: rate {:.1e} (configured {FP_RATE:e}, \
             about {expected:.0} expected) |",
            self.false_positives,
            thousands(self.probes as f64),
            self.false_positives as f64 / self.probes as f64,
        );
        md
    }
}
