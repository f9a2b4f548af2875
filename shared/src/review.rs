//! The review queue's rules: who may do what to a case, the two-person rule, the restore
//! of a false positive as a sans-IO protocol, the queue's order and filters, and the ports
//! the review service reaches storage through.
//!
//! The review service (`functions/review-api`) authenticates people and renders previews;
//! everything it decides about a case is decided here, from the case, the person, the
//! policy and the instant it is handed.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::audit::{
    AuditAction, AuditEntry, ChainedEntry, Checkpoint, ReadCheckpoint, Verification, Verifier,
};
use crate::case::{CaseRecord, CaseStatus, QuarantineLocation};
use crate::digest::{Algorithm, DigestSet};
use crate::event::ObjectRef;
use crate::followup::Followup;
use crate::pipeline::StorageError;
use crate::time::{rfc3339, Timestamp};

/// What a signed-in person may do. Administrators may do everything reviewers may, and
/// verify the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Reviewer,
    Admin,
}

impl Role {
    /// The identity provider's group names (`cognito:groups`) → the strongest role among
    /// them; none for a person in neither group.
    pub fn from_groups<S: AsRef<str>>(groups: &[S]) -> Option<Role> {
        let has = |name: &str| groups.iter().any(|g| g.as_ref() == name);
        if has("admin") {
            Some(Role::Admin)
        } else if has("reviewer") {
            Some(Role::Reviewer)
        } else {
            None
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }

    /// May this role do what `needed` may?
    pub fn allows(self, needed: Role) -> bool {
        matches!(
            (self, needed),
            (Role::Admin, _) | (Role::Reviewer, Role::Reviewer)
        )
    }
}

/// A signed-in person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub user: String,
    pub role: Role,
}

/// NCMEC's industry classification of confirmed material (the report carries it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Classification {
    /// Prepubescent minor, sex act.
    A1,
    /// Prepubescent minor, lascivious exhibition.
    A2,
    /// Pubescent minor, sex act.
    B1,
    /// Pubescent minor, lascivious exhibition.
    B2,
}

impl Classification {
    pub const fn as_str(self) -> &'static str {
        match self {
            Classification::A1 => "A1",
            Classification::A2 => "A2",
            Classification::B1 => "B1",
            Classification::B2 => "B2",
        }
    }
}

/// A reviewer's decision on a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Confirm,
    FalsePositive,
    Escalate,
}

impl Decision {
    pub const fn as_str(self) -> &'static str {
        match self {
            Decision::Confirm => "confirm",
            Decision::FalsePositive => "false_positive",
            Decision::Escalate => "escalate",
        }
    }
}

/// One decision, as the case keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub reviewer: String,
    pub decision: Decision,
    #[serde(default)]
    pub classification: Option<Classification>,
    pub reason: String,
    pub at: Timestamp,
}

/// Where a false positive was put back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoredTo {
    pub bucket: String,
    pub key: String,
    #[serde(default)]
    pub version_id: Option<String>,
}

/// The review policy (configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewPolicy {
    /// A confirmation needs two different reviewers.
    pub two_person_rule: bool,
    /// Where a false positive goes when its original key holds another object by now.
    pub restore_prefix: String,
    /// Reveals per reviewer per UTC day.
    pub reveal_daily_limit: u32,
}

impl Default for ReviewPolicy {
    fn default() -> Self {
        ReviewPolicy {
            two_person_rule: true,
            restore_prefix: "hashgate-restored/".into(),
            reveal_daily_limit: 20,
        }
    }
}

/// Why a decision is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("a reason is required")]
    MissingReason,
    #[error("confirming needs an industry classification (A1, A2, B1 or B2)")]
    MissingClassification,
    #[error("only a confirmation carries a classification")]
    UnexpectedClassification,
    #[error("the case is {0}: it takes no more decisions")]
    Closed(CaseStatus),
    #[error("{0} already confirmed this case: the two-person rule needs a second reviewer")]
    SameReviewer(String),
    #[error("the first reviewer classified this case {first}, not {second}: escalate it instead")]
    ClassificationDisagrees {
        first: &'static str,
        second: &'static str,
    },
}

impl Refusal {
    /// A conflict with the case's state (as opposed to a malformed request).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Refusal::Closed(_) | Refusal::SameReviewer(_) | Refusal::ClassificationDisagrees { .. }
        )
    }
}

/// A decision that was accepted: the case as it must be written (at the revision it was
/// read at) and its one audit entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decided {
    pub case: CaseRecord,
    pub audit: AuditEntry,
    /// The case's content must now be restored ([`Restore`]).
    pub restore: bool,
}

