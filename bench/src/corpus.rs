//! Full-read scanning against a hash list of realistic size: `hashgate scan` next to `md5sum`
//! and ClamAV's `clamscan` (hash signatures only) on a corpus of many files of mixed sizes and
//! on the large file, every contender a child process, the contenders alternating round by
//! round.
//!
//! The corpus is generated from fixed seeds under `bench-data/` and reused. A few of its files
//! are planted: their digests are on the list. Every run of every scanner must report exactly
//! those files (and `md5sum` must print their MD5s), or the benchmark fails: a comparison whose
//! contenders disagree measures nothing.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use hashgate_core::digest::digest_reader;
use hashgate_core::{Algorithm, AlgorithmSet, Digest};

use crate::data::{mix64, write_random_bytes, SplitMix64};
use crate::scan::{fresh_dir, import_db, time_alternating, Contender, Row};
use crate::stats::{mib, size, thousands, Samples};
use crate::Sizes;

/// Seeds the corpus: file order and file contents.
const CORPUS_SEED: u64 = 0x636f_7270_7573_2d31;
/// Seeds the digests of the hash list.
const LIST_SEED: u64 = 0x6c69_7374_2d31_6d21;
/// Bump when the corpus layout changes, so an old cached corpus is not reused.
const CORPUS_VERSION: u32 = 1;
/// Beside a corpus directory, marks it complete (inside, it would be scanned).
const COMPLETE: &str = "complete";
/// Goals: hashgate's throughput relative to `md5sum` and to `clamscan`.
const GOAL_MD5SUM: f64 = 0.9;
const GOAL_CLAMSCAN: f64 = 10.0;

/// Files with sizes spread log-uniformly over `lo..=hi` bytes.
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    pub lo: u64,
    pub hi: u64,
    pub files: usize,
}

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// The corpus of `make bench`: 10,000 files from 1 KiB to 256 MiB, most of them small, as
/// uploads are; about 3.1 GiB in all.
pub const FULL_CORPUS: &[Bucket] = &[
    Bucket {
        lo: KIB,
        hi: 16 * KIB,
        files: 5_500,
    },
    Bucket {
        lo: 16 * KIB,
        hi: 256 * KIB,
        files: 3_000,
    },
    Bucket {
        lo: 256 * KIB,
        hi: MIB,
        files: 1_000,
    },
    Bucket {
        lo: MIB,
        hi: 4 * MIB,
        files: 400,
    },
    Bucket {
        lo: 4 * MIB,
        hi: 16 * MIB,
        files: 90,
    },
    Bucket {
        lo: 16 * MIB,
        hi: 64 * MIB,
        files: 7,
    },
    Bucket {
        lo: 64 * MIB,
        hi: 256 * MIB,
        files: 3,
    },
];

/// The smoke run's corpus: 1,000 files up to 16 MiB.
pub const QUICK_CORPUS: &[Bucket] = &[
    Bucket {
        lo: KIB,
        hi: 16 * KIB,
        files: 550,
    },
    Bucket {
        lo: 16 * KIB,
        hi: 256 * KIB,
        files: 300,
    },
    Bucket {
        lo: 256 * KIB,
        hi: MIB,
        files: 100,
    },
    Bucket {
        lo: MIB,
        hi: 4 * MIB,
        files: 40,
    },
    Bucket {
        lo: 4 * MIB,
        hi: 16 * MIB,
        files: 10,
    },
];

/// The file sizes of `buckets`, in file order (a seeded shuffle, so sizes are mixed as in a
/// real upload stream). Within a bucket of n files, file j has size lo·(hi/lo)^(j/n); in the
/// last bucket j/(n−1), so the largest file is exactly `hi`.
pub fn file_sizes(buckets: &[Bucket]) -> Vec<u64> {
    let mut sizes = Vec::new();
    for (b, bucket) in buckets.iter().enumerate() {
        let last = b + 1 == buckets.len();
        let n = bucket.files;
        let span = bucket.hi as f64 / bucket.lo as f64;
        for j in 0..n {
            let t = if last && n > 1 {
                j as f64 / (n - 1) as f64
            } else {
                j as f64 / n as f64
            };
            sizes.push((bucket.lo as f64 * span.powf(t)).round() as u64);
        }
    }
    let mut rng = SplitMix64::new(CORPUS_SEED);
    for i in (1..sizes.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        sizes.swap(i, j);
    }
    sizes
}

