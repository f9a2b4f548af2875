//! `hashgate lists import` against a stack: the DynamoDB exact store and the filter bucket
//! named by the environment (`HASHGATE_HASH_TABLE`, `HASHGATE_FILTER_BUCKET`, and the usual
//! AWS variables, `AWS_ENDPOINT_URL` included).
//!
//! Each file is read twice: once to validate all of it, once to apply it, so a malformed
//! file applies nothing, in bounded memory per batch.

use std::process::ExitCode;

use anyhow::{bail, Context};
use hashgate_aws::dynamo::DynamoHashes;
use hashgate_aws::filter_source::{publish, FilterLocation};
use hashgate_core::filter::FilterSnapshot;
use hashgate_core::lists::{self, ListEntry, ListFormat, ParseOptions};
use hashgate_core::store::ImportStats;

use crate::args::ImportArgs;
use crate::import::{default_list_name, describe, open_with_progress};
use crate::output::{describe_filter, thousands};

/// Entries written per batch of a remote import.
const APPLY_BATCH: usize = 50_000;
const DEFAULT_FILTER_KEY: &str = "filters/current.hgf";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn import(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let (Some(table), Some(bucket)) = (env("HASHGATE_HASH_TABLE"), env("HASHGATE_FILTER_BUCKET"))
    else {
        bail!("no --db DIR, and HASHGATE_HASH_TABLE and HASHGATE_FILTER_BUCKET are not both set (for the local stack: set -a; . .local/stack.env)");
    };
    if args.files.iter().any(|f| f.as_os_str() == "-") {
        bail!("importing into a stack reads each file twice; standard input (-) cannot be used");
    }
    let filter_at = FilterLocation {
        bucket,
        key: env("HASHGATE_FILTER_KEY").unwrap_or_else(|| DEFAULT_FILTER_KEY.into()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let sdk = hashgate_aws::sdk_config().await;
        let hashes = DynamoHashes::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
        let mut totals = ImportStats::default();
        let mut rejected = 0u64;
        for path in &args.files {
            let format = args.format.unwrap_or_else(|| ListFormat::from_path(path));
            let options = ParseOptions {
                source_name: path.display().to_string(),
                default_list: match &args.list {
                    Some(l) => l.clone(),
                    None => default_list_name(path)?,
                },
            };
            match import_file(&hashes, path, format, &options, args.remove).await {
                Ok((entries, stats)) => {
                    totals += stats;
                    println!(
                        "{}: {} entries ({format}, list {}): {}",
                        options.source_name,
                        thousands(entries),
                        options.default_list,
                        describe(&stats, args.remove)
                    );
                }
                Err(e) => {
                    rejected += 1;
                    eprintln!("hashgate: error: {e:#}");
                    eprintln!("hashgate: nothing of {} was applied", options.source_name);
                }
            }
        }
        println!(
            "total: {}, rejected {rejected} file{}",
            describe(&totals, args.remove),
            if rejected == 1 { "" } else { "s" }
        );
        // Publish whenever the store changed; after a run that changed nothing, publish
        // only if every file applied, so re-running a clean import is how an operator
        // republishes a lost snapshot, while a run of refused files leaves S3 alone.
        if totals.changed() || rejected == 0 {
            let filter = build_filter(&hashes, args.fp_rate).await?;
            publish(&hashgate_aws::s3_client(&sdk), &filter_at, &filter)
                .await
                .map_err(anyhow::Error::msg)?;
            println!(
                "filter: {}: {}",
                filter_at.url(),
                describe_filter(filter.info(), filter.info().store_version)
            );
        }
        Ok(if rejected > 0 {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        })
    })
}

async fn import_file(
    hashes: &DynamoHashes,
    path: &std::path::Path,
    format: ListFormat,
    options: &ParseOptions,
    remove: bool,
) -> anyhow::Result<(u64, ImportStats)> {
    // Pass 1: the whole file must be valid before anything is written.
    let (reader, bar) = open_with_progress(path)?;
    let summary = lists::parse(reader, format, options, &mut |_| Ok(()))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    // Pass 2: parse on a blocking thread, apply batch by batch as they come.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<ListEntry>>(2);
    let (path_owned, options_owned) = (path.to_path_buf(), options.clone());
    let parser = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let (reader, bar) = open_with_progress(&path_owned)?;
        let mut batch = Vec::with_capacity(APPLY_BATCH);
        lists::parse(reader, format, &options_owned, &mut |entry| {
            batch.push(entry);
            if batch.len() == APPLY_BATCH {
                tx.blocking_send(std::mem::take(&mut batch))
                    .map_err(|_| "the writer stopped".to_string())?;
            }
            Ok(())
        })?;
        if !batch.is_empty() {
            let _ = tx.blocking_send(batch);
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok(())
    });
    let mut stats = ImportStats::default();
    while let Some(batch) = rx.recv().await {
        stats += hashes
            .apply(&batch, remove)
            .await
            .with_context(|| format!("{}: writing to the hash store", path.display()))?;
    }
    parser.await??;
    Ok((summary.entries, stats))
}

/// A filter over every digest in the table, stamped with the version read before the scan:
/// if an import lands meanwhile, the filter looks stale to scanners, which then ask the
/// store directly until the next filter, never the other way round.
async fn build_filter(hashes: &DynamoHashes, fp_rate: f64) -> anyhow::Result<FilterSnapshot> {
    let (version, _) = hashes.version().await?;
    let mut digests = Vec::new();
    hashes.for_each_digest(|d| digests.push(*d)).await?;
    let mut builder = FilterSnapshot::builder(digests.len() as u64, fp_rate)?;
    for d in &digests {
        builder.insert(d);
    }
    Ok(builder.finish(version)?)
}
