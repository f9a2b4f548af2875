//! Scan throughput: `hashgate scan` against `md5sum` (and `sha256sum`) on one large file in
//! the page cache, each command a child process, the commands alternating run by run; and
//! against what the CPU allows, measured in the same rounds with `openssl dgst` (MD5, SHA-1,
//! SHA-256): the slowest digest on one core, or the three over all cores, whichever is longer.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{ensure, Context, Result};

use crate::data::{self, FILE_SEED};
use crate::stats::{size, Samples};
use crate::Sizes;

/// Measures peak RSS of a child (Debian package `time`).
const TIME_TOOL: &str = "/usr/bin/time";
/// Throughput hashgate should reach, all three digests on, relative to `md5sum`.
const GOAL_RATIO: f64 = 0.9;
/// Throughput hashgate should reach, all three digests on, relative to the CPU's limit.
const GOAL_LIMIT_RATIO: f64 = 0.9;

/// Lists that make a scan compute every digest: one entry per algorithm (the digests of
/// "abc", which the random file does not have).
const LIST_ALL: &str = "900150983cd24fb0d6963f7d28e17f72\n\
                        a9993e364706816aba3e25717850c26c9cd0d89d\n\
                        ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n";
/// Lists with MD5 entries only.
const LIST_MD5: &str = "900150983cd24fb0d6963f7d28e17f72\n";

/// Rows of the report: the reference, then hashgate with every digest and with MD5 only,
/// `sha256sum`, then OpenSSL's three digests, which give the limit.
const MD5SUM: usize = 0;
const HASHGATE_ALL: usize = 1;
const HASHGATE_MD5: usize = 2;
const OPENSSL: [usize; 3] = [4, 5, 6];

/// Checks a contender's standard output after every run; an error fails the benchmark.
pub type OutputCheck = Box<dyn Fn(&str) -> Result<()>>;

/// One command line to time.
pub struct Contender {
    /// How the report shows it.
    pub command: &'static str,
    pub digests: &'static str,
    program: OsString,
    args: Vec<OsString>,
    /// Exit codes that mean success (a scanner that found something exits 1).
    ok_codes: Vec<i32>,
    check: Option<OutputCheck>,
}

impl Contender {
    pub fn new(
        command: &'static str,
        digests: &'static str,
        program: impl AsRef<OsStr>,
        args: &[&dyn AsRef<OsStr>],
    ) -> Contender {
        Contender {
            command,
            digests,
            program: program.as_ref().to_owned(),
            args: args.iter().map(|a| a.as_ref().to_owned()).collect(),
            ok_codes: vec![0],
            check: None,
        }
    }

