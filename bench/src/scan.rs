//! Scan throughput: `hashgate scan` against `md5sum` (and `sha256sum`) on one large file in
//! the page cache, each command a child process, the commands alternating run by run.

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

/// Lists that make a scan compute every digest: one entry per algorithm (the digests of
/// "abc", which the random file does not have).
const LIST_ALL: &str = "900150983cd24fb0d6963f7d28e17f72\n\
                        a9993e364706816aba3e25717850c26c9cd0d89d\n\
                        ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n";
/// Lists with MD5 entries only.
const LIST_MD5: &str = "900150983cd24fb0d6963f7d28e17f72\n";

/// Rows of the report: the reference, then hashgate with every digest and with MD5 only.
const MD5SUM: usize = 0;
const HASHGATE_ALL: usize = 1;
const HASHGATE_MD5: usize = 2;

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
    pub cpu_seconds: Option<Samples>,
    pub peak_rss_kib: Option<u64>,
}

pub struct ScanReport {
    /// The scanned file (kept for the next run).
    pub file: PathBuf,
    file_bytes: u64,
    rows: Vec<Row>,
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
    ];

    warm_page_cache(&file)?;
    let rows = time_alternating(&contenders, sizes.scan_runs, &work)?;
    std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    Ok(ScanReport {
        file,
        file_bytes,
        rows,
    })
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

    pub fn markdown(&self) -> String {
        let runs = self.rows[MD5SUM].seconds.runs();
        let mut md = String::new();
        let _ = writeln!(
            md,
            "### Scan throughput: `hashgate scan` against `md5sum`\n"
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
        md
    }
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
}
