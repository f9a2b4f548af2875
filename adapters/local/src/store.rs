//! The embedded exact hash store: one [redb](https://www.redb.org) file (a copy-on-write
//! B-tree with ACID transactions), chosen by measurement (see BENCHMARKS.md).
//!
//! Layout:
//! - `digests`: digest key (algorithm tag + raw bytes) → the list entries that name it;
//! - `lists` / `list_names`: list name ↔ a small id, so each entry costs 4 bytes of list name;
//! - `entry_counts`: (algorithm, list) → entries, and `meta`: version, schema, digests per
//!   algorithm — so statistics and "which algorithms are needed" never scan the table.
//!
//! Every import runs in one write transaction: it commits whole or not at all.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use hashgate_core::digest::{Algorithm, AlgorithmSet, Digest};
use hashgate_core::lists::{ListEntry, Provenance};
use hashgate_core::store::{
    apply_entry, check_entry, Change, HashStore, ImportStats, ListCount, Op, StoreError,
    StoreState, StoreStats, StoredDigest, StoredEntry,
};

const DIGESTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("digests");
const LISTS: TableDefinition<&str, u32> = TableDefinition::new("lists");
const LIST_NAMES: TableDefinition<u32, &str> = TableDefinition::new("list_names");
/// Key: algorithm tag << 32 | list id.
const ENTRY_COUNTS: TableDefinition<u64, u64> = TableDefinition::new("entry_counts");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const SCHEMA: u64 = 1;
const FILE_NAME: &str = "hashes.redb";

/// One list entry as stored: the list's small id, entry id, category.
type Record = StoredEntry<u32>;

/// The embedded, file-backed exact hash store.
pub struct EmbeddedStore {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .finish()
    }
}

