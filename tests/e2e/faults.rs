//! Invariant 1 with the real adapters on the local stack: a crash right after any step of the
//! quarantine (copy, verify, case, notify, delete) is repaired by a retry of the same event,
//! which converges on one case, one verified copy under retention and no original left;
//! and nothing is ever deleted before the copy is verified and the case is recorded.

use hashgate_core::store::Op;
use hashgate_core::time::Timestamp;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use hashgate_aws::dynamo::{DynamoCases, DynamoHashes};
use hashgate_aws::notify::QueueAndBus;
use hashgate_aws::s3::S3Objects;
use hashgate_core::case::{AuditEntry, CaseRecord};
use hashgate_core::digest::{digest_bytes, AlgorithmSet, Digested};
use hashgate_core::event::{ObjectRef, Trigger, UploadEvent};
use hashgate_core::lists::{ListEntry, Provenance};
use hashgate_core::pipeline::{
    CaseStore, Notifier, ObjectHead, ObjectStore, ReadResult, ScanStatus, Scanner, ScannerConfig,
    StorageError,
};
use hashgate_core::quarantine::{Action, Mode, Outcome};
use hashgate_core::scan::Screen;
use hashgate_e2e::Stack;

const LISTED: &[u8] = b"listed content for the fault test";

/// Counts completed steps across all three ports and "crashes" right after step `crash_after`.
#[derive(Default)]
struct Faults {
    crash_after: AtomicUsize,
    steps: AtomicUsize,
    /// The steps completed, in order.
    log: std::sync::Mutex<Vec<String>>,
}

impl Faults {
    fn done(&self, step: &str) -> Result<(), StorageError> {
        self.log.lock().unwrap().push(step.to_string());
        let n = self.steps.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.crash_after.load(Ordering::SeqCst) {
            return Err(StorageError {
                operation: "crash",
                target: step.to_string(),
                message: format!("injected crash after step {n} ({step})"),
            });
        }
        Ok(())
    }
}

struct Faulty<T> {
    inner: T,
    faults: Arc<Faults>,
}

impl ObjectStore for Faulty<S3Objects> {
    async fn head(&self, o: &ObjectRef) -> Result<Option<ObjectHead>, StorageError> {
        self.inner.head(o).await
    }
    async fn read_digests(
        &self,
        o: &ObjectRef,
        a: AlgorithmSet,
        max: u64,
    ) -> Result<ReadResult, StorageError> {
        self.inner.read_digests(o, a, max).await
    }
    async fn quarantine_step(&self, action: &Action) -> Result<Outcome, StorageError> {
        let name = match action {
            Action::Copy { .. } => "copy",
            Action::Verify { .. } => "verify",
            Action::Tag { .. } => "tag",
            Action::DeleteOriginal { .. } => "delete",
            _ => "other",
        };
        let outcome = self.inner.quarantine_step(action).await?;
        self.faults.done(name)?;
        Ok(outcome)
    }
    async fn tag_result(&self, o: &ObjectRef, status: &str) -> Result<bool, StorageError> {
        self.inner.tag_result(o, status).await
    }
}

impl CaseStore for Faulty<DynamoCases> {
    async fn get(&self, case_id: &str) -> Result<Option<CaseRecord>, StorageError> {
        self.inner.get(case_id).await
    }
    async fn create(&self, r: &CaseRecord, a: &AuditEntry) -> Result<bool, StorageError> {
        let created = self.inner.create(r, a).await?;
        self.faults.done("case")?;
        Ok(created)
    }
}

