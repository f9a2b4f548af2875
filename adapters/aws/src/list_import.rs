//! One list file into the DynamoDB exact store, atomically, and a filter built from the whole
//! store: what hashlist-sync and `hashgate lists import` on a stack both run.
//!
//! The file is read twice: the caller's first pass validates all of it (nothing is written
//! for a file that fails), then [`stage_and_commit`] parses it again on a blocking thread and
//! stages it batch by batch under a new generation of the store, and commits with one
//! conditional write (`hashgate_core::generations`). A process that dies while staging
//! leaves nothing visible; running the import again applies the file whole.

use std::io::Read;

use hashgate_core::filter::FilterSnapshot;
use hashgate_core::lists::{self, ListEntry, ListFormat, ParseOptions};
use hashgate_core::store::{ImportStats, Op};
use hashgate_core::time::Timestamp;

use crate::dynamo::DynamoHashes;

/// Entries staged per batch.
pub const APPLY_BATCH: usize = 5_000;

/// Opens the file again for the staging pass.
pub type Reopen = Box<dyn FnOnce() -> std::io::Result<Box<dyn Read + Send>> + Send>;

/// Stage the file `reopen` reads and commit it. Returns what changed and the store version
/// the commit made.
pub async fn stage_and_commit(
    hashes: &DynamoHashes,
    reopen: Reopen,
    format: ListFormat,
    options: &ParseOptions,
    op: Op,
) -> Result<(ImportStats, u64), String> {
    let mut import = hashes.begin().await.map_err(|e| e.to_string())?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<ListEntry>>(2);
    let options_owned = options.clone();
    let parser = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let reader = reopen().map_err(|e| format!("{}: {e}", options_owned.source_name))?;
        let mut batch = Vec::with_capacity(APPLY_BATCH);
        lists::guard::import(reader, format, &options_owned, op, &mut |entry| {
            batch.push(entry);
            if batch.len() == APPLY_BATCH {
                tx.blocking_send(std::mem::take(&mut batch))
                    .map_err(|_| "the writer stopped".to_string())?;
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        if !batch.is_empty() {
            let _ = tx.blocking_send(batch);
        }
        Ok(())
    });
    let mut stats = ImportStats::default();
    let mut staged: Result<(), String> = Ok(());
    while let Some(batch) = rx.recv().await {
        match hashes.stage(&mut import, &batch, op).await {
            Ok(s) => stats += s,
            Err(e) => {
                staged = Err(e.to_string());
                break;
            }
        }
    }
    drop(rx);
    let parsed = parser
        .await
        .map_err(|e| format!("the parser stopped: {e}"))?;
    staged?;
    parsed?;
    // Committed even when nothing changed, so no pending generation lingers.
    let version = hashes.commit(import).await.map_err(|e| e.to_string())?;
    Ok((stats, version))
}

/// A filter over every digest in the table, stamped with the version read before the scan:
/// if an import lands meanwhile, the filter looks stale to scanners, which then ask the
/// store directly until the next filter, never the other way round. `seed` keys the filter
/// (fresh randomness for each build).
pub async fn build_filter(
    hashes: &DynamoHashes,
    fp_rate: f64,
    seed: [u8; 32],
    now: Timestamp,
) -> Result<FilterSnapshot, String> {
    let (state, _) = hashes.meta().await.map_err(|e| e.to_string())?;
    let mut digests = Vec::new();
    hashes
        .for_each_digest(|d| digests.push(*d))
        .await
        .map_err(|e| e.to_string())?;
    let mut builder =
        FilterSnapshot::builder(digests.len() as u64, fp_rate, seed).map_err(|e| e.to_string())?;
    for d in &digests {
        builder.insert(d);
    }
    builder
        .finish(state.version, now)
        .map_err(|e| e.to_string())
}
