//! Cold start with a full-size filter: from process start to the first scan decision.
//!
//! - Local: `hashgate scan --db DIR FILE` on one small file, with the full-size database and
//!   its filter, next to the same command with a one-entry database (what the rest costs).
//! - On the local stack: the `scanner` worker started against the emulator with a published
//!   full-size filter snapshot and one upload waiting in the scan queue; timed from spawn to
//!   the log line saying the filter was loaded, and to the upload's scan report. Next to the
//!   same with a one-entry filter.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use aws_sdk_s3::primitives::ByteStream;
use hashgate_aws::publisher::Publisher;
use hashgate_core::digest::{digest_bytes, AlgorithmSet};
use hashgate_core::filter::{FilterSnapshot, DEFAULT_FP_RATE};
use hashgate_core::manifest::TrustedKeys;
use hashgate_core::{Algorithm, Digest};
use hashgate_e2e::{bin, Stack};

use crate::data::{generated_digest, write_random_bytes, MEMBER_SEED};
use crate::scan::{fresh_dir, import_db, time_alternating, Contender, Row};
use crate::stats::{mib, thousands, Samples};

/// Longest wait for one cold start on the emulator.
const STACK_TIMEOUT: Duration = Duration::from_secs(180);

pub struct LocalColdStart {
    entries: u64,
    rows: Vec<Row>,
    filter_load_ms: Option<Samples>,
}

/// `hashgate scan` of one 4 KiB file against the database in `full_dir` (full size, filter
/// built, closed by this process) and against a one-entry database, R times each,
/// alternating.
pub fn run_local(
    hashgate: &Path,
    data_dir: &Path,
    full_dir: &Path,
    entries: u64,
    runs: usize,
    filter_load_ms: Option<Samples>,
) -> Result<LocalColdStart> {
    let work = fresh_dir(&data_dir.join("coldstart"))?;
    let file = work.join("upload.bin");
    let mut bytes = Vec::new();
    write_random_bytes(&mut bytes, 4096, 0x636f_6c64)?;
    std::fs::write(&file, &bytes).with_context(|| format!("writing {}", file.display()))?;
    let one_list = work.join("one.txt");
    std::fs::write(
        &one_list,
        format!("{}\n", generated_digest(MEMBER_SEED, 0).to_hex()),
    )
    .with_context(|| format!("writing {}", one_list.display()))?;
    let one_db = import_db(hashgate, &work.join("one-db"), &one_list)?;
    let contenders = [
        Contender::new(
            "hashgate scan --db FULL-DB FILE",
            "full-size database",
            hashgate,
            &[&"scan", &"--db", &full_dir, &file],
        ),
        Contender::new(
            "hashgate scan --db ONE-ENTRY-DB FILE",
            "one-entry database",
            hashgate,
            &[&"scan", &"--db", &one_db, &file],
        ),
    ];
    let rows = time_alternating(&contenders, runs, &fresh_dir(&work.join("runs"))?)?;
    std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    Ok(LocalColdStart {
        entries,
        rows,
        filter_load_ms,
    })
}

impl LocalColdStart {
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "### Cold start: local database\n");
        let _ = writeln!(
            md,
            "`hashgate scan --db DIR FILE` on one 4 KiB file: the whole process, from start to \
             its verdict (open the store, load and check the filter, hash, decide, print), \
             with the {}-entry database and filter from above and, for comparison, a \
             one-entry database. Page cache warm. R = {}.\n",
            thousands(self.entries as f64),
            self.rows[0].seconds.runs()
        );
        let _ = writeln!(
            md,
            "| command | wall ms | CPU ms (GNU time, 10 ms steps) | peak RSS MiB |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|");
        for row in &self.rows {
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} |",
                row.command,
                row.seconds.map(|s| s * 1e3).show(0),
                row.cpu_seconds
                    .as_ref()
                    .map_or_else(|| "n/a".into(), |s| s.map(|s| s * 1e3).show(0)),
                row.peak_rss_kib
                    .map_or_else(|| "n/a".into(), |kib| format!("{:.0}", mib(kib * 1024))),
            );
        }
        if let Some(load) = &self.filter_load_ms {
            let _ = writeln!(
                md,
                "\nOf which loading the filter (`FilterSnapshot::load`, measured above): {} ms.",
                load.show(1)
            );
        }
        md
    }
}

/// One cold start of the scanner worker.
struct StackRun {
    filter_loaded_secs: f64,
    first_report_secs: f64,
    peak_rss_kib: Option<u64>,
}

struct StackScenario {
    name: String,
    filter_entries: u64,
    filter_bytes: u64,
    runs: Vec<StackRun>,
}

pub struct StackColdStart {
    scenarios: Vec<StackScenario>,
}

