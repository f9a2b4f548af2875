//! The audit log: one append-only, hash-chained sequence of every action on every case.
//!
//! Each [`ChainedEntry`] carries its position (`seq`, from 1 without gaps), the SHA-256 of
//! the entry before it (`prev`; the first links to [`GENESIS`]) and its own SHA-256 (`hash`)
//! over a canonical encoding of all of that. Stores write an entry only if its `seq` is not
//! taken yet (a conditional put), so two writers can never fork the chain: the loser reads
//! the new head and links again. [`Verifier`] walks the chain in order and names the first
//! entry that does not fit: a flipped byte changes that entry's hash, a deleted entry leaves
//! a gap, a reordered pair breaks the `prev` links.
//!
//! Rewriting the whole table with freshly computed hashes would still verify on its own, so
//! the head is checkpointed now and then ([`Checkpoint`]): signed by a key the table's
//! administrators cannot use to forge, and written where nobody can overwrite it (an Object
//! Lock bucket). A chain that no longer contains a checkpointed head is caught.

use serde::{Deserialize, Serialize};

use crate::digest::{digest_bytes, Algorithm, AlgorithmSet};
use crate::time::{rfc3339, Timestamp};

/// What was done to a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// The scanner copied the match to quarantine (the case was opened).
    Quarantined,
    /// The scanner tagged the match in place (the case was opened).
    HeldInPlace,
    /// The scanned version was gone before it could be copied (the case was opened).
    ContentGone,
    /// A reviewer opened the case.
    Viewed,
    /// A blurred preview was served to a reviewer.
    PreviewServed,
    /// A reviewer revealed a less blurred preview, giving a reason.
    Revealed,
    /// A reviewer decided (confirm, false positive, escalate), giving a reason.
    Decided,
    /// A false positive's content was restored for its owner.
    Restored,
    /// A report about the case was filed.
    Reported,
    /// The case's report package was written to the reports bucket and announced.
    Packaged,
    /// The case's digests were added to the provider's own list in the exact store.
    Shared,
    /// A false positive was recorded against the list entries the case matched.
    FalsePositiveRecorded,
    /// A list entry stopped matching after too many false positives.
    EntrySuppressed,
    /// An admin let a suppressed list entry match again.
    EntryEnabled,
    /// A legal hold keeps the case's evidence and report beyond their retention.
    HoldPlaced,
    /// The legal hold on the case was lifted.
    HoldReleased,
    /// An operator pointed the filter manifest back at an earlier snapshot (not about a
    /// case: its case id is [`FILTER_SUBJECT`]).
    FilterRolledBack,
}

/// The case id of audit entries about the filter rather than a case.
pub const FILTER_SUBJECT: &str = "filter";

impl AuditAction {
    pub const ALL: [AuditAction; 17] = [
        AuditAction::Quarantined,
        AuditAction::HeldInPlace,
        AuditAction::ContentGone,
        AuditAction::Viewed,
        AuditAction::PreviewServed,
        AuditAction::Revealed,
        AuditAction::Decided,
        AuditAction::Restored,
        AuditAction::Reported,
        AuditAction::Packaged,
        AuditAction::Shared,
        AuditAction::FalsePositiveRecorded,
        AuditAction::EntrySuppressed,
        AuditAction::EntryEnabled,
        AuditAction::HoldPlaced,
        AuditAction::HoldReleased,
        AuditAction::FilterRolledBack,
    ];

    /// The one spelling written to storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditAction::Quarantined => "quarantined",
            AuditAction::HeldInPlace => "held_in_place",
            AuditAction::ContentGone => "content_gone",
            AuditAction::Viewed => "viewed",
            AuditAction::PreviewServed => "preview_served",
            AuditAction::Revealed => "revealed",
            AuditAction::Decided => "decided",
            AuditAction::Restored => "restored",
            AuditAction::Reported => "reported",
            AuditAction::Packaged => "packaged",
            AuditAction::Shared => "shared",
            AuditAction::FalsePositiveRecorded => "false_positive_recorded",
            AuditAction::EntrySuppressed => "entry_suppressed",
            AuditAction::EntryEnabled => "entry_enabled",
            AuditAction::HoldPlaced => "hold_placed",
            AuditAction::HoldReleased => "hold_released",
            AuditAction::FilterRolledBack => "filter_rolled_back",
        }
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AuditAction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuditAction::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("not an audit action: {s:?}"))
    }
}