    /// More arguments, e.g. one per file.
    pub fn with_args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Contender {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Also accept these exit codes as success.
    pub fn ok_codes(mut self, codes: &[i32]) -> Contender {
        self.ok_codes = codes.to_vec();
        self
    }

    /// Check the standard output of every run with `check`.
    pub fn checked(mut self, check: impl Fn(&str) -> Result<()> + 'static) -> Contender {
        self.check = Some(Box::new(check));
        self
    }
}

/// The timings of one contender.
pub struct Row {
    pub command: &'static str,
    pub digests: &'static str,
    pub seconds: Samples,
    /// The wall clock of each round, in order: for figures that combine rows round by round.
    pub round_seconds: Vec<f64>,
    pub cpu_seconds: Option<Samples>,
    pub peak_rss_kib: Option<u64>,
}

pub struct ScanReport {
    /// The scanned file (kept for the next run).
    pub file: PathBuf,
    file_bytes: u64,
    rows: Vec<Row>,
    cores: usize,
    sha_extensions: ShaExtensions,
    /// OpenSSL's CPU capability mask, if one was set (to measure without SHA instructions,
    /// say, on a CPU that has them).
    cpu_mask: Option<String>,
}

pub fn run(hashgate: &Path, data_dir: &Path, sizes: &Sizes) -> Result<ScanReport> {
    let file_bytes = sizes.scan_file_bytes;
    let file = data::cached_file(
        data_dir,
        &format!("random-{file_bytes}-{FILE_SEED:x}.bin"),
        |out| data::write_random_bytes(out, file_bytes, FILE_SEED),
    )?;
    let work = fresh_dir(&data_dir.join("scan"))?;
    let db_all = hash_db(hashgate, &work, "all", LIST_ALL)?;
    let db_md5 = hash_db(hashgate, &work, "md5", LIST_MD5)?;
    // In the order of the row constants above.
    let contenders = [
        Contender::new("md5sum FILE", "MD5", "md5sum", &[&file]),
        Contender::new(
            "hashgate scan --db DIR FILE",
            "MD5, SHA-1, SHA-256",
            hashgate,
            &[&"scan", &"--db", &db_all, &file],
        ),
        Contender::new(
            "hashgate scan --digests md5 --db DIR FILE",
            "MD5 (MD5-only lists)",
            hashgate,
            &[&"scan", &"--digests", &"md5", &"--db", &db_md5, &file],
        ),
        Contender::new("sha256sum FILE", "SHA-256", "sha256sum", &[&file]),
        Contender::new(
            "openssl dgst -md5 FILE",
            "MD5",
            "openssl",
            &[&"dgst", &"-md5", &file],
        ),
        Contender::new(
            "openssl dgst -sha1 FILE",
            "SHA-1",
            "openssl",
            &[&"dgst", &"-sha1", &file],
        ),
        Contender::new(
            "openssl dgst -sha256 FILE",
            "SHA-256",
            "openssl",
            &[&"dgst", &"-sha256", &file],
        ),
    ];

    warm_page_cache(&file)?;
    let rows = time_alternating(&contenders, sizes.scan_runs, &work)?;
    std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    Ok(ScanReport {
        file,
        file_bytes,
        rows,
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        sha_extensions: ShaExtensions::detect(),
        cpu_mask: std::env::var("OPENSSL_ia32cap").ok(),
    })
}

/// Whether the CPU has SHA instructions, from the kernel's view of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShaExtensions {
    /// x86 `sha_ni`, or aarch64 `sha1` and `sha2`.
    Yes,
    No,
    Unknown,
}

impl ShaExtensions {
    fn detect() -> ShaExtensions {
        std::fs::read_to_string("/proc/cpuinfo")
            .map_or(ShaExtensions::Unknown, |info| ShaExtensions::parse(&info))
    }

    /// The first `flags` line (x86) or `Features` line (aarch64) of `/proc/cpuinfo`.
    fn parse(cpuinfo: &str) -> ShaExtensions {
        let line = cpuinfo.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            matches!(key.trim(), "flags" | "Features").then_some(value)
        });
        let Some(line) = line else {
            return ShaExtensions::Unknown;
        };
        let has = |flag: &str| line.split_whitespace().any(|f| f == flag);
        if has("sha_ni") || (has("sha1") && has("sha2")) {
            ShaExtensions::Yes
        } else {
            ShaExtensions::No
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ShaExtensions::Yes => "yes (`sha_ni` on x86, `sha1` and `sha2` on aarch64)",
            ShaExtensions::No => "no (neither `sha_ni` nor aarch64 `sha1`/`sha2`)",
            ShaExtensions::Unknown => "unknown (no flags in /proc/cpuinfo)",
        }
    }
}

/// `dir`, empty.
pub fn fresh_dir(dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.to_owned())
}

/// A hash database `work/NAME-db` with the digests of `list`, made the way an operator
/// makes one: `hashgate lists import`.
fn hash_db(hashgate: &Path, work: &Path, name: &str, list: &str) -> Result<PathBuf> {
    let list_file = work.join(format!("{name}.txt"));
    std::fs::write(&list_file, list).with_context(|| format!("writing {}", list_file.display()))?;
    import_db(hashgate, &work.join(format!("{name}-db")), &list_file)
}

