//! Sharing back: the digests of confirmed cases as list entries, so that another provider can
//! import what this one confirmed (`hashgate lists export --confirmed` writes them with
//! [`crate::lists::write`]).
//!
//! Every digest (each algorithm) of every `confirmed` case becomes one entry with the
//! provenance: list = the provider's own list (configurable, [`DEFAULT_LIST`] by default),
//! id = the case id, category = the reviewers' classification (A1, A2, B1, B2; none for a
//! confirmed case recorded without one). Cases in any other status are skipped. A digest that
//! several cases share (the same file uploaded twice) is written once, with the id of the
//! first case that has it, in the order the cases are given (the queue's: oldest first).

use std::collections::HashSet;
use std::str::FromStr;

use crate::case::{CaseRecord, CaseStatus};
use crate::digest::{Algorithm, Digest};
use crate::lists::{ListEntry, Provenance};
use crate::pipeline::StorageError;
use crate::review::{CaseQuery, ReviewStore};
use crate::store::{check_entry, StoreError};

/// The provider's own list, when none is named.
pub const DEFAULT_LIST: &str = "own-confirmed";

#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// The list name is not one a store accepts.
    #[error("list name {list:?}: {source}")]
    ListName { list: String, source: StoreError },
    /// A confirmed case's stored digest could not be read.
    #[error("case {case_id}: digest {algorithm} {hex:?}: {reason}")]
    Digest {
        case_id: String,
        algorithm: String,
        hex: String,
        reason: String,
    },
    /// A case's provenance would not be accepted by a store (e.g. an over-long case id).
    #[error("case {case_id}: {source}")]
    Entry { case_id: String, source: StoreError },
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The store handed back the cursor it was given: paging would not end.
    #[error("the case store did not advance past {0:?}")]
    Stuck(String),
}

/// Entries of confirmed cases, gathered case by case (so a store can be paged through).
#[derive(Debug)]
pub struct Confirmed {
    list: String,
    seen: HashSet<Digest>,
    entries: Vec<ListEntry>,
    /// Confirmed cases taken.
    pub cases: u64,
    /// Cases skipped because they are not confirmed.
    pub not_confirmed: u64,
    /// Digests left out because an earlier case had them.
    pub duplicates: u64,
}

impl Confirmed {
    /// Entries for the list `list` (checked as every store checks list names).
    pub fn new(list: &str) -> Result<Confirmed, ShareError> {
        check_entry(&Provenance {
            list: list.to_string(),
            id: None,
            category: None,
        })
        .map_err(|source| ShareError::ListName {
            list: list.to_string(),
            source,
        })?;
        Ok(Confirmed {
            list: list.to_string(),
            seen: HashSet::new(),
            entries: Vec::new(),
            cases: 0,
            not_confirmed: 0,
            duplicates: 0,
        })
    }

    /// Take one case: its digests if it is confirmed, nothing otherwise. A case with a
    /// digest that cannot be read is refused whole, and nothing of it is taken.
    pub fn add(&mut self, case: &CaseRecord) -> Result<(), ShareError> {
        if case.status != CaseStatus::Confirmed {
            self.not_confirmed += 1;
            return Ok(());
        }
        let provenance = Provenance {
            list: self.list.clone(),
            id: Some(case.case_id.clone()),
            category: case.classification.map(|c| c.as_str().to_string()),
        };
        check_entry(&provenance).map_err(|source| ShareError::Entry {
            case_id: case.case_id.clone(),
            source,
        })?;
        let mut digests = Vec::with_capacity(case.digests.len());
        for (algorithm, hex) in &case.digests {
            let digest = Algorithm::from_str(algorithm)
                .map_err(|e| e.to_string())
                .and_then(|alg| Digest::parse_hex_as(alg, hex).map_err(|e| e.to_string()))
                .map_err(|reason| ShareError::Digest {
                    case_id: case.case_id.clone(),
                    algorithm: algorithm.clone(),
                    hex: hex.clone(),
                    reason,
                })?;
            digests.push(digest);
        }
        // MD5, SHA-1, SHA-256: the order the list formats keep a record's digests in.
        digests.sort_by_key(|d| d.algorithm());
        self.cases += 1;
        for digest in digests {
            if !self.seen.insert(digest) {
                self.duplicates += 1;
                continue;
            }
            self.entries.push(ListEntry {
                digest,
                provenance: provenance.clone(),
            });
        }
        Ok(())
    }

