//! What each request does, over the core's review ports: read and list cases, serve
//! previews and reveals, decide (running the restore of a false positive), and verify the
//! audit chain. Every action on a case appends exactly one audit entry, and only once it
//! succeeded; HTTP is the router's business ([`crate::routes`]).

use std::sync::Arc;

use hashgate_core::audit::{AuditAction, AuditEntry, ChainedEntry, Checkpoint, Verification};
use hashgate_core::case::{CaseRecord, CaseStatus};
use hashgate_core::followup::{Done, FollowupPorts};
use hashgate_core::pipeline::StorageError;
use hashgate_core::review::{
    decide, reveal_day, verify_chain, CasePage, CaseQuery, Checkpoints, Classification, Decision,
    Evidence, EvidenceRead, Identity, Refusal, Restore, RestoreAction, RestoreError, RevealGrant,
    RevealRecord, ReviewPolicy, ReviewStore, Updated,
};
use hashgate_core::time::Timestamp;

use crate::preview::{self, Level, Limits, Preview};

/// The instant of a request (injected, so tests control time).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Why a request failed, by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no case {0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the daily reveal limit of {limit} is used up ({used} today)")]
    LimitReached { used: u32, limit: u32 },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Followup(String),
    #[error("the restore stopped; the case stays releasing and deciding again resumes it: {0}")]
    Restore(#[from] RestoreError),
}

impl From<Refusal> for ServiceError {
    fn from(r: Refusal) -> Self {
        if r.is_conflict() {
            ServiceError::Conflict(r.to_string())
        } else {
            ServiceError::Invalid(r.to_string())
        }
    }
}

/// A case with what the page shows next to it.
#[derive(Clone, Debug)]
pub struct CaseView {
    pub case: CaseRecord,
    pub content_type: Option<String>,
    pub history: Vec<ChainedEntry>,
}

/// A rendered preview, or why there is none.
#[derive(Clone, Debug)]
pub enum Rendered {
    Png(Vec<u8>),
    None(String),
}

/// A reveal: the less blurred preview and the reviewer's tally.
#[derive(Clone, Debug)]
pub struct Revealed {
    pub preview: Rendered,
    pub used: u32,
    pub limit: u32,
}

pub struct Service<S, E, C, A> {
    pub store: S,
    pub evidence: E,
    pub checkpoints: C,
    pub policy: ReviewPolicy,
    pub max_preview_bytes: u64,
    pub checkpoint_seconds: u64,
    pub clock: Clock,
    /// The newest checkpoint this instance has seen: while it is younger than the interval
    /// no checkpoint is due (any other is newer still), so appends ask storage nothing.
    pub known_checkpoint: std::sync::Mutex<Option<Checkpoint>>,
    /// What a decision leaves to do (report package, sharing, list feedback).
    pub followups: A,
}

/// Conflicting writes (two reviewers at once) are retried this many times.
const UPDATE_ATTEMPTS: usize = 5;

impl<S: ReviewStore, E: Evidence, C: Checkpoints, A: FollowupPorts> Service<S, E, C, A> {
    fn now(&self) -> Timestamp {
        (self.clock)()
    }

    fn entry(
        &self,
        case_id: &str,
        who: &Identity,
        action: AuditAction,
        detail: String,
        address: Option<&str>,
        reason: Option<&str>,
    ) -> AuditEntry {
        let mut e = AuditEntry::new(case_id, self.now(), who.user.clone(), action, detail);
        e.address = address.map(str::to_string);
        e.reason = reason.map(str::to_string);
        e
    }

    async fn load(&self, case_id: &str) -> Result<CaseRecord, ServiceError> {
        self.store
            .case(case_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(case_id.to_string()))
    }

    /// Append, then write a signed checkpoint of the head if one is due. A checkpoint that
    /// fails is logged, never the request's failure: the entry is in the chain already.
    async fn append(&self, entry: AuditEntry) -> Result<ChainedEntry, ServiceError> {
        let linked = self.store.append(entry).await?;
        self.checkpoint_if_due(&linked).await;
        Ok(linked)
    }

