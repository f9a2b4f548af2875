//! The exact store at full size: a plain hash list imported the way `hashgate lists import`
//! does it, then point lookups one digest per call, the way a scan asks.

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use hashgate_core::lists::{ListFormat, ParseOptions};
use hashgate_core::Digest;
use hashgate_local::{import_list, LocalDb};

use crate::data::{self, generated_digest, SplitMix64, MEMBER_SEED, NON_MEMBER_SEED};
use crate::stats::{quantile, size, thousands, Samples};
use crate::Sizes;

/// Seeds the choice of looked-up digests (one stream per run).
const LOOKUP_SEED: u64 = 0x6c6f_6f6b_7570_7321;
/// An import this slow is run once, not R times.
const SLOW_IMPORT_SECS: f64 = 120.0;

/// Median and 99th percentile of each run's lookups, in µs.
struct Latencies {
    median_us: Samples,
    p99_us: Samples,
}

pub struct StoreReport {
    entries: u64,
    import_secs: Samples,
    db_bytes: u64,
    lookups: u64,
    members: Latencies,
    non_members: Latencies,
}

/// Runs the store measurements in `data_dir/store` and hands back the database, which the
/// filter measurements build on.
pub fn run(data_dir: &Path, sizes: &Sizes) -> Result<(StoreReport, LocalDb)> {
    let entries = sizes.entries;
    let list = data::cached_file(
        data_dir,
        &format!("hashes-{entries}-{MEMBER_SEED:x}.txt"),
        |out| data::write_hash_list(out, entries, MEMBER_SEED),
    )?;
    let dir = data_dir.join("store");
    let import_secs = time_imports(&list, &dir, entries, sizes.import_runs)?;
    let db = LocalDb::open(&dir)?;
    let db_bytes = std::fs::metadata(db.store().path())?.len();
    let (members, non_members) = time_lookups(&db, entries, sizes.lookups, sizes.lookup_runs)?;
    let report = StoreReport {
        entries,
        import_secs,
        db_bytes,
        lookups: sizes.lookups,
        members,
        non_members,
    };
    Ok((report, db))
}

/// Imports `list` into a fresh database in `dir`, `runs` times (once if the first is slow);
/// the last database stays.
fn time_imports(list: &Path, dir: &Path, entries: u64, runs: usize) -> Result<Samples> {
    let mut secs = Vec::with_capacity(runs);
    for run in 1..=runs {
        crate::progress(format_args!(
            "importing {} entries, run {run} of {runs}",
            thousands(entries as f64)
        ));
        let took = import_once(list, dir, entries)?;
        crate::progress(format_args!("imported in {took:.1} s"));
        secs.push(took);
        if took > SLOW_IMPORT_SECS && run == 1 {
            crate::progress(format_args!(
                "the import took over {SLOW_IMPORT_SECS:.0} s: not repeating it"
            ));
            break;
        }
    }
    Ok(Samples::new(secs))
}

/// Seconds to import `list` into a new database in `dir`.
fn import_once(list: &Path, dir: &Path, entries: u64) -> Result<f64> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let options = ParseOptions {
        source_name: list.display().to_string(),
        default_list: "bench".to_owned(),
        algorithm: None,
    };
    let started = Instant::now();
    let db = LocalDb::create(dir)?;
    let reader = File::open(list).with_context(|| format!("opening {}", list.display()))?;
    let (summary, stats) = import_list(
        db.store(),
        reader,
        ListFormat::Plain,
        &options,
        hashgate_core::store::Op::Add,
    )?;
    let secs = started.elapsed().as_secs_f64();
    ensure!(
        summary.entries == entries && stats.added == entries,
        "imported {} entries ({} new), expected {entries}",
        summary.entries,
        stats.added
    );
    Ok(secs)
}

/// `runs` runs of `lookups` member and as many non-member lookups, alternating, each timed
/// on its own.
fn time_lookups(
    db: &LocalDb,
    entries: u64,
    lookups: u64,
    runs: usize,
) -> Result<(Latencies, Latencies)> {
    let mut member_runs = Vec::with_capacity(runs);
    let mut non_member_runs = Vec::with_capacity(runs);
    for run in 0..runs {
        crate::progress(format_args!("store lookups, run {} of {runs}", run + 1));
        let mut rng = SplitMix64::new(LOOKUP_SEED ^ run as u64);
        let mut member_ns = Vec::with_capacity(lookups as usize);
        let mut non_member_ns = Vec::with_capacity(lookups as usize);
        for _ in 0..lookups {
            let member = generated_digest(MEMBER_SEED, rng.below(entries));
            member_ns.push(time_lookup(db, &member, true)?);
            let non_member = generated_digest(NON_MEMBER_SEED, rng.next_u64());
            non_member_ns.push(time_lookup(db, &non_member, false)?);
        }
        member_runs.push(member_ns);
        non_member_runs.push(non_member_ns);
    }
    Ok((latencies(member_runs), latencies(non_member_runs)))
}

/// Nanoseconds of one `lookup_now` of `digest`, checking the answer.
fn time_lookup(db: &LocalDb, digest: &Digest, member: bool) -> Result<u32> {
    let started = Instant::now();
    let found = db.store().lookup_now(std::slice::from_ref(digest))?;
    let ns = u32::try_from(started.elapsed().as_nanos()).unwrap_or(u32::MAX);
    ensure!(
        found.len() == usize::from(member),
        "lookup of {digest:?}: expected {}, got {} results",
        if member { "a match" } else { "none" },
        found.len()
    );
    Ok(ns)
}

fn latencies(runs: Vec<Vec<u32>>) -> Latencies {
    let (median, p99): (Vec<f64>, Vec<f64>) = runs
        .into_iter()
        .map(|mut ns| {
            let mut us = |q| f64::from(quantile(&mut ns, q)) / 1000.0;
            (us(0.5), us(0.99))
        })
        .unzip();
    Latencies {
        median_us: Samples::new(median),
        p99_us: Samples::new(p99),
    }
}

impl StoreReport {
    pub fn markdown(&self) -> String {
        let n = thousands(self.entries as f64);
        let mut md = String::new();
        let _ = writeln!(md, "### Exact store (redb) at {n} entries\n");
        let _ = writeln!(
            md,
            "A plain list of {n} random digests (50% MD5, 30% SHA-1, 20% SHA-256) imported \
             with `local::import_list` into a new database: parsing and one atomic commit. \
             Then `EmbeddedStore::lookup_now` with one digest per call (as a scan asks), \
             {} member and {} non-member digests alternating, each timed on its own, after \
             a reopen with the page cache warm.\n",
            thousands(self.lookups as f64),
            thousands(self.lookups as f64),
        );
        let import_runs = self.import_secs.runs();
        let entries = self.entries as f64;
        let _ = writeln!(md, "| measure | R | result |");
        let _ = writeln!(md, "|---|---:|---|");
        let _ = writeln!(
            md,
            "| import | {import_runs} | {} entries/s; {} s |",
            self.import_secs.map(|s| entries / s).show_thousands(),
            self.import_secs.show(1),
        );
        let _ = writeln!(
            md,
            "| database file | | {}, {:.1} bytes/entry |",
            size(self.db_bytes),
            self.db_bytes as f64 / entries
        );
        for (what, l) in [("member", &self.members), ("non-member", &self.non_members)] {
            let _ = writeln!(
                md,
                "| {what} lookup, median µs | {} | {} |\n| {what} lookup, p99 µs | {} | {} |",
                l.median_us.runs(),
                l.median_us.show(2),
                l.p99_us.runs(),
                l.p99_us.show(2),
            );
        }
        md
    }
}