/// One action on a case, as its author describes it; [`link`] places it in the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub case_id: String,
    pub at: Timestamp,
    /// `scanner`, or the reviewer's user name.
    pub actor: String,
    pub action: AuditAction,
    pub detail: String,
    /// The address the request came from, for people's actions.
    #[serde(default)]
    pub address: Option<String>,
    /// The reason a reviewer gave (reveals and decisions require one).
    #[serde(default)]
    pub reason: Option<String>,
}

impl AuditEntry {
    /// An entry with no address and no reason.
    pub fn new(
        case_id: impl Into<String>,
        at: Timestamp,
        actor: impl Into<String>,
        action: AuditAction,
        detail: impl Into<String>,
    ) -> AuditEntry {
        AuditEntry {
            case_id: case_id.into(),
            at,
            actor: actor.into(),
            action,
            detail: detail.into(),
            address: None,
            reason: None,
        }
    }
}

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry in its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainedEntry {
    pub seq: u64,
    /// Hex SHA-256 of the entry before (or [`GENESIS`]).
    pub prev: String,
    /// Hex SHA-256 of this entry: [`entry_hash`] of its seq, prev and fields.
    pub hash: String,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

/// The instant as it is hashed and stored: RFC 3339 with nanoseconds, so storage round-trips
/// it exactly.
pub fn instant_text(t: Timestamp) -> String {
    format!("{}.{:09}Z", &rfc3339(t)[..19], t.subsec_nanosecond())
}

/// The canonical encoding: a tag, then every field as its length (8 bytes, big-endian) and
/// bytes, in a fixed order; optional fields carry a presence byte. Written by hand because
/// the hash must not depend on any serialiser's choices (field order, escaping, versions).
fn canonical(seq: u64, prev: &str, e: &AuditEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut field = |bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    field(b"hashgate-audit-v1");
    field(seq.to_string().as_bytes());
    field(prev.as_bytes());
    field(e.case_id.as_bytes());
    field(instant_text(e.at).as_bytes());
    field(e.actor.as_bytes());
    field(e.action.as_str().as_bytes());
    field(e.detail.as_bytes());
    for optional in [&e.address, &e.reason] {
        match optional {
            None => field(b"\0"),
            Some(v) => field(format!("\x01{v}").as_bytes()),
        }
    }
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digests = digest_bytes(bytes, AlgorithmSet::EMPTY.with(Algorithm::Sha256));
    digests
        .get(Algorithm::Sha256)
        .map(|d| d.to_hex())
        .expect("SHA-256 was asked for")
}

/// The hash an entry at `seq` after `prev` must carry.
pub fn entry_hash(seq: u64, prev: &str, entry: &AuditEntry) -> String {
    sha256_hex(&canonical(seq, prev, entry))
}

/// Place `entry` after `head` (the last entry of the chain, or none for the first).
pub fn link(head: Option<&ChainedEntry>, entry: AuditEntry) -> ChainedEntry {
    let (seq, prev) = match head {
        Some(h) => (h.seq + 1, h.hash.clone()),
        None => (1, GENESIS.to_string()),
    };
    let hash = entry_hash(seq, &prev, &entry);
    ChainedEntry {
        seq,
        prev,
        hash,
        entry,
    }
}

/// A signed statement that the chain's entry `seq` had hash `hash` at `at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    pub at: Timestamp,
}

impl Checkpoint {
    pub fn of(head: &ChainedEntry, at: Timestamp) -> Checkpoint {
        Checkpoint {
            seq: head.seq,
            hash: head.hash.clone(),
            at,
        }
    }

    /// The bytes that are signed.
    pub fn signed_bytes(&self) -> Vec<u8> {
        format!(
            "hashgate-audit-checkpoint-v1\n{}\n{}\n{}\n",
            self.seq,
            self.hash,
            instant_text(self.at)
        )
        .into_bytes()
    }

    /// The object name of a checkpoint: sorts by position in the chain.
    pub fn object_key(&self) -> String {
        format!("checkpoints/{:020}.json", self.seq)
    }

    /// Is a new checkpoint due, given the last one and the chain's head?
    pub fn due(
        last: Option<&Checkpoint>,
        head: &ChainedEntry,
        now: Timestamp,
        interval_seconds: u64,
    ) -> bool {
        match last {
            None => true,
            Some(cp) if cp.seq >= head.seq => false,
            Some(cp) => {
                let age = now.as_second().saturating_sub(cp.at.as_second());
                u64::try_from(age).unwrap_or(0) >= interval_seconds
            }
        }
    }
}

