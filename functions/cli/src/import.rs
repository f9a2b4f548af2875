//! `hashgate lists import`.

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use hashgate_core::lists::{ListFormat, ParseOptions};
use hashgate_core::local::{import_list, LocalDb};
use hashgate_core::store::ImportStats;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::args::ImportArgs;
use crate::output::{describe_filter, thousands};

/// Files at least this large get a progress bar (when standard error is a terminal).
const PROGRESS_MIN_BYTES: u64 = 16 * 1024 * 1024;

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
    store_version: u64,
    filter: Option<hashgate_core::filter::FilterInfo>,
}

pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    if args.files.iter().any(|f| f.as_os_str() == "-") && args.list.is_none() {
        bail!("reading a list from standard input (-) needs --list NAME");
    }
    let Some(dir) = &args.db else {
        return crate::remote::import(&args);
    };
    let db = LocalDb::create(dir)?;
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
        };
        let outcome = open_with_progress(path).and_then(|(reader, bar)| {
            let r = import_list(db.store(), reader, format, &options, args.remove);
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            Ok(r?)
        });
        let mut result = FileResult {
            file: options.source_name.clone(),
            format: format.name(),
            list,
            entries: None,
            stats: None,
            error: None,
        };
        match outcome {
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
                        describe(&stats, args.remove)
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

    // Rebuild the filter whenever the store changed, or when it is missing or stale, so the
    // filter always covers the store after an import.
    let store_version = db.store().version()?;
    let current = match db.load_filter() {
        Ok(Some(f)) => f.info().store_version == store_version,
        Ok(None) => false,
        Err(e) => {
            eprintln!("hashgate: warning: {e}; rebuilding it");
            false
        }
    };
    let filter = if totals.changed() || !current {
        Some(*db.rebuild_filter(args.fp_rate)?.info())
    } else {
        db.load_filter()?.map(|f| *f.info())
    };

    if args.json {
        let summary = Summary {
            files: results,
            totals,
            rejected,
            store_version,
            filter,
        };
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!(
            "total: {}, rejected {} file{}",
            describe(&totals, args.remove),
            rejected,
            if rejected == 1 { "" } else { "s" }
        );
        if let Some(f) = &filter {
            println!("filter: {}", describe_filter(f, store_version));
        }
    }
    Ok(if rejected > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn describe(s: &ImportStats, remove: bool) -> String {
    if remove {
        format!(
            "removed {}, not present {}",
            thousands(s.removed),
            thousands(s.not_present)
        )
    } else {
        format!(
            "added {}, updated {}, already present {}",
            thousands(s.added),
            thousands(s.updated),
            thousands(s.already_present)
        )
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

pub type Opened = (Box<dyn Read>, Option<ProgressBar>);

pub fn open_with_progress(path: &Path) -> anyhow::Result<Opened> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(std::io::stdin().lock()), None));
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
