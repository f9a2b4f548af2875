//! The quarantine protocol as explicit steps, sans-IO.
//!
//! Invariant 1: the original version is deleted only after a verified quarantine copy and a
//! durable case record exist. The protocol is a state machine: [`Quarantine::action`] says
//! what to do next, the caller does it against real storage and reports the result with
//! [`Quarantine::advance`]. Every action is idempotent, so a crash between any two steps is
//! repaired by running the protocol again from the start for the same event: the copy is
//! found, the case is found, the notification is repeated (consumers dedupe by case id), and
//! the delete of an already-deleted version succeeds.
//!
//! Move mode, in exactly this order:
//! 1. copy the scanned version (by version id, or with an ETag precondition) to quarantine,
//!    under retention;
//! 2. verify the copy against the computed digests;
//! 3. write the case record and its audit entry;
//! 4. put the case on the review queue and publish its event;
//! 5. delete the original version.
//!
//! Hold-in-place mode tags the object instead of moving it, then does 3 and 4.

use crate::case::{AuditAction, AuditEntry, CaseRecord, CaseStatus, QuarantineLocation};
use crate::digest::DigestSet;
use crate::event::ObjectRef;
use crate::report::UploadFacts;
use crate::scan::Match;
use crate::time::Timestamp;

/// How matches are contained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Copy to the quarantine bucket, then delete the original.
    Move,
    /// Tag the object and leave it (for buckets whose policy denies reads of tagged objects).
    HoldInPlace,
    /// Leave the object untouched and open a case for a reviewer (a choice for perceptual
    /// matches, where a provider may want a human to look before anything moves). The case
    /// is `held_in_place`; its audit entry says it was left for review.
    ReviewOnly,
}

/// Everything the protocol needs to know about one match.
#[derive(Clone, Debug)]
pub struct Plan {
    pub object: ObjectRef,
    pub size: u64,
    pub digests: DigestSet,
    pub matches: Vec<Match>,
    pub quarantine_bucket: String,
    /// When the quarantine copy's Object Lock retention ends.
    pub retain_until: Timestamp,
    pub mode: Mode,
    /// When this attempt runs, by the caller's clock.
    pub now: Timestamp,
    /// When the object was uploaded, if the event said.
    pub uploaded_at: Option<Timestamp>,
    /// The bucket owner and source address, as far as the event said.
    pub upload_facts: UploadFacts,
}

/// The metadata keys of a quarantine copy: where it came from, and its digests
/// ([`digest_metadata_key`]). The one place these names are spelled.
pub mod metadata {
    pub const CASE_ID: &str = "hashgate-case-id";
    pub const ORIGIN_BUCKET: &str = "hashgate-origin-bucket";
    pub const ORIGIN_KEY: &str = "hashgate-origin-key";
    pub const ORIGIN_VERSION_ID: &str = "hashgate-origin-version-id";
    pub const ORIGIN_ETAG: &str = "hashgate-origin-etag";

    /// `hashgate-md5`, `hashgate-sha1`, `hashgate-sha256`.
    pub fn digest_metadata_key(algorithm: crate::digest::Algorithm) -> String {
        format!("hashgate-{}", algorithm.name())
    }
}

impl Plan {
    pub fn case_id(&self) -> String {
        self.object.case_id()
    }

    pub fn destination(&self) -> QuarantineLocation {
        QuarantineLocation::for_case(&self.quarantine_bucket, &self.case_id())
    }

    /// Metadata stored with the quarantine copy: where it came from and why.
    pub fn copy_metadata(&self) -> Vec<(String, String)> {
        let mut m = vec![
            (metadata::CASE_ID.to_string(), self.case_id()),
            (
                metadata::ORIGIN_BUCKET.to_string(),
                self.object.bucket.clone(),
            ),
            (metadata::ORIGIN_KEY.to_string(), self.object.key.clone()),
        ];
        if let Some(v) = &self.object.version_id {
            m.push((metadata::ORIGIN_VERSION_ID.to_string(), v.clone()));
        }
        if let Some(e) = &self.object.etag {
            m.push((metadata::ORIGIN_ETAG.to_string(), e.clone()));
        }
        for d in self.digests.iter() {
            m.push((metadata::digest_metadata_key(d.algorithm()), d.to_hex()));
        }
        m
    }