/// How the report states the distribution.
fn describe_buckets(buckets: &[Bucket]) -> String {
    buckets
        .iter()
        .map(|b| {
            format!(
                "{} files of {}–{}",
                thousands(b.files as f64),
                human(b.lo),
                human(b.hi)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `1 KiB`, `256 KiB`, `4 MiB`.
fn human(bytes: u64) -> String {
    if bytes >= MIB {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{} KiB", bytes / KIB)
    }
}

/// The generated corpus.
struct Corpus {
    dir: PathBuf,
    files: Vec<PathBuf>,
    bytes: u64,
    /// Files whose digest is on the list, with that digest.
    planted: Vec<(PathBuf, Digest)>,
}

/// The corpus in `data_dir`, generated unless an earlier run completed it.
fn corpus(data_dir: &Path, buckets: &[Bucket]) -> Result<Corpus> {
    let sizes = file_sizes(buckets);
    let total: u64 = sizes.iter().sum();
    let dir = data_dir.join(format!("corpus-v{CORPUS_VERSION}-{}-{total}", sizes.len()));
    let path_of = |i: usize| {
        dir.join(format!("d{:02}", i % 100))
            .join(format!("f{i:05}.bin"))
    };
    let marker = dir.with_extension(COMPLETE);
    if marker.is_file() {
        crate::progress(format_args!("reusing {}", dir.display()));
    } else {
        crate::progress(format_args!(
            "generating {} ({} files, {})",
            dir.display(),
            thousands(sizes.len() as f64),
            size(total)
        ));
        std::fs::remove_file(&marker).ok();
        fresh_dir(&dir)?;
        for (i, &bytes) in sizes.iter().enumerate() {
            let path = path_of(i);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let file =
                File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            write_random_bytes(&mut out, bytes, CORPUS_SEED ^ mix64(i as u64 + 1))
                .and_then(|()| out.flush().map_err(Into::into))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        std::fs::write(&marker, b"").with_context(|| format!("writing {}", marker.display()))?;
    }
    let files: Vec<PathBuf> = (0..sizes.len()).map(path_of).collect();
    let planted = plant(&files, &sizes)?;
    Ok(Corpus {
        dir,
        files,
        bytes: total,
        planted,
    })
}

/// Six files spread over the sizes (from the smallest tenth to the second largest), the
/// first, third and fifth listed by MD5, the others by SHA-256.
fn plant(files: &[PathBuf], sizes: &[u64]) -> Result<Vec<(PathBuf, Digest)>> {
    let mut by_size: Vec<usize> = (0..files.len()).collect();
    by_size.sort_by_key(|&i| (sizes[i], i));
    let n = by_size.len();
    let picks = [
        n / 20,
        n * 3 / 10,
        n * 6 / 10,
        n * 85 / 100,
        n * 97 / 100,
        n - 2,
    ];
    picks
        .iter()
        .enumerate()
        .map(|(k, &rank)| {
            let path = &files[by_size[rank]];
            let algorithm = if k % 2 == 0 {
                Algorithm::Md5
            } else {
                Algorithm::Sha256
            };
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let digested = digest_reader(file, AlgorithmSet::EMPTY.with(algorithm))
                .with_context(|| format!("reading {}", path.display()))?;
            let digest = digested
                .digests
                .get(algorithm)
                .with_context(|| format!("{}: no {algorithm:?} digest", path.display()))?;
            Ok((path.clone(), digest))
        })
        .collect()
}

/// Digest `index` of the list: half MD5, half SHA-256, random bytes.
fn list_digest(index: u64) -> Digest {
    let mut rng = SplitMix64::new(LIST_SEED ^ mix64(index));
    let algorithm = if rng.next_u64() & 1 == 0 {
        Algorithm::Md5
    } else {
        Algorithm::Sha256
    };
    let mut raw = [0u8; 32];
    for chunk in raw.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    Digest::new(algorithm, &raw[..algorithm.byte_len()]).expect("the algorithm's length")
}

/// The hash list as a plain list for hashgate and as ClamAV hash signatures (`.hdb` for MD5,
/// `.hsb` for SHA-256): `entries` generated digests and the planted ones, in `work`.
fn write_lists(
    work: &Path,
    entries: u64,
    planted: &[(PathBuf, Digest)],
) -> Result<(PathBuf, PathBuf)> {
    let plain_path = work.join("list.txt");
    let sig_dir = work.join("clamav");
    std::fs::create_dir_all(&sig_dir).with_context(|| format!("creating {}", sig_dir.display()))?;
    let create = |path: &Path| -> Result<BufWriter<File>> {
        Ok(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ))
    };
    let mut plain = create(&plain_path)?;
    let mut hdb = create(&sig_dir.join("hashgate.hdb"))?;
    let mut hsb = create(&sig_dir.join("hashgate.hsb"))?;
    // Hash lists carry no file sizes, so every signature has the wildcard size `*`, which
    // ClamAV accepts from functionality level 73 (0.98) on.
    let mut write = |digest: &Digest, name: &str| -> std::io::Result<()> {
        writeln!(plain, "{}", digest.to_hex())?;
        let sigs = if digest.algorithm() == Algorithm::Md5 {
            &mut hdb
        } else {
            &mut hsb
        };
        writeln!(sigs, "{}:*:{name}:73", digest.to_hex())
    };
    for i in 0..entries {
        write(&list_digest(i), &format!("HG.List.{i}"))
            .with_context(|| format!("writing the lists in {}", work.display()))?;
    }
    for (k, (_, digest)) in planted.iter().enumerate() {
        write(digest, &format!("HG.Planted.{k}"))
            .with_context(|| format!("writing the lists in {}", work.display()))?;
    }
    for (out, path) in [
        (plain, plain_path.clone()),
        (hdb, sig_dir.join("hashgate.hdb")),
        (hsb, sig_dir.join("hashgate.hsb")),
    ] {
        out.into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok((plain_path, sig_dir))
}

/// ClamAV options: no size limit below the largest file, and every content scanner that
/// hash signatures do not need switched off (none of them would find anything in random
/// bytes; switching them off only spares clamscan work).
const CLAMSCAN_OPTIONS: &[&str] = &[
    "--no-summary",
    "--max-filesize=2000M",
    "--max-scansize=2000M",
    "--max-scantime=0",
    "--bytecode=no",
    "--heuristic-alerts=no",
    "--scan-archive=no",
    "--scan-pe=no",
    "--scan-elf=no",
    "--scan-ole2=no",
    "--scan-pdf=no",
    "--scan-html=no",
    "--scan-mail=no",
    "--scan-image=no",
    "--scan-image-fuzzy-hash=no",
];

/// One target of the comparison and its timings.
pub struct Target {
    name: String,
    files: usize,
    bytes: u64,
    planted: usize,
    rows: Vec<Row>,
}

/// Row order of every target.
const HASHGATE: usize = 0;
const MD5SUM: usize = 1;
const CLAMSCAN: usize = 2;

pub struct CorpusReport {
    distribution: String,
    entries: u64,
    md5_entries: u64,
    runs: usize,
    targets: Vec<Target>,
    /// `clamscan` on an empty directory: loading the signatures alone.
    clam_load: Row,
}

pub fn run(
    hashgate: &Path,
    data_dir: &Path,
    big_file: &Path,
    sizes: &Sizes,
) -> Result<CorpusReport> {
    let corpus = corpus(data_dir, sizes.corpus)?;
    let work = fresh_dir(&data_dir.join("corpus-scan"))?;
    crate::progress(format_args!(
        "writing a list of {} digests and its ClamAV signatures",
        thousands(sizes.list_entries as f64)
    ));
    let (list, sig_dir) = write_lists(&work, sizes.list_entries, &corpus.planted)?;
    let md5_entries = (0..sizes.list_entries)
        .filter(|&i| list_digest(i).algorithm() == Algorithm::Md5)
        .count() as u64;
    crate::progress("importing the list with hashgate lists import --db");
    let db = import_db(hashgate, &work.join("db"), &list)?;
    let empty = fresh_dir(&work.join("empty"))?;

    let mut targets = Vec::new();
    let big_bytes = std::fs::metadata(big_file)
        .with_context(|| format!("reading {}", big_file.display()))?
        .len();
    for (name, dir, files, bytes, planted) in [
        (
            format!(
                "the corpus: {} files, {}",
                thousands(corpus.files.len() as f64),
                size(corpus.bytes)
            ),
            corpus.dir.clone(),
            corpus.files.clone(),
            corpus.bytes,
            corpus.planted.clone(),
        ),
        (
            format!("one {} file", size(big_bytes)),
            big_file.to_owned(),
            vec![big_file.to_owned()],
            big_bytes,
            Vec::new(),
        ),
    ] {
        crate::progress(format_args!(
            "warming the page cache with {}",
            dir.display()
        ));
        for file in &files {
            let mut f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
            std::io::copy(&mut f, &mut std::io::sink())
                .with_context(|| format!("reading {}", file.display()))?;
        }
        let contenders = contenders(hashgate, &db, &sig_dir, &dir, &files, &planted);
        let rows = time_alternating(
            &contenders,
            sizes.corpus_runs,
            &fresh_dir(&work.join("runs"))?,
        )?;
        targets.push(Target {
            name,
            files: files.len(),
            bytes,
            planted: planted.len(),
            rows,
        });
    }
    let clam_load = time_alternating(
        &[Contender::new(
            "clamscan -d SIGDIR EMPTY-DIR",
            "(signature load only)",
            "clamscan",
            &[&"--no-summary", &"-d", &sig_dir, &"-r", &empty],
        )],
        sizes.corpus_runs,
        &fresh_dir(&work.join("clamscan-load"))?,
    )?
    .remove(0);
    std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    Ok(CorpusReport {
        distribution: describe_buckets(sizes.corpus),
        entries: sizes.list_entries + corpus.planted.len() as u64,
        md5_entries,
        runs: sizes.corpus_runs,
        targets,
        clam_load,
    })
}

/// hashgate, md5sum and clamscan on `target` (a directory or a file), each checked against
/// the planted files after every run.
fn contenders(
    hashgate: &Path,
    db: &Path,
    sig_dir: &Path,
    target: &Path,
    files: &[PathBuf],
    planted: &[(PathBuf, Digest)],
) -> Vec<Contender> {
    let expected: BTreeSet<String> = planted
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    let md5s: Vec<String> = planted
        .iter()
        .filter(|(_, d)| d.algorithm() == Algorithm::Md5)
        .map(|(p, d)| format!("{}  {}", d.to_hex(), p.display()))
        .collect();
    let file_count = files.len();

    let hashgate_expected = expected.clone();
    let hashgate_row = Contender::new(
        "hashgate scan --db DIR TARGET",
        "MD5, SHA-256",
        hashgate,
        &[&"scan", &"--db", &db, &target],
    )
    .ok_codes(&[0, 1])
    .checked(move |out| {
        let lines = out.lines().count();
        ensure!(
            lines == file_count,
            "{lines} result lines for {file_count} files"
        );
        let found: BTreeSet<String> = out
            .lines()
            .filter_map(|l| l.strip_prefix("MATCH  "))
            .filter_map(|l| l.split("  (").next())
            .map(str::to_owned)
            .collect();
        same_files("hashgate scan", &found, &hashgate_expected)
    });

    let md5sum_row = Contender::new("md5sum FILES", "MD5", "md5sum", &[])
        .with_args(files)
        .checked(move |out| {
            let lines = out.lines().count();
            ensure!(
                lines == file_count,
                "{lines} digests for {file_count} files"
            );
            for line in &md5s {
                ensure!(
                    out.lines().any(|l| l == line),
                    "md5sum did not print the planted file's digest {line:?}"
                );
            }
            Ok(())
        });

    let mut clam_args: Vec<&dyn AsRef<std::ffi::OsStr>> = Vec::new();
    for option in CLAMSCAN_OPTIONS {
        clam_args.push(option);
    }
    clam_args.extend([
        &"-d" as &dyn AsRef<std::ffi::OsStr>,
        &sig_dir,
        &"-r",
        &target,
    ]);
    let clam_row = Contender::new(
        "clamscan -d SIGDIR -r TARGET",
        "MD5, SHA-256",
        "clamscan",
        &clam_args,
    )
    .ok_codes(&[0, 1])
    .checked(move |out| {
        let found: BTreeSet<String> = out
            .lines()
            .filter(|l| l.ends_with(" FOUND"))
            .filter_map(|l| l.rsplit_once(": ").map(|(path, _)| path.to_owned()))
            .collect();
        let scanned = out.lines().count();
        ensure!(
            scanned == file_count,
            "{scanned} result lines for {file_count} files"
        );
        same_files("clamscan", &found, &expected)
    });

    // In the order of the row constants.
    vec![hashgate_row, md5sum_row, clam_row]
}

/// An error naming what `scanner` found that it should not have, and what it missed.
fn same_files(scanner: &str, found: &BTreeSet<String>, expected: &BTreeSet<String>) -> Result<()> {
    let extra: Vec<_> = found.difference(expected).collect();
    let missed: Vec<_> = expected.difference(found).collect();
    ensure!(
        extra.is_empty() && missed.is_empty(),
        "{scanner} disagrees with the planted files: reported but not planted {extra:?}, \
         planted but not reported {missed:?}"
    );
    Ok(())
}

impl Target {
    fn mb_per_sec(&self, row: &Row) -> Samples {
        let megabytes = self.bytes as f64 / 1e6;
        row.seconds.map(|secs| megabytes / secs)
    }

    /// hashgate's throughput relative to `row`'s, round by round.
    fn hashgate_over(&self, row: usize) -> Samples {
        self.rows[row]
            .seconds
            .ratio_to(&self.rows[HASHGATE].seconds)
    }

    /// hashgate's CPU seconds per byte (median), for the cost model.
    pub fn hashgate_cpu_secs_per_byte(&self) -> Option<f64> {
        let cpu = self.rows[HASHGATE].cpu_seconds.as_ref()?;
        Some(cpu.median() / self.bytes as f64)
    }
}

impl CorpusReport {
    /// The corpus target (the first).
    pub fn corpus(&self) -> &Target {
        &self.targets[0]
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "### Full-read scanning against a list of {} digests: `hashgate scan`, `md5sum`, `clamscan`\n",
            thousands(self.entries as f64)
        );
        let _ = writeln!(
            md,
            "The list: {} MD5 and {} SHA-256 digests (random, plus the planted files'), \
             imported with `hashgate lists import --db`, and for ClamAV {} as hash signatures \
             only (`.hdb` for MD5, `.hsb` for SHA-256, each `HASH:*:NAME:73`: the wildcard size, \
             as hash lists carry no sizes), loaded with `-d SIGDIR` so no other database is read. \
             clamscan runs with `{}`. The corpus ({}; sizes log-uniform within each range, file \
             order shuffled, pseudo-random contents from fixed seeds) and the large file are in \
             the page cache. Each target has planted files whose digests are on the list: every \
             run of hashgate and clamscan must report exactly those, and md5sum must print their \
             MD5s, or the benchmark fails. The commands alternate, R = {}; MB = 10^6 bytes; CPU \
             is user + system time; peak RSS is the largest of the R runs.\n",
            thousands(self.md5_entries as f64),
            thousands((self.entries - self.md5_entries) as f64),
            thousands(self.entries as f64),
            CLAMSCAN_OPTIONS.join(" "),
            self.distribution,
            self.runs,
        );
        for target in &self.targets {
            let _ = writeln!(md, "**{}** ({} planted):\n", target.name, target.planted);
            let _ = writeln!(
                md,
                "| command | digests | MB/s | files/s | wall s | CPU s | peak RSS MiB |"
            );
            let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|");
            for row in &target.rows {
                // Files per second says nothing about a single file.
                let files_per_sec = if target.files > 1 {
                    row.seconds
                        .map(|s| target.files as f64 / s)
                        .show_thousands()
                } else {
                    "–".to_owned()
                };
                let _ = writeln!(
                    md,
                    "| `{}` | {} | {} | {} | {} | {} | {} |",
                    row.command,
                    row.digests,
                    target.mb_per_sec(row).show(0),
                    files_per_sec,
                    row.seconds.show(2),
                    show_cpu(row),
                    show_rss(row),
                );
            }
            let md5 = target.hashgate_over(MD5SUM);
            let clam = target.hashgate_over(CLAMSCAN);
            let _ = writeln!(
                md,
                "\nThroughput of hashgate / md5sum: **{}** (goal ≥ {GOAL_MD5SUM}: {}); \
                 hashgate / clamscan: **{}** (goal ≥ {GOAL_CLAMSCAN}: {}).\n",
                md5.show(2),
                verdict(md5.median(), GOAL_MD5SUM),
                clam.show(1),
                verdict(clam.median(), GOAL_CLAMSCAN),
            );
        }
        let _ = writeln!(
            md,
            "Loading the {} signatures alone (`clamscan` on an empty directory): {} s wall, \
             {} CPU s, peak RSS {} MiB; this is part of every clamscan run above.",
            thousands(self.entries as f64),
            self.clam_load.seconds.show(2),
            show_cpu(&self.clam_load),
            show_rss(&self.clam_load),
        );
        md
    }
}

fn verdict(value: f64, goal: f64) -> &'static str {
    if value >= goal {
        "met"
    } else {
        "missed"
    }
}

fn show_cpu(row: &Row) -> String {
    row.cpu_seconds
        .as_ref()
        .map_or_else(|| "n/a".to_owned(), |s| s.show(2))
}

fn show_rss(row: &Row) -> String {
    row.peak_rss_kib
        .map_or_else(|| "n/a".to_owned(), |kib| format!("{:.0}", mib(kib * 1024)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_buckets() {
        let sizes = file_sizes(FULL_CORPUS);
        assert_eq!(sizes.len(), 10_000);
        assert_eq!(*sizes.iter().min().unwrap(), KIB);
        assert_eq!(*sizes.iter().max().unwrap(), 256 * MIB);
        let total: u64 = sizes.iter().sum();
        assert!((2 << 30..4 << 30).contains(&total), "{total}");
        assert_eq!(sizes, file_sizes(FULL_CORPUS), "deterministic");
        let small = sizes.iter().filter(|&&s| s < 16 * KIB).count();
        assert_eq!(small, 5_500);
    }

    #[test]
    fn list_digests_mix_md5_and_sha256() {
        let md5 = (0..1000)
            .filter(|&i| list_digest(i).algorithm() == Algorithm::Md5)
            .count();
        assert!((400..600).contains(&md5), "{md5}");
        assert!((0..1000).all(|i| list_digest(i).algorithm() != Algorithm::Sha1));
    }
}
