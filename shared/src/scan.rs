//! The scan decision: digests → filter → exact store → verdict.
//!
//! Sans-IO in two steps so each is testable without a store: [`candidates`] picks the
//! digests the filter cannot rule out, the caller looks those up in its exact store, and
//! [`conclude`] turns the answer into a [`Decision`]. [`decide`] runs both against any
//! [`HashStore`]. A filter hit alone never matches (invariant 4): only the store's answer does.
//!
//! An image's PDQ hash is matched by distance, not equality: [`Perceptual`] names the index
//! (the one carried by the latest loaded filter snapshot, stale or not: a store cannot be
//! asked "what is within 31 bits"), the upload's eight variant hashes and the threshold. The
//! index's hits within the threshold are candidates like any other, and only the store's
//! answer about them makes a match, which carries its distance.

use serde::{Deserialize, Serialize};

use crate::digest::{Algorithm, Digest, DigestSet};
use crate::filter::FilterSnapshot;
use crate::pdq::index::PdqIndex;
use crate::pdq::PdqHash;
use crate::store::{HashStore, StoreError, StoredDigest};

/// How digests are screened before the exact store is asked.
#[derive(Clone, Copy, Debug)]
pub enum Screen<'a> {
    /// A filter built from the store's current version: what it rules out is not on any list.
    Filter(&'a FilterSnapshot),
    /// No usable filter (missing, or older than the store): every digest goes to the store.
    StoreOnly,
}

impl<'a> Screen<'a> {
    /// The one rule for using a filter: only a filter built from the store's current version
    /// screens; a missing or stale one sends every digest to the store (a stale filter could
    /// rule out a digest added since, and hide a match).
    pub fn for_store(filter: Option<&'a FilterSnapshot>, store_version: u64) -> Screen<'a> {
        match filter {
            Some(f) if f.info().covers(store_version) => Screen::Filter(f),
            _ => Screen::StoreOnly,
        }
    }

    pub fn uses_filter(&self) -> bool {
        matches!(self, Screen::Filter(_))
    }
}

/// One list entry that a scanned object's digest is on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    pub algorithm: Algorithm,
    /// The list entry's digest (for PDQ: the listed hash, not the upload's).
    pub digest: Digest,
    /// For a perceptual (PDQ) match: the Hamming distance between the upload (its closest
    /// rotation or flip) and the listed hash. None for an exact match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance: Option<u32>,
    pub list: String,
    pub category: Option<String>,
    pub id: Option<String>,
}

/// The verdict on one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// None of its digests is on any list.
    Clean,
    /// On at least one list; every matching entry, with its provenance.
    Match(Vec<Match>),
}

impl Verdict {
    pub fn is_match(&self) -> bool {
        matches!(self, Verdict::Match(_))
    }
    pub fn matches(&self) -> &[Match] {
        match self {
            Verdict::Clean => &[],
            Verdict::Match(m) => m,
        }
    }
}

/// A verdict and how it was reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// Digests the exact store was asked about.
    pub store_lookups: u32,
    /// Digests the filter let through that the store did not confirm.
    pub filter_false_positives: u32,
}

/// An image upload's PDQ, to be matched by distance.
#[derive(Clone, Copy, Debug)]
pub struct Perceptual<'a> {
    pub index: &'a PdqIndex,
    /// The upload's eight rotation and flip hashes (index 0: as uploaded).
    pub variants: &'a [PdqHash; 8],
    /// The largest Hamming distance that matches (default [`crate::pdq::DEFAULT_THRESHOLD`]).
    pub threshold: u32,
}

/// The digests to ask the store about, and for PDQ candidates their distance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Candidates {
    pub digests: Vec<Digest>,
    /// (listed PDQ hash as a digest, distance) for each perceptual candidate.
    pub distances: Vec<(Digest, u32)>,
}

impl Candidates {
    fn distance(&self, digest: &Digest) -> Option<u32> {
        self.distances
            .iter()
            .find(|(d, _)| d == digest)
            .map(|(_, distance)| *distance)
    }
}

/// Step 1: the digests that must be checked against the exact store: the exact digests the
/// filter cannot rule out, and the listed PDQ hashes within the threshold of the upload.
/// The upload's own PDQ hash (in `digests`) is never looked up by equality.
pub fn candidates(
    screen: Screen<'_>,
    digests: &DigestSet,
    perceptual: Option<Perceptual<'_>>,
) -> Candidates {
    let exact = digests.iter().filter(|d| !d.algorithm().is_perceptual());
    let mut out = Candidates {
        digests: match screen {
            Screen::Filter(filter) => exact.filter(|d| filter.may_contain(d)).collect(),
            Screen::StoreOnly => exact.collect(),
        },
        distances: Vec::new(),
    };
    if let Some(p) = perceptual {
        for hit in p.index.query_variants(p.variants, p.threshold) {
            let digest = Digest::pdq(hit.hash);
            out.digests.push(digest);
            out.distances.push((digest, hit.distance));
        }
    }
    out
}

