//! Cases and their audit trail: what a match leaves behind for the reviewers.
//!
//! A case is created once per matching object version (its id comes from
//! [`ObjectRef::case_id`]); every action on it is an append-only [`AuditEntry`].

use serde::{Deserialize, Serialize};

use crate::digest::DigestSet;
use crate::event::ObjectRef;
use crate::scan::Match;

/// Where a quarantined copy lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineLocation {
    pub bucket: String,
    pub key: String,
}

impl QuarantineLocation {
    /// The quarantine key of a case: one object per case, so retries write the same place.
    pub fn for_case(bucket: &str, case_id: &str) -> QuarantineLocation {
        QuarantineLocation {
            bucket: bucket.to_string(),
            key: format!("cases/{case_id}/object"),
        }
    }
}

/// Where a case stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Quarantined and waiting for a reviewer.
    PendingReview,
    /// Held in place (tagged, not moved), waiting for a reviewer.
    HeldInPlace,
    /// The scanned version was replaced or deleted before it could be copied: nothing to
    /// preserve, but the match is on record.
    ContentGone,
    /// A reviewer confirmed the match.
    Confirmed,
    /// A reviewer found a false positive; the object was restored.
    Released,
}

/// The durable record of a match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRecord {
    pub case_id: String,
    pub object: ObjectRef,
    pub size: u64,
    /// Hex digests of the scanned content.
    pub digests: Vec<(String, String)>,
    pub matches: Vec<Match>,
    pub quarantine: Option<QuarantineLocation>,
    pub status: CaseStatus,
    /// RFC 3339.
    pub created_at: String,
}

impl CaseRecord {
    pub fn digest_pairs(digests: &DigestSet) -> Vec<(String, String)> {
        digests
            .iter()
            .map(|d| (d.algorithm().name().to_string(), d.to_hex()))
            .collect()
    }
}

/// One action on a case, appended and never changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub case_id: String,
    /// RFC 3339.
    pub at: String,
    /// `scanner`, or the reviewer's identity.
    pub actor: String,
    /// e.g. `quarantined`, `held_in_place`, `revealed`, `confirmed`, `released`.
    pub action: String,
    pub detail: String,
}
