//! Imports into a stack: the DynamoDB exact store and the filter bucket named by the
//! environment (`HASHGATE_HASH_TABLE`, `HASHGATE_FILTER_BUCKET`, and the usual AWS
//! variables, `AWS_ENDPOINT_URL` included).
//!
//! Each file is atomic: read once to validate all of it, then staged under a new generation
//! of the store in bounded batches, then committed with one conditional write
//! (`hashgate_core::generations`). A process that dies while staging leaves nothing visible;
//! running the import again applies the file whole.

use std::path::Path;

use anyhow::{bail, Context};
use hashgate_aws::dynamo::DynamoHashes;
use hashgate_aws::filter_source::{publish, FilterLocation};
use hashgate_core::filter::FilterSnapshot;
use hashgate_core::lists::{self, ListEntry, ListFormat, ParseOptions, ParseSummary};
use hashgate_core::store::{ImportStats, Op};
use hashgate_core::time::Timestamp;
use tokio::runtime::Runtime;

use crate::import::{open_with_progress, FilterOutcome, Target};

/// Entries staged per batch.
const APPLY_BATCH: usize = 5_000;
const DEFAULT_FILTER_KEY: &str = "filters/current.hgf";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A deployed (or local) stack.
pub struct StackTarget {
    runtime: Runtime,
    sdk: aws_config::SdkConfig,
    hashes: DynamoHashes,
    filter_at: FilterLocation,
}

impl StackTarget {
    pub fn from_env() -> anyhow::Result<StackTarget> {
        let (Some(table), Some(bucket)) =
            (env("HASHGATE_HASH_TABLE"), env("HASHGATE_FILTER_BUCKET"))
        else {
            bail!("no --db DIR, and HASHGATE_HASH_TABLE and HASHGATE_FILTER_BUCKET are not both set (for the local stack: set -a; . .local/stack.env)");
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let sdk = runtime.block_on(hashgate_aws::sdk_config());
        Ok(StackTarget {
            hashes: DynamoHashes::new(aws_sdk_dynamodb::Client::new(&sdk), &table),
            sdk,
            runtime,
            filter_at: FilterLocation {
                bucket,
                key: env("HASHGATE_FILTER_KEY").unwrap_or_else(|| DEFAULT_FILTER_KEY.into()),
            },
        })
    }
}

impl Target for StackTarget {
    fn reads_stdin(&self) -> bool {
        false
    }

    fn apply_file(
        &mut self,
        path: &Path,
        format: ListFormat,
        options: &ParseOptions,
        op: Op,
    ) -> anyhow::Result<(ParseSummary, ImportStats)> {
        // Pass 1: the whole file must be valid before anything is written.
        let (reader, bar) = open_with_progress(path)?;
        let summary = lists::guard::import(reader, format, options, op, &mut |_| Ok(()))?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let stats = self
            .runtime
            .block_on(stage_and_commit(&self.hashes, path, format, options, op))
            .with_context(|| format!("{}: writing to the hash store", path.display()))?;
        Ok((summary, stats))
    }

    fn finish(
        &mut self,
        totals: &ImportStats,
        rejected: u64,
        fp_rate: f64,
    ) -> anyhow::Result<Option<FilterOutcome>> {
        // Publish whenever the store changed; after a run that changed nothing, publish
        // only if every file applied, so re-running a clean import is how an operator
        // republishes a lost snapshot, while a run of refused files leaves S3 alone.
        if !(totals.changed() || rejected == 0) {
            return Ok(None);
        }
        self.runtime.block_on(async {
            let filter = build_filter(&self.hashes, fp_rate).await?;
            publish(
                &hashgate_aws::s3_client(&self.sdk),
                &self.filter_at,
                &filter,
            )
            .await
            .map_err(anyhow::Error::msg)?;
            Ok(Some(FilterOutcome {
                info: *filter.info(),
                location: self.filter_at.url(),
                store_version: filter.info().store_version,
            }))
        })
    }
}

/// Pass 2: parse on a blocking thread, stage batch by batch as they come, then commit.
async fn stage_and_commit(
    hashes: &DynamoHashes,
    path: &Path,
    format: ListFormat,
    options: &ParseOptions,
    op: Op,
) -> anyhow::Result<ImportStats> {
    let mut import = hashes.begin().await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<ListEntry>>(2);
    let (path_owned, options_owned) = (path.to_path_buf(), options.clone());
    let parser = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let (reader, bar) = open_with_progress(&path_owned)?;
        let mut batch = Vec::with_capacity(APPLY_BATCH);
        lists::guard::import(reader, format, &options_owned, op, &mut |entry| {
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
        stats += hashes.stage(&mut import, &batch, op).await?;
    }
    parser.await??;
    // Committed even when nothing changed, so no pending generation lingers.
    hashes.commit(import).await?;
    Ok(stats)
}

/// A filter over every digest in the table, stamped with the version read before the scan:
/// if an import lands meanwhile, the filter looks stale to scanners, which then ask the
/// store directly until the next filter, never the other way round.
async fn build_filter(hashes: &DynamoHashes, fp_rate: f64) -> anyhow::Result<FilterSnapshot> {
    let (state, _) = hashes.meta().await?;
    let mut digests = Vec::new();
    hashes.for_each_digest(|d| digests.push(*d)).await?;
    let mut builder = FilterSnapshot::builder(
        digests.len() as u64,
        fp_rate,
        hashgate_local::filter_file::random_seed()?,
    )?;
    for d in &digests {
        builder.insert(d);
    }
    Ok(builder.finish(state.version, Timestamp::now())?)
}
