//! `hashgate lists export --confirmed`: the digests of the stack's confirmed cases as a hash
//! list another provider can import (the core's `share::confirmed_in` over the case table,
//! written by `lists::write`).
//!
//! A file is written whole or not at all: into a temporary file beside it, synced, then
//! renamed over the target. Counts go to standard error, so `--output -` pipes cleanly.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use hashgate_aws::dynamo::DynamoCases;
use hashgate_core::lists::write::{ListWriter, WriteSummary};
use hashgate_core::lists::{ListEntry, ListFormat};
use hashgate_core::share::{confirmed_in, Confirmed};

use crate::args::ExportArgs;

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .with_context(|| {
            format!("{name} is not set (for the local stack: set -a; . .local/stack.env; set +a)")
        })
}

/// The confirmed cases of the stack the environment names.
fn read_confirmed(list: &str) -> anyhow::Result<Confirmed> {
    let case_table = env("HASHGATE_CASE_TABLE")?;
    // Only the case table is read.
    let audit_table = std::env::var("HASHGATE_AUDIT_TABLE").unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let sdk = hashgate_aws::sdk_config().await;
        let store = DynamoCases::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            case_table.clone(),
            audit_table,
        );
        confirmed_in(&store, list)
            .await
            .with_context(|| format!("reading the confirmed cases of {case_table}"))
    })
}

fn write_entries<W: Write>(
    out: W,
    format: ListFormat,
    entries: &[ListEntry],
) -> anyhow::Result<(W, WriteSummary)> {
    let mut writer = ListWriter::new(out, format);
    for entry in entries {
        writer.entry(entry)?;
    }
    Ok(writer.finish()?)
}

/// Write `entries` to `path` atomically: a temporary file in the same directory, renamed
/// over `path` only once complete and synced.
fn write_file(
    path: &Path,
    format: ListFormat,
    entries: &[ListEntry],
) -> anyhow::Result<WriteSummary> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?
        .to_string_lossy()
        .into_owned();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let file =
            std::fs::File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
        let (out, summary) = write_entries(std::io::BufWriter::new(file), format, entries)
            .with_context(|| format!("writing {}", temp.display()))?;
        let file = out
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", temp.display()))?;
        file.sync_all()
            .with_context(|| format!("syncing {}", temp.display()))?;
        std::fs::rename(&temp, path)
            .with_context(|| format!("renaming {} to {}", temp.display(), path.display()))?;
        anyhow::Ok(summary)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

pub fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    if !args.confirmed {
        anyhow::bail!("say what to export: --confirmed (the digests of confirmed cases)");
    }
    let format = args.format();
    // Refuse a bad list name before reading anything.
    Confirmed::new(&args.list)?;
    let confirmed = read_confirmed(&args.list)?;
    let entries = confirmed.entries();
    let summary = match args.output.as_deref() {
        None => write_entries(std::io::stdout().lock(), format, entries)?.1,
        Some(p) if p == Path::new("-") => {
            write_entries(std::io::stdout().lock(), format, entries)?.1
        }
        Some(path) => write_file(path, format, entries)?,
    };
    let target = match args.output.as_deref() {
        Some(p) if p != Path::new("-") => p.display().to_string(),
        _ => "standard output".to_string(),
    };
    eprintln!(
        "exported {} digests of {} confirmed cases as list {:?} ({}, {} records) to {target}{}",
        summary.entries,
        confirmed.cases,
        args.list,
        format,
        summary.records,
        match confirmed.duplicates {
            0 => String::new(),
            n => format!("; {n} digests shared with an earlier case written once"),
        }
    );
    if summary.entries == 0 {
        eprintln!("hashgate: note: no confirmed cases: the list is empty, and importers refuse an empty list");
    }
    if format == ListFormat::Plain {
        eprintln!(
            "hashgate: note: plain lists carry no case ids or categories; the importer names the list"
        );
    }
    Ok(ExitCode::SUCCESS)
}
