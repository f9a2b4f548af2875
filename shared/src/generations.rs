//! Atomic list imports for stores without multi-item transactions of any size (DynamoDB): a
//! file's entries are written under a new *generation*, invisible until one conditional
//! write commits that generation; then they all appear at once. An import that dies half way
//! leaves entries of a generation that is never committed — invisible — and the next import
//! marks that generation abandoned, so they never appear later either.
//!
//! The rules here are pure: which entries are visible under a store's generation state, and
//! how one list entry changes a digest's physical entries ([`stage_entry`]), by the same
//! [`apply_entry`] rule every store follows.

use std::collections::BTreeSet;

use crate::lists::Provenance;
use crate::store::{apply_entry, Change, Op, StoreError, StoredEntry};

/// Which generations are committed: every one up to `committed`, except the abandoned ones.
/// Generation 0 is what was written before generations existed: always committed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Generations {
    pub committed: u64,
    pub abandoned: BTreeSet<u64>,
    /// The generation an import is writing now, if any (not committed).
    pub pending: Option<u64>,
}

impl Generations {
    pub fn is_committed(&self, generation: u64) -> bool {
        generation <= self.committed && !self.abandoned.contains(&generation)
    }

    /// Start an import: a pending generation left by an import that never committed is
    /// abandoned (its entries stay invisible for good), and a new one is pending. Returns it.
    pub fn begin(&mut self) -> u64 {
        if let Some(p) = self.pending.take() {
            self.abandoned.insert(p);
        }
        let next = self
            .committed
            .max(self.abandoned.last().copied().unwrap_or(0))
            + 1;
        self.pending = Some(next);
        next
    }

    /// Commit `generation`, which must be the pending one.
    pub fn commit(&mut self, generation: u64) -> Result<(), String> {
        if self.pending != Some(generation) {
            return Err(format!(
                "generation {generation} is no longer pending (another import took over: {:?}); nothing of this import became visible",
                self.pending
            ));
        }
        self.pending = None;
        self.committed = generation;
        Ok(())
    }
}

/// A list entry as written under generations: visible from the generation that added it
/// until the one that withdrew it, each only once committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionedEntry {
    pub entry: StoredEntry<String>,
    pub added: u64,
    pub removed: Option<u64>,
}

impl VersionedEntry {
    pub fn is_visible(&self, g: &Generations) -> bool {
        g.is_committed(self.added) && !self.removed.is_some_and(|r| g.is_committed(r))
    }

    /// Can never be visible again: withdrawn for good, or added by an abandoned generation.
    fn is_dead(&self, g: &Generations) -> bool {
        self.removed.is_some_and(|r| g.is_committed(r)) || g.abandoned.contains(&self.added)
    }
}

/// The entries visible under `g`, as provenance.
pub fn visible(entries: &[VersionedEntry], g: &Generations) -> Vec<Provenance> {
    entries
        .iter()
        .filter(|e| e.is_visible(g))
        .map(|e| Provenance {
            list: e.entry.list.clone(),
            id: e.entry.id.clone(),
            category: e.entry.category.clone(),
        })
        .collect()
}

