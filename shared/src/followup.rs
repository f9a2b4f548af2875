//! What follows a decision, done so that none of it is lost.
//!
//! A decision writes, in the same conditional update as the decided case, the work it
//! leaves ([`Followup::after`]): a confirmed case's report package and the sharing of its
//! digests into the provider's own list; a false positive's feedback to the list entries it
//! matched. [`run`] then does each one, and removes it from the case together with its
//! audit entry in one more update. A crash in between leaves the followup on the case, and
//! running [`run`] again (the review API after the decision, `hashgate reports package`
//! later) finishes it: each step is idempotent (a package already written is kept, an entry
//! already on the list is already present, a case's false positive counts once).

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::audit::{AuditAction, AuditEntry};
use crate::case::{CaseRecord, CaseStatus};
use crate::feedback::ListFeedback;
use crate::lists::ListEntry;
use crate::pipeline::StorageError;
use crate::report::{incident_xml, Manifest, ReportConfig, ReportError, ReportInput};
use crate::review::{ReviewStore, Updated};
use crate::share::{Confirmed, ShareError};
use crate::store::{ImportStats, StoreError};
use crate::time::Timestamp;

/// One piece of work a decision leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Followup {
    /// Build the CyberTipline report package, write it to the reports bucket, announce it.
    ReportPackage,
    /// Add the case's digests to the provider's own list in the exact store.
    ShareConfirmed,
    /// Record the false positive against every list entry the case matched.
    ListFeedback,
}

impl Followup {
    /// The one rule for what a case's new status leaves to do.
    pub fn after(status: CaseStatus) -> Vec<Followup> {
        match status {
            CaseStatus::Confirmed => vec![Followup::ReportPackage, Followup::ShareConfirmed],
            CaseStatus::Releasing | CaseStatus::Released => vec![Followup::ListFeedback],
            _ => Vec::new(),
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Followup::ReportPackage => "report_package",
            Followup::ShareConfirmed => "share_confirmed",
            Followup::ListFeedback => "list_feedback",
        }
    }
}

impl std::fmt::Display for Followup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The documents of one report package, as written to the reports bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageFiles {
    pub case_id: String,
    /// The `<report>` document.
    pub report_xml: String,
    pub manifest: Manifest,
    /// What the file details are built from when the package is sent.
    pub input: ReportInput,
    /// The reporter configuration the documents were written with.
    pub config: ReportConfig,
}

impl PackageFiles {
    /// Build the package of a confirmed case from its audit history.
    pub fn build(
        case: &CaseRecord,
        history: &[crate::audit::ChainedEntry],
        config: &ReportConfig,
        built_at: Timestamp,
    ) -> Result<PackageFiles, ReportError> {
        let input = ReportInput::new(case, history, case.upload_facts.clone())?;
        let report_xml = incident_xml(config, &input, built_at)?;
        let manifest = Manifest::new(config, &input, &report_xml, built_at)?;
        Ok(PackageFiles {
            case_id: case.case_id.clone(),
            report_xml,
            manifest,
            input,
            config: config.clone(),
        })
    }
}

/// Where a package was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageLocation {
    pub bucket: String,
    /// The key prefix every file of the package is under (ends with `/`).
    pub prefix: String,
}

impl std::fmt::Display for PackageLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// The "Report Ready" event's detail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportReady {
    pub case_id: String,
    pub bucket: String,
    pub prefix: String,
    pub classification: String,
    pub file_viewed_by_esp: bool,
    pub built_at: Timestamp,
}

/// Where report packages go.
pub trait ReportOutbox: Send + Sync {
    /// Write the package. A package already written for the case is kept as it is (the
    /// reports bucket is under Object Lock; the first one is the one that counts) and its
    /// location returned.
    fn write_package(
        &self,
        files: &PackageFiles,
    ) -> impl Future<Output = Result<PackageLocation, StorageError>> + Send;

