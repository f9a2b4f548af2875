//! List-entry quality: false positives recorded against the list entries a released case
//! matched, and the suppression of an entry that keeps matching innocent files.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::digest::{Algorithm, Digest, DigestError};
use crate::lists::Provenance;
use crate::scan::Match;
use crate::store::StoreError;
use crate::time::{rfc3339, Timestamp};

/// One list entry: a digest as one list names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EntryKey {
    pub digest: Digest,
    pub list: String,
    pub id: Option<String>,
}

impl EntryKey {
    pub fn of(m: &Match) -> EntryKey {
        EntryKey {
            digest: m.digest,
            list: m.list.clone(),
            id: m.id.clone(),
        }
    }
}

/// What recording one false positive did to one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub key: EntryKey,
    /// False positives on record for the entry (distinct cases), this one included.
    pub false_positives: u64,
    /// This false positive took the entry over the limit: it no longer matches.
    pub newly_suppressed: bool,
}

/// Where false positives are kept: the exact store, next to the entries they concern.
pub trait ListFeedback: Send + Sync {
    /// Record that case `case_id`, which matched `matches`, was a false positive. Each entry
    /// counts a case once, however often this is called for it; an entry whose count
    /// reaches `suppress_after` (0: never) is suppressed.
    fn record_false_positive(
        &self,
        case_id: &str,
        matches: &[Match],
        at: Timestamp,
        suppress_after: u32,
    ) -> impl Future<Output = Result<Vec<Recorded>, StoreError>> + Send;
}

impl<T: ListFeedback> ListFeedback for std::sync::Arc<T> {
    fn record_false_positive(
        &self,
        case_id: &str,
        matches: &[Match],
        at: Timestamp,
        suppress_after: u32,
    ) -> impl Future<Output = Result<Vec<Recorded>, StoreError>> + Send {
        (**self).record_false_positive(case_id, matches, at, suppress_after)
    }
}

/// Case ids kept per entry (the most recent last); the count goes on beyond them.
pub const KEPT_CASES: usize = 20;

impl std::fmt::Display for EntryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{} on list {:?}",
            self.digest.algorithm(),
            self.digest.to_hex(),
            self.list
        )?;
        if let Some(id) = &self.id {
            write!(f, " (id {id:?})")?;
        }
        Ok(())
    }
}

/// When an entry was suppressed, and the limit it reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    pub at: Timestamp,
    /// The `suppress_after` in force: false positives counted (since the last re-enabling).
    pub after: u32,
}

/// Who re-enabled a suppressed entry, when and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enabled {
    pub by: String,
    pub at: Timestamp,
    pub reason: String,
    /// The entry's false positives when it was re-enabled: only those after count towards
    /// suppressing it again.
    pub at_count: u64,
}

/// The false positives on record for one list entry: the one rule for what a false
/// positive, a suppression and a re-enabling do to it.
///
/// - A false positive counts once per case ([`EntryFeedback::record`] is idempotent per
///   case id, as far as the last [`KEPT_CASES`] cases go).
/// - An entry is suppressed when its false positives since it was last re-enabled (all of
///   them, if never) reach `suppress_after` (0: never). A suppressed entry does not match
///   ([`matching`]).
/// - An admin's re-enabling ([`EntryFeedback::enable`]) lifts the suppression; the entry is
///   suppressed again only after `suppress_after` more false positives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryFeedback {
    pub key: EntryKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub false_positives: u64,
    /// Distinct case ids, the most recent last, at most [`KEPT_CASES`].
    pub cases: Vec<String>,
    pub last_case: String,
    pub last_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppression>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<Enabled>,
}

