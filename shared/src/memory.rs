//! In-memory implementations of every port: the hash store, objects, cases and the notifier.
//! Pure data behind mutexes, no I/O: what the core's and the functions' unit tests run the
//! real decisions against, with failures injected at any step.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::case::{AuditEntry, CaseRecord};
use crate::digest::{digest_bytes, Algorithm, AlgorithmSet, Digest, Digested};
use crate::event::ObjectRef;
use crate::lists::{ListEntry, Provenance};
use crate::pipeline::{CaseStore, Notifier, ObjectHead, ObjectStore, ReadResult, StorageError};
use crate::quarantine::{Action, Outcome};
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
}

impl HashStore for MemoryStore {
    async fn lookup(&self, digests: &[Digest]) -> Result<Vec<StoredDigest>, StoreError> {
        let guard = lock(&self.inner);
        Ok(digests
            .iter()
            .filter_map(|d| {
                let entries = guard.1.get(d)?;
                Some(StoredDigest {
                    digest: *d,
                    provenance: entries
                        .iter()
                        .map(|e| Provenance {
                            list: e.list.clone(),
                            id: e.id.clone(),
                            category: e.category.clone(),
                        })
                        .collect(),
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
}

impl MemoryObjects {
    pub fn put(&self, bucket: &str, key: &str, content: &[u8]) {
        lock(&self.objects).insert(
            (bucket.into(), key.into()),
            (etag_of(content), content.to_vec(), vec![]),
        );
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
        Ok(ReadResult::Digested(Digested {
            digests: digest_bytes(&content, algorithms),
            bytes: content.len() as u64,
        }))
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

/// Cases and their audit entries in memory.
#[derive(Debug, Default)]
pub struct MemoryCases {
    cases: Mutex<Vec<(CaseRecord, AuditEntry)>>,
    fail_next: Mutex<bool>,
}

impl MemoryCases {
    pub fn records(&self) -> Vec<CaseRecord> {
        lock(&self.cases).iter().map(|(r, _)| r.clone()).collect()
    }

    pub fn audit(&self) -> Vec<AuditEntry> {
        lock(&self.cases).iter().map(|(_, a)| a.clone()).collect()
    }

    /// Fail the next write once.
    pub fn fail_next(&self) {
        *lock(&self.fail_next) = true;
    }
}

impl CaseStore for MemoryCases {
    async fn create(&self, r: &CaseRecord, audit: &AuditEntry) -> Result<bool, StorageError> {
        if std::mem::take(&mut *lock(&self.fail_next)) {
            return Err(injected("case write"));
        }
        let mut cases = lock(&self.cases);
        if cases.iter().any(|(c, _)| c.case_id == r.case_id) {
            return Ok(false);
        }
        cases.push((r.clone(), audit.clone()));
        Ok(true)
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