/// Step 2: the verdict, from the candidates and what the store said about them.
pub fn conclude(screen: Screen<'_>, candidates: &Candidates, found: Vec<StoredDigest>) -> Decision {
    let mut matches = Vec::new();
    let exact_asked = (candidates.digests.len() - candidates.distances.len()) as u32;
    let mut exact_confirmed = 0u32;
    for stored in found {
        // Only answers about digests we asked for count; anything else is the store's bug
        // and must not turn into a match.
        if !candidates.digests.contains(&stored.digest) || stored.provenance.is_empty() {
            continue;
        }
        let distance = candidates.distance(&stored.digest);
        if distance.is_none() {
            exact_confirmed += 1;
        }
        for p in stored.provenance {
            matches.push(Match {
                algorithm: stored.digest.algorithm(),
                distance,
                digest: stored.digest,
                list: p.list,
                category: p.category,
                id: p.id,
            });
        }
    }
    let filter_false_positives = match screen {
        Screen::Filter(_) => exact_asked - exact_confirmed.min(exact_asked),
        Screen::StoreOnly => 0,
    };
    Decision {
        verdict: if matches.is_empty() {
            Verdict::Clean
        } else {
            Verdict::Match(matches)
        },
        store_lookups: candidates.digests.len() as u32,
        filter_false_positives,
    }
}

/// Decide on one object's digests (and its image's PDQ, when there is one to match).
pub async fn decide<S: HashStore>(
    store: &S,
    screen: Screen<'_>,
    digests: &DigestSet,
    perceptual: Option<Perceptual<'_>>,
) -> Result<Decision, StoreError> {
    let candidates = candidates(screen, digests, perceptual);
    let found = if candidates.digests.is_empty() {
        Vec::new()
    } else {
        store.lookup(&candidates.digests).await?
    };
    Ok(conclude(screen, &candidates, found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{digest_bytes, AlgorithmSet};
    use crate::lists::Provenance;

    fn provenance(list: &str) -> Provenance {
        Provenance {
            list: list.into(),
            id: Some("42".into()),
            category: Some("1".into()),
        }
    }

    #[test]
    fn filter_rules_out_and_store_confirms() {
        let bad = digest_bytes(b"known bad", AlgorithmSet::ALL);
        let clean = digest_bytes(b"holiday photo", AlgorithmSet::ALL);
        let md5 = bad.get(Algorithm::Md5).unwrap();
        let mut b = FilterSnapshot::builder(1, 1e-6, crate::filter::tests::test_seed()).unwrap();
        b.insert(&md5);
        let filter = b.finish(1, crate::time::Timestamp::UNIX_EPOCH).unwrap();
        let screen = Screen::Filter(&filter);

        assert!(candidates(screen, &clean, None).digests.is_empty());
        let c = candidates(screen, &bad, None);
        assert_eq!(c.digests, vec![md5]);
        let found = vec![StoredDigest {
            digest: md5,
            provenance: vec![provenance("ncmec"), provenance("iwf")],
        }];
        let d = conclude(screen, &c, found);
        assert_eq!(d.filter_false_positives, 0);
        let lists: Vec<_> = d
            .verdict
            .matches()
            .iter()
            .map(|m| m.list.as_str())
            .collect();
        assert_eq!(lists, ["ncmec", "iwf"]);
        assert_eq!(d.verdict.matches()[0].algorithm, Algorithm::Md5);
    }

    #[test]
    fn filter_hit_without_store_confirmation_is_clean() {
        let digests = digest_bytes(b"x", AlgorithmSet::ALL);
        let mut b = FilterSnapshot::builder(3, 1e-6, crate::filter::tests::test_seed()).unwrap();
        for d in digests.iter() {
            b.insert(&d);
        }
        let filter = b.finish(1, crate::time::Timestamp::UNIX_EPOCH).unwrap();
        let screen = Screen::Filter(&filter);
        let c = candidates(screen, &digests, None);
        assert_eq!(c.digests.len(), 3);
        let d = conclude(screen, &c, vec![]);
        assert_eq!(d.verdict, Verdict::Clean);
        assert_eq!(d.filter_false_positives, 3);
        assert_eq!(d.store_lookups, 3);
    }

    #[test]
    fn answers_about_digests_not_asked_for_are_ignored() {
        let asked = digest_bytes(b"a", AlgorithmSet::ALL);
        let other = digest_bytes(b"b", AlgorithmSet::ALL)
            .get(Algorithm::Md5)
            .unwrap();
        let c = candidates(Screen::StoreOnly, &asked, None);
        let d = conclude(
            Screen::StoreOnly,
            &c,
            vec![StoredDigest {
                digest: other,
                provenance: vec![provenance("l")],
            }],
        );
        assert_eq!(d.verdict, Verdict::Clean);
    }

    #[test]
    fn store_only_asks_about_everything() {
        let digests = digest_bytes(b"a", AlgorithmSet::ALL);
        assert_eq!(
            candidates(Screen::StoreOnly, &digests, None).digests.len(),
            3
        );
    }

    #[test]
    fn only_a_filter_of_the_stores_current_version_screens() {
        let filter = FilterSnapshot::builder(1, 1e-6, crate::filter::tests::test_seed())
            .unwrap()
            .finish(4, crate::time::Timestamp::UNIX_EPOCH)
            .unwrap();
        assert!(Screen::for_store(Some(&filter), 4).uses_filter());
        assert!(!Screen::for_store(Some(&filter), 5).uses_filter(), "stale");
        assert!(
            !Screen::for_store(Some(&filter), 3).uses_filter(),
            "from the future"
        );
        assert!(!Screen::for_store(None, 4).uses_filter());
    }
}