/// A checkpoint as read back, with whether its signature verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadCheckpoint {
    /// Where it was read from, for messages.
    pub name: String,
    pub checkpoint: Checkpoint,
    pub signature_valid: bool,
}

/// The first place the chain does not verify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Broken {
    /// The entry (or, for a checkpoint, the entry it vouches for) at fault.
    pub seq: u64,
    pub reason: String,
}

/// What [`Verifier::finish`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub ok: bool,
    pub entries: u64,
    /// The last entry seen: seq and hash.
    pub head: Option<Head>,
    pub checkpoints: usize,
    pub first_broken: Option<Broken>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

/// Walks the chain in order (fed page by page), checking every link and every checkpoint.
#[derive(Debug)]
pub struct Verifier {
    expected: u64,
    prev: String,
    entries: u64,
    broken: Option<Broken>,
    /// Checkpoints by the seq they vouch for, not yet matched against the chain.
    pending: std::collections::BTreeMap<u64, Vec<ReadCheckpoint>>,
    checkpoints: usize,
}

impl Verifier {
    pub fn new(checkpoints: Vec<ReadCheckpoint>) -> Verifier {
        let mut v = Verifier {
            expected: 1,
            prev: GENESIS.to_string(),
            entries: 0,
            broken: None,
            pending: Default::default(),
            checkpoints: checkpoints.len(),
        };
        for cp in checkpoints {
            if !cp.signature_valid {
                v.fail(
                    cp.checkpoint.seq,
                    format!(
                        "checkpoint {} (entry {}) has an invalid signature",
                        cp.name, cp.checkpoint.seq
                    ),
                );
            }
            v.pending.entry(cp.checkpoint.seq).or_default().push(cp);
        }
        v
    }

    fn fail(&mut self, seq: u64, reason: String) {
        let earlier = self.broken.as_ref().is_none_or(|b| seq < b.seq);
        if earlier {
            self.broken = Some(Broken { seq, reason });
        }
    }

    /// Has a fault been found already? (Callers may stop reading.)
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// The next entry, in the order the store returns the chain (by `seq`).
    pub fn push(&mut self, e: &ChainedEntry) {
        if self.broken.as_ref().is_some_and(|b| b.seq <= e.seq) {
            return;
        }
        self.entries += 1;
        if e.seq != self.expected {
            let reason = if e.seq > self.expected {
                format!(
                    "entry {} is missing: the chain jumps from {} to {}",
                    self.expected,
                    self.expected - 1,
                    e.seq
                )
            } else {
                format!("entry {} appears after entry {}", e.seq, self.expected - 1)
            };
            self.fail(e.seq, reason);
            return;
        }
        let recomputed = entry_hash(e.seq, &e.prev, &e.entry);
        if recomputed != e.hash {
            self.fail(
                e.seq,
                format!(
                    "entry {} was altered: its content hashes to {recomputed}, not the {} it carries",
                    e.seq, e.hash
                ),
            );
            return;
        }
        if e.prev != self.prev {
            self.fail(
                e.seq,
                format!(
                    "entry {} does not follow entry {}: it links to {}, which is not that entry's hash {}",
                    e.seq,
                    e.seq - 1,
                    e.prev,
                    self.prev
                ),
            );
            return;
        }
        if let Some(cps) = self.pending.remove(&e.seq) {
            for cp in cps {
                if cp.checkpoint.hash != e.hash {
                    self.fail(
                        e.seq,
                        format!(
                            "entry {} differs from signed checkpoint {}: the chain was rewritten \
                             (checkpointed hash {}, chain has {})",
                            e.seq, cp.name, cp.checkpoint.hash, e.hash
                        ),
                    );
                    return;
                }
            }
        }
        self.expected = e.seq + 1;
        self.prev = e.hash.clone();
    }