/// Decide `decision` on `case` for `who`.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    case: &CaseRecord,
    who: &Identity,
    decision: Decision,
    classification: Option<Classification>,
    reason: &str,
    address: Option<&str>,
    now: Timestamp,
    policy: &ReviewPolicy,
) -> Result<Decided, Refusal> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Refusal::MissingReason);
    }
    match (decision, classification) {
        (Decision::Confirm, None) => return Err(Refusal::MissingClassification),
        (Decision::FalsePositive | Decision::Escalate, Some(_)) => {
            return Err(Refusal::UnexpectedClassification)
        }
        _ => {}
    }
    if !case.status.is_open() {
        return Err(Refusal::Closed(case.status));
    }
    let mut next = case.clone();
    next.revision = case.revision + 1;
    next.reviews.push(Review {
        reviewer: who.user.clone(),
        decision,
        classification,
        reason: reason.to_string(),
        at: now,
    });
    let mut restore = false;
    let detail;
    match decision {
        Decision::Confirm => {
            let chosen = classification.expect("checked above");
            // The confirmations since the case was last opened or escalated.
            let earlier: Vec<&Review> = case
                .reviews
                .iter()
                .filter(|r| r.decision == Decision::Confirm)
                .collect();
            if !policy.two_person_rule {
                next.status = CaseStatus::Confirmed;
                next.classification = Some(chosen);
                detail = format!("confirm {}", chosen.as_str());
            } else if case.status != CaseStatus::AwaitingSecondReview {
                next.status = CaseStatus::AwaitingSecondReview;
                detail = format!("confirm {} (first of two)", chosen.as_str());
            } else {
                if earlier.iter().any(|r| r.reviewer == who.user) {
                    return Err(Refusal::SameReviewer(who.user.clone()));
                }
                let first = earlier
                    .last()
                    .and_then(|r| r.classification)
                    .unwrap_or(chosen);
                if first != chosen {
                    return Err(Refusal::ClassificationDisagrees {
                        first: first.as_str(),
                        second: chosen.as_str(),
                    });
                }
                next.status = CaseStatus::Confirmed;
                next.classification = Some(chosen);
                detail = format!("confirm {} (second of two)", chosen.as_str());
            }
        }
        Decision::FalsePositive => {
            // The content goes back to its owner; a case whose content never left (gone
            // before it could be copied) is simply released.
            if case.status == CaseStatus::ContentGone || case.quarantine.is_none() {
                next.status = if case.status == CaseStatus::HeldInPlace {
                    CaseStatus::Releasing
                } else {
                    CaseStatus::Released
                };
            } else {
                next.status = CaseStatus::Releasing;
            }
            restore = next.status == CaseStatus::Releasing;
            detail = "false_positive".to_string();
        }
        Decision::Escalate => {
            next.status = CaseStatus::Escalated;
            detail = "escalate".to_string();
        }
    }
    // What the new status leaves to do is written with the decision itself, so none of it
    // can be lost between the decision and its doing.
    for f in Followup::after(next.status) {
        if !next.followups.contains(&f) {
            next.followups.push(f);
        }
    }
    let mut audit = AuditEntry::new(
        case.case_id.clone(),
        now,
        who.user.clone(),
        AuditAction::Decided,
        format!("{detail}: {} → {}", case.status, next.status),
    );
    audit.address = address.map(str::to_string);
    audit.reason = Some(reason.to_string());
    Ok(Decided {
        case: next,
        audit,
        restore,
    })
}

/// Metadata on a restored object naming the case it came back from, so a retried restore
/// recognises its own copy (and never mistakes someone else's object for it).
pub const RESTORED_CASE_METADATA: &str = "hashgate-restored-case";

/// Is content with `digests` the content of `case`, released as a false positive? The case
/// must be released or releasing (a reviewer decided; the restored copy's upload event can
/// arrive before the restore has written its last step), every digest computed must equal
/// the case's digest of that algorithm, and at least one must have been compared.
pub fn is_released_content(case: &CaseRecord, digests: &DigestSet) -> bool {
    let mut compared = 0;
    for d in digests.iter().filter(|d| !d.algorithm().is_perceptual()) {
        let name = d.algorithm().name();
        match case.digests.iter().find(|(a, _)| a == name) {
            Some((_, hex)) if *hex == d.to_hex() => compared += 1,
            Some(_) => return false,
            None => {}
        }
    }
    matches!(case.status, CaseStatus::Released | CaseStatus::Releasing) && compared > 0
}

/// One object place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectPlace {
    pub bucket: String,
    pub key: String,
}

/// What the restore protocol asks its caller to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreAction {
    /// Copy the quarantined bytes to the first of `candidates` that is free (absent) or
    /// already holds this case's restored copy (metadata [`RESTORED_CASE_METADATA`] =
    /// `case_id`), writing that metadata; report `Placed`. A candidate holding anyone
    /// else's object is never touched.
    Place {
        case_id: String,
        from: QuarantineLocation,
        candidates: Vec<ObjectPlace>,
    },
    /// Read the placed object back through the case's digest algorithms; report `Verified`.
    Verify {
        placed: RestoredTo,
        algorithms: Vec<Algorithm>,
    },
    /// A case held in place: replace the hold tag with a release, keeping the owner's tags.
    Unhold { object: ObjectRef },
    /// Write the released case and its audit entry ([`Restore::finish`]).
    Finish,
}

/// What the caller reports back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreOutcome {
    Placed(RestoredTo),
    /// Every candidate holds another object: nothing was written.
    NoFreePlace,
    Verified(DigestSet),
    Unheld,
}

/// A protocol violation or a failed check: the restore stops, the case stays `releasing`
/// and a retry resumes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("case {0} is not being released")]
    NotReleasing(String),
    #[error("every place to restore case {case_id} to holds another object: {places}")]
    NoFreePlace { case_id: String, places: String },
    #[error(
        "the restored copy at s3://{bucket}/{key} does not match the case's digests: {detail}"
    )]
    Mismatch {
        bucket: String,
        key: String,
        detail: String,
    },
    #[error("unexpected outcome {outcome} for step {step}")]
    Unexpected { step: String, outcome: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Place,
    Verify(RestoredTo),
    Unhold,
    Finish(Option<RestoredTo>),
}

/// The restore of a false positive, sans-IO: place the exact quarantined bytes back (at the
/// original key, or under the restore prefix if that key was reused), verify them by their
/// digests, then write the released case. Every step is idempotent, so a crash anywhere is
/// repaired by running the protocol again from the `releasing` case.
#[derive(Clone, Debug)]
pub struct Restore {
    case: CaseRecord,
    prefix: String,
    step: Step,
}

