//! `hashgate scan`: files and directories against the local hash database.
//!
//! A walker feeds paths to one worker per core; results are printed in walk order. Every
//! path gets exactly one line: clean, match, or error (an unreadable file, a broken link, a
//! special file, a directory that cannot be listed). Nothing is ever reported clean that
//! was not read to its end.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{channel, sync_channel, Receiver};
use std::sync::Mutex;

use hashgate_core::digest::{Digest, StreamDigester};
use hashgate_core::filter::FilterSnapshot;
use hashgate_core::pdq::index::PdqIndex;
use hashgate_core::pdq::tap::ImageOutcome;
use hashgate_core::pdq::{DEFAULT_MIN_QUALITY, DEFAULT_THRESHOLD};
use hashgate_core::scan::{decide, Match, Perceptual, Screen};
use hashgate_core::{Algorithm, AlgorithmSet};
use hashgate_local::EmbeddedStore;
use hashgate_local::LocalDb;
use serde::Serialize;

use crate::args::ScanArgs;
use crate::output::{bytes, thousands};

/// Paths walked ahead of the one being printed; bounds memory on huge trees.
const WINDOW: usize = 1024;

/// What became of one file; written as `clean`, `match` or `error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum FileVerdict {
    Clean,
    Match,
    Error,
    /// An image that could not be decoded while PDQ entries are loaded: its exact digests
    /// found nothing, but it was not matched perceptually.
    Undecodable,
}

#[derive(Serialize)]
struct FileReport {
    path: String,
    bytes: Option<u64>,
    verdict: FileVerdict,
    /// The digests by algorithm, with `pdq_quality` beside an image's `pdq`.
    digests: BTreeMap<&'static str, serde_json::Value>,
    matches: Vec<Match>,
    /// What perceptual matching made of an image: `matched`, `low_quality` or `undecodable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    perceptual: Option<&'static str>,
    error: Option<String>,
    #[serde(skip)]
    filter_false_positives: u32,
}

impl FileReport {
    fn error(path: &Path, message: String) -> FileReport {
        FileReport {
            path: path.display().to_string(),
            bytes: None,
            verdict: FileVerdict::Error,
            digests: BTreeMap::new(),
            matches: Vec::new(),
            perceptual: None,
            error: Some(message),
            filter_false_positives: 0,
        }
    }
}

/// A path to scan, or a path the walk could not get past.
enum Job {
    File(PathBuf),
    Failed(PathBuf, String),
}

pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let db = LocalDb::open(&args.db.db)?;
    let store_version = db.store().version()?;
    let filter = usable_filter(&db, store_version);
    let screen = match &filter {
        Some(f) => Screen::Filter(f),
        None => Screen::StoreOnly,
    };
    // PDQ entries are matched by distance through an index: the filter's, or without a
    // current filter, one built here from the store's PDQ entries.
    let built_index;
    let pdq_index: Option<&PdqIndex> = match &filter {
        Some(f) => Some(f.pdq()),
        None if db.store().algorithms()?.contains(Algorithm::Pdq) => {
            let mut hashes = Vec::new();
            db.store().snapshot()?.for_each_key(|key| {
                if let Some(h) = Digest::from_key(key).and_then(|d| d.as_pdq()) {
                    hashes.push(h);
                }
            })?;
            built_index = PdqIndex::build(hashes);
            Some(&built_index)
        }
        None => None,
    };
    let algorithms: AlgorithmSet = db
        .store()
        .algorithms()?
        .iter()
        .chain(args.digests.unwrap_or_default().iter())
        .collect();
    let jobs = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );

    let (job_tx, job_rx) = sync_channel::<(usize, Job)>(jobs * 2);
    let job_rx = Mutex::new(job_rx);
    let (result_tx, result_rx) = channel::<(usize, FileReport)>();
    let (token_tx, token_rx) = sync_channel::<()>(WINDOW);
    for _ in 0..WINDOW {
        token_tx.send(()).expect("room for every token");
    }

    let mut totals = Totals::default();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let paths = &args.paths;
        s.spawn(move || walk(paths, &token_rx, |i, job| job_tx.send((i, job)).is_ok()));
        for _ in 0..jobs {
            let (job_rx, result_tx, store) = (&job_rx, result_tx.clone(), db.store());
            s.spawn(move || loop {
                let next = job_rx.lock().expect("job queue lock").recv();
                let Ok((i, job)) = next else { break };
                let report = match job {
                    Job::File(path) => scan_file(&path, algorithms, store, screen, pdq_index),
                    Job::Failed(path, message) => FileReport::error(&path, message),
                };
                if result_tx.send((i, report)).is_err() {
                    break;
                }
            });
        }
        drop(result_tx);

        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let mut pending = HashMap::new();
        let mut next = 0usize;
        for (i, report) in result_rx {
            pending.insert(i, report);
            while let Some(report) = pending.remove(&next) {
                totals.add(&report);
                print_report(&mut out, &report, args.json)?;
                next += 1;
                // Let the walker go one further; it may have finished, which is fine.
                let _ = token_tx.try_send(());
            }
            if args.json || totals.files % 64 == 0 {
                out.flush()?;
            }
        }
        out.flush()?;
        Ok(())
    })?;

    eprintln!(
        "hashgate: scanned {} file{} ({}): {} clean, {} matched, {} failed; filter false positives: {}",
        thousands(totals.files),
        if totals.files == 1 { "" } else { "s" },
        bytes(totals.bytes),
        thousands(totals.clean),
        thousands(totals.matched),
        thousands(totals.failed),
        thousands(totals.filter_false_positives),
    );
    Ok(if totals.failed > 0 {
        ExitCode::from(2)
    } else if totals.matched > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The saved filter if it covers the store as it is now. Otherwise the scan asks the exact
/// store about every digest: slower, never wrong.
fn usable_filter(db: &LocalDb, store_version: u64) -> Option<FilterSnapshot> {
    match db.load_filter() {
        Ok(Some(f)) if f.info().covers(store_version) => Some(f),
        Ok(Some(f)) => {
            eprintln!(
                "hashgate: warning: the filter snapshot was built from store version {} but the store is at {store_version}; checking every digest against the store (run: hashgate filter rebuild)",
                f.info().store_version
            );
            None
        }
        Ok(None) => {
            eprintln!("hashgate: warning: no filter snapshot; checking every digest against the store (run: hashgate filter rebuild)");
            None
        }
        Err(e) => {
            eprintln!("hashgate: warning: filter snapshot REFUSED: {e}; checking every digest against the store");
            None
        }
    }
}

/// Walk `paths` in order, handing out each file (or failure) with its index. Waits for a
/// token before each job so it never runs more than [`WINDOW`] ahead of the output.
fn walk(paths: &[PathBuf], tokens: &Receiver<()>, mut emit: impl FnMut(usize, Job) -> bool) {
    let mut i = 0;
    let mut send = |job: Job| -> bool {
        if tokens.recv().is_err() {
            return false;
        }
        let ok = emit(i, job);
        i += 1;
        ok
    };
    for root in paths {
        // A root that is a directory (or a link to one) is walked; anything else is scanned
        // as given, and the worker reports what is wrong with it.
        if !root.is_dir() {
            if !send(Job::File(root.clone())) {
                return;
            }
            continue;
        }
        let walker = walkdir::WalkDir::new(root)
            .follow_links(true)
            .sort_by_file_name();
        for entry in walker {
            let job = match entry {
                Ok(e) if e.file_type().is_dir() => continue,
                Ok(e) => Job::File(e.into_path()),
                Err(e) => {
                    let path = e.path().unwrap_or(root).to_path_buf();
                    let message = walk_error(&path, &e);
                    Job::Failed(path, message)
                }
            };
            if !send(job) {
                return;
            }
        }
    }
}

fn walk_error(path: &Path, e: &walkdir::Error) -> String {
    if let Some(ancestor) = e.loop_ancestor() {
        return format!(
            "symbolic link loop (back to {}), not followed",
            ancestor.display()
        );
    }
    if is_broken_link(path) {
        return "broken symbolic link".into();
    }
    match e.io_error() {
        Some(io) => format!("cannot read: {io}"),
        None => e.to_string(),
    }
}

fn is_broken_link(path: &Path) -> bool {
    path.symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
        && std::fs::metadata(path).is_err()
}

fn scan_file(
    path: &Path,
    algorithms: AlgorithmSet,
    store: &EmbeddedStore,
    screen: Screen<'_>,
    pdq_index: Option<&PdqIndex>,
) -> FileReport {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(_) if is_broken_link(path) => {
            return FileReport::error(path, "broken symbolic link".into())
        }
        Err(e) => return FileReport::error(path, format!("cannot read: {e}")),
    };
    if !meta.is_file() {
        return FileReport::error(path, format!("not a regular file ({})", kind(&meta)));
    }
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return FileReport::error(path, format!("cannot open: {e}")),
    };
    let mut digester = StreamDigester::new(algorithms);
    if let Err(e) = digester.read_from(&mut file) {
        return FileReport::error(
            path,
            format!("read failed after {} bytes: {e}", digester.bytes()),
        );
    }
    let digested = digester.finish();
    let mut digests: BTreeMap<&'static str, serde_json::Value> = digested
        .digests
        .iter()
        .map(|d| (d.algorithm().name(), d.to_hex().into()))
        .collect();
    let (perceptual, status, error) = match &digested.image {
        Some(ImageOutcome::Hashed(image)) => {
            digests.insert("pdq_quality", image.quality.into());
            if image.quality < DEFAULT_MIN_QUALITY {
                let why = format!(
                    "PDQ quality {} is below {DEFAULT_MIN_QUALITY}: not matched perceptually",
                    image.quality
                );
                (None, Some("low_quality"), Some(why))
            } else {
                let query = pdq_index.map(|index| Perceptual {
                    index,
                    variants: &image.variants,
                    threshold: DEFAULT_THRESHOLD,
                });
                (query, Some("matched"), None)
            }
        }
        Some(ImageOutcome::Undecodable { kind, reason }) => (
            None,
            Some("undecodable"),
            Some(format!("{kind} image not decoded for PDQ: {reason}")),
        ),
        Some(ImageOutcome::NotImage) | None => (None, None, None),
    };
    let decision = match pollster::block_on(decide(store, screen, &digested.digests, perceptual)) {
        Ok(d) => d,
        Err(e) => return FileReport::error(path, format!("hash store lookup failed: {e}")),
    };
    FileReport {
        path: path.display().to_string(),
        bytes: Some(digested.bytes),
        verdict: if decision.verdict.is_match() {
            FileVerdict::Match
        } else if status == Some("undecodable") {
            FileVerdict::Undecodable
        } else {
            FileVerdict::Clean
        },
        digests,
        matches: decision.verdict.matches().to_vec(),
        perceptual: status,
        error,
        filter_false_positives: decision.filter_false_positives,
    }
}

fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "named pipe"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

fn print_report(out: &mut impl Write, r: &FileReport, json: bool) -> std::io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, r)?;
        return writeln!(out);
    }
    match r.verdict {
        FileVerdict::Clean => writeln!(out, "clean  {}", r.path),
        FileVerdict::Match => {
            let what: Vec<String> = r
                .matches
                .iter()
                .map(|m| {
                    let mut s = format!("{} {} on {}", m.algorithm, m.digest, m.list);
                    if let Some(d) = m.distance {
                        s.push_str(&format!(", distance {d}"));
                    }
                    if let Some(c) = &m.category {
                        s.push_str(&format!(", category {c}"));
                    }
                    if let Some(id) = &m.id {
                        s.push_str(&format!(", id {id}"));
                    }
                    s
                })
                .collect();
            writeln!(out, "MATCH  {}  ({})", r.path, what.join("; "))
        }
        FileVerdict::Undecodable => writeln!(
            out,
            "UNSCANNED  {}: {}",
            r.path,
            r.error.as_deref().unwrap_or("undecodable image")
        ),
        FileVerdict::Error => writeln!(
            out,
            "ERROR  {}: {}",
            r.path,
            r.error.as_deref().unwrap_or("unknown error")
        ),
    }
}

#[derive(Default)]
struct Totals {
    files: u64,
    bytes: u64,
    clean: u64,
    matched: u64,
    failed: u64,
    filter_false_positives: u64,
}

impl Totals {
    fn add(&mut self, r: &FileReport) {
        self.files += 1;
        self.bytes += r.bytes.unwrap_or(0);
        self.filter_false_positives += u64::from(r.filter_false_positives);
        match r.verdict {
            FileVerdict::Clean => self.clean += 1,
            FileVerdict::Match => self.matched += 1,
            FileVerdict::Error | FileVerdict::Undecodable => self.failed += 1,
        }
    }
}