impl Notifier for Faulty<QueueAndBus> {
    async fn announce(&self, r: &CaseRecord) -> Result<(), StorageError> {
        self.inner.announce(r).await?;
        self.faults.done("notify")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_every_quarantine_step_is_repaired_by_a_retry() {
    let stack = Stack::start();
    let sdk = stack.sdk().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let hashes = DynamoHashes::new(dynamo.clone(), stack.var("HASHGATE_HASH_TABLE"));
    let digests = digest_bytes(LISTED, AlgorithmSet::ALL);
    let entries: Vec<ListEntry> = digests
        .iter()
        .map(|digest| ListEntry {
            digest,
            provenance: Provenance {
                list: "faults".into(),
                id: None,
                category: None,
            },
        })
        .collect();
    let mut import = hashes.begin().await.unwrap();
    hashes.stage(&mut import, &entries, Op::Add).await.unwrap();
    hashes.commit(import).await.unwrap();

    let faults = Arc::new(Faults::default());
    let cases = DynamoCases::new(
        dynamo.clone(),
        stack.var("HASHGATE_CASE_TABLE"),
        stack.var("HASHGATE_AUDIT_TABLE"),
    );
    let notifier = QueueAndBus {
        sqs: aws_sdk_sqs::Client::new(&sdk),
        review_queue_url: stack.var("HASHGATE_REVIEW_QUEUE_URL").into(),
        events: aws_sdk_eventbridge::Client::new(&sdk),
        event_bus: None,
    };
    let config = ScannerConfig {
        quarantine_bucket: stack.var("HASHGATE_QUARANTINE_BUCKET").into(),
        retention_days: 365,
        mode: Mode::Move,
        max_object_bytes: 1 << 30,
        tag_clean: true,
        perceptual: Default::default(),
    };
    let faulty = Scanner {
        objects: Faulty {
            inner: S3Objects::new(s3.clone()),
            faults: faults.clone(),
        },
        hashes: DynamoHashes::new(dynamo.clone(), stack.var("HASHGATE_HASH_TABLE")),
        cases: Faulty {
            inner: cases.clone(),
            faults: faults.clone(),
        },
        notifier: Faulty {
            inner: notifier.clone(),
            faults: faults.clone(),
        },
        config: config.clone(),
    };
    let healthy = Scanner {
        objects: S3Objects::new(s3.clone()),
        hashes,
        cases: cases.clone(),
        notifier,
        config,
    };

    let uploads = stack.var("HASHGATE_UPLOAD_BUCKET");
    for crash_after in 1..=5 {
        let key = format!("faults/after-step-{crash_after}.bin");
        let put = s3
            .put_object()
            .bucket(uploads)
            .key(&key)
            .body(ByteStream::from(LISTED.to_vec()))
            .send()
            .await
            .unwrap();
        let event = UploadEvent {
            object: ObjectRef {
                bucket: uploads.into(),
                key: key.clone(),
                version_id: None,
                etag: put.e_tag().map(|e| e.trim_matches('"').to_string()),
            },
            size: Some(LISTED.len() as u64),
            event_name: "ObjectCreated:Put".into(),
            uploaded_at: None,
            trigger: Trigger::S3,
            upload_facts: Default::default(),
        };
        faults.steps.store(0, Ordering::SeqCst);
        faults.log.lock().unwrap().clear();
        faults.crash_after.store(crash_after, Ordering::SeqCst);
        let now = Timestamp::now();
        let err = faulty
            .scan(&event, Screen::StoreOnly, None, AlgorithmSet::EXACT, now)
            .await
            .expect_err("the injected crash surfaces as an error");
        assert!(err.to_string().contains("injected crash"), "{err}");
        let done = faults.log.lock().unwrap().clone();
        assert_eq!(
            done,
            ["copy", "verify", "case", "notify", "delete"][..crash_after],
            "steps in order up to the crash"
        );

        let version = put.version_id().map(str::to_string);
        let pinned = ObjectRef {
            version_id: version.clone(),
            ..event.object.clone()
        };
        // The original survives every crash but the one after its own delete.
        let original = s3
            .get_object()
            .bucket(uploads)
            .key(&key)
            .version_id(version.clone().unwrap())
            .send()
            .await;
        assert_eq!(
            original.is_ok(),
            crash_after < 5,
            "after step {crash_after}"
        );

        // The retry of the same event, and a duplicate of it.
        let report = healthy
            .scan(
                &event,
                Screen::StoreOnly,
                None,
                AlgorithmSet::EXACT,
                Timestamp::now(),
            )
            .await
            .unwrap();
        match crash_after {
            5 => assert_eq!(
                report.status,
                ScanStatus::Gone,
                "already deleted: nothing to do"
            ),
            _ => assert!(
                matches!(report.status, ScanStatus::Matched { .. }),
                "{report:?}"
            ),
        }
        let again = healthy
            .scan(
                &event,
                Screen::StoreOnly,
                None,
                AlgorithmSet::EXACT,
                Timestamp::now(),
            )
            .await
            .unwrap();
        assert_eq!(again.status, ScanStatus::Gone);

        // Converged: one case with its one audit entry, a verified copy, no original.
        let case_id = pinned.case_id();
        let record = cases.get(&case_id).await.unwrap().expect("the case exists");
        assert_eq!(record.object.key, key);
        let audit = hashgate_core::review::ReviewStore::history(&cases, &case_id)
            .await
            .unwrap();
        assert_eq!(audit.len(), 1, "one audit entry for case {case_id}");
        let chain = hashgate_core::review::verify_chain(
            &cases,
            &hashgate_core::memory::MemoryCheckpoints::default(),
        )
        .await
        .unwrap();
        assert!(chain.ok, "{chain:?}");
        let copy = s3
            .get_object()
            .bucket(stack.var("HASHGATE_QUARANTINE_BUCKET"))
            .key(format!("cases/{case_id}/object"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            copy.object_lock_mode().map(|m| m.as_str()),
            Some("GOVERNANCE")
        );
        let bytes = copy.body.collect().await.unwrap().into_bytes();
        assert_eq!(
            Digested {
                digests: digest_bytes(&bytes, AlgorithmSet::ALL),
                bytes: bytes.len() as u64,
                image: None,
            },
            Digested {
                digests,
                bytes: LISTED.len() as u64,
                image: None,
            }
        );
        let versions = s3
            .list_object_versions()
            .bucket(uploads)
            .prefix(&key)
            .send()
            .await
            .unwrap();
        assert!(versions.versions().is_empty(), "no version of {key} left");
    }
}
