//! In-memory implementations of every port: the hash store, objects, cases and the notifier.
//! Pure data behind mutexes, no I/O: what the core's and the functions' unit tests run the
//! real decisions against, with failures injected at any step.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::audit::{link, AuditEntry, ChainedEntry, Checkpoint, ReadCheckpoint};
use crate::case::CaseRecord;
use crate::digest::{digest_bytes, Algorithm, AlgorithmSet, Digest, StreamDigester};
use crate::event::ObjectRef;
use crate::feedback::{
    enable_on, matching, record_on, EntryFeedback, EntryKey, FeedbackError, ListFeedback, Recorded,
};
use crate::lists::{ListEntry, Provenance};
use crate::pipeline::{CaseStore, Notifier, ObjectHead, ObjectStore, ReadResult, StorageError};
use crate::quarantine::{Action, Outcome};
use crate::review::{
    created_key, page_of, CasePage, CaseQuery, Checkpoints, Evidence, EvidenceRead, RestoreAction,
    RestoreOutcome, RestoredTo, RevealGrant, RevealRecord, ReviewStore, Updated,
};
use crate::store::{
    apply_entry, HashStore, ImportStats, Op, StoreError, StoreState, StoredDigest, StoredEntry,
};

/// Which step to fail once, for tests that inject every failure in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The nth object step of the quarantine protocol (1-based: copy, verify, delete).
    ObjectStep(usize),
    /// Writing the case record.
    CaseWrite,
    /// Announcing the case.
    Notify,
}