/// Stage one list entry under the pending generation `pending`: decide with [`apply_entry`]
/// on what is visible now, then change the physical entries so that the result appears
/// only when `pending` commits. Dead entries are dropped on the way (the clean-up of older
/// generations). An update (new category) withdraws the old entry and adds the new one.
pub fn stage_entry(
    entries: &mut Vec<VersionedEntry>,
    p: &Provenance,
    op: Op,
    g: &Generations,
    pending: u64,
) -> Result<Change, StoreError> {
    entries.retain(|e| !e.is_dead(g));
    let mut view: Vec<StoredEntry<String>> = entries
        .iter()
        .filter(|e| e.is_visible(g))
        .map(|e| e.entry.clone())
        .collect();
    let change = apply_entry(&mut view, p.list.clone(), p, op)?;
    let matches = |e: &StoredEntry<String>| {
        e.list == p.list
            && match op {
                Op::Add => e.id == p.id,
                Op::Remove => p.id.is_none() || e.id == p.id,
            }
    };
    // Entries this import already staged (a list naming the same entry twice) are redone.
    entries.retain(|e| !(e.added == pending && matches(&e.entry)));
    for e in entries.iter_mut() {
        if e.removed == Some(pending) && matches(&e.entry) {
            e.removed = None;
        }
    }
    let staged = VersionedEntry {
        entry: StoredEntry {
            list: p.list.clone(),
            id: p.id.clone(),
            category: p.category.clone(),
        },
        added: pending,
        removed: None,
    };
    match change {
        Change::AlreadyPresent | Change::NotPresent => {}
        Change::Added => entries.push(staged),
        Change::Updated | Change::Removed(_) => {
            for e in entries.iter_mut() {
                if e.is_visible(g) && e.removed.is_none() && matches(&e.entry) {
                    e.removed = Some(pending);
                }
            }
            if change == Change::Updated {
                entries.push(staged);
            }
        }
    }
    Ok(change)
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

    fn lists(entries: &[VersionedEntry], g: &Generations) -> Vec<(String, Option<String>)> {
        visible(entries, g)
            .into_iter()
            .map(|p| (p.list, p.category))
            .collect()
    }

    #[test]
    fn staged_entries_appear_only_when_their_generation_commits() {
        let mut g = Generations::default();
        let mut e = Vec::new();
        let gen = g.begin();
        assert_eq!(
            stage_entry(&mut e, &p("l", Some("1"), Some("A1")), Op::Add, &g, gen).unwrap(),
            Change::Added
        );
        assert!(visible(&e, &g).is_empty(), "pending: invisible");
        g.commit(gen).unwrap();
        assert_eq!(lists(&e, &g), [("l".into(), Some("A1".into()))]);
    }

    #[test]
    fn a_crashed_import_never_becomes_visible_and_its_rerun_applies_whole() {
        let mut g = Generations::default();
        let mut e = Vec::new();
        let first = g.begin();
        stage_entry(&mut e, &p("l", None, None), Op::Add, &g, first).unwrap();
        // The import dies here. The next import abandons its generation.
        let second = g.begin();
        assert!(g.abandoned.contains(&first));
        let other = stage_entry(&mut vec![], &p("m", None, None), Op::Add, &g, second).unwrap();
        assert_eq!(other, Change::Added);
        g.commit(second).unwrap();
        assert!(
            visible(&e, &g).is_empty(),
            "the crashed import stays invisible"
        );
        // The rerun of the crashed file: added again, and visible once committed.
        let third = g.begin();
        assert_eq!(
            stage_entry(&mut e, &p("l", None, None), Op::Add, &g, third).unwrap(),
            Change::Added
        );
        assert_eq!(e.len(), 1, "the abandoned entry was cleaned up");
        g.commit(third).unwrap();
        assert_eq!(lists(&e, &g), [("l".into(), None)]);
    }

    #[test]
    fn withdrawals_and_updates_take_effect_only_on_commit() {
        let mut g = Generations::default();
        let mut e = Vec::new();
        let gen = g.begin();
        stage_entry(&mut e, &p("l", Some("1"), Some("A1")), Op::Add, &g, gen).unwrap();
        stage_entry(&mut e, &p("m", None, None), Op::Add, &g, gen).unwrap();
        g.commit(gen).unwrap();

        let gen = g.begin();
        assert_eq!(
            stage_entry(&mut e, &p("l", Some("1"), Some("B2")), Op::Add, &g, gen).unwrap(),
            Change::Updated
        );
        assert_eq!(
            stage_entry(&mut e, &p("m", None, None), Op::Remove, &g, gen).unwrap(),
            Change::Removed(1)
        );
        assert_eq!(
            lists(&e, &g),
            [("l".into(), Some("A1".into())), ("m".into(), None)],
            "before the commit, the old state"
        );
        let before_commit = g.clone();
        g.commit(gen).unwrap();
        assert_eq!(lists(&e, &g), [("l".into(), Some("B2".into()))]);
        assert_ne!(before_commit, g);

        // The next import cleans the withdrawn entries up.
        let gen = g.begin();
        stage_entry(&mut e, &p("x", None, None), Op::Remove, &g, gen).unwrap();
        assert_eq!(e.len(), 1);
    }

    #[test]
    fn a_list_naming_an_entry_twice_counts_it_once_per_line() {
        let mut g = Generations::default();
        let mut e = Vec::new();
        let gen = g.begin();
        stage_entry(&mut e, &p("l", Some("1"), None), Op::Add, &g, gen).unwrap();
        stage_entry(&mut e, &p("l", Some("1"), None), Op::Add, &g, gen).unwrap();
        g.commit(gen).unwrap();
        assert_eq!(visible(&e, &g).len(), 1);
    }

    #[test]
    fn a_taken_over_import_cannot_commit() {
        let mut g = Generations::default();
        let first = g.begin();
        let second = g.begin();
        let err = g.commit(first).unwrap_err();
        assert!(err.contains("another import took over"), "{err}");
        g.commit(second).unwrap();
        assert!(!g.is_committed(first) && g.is_committed(second) && g.is_committed(0));
    }

    #[test]
    fn bad_entries_are_refused_by_the_same_rule() {
        let g = Generations::default();
        let err = stage_entry(&mut vec![], &p("", None, None), Op::Add, &g, 1).unwrap_err();
        assert_eq!(err.to_string(), "list name is empty");
    }
}
