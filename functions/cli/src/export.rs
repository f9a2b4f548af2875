//! `hashgate lists export`: a hash list another provider can import, written by
//! `lists::write`: the digests of the stack's confirmed cases (`--confirmed`, the core's
//! `share::confirmed_in` over the case table), or lists of the hash store (`--from NAME`,
//! `--all`: a local database or the stack's table, walked once, streamed to the file with
//! each entry's id and category, and in CSV its list).
//!
//! A file is written whole or not at all: into a temporary file beside it, synced, then
//! renamed over the target. Counts go to standard error, so `--output -` pipes cleanly.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use hashgate_aws::dynamo::{DynamoCases, DynamoHashes};
use hashgate_core::lists::write::{ListWriter, WriteSummary};
use hashgate_core::lists::{ListEntry, ListFormat, Provenance};
use hashgate_core::share::{confirmed_in, Confirmed};
use hashgate_core::store::check_entry;
use hashgate_core::Digest;
use hashgate_local::store::EmbeddedStore;

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

/// Hands every entry to the sink it is given.
type Produce<'a> =
    dyn FnMut(&mut dyn FnMut(&ListEntry) -> anyhow::Result<()>) -> anyhow::Result<()> + 'a;

fn write_entries<W: Write>(
    out: W,
    format: ListFormat,
    with_lists: bool,
    produce: &mut Produce<'_>,
) -> anyhow::Result<(W, WriteSummary)> {
    let mut writer = ListWriter::new(out, format);
    if with_lists {
        writer = writer.with_lists()?;
    }
    produce(&mut |entry| Ok(writer.entry(entry)?))?;
    Ok(writer.finish()?)
}

/// Write the entries to `path` atomically: a temporary file in the same directory, renamed
/// over `path` only once complete and synced.
fn write_file(
    path: &Path,
    format: ListFormat,
    with_lists: bool,
    produce: &mut Produce<'_>,
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
        let (out, summary) =
            write_entries(std::io::BufWriter::new(file), format, with_lists, produce)
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

/// Write to `--output` (a file, atomically) or standard output; returns what was written
/// and where.
fn write_out(
    args: &ExportArgs,
    format: ListFormat,
    with_lists: bool,
    produce: &mut Produce<'_>,
) -> anyhow::Result<(WriteSummary, String)> {
    Ok(match args.output.as_deref() {
        Some(path) if path != Path::new("-") => (
            write_file(path, format, with_lists, produce)?,
            path.display().to_string(),
        ),
        _ => (
            write_entries(std::io::stdout().lock(), format, with_lists, produce)?.1,
            "standard output".to_string(),
        ),
    })
}

/// The store's entries of the chosen lists (all of them: `None`), digest by digest.
fn store_entries(
    args: &ExportArgs,
    lists: Option<&BTreeSet<String>>,
    sink: &mut dyn FnMut(&ListEntry) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut take = |digest: Digest, provenance: Vec<Provenance>| -> anyhow::Result<()> {
        for p in provenance {
            if lists.is_none_or(|l| l.contains(&p.list)) {
                sink(&ListEntry {
                    digest,
                    provenance: p,
                })?;
            }
        }
        Ok(())
    };
    match &args.db {
        Some(dir) => {
            let store = EmbeddedStore::open(dir)
                .with_context(|| format!("opening the hash database {}", dir.display()))?;
            store
                .snapshot()?
                .for_each_entry(&mut take)
                .with_context(|| format!("reading {}", dir.display()))?;
        }
        None => {
            let table = env("HASHGATE_HASH_TABLE").context(
                "no --db DIR, and HASHGATE_HASH_TABLE is not set (the stack's hash store)",
            )?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let sdk = hashgate_aws::sdk_config().await;
                let hashes = DynamoHashes::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
                hashes
                    .for_each_entry(|d, p| take(d, p).map_err(|e| format!("{e:#}")))
                    .await
                    .with_context(|| format!("reading the hash store {table}"))
            })?;
        }
    }
    Ok(())
}

/// `--from` / `--all`: lists of the hash store.
fn export_lists(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let format = args.format();
    let lists: Option<BTreeSet<String>> = (!args.all).then(|| args.from.iter().cloned().collect());
    for name in lists.iter().flatten() {
        check_entry(&Provenance {
            list: name.clone(),
            id: None,
            category: None,
        })
        .with_context(|| format!("--from {name:?}"))?;
    }
    // Several lists in one file: CSV names each entry's list; plain and VICS cannot.
    let several = lists.as_ref().is_none_or(|l| l.len() > 1);
    let with_lists = several && format == ListFormat::Csv;
    let mut per_list: BTreeMap<String, u64> = BTreeMap::new();
    let (summary, target) = write_out(args, format, with_lists, &mut |sink| {
        store_entries(args, lists.as_ref(), &mut |entry| {
            *per_list.entry(entry.provenance.list.clone()).or_default() += 1;
            sink(entry)
        })?;
        // A named list with no entry is a mistake (a typo, another store): nothing is kept.
        let missing: Vec<&str> = lists
            .iter()
            .flatten()
            .filter(|n| !per_list.contains_key(*n))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            anyhow::bail!(
                "the hash store has no entries on {}; nothing was exported",
                missing.join(", ")
            );
        }
        Ok(())
    })?;
    let counts: Vec<String> = per_list
        .iter()
        .map(|(list, n)| format!("{list} {n}"))
        .collect();
    eprintln!(
        "exported {} entries ({}, {} records) to {target}: {}",
        summary.entries,
        format,
        summary.records,
        if counts.is_empty() {
            "none".to_string()
        } else {
            counts.join(", ")
        }
    );
    if several && format != ListFormat::Csv {
        eprintln!(
            "hashgate: note: {format} lists carry no list names; the importer names the list (CSV keeps each entry's)"
        );
    }
    if format == ListFormat::Plain {
        eprintln!("hashgate: note: plain lists carry no entry ids or categories");
    }
    if summary.pdq_left_out > 0 {
        eprintln!(
            "hashgate: note: {} PDQ hashes left out: {format} lists cannot carry them (use --format csv)",
            summary.pdq_left_out
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    if !args.confirmed {
        return export_lists(args);
    }
    let format = args.format();
    // Refuse a bad list name before reading anything.
    Confirmed::new(&args.list)?;
    let confirmed = read_confirmed(&args.list)?;
    let (summary, target) = write_out(args, format, false, &mut |sink| {
        confirmed.entries().iter().try_for_each(&mut *sink)
    })?;
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
    if summary.pdq_left_out > 0 {
        eprintln!(
            "hashgate: note: {} PDQ hashes left out: {format} lists cannot carry them (use --format csv)",
            summary.pdq_left_out
        );
    }
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