fn injected(operation: &'static str) -> StorageError {
    StorageError {
        operation,
        target: "memory".into(),
        message: "injected failure".into(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A store version and the entries of every digest on some list.
type Versioned = (u64, BTreeMap<Digest, Vec<StoredEntry<String>>>);

/// An exact hash store in memory, applying list entries by the core's one rule.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Versioned>,
    /// False positives on record per digest ([`crate::feedback`]).
    feedback: Mutex<BTreeMap<Digest, Vec<EntryFeedback>>>,
}

impl MemoryStore {
    /// Apply entries all or nothing: a bad entry leaves the store as it was.
    pub fn apply(&self, entries: &[ListEntry], op: Op) -> Result<ImportStats, StoreError> {
        let mut guard = lock(&self.inner);
        let mut digests = guard.1.clone();
        let mut stats = ImportStats::default();
        for e in entries {
            let slot = digests.entry(e.digest).or_default();
            stats.count(apply_entry(
                slot,
                e.provenance.list.clone(),
                &e.provenance,
                op,
            )?);
            if slot.is_empty() {
                digests.remove(&e.digest);
            }
        }
        if stats.changed() {
            guard.0 += 1;
            guard.1 = digests;
        }
        Ok(stats)
    }

    /// Every entry's false-positive record, ordered by digest.
    pub fn feedback(&self) -> Vec<EntryFeedback> {
        lock(&self.feedback).values().flatten().cloned().collect()
    }

    /// An admin re-enables the suppressed entry `key` ([`EntryFeedback::enable`]).
    pub fn enable(
        &self,
        key: &EntryKey,
        by: &str,
        reason: &str,
        at: crate::time::Timestamp,
    ) -> Result<EntryFeedback, FeedbackError> {
        let present = lock(&self.inner)
            .1
            .get(&key.digest)
            .is_some_and(|entries| entries.iter().any(|e| e.list == key.list && e.id == key.id));
        if !present {
            return Err(FeedbackError::NotInStore(key.clone()));
        }
        let mut feedback = lock(&self.feedback);
        enable_on(feedback.entry(key.digest).or_default(), key, by, reason, at)
    }
}

impl ListFeedback for MemoryStore {
    async fn record_false_positive(
        &self,
        case_id: &str,
        matches: &[crate::scan::Match],
        at: crate::time::Timestamp,
        suppress_after: u32,
    ) -> Result<Vec<Recorded>, StoreError> {
        let inner = lock(&self.inner);
        let mut feedback = lock(&self.feedback);
        Ok(matches
            .iter()
            .filter(|m| {
                // Only entries still in the store: a withdrawn one has nothing to suppress.
                inner
                    .1
                    .get(&m.digest)
                    .is_some_and(|entries| entries.iter().any(|e| e.list == m.list && e.id == m.id))
            })
            .map(|m| {
                record_on(
                    feedback.entry(m.digest).or_default(),
                    m,
                    case_id,
                    at,
                    suppress_after,
                )
            })
            .collect())
    }
}

impl HashStore for MemoryStore {
    async fn lookup(&self, digests: &[Digest]) -> Result<Vec<StoredDigest>, StoreError> {
        let guard = lock(&self.inner);
        let feedback = lock(&self.feedback);
        Ok(digests
            .iter()
            .filter_map(|d| {
                let entries = guard.1.get(d)?;
                let provenance = entries
                    .iter()
                    .map(|e| Provenance {
                        list: e.list.clone(),
                        id: e.id.clone(),
                        category: e.category.clone(),
                    })
                    .collect();
                let provenance = matching(
                    d,
                    provenance,
                    feedback.get(d).map_or(&[][..], Vec::as_slice),
                );
                (!provenance.is_empty()).then_some(StoredDigest {
                    digest: *d,
                    provenance,
                })
            })
            .collect())
    }

    async fn state(&self) -> Result<StoreState, StoreError> {
        let guard = lock(&self.inner);
        Ok(StoreState {
            version: guard.0,
            algorithms: guard.1.keys().map(Digest::algorithm).collect(),
        })
    }
}

/// (etag, content, result tags) of one object.
pub type Stored = (String, Vec<u8>, Vec<String>);

/// The MD5 ETag of a single-part upload of `content`.
pub fn etag_of(content: &[u8]) -> String {
    digest_bytes(content, AlgorithmSet::EMPTY.with(Algorithm::Md5))
        .get(Algorithm::Md5)
        .expect("asked for MD5")
        .to_hex()
}

/// Buckets in memory: one current version per key (an unversioned bucket).
#[derive(Debug, Default)]
pub struct MemoryObjects {
    /// (bucket, key) → current object.
    objects: Mutex<BTreeMap<(String, String), Stored>>,
    bytes_read: Mutex<u64>,
    /// Fail the nth quarantine step (1-based) once.
    fail_step: Mutex<Option<usize>>,
    steps: Mutex<usize>,
    /// Refuse reads, as a store does for an object whose KMS key the scanner lacks.
    unreadable: Mutex<bool>,
    content_types: Mutex<BTreeMap<(String, String), String>>,
    /// The case a restored object came back from ([`crate::review::RESTORED_CASE_METADATA`]).
    markers: Mutex<BTreeMap<(String, String), String>>,
}

impl MemoryObjects {
    pub fn put(&self, bucket: &str, key: &str, content: &[u8]) {
        lock(&self.objects).insert(
            (bucket.into(), key.into()),
            (etag_of(content), content.to_vec(), vec![]),
        );
    }

    pub fn set_content_type(&self, bucket: &str, key: &str, content_type: &str) {
        lock(&self.content_types).insert((bucket.into(), key.into()), content_type.into());
    }

    /// Mark an object as written back by the restore of `case_id` (its metadata).
    pub fn mark_restored(&self, bucket: &str, key: &str, case_id: &str) {
        lock(&self.markers).insert((bucket.into(), key.into()), case_id.into());
    }

    /// The case whose restore wrote this object, if one did.
    pub fn restored_case(&self, bucket: &str, key: &str) -> Option<String> {
        lock(&self.markers)
            .get(&(bucket.to_string(), key.to_string()))
            .cloned()
    }

    pub fn get(&self, bucket: &str, key: &str) -> Option<Stored> {
        lock(&self.objects)
            .get(&(bucket.to_string(), key.to_string()))
            .cloned()
    }

    /// Bytes read through the digests so far.
    pub fn bytes_read(&self) -> u64 {
        *lock(&self.bytes_read)
    }

    /// Fail the nth quarantine object step from now (1-based) once.
    pub fn fail_step(&self, n: usize) {
        *lock(&self.fail_step) = Some(*lock(&self.steps) + n);
    }

    pub fn set_unreadable(&self, unreadable: bool) {
        *lock(&self.unreadable) = unreadable;
    }

    fn current(&self, o: &ObjectRef) -> Option<Stored> {
        let found = self.get(&o.bucket, &o.key)?;
        (o.etag.is_none() || o.etag.as_ref() == Some(&found.0)).then_some(found)
    }
}

impl ObjectStore for MemoryObjects {
    async fn head(&self, o: &ObjectRef) -> Result<Option<ObjectHead>, StorageError> {
        Ok(self
            .get(&o.bucket, &o.key)
            .map(|(etag, content, _)| ObjectHead {
                size: content.len() as u64,
                etag: Some(etag),
                restored_case: self.restored_case(&o.bucket, &o.key),
                ..Default::default()
            }))
    }

    async fn read_digests(
        &self,
        o: &ObjectRef,
        algorithms: AlgorithmSet,
        _max: u64,
    ) -> Result<ReadResult, StorageError> {
        if *lock(&self.unreadable) {
            return Ok(ReadResult::Unreadable {
                reason: "AccessDenied".into(),
            });
        }
        let Some((_, content, _)) = self.current(o) else {
            return Ok(ReadResult::Changed);
        };
        *lock(&self.bytes_read) += content.len() as u64;
        let mut d = StreamDigester::with_parallelism(algorithms, false);
        d.update(&content);
        Ok(ReadResult::Digested(d.finish()))
    }

    async fn quarantine_step(&self, action: &Action) -> Result<Outcome, StorageError> {
        let n = {
            let mut s = lock(&self.steps);
            *s += 1;
            *s
        };
        if *lock(&self.fail_step) == Some(n) {
            *lock(&self.fail_step) = None;
            return Err(injected("step"));
        }
        Ok(match action {
            Action::Copy { from, to, .. } => {
                if self.get(&to.bucket, &to.key).is_some() {
                    return Ok(Outcome::Copied);
                }
                match self.current(from) {
                    None => Outcome::SourceGone,
                    Some((_, content, _)) => {
                        self.put(&to.bucket, &to.key, &content);
                        Outcome::Copied
                    }
                }
            }
            Action::Verify { at, expected, .. } => match self.get(&at.bucket, &at.key) {
                Some((_, c, _)) if digest_bytes(&c, expected.algorithms()) == *expected => {
                    Outcome::Verified
                }
                _ => Outcome::VerifyFailed("mismatch".into()),
            },
            Action::Tag { object, .. } => {
                self.tag_result(object, "held").await?;
                Outcome::Tagged
            }
            Action::DeleteOriginal { object } => {
                if self.current(object).is_none() {
                    return Ok(Outcome::AlreadyDeleted);
                }
                lock(&self.objects).remove(&(object.bucket.clone(), object.key.clone()));
                Outcome::Deleted
            }
            other => {
                return Err(StorageError {
                    operation: "quarantine step",
                    target: "memory".into(),
                    message: format!("not an object step: {other:?}"),
                })
            }
        })
    }

    async fn tag_result(&self, o: &ObjectRef, status: &str) -> Result<bool, StorageError> {
        if let Some(entry) = lock(&self.objects).get_mut(&(o.bucket.clone(), o.key.clone())) {
            entry.2.push(status.to_string());
        }
        Ok(true)
    }
}

impl Evidence for MemoryObjects {
    async fn content_type(&self, case: &CaseRecord) -> Result<Option<String>, StorageError> {
        Ok(lock(&self.content_types)
            .get(&evidence_place(case))
            .cloned())
    }

    async fn read(&self, case: &CaseRecord, max_bytes: u64) -> Result<EvidenceRead, StorageError> {
        let (bucket, key) = evidence_place(case);
        let Some((_, content, _)) = self.get(&bucket, &key) else {
            return Ok(EvidenceRead::Missing);
        };
        if content.len() as u64 > max_bytes {
            return Ok(EvidenceRead::TooLarge {
                size: content.len() as u64,
            });
        }
        Ok(EvidenceRead::Bytes {
            content_type: lock(&self.content_types).get(&(bucket, key)).cloned(),
            bytes: content,
        })
    }

    async fn restore_step(&self, action: &RestoreAction) -> Result<RestoreOutcome, StorageError> {
        let n = {
            let mut s = lock(&self.steps);
            *s += 1;
            *s
        };
        if *lock(&self.fail_step) == Some(n) {
            *lock(&self.fail_step) = None;
            return Err(injected("restore step"));
        }
        match action {
            RestoreAction::Place {
                case_id,
                from,
                candidates,
            } => {
                let Some((_, content, _)) = self.get(&from.bucket, &from.key) else {
                    return Err(StorageError {
                        operation: "restore",
                        target: format!("{}/{}", from.bucket, from.key),
                        message: "the quarantined copy is missing".into(),
                    });
                };
                for c in candidates {
                    let place = (c.bucket.clone(), c.key.clone());
                    let marker = lock(&self.markers).get(&place).cloned();
                    match (self.get(&c.bucket, &c.key), marker) {
                        (Some(_), Some(m)) if m == *case_id => {}
                        (Some(_), _) => continue,
                        (None, _) => {
                            self.put(&c.bucket, &c.key, &content);
                            lock(&self.markers).insert(place, case_id.clone());
                        }
                    }
                    return Ok(RestoreOutcome::Placed(RestoredTo {
                        bucket: c.bucket.clone(),
                        key: c.key.clone(),
                        version_id: None,
                    }));
                }
                Ok(RestoreOutcome::NoFreePlace)
            }
            RestoreAction::Verify { placed, algorithms } => {
                let content = self
                    .get(&placed.bucket, &placed.key)
                    .map(|s| s.1)
                    .unwrap_or_default();
                Ok(RestoreOutcome::Verified(digest_bytes(
                    &content,
                    algorithms.iter().copied().collect(),
                )))
            }
            RestoreAction::Unhold { object } => {
                if let Some(entry) =
                    lock(&self.objects).get_mut(&(object.bucket.clone(), object.key.clone()))
                {
                    entry.2.retain(|t| t != "held");
                    entry.2.push("released".into());
                }
                Ok(RestoreOutcome::Unheld)
            }
            RestoreAction::Finish => Err(StorageError {
                operation: "restore",
                target: "memory".into(),
                message: "finishing is the case store's write".into(),
            }),
        }
    }
}

/// Where a case's content is: its quarantined copy, or the object held in place.
fn evidence_place(case: &CaseRecord) -> (String, String) {
    match &case.quarantine {
        Some(q) => (q.bucket.clone(), q.key.clone()),
        None => (case.object.bucket.clone(), case.object.key.clone()),
    }
}

/// Cases, the audit chain and the reveal tallies in memory.
#[derive(Debug, Default)]
pub struct MemoryCases {
    cases: Mutex<BTreeMap<String, CaseRecord>>,
    chain: Mutex<Vec<ChainedEntry>>,
    reveals: Mutex<BTreeMap<(String, String), Vec<RevealRecord>>>,
    fail_next: Mutex<bool>,
}

impl MemoryCases {
    pub fn records(&self) -> Vec<CaseRecord> {
        lock(&self.cases).values().cloned().collect()
    }

    /// Every audit entry, in chain order.
    pub fn audit(&self) -> Vec<AuditEntry> {
        lock(&self.chain).iter().map(|e| e.entry.clone()).collect()
    }

    /// The chain itself, for tests that tamper with it.
    pub fn chain_entries(&self) -> std::sync::MutexGuard<'_, Vec<ChainedEntry>> {
        lock(&self.chain)
    }

    /// Fail the next write once.
    pub fn fail_next(&self) {
        *lock(&self.fail_next) = true;
    }

    fn injected_failure(&self) -> Result<(), StorageError> {
        if std::mem::take(&mut *lock(&self.fail_next)) {
            return Err(injected("case write"));
        }
        Ok(())
    }

    fn link(chain: &mut Vec<ChainedEntry>, entry: AuditEntry) -> ChainedEntry {
        let linked = link(chain.last(), entry);
        chain.push(linked.clone());
        linked
    }
}

impl CaseStore for MemoryCases {
    async fn get(&self, case_id: &str) -> Result<Option<CaseRecord>, StorageError> {
        Ok(lock(&self.cases).get(case_id).cloned())
    }

    async fn create(&self, r: &CaseRecord, audit: &AuditEntry) -> Result<bool, StorageError> {
        self.injected_failure()?;
        let mut cases = lock(&self.cases);
        if cases.contains_key(&r.case_id) {
            return Ok(false);
        }
        cases.insert(r.case_id.clone(), r.clone());
        Self::link(&mut lock(&self.chain), audit.clone());
        Ok(true)
    }
}

impl ReviewStore for MemoryCases {
    async fn case(&self, case_id: &str) -> Result<Option<CaseRecord>, StorageError> {
        Ok(lock(&self.cases).get(case_id).cloned())
    }

    async fn cases(&self, query: &CaseQuery) -> Result<CasePage, StorageError> {
        let mut all: Vec<CaseRecord> = lock(&self.cases).values().cloned().collect();
        all.sort_by_key(created_key);
        Ok(page_of(&all, query))
    }

    async fn history(&self, case_id: &str) -> Result<Vec<ChainedEntry>, StorageError> {
        Ok(lock(&self.chain)
            .iter()
            .filter(|e| e.entry.case_id == case_id)
            .cloned()
            .collect())
    }

    async fn append(&self, entry: AuditEntry) -> Result<ChainedEntry, StorageError> {
        self.injected_failure()?;
        Ok(Self::link(&mut lock(&self.chain), entry))
    }

    async fn update(&self, case: &CaseRecord, entry: AuditEntry) -> Result<Updated, StorageError> {
        self.injected_failure()?;
        let mut cases = lock(&self.cases);
        let stored = cases.get(&case.case_id).map(|c| c.revision);
        if stored.is_none() || stored.map(|r| r + 1) != Some(case.revision) {
            return Ok(Updated::Conflict);
        }
        cases.insert(case.case_id.clone(), case.clone());
        Ok(Updated::Written(Self::link(&mut lock(&self.chain), entry)))
    }

    async fn take_reveal(
        &self,
        user: &str,
        day: &str,
        limit: u32,
        reveal: &RevealRecord,
    ) -> Result<RevealGrant, StorageError> {
        self.injected_failure()?;
        let mut tallies = lock(&self.reveals);
        let tally = tallies.entry((user.into(), day.into())).or_default();
        let used = tally.len() as u32;
        if used >= limit {
            return Ok(RevealGrant::Exhausted { used });
        }
        tally.push(reveal.clone());
        Ok(RevealGrant::Granted { used: used + 1 })
    }

    async fn reveals(&self, user: &str, day: &str) -> Result<Vec<RevealRecord>, StorageError> {
        Ok(lock(&self.reveals)
            .get(&(user.to_string(), day.to_string()))
            .cloned()
            .unwrap_or_default())
    }

    async fn chain(&self, after: u64, limit: usize) -> Result<Vec<ChainedEntry>, StorageError> {
        Ok(lock(&self.chain)
            .iter()
            .filter(|e| e.seq > after)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn head(&self) -> Result<Option<ChainedEntry>, StorageError> {
        Ok(lock(&self.chain).last().cloned())
    }
}

/// Checkpoints in memory; a signature is the checkpoint's bytes under a fixed test key.
#[derive(Debug, Default)]
pub struct MemoryCheckpoints {
    written: Mutex<Vec<(Checkpoint, Vec<u8>)>>,
    reads: Mutex<u64>,
}

impl MemoryCheckpoints {
    fn sign(cp: &Checkpoint) -> Vec<u8> {
        let mut bytes = b"memory-key:".to_vec();
        bytes.extend(cp.signed_bytes());
        bytes
    }

    /// How often the newest checkpoint was asked for.
    pub fn reads(&self) -> u64 {
        *lock(&self.reads)
    }

    /// How many checkpoints were written.
    pub fn written(&self) -> usize {
        lock(&self.written).len()
    }

    /// Damage the signature of the nth checkpoint written.
    pub fn corrupt_signature(&self, n: usize) {
        if let Some((_, sig)) = lock(&self.written).get_mut(n) {
            sig.push(0);
        }
    }
}

impl Checkpoints for MemoryCheckpoints {
    async fn latest(&self) -> Result<Option<Checkpoint>, StorageError> {
        *lock(&self.reads) += 1;
        Ok(lock(&self.written).last().map(|(c, _)| c.clone()))
    }

    async fn write(&self, checkpoint: &Checkpoint) -> Result<(), StorageError> {
        lock(&self.written).push((checkpoint.clone(), Self::sign(checkpoint)));
        Ok(())
    }

    async fn all(&self) -> Result<Vec<ReadCheckpoint>, StorageError> {
        Ok(lock(&self.written)
            .iter()
            .map(|(c, sig)| ReadCheckpoint {
                name: c.object_key(),
                checkpoint: c.clone(),
                signature_valid: *sig == Self::sign(c),
            })
            .collect())
    }
}

/// Announcements in memory: the case ids, in order.
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    announced: Mutex<Vec<String>>,
    fail_next: Mutex<bool>,
}

impl MemoryNotifier {
    pub fn announced(&self) -> Vec<String> {
        lock(&self.announced).clone()
    }

    /// Fail the next announcement once.
    pub fn fail_next(&self) {
        *lock(&self.fail_next) = true;
    }
}

impl Notifier for MemoryNotifier {
    async fn announce(&self, r: &CaseRecord) -> Result<(), StorageError> {
        if std::mem::take(&mut *lock(&self.fail_next)) {
            return Err(injected("announce"));
        }
        lock(&self.announced).push(r.case_id.clone());
        Ok(())
    }
}

/// The provider's own list, in the same store scans look up.
impl crate::followup::OwnList for MemoryStore {
    async fn add(&self, entries: &[ListEntry]) -> Result<crate::store::ImportStats, StoreError> {
        self.apply(entries, crate::store::Op::Add)
    }
}

/// Report packages in memory, by case id (the first one written counts, as under Object
/// Lock), and the "Report Ready" announcements in order; failures injectable.
#[derive(Debug, Default)]
pub struct MemoryReports {
    packages: Mutex<BTreeMap<String, crate::followup::PackageFiles>>,
    held: Mutex<std::collections::BTreeSet<String>>,
    ready: Mutex<Vec<crate::followup::ReportReady>>,
    fail_write: Mutex<bool>,
    fail_announce: Mutex<bool>,
}

impl MemoryReports {
    pub const BUCKET: &'static str = "reports";

    pub fn package(&self, case_id: &str) -> Option<crate::followup::PackageFiles> {
        lock(&self.packages).get(case_id).cloned()
    }

    /// Whether the case's package was written under a legal hold.
    pub fn held(&self, case_id: &str) -> bool {
        lock(&self.held).contains(case_id)
    }

    pub fn ready(&self) -> Vec<crate::followup::ReportReady> {
        lock(&self.ready).clone()
    }

    /// Fail the next package write once.
    pub fn fail_next_write(&self) {
        *lock(&self.fail_write) = true;
    }

    /// Fail the next announcement once.
    pub fn fail_next_announce(&self) {
        *lock(&self.fail_announce) = true;
    }
}

impl crate::followup::ReportOutbox for MemoryReports {
    async fn write_package(
        &self,
        files: &crate::followup::PackageFiles,
        legal_hold: bool,
    ) -> Result<crate::followup::PackageLocation, StorageError> {
        if std::mem::take(&mut *lock(&self.fail_write)) {
            return Err(injected("write_package"));
        }
        if legal_hold {
            lock(&self.held).insert(files.case_id.clone());
        }
        lock(&self.packages)
            .entry(files.case_id.clone())
            .or_insert_with(|| files.clone());
        Ok(crate::followup::PackageLocation {
            bucket: Self::BUCKET.to_string(),
            prefix: format!("reports/{}/", files.case_id),
        })
    }

    async fn announce(&self, ready: &crate::followup::ReportReady) -> Result<(), StorageError> {
        if std::mem::take(&mut *lock(&self.fail_announce)) {
            return Err(injected("announce_report"));
        }
        lock(&self.ready).push(ready.clone());
        Ok(())
    }
}