impl StackColdStart {
    /// Peak RSS of the scanner with the full-size filter, in KiB (largest of the runs).
    pub fn full_filter_peak_rss_kib(&self) -> Option<u64> {
        self.scenarios
            .last()?
            .runs
            .iter()
            .filter_map(|r| r.peak_rss_kib)
            .max()
    }
}

/// The scanner worker's cold start with a one-entry filter and with a published
/// `entries`-entry filter, `runs` times each, every run on a fresh local stack (a worker
/// that is stopped leaves a long poll behind in the emulator that would take the next
/// run's message).
pub fn run_stack(entries: u64, runs: usize) -> Result<StackColdStart> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(stack_scenarios(entries, runs)).context(
        "the cold-start benchmark needs the local stack: run `make venv` and build the \
             release scanner (make bench does both)",
    )
}

/// The listed upload's MD5, the one entry of the imported list.
fn listed_md5() -> Result<Digest> {
    digest_bytes(
        b"hashgate cold start: listed",
        AlgorithmSet::EMPTY.with(Algorithm::Md5),
    )
    .get(Algorithm::Md5)
    .context("an MD5 digest")
}

async fn stack_scenarios(entries: u64, runs: usize) -> Result<StackColdStart> {
    let mut one = StackScenario {
        name: "one-entry filter".into(),
        filter_entries: 0,
        filter_bytes: 0,
        runs: Vec::new(),
    };
    let mut full_scenario = StackScenario {
        name: format!("{}-entry filter", thousands((entries + 1) as f64)),
        filter_entries: entries + 1,
        filter_bytes: 0,
        runs: Vec::new(),
    };
    // The full-size snapshot, for the store version it was built for.
    let mut full: Option<(u64, FilterSnapshot)> = None;
    for run in 1..=runs {
        for big in [false, true] {
            crate::progress(format_args!(
                "cold start on the local stack, {}: run {run} of {runs}",
                if big { &full_scenario.name } else { &one.name }
            ));
            let stack = Stack::start();
            let s3 = hashgate_aws::s3_client(&stack.sdk().await);
            let trusted = TrustedKeys::parse(stack.var("HASHGATE_FILTER_PUBLIC_KEYS"))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let at = Publisher::new(s3.clone(), stack.var("HASHGATE_FILTER_BUCKET"), trusted, 10);
            let small = import_one(&stack, &at).await?;
            let scenario = if big {
                let version = small.info().store_version;
                if full.as_ref().is_none_or(|(v, _)| *v != version) {
                    full = Some((version, full_filter(entries, version)?));
                }
                let (_, snapshot) = full.as_ref().expect("just built");
                let source =
                    hashgate_aws::signing::source_from_vars(|n| stack.env().get(n).cloned())
                        .map_err(|e| anyhow::anyhow!(e))?;
                let key = hashgate_aws::signing::load(&stack.sdk().await, &source)
                    .await
                    .map_err(|e| anyhow::anyhow!(e))?;
                at.publish(&key, snapshot, hashgate_core::time::Timestamp::now())
                    .await
                    .map_err(|e| anyhow::anyhow!(e))?;
                full_scenario.filter_bytes = snapshot.to_bytes().len() as u64;
                &mut full_scenario
            } else {
                one.filter_entries = small.info().entries;
                one.filter_bytes = small.to_bytes().len() as u64;
                &mut one
            };
            let key = format!("coldstart/run-{run}.bin");
            let mut body = Vec::new();
            write_random_bytes(&mut body, 64 * 1024, 0x6373_0000 + run as u64)?;
            let bucket = stack.var("HASHGATE_UPLOAD_BUCKET").to_string();
            s3.put_object()
                .bucket(&bucket)
                .key(&key)
                .body(ByteStream::from(body))
                .send()
                .await
                .with_context(|| format!("uploading s3://{bucket}/{key}"))?;
            // Let the notification reach the queue before the worker starts.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let entries = scenario.filter_entries;
            scenario
                .runs
                .push(one_cold_start(&stack, &key, entries).await?);
        }
    }
    Ok(StackColdStart {
        scenarios: vec![one, full_scenario],
    })
}

