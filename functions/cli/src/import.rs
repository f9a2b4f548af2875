//! `hashgate lists import`: one driver over any store. The per-file loop (list names,
//! progress, counts, `--json`, errors, exit status) is here; a [`Target`] applies one file
//! atomically and brings the filter up to date afterwards — a local hash database
//! ([`LocalTarget`]) or a stack's DynamoDB store and published filter (`remote::StackTarget`).

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use hashgate_core::filter::FilterInfo;
use hashgate_core::lists::sync::{self, Limits, ListFile};
use hashgate_core::lists::{ListFormat, ParseOptions, ParseSummary};
use hashgate_core::store::{ImportStats, Op};
use hashgate_local::{import_list, LocalDb};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::args::ImportArgs;
use crate::output::{describe_filter, thousands};

/// Files at least this large get a progress bar (when standard error is a terminal).
const PROGRESS_MIN_BYTES: u64 = 16 * 1024 * 1024;

/// Where lists are imported to.
pub trait Target {
    /// Whether this target can read a list from standard input (it reads each file once).
    fn reads_stdin(&self) -> bool;

    /// Apply one file whole, or nothing of it, if it passes `guard`.
    fn apply_file(
        &mut self,
        path: &Path,
        format: ListFormat,
        options: &ParseOptions,
        op: Op,
        guard: &Guard,
    ) -> anyhow::Result<(ParseSummary, ImportStats)>;

    /// After every file: bring the filter up to date (rebuild, publish) as needed. Returns
    /// the filter in effect and the store version, for the summary, and where it is.
    fn finish(
        &mut self,
        totals: &ImportStats,
        rejected: u64,
        fp_rate: f64,
    ) -> anyhow::Result<Option<FilterOutcome>>;
}

/// The guards a file is held to beyond its own validity (`hashgate_core::lists::sync`).
#[derive(Clone, Debug)]
pub struct Guard {
    pub limits: Limits,
    /// A withdrawal larger than the allowed share of its list is applied anyway.
    pub force: bool,
}

/// The filter after an import.
#[derive(Serialize)]
pub struct FilterOutcome {
    #[serde(flatten)]
    pub info: FilterInfo,
    /// Where it is: a file, or an S3 URL.
    pub location: String,
    #[serde(skip)]
    pub store_version: u64,
}