    /// The entries so far, in the order the cases came.
    pub fn entries(&self) -> &[ListEntry] {
        &self.entries
    }

    pub fn into_entries(self) -> Vec<ListEntry> {
        self.entries
    }
}

/// Every digest of every confirmed case among `cases`, as entries of the list `list`.
pub fn confirmed_entries<'a>(
    cases: impl IntoIterator<Item = &'a CaseRecord>,
    list: &str,
) -> Result<Vec<ListEntry>, ShareError> {
    let mut confirmed = Confirmed::new(list)?;
    for case in cases {
        confirmed.add(case)?;
    }
    Ok(confirmed.into_entries())
}

/// The confirmed cases of a review store, paged through in the queue's order (oldest first),
/// gathered as entries of the list `list`.
pub async fn confirmed_in<S: ReviewStore>(store: &S, list: &str) -> Result<Confirmed, ShareError> {
    let mut confirmed = Confirmed::new(list)?;
    let mut query = CaseQuery {
        statuses: vec![CaseStatus::Confirmed],
        limit: CaseQuery::MAX_LIMIT,
        ..CaseQuery::default()
    };
    loop {
        let page = store.cases(&query).await?;
        for case in &page.items {
            confirmed.add(case)?;
        }
        match page.next {
            None => return Ok(confirmed),
            Some(next) if query.after.as_ref() == Some(&next) => {
                return Err(ShareError::Stuck(next));
            }
            Some(next) => query.after = Some(next),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditAction, AuditEntry};
    use crate::event::ObjectRef;
    use crate::lists::write::write_list;
    use crate::lists::{parse, ListFormat, ParseOptions};
    use crate::memory::MemoryCases;
    use crate::pipeline::CaseStore;
    use crate::review::Classification;
    use crate::time::Timestamp;

    const MD5: &str = "900150983cd24fb0d6963f7d28e17f72";
    const SHA1: &str = "a9993e364706816aba3e25717850c26c9cd0d89d";
    const SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn case(
        n: u32,
        status: CaseStatus,
        class: Option<Classification>,
        digests: &[(&str, &str)],
    ) -> CaseRecord {
        CaseRecord {
            case_id: format!("case-{n:04}"),
            object: ObjectRef {
                bucket: "uploads".into(),
                key: format!("k/{n}"),
                version_id: None,
                etag: Some(format!("e{n}")),
            },
            size: 3,
            digests: digests
                .iter()
                .map(|(a, h)| (a.to_string(), h.to_string()))
                .collect(),
            matches: Vec::new(),
            quarantine: None,
            status,
            created_at: Timestamp::from_second(1_795_000_000 + i64::from(n)).unwrap(),
            uploaded_at: None,
            reviews: Vec::new(),
            classification: class,
            restored_to: None,
            revision: 2,
            upload_facts: Default::default(),
            followups: Vec::new(),
            legal_hold: None,
        }
    }

    fn hexes(entries: &[ListEntry]) -> Vec<(String, String, Option<String>)> {
        entries
            .iter()
            .map(|e| {
                (
                    e.digest.to_hex(),
                    e.provenance.id.clone().unwrap(),
                    e.provenance.category.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn every_digest_of_every_confirmed_case_once_with_its_provenance() {
        let other_md5 = MD5.replace('9', "8");
        let cases = [
            // Stored in another order: written MD5, SHA-1, SHA-256.
            case(
                1,
                CaseStatus::Confirmed,
                Some(Classification::A1),
                &[("sha256", SHA256), ("md5", MD5), ("sha1", SHA1)],
            ),
            case(2, CaseStatus::PendingReview, None, &[("md5", &other_md5)]),
            case(3, CaseStatus::Released, None, &[("md5", &other_md5)]),
            case(
                4,
                CaseStatus::AwaitingSecondReview,
                Some(Classification::A2),
                &[("md5", &other_md5)],
            ),
            // The same file again: only its new digest is added.
            case(
                5,
                CaseStatus::Confirmed,
                Some(Classification::B2),
                &[
                    ("md5", MD5),
                    ("md5", MD5),
                    ("sha1", &SHA1.replace('a', "b")),
                ],
            ),
            case(6, CaseStatus::Confirmed, None, &[("md5", &other_md5)]),
        ];
        let entries = confirmed_entries(&cases, "own-confirmed").unwrap();
        let a1 = Some("A1".to_string());
        assert_eq!(
            hexes(&entries),
            vec![
                (MD5.to_string(), "case-0001".into(), a1.clone()),
                (SHA1.to_string(), "case-0001".into(), a1.clone()),
                (SHA256.to_string(), "case-0001".into(), a1),
                (
                    SHA1.replace('a', "b"),
                    "case-0005".into(),
                    Some("B2".into())
                ),
                (other_md5, "case-0006".into(), None),
            ]
        );
        assert!(entries.iter().all(|e| e.provenance.list == "own-confirmed"));
        let mut c = Confirmed::new("mine").unwrap();
        for case in &cases {
            c.add(case).unwrap();
        }
        assert_eq!((c.cases, c.not_confirmed, c.duplicates), (3, 3, 2));
        assert_eq!(c.entries()[0].provenance.list, "mine");
    }

    #[test]
    fn bad_list_names_and_unreadable_digests_are_refused() {
        assert!(matches!(
            Confirmed::new(""),
            Err(ShareError::ListName { .. })
        ));
        assert!(Confirmed::new(&"x".repeat(300)).is_err());
        let bad = case(
            7,
            CaseStatus::Confirmed,
            None,
            &[("md5", MD5), ("crc32", "00")],
        );
        let err = confirmed_entries([&bad], DEFAULT_LIST).unwrap_err();
        assert!(
            err.to_string().starts_with("case case-0007: digest crc32"),
            "{err}"
        );
        let bad = case(8, CaseStatus::Confirmed, None, &[("sha1", MD5)]);
        assert!(confirmed_entries([&bad], DEFAULT_LIST).is_err());
        // Not confirmed: not read at all.
        let open = case(9, CaseStatus::PendingReview, None, &[("md5", "zz")]);
        assert_eq!(confirmed_entries([&open], DEFAULT_LIST).unwrap(), vec![]);
    }

    #[test]
    fn a_store_is_paged_through_and_the_export_imports_as_the_same_entries() {
        let store = MemoryCases::default();
        let mut all = Vec::new();
        for n in 0..450u32 {
            let status = if n % 2 == 0 {
                CaseStatus::Confirmed
            } else {
                CaseStatus::PendingReview
            };
            let md5 = format!("{n:032x}");
            let c = case(n, status, Some(Classification::B1), &[("md5", &md5)]);
            let entry = AuditEntry::new(
                &c.case_id,
                c.created_at,
                "scanner",
                AuditAction::Quarantined,
                "",
            );
            assert!(pollster::block_on(store.create(&c, &entry)).unwrap());
            all.push(c);
        }
        let confirmed = pollster::block_on(confirmed_in(&store, DEFAULT_LIST)).unwrap();
        assert_eq!(confirmed.cases, 225);
        let entries = confirmed.into_entries();
        assert_eq!(entries, confirmed_entries(&all, DEFAULT_LIST).unwrap());
        for format in [ListFormat::Csv, ListFormat::Vics] {
            let mut out = Vec::new();
            write_list(&mut out, format, &entries).unwrap();
            let mut read = Vec::new();
            let options = ParseOptions {
                source_name: "export".into(),
                default_list: DEFAULT_LIST.into(),
                algorithm: None,
            };
            parse(&out[..], format, &options, &mut |e| {
                read.push(e);
                Ok(())
            })
            .unwrap();
            assert_eq!(read, entries, "{format}");
        }
    }
}
