//! The exact hash store: the authority on whether a digest is on a list, and on which.
//!
//! A bloom filter hit is only a "maybe"; only this store's answer acts (invariant 4). The
//! [`HashStore`] trait is what the scan decision needs; [`embedded::EmbeddedStore`] is the
//! file-backed implementation used by the CLI, local runs and self-hosted deployments.

use std::future::Future;

use crate::digest::{Algorithm, Digest};
use crate::lists::Provenance;

pub mod embedded;

pub use embedded::{EmbeddedStore, Importer, StoreSnapshot};

/// A digest that is on at least one list, with every list entry that names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDigest {
    pub digest: Digest,
    pub provenance: Vec<Provenance>,
}

/// Read access to an exact hash store.
pub trait HashStore: Send + Sync {
    /// Every provenance of each of `digests` that is on a list. Digests on no list are left out.
    fn lookup(
        &self,
        digests: &[Digest],
    ) -> impl Future<Output = Result<Vec<StoredDigest>, StoreError>> + Send;
}

/// What went wrong in a store, and where.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("hash store {location}: {message}")]
    Backend { location: String, message: String },
    #[error("hash store {location}: corrupt record for {key}: {reason}")]
    Corrupt {
        location: String,
        key: String,
        reason: String,
    },
    #[error("{what} is too long ({len} bytes, at most {max})")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
}

/// What an import did. Counts are of (digest, list entry) pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportStats {
    /// Entries that were new.
    pub added: u64,
    /// Entries already present whose category changed.
    pub updated: u64,
    /// Entries already present unchanged (a re-import is idempotent).
    pub already_present: u64,
    /// Entries withdrawn by a removal import.
    pub removed: u64,
    /// Entries a removal import named that were not there.
    pub not_present: u64,
}

impl ImportStats {
    pub fn changed(&self) -> bool {
        self.added + self.updated + self.removed > 0
    }
}

impl std::ops::AddAssign for ImportStats {
    fn add_assign(&mut self, o: ImportStats) {
        self.added += o.added;
        self.updated += o.updated;
        self.already_present += o.already_present;
        self.removed += o.removed;
        self.not_present += o.not_present;
    }
}

/// Entries per (algorithm, list), and the store's version.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreStats {
    /// Bumped by every import that changed something; filters record the version they cover.
    pub version: u64,
    /// Distinct digests per algorithm.
    pub digests: Vec<(Algorithm, u64)>,
    /// List entries per list and algorithm.
    pub entries: Vec<ListCount>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ListCount {
    pub list: String,
    pub algorithm: Algorithm,
    pub entries: u64,
}

impl StoreStats {
    pub fn total_digests(&self) -> u64 {
        self.digests.iter().map(|(_, n)| n).sum()
    }
}