impl EmbeddedStore {
    /// Open the store in `dir`, creating the directory and an empty store if missing.
    pub fn create(dir: &Path) -> Result<EmbeddedStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| backend(dir, format!("cannot create: {e}")))?;
        let path = dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(|e| backend(&path, open_message(e)))?;
        let store = EmbeddedStore { db, path };
        store.init_schema()?;
        Ok(store)
    }

    /// Open an existing store in `dir`.
    pub fn open(dir: &Path) -> Result<EmbeddedStore, StoreError> {
        let path = dir.join(FILE_NAME);
        if !path.is_file() {
            return Err(backend(
                dir,
                "no hash store here (import a list first: hashgate lists import --db DIR FILE)"
                    .into(),
            ));
        }
        let db = Database::open(&path).map_err(|e| backend(&path, open_message(e)))?;
        let store = EmbeddedStore { db, path };
        store.init_schema()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn init_schema(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            let found = meta
                .get("schema")
                .map_err(|e| self.err(e))?
                .map(|g| g.value());
            match found {
                Some(SCHEMA) => {}
                None => {
                    meta.insert("schema", SCHEMA).map_err(|e| self.err(e))?;
                }
                Some(other) => {
                    return Err(self.err(format!(
                        "store schema {other} is not supported by this version (expects {SCHEMA})"
                    )))
                }
            }
            txn.open_table(DIGESTS).map_err(|e| self.err(e))?;
            txn.open_table(LISTS).map_err(|e| self.err(e))?;
            txn.open_table(LIST_NAMES).map_err(|e| self.err(e))?;
            txn.open_table(ENTRY_COUNTS).map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        backend(&self.path, e.to_string())
    }

    /// Apply an import atomically: everything `f` does through the [`Importer`] is committed
    /// together if it returns `Ok`, and nothing is if it returns `Err` (or panics).
    pub fn import<E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut Importer<'_>) -> Result<(), E>,
    ) -> Result<ImportStats, E> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let stats = {
            let mut importer = Importer::new(&txn, self.path.display().to_string())?;
            f(&mut importer)?;
            importer.finish()?
        };
        if stats.changed() {
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            let version = meta
                .get("version")
                .map_err(|e| self.err(e))?
                .map_or(0, |g| g.value());
            meta.insert("version", version + 1)
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))?;
        Ok(stats)
    }

    /// Bumped by every import that changed something.
    pub fn version(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let meta = txn.open_table(META).map_err(|e| self.err(e))?;
        let v = meta.get("version").map_err(|e| self.err(e))?;
        Ok(v.map_or(0, |g| g.value()))
    }

    /// The algorithms with at least one digest on some list: what scans must compute.
    pub fn algorithms(&self) -> Result<AlgorithmSet, StoreError> {
        Ok(self
            .stats()?
            .digests
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(a, _)| *a)
            .collect())
    }

    /// Entries per list and algorithm, distinct digests per algorithm, and the version.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let meta = txn.open_table(META).map_err(|e| self.err(e))?;
        let names = txn.open_table(LIST_NAMES).map_err(|e| self.err(e))?;
        let counts = txn.open_table(ENTRY_COUNTS).map_err(|e| self.err(e))?;
        let get = |k: &str| -> Result<u64, StoreError> {
            Ok(meta
                .get(k)
                .map_err(|e| self.err(e))?
                .map_or(0, |g| g.value()))
        };
        let mut stats = StoreStats {
            version: get("version")?,
            ..Default::default()
        };
        for alg in Algorithm::ALL {
            stats.digests.push((alg, get(&digest_count_key(alg))?));
        }
        for row in counts.range::<u64>(..).map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let (k, n) = (k.value(), v.value());
            if n == 0 {
                continue;
            }
            let alg = Algorithm::from_tag((k >> 32) as u8)
                .ok_or_else(|| self.err(format!("entry count under unknown algorithm key {k}")))?;
            let list_id = k as u32;
            let list = names
                .get(list_id)
                .map_err(|e| self.err(e))?
                .map(|g| g.value().to_string())
                .ok_or_else(|| self.err(format!("entry count for unknown list id {list_id}")))?;
            stats.entries.push(ListCount {
                list,
                algorithm: alg,
                entries: n,
            });
        }
        stats
            .entries
            .sort_by(|a, b| (&a.list, a.algorithm).cmp(&(&b.list, b.algorithm)));
        Ok(stats)
    }

    /// A consistent read-only view of the store, unaffected by imports that commit later:
    /// what a filter build needs to be exactly as current as it says it is.
    pub fn snapshot(&self) -> Result<StoreSnapshot, StoreError> {
        Ok(StoreSnapshot {
            txn: self.db.begin_read().map_err(|e| self.err(e))?,
            location: self.path.display().to_string(),
        })
    }

    /// Synchronous lookup (the [`HashStore`] impl is this, already resolved).
    pub fn lookup_now(&self, digests: &[Digest]) -> Result<Vec<StoredDigest>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(DIGESTS).map_err(|e| self.err(e))?;
        let mut found = Vec::new();
        let mut names: Option<redb::ReadOnlyTable<u32, &str>> = None;
        for digest in digests {
            let key = digest.key();
            let Some(value) = table.get(&*key).map_err(|e| self.err(e))? else {
                continue;
            };
            let records = decode(value.value()).map_err(|reason| StoreError::Corrupt {
                location: self.path.display().to_string(),
                key: format!("{digest:?}"),
                reason,
            })?;
            if names.is_none() {
                names = Some(txn.open_table(LIST_NAMES).map_err(|e| self.err(e))?);
            }
            let names = names.as_ref().expect("opened above");
            let mut provenance = Vec::with_capacity(records.len());
            for r in records {
                let list = names
                    .get(r.list)
                    .map_err(|e| self.err(e))?
                    .map(|g| g.value().to_string())
                    .ok_or_else(|| StoreError::Corrupt {
                        location: self.path.display().to_string(),
                        key: format!("{digest:?}"),
                        reason: format!("names unknown list id {}", r.list),
                    })?;
                provenance.push(Provenance {
                    list,
                    id: r.id,
                    category: r.category,
                });
            }
            found.push(StoredDigest {
                digest: *digest,
                provenance,
            });
        }
        Ok(found)
    }
}

