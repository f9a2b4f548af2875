//! One upload, end to end: HEAD → fast path or one streaming read → decision → clean tag or
//! the quarantine protocol. Storage is reached only through the ports defined here
//! ([`ObjectStore`], [`CaseStore`], [`Notifier`], and [`HashStore`]); the AWS adapters
//! implement them for S3, DynamoDB, SQS and EventBridge, and the tests with memory.
//!
//! Every outcome is explicit (invariant 5): an object that vanished, was replaced, is too
//! large or could not be read is never reported clean.

use std::future::Future;

use serde::Serialize;

use crate::case::{AuditEntry, CaseRecord};
use crate::digest::{Algorithm, AlgorithmSet, Digest, DigestSet, Digested};
use crate::event::{ObjectRef, UploadEvent};
use crate::pdq::index::PdqIndex;
use crate::pdq::tap::ImageOutcome;
use crate::quarantine::{Action, Finished, Mode, Outcome, Plan, ProtocolError, Quarantine};
use crate::review::is_released_content;
use crate::scan::{decide, Match, Perceptual, Screen};
use crate::store::{HashStore, StoreError};
use crate::time::{add_days, Timestamp};

/// What the object store says about one object version without reading it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    /// Without quotes.
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// SSE-KMS or SSE-C: the ETag of such an object is not its MD5.
    pub customer_key_encryption: bool,
    /// Full-object checksums the store computed on upload (never composite ones).
    pub checksums: DigestSet,
    /// The case a restore wrote this object back from (its
    /// [`crate::review::RESTORED_CASE_METADATA`] metadata). Anyone can set metadata, so it
    /// is only a pointer: [`crate::review::is_released_content`] decides.
    pub restored_case: Option<String>,
}

/// The digests the object store itself vouches for: the ETag of a single-part upload not
/// encrypted with SSE-KMS or SSE-C is its MD5, and full-object SHA-1/SHA-256 checksums.
pub fn vouched_digests(head: &ObjectHead) -> DigestSet {
    let mut digests = head.checksums;
    if let Some(etag) = &head.etag {
        if !head.customer_key_encryption && !etag.contains('-') {
            if let Ok(md5) = Digest::parse_hex_as(Algorithm::Md5, etag) {
                digests.insert(md5);
            }
        }
    }
    digests
}

/// The result of reading an object version through the digests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadResult {
    Digested(Digested),
    /// The version is gone.
    Gone,
    /// The key holds another version now (the ETag precondition failed).
    Changed,
    /// Larger than the configured maximum: not read.
    TooLarge {
        size: u64,
    },
    /// The store refuses to hand it over (access denied, a KMS key the scanner may not use):
    /// retrying will not help.
    Unreadable {
        reason: String,
    },
}

/// A storage failure: what, where, and whether retrying may help.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} {target}: {message}")]
pub struct StorageError {
    pub operation: &'static str,
    pub target: String,
    pub message: String,
}