/// A hash database `db` made from the list file `list_file` with `hashgate lists import`.
pub fn import_db(hashgate: &Path, db: &Path, list_file: &Path) -> Result<PathBuf> {
    let db = db.to_owned();
    let output = Command::new(hashgate)
        .args(["lists", "import", "--db"])
        .arg(&db)
        .arg(list_file)
        .output()
        .with_context(|| format!("running {}", hashgate.display()))?;
    ensure!(
        output.status.success(),
        "hashgate lists import --db {} {} failed ({}): {}",
        db.display(),
        list_file.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(db)
}

/// One untimed read, so every timed run finds the file in memory.
fn warm_page_cache(file: &Path) -> Result<()> {
    crate::progress(format_args!(
        "warming the page cache with {}",
        file.display()
    ));
    let mut f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    std::io::copy(&mut f, &mut std::io::sink())
        .with_context(|| format!("reading {}", file.display()))?;
    Ok(())
}

/// `runs` rounds, each running every contender once, in order; `work` takes the children's
/// notes (resource usage, standard error).
pub fn time_alternating(contenders: &[Contender], runs: usize, work: &Path) -> Result<Vec<Row>> {
    let time_tool = Path::new(TIME_TOOL)
        .is_file()
        .then_some(Path::new(TIME_TOOL));
    if time_tool.is_none() {
        crate::progress(format_args!(
            "{TIME_TOOL} is missing (apt-get install time): no CPU time or peak RSS figures"
        ));
    }
    let mut measured: Vec<Vec<ChildRun>> = contenders.iter().map(|_| Vec::new()).collect();
    for round in 1..=runs {
        crate::progress(format_args!(
            "{}: round {round} of {runs}",
            work.file_name()
                .map_or_else(|| "scan".into(), |n| n.to_string_lossy())
        ));
        for (contender, runs) in contenders.iter().zip(&mut measured) {
            runs.push(time_child(contender, time_tool, work)?);
        }
    }
    Ok(contenders
        .iter()
        .zip(measured)
        .map(|(contender, runs)| Row::new(contender, &runs))
        .collect())
}

/// One timed run of a child process.
struct ChildRun {
    wall_secs: f64,
    /// From the time tool, if there is one.
    usage: Option<Usage>,
}

/// What `/usr/bin/time` reports about a child.
#[derive(Clone, Copy)]
struct Usage {
    /// User plus system CPU time.
    cpu_secs: f64,
    peak_rss_kib: u64,
}

/// The format that [`Usage::parse`] reads.
const USAGE_FORMAT: &str = "%U %S %M";

impl Usage {
    /// The last line of the time tool's output file (earlier lines are its notes).
    fn parse(text: &str) -> Option<Usage> {
        let mut fields = text.lines().last()?.split_whitespace();
        let user: f64 = fields.next()?.parse().ok()?;
        let system: f64 = fields.next()?.parse().ok()?;
        let peak_rss_kib = fields.next()?.parse().ok()?;
        Some(Usage {
            cpu_secs: user + system,
            peak_rss_kib,
        })
    }
}

impl Row {
    fn new(contender: &Contender, runs: &[ChildRun]) -> Row {
        let usage: Option<Vec<Usage>> = runs.iter().map(|r| r.usage).collect();
        Row {
            command: contender.command,
            digests: contender.digests,
            seconds: Samples::new(runs.iter().map(|r| r.wall_secs).collect()),
            round_seconds: runs.iter().map(|r| r.wall_secs).collect(),
            cpu_seconds: usage
                .as_ref()
                .map(|u| Samples::new(u.iter().map(|u| u.cpu_secs).collect())),
            peak_rss_kib: usage.and_then(|u| u.iter().map(|u| u.peak_rss_kib).max()),
        }
    }
}

/// Runs `contender` once: wall clock around the child process and, with `time_tool`, its
/// CPU time and peak RSS.
fn time_child(contender: &Contender, time_tool: Option<&Path>, work: &Path) -> Result<ChildRun> {
    let usage_file = work.join("usage.txt");
    let stdout_file = work.join("stdout.txt");
    let stderr_file = work.join("stderr.txt");
    let mut command = match time_tool {
        Some(tool) => {
            let mut c = Command::new(tool);
            c.args(["-f", USAGE_FORMAT, "-o"])
                .arg(&usage_file)
                .arg(&contender.program);
            c
        }
        None => Command::new(&contender.program),
    };
    command
        .args(&contender.args)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_file)?)
        .stderr(File::create(&stderr_file)?);

    let started = Instant::now();
    let status = command
        .status()
        .with_context(|| format!("running {}", contender.command))?;
    let wall_secs = started.elapsed().as_secs_f64();

    ensure!(
        status
            .code()
            .is_some_and(|code| contender.ok_codes.contains(&code)),
        "{} failed ({status}): {}",
        contender.command,
        std::fs::read_to_string(&stderr_file).unwrap_or_default()
    );
    if let Some(check) = &contender.check {
        let stdout = std::fs::read_to_string(&stdout_file)
            .with_context(|| format!("reading {}", stdout_file.display()))?;
        check(&stdout).with_context(|| format!("checking the output of {}", contender.command))?;
    }
    let usage = match time_tool {
        Some(_) => {
            let text = std::fs::read_to_string(&usage_file)?;
            let usage = Usage::parse(&text).with_context(|| {
                format!("{}: not \"{USAGE_FORMAT}\": {text:?}", usage_file.display())
            })?;
            Some(usage)
        }
        None => None,
    };
    Ok(ChildRun { wall_secs, usage })
}