#[derive(Serialize)]
struct FileResult {
    file: String,
    format: &'static str,
    list: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    entries: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<ImportStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct Summary {
    files: Vec<FileResult>,
    #[serde(flatten)]
    totals: ImportStats,
    rejected: u64,
    store_version: Option<u64>,
    filter: Option<FilterOutcome>,
}

/// Import `args.files` into `target`, file by file.
pub fn run(args: ImportArgs, target: &mut dyn Target) -> anyhow::Result<ExitCode> {
    let stdin = args.files.iter().any(|f| f.as_os_str() == "-");
    if stdin && args.list.is_none() {
        bail!("reading a list from standard input (-) needs --list NAME");
    }
    if stdin && !target.reads_stdin() {
        bail!("importing into a stack reads each file twice; standard input (-) cannot be used");
    }
    let op = if args.remove { Op::Remove } else { Op::Add };
    if args.force && !args.remove {
        bail!("--force applies to withdrawals (--remove) only");
    }
    let guard = Guard {
        limits: Limits {
            max_withdraw_share: args.max_withdraw_share,
            ..Limits::default()
        },
        force: args.force,
    };
    let mut results = Vec::new();
    let mut totals = ImportStats::default();
    let mut rejected = 0;
    for path in &args.files {
        let format = args.format.unwrap_or_else(|| ListFormat::from_path(path));
        let list = match &args.list {
            Some(l) => l.clone(),
            None => default_list_name(path)?,
        };
        let options = ParseOptions {
            source_name: path.display().to_string(),
            default_list: list.clone(),
            algorithm: args.algorithm,
        };
        let mut result = FileResult {
            file: options.source_name.clone(),
            format: format.name(),
            list,
            entries: None,
            stats: None,
            error: None,
        };
        match target.apply_file(path, format, &options, op, &guard) {
            Ok((summary, stats)) => {
                totals += stats;
                result.entries = Some(summary.entries);
                result.stats = Some(stats);
                if !args.json {
                    println!(
                        "{}: {} {} ({}, list {}): {}",
                        result.file,
                        thousands(summary.entries),
                        if summary.entries == 1 {
                            "entry"
                        } else {
                            "entries"
                        },
                        result.format,
                        result.list,
                        describe(&stats, op)
                    );
                }
            }
            Err(e) => {
                rejected += 1;
                let message = format!("{e:#}");
                if !args.json {
                    eprintln!("hashgate: error: {message}");
                    eprintln!("hashgate: nothing of {} was applied", result.file);
                }
                result.error = Some(message);
            }
        }
        results.push(result);
    }

    let filter = target.finish(&totals, rejected, args.fp_rate)?;
    if args.json {
        let summary = Summary {
            files: results,
            totals,
            rejected,
            store_version: filter.as_ref().map(|f| f.store_version),
            filter,
        };
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!(
            "total: {}, rejected {} file{}",
            describe(&totals, op),
            rejected,
            if rejected == 1 { "" } else { "s" }
        );
        if let Some(f) = &filter {
            println!(
                "filter: {}: {}",
                f.location,
                describe_filter(&f.info, f.store_version)
            );
        }
    }
    Ok(if rejected > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// A local hash database: each file in one redb transaction; the filter file is rebuilt
/// whenever the store changed, or is missing or stale, so it always covers the store.
pub struct LocalTarget {
    db: LocalDb,
}

impl LocalTarget {
    pub fn open(dir: &Path) -> anyhow::Result<LocalTarget> {
        Ok(LocalTarget {
            db: LocalDb::create(dir)?,
        })
    }
}

impl Target for LocalTarget {
    fn reads_stdin(&self) -> bool {
        true
    }

    fn apply_file(
        &mut self,
        path: &Path,
        format: ListFormat,
        options: &ParseOptions,
        op: Op,
        guard: &Guard,
    ) -> anyhow::Result<(ParseSummary, ImportStats)> {
        // A withdrawal from a file is held to the allowed share of its lists, as on a
        // stack (standard input is read once, so it is not: the operator is at the keyboard).
        if op == Op::Remove && !guard.force && path.as_os_str() != "-" {
            let file = ListFile {
                key: options.source_name.clone(),
                list: options.default_list.clone(),
                format,
                op,
                force: false,
                declared_sha256: None,
                declared_entries: None,
                algorithm: options.algorithm,
            };
            let (reader, _) = open_with_progress(path)?;
            let checked = sync::check(reader, &file, &guard.limits)?;
            let mut sizes = std::collections::BTreeMap::<String, u64>::new();
            for c in self.db.store().stats()?.entries {
                *sizes.entry(c.list).or_default() += c.entries;
            }
            sync::judge(&file, &checked, &sizes, &guard.limits)?;
        }
        let (reader, bar) = open_with_progress(path)?;
        let result = import_list(self.db.store(), reader, format, options, op);
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok(result?)
    }

    fn finish(
        &mut self,
        totals: &ImportStats,
        _rejected: u64,
        fp_rate: f64,
    ) -> anyhow::Result<Option<FilterOutcome>> {
        let store_version = self.db.store().version()?;
        let current = match self.db.load_filter() {
            Ok(Some(f)) => f.info().covers(store_version),
            Ok(None) => false,
            Err(e) => {
                eprintln!("hashgate: warning: {e}; rebuilding it");
                false
            }
        };
        let info = if totals.changed() || !current {
            Some(*self.db.rebuild_filter(fp_rate)?.info())
        } else {
            self.db.load_filter()?.map(|f| *f.info())
        };
        Ok(info.map(|info| FilterOutcome {
            info,
            location: self.db.filter_path().display().to_string(),
            store_version,
        }))
    }
}

pub fn describe(s: &ImportStats, op: Op) -> String {
    match op {
        Op::Remove => format!(
            "removed {}, not present {}",
            thousands(s.removed),
            thousands(s.not_present)
        ),
        Op::Add => format!(
            "added {}, updated {}, already present {}",
            thousands(s.added),
            thousands(s.updated),
            thousands(s.already_present)
        ),
    }
}

pub fn default_list_name(path: &Path) -> anyhow::Result<String> {
    path.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .with_context(|| {
            format!(
                "{}: cannot name the list after this file; give --list NAME",
                path.display()
            )
        })
}

pub type Opened = (Box<dyn Read + Send>, Option<ProgressBar>);

pub fn open_with_progress(path: &Path) -> anyhow::Result<Opened> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(std::io::stdin()), None));
    }
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("{}: cannot stat", path.display()))?;
    if !meta.is_file() {
        bail!("{}: not a regular file", path.display());
    }
    if meta.len() >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(meta.len());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        bar.set_message(path.display().to_string());
        let reader = bar.wrap_read(file);
        return Ok((Box::new(reader), Some(bar)));
    }
    Ok((Box::new(file), None))
}