    /// Announce a package ("Report Ready").
    fn announce(
        &self,
        ready: &ReportReady,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// The provider's own list in the exact store.
pub trait OwnList: Send + Sync {
    /// Add entries to the store, atomically (all or none).
    fn add(
        &self,
        entries: &[ListEntry],
    ) -> impl Future<Output = Result<ImportStats, StoreError>> + Send;
}

impl<T: ReportOutbox> ReportOutbox for std::sync::Arc<T> {
    fn write_package(
        &self,
        files: &PackageFiles,
    ) -> impl Future<Output = Result<PackageLocation, StorageError>> + Send {
        (**self).write_package(files)
    }
    fn announce(
        &self,
        ready: &ReportReady,
    ) -> impl Future<Output = Result<(), StorageError>> + Send {
        (**self).announce(ready)
    }
}

impl<T: OwnList> OwnList for std::sync::Arc<T> {
    fn add(
        &self,
        entries: &[ListEntry],
    ) -> impl Future<Output = Result<ImportStats, StoreError>> + Send {
        (**self).add(entries)
    }
}

/// What the followups are done with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The reporter configuration; none: report packages cannot be built (the followup
    /// stays on the case, and says why).
    pub report: Option<ReportConfig>,
    /// The provider's own list's name.
    pub own_list: String,
    /// False positives after which a list entry is suppressed (0: never).
    pub suppress_after: u32,
}

/// The ports the followups use.
pub struct Ports<'a, S, R, L, F> {
    pub store: &'a S,
    pub outbox: &'a R,
    pub own_list: &'a L,
    pub feedback: &'a F,
}

/// Why a followup could not be done (it stays on the case).
#[derive(Debug, thiserror::Error)]
pub enum FollowupError {
    #[error("case {0} does not exist")]
    NotFound(String),
    #[error("case {case_id}: report packages are not configured (no reporter: set HASHGATE_REPORT_CONFIG)")]
    NotConfigured { case_id: String },
    #[error("case {case_id}: the report cannot be built: {source}")]
    Report {
        case_id: String,
        #[source]
        source: ReportError,
    },
    #[error(transparent)]
    Share(#[from] ShareError),
    #[error("case {case_id}: the exact store refused: {source}")]
    Store {
        case_id: String,
        #[source]
        source: StoreError,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("case {0} kept changing while its followups were done; run them again")]
    Conflict(String),
}

/// What one followup did, for the caller's log and the audit entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    pub followup: Followup,
    pub detail: String,
}

/// Attempts at writing a case that another writer keeps changing.
const ATTEMPTS: usize = 5;

/// Do every followup left on case `case_id`, each removed from the case with its audit
/// entry (actor `actor`) once done. Stops at the first that fails: it and the ones after it
/// stay on the case. Returns the case as written and what was done.
pub async fn run<S, R, L, F>(
    ports: Ports<'_, S, R, L, F>,
    settings: &Settings,
    case_id: &str,
    actor: &str,
    now: Timestamp,
) -> Result<(CaseRecord, Vec<Done>), FollowupError>
where
    S: ReviewStore,
    R: ReportOutbox,
    L: OwnList,
    F: ListFeedback,
{
    let mut done = Vec::new();
    let mut conflicts = 0;
    loop {
        let case = ports
            .store
            .case(case_id)
            .await?
            .ok_or_else(|| FollowupError::NotFound(case_id.to_string()))?;
        let Some(&followup) = case.followups.first() else {
            return Ok((case, done));
        };
        let (action, detail) = match followup {
            Followup::ReportPackage => (
                AuditAction::Packaged,
                package(&ports, settings, &case, now).await?,
            ),
            Followup::ShareConfirmed => {
                (AuditAction::Shared, share(&ports, settings, &case).await?)
            }
            Followup::ListFeedback => {
                let (action, detail) = feedback(&ports, settings, &case, now).await?;
                (action, detail)
            }
        };
        let mut next = case.clone();
        next.followups.retain(|f| *f != followup);
        next.revision += 1;
        let entry = AuditEntry::new(case_id, now, actor.to_string(), action, detail.clone());
        match ports.store.update(&next, entry).await? {
            Updated::Written(_) => done.push(Done { followup, detail }),
            Updated::Conflict => {
                conflicts += 1;
                if conflicts >= ATTEMPTS {
                    return Err(FollowupError::Conflict(case_id.to_string()));
                }
            }
        }
    }
}

