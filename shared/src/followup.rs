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
    /// Write the package, under a legal hold when `legal_hold` (the case is held, so its
    /// package is preserved as its evidence is). A package already written for the case is
    /// kept as it is (the reports bucket is under Object Lock; the first one is the one
    /// that counts) and its location returned.
    fn write_package(
        &self,
        files: &PackageFiles,
        legal_hold: bool,
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
        legal_hold: bool,
    ) -> impl Future<Output = Result<PackageLocation, StorageError>> + Send {
        (**self).write_package(files, legal_hold)
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
    let location = ports
        .outbox
        .write_package(&files, case.legal_hold.is_some())
        .await?;
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

/// The followups' ports and settings, held together by whoever runs them (the review
/// service, the CLI).
pub struct Followups<R, L, F> {
    pub outbox: R,
    pub own_list: L,
    pub feedback: F,
    pub settings: Settings,
}

/// Something that can do a case's followups given the case store: what the review service
/// holds, so it needs one type parameter, not three.
pub trait FollowupPorts: Send + Sync {
    fn follow_up<S: ReviewStore>(
        &self,
        store: &S,
        case_id: &str,
        actor: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<(CaseRecord, Vec<Done>), FollowupError>> + Send;
}

impl<R: ReportOutbox, L: OwnList, F: ListFeedback> FollowupPorts for Followups<R, L, F> {
    async fn follow_up<S: ReviewStore>(
        &self,
        store: &S,
        case_id: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<(CaseRecord, Vec<Done>), FollowupError> {
        run(
            Ports {
                store,
                outbox: &self.outbox,
                own_list: &self.own_list,
                feedback: &self.feedback,
            },
            &self.settings,
            case_id,
            actor,
            now,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::feedback::Recorded;
    use crate::memory::{MemoryCases, MemoryReports, MemoryStore};
    use crate::pipeline::CaseStore;
    use crate::review::tests::case;
    use crate::review::{decide, Classification, Decision, Identity, ReviewPolicy, Role};
    use crate::scan::Match;
    use crate::store::HashStore;
    use crate::Digest;

    /// Feedback that remembers what it was told (the rule itself is `feedback`'s).
    #[derive(Default)]
    struct Told(Mutex<Vec<(String, usize)>>);

    impl ListFeedback for Told {
        async fn record_false_positive(
            &self,
            case_id: &str,
            matches: &[Match],
            _at: Timestamp,
            _suppress_after: u32,
        ) -> Result<Vec<Recorded>, StoreError> {
            self.0.lock().unwrap().push((case_id.into(), matches.len()));
            Ok(matches
                .iter()
                .map(|m| Recorded {
                    key: crate::feedback::EntryKey::of(m),
                    false_positives: 1,
                    newly_suppressed: false,
                })
                .collect())
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_795_300_000).unwrap()
    }

    fn settings(configured: bool) -> Settings {
        Settings {
            report: configured.then(|| {
                serde_json::from_str(r#"{"reporter":{"email":"tips@example.org"}}"#).unwrap()
            }),
            own_list: "own-confirmed".into(),
            suppress_after: 3,
        }
    }

    struct World {
        cases: MemoryCases,
        reports: MemoryReports,
        store: MemoryStore,
        told: Told,
    }

    impl World {
        fn new() -> World {
            World {
                cases: MemoryCases::default(),
                reports: MemoryReports::default(),
                store: MemoryStore::default(),
                told: Told::default(),
            }
        }

        fn ports(&self) -> Ports<'_, MemoryCases, MemoryReports, MemoryStore, Told> {
            Ports {
                store: &self.cases,
                outbox: &self.reports,
                own_list: &self.store,
                feedback: &self.told,
            }
        }

        /// A case decided `d` and written, as the review service does.
        fn decided(&self, d: Decision) -> CaseRecord {
            let open = case(CaseStatus::HeldInPlace);
            let opened = AuditEntry::new(
                &open.case_id,
                now(),
                "scanner",
                AuditAction::HeldInPlace,
                String::new(),
            );
            assert!(pollster::block_on(self.cases.create(&open, &opened)).unwrap());
            let who = Identity {
                user: "reviewer-a".into(),
                role: Role::Reviewer,
            };
            let classification = (d == Decision::Confirm).then_some(Classification::A1);
            let decided = decide(
                &open,
                &who,
                d,
                classification,
                "seen",
                None,
                now(),
                &ReviewPolicy {
                    two_person_rule: false,
                    ..ReviewPolicy::default()
                },
            )
            .unwrap();
            assert!(matches!(
                pollster::block_on(self.cases.update(&decided.case, decided.audit)).unwrap(),
                Updated::Written(_)
            ));
            decided.case
        }

        fn run(&self, configured: bool) -> Result<(CaseRecord, Vec<Done>), FollowupError> {
            pollster::block_on(run(
                self.ports(),
                &settings(configured),
                "case-1",
                "reviewer-a",
                now(),
            ))
        }

        fn actions(&self) -> Vec<AuditAction> {
            pollster::block_on(self.cases.history("case-1"))
                .unwrap()
                .iter()
                .map(|e| e.entry.action)
                .collect()
        }

        fn on_own_list(&self) -> usize {
            let c = case(CaseStatus::Confirmed);
            let digests: Vec<Digest> = c
                .digests
                .iter()
                .map(|(a, h)| Digest::parse_hex_as(a.parse().unwrap(), h).unwrap())
                .collect();
            pollster::block_on(self.store.lookup(&digests))
                .unwrap()
                .iter()
                .filter(|d| {
                    d.provenance
                        .iter()
                        .any(|p| p.list == "own-confirmed" && p.id.as_deref() == Some("case-1"))
                })
                .count()
        }
    }

    #[test]
    fn the_rule_names_what_each_status_leaves() {
        assert_eq!(
            Followup::after(CaseStatus::Confirmed),
            [Followup::ReportPackage, Followup::ShareConfirmed]
        );
        assert_eq!(
            Followup::after(CaseStatus::Releasing),
            [Followup::ListFeedback]
        );
        assert_eq!(
            Followup::after(CaseStatus::Released),
            [Followup::ListFeedback]
        );
        for s in [
            CaseStatus::PendingReview,
            CaseStatus::AwaitingSecondReview,
            CaseStatus::Escalated,
        ] {
            assert!(Followup::after(s).is_empty(), "{s}");
        }
    }

    #[test]
    fn a_confirmation_is_packaged_announced_and_shared_once() {
        let w = World::new();
        let confirmed = w.decided(Decision::Confirm);
        assert_eq!(
            confirmed.followups,
            [Followup::ReportPackage, Followup::ShareConfirmed]
        );
        let (case, done) = w.run(true).unwrap();
        assert!(case.followups.is_empty());
        assert_eq!(done.len(), 2);
        let package = w.reports.package("case-1").expect("a package");
        assert!(package.report_xml.contains("<incidentType>"));
        assert!(!package.manifest.file_viewed_by_esp, "nobody revealed it");
        assert_eq!(w.reports.ready().len(), 1);
        assert_eq!(w.on_own_list(), 3, "MD5, SHA-1 and SHA-256 on the own list");
        assert_eq!(
            w.actions(),
            [
                AuditAction::HeldInPlace,
                AuditAction::Decided,
                AuditAction::Packaged,
                AuditAction::Shared
            ]
        );
        // Nothing left: running again does nothing.
        let (_, again) = w.run(true).unwrap();
        assert!(again.is_empty());
        assert_eq!(w.reports.ready().len(), 1);
    }

    #[test]
    fn a_failure_at_any_step_leaves_the_followup_and_a_rerun_finishes_it() {
        for fail in ["write", "announce", "not configured"] {
            let w = World::new();
            w.decided(Decision::Confirm);
            match fail {
                "write" => w.reports.fail_next_write(),
                "announce" => w.reports.fail_next_announce(),
                _ => {}
            }
            let err = w.run(fail != "not configured").unwrap_err();
            if fail == "not configured" {
                assert!(matches!(err, FollowupError::NotConfigured { .. }), "{err}");
                assert!(err.to_string().contains("HASHGATE_REPORT_CONFIG"));
            }
            let stuck = pollster::block_on(w.cases.case("case-1")).unwrap().unwrap();
            assert_eq!(
                stuck.followups,
                [Followup::ReportPackage, Followup::ShareConfirmed],
                "{fail}"
            );
            assert_eq!(w.on_own_list(), 0, "{fail}: nothing after the failed step");
            let (case, _) = w.run(true).unwrap();
            assert!(case.followups.is_empty(), "{fail}");
            assert!(w.reports.package("case-1").is_some());
            assert_eq!(w.reports.ready().len(), 1, "{fail}: announced once");
            assert_eq!(w.on_own_list(), 3);
            let actions = w.actions();
            assert_eq!(
                actions
                    .iter()
                    .filter(|a| **a == AuditAction::Packaged)
                    .count(),
                1
            );
        }
    }

    #[test]
    fn a_held_cases_package_is_written_under_the_hold() {
        let w = World::new();
        let confirmed = w.decided(Decision::Confirm);
        assert!(!w.reports.held("case-1"));
        let mut held = confirmed.clone();
        held.legal_hold = Some(crate::case::LegalHold {
            by: "counsel".into(),
            at: now(),
            reason: "preservation request".into(),
        });
        held.revision += 1;
        let entry = AuditEntry::new("case-1", now(), "counsel", AuditAction::HoldPlaced, "held");
        assert!(matches!(
            pollster::block_on(w.cases.update(&held, entry)).unwrap(),
            Updated::Written(_)
        ));
        w.run(true).unwrap();
        assert!(w.reports.package("case-1").is_some());
        assert!(w.reports.held("case-1"), "written under the case's hold");
    }

    #[test]
    fn a_false_positive_is_fed_back_to_the_lists_and_never_shared() {
        let w = World::new();
        let released = w.decided(Decision::FalsePositive);
        assert_eq!(released.followups, [Followup::ListFeedback]);
        let (case, _) = w.run(false).unwrap();
        assert!(case.followups.is_empty());
        assert_eq!(*w.told.0.lock().unwrap(), [("case-1".to_string(), 1)]);
        assert!(w.reports.package("case-1").is_none());
        assert_eq!(w.on_own_list(), 0);
        assert_eq!(
            w.actions().last(),
            Some(&AuditAction::FalsePositiveRecorded)
        );
    }
}
