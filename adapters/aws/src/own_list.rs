//! The provider's own list in the DynamoDB exact store: a confirmed case's digests are added
//! as one small atomic import (`begin` → `stage` → `commit`, the same generations every
//! import uses), so they appear together and the store's version moves on. A scanner whose
//! filter predates that version stops trusting the filter and asks the store directly
//! (`scan::Screen::for_store`) until a newer filter is published, so a re-upload of the
//! same file is matched at once.

use hashgate_core::followup::OwnList;
use hashgate_core::lists::ListEntry;
use hashgate_core::store::{ImportStats, Op, StoreError};

use crate::dynamo::DynamoHashes;

/// Imports racing this one (two confirmations at once) make a commit fail ("no longer
/// pending"); the add is then started again, this many times in all.
const ATTEMPTS: usize = 3;
/// How long an add waits for another import to finish before it gives up (and leaves the
/// followup on the case): starting its own would abandon the other one's generation.
const WAIT_FOR_IMPORT: std::time::Duration = std::time::Duration::from_secs(5);

impl OwnList for DynamoHashes {
    async fn add(&self, entries: &[ListEntry]) -> Result<ImportStats, StoreError> {
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let waited = std::time::Instant::now();
            loop {
                let (_, generations) = self.meta().await?;
                let Some(pending) = generations.pending else {
                    break;
                };
                if waited.elapsed() >= WAIT_FOR_IMPORT {
                    return Err(StoreError::Backend {
                        location: self.location(),
                        message: format!(
                            "an import into the hash store is in progress (generation {pending}); \
                         the confirmed digests are added once it is finished (the followup \
                         stays on the case until then)"
                        ),
                    });
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            let mut import = self.begin().await?;
            let stats = self.stage(&mut import, entries, Op::Add).await?;
            match self.commit(import).await {
                Ok(_) => return Ok(stats),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }
}