impl Restore {
    pub fn new(case: CaseRecord, policy: &ReviewPolicy) -> Result<Restore, RestoreError> {
        if case.status != CaseStatus::Releasing {
            return Err(RestoreError::NotReleasing(case.case_id));
        }
        let step = if case.quarantine.is_some() {
            Step::Place
        } else {
            Step::Unhold
        };
        Ok(Restore {
            case,
            prefix: policy.restore_prefix.clone(),
            step,
        })
    }

    /// The original key first, then the same key under the prefix and the case id (unique
    /// per case, so it is free unless it holds this case's own copy).
    pub fn candidates(&self) -> Vec<ObjectPlace> {
        let o = &self.case.object;
        vec![
            ObjectPlace {
                bucket: o.bucket.clone(),
                key: o.key.clone(),
            },
            ObjectPlace {
                bucket: o.bucket.clone(),
                key: format!("{}{}/{}", self.prefix, self.case.case_id, o.key),
            },
        ]
    }

    pub fn action(&self) -> RestoreAction {
        match &self.step {
            Step::Place => RestoreAction::Place {
                case_id: self.case.case_id.clone(),
                from: self.case.quarantine.clone().expect("placing needs a copy"),
                candidates: self.candidates(),
            },
            Step::Verify(placed) => RestoreAction::Verify {
                placed: placed.clone(),
                // The exact digests: the restored bytes must be the quarantined bytes (a PDQ
                // hash says only that an image looks alike).
                algorithms: self
                    .case
                    .digests
                    .iter()
                    .filter_map(|(a, _)| a.parse::<Algorithm>().ok())
                    .filter(|a| !a.is_perceptual())
                    .collect(),
            },
            Step::Unhold => RestoreAction::Unhold {
                object: self.case.object.clone(),
            },
            Step::Finish(_) => RestoreAction::Finish,
        }
    }

    pub fn is_finishing(&self) -> bool {
        matches!(self.step, Step::Finish(_))
    }

    pub fn advance(&mut self, outcome: RestoreOutcome) -> Result<(), RestoreError> {
        let unexpected = |step: &Step, outcome: &RestoreOutcome| RestoreError::Unexpected {
            step: format!("{step:?}"),
            outcome: format!("{outcome:?}"),
        };
        self.step = match (&self.step, outcome) {
            (Step::Place, RestoreOutcome::Placed(p)) => Step::Verify(p),
            (Step::Place, RestoreOutcome::NoFreePlace) => {
                return Err(RestoreError::NoFreePlace {
                    case_id: self.case.case_id.clone(),
                    places: self
                        .candidates()
                        .iter()
                        .map(|c| format!("s3://{}/{}", c.bucket, c.key))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
            (Step::Verify(placed), RestoreOutcome::Verified(read)) => {
                let mut wrong = Vec::new();
                for (alg, hex) in &self.case.digests {
                    let parsed = alg.parse::<Algorithm>().ok();
                    if parsed.is_some_and(Algorithm::is_perceptual) {
                        continue;
                    }
                    let got = parsed.and_then(|a| read.get(a)).map(|d| d.to_hex());
                    if got.as_deref() != Some(hex.as_str()) {
                        wrong.push(format!(
                            "{alg} {} instead of {hex}",
                            got.unwrap_or_else(|| "missing".into())
                        ));
                    }
                }
                if !wrong.is_empty() {
                    return Err(RestoreError::Mismatch {
                        bucket: placed.bucket.clone(),
                        key: placed.key.clone(),
                        detail: wrong.join("; "),
                    });
                }
                Step::Finish(Some(placed.clone()))
            }
            (Step::Unhold, RestoreOutcome::Unheld) => Step::Finish(None),
            (step, outcome) => return Err(unexpected(step, &outcome)),
        };
        Ok(())
    }

    /// The released case (next revision) and its one audit entry, once every step is done.
    pub fn finish(&self, actor: &str, now: Timestamp) -> Option<(CaseRecord, AuditEntry)> {
        let Step::Finish(placed) = &self.step else {
            return None;
        };
        let mut case = self.case.clone();
        case.status = CaseStatus::Released;
        case.revision += 1;
        case.restored_to = placed.clone();
        let detail = match placed {
            Some(p) => format!(
                "restored to s3://{}/{}{}",
                p.bucket,
                p.key,
                p.version_id
                    .as_deref()
                    .map(|v| format!(" (version {v})"))
                    .unwrap_or_default()
            ),
            None => "hold released in place".to_string(),
        };
        let audit = AuditEntry::new(
            case.case_id.clone(),
            now,
            actor,
            AuditAction::Restored,
            detail,
        );
        Some((case, audit))
    }
}

/// The queue's sort key of a case: its creation instant at fixed width, then its id, so
/// that the text order is the queue's order (oldest first) and every key is unique.
pub fn created_key(case: &CaseRecord) -> String {
    format!(
        "{}.{:09}Z#{}",
        &rfc3339(case.created_at)[..19],
        case.created_at.subsec_nanosecond(),
        case.case_id
    )
}

/// Filters of the queue. Empty fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaseQuery {
    pub statuses: Vec<CaseStatus>,
    pub list: Option<String>,
    pub category: Option<String>,
    pub bucket: Option<String>,
    /// The kind of match: its digest algorithm.
    pub kind: Option<Algorithm>,
    /// Only cases after this [`created_key`] (the previous page's cursor).
    pub after: Option<String>,
    pub limit: usize,
}

impl CaseQuery {
    pub const MAX_LIMIT: usize = 200;

    pub fn matches(&self, c: &CaseRecord) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&c.status))
            && self.bucket.as_ref().is_none_or(|b| *b == c.object.bucket)
            && self
                .list
                .as_ref()
                .is_none_or(|l| c.matches.iter().any(|m| m.list == *l))
            && self
                .category
                .as_ref()
                .is_none_or(|k| c.matches.iter().any(|m| m.category.as_ref() == Some(k)))
            && self
                .kind
                .is_none_or(|a| c.matches.iter().any(|m| m.algorithm == a))
    }
}