    fn record(&self, status: CaseStatus, quarantine: Option<QuarantineLocation>) -> CaseRecord {
        CaseRecord {
            case_id: self.case_id(),
            object: self.object.clone(),
            size: self.size,
            digests: CaseRecord::digest_pairs(&self.digests),
            matches: self.matches.clone(),
            quarantine,
            status,
            created_at: self.now,
            uploaded_at: self.uploaded_at,
            reviews: Vec::new(),
            classification: None,
            restored_to: None,
            revision: 0,
            upload_facts: self.upload_facts.clone(),
            followups: Vec::new(),
            legal_hold: None,
        }
    }

    fn audit(&self, action: AuditAction, detail: String) -> AuditEntry {
        AuditEntry::new(self.case_id(), self.now, "scanner", action, detail)
    }
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Copy exactly `from` (its version id, or with its ETag as a precondition) to `to`, with
    /// Object Lock retention and `metadata`. If `to` already holds a copy of this case whose
    /// content verifies, report [`Outcome::Copied`] without copying again.
    Copy {
        from: ObjectRef,
        to: QuarantineLocation,
        retain_until: Timestamp,
        metadata: Vec<(String, String)>,
    },
    /// Check the copy at `at` has `size` bytes and the `expected` digests.
    Verify {
        at: QuarantineLocation,
        expected: DigestSet,
        size: u64,
    },
    /// Tag `object` (that exact version) as held; merge with its tags, never overwrite them.
    Tag { object: ObjectRef, case_id: String },
    /// Create the case record if it does not exist (conditional put), with its audit entry.
    WriteCase {
        record: CaseRecord,
        audit: AuditEntry,
    },
    /// Put the case on the review queue and publish its event.
    Notify { record: CaseRecord },
    /// Delete exactly `object` (that version; with its ETag as a precondition when
    /// unversioned). Deleting a version that is already gone succeeds.
    DeleteOriginal { object: ObjectRef },
    /// Finished.
    Done(Finished),
}

/// How a protocol run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finished {
    /// Copied, verified, recorded, announced, original deleted.
    Quarantined,
    /// Tagged in place, recorded, announced.
    HeldInPlace,
    /// The scanned version was gone or replaced before it could be copied; the match is
    /// recorded without content, and a replacing upload is scanned on its own event.
    ContentGone,
    /// Quarantined, but the key was overwritten before the delete: the new version was left
    /// alone (it has its own event and scan).
    QuarantinedOriginalReplaced,
}

/// The result of carrying out an [`Action`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Copied,
    /// The source version no longer exists.
    SourceGone,
    /// The key now holds another version (the ETag precondition failed).
    SourceChanged,
    Verified,
    /// The copy does not match: say how.
    VerifyFailed(String),
    Tagged,
    CaseWritten,
    /// The case already existed (a retry, a duplicate event).
    CaseExisted,
    Notified,
    Deleted,
    /// The version was already gone (a retry after a crash).
    AlreadyDeleted,
    /// The key was overwritten since the scan: nothing was deleted.
    ChangedBeforeDelete,
}

/// The protocol refused to go on: nothing past this point was done, the original is intact,
/// and the event must be retried (or dead-lettered).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("quarantine copy of case {case_id} failed verification: {detail}; the original was left in place")]
    VerificationFailed { case_id: String, detail: String },
    #[error("unexpected outcome {outcome:?} for step {step}")]
    Unexpected {
        step: &'static str,
        outcome: Outcome,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Copy,
    Verify,
    Tag,
    WriteCase,
    Notify,
    Delete,
    Done(Finished),
}

/// One run of the protocol for one match.
#[derive(Debug, Clone)]
pub struct Quarantine {
    plan: Plan,
    step: Step,
    /// The status the case gets, decided by what happened to the content.
    status: CaseStatus,
}