impl ScanReport {
    /// Throughput in MB/s (10^6 bytes) of every run of `row`.
    fn mb_per_sec(&self, row: &Row) -> Samples {
        let megabytes = self.file_bytes as f64 / 1e6;
        row.seconds.map(|secs| megabytes / secs)
    }

    /// The throughput of row `row` relative to `md5sum`'s, round by round.
    fn ratio_to_md5sum(&self, row: usize) -> Samples {
        self.rows[MD5SUM].seconds.ratio_to(&self.rows[row].seconds)
    }

    /// The shortest time the three digests can take on this CPU, round by round: OpenSSL's
    /// slowest digest on one core, or the three together spread over every core.
    fn limit_seconds(&self) -> Samples {
        let rounds = self.rows[OPENSSL[0]].round_seconds.len();
        Samples::new(
            (0..rounds)
                .map(|round| {
                    let times: Vec<f64> = OPENSSL
                        .iter()
                        .map(|&row| self.rows[row].round_seconds[round])
                        .collect();
                    limit(&times, self.cores)
                })
                .collect(),
        )
    }

    pub fn markdown(&self) -> String {
        let runs = self.rows[MD5SUM].seconds.runs();
        let mut md = String::new();
        let _ = writeln!(
            md,
            "### Scan throughput: `hashgate scan` against `md5sum` and the CPU's limit\n"
        );
        let _ = writeln!(
            md,
            "One {} file of pseudo-random bytes, in the page cache (one untimed read \
             first). The commands alternate, R = {runs}; wall clock of each child process; \
             MB = 10^6 bytes; CPU is user + system time; peak RSS is the largest of the R \
             runs.\n",
            size(self.file_bytes)
        );
        let _ = writeln!(
            md,
            "| command | digests | MB/s | wall s | CPU s | peak RSS MiB |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|");
        for row in &self.rows {
            let cpu = row
                .cpu_seconds
                .as_ref()
                .map_or_else(|| "n/a".to_owned(), |s| s.show(2));
            let rss = row.peak_rss_kib.map_or_else(
                || "n/a".to_owned(),
                |kib| format!("{:.0}", kib as f64 / 1024.0),
            );
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} | {cpu} | {rss} |",
                row.command,
                row.digests,
                self.mb_per_sec(row).show(0),
                row.seconds.show(2),
            );
        }
        let all = self.ratio_to_md5sum(HASHGATE_ALL);
        let verdict = if all.median() >= GOAL_RATIO {
            "goal met"
        } else {
            "goal missed"
        };
        let _ = writeln!(
            md,
            "\n**Throughput of `hashgate scan` with all three digests / `md5sum`: {}; \
             goal ≥ {GOAL_RATIO}: {verdict}.** With MD5 only: {}.",
            all.show(2),
            self.ratio_to_md5sum(HASHGATE_MD5).show(2)
        );
        let limit = self.limit_seconds();
        let to_limit = limit.ratio_to(&self.rows[HASHGATE_ALL].seconds);
        let verdict = if to_limit.median() >= GOAL_LIMIT_RATIO {
            "goal met"
        } else {
            "goal missed"
        };
        let _ = writeln!(
            md,
            "\nThe limit, round by round: the longest of the three `openssl dgst` times (the \
             slowest digest on one core) or their sum over the {} cores, whichever is longer: \
             {} s. CPU with SHA extensions: {}{}.\n\n\
             **Throughput of `hashgate scan` with all three digests / the limit: {}; \
             goal ≥ {GOAL_LIMIT_RATIO}: {verdict}.**",
            self.cores,
            limit.show(2),
            self.sha_extensions.describe(),
            self.cpu_mask
                .as_deref()
                .map(|mask| format!(
                    "; but `OPENSSL_ia32cap={mask}` was set for the run, so OpenSSL, in \
                     hashgate and `openssl dgst` alike, used only the instructions it left"
                ))
                .unwrap_or_default(),
            to_limit.show(2),
        );
        md
    }
}