async fn package<S, R, L, F>(
    ports: &Ports<'_, S, R, L, F>,
    settings: &Settings,
    case: &CaseRecord,
    now: Timestamp,
) -> Result<String, FollowupError>
where
    S: ReviewStore,
    R: ReportOutbox,
{
    let config = settings
        .report
        .as_ref()
        .ok_or_else(|| FollowupError::NotConfigured {
            case_id: case.case_id.clone(),
        })?;
    let history = ports.store.history(&case.case_id).await?;
    let files = PackageFiles::build(case, &history, config, now).map_err(|source| {
        FollowupError::Report {
            case_id: case.case_id.clone(),
            source,
        }
    })?;
    let location = ports.outbox.write_package(&files).await?;
    ports
        .outbox
        .announce(&ReportReady {
            case_id: case.case_id.clone(),
            bucket: location.bucket.clone(),
            prefix: location.prefix.clone(),
            classification: files.manifest.classification.as_str().to_string(),
            file_viewed_by_esp: files.manifest.file_viewed_by_esp,
            built_at: files.manifest.built_at,
        })
        .await?;
    Ok(format!(
        "report package written to {location} (fileViewedByEsp {}); Report Ready published",
        files.manifest.file_viewed_by_esp
    ))
}

async fn share<S, R, L, F>(
    ports: &Ports<'_, S, R, L, F>,
    settings: &Settings,
    case: &CaseRecord,
) -> Result<String, FollowupError>
where
    L: OwnList,
{
    let mut confirmed = Confirmed::new(&settings.own_list)?;
    confirmed.add(case)?;
    let entries = confirmed.into_entries();
    let stats = ports
        .own_list
        .add(&entries)
        .await
        .map_err(|source| FollowupError::Store {
            case_id: case.case_id.clone(),
            source,
        })?;
    Ok(format!(
        "{} digest(s) on the list {:?}: {} added, {} already there",
        entries.len(),
        settings.own_list,
        stats.added + stats.updated,
        stats.already_present
    ))
}

async fn feedback<S, R, L, F>(
    ports: &Ports<'_, S, R, L, F>,
    settings: &Settings,
    case: &CaseRecord,
    now: Timestamp,
) -> Result<(AuditAction, String), FollowupError>
where
    F: ListFeedback,
{
    let recorded = ports
        .feedback
        .record_false_positive(&case.case_id, &case.matches, now, settings.suppress_after)
        .await
        .map_err(|source| FollowupError::Store {
            case_id: case.case_id.clone(),
            source,
        })?;
    let suppressed: Vec<String> = recorded
        .iter()
        .filter(|r| r.newly_suppressed)
        .map(|r| {
            format!(
                "{} on {:?}{} ({} false positives)",
                r.key.digest,
                r.key.list,
                r.key
                    .id
                    .as_deref()
                    .map(|i| format!(" id {i:?}"))
                    .unwrap_or_default(),
                r.false_positives
            )
        })
        .collect();
    let counted = recorded
        .iter()
        .map(|r| {
            format!(
                "{} on {:?}: {}",
                r.key.digest, r.key.list, r.false_positives
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if suppressed.is_empty() {
        Ok((
            AuditAction::FalsePositiveRecorded,
            format!(
                "false positive recorded against {} list entr(ies): {counted}",
                recorded.len()
            ),
        ))
    } else {
        Ok((
            AuditAction::EntrySuppressed,
            format!(
                "false positive recorded ({counted}); suppressed, no longer matching: {}",
                suppressed.join("; ")
            ),
        ))
    }
}