/// One page of the queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CasePage {
    pub items: Vec<CaseRecord>,
    /// Pass as [`CaseQuery::after`] for the next page; none at the end.
    pub next: Option<String>,
}

/// Page through `sorted` (in [`created_key`] order) by the query: what stores without a
/// server-side filter do with what they read.
pub fn page_of<'a>(
    sorted: impl IntoIterator<Item = &'a CaseRecord>,
    query: &CaseQuery,
) -> CasePage {
    let limit = query.limit.clamp(1, CaseQuery::MAX_LIMIT);
    let mut items = Vec::new();
    let mut more = false;
    for c in sorted {
        if query.after.as_ref().is_some_and(|a| created_key(c) <= *a) || !query.matches(c) {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(c.clone());
    }
    let next = more.then(|| items.last().map(created_key)).flatten();
    CasePage { items, next }
}

/// The UTC day a reveal counts against.
pub fn reveal_day(now: Timestamp) -> String {
    rfc3339(now)[..10].to_string()
}

/// One reveal, as the per-reviewer tally keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevealRecord {
    pub case_id: String,
    pub at: Timestamp,
}

/// The answer to a request for a reveal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevealGrant {
    /// Granted; `used` reveals today including this one.
    Granted { used: u32 },
    /// The day's limit is used up; nothing was counted.
    Exhausted { used: u32 },
}

/// A case as read for an update: the record and the revision to update it at.
pub type StoredCase = CaseRecord;

/// Did a conditional case update win?
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Updated {
    /// Written, with its audit entry in the chain.
    Written(ChainedEntry),
    /// Someone else changed the case first: read it again and decide again.
    Conflict,
}

/// Cases and the audit chain, as the review service needs them.
pub trait ReviewStore: Send + Sync {
    fn case(
        &self,
        case_id: &str,
    ) -> impl Future<Output = Result<Option<CaseRecord>, StorageError>> + Send;

    /// The queue, oldest first, filtered and paged.
    fn cases(
        &self,
        query: &CaseQuery,
    ) -> impl Future<Output = Result<CasePage, StorageError>> + Send;

    /// Every audit entry of one case, in chain order.
    fn history(
        &self,
        case_id: &str,
    ) -> impl Future<Output = Result<Vec<ChainedEntry>, StorageError>> + Send;

    /// Append an entry to the chain (linking it after whatever the head is by then).
    fn append(
        &self,
        entry: AuditEntry,
    ) -> impl Future<Output = Result<ChainedEntry, StorageError>> + Send;

    /// Write `case` (its `revision` one above the stored one) and append `entry`, both or
    /// neither, only if the stored case is still at `case.revision - 1`.
    fn update(
        &self,
        case: &CaseRecord,
        entry: AuditEntry,
    ) -> impl Future<Output = Result<Updated, StorageError>> + Send;

    /// Count a reveal for `user` on `day` if fewer than `limit` were counted.
    fn take_reveal(
        &self,
        user: &str,
        day: &str,
        limit: u32,
        reveal: &RevealRecord,
    ) -> impl Future<Output = Result<RevealGrant, StorageError>> + Send;

    /// The reveals `user` made on `day`.
    fn reveals(
        &self,
        user: &str,
        day: &str,
    ) -> impl Future<Output = Result<Vec<RevealRecord>, StorageError>> + Send;

    /// The chain after entry `after`, at most `limit` entries, in order.
    fn chain(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ChainedEntry>, StorageError>> + Send;

    /// The last entry of the chain.
    fn head(&self) -> impl Future<Output = Result<Option<ChainedEntry>, StorageError>> + Send;
}

/// A case's content as stored, read for a preview.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvidenceRead {
    Bytes {
        bytes: Vec<u8>,
        content_type: Option<String>,
    },
    TooLarge {
        size: u64,
    },
    Missing,
}

/// The objects the review service touches: the evidence, and restores.
pub trait Evidence: Send + Sync {
    /// The content type of the case's content, if it can be found.
    fn content_type(
        &self,
        case: &CaseRecord,
    ) -> impl Future<Output = Result<Option<String>, StorageError>> + Send;

    /// The case's content (the quarantined copy, or the object held in place), at most
    /// `max_bytes`.
    fn read(
        &self,
        case: &CaseRecord,
        max_bytes: u64,
    ) -> impl Future<Output = Result<EvidenceRead, StorageError>> + Send;

    /// Carry out an object step of the restore protocol, idempotently.
    fn restore_step(
        &self,
        action: &RestoreAction,
    ) -> impl Future<Output = Result<RestoreOutcome, StorageError>> + Send;
}

/// Signed checkpoints of the chain's head, in write-once storage.
pub trait Checkpoints: Send + Sync {
    /// The newest checkpoint written.
    fn latest(&self) -> impl Future<Output = Result<Option<Checkpoint>, StorageError>> + Send;

