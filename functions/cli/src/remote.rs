//! Imports into a stack: the DynamoDB exact store and the filter bucket named by the
//! environment (`HASHGATE_HASH_TABLE`, `HASHGATE_FILTER_BUCKET`, the signing key
//! (`HASHGATE_FILTER_SIGNING_SECRET`, or locally `HASHGATE_FILTER_SIGNING_KEY`), the trusted
//! public keys (`HASHGATE_FILTER_PUBLIC_KEYS`), and the usual AWS variables,
//! `AWS_ENDPOINT_URL` included) — the same steps hashlist-sync runs on a file dropped in the
//! lists bucket.
//!
//! Each file is atomic: read once whole through the guards (`hashgate_core::lists::sync`:
//! every entry valid, not the digest of the empty file, within the limits, a withdrawal not
//! larger than the allowed share of its list unless `--force`), then staged under a new
//! generation of the store in bounded batches, then committed with one conditional write
//! (`hashgate_aws::list_import`). A process that dies while staging leaves nothing visible;
//! running the import again applies the file whole. Then a filter is built and published,
//! signed (`hashgate_aws::publisher`).

use std::path::Path;

use anyhow::{bail, Context};
use hashgate_aws::dynamo::DynamoHashes;
use hashgate_aws::list_import;
use hashgate_aws::publisher::Publisher;
use hashgate_aws::signing;
use hashgate_core::lists::sync::{self, ListFile};
use hashgate_core::lists::{ListFormat, ParseOptions, ParseSummary};
use hashgate_core::manifest::{SigningKey, TrustedKeys};
use hashgate_core::store::{ImportStats, Op};
use hashgate_core::time::Timestamp;
use tokio::runtime::Runtime;

use crate::import::{open_with_progress, FilterOutcome, Guard, Target};

/// Snapshots kept for rollbacks unless `HASHGATE_SNAPSHOTS_KEPT` says otherwise.
const DEFAULT_SNAPSHOTS_KEPT: usize = 10;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The stack's filter bucket, with the keys to read and sign its manifest.
pub struct StackFilters {
    pub runtime: Runtime,
    pub sdk: aws_config::SdkConfig,
    pub publisher: Publisher,
    pub bucket: String,
}

impl StackFilters {
    pub fn from_env() -> anyhow::Result<StackFilters> {
        let Some(bucket) = env("HASHGATE_FILTER_BUCKET") else {
            bail!("HASHGATE_FILTER_BUCKET is not set (for the local stack: set -a; . .local/stack.env)");
        };
        let keys = env(signing::PUBLIC_KEYS_VAR).with_context(|| {
            format!(
                "{} is not set: the public keys the scanners trust (for the local stack: set -a; . .local/stack.env)",
                signing::PUBLIC_KEYS_VAR
            )
        })?;
        let trusted = TrustedKeys::parse(&keys)
            .map_err(|e| anyhow::anyhow!("{}: {e}", signing::PUBLIC_KEYS_VAR))?;
        let kept = match env("HASHGATE_SNAPSHOTS_KEPT") {
            None => DEFAULT_SNAPSHOTS_KEPT,
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 2)
                .with_context(|| {
                    format!("HASHGATE_SNAPSHOTS_KEPT={v:?}: expected a count of at least 2")
                })?,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let sdk = runtime.block_on(hashgate_aws::sdk_config());
        let publisher = Publisher::new(
            hashgate_aws::s3_client(&sdk),
            &bucket,
            trusted.clone(),
            kept,
        );
        Ok(StackFilters {
            runtime,
            sdk,
            publisher,
            bucket,
        })
    }

    /// The signing key, checked against the trusted keys (a filter signed by a key the
    /// scanners do not trust would be refused by every one of them).
    pub fn signing_key(&self, trusted: &TrustedKeys) -> anyhow::Result<SigningKey> {
        let source = signing::source_from_vars(env).map_err(anyhow::Error::msg)?;
        let key = self
            .runtime
            .block_on(signing::load(&self.sdk, &source))
            .map_err(anyhow::Error::msg)?;
        if !trusted.ids().contains(&key.public().id()) {
            bail!(
                "the signing key (id {}) is not among {} ({}): the scanners would refuse what it signs",
                key.public().id(),
                signing::PUBLIC_KEYS_VAR,
                trusted.ids().join(", ")
            );
        }
        Ok(key)
    }

    pub fn trusted() -> anyhow::Result<TrustedKeys> {
        let keys = env(signing::PUBLIC_KEYS_VAR)
            .with_context(|| format!("{} is not set", signing::PUBLIC_KEYS_VAR))?;
        TrustedKeys::parse(&keys).map_err(|e| anyhow::anyhow!("{}: {e}", signing::PUBLIC_KEYS_VAR))
    }
}

/// A deployed (or local) stack.
pub struct StackTarget {
    filters: StackFilters,
    hashes: DynamoHashes,
    signing: SigningKey,
}

impl StackTarget {
    pub fn from_env() -> anyhow::Result<StackTarget> {
        let Some(table) = env("HASHGATE_HASH_TABLE") else {
            bail!("no --db DIR, and HASHGATE_HASH_TABLE is not set (for the local stack: set -a; . .local/stack.env)");
        };
        let filters = StackFilters::from_env()?;
        let signing = filters.signing_key(&StackFilters::trusted()?)?;
        Ok(StackTarget {
            hashes: DynamoHashes::new(aws_sdk_dynamodb::Client::new(&filters.sdk), &table),
            filters,
            signing,
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
        guard: &Guard,
    ) -> anyhow::Result<(ParseSummary, ImportStats)> {
        let file = ListFile {
            key: options.source_name.clone(),
            list: options.default_list.clone(),
            format,
            op,
            force: guard.force,
            declared_sha256: None,
            declared_entries: None,
            algorithm: options.algorithm,
        };
        let size = std::fs::metadata(path)
            .with_context(|| format!("{}", path.display()))?
            .len();
        file.check_size(size, &guard.limits)?;
        // Pass 1: the whole file must pass the guards before anything is written.
        let (reader, bar) = open_with_progress(path)?;
        let checked = sync::check(reader, &file, &guard.limits)?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let sizes = self.filters.runtime.block_on(self.hashes.list_sizes())?;
        sync::judge(&file, &checked, &sizes, &guard.limits)?;
        let owned = path.to_path_buf();
        let reopen: list_import::Reopen = Box::new(move || {
            let (reader, _) = open_with_progress(&owned).map_err(std::io::Error::other)?;
            Ok(Box::new(reader) as Box<dyn std::io::Read + Send>)
        });
        let (stats, _) = self
            .filters
            .runtime
            .block_on(list_import::stage_and_commit(
                &self.hashes,
                reopen,
                format,
                options,
                op,
            ))
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{}: writing to the hash store", path.display()))?;
        let summary = ParseSummary {
            entries: checked.entries,
            skipped: 0,
        };
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
        let seed = hashgate_local::filter_file::random_seed()?;
        let filters = &self.filters;
        filters.runtime.block_on(async {
            let filter = list_import::build_filter(&self.hashes, fp_rate, seed, Timestamp::now())
                .await
                .map_err(anyhow::Error::msg)?;
            let m = filters
                .publisher
                .publish(&self.signing, &filter, Timestamp::now())
                .await
                .map_err(anyhow::Error::msg)?;
            Ok(Some(FilterOutcome {
                info: *filter.info(),
                location: format!(
                    "{} (manifest sequence {})",
                    filters.publisher.url(&m.snapshot),
                    m.sequence
                ),
                store_version: filter.info().store_version,
            }))
        })
    }
}