/// A one-entry list imported through the real CLI (it sets the store's version and
/// publishes a filter); returns the published filter.
async fn import_one(stack: &Stack, at: &Publisher) -> Result<FilterSnapshot> {
    let list_dir = tempfile::tempdir()?;
    let list = list_dir.path().join("coldstart-list.txt");
    std::fs::write(&list, format!("{}\n", listed_md5()?))
        .with_context(|| format!("writing {}", list.display()))?;
    let out = stack
        .command(bin("hashgate"))
        .args(["lists", "import"])
        .arg(&list)
        .output()
        .context("running hashgate lists import against the local stack")?;
    ensure!(
        out.status.success(),
        "hashgate lists import {} failed: {}",
        list.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = at
        .current()
        .await
        .map_err(|e| anyhow::anyhow!(e))?
        .manifest()
        .cloned()
        .context("no valid filter manifest after the import")?;
    let published = at
        .get(&manifest.snapshot)
        .await
        .map_err(|e| anyhow::anyhow!(e))?
        .context("the published snapshot is missing")?;
    Ok(FilterSnapshot::from_bytes(
        &published,
        &at.url(&manifest.snapshot),
    )?)
}

/// The listed digest and `entries` generated ones, for store version `version`.
fn full_filter(entries: u64, version: u64) -> Result<FilterSnapshot> {
    crate::progress(format_args!(
        "cold start: building a {}-entry filter",
        thousands((entries + 1) as f64)
    ));
    let mut builder = FilterSnapshot::builder(
        entries + 1,
        DEFAULT_FP_RATE,
        hashgate_local::filter_file::random_seed()?,
    )?;
    builder.insert(&listed_md5()?);
    for i in 0..entries {
        builder.insert(&generated_digest(MEMBER_SEED, i));
    }
    Ok(builder.finish(version, hashgate_core::time::Timestamp::now())?)
}

async fn one_cold_start(stack: &Stack, key: &str, filter_entries: u64) -> Result<StackRun> {
    let log_dir = tempfile::tempdir()?;
    let log = log_dir.path().join("scanner.log");
    let file =
        std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let started = Instant::now();
    let mut child = stack
        .command(bin("scanner"))
        .env("HASHGATE_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone()?))
        .stderr(Stdio::from(file))
        .spawn()
        .context("starting the scanner worker")?;
    let pid = child.id();
    let mut filter_loaded = None;
    let result = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if filter_loaded.is_none() {
            if let Some(line) = text.lines().find(|l| l.contains("filter snapshot loaded")) {
                filter_loaded = Some(started.elapsed().as_secs_f64());
                let loaded = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("entries="))
                    .and_then(|n| n.parse::<u64>().ok());
                if loaded != Some(filter_entries) {
                    break Err(anyhow::anyhow!(
                        "the scanner loaded a filter of {loaded:?} entries, expected \
                         {filter_entries}: {line}"
                    ));
                }
            }
        }
        if text
            .lines()
            .any(|l| l.contains("report=") && l.contains(key))
        {
            let first_report_secs = started.elapsed().as_secs_f64();
            let Some(filter_loaded_secs) = filter_loaded else {
                break Err(anyhow::anyhow!(
                    "the scanner reported on {key} without loading a filter:\n{text}"
                ));
            };
            break Ok(StackRun {
                filter_loaded_secs,
                first_report_secs,
                peak_rss_kib: peak_rss_kib(pid),
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Err(anyhow::anyhow!("the scanner exited ({status}):\n{text}"));
        }
        if started.elapsed() > STACK_TIMEOUT {
            break Err(anyhow::anyhow!(
                "no scan report on {key} within {} s:\n{text}",
                STACK_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    result.with_context(|| format!("scanner log {}", log.display()))
}

/// A running process's peak resident set (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

impl StackColdStart {
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "### Cold start: the scanner worker on the local stack\n"
        );
        let runs = self.scenarios.first().map_or(0, |s| s.runs.len());
        let _ = writeln!(
            md,
            "A fresh local stack (moto); a list imported with `hashgate lists import` (the \
             store's version), then the filter snapshot published to the filter bucket. For \
             each run one 64 KiB upload waits in the scan queue, then the release `scanner` \
             starts as a worker (`HASHGATE_SCAN_QUEUE_URL`). Timed from spawn to the log line \
             `filter snapshot loaded` (configuration, the store's version from DynamoDB, the \
             snapshot's GET from S3 and its checks) and to the upload's scan report (the first \
             decision: queue receive, HEAD, filter, tag). Every run on a fresh stack, the two \
             filters alternating. Peak RSS is the worker's VmHWM at the report. R = {runs}.\n"
        );
        let _ = writeln!(
            md,
            "| filter entries | snapshot MiB | spawn → filter loaded, ms | spawn → first decision, ms | peak RSS MiB |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|");
        for s in &self.scenarios {
            let loaded = Samples::new(s.runs.iter().map(|r| r.filter_loaded_secs * 1e3).collect());
            let first = Samples::new(s.runs.iter().map(|r| r.first_report_secs * 1e3).collect());
            let rss = s.runs.iter().filter_map(|r| r.peak_rss_kib).max();
            let _ = writeln!(
                md,
                "| {} | {:.1} | {} | {} | {} |",
                thousands(s.filter_entries as f64),
                mib(s.filter_bytes),
                loaded.show(0),
                first.show(0),
                rss.map_or_else(|| "n/a".into(), |kib| format!("{:.0}", mib(kib * 1024))),
            );
        }
        md
    }
}