impl HashStore for EmbeddedStore {
    fn lookup(
        &self,
        digests: &[Digest],
    ) -> impl std::future::Future<Output = Result<Vec<StoredDigest>, StoreError>> + Send {
        std::future::ready(self.lookup_now(digests))
    }

    fn state(&self) -> impl std::future::Future<Output = Result<StoreState, StoreError>> + Send {
        std::future::ready((|| {
            Ok(StoreState {
                version: self.version()?,
                algorithms: self.algorithms()?,
            })
        })())
    }
}

fn backend(location: &Path, message: String) -> StoreError {
    StoreError::Backend {
        location: location.display().to_string(),
        message,
    }
}

fn open_message(e: redb::DatabaseError) -> String {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => {
            "already open in another process (one writer at a time: wait for it to finish)".into()
        }
        other => other.to_string(),
    }
}

/// See [`EmbeddedStore::snapshot`].
pub struct StoreSnapshot {
    txn: redb::ReadTransaction,
    location: String,
}

impl StoreSnapshot {
    fn meta(&self, key: &str) -> Result<u64, StoreError> {
        let meta = self
            .txn
            .open_table(META)
            .map_err(|e| be(&self.location, e))?;
        let v = meta.get(key).map_err(|e| be(&self.location, e))?;
        Ok(v.map_or(0, |g| g.value()))
    }

    /// The store version this snapshot shows.
    pub fn version(&self) -> Result<u64, StoreError> {
        self.meta("version")
    }

    /// Distinct digests in this snapshot.
    pub fn digest_count(&self) -> Result<u64, StoreError> {
        Algorithm::ALL
            .iter()
            .map(|a| self.meta(&digest_count_key(*a)))
            .sum()
    }

    /// Call `f` with every digest and the list entries it has, in key order (an export);
    /// returns how many digests. An error `f` returns stops the walk and is passed on.
    pub fn for_each_entry<E: From<StoreError>>(
        &self,
        mut f: impl FnMut(Digest, Vec<Provenance>) -> Result<(), E>,
    ) -> Result<u64, E> {
        let table = self
            .txn
            .open_table(DIGESTS)
            .map_err(|e| be(&self.location, e))?;
        let names = self
            .txn
            .open_table(LIST_NAMES)
            .map_err(|e| be(&self.location, e))?;
        let mut known: std::collections::HashMap<u32, String> = std::collections::HashMap::new();
        let mut n = 0;
        for row in table
            .range::<&[u8]>(..)
            .map_err(|e| be(&self.location, e))?
        {
            let (k, v) = row.map_err(|e| be(&self.location, e))?;
            let corrupt = |reason: String| StoreError::Corrupt {
                location: self.location.clone(),
                key: format!("{:?}", k.value()),
                reason,
            };
            let digest =
                Digest::from_key(k.value()).ok_or_else(|| corrupt("not a digest key".into()))?;
            let records = decode(v.value()).map_err(corrupt)?;
            let mut provenance = Vec::with_capacity(records.len());
            for r in records {
                let list = match known.get(&r.list) {
                    Some(l) => l.clone(),
                    None => {
                        let l = names
                            .get(r.list)
                            .map_err(|e| be(&self.location, e))?
                            .map(|g| g.value().to_string())
                            .ok_or_else(|| corrupt(format!("names unknown list id {}", r.list)))?;
                        known.insert(r.list, l.clone());
                        l
                    }
                };
                provenance.push(Provenance {
                    list,
                    id: r.id,
                    category: r.category,
                });
            }
            f(digest, provenance)?;
            n += 1;
        }
        Ok(n)
    }

    /// Call `f` with every digest key (see [`Digest::key`]) in key order; returns how many.
    pub fn for_each_key(&self, mut f: impl FnMut(&[u8])) -> Result<u64, StoreError> {
        let table = self
            .txn
            .open_table(DIGESTS)
            .map_err(|e| be(&self.location, e))?;
        let mut n = 0;
        for row in table
            .range::<&[u8]>(..)
            .map_err(|e| be(&self.location, e))?
        {
            let (k, _) = row.map_err(|e| be(&self.location, e))?;
            f(k.value());
            n += 1;
        }
        Ok(n)
    }
}