    async fn checkpoint_if_due(&self, head: &ChainedEntry) {
        let now = self.now();
        let known = self
            .known_checkpoint
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if known.is_some() && !Checkpoint::due(known.as_ref(), head, now, self.checkpoint_seconds) {
            return;
        }
        let latest = match self.checkpoints.latest().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "reading the last audit checkpoint failed");
                return;
            }
        };
        let mut known = latest;
        if Checkpoint::due(known.as_ref(), head, now, self.checkpoint_seconds) {
            let checkpoint = Checkpoint::of(head, now);
            match self.checkpoints.write(&checkpoint).await {
                Ok(()) => known = Some(checkpoint),
                Err(e) => {
                    tracing::warn!(error = %e, seq = head.seq, "writing an audit checkpoint failed")
                }
            }
        }
        *self
            .known_checkpoint
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = known;
    }

    pub async fn list(&self, query: &CaseQuery) -> Result<CasePage, ServiceError> {
        Ok(self.store.cases(query).await?)
    }

    /// A reviewer opens a case: audited as `viewed`.
    pub async fn view(
        &self,
        who: &Identity,
        case_id: &str,
        address: Option<&str>,
    ) -> Result<CaseView, ServiceError> {
        let case = self.load(case_id).await?;
        let content_type = self.evidence.content_type(&case).await?;
        self.append(self.entry(
            case_id,
            who,
            AuditAction::Viewed,
            format!("status {}", case.status),
            address,
            None,
        ))
        .await?;
        let history = self.store.history(case_id).await?;
        Ok(CaseView {
            case,
            content_type,
            history,
        })
    }

    async fn render(&self, case: &CaseRecord, level: Level) -> Result<Rendered, ServiceError> {
        let (bytes, content_type) = match self.evidence.read(case, self.max_preview_bytes).await? {
            EvidenceRead::Bytes {
                bytes,
                content_type,
            } => (bytes, content_type),
            EvidenceRead::TooLarge { size } => {
                return Ok(Rendered::None(format!(
                    "the content is too large to preview ({size} bytes)"
                )))
            }
            EvidenceRead::Missing => {
                return Ok(Rendered::None(match case.status {
                    CaseStatus::ContentGone => {
                        "the content was gone before it could be quarantined".into()
                    }
                    _ => "the content is no longer stored".into(),
                }))
            }
        };
        // Decoding and blurring are CPU work: off the request threads.
        let rendered = tokio::task::spawn_blocking(move || {
            preview::render(&bytes, content_type.as_deref(), level, &Limits::default())
        })
        .await
        .map_err(|e| ServiceError::Invalid(format!("the preview failed: {e}")))?;
        Ok(match rendered {
            Preview::Image { png, .. } => Rendered::Png(png),
            Preview::None { reason } => Rendered::None(reason),
        })
    }

    /// The blurred preview: audited as `preview_served` when an image is served.
    pub async fn preview(
        &self,
        who: &Identity,
        case_id: &str,
        address: Option<&str>,
    ) -> Result<Rendered, ServiceError> {
        let case = self.load(case_id).await?;
        let rendered = self.render(&case, Level::Blurred).await?;
        if let Rendered::Png(_) = rendered {
            self.append(self.entry(
                case_id,
                who,
                AuditAction::PreviewServed,
                "blurred".into(),
                address,
                None,
            ))
            .await?;
        }
        Ok(rendered)
    }

    /// A less blurred preview, counted against the reviewer's daily limit and audited as
    /// `revealed` with the reason, before anything is shown.
    pub async fn reveal(
        &self,
        who: &Identity,
        case_id: &str,
        reason: &str,
        address: Option<&str>,
    ) -> Result<Revealed, ServiceError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(ServiceError::Invalid("a reveal needs a reason".into()));
        }
        let case = self.load(case_id).await?;
        let rendered = self.render(&case, Level::Revealed).await?;
        if let Rendered::None(why) = rendered {
            return Err(ServiceError::Invalid(format!("nothing to reveal: {why}")));
        }
        let now = self.now();
        let limit = self.policy.reveal_daily_limit;
        let used = match self
            .store
            .take_reveal(
                &who.user,
                &reveal_day(now),
                limit,
                &RevealRecord {
                    case_id: case_id.to_string(),
                    at: now,
                },
            )
            .await?
        {
            RevealGrant::Granted { used } => used,
            RevealGrant::Exhausted { used } => {
                return Err(ServiceError::LimitReached { used, limit })
            }
        };
        self.append(self.entry(
            case_id,
            who,
            AuditAction::Revealed,
            format!("reveal {used} of {limit} today"),
            address,
            Some(reason),
        ))
        .await?;
        Ok(Revealed {
            preview: rendered,
            used,
            limit,
        })
    }

    /// The reviewer's reveals today.
    pub async fn reveals_today(&self, who: &Identity) -> Result<Vec<RevealRecord>, ServiceError> {
        Ok(self
            .store
            .reveals(&who.user, &reveal_day(self.now()))
            .await?)
    }

    /// Decide on a case. A false positive restores the content before the case is
    /// released; deciding `false_positive` on a case whose restore was interrupted resumes it.
    pub async fn decide(
        &self,
        who: &Identity,
        case_id: &str,
        decision: Decision,
        classification: Option<Classification>,
        reason: &str,
        address: Option<&str>,
    ) -> Result<CaseRecord, ServiceError> {
        for _ in 0..UPDATE_ATTEMPTS {
            let case = self.load(case_id).await?;
            if case.status == CaseStatus::Releasing && decision == Decision::FalsePositive {
                let released = self.restore(who, case).await?;
                return Ok(self.follow_up(who, released).await);
            }
            let decided = decide(
                &case,
                who,
                decision,
                classification,
                reason,
                address,
                self.now(),
                &self.policy,
            )?;
            match self.store.update(&decided.case, decided.audit).await? {
                Updated::Conflict => continue,
                Updated::Written(linked) => {
                    self.checkpoint_if_due(&linked).await;
                    let case = if decided.restore {
                        self.restore(who, decided.case).await?
                    } else {
                        decided.case
                    };
                    return Ok(self.follow_up(who, case).await);
                }
            }
        }
        Err(ServiceError::Conflict(format!(
            "case {case_id} kept changing while it was being decided; try again"
        )))
    }

    /// Do what the decision left (report package, sharing, list feedback). The decision
    /// stands whatever happens here: a followup that fails stays on the case, is logged,
    /// and is finished by `POST /api/cases/{id}/followups` or `hashgate cases follow-up`.
    async fn follow_up(&self, who: &Identity, case: CaseRecord) -> CaseRecord {
        if case.followups.is_empty() {
            return case;
        }
        match self
            .followups
            .follow_up(&self.store, &case.case_id, &who.user, self.now())
            .await
        {
            Ok((case, done)) => {
                for d in done {
                    tracing::info!(case = %case.case_id, followup = %d.followup, detail = %d.detail, "followup done");
                }
                case
            }
            Err(e) => {
                tracing::warn!(case = %case.case_id, error = %e, "a followup failed; it stays on the case");
                self.load(&case.case_id).await.unwrap_or(case)
            }
        }
    }

    /// Finish the followups left on a case (an admin's retry).
    pub async fn finish_followups(
        &self,
        who: &Identity,
        case_id: &str,
    ) -> Result<(CaseRecord, Vec<Done>), ServiceError> {
        self.load(case_id).await?;
        self.followups
            .follow_up(&self.store, case_id, &who.user, self.now())
            .await
            .map_err(|e| ServiceError::Followup(e.to_string()))
    }

    /// Run (or resume) the restore of a releasing case to the end.
    async fn restore(&self, who: &Identity, case: CaseRecord) -> Result<CaseRecord, ServiceError> {
        let mut protocol = Restore::new(case, &self.policy)?;
        while !protocol.is_finishing() {
            let action = protocol.action();
            debug_assert!(action != RestoreAction::Finish);
            let outcome = self.evidence.restore_step(&action).await?;
            protocol.advance(outcome)?;
        }
        let (released, entry) = protocol
            .finish(&who.user, self.now())
            .expect("the protocol is finishing");
        match self.store.update(&released, entry).await? {
            Updated::Written(linked) => {
                self.checkpoint_if_due(&linked).await;
                Ok(released)
            }
            // Another request finished the same restore first.
            Updated::Conflict => self.load(&released.case_id).await,
        }
    }

    /// Verify the whole chain against every checkpoint.
    pub async fn verify(&self) -> Result<Verification, ServiceError> {
        Ok(verify_chain(&self.store, &self.checkpoints).await?)
    }
}
