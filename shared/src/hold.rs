//! Legal holds: a case whose evidence and report package must be kept beyond their
//! retention (18 U.S.C. 2258A(h) keeps them at least a year; a hold keeps them until it is
//! lifted).
//!
//! [`place`] and [`release`] are the one rule for holding a case, as
//! [`crate::review::decide`] is for decisions: from the case, the person, the reason and
//! the instant, the next revision of the case and its one audit entry, both written by
//! [`crate::review::ReviewStore::update`] (conditional on the revision). What is held in
//! storage is named here too: the quarantined copy ([`evidence`]) and every object of the
//! report package ([`report_prefix`]).
//!
//! The order with storage never loses evidence and never lets the audit log claim more than
//! is true:
//!
//! - placing: the storage holds first, then the case and its `hold_placed` entry. A crash in
//!   between leaves objects held that the case does not call held: more is kept, nothing
//!   is claimed, and running the command again completes it (holds are idempotent).
//! - releasing: the case and its `hold_released` entry first, then the storage holds are
//!   removed. A crash in between leaves objects held after the case was released: more is
//!   kept, never less, and running the command again finishes the removal
//!   ([`release_unfinished`] tells that case apart from a hold that was never recorded).
//!
//! Removing the storage holds first would, after a crash, leave a case that says held over
//! evidence that retention may already let go of.

use crate::audit::{AuditAction, AuditEntry, ChainedEntry};
use crate::case::{CaseRecord, LegalHold, QuarantineLocation};
use crate::time::{rfc3339, Timestamp};

/// Why a hold or its release is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HoldRefusal {
    #[error("a reason is required")]
    MissingReason,
    #[error("who places or lifts the hold is required")]
    MissingActor,
    #[error("the case is already on legal hold (placed by {by} at {at})")]
    AlreadyHeld { by: String, at: String },
    #[error("the case is not on legal hold")]
    NotHeld,
}

/// An accepted hold or release: the case as it must be written (its revision one above
/// the one it was read at) and its one audit entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldChange {
    pub case: CaseRecord,
    pub audit: AuditEntry,
}

/// Place a legal hold on `case` for `by`, with `reason`, at `now`.
pub fn place(
    case: &CaseRecord,
    by: &str,
    reason: &str,
    now: Timestamp,
) -> Result<HoldChange, HoldRefusal> {
    let (by, reason) = checked(by, reason)?;
    if let Some(h) = &case.legal_hold {
        return Err(HoldRefusal::AlreadyHeld {
            by: h.by.clone(),
            at: rfc3339(h.at),
        });
    }
    let mut next = case.clone();
    next.revision = case.revision + 1;
    next.legal_hold = Some(LegalHold {
        by: by.to_string(),
        at: now,
        reason: reason.to_string(),
    });
    Ok(HoldChange {
        audit: entry(&next, by, reason, now, AuditAction::HoldPlaced, "placed"),
        case: next,
    })
}

/// Lift the legal hold on `case` for `by`, with `reason`, at `now`.
pub fn release(
    case: &CaseRecord,
    by: &str,
    reason: &str,
    now: Timestamp,
) -> Result<HoldChange, HoldRefusal> {
    let (by, reason) = checked(by, reason)?;
    let Some(held) = &case.legal_hold else {
        return Err(HoldRefusal::NotHeld);
    };
    let mut next = case.clone();
    next.revision = case.revision + 1;
    next.legal_hold = None;
    let detail = format!("lifted (placed by {} at {})", held.by, rfc3339(held.at));
    Ok(HoldChange {
        audit: entry(&next, by, reason, now, AuditAction::HoldReleased, &detail),
        case: next,
    })
}

fn checked<'a>(by: &'a str, reason: &'a str) -> Result<(&'a str, &'a str), HoldRefusal> {
    let (by, reason) = (by.trim(), reason.trim());
    if by.is_empty() {
        return Err(HoldRefusal::MissingActor);
    }
    if reason.is_empty() {
        return Err(HoldRefusal::MissingReason);
    }
    Ok((by, reason))
}

