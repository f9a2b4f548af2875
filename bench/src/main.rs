//! `hashgate-bench`: hashgate's benchmarks, each measured side by side with its reference in
//! one run (see BENCHMARKS.md):
//!
//! 1. scan throughput of `hashgate scan` on a large file against `md5sum` (and `sha256sum`);
//! 2. full-read scanning against a list of a million digests, on a corpus of mixed sizes and
//!    on the large file: `hashgate scan` against `md5sum` and ClamAV's `clamscan`;
//! 3. the exact store at full size: list import, then member and non-member lookups;
//! 4. the filter snapshot over that store: build, size, load, queries, false positives;
//! 5. the filter crate by measurement: `bloomfilter` against `fastbloom` and `xorf`;
//! 6. cold start with the full-size filter: local database, and the scanner on the local stack;
//! 7. the pipeline on the local stack;
//! 8. the reviewers' previews of a 12-megapixel JPEG, against decoding it alone;
//! 9. the review queue with 10,000 cases on the local stack: the queue page and
//!    `GET /api/cases` (median, p99), previews over HTTP, and the review function's peak
//!    memory;
//! 10. hash-list sync and signed filters: the full-size snapshot built, signed and verified
//!     (against `sha256sum`), a scanner's reload on the local stack (against a plain GET), and
//!     the import into DynamoDB on the local stack with its requests counted;
//! 11. a cost model per million uploads, from the measured CPU time and memory;
//! 12. perceptual matching: the PDQ index at 1 and 10 million hashes (build, memory, an
//!     upload's query) against scanning every hash, and PDQ hashing and a 12-megapixel
//!     JPEG's decode and hash against Meta's C++ (PyPI `pdqhash`, in `.venv-pdq`).
//!
//! Inputs are generated under `target/bench-data/` from fixed seeds and reused by later runs;
//! the databases built from them are deleted at the end. Progress goes to standard error, the
//! results (markdown) to standard output and, with `--write FILE`, into FILE between the
//! `bench:results` markers.
//!
//! Usage: `hashgate-bench [--quick] [--only scan|preview|review|sync|pdq] [--write BENCHMARKS.md]`
//! (`--write` with `--only sync` replaces just that part's subsection of the results)
//! (build `hashgate-cli`, `hashgate-scanner` and `hashgate-review-api` in the same profile
//! first: the comparisons run the `hashgate`, `scanner` and `review-api` binaries next to this
//! one; `--only preview` and `--only pdq` need none of them, `--only review` only `review-api`). The corpus
//! comparison needs `clamscan` (Debian package `clamav`), the stack parts the emulator
//! (`make venv`).

mod coldstart;
mod corpus;
mod cost;
mod data;
mod filter;
mod filter_choice;
mod pdq;
mod pdq_hash;
mod pipeline;
mod preview;
mod report;
mod review;
mod scan;
mod stats;
mod store;
mod sync;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use clap::Parser;

use crate::stats::{size, thousands};

/// hashgate's benchmarks: scan throughput against md5sum, the exact store and the filter at
/// full size. Results go to standard output as markdown.
#[derive(Parser)]
#[command(name = "hashgate-bench")]
struct Args {
    /// Small sizes for a smoke run: seconds, not minutes; the figures mean little.
    #[arg(long)]
    quick: bool,
    /// Also replace the results section (between the bench:results markers) of this
    /// markdown file.
    #[arg(long, value_name = "FILE")]
    write: Option<PathBuf>,
    /// Run one part only and print its results. With --write only `sync`, which then
    /// replaces just its own subsection of the results.
    #[arg(long, value_enum)]
    only: Option<Part>,
}

/// The parts that can run alone.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Part {
    /// Scan throughput on the large file against `md5sum` and the CPU's limit.
    Scan,
    /// The reviewers' previews of a 12-megapixel JPEG (needs no other binary).
    Preview,
    /// The review queue with 10,000 cases on the local stack (needs the `review-api`
    /// binary and the emulator).
    Review,
    /// Hash-list sync and signed filters (needs the `hashgate` binary and the emulator).
    Sync,
    /// Perceptual matching: the PDQ index at 1 and 10 million hashes, and PDQ hashing
    /// against Meta's C++ (needs no other binary; the comparison needs `.venv-pdq`).
    Pdq,
}

