//! Cases and their audit trail: what a match leaves behind for the reviewers.
//!
//! A case is created once per matching object version (its id comes from
//! [`ObjectRef::case_id`]); every action on it is an append-only [`AuditEntry`].

use serde::{Deserialize, Serialize};

pub use crate::audit::{AuditAction, AuditEntry};
use crate::digest::DigestSet;
use crate::event::ObjectRef;
pub use crate::followup::Followup;
use crate::report::UploadFacts;
use crate::review::{Classification, RestoredTo, Review};
use crate::scan::Match;
use crate::time::Timestamp;

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

/// Where a case stands. Written in one spelling only, [`CaseStatus::as_str`] (snake case),
/// wherever it is stored; the variant names that older records carry are still read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Quarantined and waiting for a reviewer.
    #[serde(alias = "PendingReview")]
    PendingReview,
    /// Held in place (tagged, not moved), waiting for a reviewer.
    #[serde(alias = "HeldInPlace")]
    HeldInPlace,
    /// The scanned version was replaced or deleted before it could be copied: nothing to
    /// preserve, but the match is on record.
    #[serde(alias = "ContentGone")]
    ContentGone,
    /// A reviewer confirmed the match.
    #[serde(alias = "Confirmed")]
    Confirmed,
    /// A reviewer found a false positive; the object was restored.
    #[serde(alias = "Released")]
    Released,
    /// One reviewer confirmed; the two-person rule waits for a second.
    AwaitingSecondReview,
    /// A reviewer asked for a senior look; still open.
    Escalated,
    /// A reviewer found a false positive and the content is being restored (a restore
    /// interrupted here is resumed, never started over).
    Releasing,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 8] = [
        CaseStatus::PendingReview,
        CaseStatus::HeldInPlace,
        CaseStatus::ContentGone,
        CaseStatus::Confirmed,
        CaseStatus::Released,
        CaseStatus::AwaitingSecondReview,
        CaseStatus::Escalated,
        CaseStatus::Releasing,
    ];

    /// The one spelling written to storage, queues and events.
    pub const fn as_str(self) -> &'static str {
        match self {
            CaseStatus::PendingReview => "pending_review",
            CaseStatus::HeldInPlace => "held_in_place",
            CaseStatus::ContentGone => "content_gone",
            CaseStatus::Confirmed => "confirmed",
            CaseStatus::Released => "released",
            CaseStatus::AwaitingSecondReview => "awaiting_second_review",
            CaseStatus::Escalated => "escalated",
            CaseStatus::Releasing => "releasing",
        }
    }

    /// Still waiting for a decision (a restore in progress is not: it is decided).
    pub const fn is_open(self) -> bool {
        matches!(
            self,
            CaseStatus::PendingReview
                | CaseStatus::HeldInPlace
                | CaseStatus::ContentGone
                | CaseStatus::AwaitingSecondReview
                | CaseStatus::Escalated
        )
    }

    /// The variant's name, as records written before [`CaseStatus::as_str`] spelled it.
    const fn legacy_name(self) -> &'static str {
        match self {
            CaseStatus::PendingReview => "PendingReview",
            CaseStatus::HeldInPlace => "HeldInPlace",
            CaseStatus::ContentGone => "ContentGone",
            CaseStatus::Confirmed => "Confirmed",
            CaseStatus::Released => "Released",
            // Written in the snake-case spelling from the start.
            CaseStatus::AwaitingSecondReview => "awaiting_second_review",
            CaseStatus::Escalated => "escalated",
            CaseStatus::Releasing => "releasing",
        }
    }
}

impl std::fmt::Display for CaseStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CaseStatus {
    type Err = String;

    /// Either spelling: `pending_review`, or `PendingReview` as older records have it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CaseStatus::ALL
            .into_iter()
            .find(|c| c.as_str() == s || c.legacy_name() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = CaseStatus::ALL.iter().map(|c| c.as_str()).collect();
                format!(
                    "not a case status: {s:?} (expected one of {})",
                    known.join(", ")
                )
            })
    }
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
    pub created_at: Timestamp,
    /// When the object was uploaded, where the event said (records written before this
    /// field existed have none).
    #[serde(default)]
    pub uploaded_at: Option<Timestamp>,
    /// Who uploaded it and from where, as the event said (for the report; see
    /// `report::ReportConfig` for what of it a report gives).
    #[serde(default)]
    pub upload_facts: UploadFacts,
    /// The reviewers' decisions so far, oldest first.
    #[serde(default)]
    pub reviews: Vec<Review>,
    /// The industry classification of a confirmed case (what its report carries).
    #[serde(default)]
    pub classification: Option<Classification>,
    /// Where a false positive's content was put back.
    #[serde(default)]
    pub restored_to: Option<RestoredTo>,
    /// Bumped by every change after creation; stores update a case only at the revision it
    /// was read at, so two reviewers deciding at once cannot both win.
    #[serde(default)]
    pub revision: u64,
    /// What a decision left to do (a report package, sharing, list feedback), written in the
    /// same update as the decision so none is lost; each is removed, audited, once done.
    #[serde(default)]
    pub followups: Vec<Followup>,
    /// A legal hold: the evidence and report are kept beyond their retention until lifted.
    #[serde(default)]
    pub legal_hold: Option<LegalHold>,
}

/// Who placed a legal hold on a case, when and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalHold {
    pub by: String,
    pub at: Timestamp,
    pub reason: String,
}

impl CaseRecord {
    pub fn digest_pairs(digests: &DigestSet) -> Vec<(String, String)> {
        digests
            .iter()
            .map(|d| (d.algorithm().name().to_string(), d.to_hex()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_has_one_written_spelling_and_reads_both() {
        for status in CaseStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(status.to_string(), status.as_str());
            for spelling in [status.as_str(), status.legacy_name()] {
                assert_eq!(spelling.parse::<CaseStatus>().unwrap(), status);
                let read: CaseStatus = serde_json::from_str(&format!("\"{spelling}\"")).unwrap();
                assert_eq!(read, status);
            }
        }
        let err = "pending".parse::<CaseStatus>().unwrap_err();
        assert!(
            err.contains("\"pending\"") && err.contains("pending_review"),
            "{err}"
        );
    }

    #[test]
    fn records_written_before_typed_timestamps_and_statuses_are_read() {
        let old = r#"{"case_id":"case-1","object":{"bucket":"b","key":"k","version_id":null,
            "etag":"e"},"size":3,"digests":[["md5","00"]],"matches":[],"quarantine":null,
            "status":"PendingReview","created_at":"2026-11-21T10:04:05Z"}"#;
        let r: CaseRecord = serde_json::from_str(old).unwrap();
        assert_eq!(r.status, CaseStatus::PendingReview);
        assert_eq!(r.created_at, Timestamp::from_second(1_795_255_445).unwrap());
        assert_eq!(r.uploaded_at, None);
        let again: CaseRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(again, r);
        assert!(serde_json::to_string(&r)
            .unwrap()
            .contains("\"status\":\"pending_review\""));
    }
}