/// Objects: the upload bucket and the quarantine bucket.
pub trait ObjectStore: Send + Sync {
    /// HEAD exactly this version (by version id, or the current object with the ETag
    /// checked); `None` if it no longer exists.
    fn head(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<Option<ObjectHead>, StorageError>> + Send;

    /// Stream exactly this version once through the digests of `algorithms`.
    fn read_digests(
        &self,
        object: &ObjectRef,
        algorithms: AlgorithmSet,
        max_bytes: u64,
    ) -> impl Future<Output = Result<ReadResult, StorageError>> + Send;

    /// Carry out an object step of the quarantine protocol: `Copy`, `Verify`, `Tag` or
    /// `DeleteOriginal`, idempotently.
    fn quarantine_step(
        &self,
        action: &Action,
    ) -> impl Future<Output = Result<Outcome, StorageError>> + Send;

    /// Record the scan result on the object as a tag, merged with the owner's tags and
    /// never overwriting them. Best effort: `Ok(false)` when there was no room.
    fn tag_result(
        &self,
        object: &ObjectRef,
        status: &str,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;
}

/// Durable case records and their audit entries.
pub trait CaseStore: Send + Sync {
    /// Read a case back.
    fn get(
        &self,
        case_id: &str,
    ) -> impl Future<Output = Result<Option<CaseRecord>, StorageError>> + Send;

    /// Create the case if it does not exist; `Ok(false)` when it already did.
    fn create(
        &self,
        record: &CaseRecord,
        audit: &AuditEntry,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;
}

/// The review queue and the event bus.
pub trait Notifier: Send + Sync {
    fn announce(
        &self,
        record: &CaseRecord,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// How the scanner behaves.
#[derive(Clone, Debug)]
pub struct ScannerConfig {
    pub quarantine_bucket: String,
    pub retention_days: u32,
    pub mode: Mode,
    pub max_object_bytes: u64,
    /// Tag clean objects with the result.
    pub tag_clean: bool,
    /// How image uploads are matched against PDQ entries.
    pub perceptual: PerceptualConfig,
}

/// Perceptual (PDQ) matching: how close is a match, which images are too flat to say, and
/// what happens to an upload that only a perceptual entry matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerceptualConfig {
    /// Largest Hamming distance (of 256 bits) that matches.
    pub threshold: u32,
    /// Uploads whose PDQ quality is below this are not matched perceptually (and say so).
    pub min_quality: u8,
    /// What a perceptual-only match does: move to quarantine (the default), hold in place,
    /// or only open a case for review. A match with any exact entry follows `mode`.
    pub mode: Mode,
}

impl Default for PerceptualConfig {
    fn default() -> Self {
        PerceptualConfig {
            threshold: crate::pdq::DEFAULT_THRESHOLD,
            min_quality: crate::pdq::DEFAULT_MIN_QUALITY,
            mode: Mode::Move,
        }
    }
}

/// What perceptual matching made of an image upload (for the report and the logs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageReport {
    /// The image format its bytes say.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdq: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    /// `matched` (asked against the PDQ entries), `low_quality` (not matched: below the
    /// minimum quality), `no_entries` (no PDQ entries loaded yet), or `undecodable`.
    pub perceptual: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The tag key hashgate writes on scanned objects.
pub const RESULT_TAG: &str = "hashgate-scan";

/// What became of one upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum ScanStatus {
    Clean,
    /// Matched and contained.
    Matched {
        outcome: Finished,
        case_id: String,
    },
    /// The scanned version was replaced before the scan: the new one has its own event.
    Superseded,
    /// Deleted before it could be scanned.
    Gone,
    /// An object of the quarantine bucket itself: hashgate's own evidence, never scanned,
    /// tagged or moved. (Self-hosted stores notify about every bucket; without this rule a
    /// quarantined copy would be quarantined again, and again.)
    OwnQuarantine,
    /// Over the configured maximum size: not scanned.
    TooLarge {
        size: u64,
        max: u64,
    },
    /// The object store refused to hand the object over: not scanned.
    Unreadable {
        reason: String,
    },
    /// Matched, but it is the very content reviewers released as a false positive and put
    /// back: left where it is.
    Released {
        case_id: String,
    },
    /// An image (by its bytes) that could not be decoded for PDQ, with PDQ entries active:
    /// its exact digests found nothing, but it was not matched perceptually, so it is not
    /// called clean.
    Undecodable {
        reason: String,
    },
}

impl ScanStatus {
    /// The value of the result tag.
    pub fn tag_value(&self) -> &'static str {
        match self {
            ScanStatus::Clean => "clean",
            ScanStatus::Matched { .. } => "match",
            ScanStatus::Superseded => "superseded",
            ScanStatus::Gone => "gone",
            ScanStatus::OwnQuarantine => "quarantine",
            ScanStatus::TooLarge { .. } => "unscanned-too-large",
            ScanStatus::Unreadable { .. } => "unscanned-unreadable",
            ScanStatus::Released { .. } => "released",
            ScanStatus::Undecodable { .. } => "unscanned-undecodable",
        }
    }
}

/// The report of one upload, for logs and metrics (never object content).
#[derive(Clone, Debug, Serialize)]
pub struct ScanReport {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    #[serde(flatten)]
    pub status: ScanStatus,
    /// Decided from digests the store vouched for, without reading the body.
    pub fast_path: bool,
    pub bytes_read: u64,
    pub size: Option<u64>,
    pub digests: Vec<(String, String)>,
    pub matches: Vec<Match>,
    pub filter_false_positives: u32,
    /// For an image read with PDQ entries active: its PDQ and what matching made of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageReport>,
}

/// Why an upload could not be handled; the event must be retried.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// The scanner: ports plus configuration.
pub struct Scanner<O, H, C, N> {
    pub objects: O,
    pub hashes: H,
    pub cases: C,
    pub notifier: N,
    pub config: ScannerConfig,
}

impl<O: ObjectStore, H: HashStore, C: CaseStore, N: Notifier> Scanner<O, H, C, N> {
    /// Scan one upload and act on the verdict. `needed` are the algorithms the active lists
    /// use; `screen` the current filter; `pdq` the PDQ index of the latest filter loaded
    /// (used even when stale: see `scan`'s module documentation).
    pub async fn scan(
        &self,
        event: &UploadEvent,
        screen: Screen<'_>,
        pdq: Option<&PdqIndex>,
        needed: AlgorithmSet,
        now: Timestamp,
    ) -> Result<ScanReport, PipelineError> {
        let object = &event.object;
        let mut report = ScanReport {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            version_id: object.version_id.clone(),
            status: ScanStatus::Gone,
            fast_path: false,
            bytes_read: 0,
            size: event.size,
            digests: Vec::new(),
            matches: Vec::new(),
            filter_false_positives: 0,
            image: None,
        };
        if object.bucket == self.config.quarantine_bucket {
            report.status = ScanStatus::OwnQuarantine;
            return Ok(report);
        }
        let Some(head) = self.objects.head(object).await? else {
            return Ok(report);
        };
        report.size = Some(head.size);
        if object.version_id.is_none() {
            if let (Some(expected), Some(found)) = (&object.etag, &head.etag) {
                if expected != found {
                    report.status = ScanStatus::Superseded;
                    return Ok(report);
                }
            }
        }
        // Pin the exact version seen, so what is read, copied and deleted is this one.
        let object = &ObjectRef {
            version_id: object.version_id.clone().or(head.version_id.clone()),
            etag: object.etag.clone().or(head.etag.clone()),
            ..object.clone()
        };
        report.version_id = object.version_id.clone();
        if head.size > self.config.max_object_bytes {
            return self.too_large(report, object, head.size).await;
        }

        // The quarantine copy is verified by exact digests (and a report names one): with
        // only PDQ entries listed, SHA-256 is computed too.
        let needed = if needed.contains(Algorithm::Pdq) && needed.exact().is_empty() {
            needed.with(Algorithm::Sha256)
        } else {
            needed
        };
        // The fast path never applies with PDQ entries active: only the bytes say whether
        // an upload is an image.
        let vouched = vouched_digests(&head);
        let mut image = None;
        let digests = if !needed.is_empty() && vouched.algorithms().covers(needed) {
            report.fast_path = true;
            needed.iter().filter_map(|a| vouched.get(a)).collect()
        } else {
            match self
                .objects
                .read_digests(object, needed, self.config.max_object_bytes)
                .await?
            {
                ReadResult::Digested(d) => {
                    report.bytes_read = d.bytes;
                    image = d.image;
                    d.digests
                }
                ReadResult::Gone => return Ok(report),
                ReadResult::Changed => {
                    report.status = ScanStatus::Superseded;
                    return Ok(report);
                }
                ReadResult::TooLarge { size } => return self.too_large(report, object, size).await,
                ReadResult::Unreadable { reason } => {
                    report.status = ScanStatus::Unreadable { reason };
                    // Best effort: a store that refuses reads may refuse tagging too.
                    if let Err(e) = self
                        .objects
                        .tag_result(object, report.status.tag_value())
                        .await
                    {
                        tracing::warn!(error = %e, "cannot tag an unreadable object");
                    }
                    return Ok(report);
                }
            }
        };
        report.digests = CaseRecord::digest_pairs(&digests);

        let (perceptual, image_report) = self.perceptual(image.as_ref(), pdq);
        report.image = image_report;
        let decision = decide(&self.hashes, screen, &digests, perceptual).await?;
        report.filter_false_positives = decision.filter_false_positives;
        report.matches = decision.verdict.matches().to_vec();
        if !decision.verdict.is_match() {
            if let Some(ImageOutcome::Undecodable { reason, .. }) = &image {
                report.status = ScanStatus::Undecodable {
                    reason: reason.clone(),
                };
                self.objects
                    .tag_result(object, report.status.tag_value())
                    .await?;
                return Ok(report);
            }
            report.status = ScanStatus::Clean;
            if self.config.tag_clean {
                self.objects.tag_result(object, "clean").await?;
            }
            return Ok(report);
        }

        // A false positive restored by the review queue comes back through the bucket like
        // any upload; it is left alone only if the case it names was released and holds
        // exactly these digests.
        if let Some(case_id) = &head.restored_case {
            if let Some(case) = self.cases.get(case_id).await? {
                if is_released_content(&case, &digests) {
                    report.status = ScanStatus::Released {
                        case_id: case_id.clone(),
                    };
                    self.objects
                        .tag_result(object, report.status.tag_value())
                        .await?;
                    return Ok(report);
                }
            }
        }

        let plan = Plan {
            object: object.clone(),
            size: head.size,
            digests,
            matches: report.matches.clone(),
            quarantine_bucket: self.config.quarantine_bucket.clone(),
            retain_until: add_days(now, self.config.retention_days),
            // Only perceptual entries matched: the perceptual action decides.
            mode: if report.matches.iter().all(|m| m.distance.is_some()) {
                self.config.perceptual.mode
            } else {
                self.config.mode
            },
            now,
            uploaded_at: event.uploaded_at,
            upload_facts: event.upload_facts.clone(),
        };
        let case_id = plan.case_id();
        let finished = self.quarantine(plan).await?;
        report.status = ScanStatus::Matched {
            outcome: finished,
            case_id,
        };
        Ok(report)
    }

    /// What to match an image's PDQ against, and what to report about it.
    fn perceptual<'a>(
        &self,
        image: Option<&'a ImageOutcome>,
        index: Option<&'a PdqIndex>,
    ) -> (Option<Perceptual<'a>>, Option<ImageReport>) {
        let Some(image) = image else {
            return (None, None);
        };
        match image {
            ImageOutcome::NotImage => (None, None),
            ImageOutcome::Undecodable { kind, reason } => (
                None,
                Some(ImageReport {
                    kind: kind.clone(),
                    pdq: None,
                    quality: None,
                    perceptual: "undecodable",
                    reason: Some(reason.clone()),
                }),
            ),
            ImageOutcome::Hashed(summary) => {
                let config = &self.config.perceptual;
                let (query, perceptual) = match index {
                    _ if summary.quality < config.min_quality => (None, "low_quality"),
                    Some(index) if !index.is_empty() => (
                        Some(Perceptual {
                            index,
                            variants: &summary.variants,
                            threshold: config.threshold,
                        }),
                        "matched",
                    ),
                    _ => (None, "no_entries"),
                };
                let reason = (perceptual == "low_quality").then(|| {
                    format!(
                        "PDQ quality {} is below the minimum {}: too little detail to match perceptually",
                        summary.quality, config.min_quality
                    )
                });
                (
                    query,
                    Some(ImageReport {
                        kind: summary.kind.to_string(),
                        pdq: Some(summary.pdq.to_hex()),
                        quality: Some(summary.quality),
                        perceptual,
                        reason,
                    }),
                )
            }
        }
    }

    async fn too_large(
        &self,
        mut report: ScanReport,
        object: &ObjectRef,
        size: u64,
    ) -> Result<ScanReport, PipelineError> {
        report.status = ScanStatus::TooLarge {
            size,
            max: self.config.max_object_bytes,
        };
        self.objects
            .tag_result(object, report.status.tag_value())
            .await?;
        Ok(report)
    }

    /// Drive the quarantine protocol to its end.
    pub async fn quarantine(&self, plan: Plan) -> Result<Finished, PipelineError> {
        let mut q = Quarantine::new(plan);
        loop {
            let action = q.action();
            let outcome = match &action {
                Action::Done(finished) => return Ok(*finished),
                Action::WriteCase { record, audit } => {
                    if self.cases.create(record, audit).await? {
                        Outcome::CaseWritten
                    } else {
                        Outcome::CaseExisted
                    }
                }
                Action::Notify { record } => {
                    self.notifier.announce(record).await?;
                    Outcome::Notified
                }
                _ => self.objects.quarantine_step(&action).await?,
            };
            q.advance(outcome)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::CaseStatus;
    use crate::digest::{digest_bytes, StreamDigester};
    use crate::event::Trigger;
    use crate::filter::FilterSnapshot;
    use crate::lists::{ListEntry, Provenance};
    use crate::memory::{etag_of, Fault, MemoryCases, MemoryNotifier, MemoryObjects, MemoryStore};
    use crate::store::Op;

    type TestScanner = Scanner<MemoryObjects, MemoryStore, MemoryCases, MemoryNotifier>;

    const BAD: &[u8] = b"content on a list";
    /// A fixed filter seed (halves differ), so the test is repeatable.
    const SEED: [u8; 32] = *b"0123456789abcdefFEDCBA9876543210";

    fn scanner() -> TestScanner {
        let store = MemoryStore::default();
        let md5 = digest_bytes(BAD, AlgorithmSet::ALL)
            .get(Algorithm::Md5)
            .unwrap();
        store
            .apply(
                &[ListEntry {
                    digest: md5,
                    provenance: Provenance {
                        list: "ncmec".into(),
                        id: Some("7".into()),
                        category: None,
                    },
                }],
                Op::Add,
            )
            .unwrap();
        Scanner {
            objects: MemoryObjects::default(),
            hashes: store,
            cases: MemoryCases::default(),
            notifier: MemoryNotifier::default(),
            config: ScannerConfig {
                quarantine_bucket: "quarantine".into(),
                retention_days: 365,
                mode: Mode::Move,
                max_object_bytes: 1 << 20,
                tag_clean: true,
                perceptual: PerceptualConfig::default(),
            },
        }
    }

    fn event(key: &str, content: &[u8]) -> UploadEvent {
        UploadEvent {
            object: ObjectRef {
                bucket: "uploads".into(),
                key: key.into(),
                version_id: None,
                etag: Some(etag_of(content)),
            },
            size: Some(content.len() as u64),
            event_name: "ObjectCreated:Put".into(),
            uploaded_at: None,
            trigger: Trigger::S3,
            upload_facts: Default::default(),
        }
    }

    fn md5_only() -> AlgorithmSet {
        AlgorithmSet::EMPTY.with(Algorithm::Md5)
    }

    fn scan(
        s: &TestScanner,
        e: &UploadEvent,
        needed: AlgorithmSet,
    ) -> Result<ScanReport, PipelineError> {
        pollster::block_on(s.scan(e, Screen::StoreOnly, None, needed, Timestamp::UNIX_EPOCH))
    }

    #[test]
    fn a_restored_false_positive_is_left_alone_but_forged_metadata_is_not() {
        let s = scanner();
        let bad = b"known bad content";
        s.hashes
            .apply(
                &[ListEntry {
                    digest: digest_bytes(bad, AlgorithmSet::EMPTY.with(Algorithm::Md5))
                        .get(Algorithm::Md5)
                        .unwrap(),
                    provenance: Provenance {
                        list: "l".into(),
                        id: None,
                        category: None,
                    },
                }],
                crate::store::Op::Add,
            )
            .unwrap();
        // First upload: matched and quarantined; then reviewers release it.
        s.objects.put("uploads", "a.jpg", bad);
        let r = scan(&s, &event("a.jpg", bad), AlgorithmSet::ALL).unwrap();
        let ScanStatus::Matched { case_id, .. } = r.status else {
            panic!("{r:?}")
        };
        // A later upload claiming to be the restore of an unreleased case is quarantined.
        s.objects.put("uploads", "b.jpg", bad);
        s.objects.mark_restored("uploads", "b.jpg", &case_id);
        let r = scan(&s, &event("b.jpg", bad), AlgorithmSet::ALL).unwrap();
        assert!(matches!(r.status, ScanStatus::Matched { .. }), "{r:?}");
        // Released: the restored copy is left, tagged.
        {
            use crate::review::ReviewStore;
            let mut case = pollster::block_on(s.cases.case(&case_id)).unwrap().unwrap();
            case.status = CaseStatus::Released;
            case.revision += 1;
            let entry = crate::audit::AuditEntry::new(
                &case_id,
                Timestamp::UNIX_EPOCH,
                "reviewer-a",
                crate::audit::AuditAction::Restored,
                "",
            );
            pollster::block_on(s.cases.update(&case, entry)).unwrap();
        }
        s.objects.put("uploads", "c.jpg", bad);
        s.objects.mark_restored("uploads", "c.jpg", &case_id);
        let r = scan(&s, &event("c.jpg", bad), AlgorithmSet::ALL).unwrap();
        assert_eq!(
            r.status,
            ScanStatus::Released {
                case_id: case_id.clone()
            }
        );
        let left = s.objects.get("uploads", "c.jpg").unwrap();
        assert_eq!(left.1, bad);
        assert_eq!(left.2, ["released"]);
        // Other content under the same claim is still scanned as itself.
        let other = b"other content";
        s.objects.put("uploads", "d.jpg", other);
        s.objects.mark_restored("uploads", "d.jpg", &case_id);
        let r = scan(&s, &event("d.jpg", other), AlgorithmSet::ALL).unwrap();
        assert_eq!(r.status, ScanStatus::Clean);
    }

    #[test]
    fn clean_upload_is_tagged_and_left() {
        let s = scanner();
        s.objects.put("uploads", "ok.jpg", b"holiday");
        let r = scan(&s, &event("ok.jpg", b"holiday"), AlgorithmSet::ALL).unwrap();
        assert_eq!(r.status, ScanStatus::Clean);
        assert!(
            !r.fast_path,
            "SHA-1/SHA-256 are not vouched for: the body was read"
        );
        assert_eq!(r.bytes_read, 7);
        assert_eq!(s.objects.get("uploads", "ok.jpg").unwrap().2, ["clean"]);
    }

    #[test]
    fn fast_path_decides_from_the_etag_without_reading() {
        let s = scanner();
        s.objects.put("uploads", "ok.jpg", b"holiday");
        let r = scan(&s, &event("ok.jpg", b"holiday"), md5_only()).unwrap();
        assert_eq!(
            (r.status, r.fast_path, r.bytes_read),
            (ScanStatus::Clean, true, 0)
        );
        assert_eq!(s.objects.bytes_read(), 0);

        s.objects.put("uploads", "bad.jpg", BAD);
        let r = scan(&s, &event("bad.jpg", BAD), md5_only()).unwrap();
        assert!(r.fast_path);
        assert!(matches!(r.status, ScanStatus::Matched { .. }), "{r:?}");
        assert!(s.objects.get("uploads", "bad.jpg").is_none(), "moved");
    }

    #[test]
    fn vouched_digests_follow_the_rules() {
        let md5 = "900150983cd24fb0d6963f7d28e17f72";
        let mut head = ObjectHead {
            etag: Some(md5.into()),
            ..Default::default()
        };
        assert_eq!(
            vouched_digests(&head).get(Algorithm::Md5).unwrap().to_hex(),
            md5
        );
        head.customer_key_encryption = true;
        assert!(
            vouched_digests(&head).is_empty(),
            "SSE-KMS/SSE-C ETags are not MD5s"
        );
        head.customer_key_encryption = false;
        head.etag = Some(format!("{md5}-3"));
        assert!(
            vouched_digests(&head).is_empty(),
            "multipart ETags are not MD5s"
        );
    }

    #[test]
    fn the_case_records_the_events_bucket_owner_and_source_address() {
        let s = scanner();
        s.objects.put("uploads", "bad.jpg", BAD);
        let mut e = event("bad.jpg", BAD);
        e.upload_facts = crate::report::UploadFacts {
            bucket_owner: Some("111122223333".into()),
            source_ip: Some(crate::report::IpCapture {
                address: "203.0.113.7".parse().unwrap(),
                at: Some(Timestamp::UNIX_EPOCH),
            }),
        };
        let r = scan(&s, &e, AlgorithmSet::ALL).unwrap();
        assert!(matches!(r.status, ScanStatus::Matched { .. }), "{r:?}");
        let cases = s.cases.records();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].upload_facts, e.upload_facts);
    }

    #[test]
    fn a_match_is_quarantined_with_one_case_and_retried_after_any_failure() {
        // Every step of the protocol fails once in turn: the copy, the verification, the
        // case record, the notification and the delete.
        let faults = [
            Fault::ObjectStep(1),
            Fault::ObjectStep(2),
            Fault::CaseWrite,
            Fault::Notify,
            Fault::ObjectStep(3),
        ];
        for fault in faults {
            let s = scanner();
            s.objects.put("uploads", "bad.jpg", BAD);
            match fault {
                Fault::ObjectStep(n) => s.objects.fail_step(n),
                Fault::CaseWrite => s.cases.fail_next(),
                Fault::Notify => s.notifier.fail_next(),
            }
            let e = event("bad.jpg", BAD);
            assert!(
                scan(&s, &e, AlgorithmSet::ALL).is_err(),
                "{fault:?} failed the scan"
            );
            assert_eq!(
                s.objects.get("uploads", "bad.jpg").unwrap().1,
                BAD,
                "{fault:?}: the original is intact after the failure"
            );
            // The retry (same event) and a duplicate both converge.
            let r = scan(&s, &e, AlgorithmSet::ALL).unwrap();
            let again = scan(&s, &e, AlgorithmSet::ALL).unwrap();
            assert!(matches!(r.status, ScanStatus::Matched { .. }), "{r:?}");
            assert_eq!(
                again.status,
                ScanStatus::Gone,
                "the duplicate finds it moved"
            );
            assert_eq!(s.cases.records().len(), 1, "{fault:?}");
            let audit = s.cases.audit();
            assert_eq!(audit.len(), 1, "{fault:?}: one audit entry");
            assert_eq!(audit[0].action, crate::case::AuditAction::Quarantined);
            let announced = s.notifier.announced();
            assert!(
                !announced.is_empty() && announced.iter().all(|c| *c == e.object.case_id()),
                "{fault:?}: announced (at least once, always the same case)"
            );
            assert!(s.objects.get("uploads", "bad.jpg").is_none());
            let case_id = e.object.case_id();
            let copy = s
                .objects
                .get("quarantine", &format!("cases/{case_id}/object"));
            assert_eq!(copy.unwrap().1, BAD);
        }
    }

    #[test]
    fn the_quarantine_bucket_is_never_scanned_even_when_announced() {
        let s = scanner();
        s.objects.put("uploads", "bad.jpg", BAD);
        let e = event("bad.jpg", BAD);
        assert!(matches!(
            scan(&s, &e, AlgorithmSet::ALL).unwrap().status,
            ScanStatus::Matched { .. }
        ));
        // The store announces the quarantined copy, as SeaweedFS and Ceph do for every
        // bucket they notify about.
        let copy_key = format!("cases/{}/object", e.object.case_id());
        let copy = UploadEvent {
            object: ObjectRef {
                bucket: "quarantine".into(),
                key: copy_key.clone(),
                version_id: None,
                etag: None,
            },
            ..e.clone()
        };
        for _ in 0..2 {
            let r = scan(&s, &copy, AlgorithmSet::ALL).unwrap();
            assert_eq!(r.status, ScanStatus::OwnQuarantine);
            assert!(r.digests.is_empty(), "not even read");
        }
        assert_eq!(s.objects.get("quarantine", &copy_key).unwrap().1, BAD);
        assert_eq!(s.cases.records().len(), 1, "no case for the evidence");
    }

    #[test]
    fn explicit_statuses_for_gone_superseded_and_too_large() {
        let s = scanner();
        let r = scan(&s, &event("never-there", b"x"), AlgorithmSet::ALL).unwrap();
        assert_eq!(r.status, ScanStatus::Gone);

        s.objects.put("uploads", "k", b"second version");
        let r = scan(&s, &event("k", b"first version"), AlgorithmSet::ALL).unwrap();
        assert_eq!(r.status, ScanStatus::Superseded);

        let big = vec![0u8; (1 << 20) + 1];
        s.objects.put("uploads", "big", &big);
        let r = scan(&s, &event("big", &big), AlgorithmSet::ALL).unwrap();
        assert!(matches!(r.status, ScanStatus::TooLarge { .. }), "{r:?}");
        assert_eq!(
            s.objects.get("uploads", "big").unwrap().2,
            ["unscanned-too-large"]
        );
    }

    #[test]
    fn unreadable_objects_get_their_own_status() {
        let s = scanner();
        s.objects.put("uploads", "locked", b"kms-encrypted");
        s.objects.set_unreadable(true);
        let r = scan(&s, &event("locked", b"kms-encrypted"), AlgorithmSet::ALL).unwrap();
        assert!(matches!(r.status, ScanStatus::Unreadable { .. }), "{r:?}");
        assert_eq!(
            s.objects.get("uploads", "locked").unwrap().2,
            ["unscanned-unreadable"]
        );
    }

    #[test]
    fn a_filter_hit_alone_never_quarantines() {
        let s = scanner();
        let innocent = b"innocent";
        let mut b = FilterSnapshot::builder(1, 1e-6, SEED).unwrap();
        b.insert(
            &digest_bytes(innocent, md5_only())
                .get(Algorithm::Md5)
                .unwrap(),
        );
        let filter = b.finish(1, Timestamp::UNIX_EPOCH).unwrap();
        s.objects.put("uploads", "i", innocent);
        let r = pollster::block_on(s.scan(
            &event("i", innocent),
            Screen::Filter(&filter),
            None,
            md5_only(),
            Timestamp::UNIX_EPOCH,
        ))
        .unwrap();
        assert_eq!(r.status, ScanStatus::Clean);
        assert_eq!(r.filter_false_positives, 1);
        assert!(s.cases.records().is_empty());
    }

    /// A photo-like test image (smooth gradients and discs), encoded.
    fn photo(seed: u32, format: image::ImageFormat, flip: bool) -> Vec<u8> {
        let (w, h) = (320u32, 240u32);
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let (u, v) = (x as f32 / w as f32, y as f32 / h as f32);
            let s = seed as f32;
            let disc = ((u - 0.3 - 0.05 * s).powi(2) + (v - 0.6).powi(2)).sqrt() < 0.2;
            let r = 128.0 + 100.0 * (u * (3.0 + s) * 2.0).sin();
            let g = 128.0 + 100.0 * (v * (2.0 + s) * 2.5).cos();
            let b = if disc { 230.0 } else { 40.0 + 150.0 * u * v };
            image::Rgb([r as u8, g as u8, b as u8])
        });
        let img = if flip {
            image::imageops::flip_horizontal(&img)
        } else {
            img
        };
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut out, format)
            .unwrap();
        out.into_inner()
    }

    /// A scanner whose store holds one PDQ entry (the PNG photo of `seed` 1), and the filter
    /// built from it.
    fn perceptual_scanner(mode: Mode) -> (TestScanner, FilterSnapshot) {
        let mut s = scanner();
        s.config.perceptual.mode = mode;
        let mut d = StreamDigester::with_parallelism(AlgorithmSet::ALL, false);
        d.update(&photo(1, image::ImageFormat::Png, false));
        let listed = d.finish().digests.get(Algorithm::Pdq).expect("a PDQ hash");
        s.hashes
            .apply(
                &[ListEntry {
                    digest: listed,
                    provenance: Provenance {
                        list: "photos".into(),
                        id: Some("p-1".into()),
                        category: Some("A1".into()),
                    },
                }],
                Op::Add,
            )
            .unwrap();
        let version = pollster::block_on(s.hashes.state()).unwrap().version;
        let mut b = FilterSnapshot::builder(2, 1e-6, SEED).unwrap();
        b.insert(&digest_bytes(BAD, md5_only()).get(Algorithm::Md5).unwrap());
        b.insert(&listed);
        (s, b.finish(version, Timestamp::UNIX_EPOCH).unwrap())
    }

    fn scan_images(s: &TestScanner, f: &FilterSnapshot, key: &str, body: &[u8]) -> ScanReport {
        s.objects.put("uploads", key, body);
        let needed = AlgorithmSet::EMPTY
            .with(Algorithm::Md5)
            .with(Algorithm::Pdq);
        pollster::block_on(s.scan(
            &event(key, body),
            Screen::Filter(f),
            Some(f.pdq()),
            needed,
            Timestamp::UNIX_EPOCH,
        ))
        .unwrap()
    }

    #[test]
    fn a_mirrored_reencoded_copy_matches_perceptually_with_its_distance() {
        let (s, f) = perceptual_scanner(Mode::Move);
        let copy = photo(1, image::ImageFormat::Jpeg, true);
        let r = scan_images(&s, &f, "copy.jpg", &copy);
        assert!(matches!(r.status, ScanStatus::Matched { .. }), "{r:?}");
        let m = &r.matches[0];
        assert_eq!((m.algorithm, m.list.as_str()), (Algorithm::Pdq, "photos"));
        assert!(m.distance.is_some_and(|d| d <= 31), "{m:?}");
        assert_eq!(r.image.as_ref().unwrap().perceptual, "matched");
        assert!(
            s.objects.get("uploads", "copy.jpg").is_none(),
            "moved to quarantine"
        );
        let case = &s.cases.records()[0];
        assert_eq!(case.matches[0].distance, m.distance);
        assert!(case.digests.iter().any(|(a, _)| a == "pdq"));

        let other = photo(5, image::ImageFormat::Png, false);
        let r = scan_images(&s, &f, "other.png", &other);
        assert_eq!(r.status, ScanStatus::Clean, "{r:?}");
        // Not an image: no PDQ, clean by its digests.
        let r = scan_images(&s, &f, "notes.txt", b"plain words");
        assert_eq!(r.status, ScanStatus::Clean);
        assert!(r.image.is_none());
    }

    #[test]
    fn review_only_leaves_a_perceptual_match_in_place_but_exact_matches_still_move() {
        let (s, f) = perceptual_scanner(Mode::ReviewOnly);
        let copy = photo(1, image::ImageFormat::Jpeg, false);
        let r = scan_images(&s, &f, "copy.jpg", &copy);
        assert!(
            matches!(
                r.status,
                ScanStatus::Matched {
                    outcome: Finished::HeldInPlace,
                    ..
                }
            ),
            "{r:?}"
        );
        let stored = s.objects.get("uploads", "copy.jpg").expect("left in place");
        assert!(stored.2.is_empty(), "not even tagged: {:?}", stored.2);
        assert_eq!(s.cases.records()[0].status, CaseStatus::HeldInPlace);
        let r = scan_images(&s, &f, "bad.bin", BAD);
        assert!(
            matches!(
                r.status,
                ScanStatus::Matched {
                    outcome: Finished::Quarantined,
                    ..
                }
            ),
            "{r:?}"
        );
    }

    #[test]
    fn undecodable_images_are_never_clean_and_flat_ones_say_why() {
        let (s, f) = perceptual_scanner(Mode::Move);
        let mut truncated = photo(2, image::ImageFormat::Jpeg, false);
        truncated.truncate(truncated.len() / 2);
        let r = scan_images(&s, &f, "cut.jpg", &truncated);
        assert!(matches!(r.status, ScanStatus::Undecodable { .. }), "{r:?}");
        assert_eq!(
            s.objects.get("uploads", "cut.jpg").unwrap().2,
            ["unscanned-undecodable"]
        );
        // A format only images use, not decoded here: undecodable too.
        let mut heic = vec![0, 0, 0, 24];
        heic.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
        heic.extend_from_slice(&[0u8; 64]);
        let r = scan_images(&s, &f, "photo.heic", &heic);
        assert!(matches!(r.status, ScanStatus::Undecodable { .. }), "{r:?}");

        let flat = {
            let img = image::RgbImage::from_pixel(64, 64, image::Rgb([90, 90, 90]));
            let mut out = std::io::Cursor::new(Vec::new());
            image::DynamicImage::ImageRgb8(img)
                .write_to(&mut out, image::ImageFormat::Png)
                .unwrap();
            out.into_inner()
        };
        let r = scan_images(&s, &f, "flat.png", &flat);
        assert_eq!(r.status, ScanStatus::Clean);
        let image = r.image.unwrap();
        assert_eq!(image.perceptual, "low_quality");
        assert!(image.reason.unwrap().contains("below the minimum 50"));
    }
}