/// How much work each measurement does, and how many runs each figure gets (R).
pub struct Sizes {
    pub scan_file_bytes: u64,
    pub scan_runs: usize,
    pub entries: u64,
    pub import_runs: usize,
    pub lookups: u64,
    pub lookup_runs: usize,
    pub build_runs: usize,
    pub load_runs: usize,
    pub queries: u64,
    pub query_runs: usize,
    pub fp_probes: u64,
    pub pipeline_objects: usize,
    pub pipeline_object_bytes: usize,
    pub corpus: &'static [corpus::Bucket],
    pub list_entries: u64,
    pub corpus_runs: usize,
    pub coldstart_runs: usize,
    pub preview_runs: usize,
    pub review_cases: usize,
    pub review_runs: usize,
    pub review_filtered_runs: usize,
    pub sync_import_entries: u64,
    pub pdq_index_hashes: &'static [usize],
    pub pdq_queries: usize,
    pub pdq_scans: usize,
    pub pdq_hash_runs: usize,
}

const FULL: Sizes = Sizes {
    scan_file_bytes: 1 << 30,
    scan_runs: 5,
    entries: 10_000_000,
    import_runs: 3,
    lookups: 1_000_000,
    lookup_runs: 3,
    build_runs: 3,
    load_runs: 5,
    queries: 1_000_000,
    query_runs: 3,
    fp_probes: 10_000_000,
    pipeline_objects: 500,
    pipeline_object_bytes: 256 * 1024,
    corpus: corpus::FULL_CORPUS,
    list_entries: 1_000_000,
    corpus_runs: 3,
    coldstart_runs: 5,
    preview_runs: 100,
    review_cases: 10_000,
    review_runs: 50,
    review_filtered_runs: 10,
    sync_import_entries: 100_000,
    pdq_index_hashes: &[1_000_000, 10_000_000],
    pdq_queries: 1_000,
    pdq_scans: 20,
    pdq_hash_runs: 10,
};

const QUICK: Sizes = Sizes {
    scan_file_bytes: 64 << 20,
    entries: 200_000,
    lookups: 100_000,
    queries: 100_000,
    fp_probes: 1_000_000,
    pipeline_objects: 50,
    corpus: corpus::QUICK_CORPUS,
    list_entries: 100_000,
    corpus_runs: 2,
    coldstart_runs: 2,
    preview_runs: 20,
    review_cases: 1_000,
    review_runs: 20,
    review_filtered_runs: 5,
    sync_import_entries: 10_000,
    pdq_index_hashes: &[100_000, 1_000_000],
    pdq_queries: 200,
    pdq_scans: 5,
    pdq_hash_runs: 3,
    ..FULL
};