impl Quarantine {
    pub fn new(plan: Plan) -> Quarantine {
        let (step, status) = match plan.mode {
            Mode::Move => (Step::Copy, CaseStatus::PendingReview),
            Mode::HoldInPlace => (Step::Tag, CaseStatus::HeldInPlace),
            Mode::ReviewOnly => (Step::WriteCase, CaseStatus::HeldInPlace),
        };
        Quarantine { plan, step, status }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The next thing to do.
    pub fn action(&self) -> Action {
        let p = &self.plan;
        match self.step {
            Step::Copy => Action::Copy {
                from: p.object.clone(),
                to: p.destination(),
                retain_until: p.retain_until,
                metadata: p.copy_metadata(),
            },
            Step::Verify => Action::Verify {
                at: p.destination(),
                expected: p.digests.exact(),
                size: p.size,
            },
            Step::Tag => Action::Tag {
                object: p.object.clone(),
                case_id: p.case_id(),
            },
            Step::WriteCase => {
                let quarantine =
                    (self.status == CaseStatus::PendingReview).then(|| p.destination());
                let (action, detail) = match self.status {
                    CaseStatus::PendingReview => (
                        AuditAction::Quarantined,
                        format!(
                            "copied to s3://{}/{}",
                            p.quarantine_bucket,
                            p.destination().key
                        ),
                    ),
                    CaseStatus::HeldInPlace if p.mode == Mode::ReviewOnly => (
                        AuditAction::HeldInPlace,
                        "left in place, untouched, for review".to_string(),
                    ),
                    CaseStatus::HeldInPlace => {
                        (AuditAction::HeldInPlace, "tagged in place".to_string())
                    }
                    _ => (
                        AuditAction::ContentGone,
                        "the scanned version was gone or replaced before it could be copied"
                            .to_string(),
                    ),
                };
                Action::WriteCase {
                    record: p.record(self.status, quarantine),
                    audit: p.audit(action, detail),
                }
            }
            Step::Notify => {
                let quarantine =
                    (self.status == CaseStatus::PendingReview).then(|| p.destination());
                Action::Notify {
                    record: p.record(self.status, quarantine),
                }
            }
            Step::Delete => Action::DeleteOriginal {
                object: p.object.clone(),
            },
            Step::Done(f) => Action::Done(f),
        }
    }

    /// Report the outcome of the current action and move on.
    pub fn advance(&mut self, outcome: Outcome) -> Result<(), ProtocolError> {
        let unexpected =
            |step: &'static str, outcome: Outcome| ProtocolError::Unexpected { step, outcome };
        self.step = match (self.step, outcome) {
            (Step::Copy, Outcome::Copied) => Step::Verify,
            (Step::Copy, Outcome::SourceGone | Outcome::SourceChanged) => {
                self.status = CaseStatus::ContentGone;
                Step::WriteCase
            }
            (Step::Copy, o) => return Err(unexpected("copy", o)),
            (Step::Verify, Outcome::Verified) => Step::WriteCase,
            (Step::Verify, Outcome::VerifyFailed(detail)) => {
                return Err(ProtocolError::VerificationFailed {
                    case_id: self.plan.case_id(),
                    detail,
                })
            }
            (Step::Verify, o) => return Err(unexpected("verify", o)),
            (Step::Tag, Outcome::Tagged) => Step::WriteCase,
            (Step::Tag, Outcome::SourceGone | Outcome::SourceChanged) => {
                self.status = CaseStatus::ContentGone;
                Step::WriteCase
            }
            (Step::Tag, o) => return Err(unexpected("tag", o)),
            (Step::WriteCase, Outcome::CaseWritten | Outcome::CaseExisted) => Step::Notify,
            (Step::WriteCase, o) => return Err(unexpected("write case", o)),
            (Step::Notify, Outcome::Notified) => match self.status {
                CaseStatus::PendingReview => Step::Delete,
                CaseStatus::HeldInPlace => Step::Done(Finished::HeldInPlace),
                _ => Step::Done(Finished::ContentGone),
            },
            (Step::Notify, o) => return Err(unexpected("notify", o)),
            (Step::Delete, Outcome::Deleted | Outcome::AlreadyDeleted) => {
                Step::Done(Finished::Quarantined)
            }
            (Step::Delete, Outcome::ChangedBeforeDelete) => {
                Step::Done(Finished::QuarantinedOriginalReplaced)
            }
            (Step::Delete, o) => return Err(unexpected("delete", o)),
            (Step::Done(_), o) => return Err(unexpected("done", o)),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::digest::{digest_bytes, Algorithm, AlgorithmSet};

    /// (version id, content), oldest first.
    type Versions = Vec<(String, Vec<u8>)>;

    /// A small in-memory world with the semantics the real adapters must have: versioned
    /// objects, conditional case writes, a queue that may see duplicates.
    #[derive(Default, Clone)]
    struct World {
        /// (bucket, key) → versions, newest last: (version id, content).
        objects: BTreeMap<(String, String), Versions>,
        retained: BTreeSet<(String, String)>,
        cases: BTreeMap<String, CaseRecord>,
        audit: Vec<AuditEntry>,
        queue: Vec<String>,
        tags: BTreeMap<(String, String), String>,
        deleted: Vec<(String, String, String)>,
    }

    impl World {
        fn current(&self, bucket: &str, key: &str) -> Option<&(String, Vec<u8>)> {
            self.objects.get(&(bucket.into(), key.into()))?.last()
        }

        fn version(&self, o: &ObjectRef) -> Option<&Vec<u8>> {
            let versions = self.objects.get(&(o.bucket.clone(), o.key.clone()))?;
            versions
                .iter()
                .find(|(v, _)| Some(v) == o.version_id.as_ref())
                .map(|(_, c)| c)
        }

        fn put(&mut self, bucket: &str, key: &str, content: &[u8]) -> String {
            let versions = self.objects.entry((bucket.into(), key.into())).or_default();
            let v = format!("v{}", versions.len() + 1);
            versions.push((v.clone(), content.to_vec()));
            v
        }

        fn execute(&mut self, action: &Action) -> Outcome {
            match action {
                Action::Copy { from, to, .. } => {
                    if self.current(&to.bucket, &to.key).is_some() {
                        return Outcome::Copied;
                    }
                    match self.version(from).cloned() {
                        None => Outcome::SourceGone,
                        Some(content) => {
                            self.put(&to.bucket, &to.key, &content);
                            self.retained.insert((to.bucket.clone(), to.key.clone()));
                            Outcome::Copied
                        }
                    }
                }
                Action::Verify { at, expected, size } => {
                    let Some((_, content)) = self.current(&at.bucket, &at.key) else {
                        return Outcome::VerifyFailed("copy missing".into());
                    };
                    if content.len() as u64 != *size
                        || digest_bytes(content, expected.algorithms()) != *expected
                    {
                        return Outcome::VerifyFailed("digest mismatch".into());
                    }
                    Outcome::Verified
                }
                Action::Tag { object, case_id } => {
                    if self.version(object).is_none() {
                        return Outcome::SourceGone;
                    }
                    self.tags
                        .insert((object.bucket.clone(), object.key.clone()), case_id.clone());
                    Outcome::Tagged
                }
                Action::WriteCase { record, audit } => {
                    if self.cases.contains_key(&record.case_id) {
                        return Outcome::CaseExisted;
                    }
                    self.cases.insert(record.case_id.clone(), record.clone());
                    self.audit.push(audit.clone());
                    Outcome::CaseWritten
                }
                Action::Notify { record } => {
                    self.queue.push(record.case_id.clone());
                    Outcome::Notified
                }
                Action::DeleteOriginal { object } => {
                    let k = (object.bucket.clone(), object.key.clone());
                    let Some(versions) = self.objects.get_mut(&k) else {
                        return Outcome::AlreadyDeleted;
                    };
                    let before = versions.len();
                    versions.retain(|(v, _)| Some(v) != object.version_id.as_ref());
                    if versions.len() == before {
                        return Outcome::AlreadyDeleted;
                    }
                    let v = object.version_id.clone().unwrap_or_default();
                    self.deleted
                        .push((object.bucket.clone(), object.key.clone(), v));
                    Outcome::Deleted
                }
                Action::Done(_) => unreachable!(),
            }
        }
    }

    const CONTENT: &[u8] = b"known bad bytes";

    fn plan(world: &mut World, mode: Mode) -> Plan {
        let version = world.put("uploads", "a/b.jpg", CONTENT);
        let digests = digest_bytes(CONTENT, AlgorithmSet::ALL);
        Plan {
            object: ObjectRef {
                bucket: "uploads".into(),
                key: "a/b.jpg".into(),
                version_id: Some(version),
                etag: None,
            },
            size: CONTENT.len() as u64,
            digests,
            matches: vec![Match {
                distance: None,
                algorithm: Algorithm::Md5,
                digest: digests.get(Algorithm::Md5).unwrap(),
                list: "ncmec".into(),
                category: None,
                id: None,
            }],
            quarantine_bucket: "quarantine".into(),
            retain_until: "2027-11-21T00:00:00Z".parse().unwrap(),
            mode,
            now: "2026-11-21T00:00:00Z".parse().unwrap(),
            uploaded_at: Some("2026-11-20T23:59:00Z".parse().unwrap()),
            upload_facts: UploadFacts {
                bucket_owner: Some("111122223333".into()),
                source_ip: Some(crate::report::IpCapture {
                    address: "203.0.113.7".parse().unwrap(),
                    at: Some("2026-11-20T23:59:00Z".parse().unwrap()),
                }),
            },
        }
    }

    /// Run to the end, or crash (stop) after `crash_after` actions. Returns how it ended.
    fn run(world: &mut World, plan: &Plan, crash_after: Option<usize>) -> Option<Finished> {
        let mut q = Quarantine::new(plan.clone());
        let mut done = 0;
        loop {
            let action = q.action();
            if let Action::Done(f) = action {
                return Some(f);
            }
            // Invariant 1, checked before every delete: a verified copy and a case exist.
            if let Action::DeleteOriginal { .. } = &action {
                let dest = plan.destination();
                let copy = world.current(&dest.bucket, &dest.key).expect("copy exists");
                assert_eq!(copy.1, CONTENT, "copy verified before delete");
                assert!(world
                    .retained
                    .contains(&(dest.bucket.clone(), dest.key.clone())));
                assert!(
                    world.cases.contains_key(&plan.case_id()),
                    "case exists before delete"
                );
            }
            let outcome = world.execute(&action);
            q.advance(outcome).unwrap();
            done += 1;
            if Some(done) == crash_after {
                return None;
            }
        }
    }

    #[test]
    fn happy_path_in_order() {
        let mut world = World::default();
        let plan = plan(&mut world, Mode::Move);
        let mut q = Quarantine::new(plan.clone());
        let mut steps = Vec::new();
        while !matches!(q.action(), Action::Done(_)) {
            let a = q.action();
            steps.push(match &a {
                Action::Copy { .. } => "copy",
                Action::Verify { .. } => "verify",
                Action::WriteCase { .. } => "case",
                Action::Notify { .. } => "notify",
                Action::DeleteOriginal { .. } => "delete",
                _ => "other",
            });
            let o = world.execute(&a);
            q.advance(o).unwrap();
        }
        assert_eq!(steps, ["copy", "verify", "case", "notify", "delete"]);
        assert_eq!(q.action(), Action::Done(Finished::Quarantined));
        assert!(world.current("uploads", "a/b.jpg").is_none());
        assert_eq!(
            world.cases[&plan.case_id()].status,
            CaseStatus::PendingReview
        );
    }

    #[test]
    fn a_crash_after_any_step_is_repaired_by_a_retry() {
        for crash_after in 1..=5 {
            let mut world = World::default();
            let plan = plan(&mut world, Mode::Move);
            assert_eq!(run(&mut world, &plan, Some(crash_after)), None);
            // The original is still there unless the delete itself ran.
            let original_left = world.version(&plan.object).is_some();
            assert_eq!(original_left, crash_after < 5, "crash after {crash_after}");
            // The same event again, and once more as a duplicate.
            assert_eq!(run(&mut world, &plan, None), Some(Finished::Quarantined));
            assert_eq!(run(&mut world, &plan, None), Some(Finished::Quarantined));
            assert_eq!(world.cases.len(), 1, "one case, crash after {crash_after}");
            assert_eq!(world.audit.len(), 1);
            assert!(world.version(&plan.object).is_none());
            let dest = plan.destination();
            assert_eq!(
                world.objects[&(dest.bucket, dest.key)].len(),
                1,
                "copied once"
            );
            assert!(world.queue.iter().all(|c| *c == plan.case_id()));
        }
    }

    #[test]
    fn a_failed_verification_never_deletes() {
        let mut world = World::default();
        let plan = plan(&mut world, Mode::Move);
        let dest = plan.destination();
        world.put(&dest.bucket, &dest.key, b"something else");
        let mut q = Quarantine::new(plan.clone());
        let o = world.execute(&q.action());
        q.advance(o).unwrap();
        let o = world.execute(&q.action());
        let err = q.advance(o).unwrap_err();
        assert!(
            matches!(err, ProtocolError::VerificationFailed { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("original was left in place"));
        assert!(world.version(&plan.object).is_some());
        assert!(world.cases.is_empty());
    }

    #[test]
    fn vanished_source_is_recorded_without_delete() {
        let mut world = World::default();
        let plan = plan(&mut world, Mode::Move);
        world.objects.clear();
        assert_eq!(run(&mut world, &plan, None), Some(Finished::ContentGone));
        assert_eq!(world.cases[&plan.case_id()].status, CaseStatus::ContentGone);
        assert_eq!(world.cases[&plan.case_id()].quarantine, None);
        assert!(world.deleted.is_empty());
    }

    #[test]
    fn an_overwrite_before_delete_is_left_alone() {
        let mut q = Quarantine::new(plan(&mut World::default(), Mode::Move));
        for o in [
            Outcome::Copied,
            Outcome::Verified,
            Outcome::CaseWritten,
            Outcome::Notified,
        ] {
            q.advance(o).unwrap();
        }
        q.advance(Outcome::ChangedBeforeDelete).unwrap();
        assert_eq!(
            q.action(),
            Action::Done(Finished::QuarantinedOriginalReplaced)
        );
    }

    #[test]
    fn hold_in_place_tags_and_never_deletes() {
        let mut world = World::default();
        let plan = plan(&mut world, Mode::HoldInPlace);
        assert_eq!(run(&mut world, &plan, None), Some(Finished::HeldInPlace));
        assert!(world.version(&plan.object).is_some());
        assert_eq!(world.tags.len(), 1);
        assert_eq!(world.cases[&plan.case_id()].status, CaseStatus::HeldInPlace);
        assert_eq!(
            world.cases[&plan.case_id()].uploaded_at,
            plan.uploaded_at,
            "the case keeps the upload time"
        );
        assert_eq!(
            world.cases[&plan.case_id()].upload_facts,
            plan.upload_facts,
            "and the bucket owner and source address"
        );
    }

    #[test]
    fn review_only_touches_nothing_and_survives_a_crash_after_every_step() {
        for crash_after in [Some(1), Some(2), None] {
            let mut world = World::default();
            let plan = plan(&mut world, Mode::ReviewOnly);
            if crash_after.is_some() {
                assert_eq!(run(&mut world, &plan, crash_after), None);
            }
            assert_eq!(run(&mut world, &plan, None), Some(Finished::HeldInPlace));
            assert_eq!(run(&mut world, &plan, None), Some(Finished::HeldInPlace));
            assert!(world.version(&plan.object).is_some(), "left in place");
            assert!(world.tags.is_empty(), "not even tagged");
            assert!(world.deleted.is_empty() && world.retained.is_empty());
            assert_eq!(world.cases.len(), 1);
            assert_eq!(world.cases[&plan.case_id()].status, CaseStatus::HeldInPlace);
            assert_eq!(world.audit.len(), 1);
            assert!(world.audit[0].detail.contains("for review"));
            assert!(world.queue.iter().all(|c| *c == plan.case_id()));
        }
    }

    #[test]
    fn copy_metadata_names_origin_and_digests() {
        let plan = plan(&mut World::default(), Mode::Move);
        let m: BTreeMap<_, _> = plan.copy_metadata().into_iter().collect();
        assert_eq!(m["hashgate-origin-bucket"], "uploads");
        assert_eq!(m["hashgate-origin-key"], "a/b.jpg");
        assert_eq!(m["hashgate-origin-version-id"], "v1");
        assert_eq!(m["hashgate-case-id"], plan.case_id());
        assert_eq!(m[metadata::ORIGIN_KEY], "a/b.jpg");
        assert_eq!(
            m["hashgate-md5"],
            plan.digests.get(Algorithm::Md5).unwrap().to_hex()
        );
    }

    #[test]
    fn out_of_order_outcomes_are_refused() {
        let mut q = Quarantine::new(plan(&mut World::default(), Mode::Move));
        let err = q.advance(Outcome::Deleted).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::Unexpected { step: "copy", .. }
        ));
    }
}
