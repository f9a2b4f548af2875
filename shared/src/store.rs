//! The exact hash store: the authority on whether a digest is on a list, and on which.
//!
//! A bloom filter hit is only a "maybe"; only this store's answer acts (invariant 4). The
//! [`HashStore`] trait is what the scan decision needs; its implementations are adapters
//! (`hashgate-local`'s redb store, `hashgate-aws`'s DynamoDB table).
//!
//! How one list entry changes the entries a digest already has — added, updated, withdrawn,
//! with the length and name checks — is one pure function, [`apply_entry`], that every
//! store calls, so the stores cannot disagree about what an import means.

use std::future::Future;

use crate::digest::{Algorithm, AlgorithmSet, Digest};
use crate::lists::Provenance;

/// A digest that is on at least one list, with every list entry that names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDigest {
    pub digest: Digest,
    pub provenance: Vec<Provenance>,
}

/// What a store holds, in brief: its version and the algorithms its lists use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreState {
    /// Bumped by every import that changed something; filters record the version they cover.
    pub version: u64,
    /// The algorithms with at least one digest on some list: what scans must compute.
    pub algorithms: AlgorithmSet,
}

/// Read access to an exact hash store.
pub trait HashStore: Send + Sync {
    /// Every provenance of each of `digests` that is on a list. Digests on no list are left out.
    fn lookup(
        &self,
        digests: &[Digest],
    ) -> impl Future<Output = Result<Vec<StoredDigest>, StoreError>> + Send;

    /// The store's current version and algorithms.
    fn state(&self) -> impl Future<Output = Result<StoreState, StoreError>> + Send;
}

/// Longest entry id or category kept (clearinghouse ids are short; this bounds record size).
pub const MAX_FIELD_BYTES: usize = 1024;
/// Longest list name.
pub const MAX_LIST_NAME_BYTES: usize = 255;

/// One list entry as a store keeps it under a digest. `L` is how the store names the list
/// (its name, or a small id standing for it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry<L> {
    pub list: L,
    pub id: Option<String>,
    pub category: Option<String>,
}

/// Whether an import adds its entries or withdraws them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
}

/// What applying one list entry did to a digest's entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new entry.
    Added,
    /// The same (list, id) was there with another category; the category was replaced.
    Updated,
    /// The same entry was there unchanged (a re-import is idempotent).
    AlreadyPresent,
    /// This many entries were withdrawn.
    Removed(u64),
    /// A withdrawal named an entry that was not there.
    NotPresent,
}

/// Check an incoming entry's list name, id and category. Every store calls this before it
/// writes anything, so a list that one store refuses, every store refuses.
pub fn check_entry(p: &Provenance) -> Result<(), StoreError> {
    if p.list.is_empty() {
        return Err(StoreError::EmptyListName);
    }
    check_len("list name", &p.list, MAX_LIST_NAME_BYTES)?;
    for (what, v) in [("entry id", &p.id), ("category", &p.category)] {
        if let Some(v) = v {
            check_len(what, v, MAX_FIELD_BYTES)?;
        }
    }
    Ok(())
}

fn check_len(what: &'static str, v: &str, max: usize) -> Result<(), StoreError> {
    if v.len() > max {
        return Err(StoreError::TooLong {
            what,
            len: v.len(),
            max,
        });
    }
    Ok(())
}

/// Apply one list entry to the entries a digest has (`entries`; empty when the digest is on
/// no list), in place. `list` is the store's name for `p.list`.
///
/// Adding: an entry with the same list and id is left alone (or has its category replaced);
/// otherwise it is appended. Withdrawing: the entry of that list with that id goes, or, when
/// the withdrawal names no id, every entry of that list. A digest whose entries end up empty
/// is on no list any more: the store deletes it. The entry is checked ([`check_entry`])
/// first; on an error nothing changed.
pub fn apply_entry<L: PartialEq>(
    entries: &mut Vec<StoredEntry<L>>,
    list: L,
    p: &Provenance,
    op: Op,
) -> Result<Change, StoreError> {
    check_entry(p)?;
    Ok(match op {
        Op::Add => match entries.iter_mut().find(|e| e.list == list && e.id == p.id) {
            Some(e) if e.category == p.category => Change::AlreadyPresent,
            Some(e) => {
                e.category = p.category.clone();
                Change::Updated
            }
            None => {
                entries.push(StoredEntry {
                    list,
                    id: p.id.clone(),
                    category: p.category.clone(),
                });
                Change::Added
            }
        },
        Op::Remove => {
            let before = entries.len();
            entries.retain(|e| !(e.list == list && (p.id.is_none() || e.id == p.id)));
            match (before - entries.len()) as u64 {
                0 => Change::NotPresent,
                n => Change::Removed(n),
            }
        }
    })
}

/// What went wrong in a store, and where.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("hash store {location}: {message}")]
    Backend { location: String, message: String },
    #[error("hash store {location}: corrupt record for {key}: {reason}")]
    Corrupt {
        location: String,
        key: String,
        reason: String,
    },
    #[error("list name is empty")]
    EmptyListName,
    #[error("{what} is too long ({len} bytes, at most {max})")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
}