impl Sizes {
    fn describe(&self) -> String {
        format!(
            "scan file {}; corpus {} files, list {} digests; store and filter {} entries; \
             {} member + {} non-member store lookups; {} false-positive probes; {} pipeline \
             uploads of {}; {} preview runs; review queue of {} cases, {} runs a page ({} filtered); \
             {} entries imported into DynamoDB on the local stack; PDQ index of {} hashes, \
             {} uploads queried, {} scanned",
            size(self.scan_file_bytes),
            thousands(self.corpus.iter().map(|b| b.files).sum::<usize>() as f64),
            thousands(self.list_entries as f64),
            thousands(self.entries as f64),
            thousands(self.lookups as f64),
            thousands(self.lookups as f64),
            thousands(self.fp_probes as f64),
            self.pipeline_objects,
            size(self.pipeline_object_bytes as u64),
            self.preview_runs,
            thousands(self.review_cases as f64),
            self.review_runs,
            self.review_filtered_runs,
            thousands(self.sync_import_entries as f64),
            self.pdq_index_hashes
                .iter()
                .map(|&n| thousands(n as f64))
                .collect::<Vec<_>>()
                .join(" and "),
            thousands(self.pdq_queries as f64),
            self.pdq_scans,
        )
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let started = start_clock();
    if cfg!(debug_assertions) {
        progress("warning: a debug build; build with --release for meaningful figures");
    }
    let sizes = if args.quick { &QUICK } else { &FULL };
    let run = report::RunInfo::detect();
    ensure!(
        args.write.is_none() || matches!(args.only, None | Some(Part::Sync)),
        "--write replaces all the results: only --only sync can be combined with it"
    );
    if let Some(Part::Preview) = args.only {
        let preview = preview::run(sizes)?;
        let section = report::render(
            &run,
            &sizes.describe(),
            started.elapsed(),
            &[preview.markdown()],
        );
        println!("{section}");
        return Ok(());
    }
    if let Some(Part::Pdq) = args.only {
        let pdq = pdq::run(sizes)?;
        let section = report::render(
            &run,
            &sizes.describe(),
            started.elapsed(),
            &[pdq.markdown()],
        );
        println!("{section}");
        return Ok(());
    }
    if let Some(Part::Review) = args.only {
        let review = review::run_or_explain(sizes)?;
        let section = report::render(
            &run,
            &sizes.describe(),
            started.elapsed(),
            &[review.markdown()],
        );
        println!("{section}");
        return Ok(());
    }
    let (hashgate, data_dir) = locate()?;
    if let Some(Part::Sync) = args.only {
        let sync = sync::run(&data_dir, sizes)?.markdown();
        println!("{sync}");
        if let Some(path) = &args.write {
            let note = format!(
                "Measured on its own (`hashgate-bench --only sync`): {}; run time {} s.\n",
                run.summary(),
                started.elapsed().as_secs()
            );
            report::write_subsection(path, sync::HEADING, &sync, &note)?;
            progress(format_args!("results written into {}", path.display()));
        }
        return Ok(());
    }

    let scan = scan::run(&hashgate, &data_dir, sizes)?;
    if let Some(Part::Scan) = args.only {
        let section = report::render(
            &run,
            &sizes.describe(),
            started.elapsed(),
            &[scan.markdown()],
        );
        println!("{section}");
        return Ok(());
    }
    let corpus = corpus::run(&hashgate, &data_dir, &scan.file, sizes)?;
    let (store, db) = store::run(&data_dir, sizes)?;
    let filter = filter::run(&db, sizes)?;
    let entries = db.store().stats()?.total_digests();
    drop(db);
    let cold_local = coldstart::run_local(
        &hashgate,
        &data_dir,
        &data_dir.join("store"),
        entries,
        sizes.coldstart_runs,
        Some(filter.load_ms().clone()),
    )?;
    remove_databases(&data_dir)?;
    let filter_choice = filter_choice::run(&data_dir, sizes)?;
    let sync = sync::run(&data_dir, sizes)?;
    let pipeline = pipeline::run_or_explain(sizes.pipeline_objects, sizes.pipeline_object_bytes)?;
    let preview = preview::run(sizes)?;
    let pdq = pdq::run(sizes)?;
    let review = review::run_or_explain(sizes)?;
    let cold_stack = coldstart::run_stack(sizes.entries, sizes.coldstart_runs)?;
    let cost = cost::model(
        sizes.corpus,
        corpus
            .corpus()
            .hashgate_cpu_secs_per_byte()
            .context("the cost model needs CPU times: install GNU time (apt-get install time)")?,
        cold_stack.full_filter_peak_rss_kib(),
        pdq.perceptual_cost(),
    );

    let section = report::render(
        &run,
        &sizes.describe(),
        started.elapsed(),
        &[
            scan.markdown(),
            corpus.markdown(),
            store.markdown(),
            filter.markdown(),
            filter_choice.markdown(),
            cold_local.markdown(),
            cold_stack.markdown(),
            pipeline.markdown(),
            preview.markdown(),
            pdq.markdown(),
            review.markdown(),
            sync.markdown(),
            cost.markdown(),
        ],
    );
    println!("{section}");
    if let Some(path) = &args.write {
        report::write_into(path, &section)?;
        progress(format_args!("results written into {}", path.display()));
    }
    progress(format_args!(
        "done in {:.0} s; generated inputs kept in {} for the next run",
        started.elapsed().as_secs_f64(),
        data_dir.display()
    ));
    Ok(())
}

/// The `hashgate` binary next to this one, and `bench-data` in the same target directory.
fn locate() -> Result<(PathBuf, PathBuf)> {
    let exe = std::env::current_exe().context("locating this program")?;
    let bin_dir = exe.parent().context("this program's directory")?;
    let hashgate = bin_dir.join("hashgate");
    ensure!(
        hashgate.is_file(),
        "{} is missing: build it first (cargo build --release -p hashgate-cli)",
        hashgate.display()
    );
    let target_dir = bin_dir.parent().unwrap_or(bin_dir);
    let data_dir = target_dir.join("bench-data");
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    Ok((hashgate, data_dir))
}

/// The databases are big and rebuilt by every run; only the generated inputs are kept.
fn remove_databases(data_dir: &Path) -> Result<()> {
    let store = data_dir.join("store");
    std::fs::remove_dir_all(&store).with_context(|| format!("removing {}", store.display()))
}

static START: OnceLock<Instant> = OnceLock::new();

fn start_clock() -> Instant {
    *START.get_or_init(Instant::now)
}

/// A progress line on standard error, with the time since the start.
pub fn progress(message: impl std::fmt::Display) {
    eprintln!(
        "[{:6.1} s] {message}",
        start_clock().elapsed().as_secs_f64()
    );
}