    pub fn finish(mut self) -> Verification {
        let last = self.expected - 1;
        let beyond: Vec<(u64, String)> = self
            .pending
            .iter()
            .filter(|(seq, _)| **seq > last)
            .flat_map(|(seq, cps)| cps.iter().map(move |c| (*seq, c.name.clone())))
            .collect();
        // (Once broken, the walk stopped early: only an intact chain can be "too short".)
        if let Some((seq, name)) = beyond.into_iter().next().filter(|_| self.broken.is_none()) {
            self.fail(
                last + 1,
                format!(
                    "the chain ends at entry {last}, but signed checkpoint {name} vouches for entry {seq}: \
                     entries were removed from the end"
                ),
            );
        }
        let head = (last > 0).then(|| Head {
            seq: last,
            hash: self.prev.clone(),
        });
        Verification {
            ok: self.broken.is_none(),
            entries: self.entries,
            head,
            checkpoints: self.checkpoints,
            first_broken: self.broken,
        }
    }
}

/// Verify a whole chain held in memory.
pub fn verify(entries: &[ChainedEntry], checkpoints: Vec<ReadCheckpoint>) -> Verification {
    let mut v = Verifier::new(checkpoints);
    for e in entries {
        v.push(e);
    }
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_795_255_445 + s).unwrap()
    }

    fn chain(n: u64) -> Vec<ChainedEntry> {
        let mut out: Vec<ChainedEntry> = Vec::new();
        for i in 0..n {
            let mut e = AuditEntry::new(
                format!("case-{}", i % 3),
                t(i as i64),
                if i % 2 == 0 { "scanner" } else { "reviewer-a" },
                AuditAction::ALL[(i as usize) % AuditAction::ALL.len()],
                format!("detail {i} <&\"é>"),
            );
            if i % 2 == 1 {
                e.address = Some("127.0.0.1".into());
                e.reason = Some(format!("reason {i}"));
            }
            out.push(link(out.last(), e));
        }
        out
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let c = chain(10);
        assert_eq!(c[0].prev, GENESIS);
        assert_eq!(c[0].seq, 1);
        assert!(c.windows(2).all(|w| w[1].prev == w[0].hash));
        let v = verify(&c, vec![]);
        assert!(v.ok, "{v:?}");
        assert_eq!(v.entries, 10);
        assert_eq!(v.head.unwrap().hash, c[9].hash);
        let empty = verify(&[], vec![]);
        assert!(empty.ok && empty.head.is_none());
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        let c = chain(2);
        let base = c[1].clone();
        let mut variants = Vec::new();
        let mut e = base.clone();
        e.entry.case_id.push('x');
        variants.push(e);
        let mut e = base.clone();
        e.entry.at = t(99);
        variants.push(e);
        let mut e = base.clone();
        e.entry.actor = "reviewer-b".into();
        variants.push(e);
        let mut e = base.clone();
        e.entry.action = AuditAction::Restored;
        variants.push(e);
        let mut e = base.clone();
        e.entry.detail.push(' ');
        variants.push(e);
        let mut e = base.clone();
        e.entry.address = None;
        variants.push(e);
        let mut e = base.clone();
        e.entry.reason = Some(String::new());
        variants.push(e);
        let mut e = base.clone();
        e.seq = 3;
        variants.push(e);
        for v in variants {
            assert_ne!(entry_hash(v.seq, &v.prev, &v.entry), base.hash, "{v:?}");
        }
        // Field boundaries are unambiguous: moving a character between fields changes it.
        let a = AuditEntry::new("ab", t(0), "c", AuditAction::Viewed, "");
        let b = AuditEntry::new("a", t(0), "bc", AuditAction::Viewed, "");
        assert_ne!(entry_hash(1, GENESIS, &a), entry_hash(1, GENESIS, &b));
    }

    #[test]
    fn a_flipped_byte_names_its_entry() {
        let mut c = chain(8);
        c[4].entry.detail = c[4].entry.detail.replacen('4', "5", 1);
        let v = verify(&c, vec![]);
        assert!(!v.ok);
        let b = v.first_broken.unwrap();
        assert_eq!(b.seq, 5, "{}", b.reason);
        assert!(b.reason.contains("altered"), "{}", b.reason);
    }

    #[test]
    fn a_rehashed_edit_breaks_the_next_link() {
        let mut c = chain(8);
        c[4].entry.actor = "someone-else".into();
        c[4].hash = entry_hash(c[4].seq, &c[4].prev, &c[4].entry);
        let b = verify(&c, vec![]).first_broken.unwrap();
        assert_eq!(b.seq, 6, "{}", b.reason);
        assert!(b.reason.contains("does not follow"), "{}", b.reason);
    }

    #[test]
    fn a_deleted_entry_names_the_gap() {
        let mut c = chain(8);
        c.remove(3);
        let b = verify(&c, vec![]).first_broken.unwrap();
        assert_eq!(b.seq, 5, "{}", b.reason);
        assert!(b.reason.contains("entry 4 is missing"), "{}", b.reason);
    }

    #[test]
    fn a_reordered_pair_is_caught() {
        // The store keys entries by seq, so a reorder swaps two entries' contents while
        // their positions stay.
        let mut c = chain(8);
        let (a, b) = (c[2].clone(), c[3].clone());
        c[2] = ChainedEntry { seq: 3, ..b };
        c[3] = ChainedEntry { seq: 4, ..a };
        let broken = verify(&c, vec![]).first_broken.unwrap();
        assert_eq!(broken.seq, 3, "{}", broken.reason);
        // Returned out of order as they are, they are caught too.
        let mut c = chain(8);
        c.swap(2, 3);
        assert_eq!(verify(&c, vec![]).first_broken.unwrap().seq, 4);
    }

    fn read(cp: Checkpoint, valid: bool) -> ReadCheckpoint {
        ReadCheckpoint {
            name: cp.object_key(),
            checkpoint: cp,
            signature_valid: valid,
        }
    }

    #[test]
    fn a_rewritten_chain_is_caught_by_its_checkpoints() {
        let c = chain(8);
        let cp = Checkpoint::of(&c[5], t(100));
        assert!(verify(&c, vec![read(cp.clone(), true)]).ok);
        // An administrator rewrites entry 3 and recomputes every hash after it.
        let mut forged: Vec<ChainedEntry> = Vec::new();
        for (i, e) in c.iter().enumerate() {
            let mut entry = e.entry.clone();
            if i == 2 {
                entry.actor = "nobody".into();
            }
            forged.push(link(forged.last(), entry));
        }
        assert!(verify(&forged, vec![]).ok, "rehashing alone verifies");
        let v = verify(&forged, vec![read(cp.clone(), true)]);
        let b = v.first_broken.unwrap();
        assert_eq!(b.seq, 6, "{}", b.reason);
        assert!(b.reason.contains("rewritten"), "{}", b.reason);
        // Truncating the chain below a checkpoint is caught.
        let b = verify(&c[..4], vec![read(cp.clone(), true)])
            .first_broken
            .unwrap();
        assert_eq!(b.seq, 5, "{}", b.reason);
        assert!(b.reason.contains("removed from the end"), "{}", b.reason);
        // A checkpoint whose signature does not verify is itself a fault.
        let b = verify(&c, vec![read(cp, false)]).first_broken.unwrap();
        assert!(b.reason.contains("invalid signature"), "{}", b.reason);
    }

    #[test]
    fn checkpoints_are_due_by_interval_and_only_for_new_entries() {
        let c = chain(3);
        assert!(Checkpoint::due(None, &c[2], t(0), 300));
        let cp = Checkpoint::of(&c[1], t(0));
        assert!(!Checkpoint::due(Some(&cp), &c[2], t(299), 300));
        assert!(Checkpoint::due(Some(&cp), &c[2], t(300), 300));
        let at_head = Checkpoint::of(&c[2], t(0));
        assert!(!Checkpoint::due(Some(&at_head), &c[2], t(10_000), 300));
        assert!(cp.object_key() < at_head.object_key());
        assert!(String::from_utf8(cp.signed_bytes())
            .unwrap()
            .contains(&c[1].hash));
    }

    #[test]
    fn entries_round_trip_through_json_with_their_instants_exact() {
        let mut c = chain(2);
        c[1].entry.at = Timestamp::new(1_795_255_445, 123_456_789).unwrap();
        c[1].hash = entry_hash(c[1].seq, &c[1].prev, &c[1].entry);
        let json = serde_json::to_string(&c[1]).unwrap();
        let back: ChainedEntry = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c[1]);
        assert_eq!(
            instant_text(c[1].entry.at),
            "2026-11-21T10:04:05.123456789Z"
        );
        assert_eq!(
            instant_text(c[1].entry.at).parse::<Timestamp>().unwrap(),
            c[1].entry.at
        );
        for a in AuditAction::ALL {
            assert_eq!(a.as_str().parse::<AuditAction>().unwrap(), a);
        }
    }
}