    /// Sign and write one.
    fn write(
        &self,
        checkpoint: &Checkpoint,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Every checkpoint, with its signature checked.
    fn all(&self) -> impl Future<Output = Result<Vec<ReadCheckpoint>, StorageError>> + Send;
}

/// Verify the whole chain in `store` against every checkpoint, paging through it.
pub async fn verify_chain<S: ReviewStore, C: Checkpoints>(
    store: &S,
    checkpoints: &C,
) -> Result<Verification, StorageError> {
    const PAGE: usize = 1000;
    let mut verifier = Verifier::new(checkpoints.all().await?);
    let mut after = 0;
    loop {
        let page = store.chain(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            verifier.push(e);
        }
        if page.len() < PAGE {
            break;
        }
    }
    Ok(verifier.finish())
}

/// Sign and write a checkpoint of the chain's head at `now`, unless the newest checkpoint
/// covers it already; the checkpoint that covers the head either way (none for an empty
/// chain).
pub async fn checkpoint_now<S: ReviewStore, C: Checkpoints>(
    store: &S,
    checkpoints: &C,
    now: Timestamp,
) -> Result<Option<Checkpoint>, StorageError> {
    let Some(head) = store.head().await? else {
        return Ok(None);
    };
    let latest = checkpoints.latest().await?;
    if latest.as_ref().is_some_and(|c| c.seq >= head.seq) {
        return Ok(latest);
    }
    let cp = Checkpoint::of(&head, now);
    checkpoints.write(&cp).await?;
    Ok(Some(cp))
}

/// A shared store is a store: the service and the tests hold the same one.
impl<T: ReviewStore> ReviewStore for std::sync::Arc<T> {
    fn case(
        &self,
        case_id: &str,
    ) -> impl Future<Output = Result<Option<CaseRecord>, StorageError>> + Send {
        (**self).case(case_id)
    }
    fn cases(
        &self,
        query: &CaseQuery,
    ) -> impl Future<Output = Result<CasePage, StorageError>> + Send {
        (**self).cases(query)
    }
    fn history(
        &self,
        case_id: &str,
    ) -> impl Future<Output = Result<Vec<ChainedEntry>, StorageError>> + Send {
        (**self).history(case_id)
    }
    fn append(
        &self,
        entry: AuditEntry,
    ) -> impl Future<Output = Result<ChainedEntry, StorageError>> + Send {
        (**self).append(entry)
    }
    fn update(
        &self,
        case: &CaseRecord,
        entry: AuditEntry,
    ) -> impl Future<Output = Result<Updated, StorageError>> + Send {
        (**self).update(case, entry)
    }
    fn take_reveal(
        &self,
        user: &str,
        day: &str,
        limit: u32,
        reveal: &RevealRecord,
    ) -> impl Future<Output = Result<RevealGrant, StorageError>> + Send {
        (**self).take_reveal(user, day, limit, reveal)
    }
    fn reveals(
        &self,
        user: &str,
        day: &str,
    ) -> impl Future<Output = Result<Vec<RevealRecord>, StorageError>> + Send {
        (**self).reveals(user, day)
    }
    fn chain(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ChainedEntry>, StorageError>> + Send {
        (**self).chain(after, limit)
    }
    fn head(&self) -> impl Future<Output = Result<Option<ChainedEntry>, StorageError>> + Send {
        (**self).head()
    }
}

impl<T: Evidence> Evidence for std::sync::Arc<T> {
    fn content_type(
        &self,
        case: &CaseRecord,
    ) -> impl Future<Output = Result<Option<String>, StorageError>> + Send {
        (**self).content_type(case)
    }
    fn read(
        &self,
        case: &CaseRecord,
        max_bytes: u64,
    ) -> impl Future<Output = Result<EvidenceRead, StorageError>> + Send {
        (**self).read(case, max_bytes)
    }
    fn restore_step(
        &self,
        action: &RestoreAction,
    ) -> impl Future<Output = Result<RestoreOutcome, StorageError>> + Send {
        (**self).restore_step(action)
    }
}

impl<T: Checkpoints> Checkpoints for std::sync::Arc<T> {
    fn latest(&self) -> impl Future<Output = Result<Option<Checkpoint>, StorageError>> + Send {
        (**self).latest()
    }
    fn write(
        &self,
        checkpoint: &Checkpoint,
    ) -> impl Future<Output = Result<(), StorageError>> + Send {
        (**self).write(checkpoint)
    }
    fn all(&self) -> impl Future<Output = Result<Vec<ReadCheckpoint>, StorageError>> + Send {
        (**self).all()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::digest::{digest_bytes, AlgorithmSet};
    use crate::scan::Match;

    pub(crate) fn case(status: CaseStatus) -> CaseRecord {
        let content = b"quarantined bytes";
        let digests = digest_bytes(content, AlgorithmSet::ALL);
        CaseRecord {
            case_id: "case-1".into(),
            object: ObjectRef {
                bucket: "uploads".into(),
                key: "a/b.jpg".into(),
                version_id: None,
                etag: Some("e".into()),
            },
            size: content.len() as u64,
            digests: CaseRecord::digest_pairs(&digests),
            matches: vec![Match {
                distance: None,
                algorithm: Algorithm::Md5,
                digest: digests.get(Algorithm::Md5).unwrap(),
                list: "ncmec".into(),
                category: Some("A1".into()),
                id: Some("42".into()),
            }],
            quarantine: Some(QuarantineLocation::for_case("quarantine", "case-1")),
            status,
            created_at: Timestamp::from_second(1_795_255_445).unwrap(),
            uploaded_at: None,
            reviews: vec![],
            classification: None,
            restored_to: None,
            revision: 0,
            upload_facts: Default::default(),
            followups: Vec::new(),
            legal_hold: None,
        }
    }

    fn who(user: &str) -> Identity {
        Identity {
            user: user.into(),
            role: Role::Reviewer,
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_795_300_000).unwrap()
    }

    fn run(
        c: &CaseRecord,
        user: &str,
        d: Decision,
        cl: Option<Classification>,
        policy: &ReviewPolicy,
    ) -> Result<Decided, Refusal> {
        decide(
            c,
            &who(user),
            d,
            cl,
            "looked at it",
            Some("10.0.0.1"),
            now(),
            policy,
        )
    }

    #[test]
    fn roles_come_from_groups_and_admins_may_review() {
        assert_eq!(Role::from_groups(&["reviewer"]), Some(Role::Reviewer));
        assert_eq!(Role::from_groups(&["reviewer", "admin"]), Some(Role::Admin));
        assert_eq!(Role::from_groups(&["other"]), None);
        assert_eq!(Role::from_groups::<&str>(&[]), None);
        assert!(Role::Admin.allows(Role::Reviewer));
        assert!(!Role::Reviewer.allows(Role::Admin));
    }

    #[test]
    fn two_person_rule() {
        let policy = ReviewPolicy::default();
        let open = case(CaseStatus::PendingReview);
        let first = run(
            &open,
            "a",
            Decision::Confirm,
            Some(Classification::A1),
            &policy,
        )
        .unwrap();
        assert_eq!(first.case.status, CaseStatus::AwaitingSecondReview);
        assert_eq!(first.case.revision, 1);
        assert_eq!(first.case.classification, None);
        assert_eq!(first.audit.action, AuditAction::Decided);
        assert_eq!(first.audit.reason.as_deref(), Some("looked at it"));
        assert_eq!(first.audit.address.as_deref(), Some("10.0.0.1"));
        assert!(!first.restore);
        // The same reviewer again is refused, as a conflict.
        let again = run(
            &first.case,
            "a",
            Decision::Confirm,
            Some(Classification::A1),
            &policy,
        );
        assert_eq!(
            again.clone().unwrap_err(),
            Refusal::SameReviewer("a".into())
        );
        assert!(again.unwrap_err().is_conflict());
        // A second reviewer who disagrees on the classification must escalate.
        let disagree = run(
            &first.case,
            "b",
            Decision::Confirm,
            Some(Classification::B2),
            &policy,
        );
        assert!(matches!(
            disagree,
            Err(Refusal::ClassificationDisagrees { .. })
        ));
        let second = run(
            &first.case,
            "b",
            Decision::Confirm,
            Some(Classification::A1),
            &policy,
        )
        .unwrap();
        assert_eq!(second.case.status, CaseStatus::Confirmed);
        assert_eq!(second.case.classification, Some(Classification::A1));
        assert_eq!(second.case.reviews.len(), 2);
        // Closed: no more decisions.
        for d in [Decision::Escalate, Decision::FalsePositive] {
            assert_eq!(
                run(&second.case, "c", d, None, &policy).unwrap_err(),
                Refusal::Closed(CaseStatus::Confirmed)
            );
        }
        // Without the rule one confirmation is enough.
        let single = ReviewPolicy {
            two_person_rule: false,
            ..ReviewPolicy::default()
        };
        let one = run(
            &open,
            "a",
            Decision::Confirm,
            Some(Classification::B1),
            &single,
        )
        .unwrap();
        assert_eq!(one.case.status, CaseStatus::Confirmed);
        assert_eq!(one.case.classification, Some(Classification::B1));
    }

    #[test]
    fn requests_need_reasons_and_the_right_classification() {
        let policy = ReviewPolicy::default();
        let open = case(CaseStatus::PendingReview);
        let r = decide(
            &open,
            &who("a"),
            Decision::Escalate,
            None,
            "  ",
            None,
            now(),
            &policy,
        );
        assert_eq!(r.unwrap_err(), Refusal::MissingReason);
        let r = run(&open, "a", Decision::Confirm, None, &policy);
        assert_eq!(r.unwrap_err(), Refusal::MissingClassification);
        let r = run(
            &open,
            "a",
            Decision::Escalate,
            Some(Classification::A1),
            &policy,
        );
        assert_eq!(r.unwrap_err(), Refusal::UnexpectedClassification);
        assert!(!Refusal::MissingReason.is_conflict());
    }

    #[test]
    fn escalated_cases_stay_open_and_false_positives_restore() {
        let policy = ReviewPolicy::default();
        let esc = run(
            &case(CaseStatus::PendingReview),
            "a",
            Decision::Escalate,
            None,
            &policy,
        )
        .unwrap();
        assert_eq!(esc.case.status, CaseStatus::Escalated);
        let fp = run(&esc.case, "b", Decision::FalsePositive, None, &policy).unwrap();
        assert_eq!(fp.case.status, CaseStatus::Releasing);
        assert!(fp.restore);
        // A restore in progress takes no new decision.
        assert_eq!(
            run(&fp.case, "c", Decision::FalsePositive, None, &policy).unwrap_err(),
            Refusal::Closed(CaseStatus::Releasing)
        );
        // Content that never left is released at once.
        let mut gone = case(CaseStatus::ContentGone);
        gone.quarantine = None;
        let r = run(&gone, "a", Decision::FalsePositive, None, &policy).unwrap();
        assert_eq!(r.case.status, CaseStatus::Released);
        assert!(!r.restore);
        // A hold in place is lifted by the restore protocol.
        let mut held = case(CaseStatus::HeldInPlace);
        held.quarantine = None;
        let r = run(&held, "a", Decision::FalsePositive, None, &policy).unwrap();
        assert_eq!(r.case.status, CaseStatus::Releasing);
        assert!(r.restore);
    }

    /// A world of objects for the restore protocol: places → (bytes, restored-case marker).
    #[derive(Default)]
    struct World {
        objects: std::collections::BTreeMap<(String, String), (Vec<u8>, Option<String>)>,
        held: bool,
    }

    impl World {
        fn step(&mut self, action: &RestoreAction) -> RestoreOutcome {
            match action {
                RestoreAction::Place {
                    case_id,
                    from,
                    candidates,
                } => {
                    let bytes = self.objects[&(from.bucket.clone(), from.key.clone())]
                        .0
                        .clone();
                    for c in candidates {
                        let k = (c.bucket.clone(), c.key.clone());
                        match self.objects.get(&k) {
                            Some((_, Some(marker))) if marker == case_id => {}
                            Some(_) => continue,
                            None => {
                                self.objects
                                    .insert(k, (bytes.clone(), Some(case_id.clone())));
                            }
                        }
                        return RestoreOutcome::Placed(RestoredTo {
                            bucket: c.bucket.clone(),
                            key: c.key.clone(),
                            version_id: None,
                        });
                    }
                    RestoreOutcome::NoFreePlace
                }
                RestoreAction::Verify { placed, algorithms } => {
                    let bytes = &self.objects[&(placed.bucket.clone(), placed.key.clone())].0;
                    RestoreOutcome::Verified(digest_bytes(
                        bytes,
                        algorithms.iter().copied().collect(),
                    ))
                }
                RestoreAction::Unhold { .. } => {
                    self.held = false;
                    RestoreOutcome::Unheld
                }
                RestoreAction::Finish => unreachable!("finish is the caller's write"),
            }
        }
    }

    fn releasing() -> CaseRecord {
        let policy = ReviewPolicy::default();
        run(
            &case(CaseStatus::PendingReview),
            "a",
            Decision::FalsePositive,
            None,
            &policy,
        )
        .unwrap()
        .case
    }

    fn world() -> World {
        let mut w = World::default();
        w.objects.insert(
            ("quarantine".into(), "cases/case-1/object".into()),
            (b"quarantined bytes".to_vec(), None),
        );
        w
    }

    /// Run the protocol, crashing (dropping all progress) after `crash_after` steps.
    fn drive(w: &mut World, case: &CaseRecord, crash_after: Option<usize>) -> Option<CaseRecord> {
        let mut r = Restore::new(case.clone(), &ReviewPolicy::default()).unwrap();
        let mut steps = 0;
        while !r.is_finishing() {
            if crash_after == Some(steps) {
                return None;
            }
            let outcome = w.step(&r.action());
            r.advance(outcome).unwrap();
            steps += 1;
        }
        // A crash before the case is written leaves it releasing.
        if crash_after == Some(steps) {
            return None;
        }
        Some(r.finish("a", now()).unwrap().0)
    }

    #[test]
    fn a_restore_puts_the_exact_bytes_back_and_survives_a_crash_after_every_step() {
        for crash in 0..3 {
            let mut w = world();
            let case = releasing();
            assert!(drive(&mut w, &case, Some(crash)).is_none());
            let done = drive(&mut w, &case, None).expect("the retry finishes");
            assert_eq!(done.status, CaseStatus::Released);
            assert_eq!(done.revision, case.revision + 1);
            let to = done.restored_to.unwrap();
            assert_eq!(
                (to.bucket.as_str(), to.key.as_str()),
                ("uploads", "a/b.jpg")
            );
            assert_eq!(
                w.objects[&("uploads".into(), "a/b.jpg".into())].0,
                b"quarantined bytes"
            );
            // Exactly one restored copy: the retry recognised its own.
            assert_eq!(w.objects.len(), 2, "crash after {crash}");
        }
    }

    #[test]
    fn a_reused_key_is_left_alone_and_the_copy_goes_under_the_prefix() {
        let mut w = world();
        w.objects.insert(
            ("uploads".into(), "a/b.jpg".into()),
            (b"new upload".to_vec(), None),
        );
        let done = drive(&mut w, &releasing(), None).unwrap();
        let to = done.restored_to.unwrap();
        assert_eq!(to.key, "hashgate-restored/case-1/a/b.jpg");
        assert_eq!(
            w.objects[&("uploads".into(), "a/b.jpg".into())].0,
            b"new upload"
        );
        assert_eq!(
            w.objects[&("uploads".into(), to.key)].0,
            b"quarantined bytes"
        );
    }

    #[test]
    fn a_restore_that_reads_back_other_bytes_stops() {
        let case = releasing();
        let mut r = Restore::new(case, &ReviewPolicy::default()).unwrap();
        r.advance(RestoreOutcome::Placed(RestoredTo {
            bucket: "uploads".into(),
            key: "a/b.jpg".into(),
            version_id: None,
        }))
        .unwrap();
        let err = r
            .advance(RestoreOutcome::Verified(digest_bytes(
                b"other",
                AlgorithmSet::ALL,
            )))
            .unwrap_err();
        assert!(matches!(err, RestoreError::Mismatch { .. }), "{err}");
        assert!(r.finish("a", now()).is_none());
        let mut r = Restore::new(releasing(), &ReviewPolicy::default()).unwrap();
        assert!(matches!(
            r.advance(RestoreOutcome::NoFreePlace),
            Err(RestoreError::NoFreePlace { .. })
        ));
        assert!(Restore::new(
            case_of_status(CaseStatus::Confirmed),
            &ReviewPolicy::default()
        )
        .is_err());
    }

    fn case_of_status(s: CaseStatus) -> CaseRecord {
        case(s)
    }

    #[test]
    fn only_a_released_cases_own_content_counts_as_released() {
        let content = b"quarantined bytes";
        let mut c = case(CaseStatus::Released);
        let same = digest_bytes(content, AlgorithmSet::ALL);
        assert!(is_released_content(&c, &same));
        let md5_only = digest_bytes(content, AlgorithmSet::EMPTY.with(Algorithm::Md5));
        assert!(is_released_content(&c, &md5_only));
        assert!(!is_released_content(
            &c,
            &digest_bytes(b"other", AlgorithmSet::ALL)
        ));
        assert!(!is_released_content(&c, &DigestSet::default()));
        c.status = CaseStatus::Releasing;
        assert!(is_released_content(&c, &same));
        for status in [
            CaseStatus::Confirmed,
            CaseStatus::PendingReview,
            CaseStatus::AwaitingSecondReview,
            CaseStatus::Escalated,
        ] {
            c.status = status;
            assert!(!is_released_content(&c, &same), "{status}");
        }
    }

    #[test]
    fn a_hold_in_place_is_lifted() {
        let mut held = case(CaseStatus::HeldInPlace);
        held.quarantine = None;
        let rel = run(
            &held,
            "a",
            Decision::FalsePositive,
            None,
            &ReviewPolicy::default(),
        )
        .unwrap()
        .case;
        let mut w = World {
            held: true,
            ..World::default()
        };
        let done = drive(&mut w, &rel, None).unwrap();
        assert!(!w.held);
        assert_eq!(done.status, CaseStatus::Released);
        assert_eq!(done.restored_to, None);
    }

    #[test]
    fn a_chain_in_a_store_verifies_page_by_page_with_its_checkpoints() {
        use crate::memory::{MemoryCases, MemoryCheckpoints};
        let store = MemoryCases::default();
        let checkpoints = MemoryCheckpoints::default();
        pollster::block_on(async {
            assert_eq!(
                checkpoint_now(&store, &checkpoints, now()).await.unwrap(),
                None
            );
            for i in 0..2500u64 {
                store
                    .append(AuditEntry::new(
                        format!("case-{}", i % 7),
                        now(),
                        "reviewer-a",
                        AuditAction::Viewed,
                        "",
                    ))
                    .await
                    .unwrap();
            }
            let cp = checkpoint_now(&store, &checkpoints, now())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(cp.seq, 2500);
            // Already covered: nothing new is written.
            let again = checkpoint_now(&store, &checkpoints, now())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(again, cp);
            assert_eq!(checkpoints.all().await.unwrap().len(), 1);
            let v = verify_chain(&store, &checkpoints).await.unwrap();
            assert!(v.ok, "{v:?}");
            assert_eq!(v.entries, 2500);
            store.chain_entries().remove(1500);
            let v = verify_chain(&store, &checkpoints).await.unwrap();
            assert_eq!(v.first_broken.unwrap().seq, 1502);
        });
    }

    #[test]
    fn the_queue_is_oldest_first_filtered_and_paged() {
        let mut all = Vec::new();
        for i in 0..7 {
            let mut c = case(if i % 2 == 0 {
                CaseStatus::PendingReview
            } else {
                CaseStatus::Confirmed
            });
            c.case_id = format!("case-{i}");
            c.created_at = Timestamp::from_second(1_795_255_445 + (i % 3)).unwrap();
            if i == 3 {
                c.object.bucket = "other".into();
                c.matches[0].list = "own".into();
                c.matches[0].category = Some("B2".into());
                c.matches[0].algorithm = Algorithm::Sha256;
            }
            all.push(c);
        }
        all.sort_by_key(created_key);
        assert!(all.windows(2).all(|w| w[0].created_at <= w[1].created_at));
        let q = CaseQuery {
            limit: 2,
            ..CaseQuery::default()
        };
        let mut seen = Vec::new();
        let mut page = page_of(&all, &q);
        loop {
            seen.extend(page.items.iter().map(|c| c.case_id.clone()));
            let Some(next) = page.next.clone() else { break };
            page = page_of(
                &all,
                &CaseQuery {
                    after: Some(next),
                    ..q.clone()
                },
            );
        }
        assert_eq!(seen.len(), 7);
        let ids: Vec<String> = all.iter().map(|c| c.case_id.clone()).collect();
        assert_eq!(seen, ids);
        for (query, expected) in [
            (
                CaseQuery {
                    statuses: vec![CaseStatus::Confirmed],
                    ..CaseQuery::default()
                },
                3,
            ),
            (
                CaseQuery {
                    bucket: Some("other".into()),
                    ..CaseQuery::default()
                },
                1,
            ),
            (
                CaseQuery {
                    list: Some("own".into()),
                    ..CaseQuery::default()
                },
                1,
            ),
            (
                CaseQuery {
                    category: Some("B2".into()),
                    ..CaseQuery::default()
                },
                1,
            ),
            (
                CaseQuery {
                    kind: Some(Algorithm::Md5),
                    ..CaseQuery::default()
                },
                6,
            ),
        ] {
            let q = CaseQuery {
                limit: 100,
                ..query
            };
            assert_eq!(page_of(&all, &q).items.len(), expected, "{q:?}");
        }
        assert_eq!(reveal_day(now()), "2026-11-21");
    }
}