/// The shortest time `times` (one per digest, each on one core) allow on `cores` cores.
fn limit(times: &[f64], cores: usize) -> f64 {
    let slowest = times.iter().copied().fold(0.0, f64::max);
    let spread = times.iter().sum::<f64>() / cores.max(1) as f64;
    slowest.max(spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_the_last_line() {
        let u = Usage::parse("Command exited with non-zero status 1\n1.50 0.25 7168\n").unwrap();
        assert_eq!((u.cpu_secs, u.peak_rss_kib), (1.75, 7168));
        assert!(Usage::parse("").is_none());
        assert!(Usage::parse("1.5 x 7").is_none());
    }

    #[test]
    fn the_limit_is_the_slowest_digest_or_the_sum_over_the_cores() {
        assert_eq!(limit(&[2.8, 3.4, 6.7], 2), 6.7);
        assert_eq!(limit(&[1.4, 0.6, 0.6], 2), 1.4);
        assert_eq!(limit(&[2.0, 2.0, 2.0], 2), 3.0);
        assert_eq!(limit(&[2.0, 2.0, 2.0], 4), 2.0);
        assert_eq!(limit(&[2.0, 1.0, 3.0], 1), 6.0);
    }

    #[test]
    fn sha_extensions_from_cpuinfo() {
        let x86 = "processor\t: 0\nflags\t\t: fpu sse2 ssse3 avx2 sha_ni\nbugs\t\t: \n";
        assert_eq!(ShaExtensions::parse(x86), ShaExtensions::Yes);
        let old_x86 = "flags\t\t: fpu sse2 ssse3 avx2 avx512f\n";
        assert_eq!(ShaExtensions::parse(old_x86), ShaExtensions::No);
        let arm = "processor\t: 0\nFeatures\t: fp asimd aes pmull sha1 sha2 crc32\n";
        assert_eq!(ShaExtensions::parse(arm), ShaExtensions::Yes);
        let arm_sha1_only = "Features\t: fp asimd sha1\n";
        assert_eq!(ShaExtensions::parse(arm_sha1_only), ShaExtensions::No);
        assert_eq!(
            ShaExtensions::parse("model name: x\n"),
            ShaExtensions::Unknown
        );
    }
}
