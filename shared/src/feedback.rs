//! List-entry quality: false positives recorded against the list entries a released case
//! matched, and the suppression of an entry that keeps matching innocent files.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::scan::Match;
use crate::store::StoreError;
use crate::time::Timestamp;

/// One list entry: a digest as one list names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EntryKey {
    pub digest: Digest,
    pub list: String,
    pub id: Option<String>,
}

impl EntryKey {
    pub fn of(m: &Match) -> EntryKey {
        EntryKey {
            digest: m.digest,
            list: m.list.clone(),
            id: m.id.clone(),
        }
    }
}

/// What recording one false positive did to one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub key: EntryKey,
    /// False positives on record for the entry (distinct cases), this one included.
    pub false_positives: u64,
    /// This false positive took the entry over the limit: it no longer matches.
    pub newly_suppressed: bool,
}

/// Where false positives are kept: the exact store, next to the entries they concern.
pub trait ListFeedback: Send + Sync {
    /// Record that case `case_id`, which matched `matches`, was a false positive. Each entry
    /// counts a case once, however often this is called for it; an entry whose count
    /// reaches `suppress_after` (0: never) is suppressed.
    fn record_false_positive(
        &self,
        case_id: &str,
        matches: &[Match],
        at: Timestamp,
        suppress_after: u32,
    ) -> impl Future<Output = Result<Vec<Recorded>, StoreError>> + Send;
}

impl<T: ListFeedback> ListFeedback for std::sync::Arc<T> {
    fn record_false_positive(
        &self,
        case_id: &str,
        matches: &[Match],
        at: Timestamp,
        suppress_after: u32,
    ) -> impl Future<Output = Result<Vec<Recorded>, StoreError>> + Send {
        (**self).record_false_positive(case_id, matches, at, suppress_after)
    }
}