fn entry(
    case: &CaseRecord,
    by: &str,
    reason: &str,
    now: Timestamp,
    action: AuditAction,
    what: &str,
) -> AuditEntry {
    let mut held = Vec::new();
    if let Some(q) = evidence(case) {
        held.push(format!("s3://{}/{}", q.bucket, q.key));
    }
    held.push(format!("{} (report package)", report_prefix(&case.case_id)));
    let mut audit = AuditEntry::new(
        case.case_id.clone(),
        now,
        by,
        action,
        format!("legal hold {what}: {}", held.join(", ")),
    );
    audit.reason = Some(reason.to_string());
    audit
}

/// The quarantined copy a hold covers (every stored version of the case's quarantine key);
/// none when the content was never copied (held in place, or gone before the copy).
pub fn evidence(case: &CaseRecord) -> Option<&QuarantineLocation> {
    case.quarantine.as_ref()
}

/// The key prefix of a case's report package in the reports bucket; a hold covers every
/// object version under it.
pub fn report_prefix(case_id: &str) -> String {
    format!("reports/{case_id}/")
}

/// Was a release of `case` recorded whose storage holds may still be on (the process
/// stopped between the case update and their removal)? True when the case is not held and
/// the last hold entry of its history is a `hold_released`: removing them finishes what the
/// audit log already says. A hold that was placed in storage but never recorded (a crash
/// before the case update) is left on: only a recorded release lifts a hold.
pub fn release_unfinished(case: &CaseRecord, history: &[ChainedEntry]) -> bool {
    case.legal_hold.is_none()
        && history
            .iter()
            .rev()
            .map(|e| &e.entry)
            .filter(|e| e.case_id == case.case_id)
            .find(|e| {
                matches!(
                    e.action,
                    AuditAction::HoldPlaced | AuditAction::HoldReleased
                )
            })
            .is_some_and(|e| e.action == AuditAction::HoldReleased)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::link;
    use crate::case::CaseStatus;
    use crate::event::ObjectRef;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn case() -> CaseRecord {
        CaseRecord {
            case_id: "case-1".into(),
            object: ObjectRef {
                bucket: "uploads".into(),
                key: "a.jpg".into(),
                version_id: Some("v1".into()),
                etag: None,
            },
            size: 3,
            digests: vec![],
            matches: vec![],
            quarantine: Some(QuarantineLocation::for_case("quarantine", "case-1")),
            status: CaseStatus::Confirmed,
            created_at: at("2026-11-20T00:00:00Z"),
            uploaded_at: None,
            upload_facts: Default::default(),
            reviews: vec![],
            classification: None,
            restored_to: None,
            revision: 4,
            followups: vec![],
            legal_hold: None,
        }
    }

    #[test]
    fn a_hold_is_placed_with_its_one_audit_entry() {
        let now = at("2026-12-01T10:00:00Z");
        let c = case();
        let placed = place(&c, " counsel ", " preservation request 24-117 ", now).unwrap();
        assert_eq!(placed.case.revision, 5, "the next revision");
        assert_eq!(
            placed.case.legal_hold,
            Some(LegalHold {
                by: "counsel".into(),
                at: now,
                reason: "preservation request 24-117".into()
            })
        );
        // Nothing else of the case changes.
        let mut unchanged = placed.case.clone();
        unchanged.legal_hold = None;
        unchanged.revision = c.revision;
        assert_eq!(unchanged, c);
        let a = &placed.audit;
        assert_eq!(
            (a.case_id.as_str(), a.actor.as_str(), a.action, a.at),
            ("case-1", "counsel", AuditAction::HoldPlaced, now)
        );
        assert_eq!(a.reason.as_deref(), Some("preservation request 24-117"));
        assert!(
            a.detail
                .contains("s3://quarantine/cases/case-1/object, reports/case-1/"),
            "{}",
            a.detail
        );
    }

    #[test]
    fn a_held_case_is_not_held_again_and_an_unheld_one_not_released() {
        let now = at("2026-12-01T10:00:00Z");
        let held = place(&case(), "counsel", "request", now).unwrap().case;
        assert_eq!(
            place(&held, "other", "again", now),
            Err(HoldRefusal::AlreadyHeld {
                by: "counsel".into(),
                at: "2026-12-01T10:00:00Z".into()
            })
        );
        assert_eq!(
            release(&case(), "counsel", "done", now),
            Err(HoldRefusal::NotHeld)
        );
    }

    #[test]
    fn a_reason_and_an_actor_are_required() {
        let now = at("2026-12-01T10:00:00Z");
        for (by, reason, refusal) in [
            ("counsel", "", HoldRefusal::MissingReason),
            ("counsel", "  \n", HoldRefusal::MissingReason),
            ("", "request", HoldRefusal::MissingActor),
            (" ", "request", HoldRefusal::MissingActor),
        ] {
            assert_eq!(place(&case(), by, reason, now), Err(refusal.clone()));
            let held = place(&case(), "counsel", "request", now).unwrap().case;
            assert_eq!(release(&held, by, reason, now), Err(refusal));
        }
    }

    #[test]
    fn a_release_lifts_the_hold_and_names_who_placed_it() {
        let placed_at = at("2026-12-01T10:00:00Z");
        let now = at("2027-03-01T09:00:00Z");
        let held = place(&case(), "counsel", "request", placed_at)
            .unwrap()
            .case;
        let released = release(&held, "counsel-2", "matter closed", now).unwrap();
        assert_eq!(released.case.legal_hold, None);
        assert_eq!(released.case.revision, held.revision + 1);
        let a = &released.audit;
        assert_eq!(
            (a.actor.as_str(), a.action, a.at),
            ("counsel-2", AuditAction::HoldReleased, now)
        );
        assert_eq!(a.reason.as_deref(), Some("matter closed"));
        assert!(
            a.detail
                .contains("placed by counsel at 2026-12-01T10:00:00Z"),
            "{}",
            a.detail
        );
        // A case without a quarantined copy (held in place) holds its report package only.
        let mut in_place = case();
        in_place.quarantine = None;
        let a = place(&in_place, "counsel", "request", now).unwrap().audit;
        assert!(!a.detail.contains("s3://"), "{}", a.detail);
        assert!(a.detail.contains("reports/case-1/"), "{}", a.detail);
        assert_eq!(report_prefix("case-9"), "reports/case-9/");
        assert_eq!(evidence(&in_place), None);
    }

    #[test]
    fn only_a_recorded_release_leaves_storage_holds_to_remove() {
        let now = at("2026-12-01T10:00:00Z");
        let c = case();
        let placed = place(&c, "counsel", "request", now).unwrap();
        let released = release(&placed.case, "counsel", "closed", now).unwrap();
        let other = AuditEntry::new("case-2", now, "x", AuditAction::HoldPlaced, "");
        let chain = |entries: Vec<AuditEntry>| {
            let mut prev: Option<ChainedEntry> = None;
            entries
                .into_iter()
                .map(|e| {
                    let next = link(prev.as_ref(), e);
                    prev = Some(next.clone());
                    next
                })
                .collect::<Vec<_>>()
        };
        // Released and recorded: what is still held in storage is to be removed.
        let h = chain(vec![
            placed.audit.clone(),
            released.audit.clone(),
            other.clone(),
        ]);
        assert!(release_unfinished(&released.case, &h));
        // Held in storage but never recorded (a crash before the case update): left on.
        assert!(!release_unfinished(&c, &chain(vec![other.clone()])));
        assert!(!release_unfinished(&c, &[]));
        // Still held: nothing to finish.
        let h = chain(vec![placed.audit.clone()]);
        assert!(!release_unfinished(&placed.case, &h));
        // Held again after a release: the latest entry decides.
        let again = place(&released.case, "counsel", "new request", now).unwrap();
        let h = chain(vec![placed.audit, released.audit, again.audit]);
        assert!(!release_unfinished(&again.case, &h));
    }
}