fn be(location: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend {
        location: location.to_string(),
        message: e.to_string(),
    }
}

fn digest_count_key(alg: Algorithm) -> String {
    format!("digests.{}", alg.name())
}

/// Adds and withdraws list entries inside one import transaction.
pub struct Importer<'t> {
    digests: redb::Table<'t, &'static [u8], &'static [u8]>,
    lists: redb::Table<'t, &'static str, u32>,
    list_names: redb::Table<'t, u32, &'static str>,
    entry_counts: redb::Table<'t, u64, u64>,
    meta: redb::Table<'t, &'static str, u64>,
    list_ids: HashMap<String, u32>,
    entry_deltas: HashMap<(Algorithm, u32), i64>,
    digest_deltas: [i64; 4],
    stats: ImportStats,
    location: String,
    buf: Vec<u8>,
}

impl<'t> Importer<'t> {
    fn new(txn: &'t redb::WriteTransaction, location: String) -> Result<Self, StoreError> {
        let e = |e: redb::TableError| StoreError::Backend {
            location: location.clone(),
            message: e.to_string(),
        };
        Ok(Importer {
            digests: txn.open_table(DIGESTS).map_err(e)?,
            lists: txn.open_table(LISTS).map_err(e)?,
            list_names: txn.open_table(LIST_NAMES).map_err(e)?,
            entry_counts: txn.open_table(ENTRY_COUNTS).map_err(e)?,
            meta: txn.open_table(META).map_err(e)?,
            list_ids: HashMap::new(),
            entry_deltas: HashMap::new(),
            digest_deltas: [0; 4],
            stats: ImportStats::default(),
            location,
            buf: Vec::with_capacity(256),
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        be(&self.location, e)
    }

    /// The counts so far.
    pub fn stats(&self) -> ImportStats {
        self.stats
    }

    fn list_id(&mut self, name: &str, create: bool) -> Result<Option<u32>, StoreError> {
        if let Some(id) = self.list_ids.get(name) {
            return Ok(Some(*id));
        }
        let existing = self
            .lists
            .get(name)
            .map_err(|e| be(&self.location, e))?
            .map(|g| g.value());
        let id = match existing {
            Some(id) => id,
            None if !create => return Ok(None),
            None => {
                let next = self
                    .meta
                    .get("next_list_id")
                    .map_err(|e| be(&self.location, e))?
                    .map_or(1, |g| g.value());
                let id = u32::try_from(next).map_err(|_| self.err("too many lists"))?;
                self.meta
                    .insert("next_list_id", next + 1)
                    .map_err(|e| be(&self.location, e))?;
                self.lists
                    .insert(name, id)
                    .map_err(|e| be(&self.location, e))?;
                self.list_names
                    .insert(id, name)
                    .map_err(|e| be(&self.location, e))?;
                id
            }
        };
        self.list_ids.insert(name.to_string(), id);
        Ok(Some(id))
    }

    fn load(&self, key: &[u8]) -> Result<Option<Vec<Record>>, StoreError> {
        let Some(guard) = self.digests.get(key).map_err(|e| be(&self.location, e))? else {
            return Ok(None);
        };
        decode(guard.value())
            .map(Some)
            .map_err(|reason| StoreError::Corrupt {
                location: self.location.clone(),
                key: Digest::from_key(key).map_or_else(|| format!("{key:?}"), |d| format!("{d:?}")),
                reason,
            })
    }

    fn save(&mut self, key: &[u8], records: &[Record]) -> Result<(), StoreError> {
        self.buf.clear();
        encode(records, &mut self.buf);
        self.digests
            .insert(key, self.buf.as_slice())
            .map_err(|e| StoreError::Backend {
                location: self.location.clone(),
                message: e.to_string(),
            })?;
        Ok(())
    }

    /// Add one list entry (see [`apply_entry`]): re-importing a list is idempotent.
    pub fn add(&mut self, entry: &ListEntry) -> Result<(), StoreError> {
        self.apply(entry, Op::Add)
    }

    /// Withdraw one list entry (see [`apply_entry`]). A digest left on no list is deleted.
    pub fn remove(&mut self, entry: &ListEntry) -> Result<(), StoreError> {
        self.apply(entry, Op::Remove)
    }

    /// Apply one list entry by the core's rule; only the bookkeeping is this store's.
    pub fn apply(&mut self, entry: &ListEntry, op: Op) -> Result<(), StoreError> {
        let p = &entry.provenance;
        check_entry(p)?;
        let Some(list) = self.list_id(&p.list, op == Op::Add)? else {
            // A withdrawal from a list this store has never seen.
            self.stats.count(Change::NotPresent);
            return Ok(());
        };
        let alg = entry.digest.algorithm();
        let key = entry.digest.key();
        let existing = self.load(&key)?;
        let was_listed = existing.is_some();
        let mut records = existing.unwrap_or_default();
        let change = apply_entry(&mut records, list, p, op)?;
        self.stats.count(change);
        match change {
            Change::AlreadyPresent | Change::NotPresent => return Ok(()),
            Change::Added => *self.entry_deltas.entry((alg, list)).or_default() += 1,
            Change::Removed(n) => *self.entry_deltas.entry((alg, list)).or_default() -= n as i64,
            Change::Updated => {}
        }
        let slot = alg.tag() as usize - 1;
        if records.is_empty() {
            self.digests
                .remove(&*key)
                .map_err(|e| be(&self.location, e))?;
            self.digest_deltas[slot] -= 1;
            Ok(())
        } else {
            if !was_listed {
                self.digest_deltas[slot] += 1;
            }
            self.save(&key, &records)
        }
    }

    fn finish(mut self) -> Result<ImportStats, StoreError> {
        for ((alg, list), delta) in std::mem::take(&mut self.entry_deltas) {
            let k = (u64::from(alg.tag()) << 32) | u64::from(list);
            let old = self
                .entry_counts
                .get(k)
                .map_err(|e| be(&self.location, e))?
                .map_or(0, |g| g.value());
            let new = apply_delta(old, delta).ok_or_else(|| self.err("entry count underflow"))?;
            self.entry_counts
                .insert(k, new)
                .map_err(|e| be(&self.location, e))?;
        }
        for alg in Algorithm::ALL {
            let delta = self.digest_deltas[alg.tag() as usize - 1];
            if delta == 0 {
                continue;
            }
            let k = digest_count_key(alg);
            let old = self
                .meta
                .get(k.as_str())
                .map_err(|e| be(&self.location, e))?
                .map_or(0, |g| g.value());
            let new = apply_delta(old, delta).ok_or_else(|| self.err("digest count underflow"))?;
            self.meta
                .insert(k.as_str(), new)
                .map_err(|e| be(&self.location, e))?;
        }
        Ok(self.stats)
    }
}

fn apply_delta(old: u64, delta: i64) -> Option<u64> {
    if delta >= 0 {
        old.checked_add(delta as u64)
    } else {
        old.checked_sub(delta.unsigned_abs())
    }
}

const HAS_ID: u8 = 1;
const HAS_CATEGORY: u8 = 2;

/// `[list u32 LE][flags u8][u16 LE len + id]?[u16 LE len + category]?`, repeated.
fn encode(records: &[Record], out: &mut Vec<u8>) {
    for r in records {
        out.extend_from_slice(&r.list.to_le_bytes());
        let flags = if r.id.is_some() { HAS_ID } else { 0 }
            | if r.category.is_some() {
                HAS_CATEGORY
            } else {
                0
            };
        out.push(flags);
        for s in [&r.id, &r.category].into_iter().flatten() {
            out.extend_from_slice(&(s.len() as u16).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
}

fn decode(mut b: &[u8]) -> Result<Vec<Record>, String> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if b.len() < n {
            return Err(format!(
                "record truncated ({} bytes left, need {n})",
                b.len()
            ));
        }
        let (head, tail) = b.split_at(n);
        *b = tail;
        Ok(head)
    }
    fn string(b: &mut &[u8]) -> Result<String, String> {
        let len = u16::from_le_bytes(take(b, 2)?.try_into().expect("2 bytes")) as usize;
        String::from_utf8(take(b, len)?.to_vec()).map_err(|_| "field is not UTF-8".to_string())
    }
    let mut out = Vec::with_capacity(1);
    while !b.is_empty() {
        let list = u32::from_le_bytes(take(&mut b, 4)?.try_into().expect("4 bytes"));
        let flags = take(&mut b, 1)?[0];
        if flags & !(HAS_ID | HAS_CATEGORY) != 0 {
            return Err(format!("unknown flags {flags:#x}"));
        }
        let id = if flags & HAS_ID != 0 {
            Some(string(&mut b)?)
        } else {
            None
        };
        let category = if flags & HAS_CATEGORY != 0 {
            Some(string(&mut b)?)
        } else {
            None
        };
        out.push(StoredEntry { list, id, category });
    }
    if out.is_empty() {
        return Err("no list entries".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hex: &str, list: &str, id: Option<&str>, cat: Option<&str>) -> ListEntry {
        ListEntry {
            digest: Digest::parse_hex(hex).unwrap(),
            provenance: Provenance {
                list: list.into(),
                id: id.map(Into::into),
                category: cat.map(Into::into),
            },
        }
    }

    const A: &str = "900150983cd24fb0d6963f7d28e17f72";
    const B: &str = "a9993e364706816aba3e25717850c26c9cd0d89d";
    const C: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn import(store: &EmbeddedStore, add: &[ListEntry]) -> ImportStats {
        store
            .import(|imp| -> Result<(), StoreError> {
                for e in add {
                    imp.add(e)?;
                }
                Ok(())
            })
            .unwrap()
    }

    #[test]
    fn add_lookup_and_idempotent_reimport() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::create(dir.path()).unwrap();
        assert_eq!(store.version().unwrap(), 0);
        let entries = [
            entry(A, "ncmec", Some("1"), Some("A1")),
            entry(B, "ncmec", Some("2"), None),
            entry(A, "iwf", None, Some("B")),
        ];
        let s = import(&store, &entries);
        assert_eq!((s.added, s.already_present), (3, 0));
        assert_eq!(store.version().unwrap(), 1);

        let again = import(&store, &entries);
        assert_eq!((again.added, again.already_present), (0, 3));
        assert_eq!(
            store.version().unwrap(),
            1,
            "a no-op import keeps the version"
        );

        let a = Digest::parse_hex(A).unwrap();
        let c = Digest::parse_hex(C).unwrap();
        let found = store.lookup_now(&[a, c]).unwrap();
        assert_eq!(found.len(), 1, "C is on no list");
        assert_eq!(found[0].digest, a);
        let lists: Vec<_> = found[0]
            .provenance
            .iter()
            .map(|p| p.list.as_str())
            .collect();
        assert_eq!(lists, ["ncmec", "iwf"], "both provenances are kept");

        let stats = store.stats().unwrap();
        assert_eq!(stats.total_digests(), 2);
        assert_eq!(
            store.algorithms().unwrap(),
            AlgorithmSet::EMPTY
                .with(Algorithm::Md5)
                .with(Algorithm::Sha1)
        );
        let counts: Vec<_> = stats
            .entries
            .iter()
            .map(|c| (c.list.as_str(), c.algorithm, c.entries))
            .collect();
        assert_eq!(
            counts,
            [
                ("iwf", Algorithm::Md5, 1),
                ("ncmec", Algorithm::Md5, 1),
                ("ncmec", Algorithm::Sha1, 1)
            ]
        );

        // Reopening sees the same data.
        drop(store);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(store.lookup_now(&[a]).unwrap()[0].provenance.len(), 2);
    }

    #[test]
    fn category_change_is_an_update() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::create(dir.path()).unwrap();
        import(&store, &[entry(A, "l", Some("7"), Some("1"))]);
        let s = import(&store, &[entry(A, "l", Some("7"), Some("2"))]);
        assert_eq!((s.added, s.updated), (0, 1));
        let found = store.lookup_now(&[Digest::parse_hex(A).unwrap()]).unwrap();
        assert_eq!(found[0].provenance[0].category.as_deref(), Some("2"));
    }

    #[test]
    fn removal_withdraws_only_that_list() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::create(dir.path()).unwrap();
        import(
            &store,
            &[
                entry(A, "ncmec", Some("1"), None),
                entry(A, "iwf", Some("9"), None),
                entry(B, "iwf", None, None),
            ],
        );
        let s = store
            .import(|imp| -> Result<(), StoreError> {
                imp.remove(&entry(A, "iwf", None, None))?;
                imp.remove(&entry(B, "iwf", None, None))?;
                imp.remove(&entry(C, "iwf", None, None))?;
                imp.remove(&entry(A, "no-such-list", None, None))?;
                Ok(())
            })
            .unwrap();
        assert_eq!((s.removed, s.not_present), (2, 2));
        let a = Digest::parse_hex(A).unwrap();
        let b = Digest::parse_hex(B).unwrap();
        let found = store.lookup_now(&[a, b]).unwrap();
        assert_eq!(found.len(), 1, "B was on iwf only, so it is gone");
        assert_eq!(found[0].provenance.len(), 1);
        assert_eq!(found[0].provenance[0].list, "ncmec");
        assert_eq!(store.stats().unwrap().total_digests(), 1);
        assert_eq!(
            store.algorithms().unwrap(),
            AlgorithmSet::EMPTY.with(Algorithm::Md5)
        );
    }

    #[test]
    fn failed_import_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::create(dir.path()).unwrap();
        import(&store, &[entry(A, "ncmec", None, None)]);
        let before = store.stats().unwrap();
        let err = store
            .import(|imp| -> Result<(), StoreError> {
                imp.add(&entry(B, "new-list", None, None))?;
                imp.remove(&entry(A, "ncmec", None, None))?;
                Err(StoreError::TooLong {
                    what: "test",
                    len: 2,
                    max: 1,
                })
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::TooLong { .. }));
        assert_eq!(store.stats().unwrap(), before);
        let found = store
            .lookup_now(&[Digest::parse_hex(A).unwrap(), Digest::parse_hex(B).unwrap()])
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].provenance[0].list, "ncmec");
    }

    #[test]
    fn bad_entries_are_refused_by_the_cores_rule() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::create(dir.path()).unwrap();
        let err = store
            .import(|imp| imp.add(&entry(A, "", None, None)))
            .unwrap_err();
        assert_eq!(err.to_string(), "list name is empty");
        assert_eq!(store.version().unwrap(), 0);
    }

    #[test]
    fn oversized_fields_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::create(dir.path()).unwrap();
        let long = "x".repeat(hashgate_core::store::MAX_FIELD_BYTES + 1);
        let err = store
            .import(|imp| imp.add(&entry(A, "l", Some(&long), None)))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "entry id is too long (1025 bytes, at most 1024)"
        );
    }

    #[test]
    fn open_missing_store_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let err = EmbeddedStore::open(&dir.path().join("nope")).unwrap_err();
        assert!(err.to_string().contains("no hash store here"), "{err}");
    }

    #[test]
    fn record_codec_round_trips_and_rejects_garbage() {
        let recs = vec![
            StoredEntry {
                list: 3,
                id: Some("id".into()),
                category: None,
            },
            StoredEntry {
                list: 70000,
                id: None,
                category: Some("cat".into()),
            },
        ];
        let mut buf = Vec::new();
        encode(&recs, &mut buf);
        assert_eq!(decode(&buf).unwrap(), recs);
        assert!(decode(&buf[..buf.len() - 1]).is_err());
        assert!(decode(&[]).is_err());
        assert!(decode(&[1, 0, 0, 0, 0x80]).is_err());
    }
}