/// What an import did. Counts are of (digest, list entry) pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportStats {
    /// Entries that were new.
    pub added: u64,
    /// Entries already present whose category changed.
    pub updated: u64,
    /// Entries already present unchanged (a re-import is idempotent).
    pub already_present: u64,
    /// Entries withdrawn by a removal import.
    pub removed: u64,
    /// Entries a removal import named that were not there.
    pub not_present: u64,
}

impl ImportStats {
    pub fn changed(&self) -> bool {
        self.added + self.updated + self.removed > 0
    }

    /// Count one [`apply_entry`] result.
    pub fn count(&mut self, change: Change) {
        match change {
            Change::Added => self.added += 1,
            Change::Updated => self.updated += 1,
            Change::AlreadyPresent => self.already_present += 1,
            Change::Removed(n) => self.removed += n,
            Change::NotPresent => self.not_present += 1,
        }
    }
}

impl std::ops::AddAssign for ImportStats {
    fn add_assign(&mut self, o: ImportStats) {
        self.added += o.added;
        self.updated += o.updated;
        self.already_present += o.already_present;
        self.removed += o.removed;
        self.not_present += o.not_present;
    }
}

/// Entries per (algorithm, list), and the store's version.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreStats {
    /// Bumped by every import that changed something; filters record the version they cover.
    pub version: u64,
    /// Distinct digests per algorithm.
    pub digests: Vec<(Algorithm, u64)>,
    /// List entries per list and algorithm.
    pub entries: Vec<ListCount>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ListCount {
    pub list: String,
    pub algorithm: Algorithm,
    pub entries: u64,
}

impl StoreStats {
    pub fn total_digests(&self) -> u64 {
        self.digests.iter().map(|(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(list: &str, id: Option<&str>, cat: Option<&str>) -> Provenance {
        Provenance {
            list: list.into(),
            id: id.map(Into::into),
            category: cat.map(Into::into),
        }
    }

    fn apply(entries: &mut Vec<StoredEntry<String>>, e: &Provenance, op: Op) -> Change {
        apply_entry(entries, e.list.clone(), e, op).unwrap()
    }

    #[test]
    fn add_update_and_idempotent_reimport() {
        let mut e = Vec::new();
        assert_eq!(
            apply(&mut e, &p("ncmec", Some("1"), Some("A1")), Op::Add),
            Change::Added
        );
        assert_eq!(apply(&mut e, &p("iwf", None, None), Op::Add), Change::Added);
        assert_eq!(
            apply(&mut e, &p("ncmec", Some("1"), Some("A1")), Op::Add),
            Change::AlreadyPresent
        );
        assert_eq!(
            apply(&mut e, &p("ncmec", Some("1"), Some("B1")), Op::Add),
            Change::Updated
        );
        assert_eq!(
            apply(&mut e, &p("ncmec", Some("2"), None), Op::Add),
            Change::Added
        );
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].category.as_deref(), Some("B1"));
    }

    #[test]
    fn withdrawal_by_id_or_whole_list() {
        let mut e = Vec::new();
        for x in [
            p("l", Some("1"), None),
            p("l", Some("2"), None),
            p("m", None, None),
        ] {
            apply(&mut e, &x, Op::Add);
        }
        assert_eq!(
            apply(&mut e, &p("l", Some("9"), None), Op::Remove),
            Change::NotPresent
        );
        assert_eq!(
            apply(&mut e, &p("l", Some("1"), None), Op::Remove),
            Change::Removed(1)
        );
        apply(&mut e, &p("l", Some("1"), None), Op::Add);
        assert_eq!(
            apply(&mut e, &p("l", None, None), Op::Remove),
            Change::Removed(2)
        );
        assert_eq!(
            apply(&mut e, &p("nope", None, None), Op::Remove),
            Change::NotPresent
        );
        assert_eq!(
            apply(&mut e, &p("m", None, None), Op::Remove),
            Change::Removed(1)
        );
        assert!(e.is_empty(), "a digest on no list is deleted by the store");
    }

    #[test]
    fn bad_entries_are_refused_and_change_nothing() {
        let mut e = Vec::new();
        apply(&mut e, &p("l", None, None), Op::Add);
        let before = e.clone();
        let long = "x".repeat(MAX_FIELD_BYTES + 1);
        for (bad, message) in [
            (p("", None, None), "list name is empty".to_string()),
            (
                p(&"n".repeat(MAX_LIST_NAME_BYTES + 1), None, None),
                "list name is too long (256 bytes, at most 255)".to_string(),
            ),
            (
                p("l", Some(&long), None),
                "entry id is too long (1025 bytes, at most 1024)".to_string(),
            ),
            (
                p("l", None, Some(&long)),
                "category is too long (1025 bytes, at most 1024)".to_string(),
            ),
        ] {
            for op in [Op::Add, Op::Remove] {
                let err = apply_entry(&mut e, bad.list.clone(), &bad, op).unwrap_err();
                assert_eq!(err.to_string(), message);
                assert_eq!(e, before);
            }
        }
    }

    #[test]
    fn stats_count_every_change() {
        let mut s = ImportStats::default();
        for c in [
            Change::Added,
            Change::Updated,
            Change::AlreadyPresent,
            Change::Removed(3),
            Change::NotPresent,
        ] {
            s.count(c);
        }
        assert_eq!(
            (
                s.added,
                s.updated,
                s.already_present,
                s.removed,
                s.not_present
            ),
            (1, 1, 1, 3, 1)
        );
        assert!(s.changed());
    }
}