/// What cannot be done to an entry's feedback.
#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    #[error("{0}: not in the hash store (no such digest, or not on that list with that id)")]
    NotInStore(EntryKey),
    #[error("{0}: no false positives on record for this entry")]
    NoFeedback(EntryKey),
    #[error("{0}: not suppressed, nothing to re-enable")]
    NotSuppressed(EntryKey),
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{text:?} is not ALG:HEX (e.g. md5:d41d8cd98f00b204e9800998ecf8427e): {reason}")]
    BadDigest { text: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EntryFeedback {
    /// The first false positive of an entry: nothing counted yet.
    fn new(m: &Match, case_id: &str, at: Timestamp) -> EntryFeedback {
        EntryFeedback {
            key: EntryKey::of(m),
            category: m.category.clone(),
            false_positives: 0,
            cases: Vec::new(),
            last_case: case_id.to_string(),
            last_at: at,
            suppressed: None,
            enabled: None,
        }
    }

    pub fn is_suppressed(&self) -> bool {
        self.suppressed.is_some()
    }

    /// False positives that count towards the next suppression: those since the last
    /// re-enabling.
    pub fn counting(&self) -> u64 {
        self.false_positives
            .saturating_sub(self.enabled.as_ref().map_or(0, |e| e.at_count))
    }

    /// Record that case `case_id` was a false positive on this entry, at `at`. A case
    /// already on record changes nothing. Suppresses the entry when [`Self::counting`]
    /// reaches `suppress_after` (> 0) and it is not suppressed already.
    pub fn record(&mut self, case_id: &str, at: Timestamp, suppress_after: u32) -> Recorded {
        let mut newly_suppressed = false;
        if !self.cases.iter().any(|c| c == case_id) {
            self.false_positives += 1;
            self.cases.push(case_id.to_string());
            if self.cases.len() > KEPT_CASES {
                let extra = self.cases.len() - KEPT_CASES;
                self.cases.drain(..extra);
            }
            self.last_case = case_id.to_string();
            self.last_at = at;
            if suppress_after > 0
                && self.suppressed.is_none()
                && self.counting() >= u64::from(suppress_after)
            {
                self.suppressed = Some(Suppression {
                    at,
                    after: suppress_after,
                });
                newly_suppressed = true;
            }
        }
        Recorded {
            key: self.key.clone(),
            false_positives: self.false_positives,
            newly_suppressed,
        }
    }

    /// An admin re-enables the suppressed entry: it matches again, and counts its false
    /// positives afresh towards the next suppression.
    pub fn enable(&mut self, by: &str, reason: &str, at: Timestamp) -> Result<(), FeedbackError> {
        if by.trim().is_empty() {
            return Err(FeedbackError::Empty {
                what: "who re-enables (--by)",
            });
        }
        if reason.trim().is_empty() {
            return Err(FeedbackError::Empty {
                what: "the reason (--reason)",
            });
        }
        if self.suppressed.is_none() {
            return Err(FeedbackError::NotSuppressed(self.key.clone()));
        }
        self.suppressed = None;
        self.enabled = Some(Enabled {
            by: by.to_string(),
            at,
            reason: reason.to_string(),
            at_count: self.false_positives,
        });
        Ok(())
    }
}

/// Record a false positive of case `case_id` on the entry `m` names, among the feedback a
/// store keeps for `m`'s digest (`feedback`, changed in place: a first false positive adds
/// the entry's record).
pub fn record_on(
    feedback: &mut Vec<EntryFeedback>,
    m: &Match,
    case_id: &str,
    at: Timestamp,
    suppress_after: u32,
) -> Recorded {
    let key = EntryKey::of(m);
    let i = match feedback.iter().position(|f| f.key == key) {
        Some(i) => i,
        None => {
            feedback.push(EntryFeedback::new(m, case_id, at));
            feedback.len() - 1
        }
    };
    feedback[i].record(case_id, at, suppress_after)
}

/// Re-enable the entry `key` among the feedback kept for its digest; returns its record as
/// it is now.
pub fn enable_on(
    feedback: &mut [EntryFeedback],
    key: &EntryKey,
    by: &str,
    reason: &str,
    at: Timestamp,
) -> Result<EntryFeedback, FeedbackError> {
    let f = feedback
        .iter_mut()
        .find(|f| &f.key == key)
        .ok_or_else(|| FeedbackError::NoFeedback(key.clone()))?;
    f.enable(by, reason, at)?;
    Ok(f.clone())
}

/// The one rule for suppression at lookup: `digest`'s provenance without the entries whose
/// feedback says they are suppressed. A digest left with none does not match.
pub fn matching(
    digest: &Digest,
    provenance: Vec<Provenance>,
    feedback: &[EntryFeedback],
) -> Vec<Provenance> {
    if feedback.is_empty() {
        return provenance;
    }
    provenance
        .into_iter()
        .filter(|p| {
            !feedback.iter().any(|f| {
                f.is_suppressed()
                    && f.key.digest == *digest
                    && f.key.list == p.list
                    && f.key.id == p.id
            })
        })
        .collect()
}

/// A digest as operators write it: `ALG:HEX` (`md5:…`, `sha1:…`, `sha256:…`).
pub fn parse_digest(text: &str) -> Result<Digest, FeedbackError> {
    let bad = |reason: String| FeedbackError::BadDigest {
        text: text.to_string(),
        reason,
    };
    let (alg, hex) = text
        .trim()
        .split_once(':')
        .ok_or_else(|| bad("no ':' between algorithm and hex".into()))?;
    let algorithm: Algorithm = alg.parse().map_err(|e: DigestError| bad(e.to_string()))?;
    Digest::parse_hex_as(algorithm, hex).map_err(|e| bad(e.to_string()))
}

/// The columns of the feedback export, in order.
pub const EXPORT_COLUMNS: [&str; 13] = [
    "list",
    "id",
    "algorithm",
    "digest",
    "category",
    "false_positives",
    "last_case",
    "last_at",
    "suppressed",
    "suppressed_at",
    "enabled_by",
    "enabled_at",
    "cases",
];

/// Write the false-positive feedback on `list`'s entries as CSV ([`EXPORT_COLUMNS`]; the
/// kept case ids joined by spaces), ordered by digest, for the list's source. Entries of
/// other lists are left out. Returns the number of entries written.
pub fn write_export<W: std::io::Write>(
    out: W,
    list: &str,
    feedback: &[EntryFeedback],
) -> Result<u64, csv::Error> {
    let mut of_list: Vec<&EntryFeedback> = feedback.iter().filter(|f| f.key.list == list).collect();
    of_list.sort_by(|a, b| a.key.cmp(&b.key));
    let mut w = csv::Writer::from_writer(out);
    w.write_record(EXPORT_COLUMNS)?;
    for f in &of_list {
        let (suppressed_at, enabled_by, enabled_at) = (
            f.suppressed
                .as_ref()
                .map(|s| rfc3339(s.at))
                .unwrap_or_default(),
            f.enabled.as_ref().map(|e| e.by.clone()).unwrap_or_default(),
            f.enabled
                .as_ref()
                .map(|e| rfc3339(e.at))
                .unwrap_or_default(),
        );
        w.write_record([
            f.key.list.as_str(),
            f.key.id.as_deref().unwrap_or(""),
            f.key.digest.algorithm().name(),
            &f.key.digest.to_hex(),
            f.category.as_deref().unwrap_or(""),
            &f.false_positives.to_string(),
            &f.last_case,
            &rfc3339(f.last_at),
            if f.is_suppressed() { "true" } else { "false" },
            &suppressed_at,
            &enabled_by,
            &enabled_at,
            &f.cases.join(" "),
        ])?;
    }
    w.flush()?;
    Ok(of_list.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::ListEntry;
    use crate::memory::MemoryStore;
    use crate::store::{HashStore, Op};

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn digest(n: u8) -> Digest {
        Digest::new(Algorithm::Md5, &[n; 16]).unwrap()
    }

    fn m(n: u8, list: &str, id: Option<&str>) -> Match {
        Match {
            distance: None,
            algorithm: Algorithm::Md5,
            digest: digest(n),
            list: list.into(),
            category: Some("A1".into()),
            id: id.map(Into::into),
        }
    }

    fn prov(list: &str, id: Option<&str>) -> Provenance {
        Provenance {
            list: list.into(),
            id: id.map(Into::into),
            category: Some("A1".into()),
        }
    }

    #[test]
    fn a_case_counts_once_and_the_limit_suppresses() {
        let mut fb = Vec::new();
        let one = m(1, "ncmec", Some("42"));
        let r = record_on(&mut fb, &one, "case-1", at(1), 3);
        assert_eq!((r.false_positives, r.newly_suppressed), (1, false));
        // The same case again (a retried followup): nothing changes.
        let before = fb.clone();
        let r = record_on(&mut fb, &one, "case-1", at(2), 3);
        assert_eq!((r.false_positives, r.newly_suppressed), (1, false));
        assert_eq!(fb, before);
        assert!(!record_on(&mut fb, &one, "case-2", at(3), 3).newly_suppressed);
        let r = record_on(&mut fb, &one, "case-3", at(4), 3);
        assert_eq!((r.false_positives, r.newly_suppressed), (3, true));
        assert_eq!(
            fb[0].suppressed,
            Some(Suppression {
                at: at(4),
                after: 3
            })
        );
        assert_eq!(fb[0].cases, ["case-1", "case-2", "case-3"]);
        assert_eq!((fb[0].last_case.as_str(), fb[0].last_at), ("case-3", at(4)));
        // Already suppressed: counted, not suppressed anew.
        let r = record_on(&mut fb, &one, "case-4", at(5), 3);
        assert_eq!((r.false_positives, r.newly_suppressed), (4, false));
        // Another entry of the same digest is its own record.
        let other = m(1, "ncmec", Some("43"));
        assert_eq!(
            record_on(&mut fb, &other, "case-4", at(5), 3).false_positives,
            1
        );
        assert_eq!(fb.len(), 2);
    }

    #[test]
    fn zero_never_suppresses_and_kept_cases_are_bounded() {
        let mut fb = Vec::new();
        let one = m(2, "l", None);
        for i in 0..(KEPT_CASES as u64 + 5) {
            let r = record_on(&mut fb, &one, &format!("case-{i}"), at(i as i64), 0);
            assert!(!r.newly_suppressed);
        }
        assert_eq!(fb[0].false_positives, KEPT_CASES as u64 + 5);
        assert_eq!(fb[0].cases.len(), KEPT_CASES);
        assert_eq!(fb[0].cases.first().unwrap(), "case-5");
        assert_eq!(
            fb[0].cases.last().unwrap(),
            &format!("case-{}", KEPT_CASES + 4)
        );
        assert!(!fb[0].is_suppressed());
    }

    #[test]
    fn a_re_enabled_entry_is_suppressed_again_only_after_as_many_more() {
        let mut fb = Vec::new();
        let one = m(3, "l", Some("x"));
        record_on(&mut fb, &one, "c1", at(1), 2);
        assert!(record_on(&mut fb, &one, "c2", at(2), 2).newly_suppressed);
        let key = EntryKey::of(&one);
        let e = enable_on(&mut fb, &key, "admin", "checked: not the file", at(3)).unwrap();
        assert!(!e.is_suppressed());
        assert_eq!(e.enabled.as_ref().unwrap().at_count, 2);
        assert_eq!(e.counting(), 0);
        // Not suppressed, so a second re-enabling is refused, naming the entry.
        let err = enable_on(&mut fb, &key, "admin", "again", at(4)).unwrap_err();
        assert!(matches!(err, FeedbackError::NotSuppressed(_)), "{err}");
        assert!(err.to_string().contains("\"l\""), "{err}");
        // A case already counted before the re-enabling does not count again.
        assert!(!record_on(&mut fb, &one, "c2", at(5), 2).newly_suppressed);
        assert!(!record_on(&mut fb, &one, "c3", at(5), 2).newly_suppressed);
        assert!(!fb[0].is_suppressed());
        let r = record_on(&mut fb, &one, "c4", at(6), 2);
        assert_eq!((r.false_positives, r.newly_suppressed), (4, true));
    }

    #[test]
    fn enabling_needs_a_record_a_name_and_a_reason() {
        let mut fb = Vec::new();
        let one = m(4, "l", None);
        let key = EntryKey::of(&one);
        assert!(matches!(
            enable_on(&mut fb, &key, "admin", "why", at(1)),
            Err(FeedbackError::NoFeedback(_))
        ));
        record_on(&mut fb, &one, "c1", at(1), 1);
        for (by, reason) in [("", "why"), ("admin", " ")] {
            let err = enable_on(&mut fb, &key, by, reason, at(2)).unwrap_err();
            assert!(matches!(err, FeedbackError::Empty { .. }), "{err}");
        }
        assert!(fb[0].is_suppressed());
    }

    #[test]
    fn suppressed_entries_do_not_match_and_others_still_do() {
        let mut fb = Vec::new();
        record_on(&mut fb, &m(5, "a", Some("1")), "c1", at(1), 1);
        record_on(&mut fb, &m(5, "b", None), "c1", at(1), 5);
        let all = vec![prov("a", Some("1")), prov("a", Some("2")), prov("b", None)];
        assert_eq!(
            matching(&digest(5), all.clone(), &fb),
            vec![prov("a", Some("2")), prov("b", None)]
        );
        // Feedback of another digest never suppresses this one.
        assert_eq!(matching(&digest(6), all.clone(), &fb), all);
        assert!(matching(&digest(5), vec![prov("a", Some("1"))], &fb).is_empty());
    }

    #[test]
    fn digests_are_parsed_as_alg_hex_with_errors_naming_the_text() {
        let hex = "d41d8cd98f00b204e9800998ecf8427e";
        assert_eq!(
            parse_digest(&format!("md5:{hex}")).unwrap(),
            Digest::parse_hex_as(Algorithm::Md5, hex).unwrap()
        );
        for bad in [
            hex.to_string(),
            format!("sha1:{hex}"),
            "crc:00".into(),
            "md5:zz".into(),
        ] {
            let err = parse_digest(&bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn the_export_lists_one_lists_entries_for_its_source() {
        let mut fb = Vec::new();
        record_on(&mut fb, &m(7, "ncmec", Some("id,7")), "c1", at(1), 2);
        record_on(&mut fb, &m(7, "ncmec", Some("id,7")), "c2", at(2), 2);
        record_on(&mut fb, &m(8, "ncmec", None), "c3", at(3), 2);
        record_on(&mut fb, &m(9, "other", None), "c3", at(3), 2);
        let mut out = Vec::new();
        assert_eq!(write_export(&mut out, "ncmec", &fb).unwrap(), 2);
        let mut r = csv::Reader::from_reader(out.as_slice());
        assert_eq!(r.headers().unwrap(), EXPORT_COLUMNS.as_slice());
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        let row = &rows[0];
        assert_eq!(&row[0], "ncmec");
        assert_eq!(&row[1], "id,7");
        assert_eq!(&row[2], "md5");
        assert_eq!(&row[3], digest(7).to_hex());
        assert_eq!(&row[4], "A1");
        assert_eq!(&row[5], "2");
        assert_eq!(&row[6], "c2");
        assert_eq!(&row[7], rfc3339(at(2)));
        assert_eq!(&row[8], "true");
        assert_eq!(&row[9], rfc3339(at(2)));
        assert_eq!(&row[12], "c1 c2");
        assert_eq!(
            (&rows[1][3], &rows[1][8]),
            (digest(8).to_hex().as_str(), "false")
        );
    }

    fn entry(n: u8, list: &str, id: Option<&str>) -> ListEntry {
        ListEntry {
            digest: digest(n),
            provenance: prov(list, id),
        }
    }

    #[test]
    fn suppression_after_repeated_false_positives_and_re_enabling_in_the_memory_store() {
        let store = MemoryStore::default();
        store
            .apply(
                &[
                    entry(10, "l", Some("1")),
                    entry(10, "k", None),
                    entry(11, "l", None),
                ],
                Op::Add,
            )
            .unwrap();
        let hit = m(10, "l", Some("1"));
        let gone = m(12, "l", None);
        for (i, case) in ["c1", "c2", "c2", "c3"].iter().enumerate() {
            let r = pollster::block_on(store.record_false_positive(
                case,
                &[hit.clone(), gone.clone()],
                at(i as i64),
                3,
            ))
            .unwrap();
            // An entry no longer in the store is not recorded.
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].newly_suppressed, *case == "c3" && i == 3);
        }
        let fb = store.feedback();
        assert_eq!(fb.len(), 1);
        assert_eq!(fb[0].false_positives, 3);
        assert!(fb[0].is_suppressed());
        // The suppressed entry no longer matches; the digest's other entry still does.
        let found = pollster::block_on(store.lookup(&[digest(10), digest(11)])).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].provenance, vec![prov("k", None)]);
        // A digest with only suppressed entries is not returned at all.
        pollster::block_on(store.record_false_positive("c9", &[m(11, "l", None)], at(9), 1))
            .unwrap();
        let found = pollster::block_on(store.lookup(&[digest(11)])).unwrap();
        assert!(found.is_empty(), "{found:?}");

        let key = EntryKey::of(&hit);
        let enabled = store.enable(&key, "admin", "reviewed", at(10)).unwrap();
        assert!(!enabled.is_suppressed());
        let found = pollster::block_on(store.lookup(&[digest(10)])).unwrap();
        assert_eq!(found[0].provenance.len(), 2);
        // Unknown entries are named.
        let err = store
            .enable(&EntryKey::of(&gone), "admin", "reviewed", at(11))
            .unwrap_err();
        assert!(matches!(err, FeedbackError::NotInStore(_)), "{err}");
        let err = store
            .enable(&EntryKey::of(&m(10, "k", None)), "admin", "r", at(11))
            .unwrap_err();
        assert!(matches!(err, FeedbackError::NoFeedback(_)), "{err}");
    }
}
